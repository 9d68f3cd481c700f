"""Spreadsheets a coordinator can hand on: opened with openpyxl and checked cell by cell.

Column widths fit the Chinese text, the header row is frozen and filterable, times are
date cells in TIMEZONE, shares are percentages, totals mean what they say, every export
honours its filters and is named after them, and the CSV says its charset once.
"""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import date, datetime
from urllib.parse import unquote

from openpyxl import load_workbook

from server.spreadsheet import Percent
from server.xlsx_stream import display_width, write
from tests.coordination import fixture_data as fx
from tests.coordination.conftest import web_login

PERIOD = "from=2026-01-01&to=2026-12-31"


def _sheet(client, url: str):  # noqa: ANN001, ANN202
    r = client.get(url)
    assert r.status_code == 200, r.data[:300]
    return load_workbook(io.BytesIO(r.get_data())).worksheets[0]  # not read-only: styles


def _column(ws, header: str) -> int:  # noqa: ANN001
    return [c.value for c in ws[1]].index(header) + 1


def test_visits_sheet_reads_well(client, campaign) -> None:
    web_login(client, "coord")
    ws = _sheet(client, f"/export/visits.xlsx?{PERIOD}")
    assert ws.title == "走访记录"
    assert ws.freeze_panes == "A2"  # the header stays on screen
    last = ws.max_row
    assert last == 1 + len(fx.live_visits())
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, ws.max_column).column_letter}{last}"
    assert all(c.font.b for c in ws[1])

    when = _column(ws, "走访时间")
    v1 = next(r for r in ws.iter_rows(min_row=2) if r[0].value == campaign.visit_ids["V1"])
    cell = v1[when - 1]
    # a date cell, in Asia/Shanghai wall-clock time (the visit was 10:00 +08:00)
    assert cell.is_date and cell.value == datetime(2026, 3, 2, 10, 0)
    assert cell.number_format == "yyyy-mm-dd hh:mm"
    assert ws.cell(2, _column(ws, "录入时间")).is_date

    # widths: an id, a time and a Chinese name are never cut off
    for header in ("记录编号", "走访时间", "企业名称", "统一社会信用代码"):
        col = _column(ws, header)
        letter = ws.cell(1, col).column_letter
        longest = max(display_width(ws.cell(r, col).value) for r in range(1, last + 1))
        assert ws.column_dimensions[letter].width >= longest, header
    name_col = ws.cell(1, _column(ws, "企业名称")).column_letter
    assert ws.column_dimensions[name_col].width >= 2 * len("测试企业E2dup有限公司") - 4


def test_csv_times_text_and_content_type(client, campaign) -> None:
    web_login(client, "coord")
    r = client.get(f"/export/visits.csv?{PERIOD}")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # charset once
    rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    when = rows[0].index("走访时间")
    v1 = next(row for row in rows if row[0] == campaign.visit_ids["V1"])
    assert v1[when] == "2026-03-02 10:00"


def test_dashboard_percentages_and_totals(client, campaign) -> None:
    web_login(client, "coord")
    ws = _sheet(client, f"/export/dashboard.xlsx?{PERIOD}")
    share, types = _column(ws, "干部参与率"), _column(ws, "企业类型数")
    rows = list(ws.iter_rows(min_row=2))
    shares = [r[share - 1] for r in rows if r[share - 1].value is not None]
    assert shares, "no district with cadres"
    for cell in shares:
        assert cell.number_format == "0.0%" and 0 <= cell.value <= 1
    total = rows[-1]
    assert total[1].value == "合计"
    # five types in each of twenty districts are not a hundred types: the city's total
    # is how many types any district reached, never the sum
    from server.models import ENTERPRISE_TYPE_TAGS

    per_district = [r[types - 1].value for r in rows[:-1]]
    assert any(per_district)
    assert max(per_district) <= total[types - 1].value <= len(ENTERPRISE_TYPE_TAGS)
    assert sum(per_district) > total[types - 1].value, per_district  # the fixture tells them apart
    assert total[2].value == len(fx.live_visits())  # counts do add up
    body = client.get(f"/export/dashboard.csv?{PERIOD}").get_data().decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(body)))
    col = parsed[0].index("干部参与率")
    assert any(row[col].endswith("%") for row in parsed[1:])


def _names(r) -> str:  # noqa: ANN001
    return unquote(r.headers["Content-Disposition"].split("filename*=UTF-8''")[1])


