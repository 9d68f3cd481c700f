"""Spreadsheet exports (统计汇总) of visits, problems, enterprises and the dashboard table.

Rows come from the database in batches (`yield_per`: a server-side cursor on
PostgreSQL), so memory does not grow with the number of records: CSV is streamed
straight to the client, XLSX is written by server/xlsx_stream.py (header bold, frozen and
filterable, column widths fitted to Chinese text, times and dates as date cells in
TIMEZONE, shares as percentages) to a temporary file that is then streamed. Headers are
Chinese; CSV starts with a UTF-8 BOM so that Excel and WPS open it as UTF-8. Home visits
(needy workers' personal data) are never exported: the statistics need only counts and
sums, which the dashboard gives.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, String, cast, func, or_, select
from sqlalchemy.orm import Session, aliased

from server import xlsx_stream
from server.coordination.dashboard import dashboard
from server.coordination.filters import Filters, live, visit_conditions
from server.coordination.problems import ProblemFilters
from server.models import (
    ENTERPRISE_TYPE_TAGS,
    FOCUS_GROUPS,
    PROBLEM_STAGES,
    VISIT_METHODS,
    DistrictUnit,
    Enterprise,
    Problem,
    Visit,
    WorkGroup,
)
from server.spreadsheet import Percent, csv_row
from worker.briefing.compute import labels

KINDS = ("visits", "problems", "enterprises", "dashboard")
KIND_NAMES = {
    "visits": "走访记录",
    "problems": "问题台账",
    "enterprises": "企业名录",
    "dashboard": "进度统计",
}
BATCH = 2000


def _when(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A local wall-clock time (a date cell in XLSX, `YYYY-MM-DD HH:MM` in CSV)."""
    return value.astimezone(zone).replace(tzinfo=None, microsecond=0) if value else None


def _visit_stmt(f: Filters) -> Select:
    return (
        select(
            Visit.id,
            DistrictUnit.name,
            WorkGroup.name,
            Visit.method,
            Visit.visited_at,
            Enterprise.name,
            Enterprise.uscc,
            Visit.place,
            Visit.workers_met,
            Visit.workers_by_group,
            Visit.materials,
            Visit.consultations,
            Visit.created_at,
        )
        .join(DistrictUnit, DistrictUnit.id == Visit.district_id)
        .outerjoin(WorkGroup, WorkGroup.id == Visit.work_group_id)
        .outerjoin(Enterprise, Enterprise.id == Visit.enterprise_id)
        .where(*visit_conditions(f))
        .order_by(Visit.visited_at, Visit.id)
    )


def visit_rows(session: Session, f: Filters) -> Iterator[list[Any]]:
    """The visits under the filters: a header row, then one row per visit."""
    methods, places = (
        labels("methods"),
        {
            "enterprise": "企业",
            "workshop": "车间",
            "team": "班组",
            "living": "生活休闲场所",
            "other": "其他",
        },
    )
    focus = labels("focus_groups")
    zone = ZoneInfo(f.tz)
    yield [
        "记录编号",
        "区(市)县",
        "工作组",
        "走访方式",
        "走访时间",
        "企业名称",
        "统一社会信用代码",
        "走访地点",
        "面对面职工数",
        *(focus[g] for g in FOCUS_GROUPS),
        "发放宣传材料(份)",
        "政策法规咨询(人次)",
        "录入时间",
    ]
    for r in session.execute(_visit_stmt(f).execution_options(yield_per=BATCH)):
        groups = r[9] or {}
        yield [
            r[0],
            r[1],
            r[2] or "",
            methods.get(r[3], r[3]),
            _when(r[4], zone),
            r[5] or "",
            r[6] or "",
            places.get(r[7], r[7] or ""),
            r[8],
            *(int(groups.get(g, 0)) for g in FOCUS_GROUPS),
            r[10],
            r[11],
            _when(r[12], zone),
        ]


def _problem_stmt(pf: ProblemFilters, raised: tuple[datetime, datetime] | None = None) -> Select:
    """The tracker's problems under its filters; `raised`: [start, end) of the time the
    problem was raised (its visit's time, else when it was recorded)."""
    conds = live(Problem)
    raised_at = func.coalesce(Visit.visited_at, Problem.created_at)
    if raised is not None:
        conds += [raised_at >= raised[0], raised_at < raised[1]]
    if pf.district_ids is not None:
        conds.append(Problem.district_id.in_(sorted(pf.district_ids)))
    for attr, column in (
        ("district_id", Problem.district_id),
        ("category", Problem.category),
        ("tag", Problem.tag),
    ):
        if getattr(pf, attr):
            conds.append(column == getattr(pf, attr))
    if pf.stage == "open":
        conds.append(Problem.stage.in_(PROBLEM_STAGES[:3]))
    elif pf.stage:
        conds.append(Problem.stage == pf.stage)
    return (
        select(
            Problem.id,
            DistrictUnit.name,
            Enterprise.name,
            Problem.category,
            Problem.tag,
            Problem.description,
            Problem.stage,
            Problem.stage_note,
            Problem.resolution,
            raised_at,
            Problem.resolved_at,
            Problem.visit_id,
        )
        .join(DistrictUnit, DistrictUnit.id == Problem.district_id)
        .outerjoin(Visit, Visit.id == Problem.visit_id)
        .outerjoin(Enterprise, Enterprise.id == Visit.enterprise_id)
        .where(*conds)
        .order_by(Problem.created_at, Problem.id)
    )


