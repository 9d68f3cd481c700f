"""Briefing tables as an Excel workbook (opens in Excel and WPS): Chinese headers, one
sheet per table, plain values (no formulas) so every spreadsheet app shows the same: text
goes through server/spreadsheet.py, so a name that starts with `=` stays text."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from server.spreadsheet import xlsx_row
from worker.briefing.compute import CityBriefing, DistrictBriefing, DistrictFigures, labels

_HEAD_FONT = Font(bold=True, color="FFFFFF")
_HEAD_FILL = PatternFill("solid", fgColor="B71C1C")


def _sheet(wb: Workbook, title: str, header: list[str], rows: list[list[Any]]) -> None:
    ws = wb.create_sheet(title)
    ws.append(xlsx_row(ws, header))
    for cell in ws[1]:
        cell.font, cell.fill = _HEAD_FONT, _HEAD_FILL
        cell.alignment = Alignment(horizontal="center")
    for row in rows:
        ws.append(xlsx_row(ws, row))
    for i, name in enumerate(header, start=1):
        longest = max([len(str(name))] + [len(str(r[i - 1])) for r in rows if len(r) >= i])
        # CJK characters are about two columns wide.
        ws.column_dimensions[get_column_letter(i)].width = min(40, 2 * longest + 4)
    ws.freeze_panes = "A2"


def _overview_rows(f: DistrictFigures, prev: DistrictFigures) -> list[list[Any]]:
    def row(label: str, name: str, unit: str = "") -> list[Any]:
        now, before = getattr(f, name), getattr(prev, name)
        return [label, now, before, now - before, unit]

    part = f.participation
    prev_part = prev.participation
    return [
        row("走访次数", "visits", "次"),
        row("面对面接触职工", "workers_met", "人"),
        row("走访企业（去重）", "enterprises", "家"),
        row("企业类型数", "enterprise_types", "类"),
        [
            "干部参与率",
            round(part, 4) if part is not None else "",
            round(prev_part, 4) if prev_part is not None else "",
            round(part - prev_part, 4) if part is not None and prev_part is not None else "",
            "比例",
        ],
        row("参与干部", "cadres_active", "人"),
        row("干部总数", "cadres_total", "人"),
        row("收集问题", "problems_raised", "个"),
        row("解决问题", "problems_resolved", "个"),
        row("期末未解决问题", "problems_open", "个"),
        row("入户慰问", "home_visits", "户"),
        [
            "慰问金（元）",
            f.condolence_cents / 100,
            prev.condolence_cents / 100,
            (f.condolence_cents - prev.condolence_cents) / 100,
            "元",
        ],
        row("全市排名", "rank", "名"),
        row("得分", "score", "分"),
    ]


def district_workbook(b: DistrictBriefing) -> bytes:
    """One district's briefing: overview, methods, focus groups, enterprise types, problems."""
    wb = Workbook()
    wb.remove(wb.active)
    f = b.current
    _sheet(
        wb,
        "概况",
        ["指标", f"本期（{b.period.label}）", "上期", "变化", "单位"],
        _overview_rows(f, b.previous),
    )
    methods = labels("methods")
    _sheet(
        wb,
        "走访方式",
        ["走访方式", "本期次数", "上期次数"],
        [
            [methods.get(k, k), n, b.previous.visits_by_method.get(k, 0)]
            for k, n in f.visits_by_method.items()
        ],
    )
    groups = labels("focus_groups")
    _sheet(
        wb,
        "重点群体",
        ["重点群体", "接触人数", "上期人数"],
        [
            [groups.get(k, k), n, b.previous.focus_groups.get(k, 0)]
            for k, n in f.focus_groups.items()
        ],
    )
    types = labels("enterprise_type_tags")
    _sheet(
        wb,
        "企业类型",
        ["企业类型", "走访企业数"],
        [[types.get(k, k), n] for k, n in f.enterprises_by_type.items()],
    )
    cats, stages = labels("categories"), labels("stages")
    _sheet(
        wb,
        "问题类别",
        ["问题类别", "本期收集"],
        [[cats.get(k, k), n] for k, n in f.problems_by_category.items()],
    )
    _sheet(
        wb,
        "办理阶段",
        ["办理阶段", "本期收集的问题数"],
        [[stages.get(k, k), n] for k, n in f.problems_by_stage.items()],
    )
    return _save(wb)


def city_workbook(c: CityBriefing) -> bytes:
    """The city-wide table: one row per district unit."""
    wb = Workbook()
    wb.remove(wb.active)
    methods = labels("methods")
    groups = labels("focus_groups")
    header = (
        [
            "名次",
            "上期名次",
            "单位代码",
            "单位",
            "得分",
            "走访次数",
            "接触职工",
            "走访企业",
            "企业类型数",
            "参与干部",
            "干部总数",
            "干部参与率",
        ]
        + [f"{name}（次）" for name in methods.values()]
        + [f"{name}（人）" for name in groups.values()]
        + ["收集问题", "解决问题", "期末未解决", "入户慰问（户）", "慰问金（元）"]
    )
    rows = []
    for f in c.rows:
        part = f.participation
        rows.append(
            [
                f.rank,
                c.previous[f.district_id].rank,
                f.code,
                f.name,
                f.score,
                f.visits,
                f.workers_met,
                f.enterprises,
                f.enterprise_types,
                f.cadres_active,
                f.cadres_total,
                round(part, 4) if part is not None else "",
            ]
            + [f.visits_by_method.get(k, 0) for k in methods]
            + [f.focus_groups.get(k, 0) for k in groups]
            + [
                f.problems_raised,
                f.problems_resolved,
                f.problems_open,
                f.home_visits,
                f.condolence_cents / 100,
            ]
        )
    _sheet(wb, "全市汇总", header, rows)
    return _save(wb)


def _save(wb: Workbook) -> bytes:
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