def test_problems_export_honours_its_dates(client, campaign) -> None:
    web_login(client, "coord")
    raised = {p[0] for p in fx.PROBLEMS}
    assert raised <= set(fx.VISITS)

    def expected(first: str, last: str) -> int:
        return sum(1 for p in fx.PROBLEMS if first <= fx.VISITS[p[0]][3] <= last)

    for first, last in (("2026-03-01", "2026-03-03"), ("2026-03-04", "2026-03-31")):
        url = f"/export/problems.xlsx?from={first}&to={last}"
        ws = _sheet(client, url)
        assert ws.max_row - 1 == expected(first, last), (first, last)
        raised_col = _column(ws, "提出时间")
        for row in ws.iter_rows(min_row=2):
            day = row[raised_col - 1].value.date()
            assert date.fromisoformat(first) <= day <= date.fromisoformat(last)
        r = client.get(url)
        assert _names(r) == f"问题台账-{first}-{last}.xlsx"
        r = client.get(f"/export/problems.csv?from={first}&to={last}&category=wages")
        rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
        assert len(rows) - 1 == sum(
            1 for p in fx.PROBLEMS if p[1] == "wages" and first <= fx.VISITS[p[0]][3] <= last
        )


def test_the_enterprise_roster_is_not_named_after_dates_it_ignores(client, campaign) -> None:
    web_login(client, "coord")
    r = client.get(f"/export/enterprises.xlsx?{PERIOD}")
    assert r.status_code == 200
    name = _names(r)
    assert name.startswith("企业名录-") and "2026-01-01" not in name
    r = client.get(f"/export/visits.xlsx?{PERIOD}")
    assert _names(r) == "走访记录-2026-01-01-2026-12-31.xlsx"


def test_the_writer_streams_at_constant_memory(tmp_path) -> None:
    """Peak Python memory is the same for 20,000 and 80,000 rows: nothing accumulates."""

    def rows(n: int):  # noqa: ANN202
        yield ["编号", "名称", "时间", "日期", "参与率", "人数"]
        for i in range(n):
            yield [f"id-{i:08d}", "成都锦江示范机电有限公司", datetime(2026, 3, 5, 10, i % 60)]
            yield [f"id-{i:08d}b", "名", None, date(2026, 3, 5), Percent(0.5), i]

    peaks = []
    for n in (10_000, 40_000):
        with open(tmp_path / f"{n}.xlsx", "wb") as out:
            tracemalloc.start()
            write(out, "sheet", rows(n))
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.5 + 256 * 1024, peaks
    ws = load_workbook(tmp_path / "40000.xlsx", read_only=True).worksheets[0]
    assert sum(1 for _ in ws.iter_rows()) == 1 + 80_000


def _roster(client, query: str) -> tuple[dict[str, int], str]:
    r = client.get(f"/export/enterprises.xlsx?{query}")
    assert r.status_code == 200, r.data[:300]
    ws = load_workbook(io.BytesIO(r.get_data())).worksheets[0]
    name, visits = _column(ws, "企业名称"), _column(ws, "走访次数")
    rows = {row[name - 1].value: row[visits - 1].value for row in ws.iter_rows(min_row=2)}
    return rows, _names(r)


def test_the_enterprise_roster_honours_tag_and_work_group_filters(client, campaign) -> None:
    """Counted again from the fixture: canonical enterprises carrying the tag; with a work
    group, the enterprises that group visited and its visits only."""
    web_login(client, "coord")
    canonical = {k for k in fx.ENTERPRISES if k not in fx.MERGED}
    everything, _ = _roster(client, PERIOD)
    assert len(everything) == len(canonical)
    assert set(everything) == {f"测试企业{k}有限公司" for k in canonical}

    sme, name = _roster(client, f"{PERIOD}&tag=sme")
    expected = {f"测试企业{k}有限公司" for k in canonical if "sme" in fx.ENTERPRISES[k][1]}
    assert set(sme) == expected and name.endswith("-sme.xlsx"), (sme, name)
    needy, _ = _roster(client, f"{PERIOD}&tag=many_needy")
    assert set(needy) == {
        f"测试企业{k}有限公司" for k in canonical if "many_needy" in fx.ENTERPRISES[k][2]
    }

    group, name = _roster(client, f"{PERIOD}&group=WG01")
    counts: dict[str, int] = {}
    for key, v in fx.VISITS.items():
        if key in fx.DELETED or not v[8] or fx.GROUP[v[0]] != "WG01":
            continue
        ent = fx.MERGED.get(v[4], v[4])
        counts[ent] = counts.get(ent, 0) + 1
    assert group == {f"测试企业{k}有限公司": n for k, n in counts.items()}, (group, counts)
    assert "-WG01" in name