def problem_rows(
    session: Session,
    pf: ProblemFilters,
    tz: str,
    raised: tuple[datetime, datetime] | None = None,
) -> Iterator[list[Any]]:
    """Every problem under the tracker's filters (scope included), raised in `raised`."""
    cats, tags, stages = labels("categories"), labels("problem_tags"), labels("stages")
    zone = ZoneInfo(tz)
    yield [
        "问题编号",
        "区(市)县",
        "企业名称",
        "问题类别",
        "最盼/最急/最忧/最怨",
        "问题描述",
        "处理阶段",
        "阶段说明",
        "处理结果",
        "提出时间",
        "解决/关闭时间",
        "走访记录编号",
    ]
    stmt = _problem_stmt(pf, raised).execution_options(yield_per=BATCH)
    from worker.briefing.compute import _as_datetime

    for r in session.execute(stmt):
        yield [
            r[0],
            r[1],
            r[2] or "",
            cats.get(r[3], r[3]),
            tags.get(r[4], r[4] or ""),
            r[5],
            stages.get(r[6], r[6]),
            r[7] or "",
            r[8] or "",
            _when(_as_datetime(r[9]) if r[9] else None, zone),
            _when(r[10], zone),
            r[11],
        ]


def _enterprise_stmt(
    district_ids: frozenset[int] | None,
    tags: tuple[str, ...] = (),
    work_group_id: int | None = None,
) -> Select:
    """The roster: canonical enterprises in scope carrying one of `tags` (any when none);
    with `work_group_id`, those the group visited, counting its visits only."""
    ent = aliased(Enterprise)
    visit_conds = list(live(Visit))
    if work_group_id is not None:
        visit_conds.append(Visit.work_group_id == work_group_id)
    visits = (
        select(func.coalesce(ent.canonical_id, ent.id).label("eid"), func.count().label("n"))
        .join(Visit, Visit.enterprise_id == ent.id)
        .where(*visit_conds)
        .group_by(func.coalesce(ent.canonical_id, ent.id))
        .subquery()
    )
    stmt = (
        select(
            Enterprise.id,
            Enterprise.name,
            Enterprise.uscc,
            Enterprise.uscc_valid,
            DistrictUnit.name,
            Enterprise.address,
            Enterprise.type_tags,
            Enterprise.focus_tags,
            Enterprise.head_count,
            Enterprise.has_union,
            func.coalesce(visits.c.n, 0),
            Enterprise.created_at,
        )
        .join(DistrictUnit, DistrictUnit.id == Enterprise.district_id)
        .outerjoin(visits, visits.c.eid == Enterprise.id)
        .where(*live(Enterprise))
        .order_by(DistrictUnit.code, Enterprise.name, Enterprise.id)
    )
    if district_ids is not None:
        stmt = stmt.where(Enterprise.district_id.in_(sorted(district_ids)))
    if tags:
        # Fixed vocabulary codes: the quoted code in the JSON text matches exactly, the
        # same on SQLite and PostgreSQL (as filters.tag_condition).
        def column(tag: str) -> Any:
            return Enterprise.type_tags if tag in ENTERPRISE_TYPE_TAGS else Enterprise.focus_tags

        stmt = stmt.where(or_(*(cast(column(t), String).like(f'%"{t}"%') for t in tags)))
    if work_group_id is not None:
        stmt = stmt.where(visits.c.n > 0)
    return stmt


def enterprise_rows(
    session: Session,
    district_ids: frozenset[int] | None,
    tz: str,
    tags: tuple[str, ...] = (),
    work_group_id: int | None = None,
) -> Iterator[list[Any]]:
    """Canonical enterprises in scope, with how often they were visited."""
    types, focus = labels("enterprise_type_tags"), labels("enterprise_focus_tags")
    zone = ZoneInfo(tz)
    yield [
        "企业编号",
        "企业名称",
        "统一社会信用代码",
        "代码校验",
        "区(市)县",
        "地址",
        "企业类型",
        "重点企业类型",
        "职工人数",
        "是否建立工会",
        "走访次数",
        "录入时间",
    ]
    stmt = _enterprise_stmt(district_ids, tags, work_group_id).execution_options(yield_per=BATCH)
    yes_no = {True: "是", False: "否", None: ""}
    for r in session.execute(stmt):
        yield [
            r[0],
            r[1],
            r[2] or "",
            ("有效" if r[3] else "无效") if r[2] else "",
            r[4],
            r[5] or "",
            "、".join(types.get(t, t) for t in r[6] or []),
            "、".join(focus.get(t, t) for t in r[7] or []),
            r[8] if r[8] is not None else "",
            yes_no[r[9]],
            r[10],
            _when(r[11], zone),
        ]


def dashboard_rows(session: Session, f: Filters) -> Iterator[list[Any]]:
    """The dashboard table as rows (districts in code order, then the total)."""
    methods, stages = labels("methods"), labels("stages")
    yield [
        "区(市)县代码",
        "区(市)县",
        "走访次数",
        "走访企业数",
        "企业类型数",
        "面对面职工数",
        "参与干部数",
        "干部总数",
        "干部参与率",
        *(methods[m] for m in VISIT_METHODS),
        "发现问题数",
        *(stages[s] for s in PROBLEM_STAGES),
        "期末未解决",
        "本期解决",
        "入户慰问(户)",
        "慰问金(元)",
        "进度得分",
    ]
    data = dashboard(session, f)
    total = data["total"]
    for r in [*data["rows"], total] if data["rows"] else []:
        part = r.get("participation")
        yield [
            r["code"],
            r["name"],
            r["visits"],
            r["enterprises"],
            # How many of the enterprise types a district reached; the total row: how
            # many the city reached (server/coordination/dashboard.py), not a sum.
            r["enterprise_types"],
            r["workers_met"],
            r["cadres_active"],
            r["cadres_total"],
            None if part is None else Percent(part),
            *(r[f"method_{m}"] for m in VISIT_METHODS),
            r["problems_raised"],
            *(r[f"stage_{s}"] for s in PROBLEM_STAGES),
            r["problems_open"],
            r["problems_resolved"],
            r["home_visits"],
            round(r["condolence_cents"] / 100, 2),
            r.get("score", ""),
        ]


def csv_stream(rows: Iterator[list[Any]], lines_per_chunk: int = 500) -> Iterator[bytes]:
    """CSV bytes in chunks, starting with the UTF-8 BOM; text that could start a formula
    gets an apostrophe first (server/spreadsheet.py)."""
    yield "\ufeff".encode()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for i, row in enumerate(rows, start=1):
        writer.writerow(csv_row(row))
        if i % lines_per_chunk == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def write_xlsx(rows: Iterator[list[Any]], title: str) -> IO[bytes]:
    """A workbook of the rows (the first is the header) in an anonymous temporary file,
    rewound. Each row goes to disk as it comes, so memory stays flat however many rows.
    Text is stored as text, never as a formula (server/xlsx_stream.py).
    """
    tmp = tempfile.TemporaryFile(suffix=".xlsx")
    try:
        xlsx_stream.write(tmp, title, rows)
    except BaseException:
        tmp.close()
        raise
    tmp.seek(0)
    return tmp


def file_chunks(handle: IO[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    """Read a file in chunks and close it at the end (the temporary file disappears)."""
    try:
        while chunk := handle.read(size):
            yield chunk
    finally:
        handle.close()


def count_rows(session: Session, kind: str, f: Filters, pf: ProblemFilters | None = None) -> int:
    """How many data rows an export of `kind` would hold (the dashboard's: a few)."""
    if kind == "visits":
        stmt = _visit_stmt(f)
    elif kind == "problems":
        stmt = _problem_stmt(pf or ProblemFilters(district_ids=f.district_ids), f.bounds())
    elif kind == "enterprises":
        stmt = _enterprise_stmt(f.district_ids, f.tags, f.work_group_id)
    else:
        return 0
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))


def export_rows(
    session: Session, kind: str, f: Filters, pf: ProblemFilters | None = None
) -> Iterator[list[Any]]:
    """The rows of one export kind."""
    if kind == "visits":
        return visit_rows(session, f)
    if kind == "problems":
        pf = pf or ProblemFilters(district_ids=f.district_ids)
        return problem_rows(session, pf, f.tz, f.bounds())
    if kind == "enterprises":
        return enterprise_rows(session, f.district_ids, f.tz, f.tags, f.work_group_id)
    if kind == "dashboard":
        return dashboard_rows(session, f)
    raise ValueError(f"export kind {kind!r}: expected one of {', '.join(KINDS)}")
