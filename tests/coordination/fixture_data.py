"""A small campaign with known numbers, entered the way phones enter it (sync pushes).

Every expected figure in the tests is computed from the tables below in plain Python,
never by the code under test.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from tests.conftest import PASSWORD, Phone

_HASH: list[str] = []


def create_users(db_session) -> None:  # noqa: ANN001
    """The fixture's users; the password is hashed once per run (argon2 is slow on purpose)."""
    from sqlalchemy import select

    from server.auth import hash_password
    from server.models import DistrictUnit, User, WorkGroup

    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    districts = {d.code: d.id for d in db_session.scalars(select(DistrictUnit))}
    groups = {w.code: w.id for w in db_session.scalars(select(WorkGroup))}
    for username, role, district, group in USERS:
        db_session.add(
            User(
                username=username,
                display_name=username,
                role=role,
                password_hash=_HASH[0],
                district_id=districts.get(district),
                work_group_id=groups.get(group),
            )
        )
    db_session.commit()


A, B, C = "510104", "510105", "510106"  # 锦江 (WG01), 青羊 (WG02), 金牛 (WG03)
GROUP = {A: "WG01", B: "WG02", C: "WG03"}

USERS = [
    ("cadre_a", "field_cadre", A, "WG01"),
    ("cadre_a2", "field_cadre", A, "WG01"),
    ("cadre_b", "field_cadre", B, "WG02"),
    ("cadre_c", "field_cadre", C, "WG03"),
    ("head_a", "district_head", A, None),
    ("head_b", "district_head", B, None),
    ("coord", "city_coordinator", None, None),
    ("sup", "supervisor", None, None),
    ("leader_a", "group_leader", A, "WG01"),
]

# key: (district, type tags, focus tags)
ENTERPRISES = {
    "E1": (A, ["sme", "non_public"], ["many_needy"]),
    "E2": (A, ["sme"], []),
    "E2dup": (A, ["sme"], []),  # merged into E2 by "dedup" below: counts once
    "E3": (A, ["labour_intensive"], []),
    "E4": (A, ["restructured"], ["weak_union"]),
    "E5": (B, ["sme"], []),
    "E6": (B, ["difficulty"], ["labour_conflict"]),
    "E7": (C, ["sme"], []),
}
MERGED = {"E2dup": "E2"}

# key: (district, cadre, method, local day, enterprise, workers, by_group, participants, group?)
VISITS = {
    "V1": (A, "cadre_a", "symposium", "2026-03-02", "E1", 20, {"migrant": 5}, ["cadre_a2"], True),
    "V2": (A, "cadre_a", "interview", "2026-03-04", "E2", 3, {}, [], True),
    "V3": (A, "cadre_a", "symposium", "2026-03-10", "E2dup", 15, {"needy": 2}, [], True),
    "V4": (A, "cadre_a", "home_visit", "2026-03-11", "E3", 1, {"needy": 1}, [], False),
    "V5": (A, "cadre_a", "outreach", "2026-03-18", "E4", 30, {}, [], True),
    "V6": (B, "cadre_b", "symposium", "2026-03-03", "E5", 12, {}, [], True),
    "V7": (B, "cadre_b", "report", "2026-03-12", "E6", 8, {"dispatched": 3}, [], True),
    "V8": (C, "cadre_c", "symposium", "2026-03-05", "E7", 9, {}, [], True),
    "V9": (C, "cadre_c", "interview", "2026-04-20", "E7", 2, {}, [], True),
    "VDEL": (A, "cadre_a", "symposium", "2026-03-06", "E1", 99, {}, [], True),  # deleted
}
DELETED = {"VDEL"}

# (visit, category, tag, final stage)
PROBLEMS = [
    ("V1", "wages", "urgent", "enterprise"),
    ("V1", "housing", "hope", "government"),
    ("V2", "wages", "resent", "resolved"),
    ("V3", "housing", None, "enterprise"),
    ("V4", "wages", "worry", "source"),
    ("V6", "wages", "urgent", "government"),
    ("V7", "social_insurance", "worry", "closed"),
    ("V8", "safety", None, "enterprise"),
]
# (visit, amount in cents)
HOME_VISITS = [("V4", 50000), ("V4", 30000)]


@dataclass
class Campaign:
    """Ids of what was pushed, by fixture key."""

    enterprise_ids: dict[str, str] = field(default_factory=dict)
    visit_ids: dict[str, str] = field(default_factory=dict)
    problem_ids: list[str] = field(default_factory=list)
    phones: dict[str, Phone] = field(default_factory=dict)


def _push_ok(phone: Phone, mutations: list[dict]) -> None:
    r = phone.push(mutations)
    assert r.status_code == 200, r.json
    bad = [x for x in r.json["results"] if x["status"] != "applied"]
    assert not bad, bad


def build(client, db_session) -> Campaign:  # noqa: ANN001
    """Create the users and push the campaign through the sync API."""
    from server.models import Enterprise

    create_users(db_session)
    camp = Campaign()
    phones = {u: Phone(client, u) for u, role, *_ in USERS if role == "field_cadre"}
    camp.phones = phones
    owner = {A: "cadre_a", B: "cadre_b", C: "cadre_c"}
    # One batch per phone and kind, as a phone coming back online sends its queue.
    batches: dict[str, list[dict]] = defaultdict(list)
    for key, (district, types, focus) in ENTERPRISES.items():
        eid = str(uuid.uuid4())
        camp.enterprise_ids[key] = eid
        phone = phones[owner[district]]
        batches[owner[district]].append(
            phone.mutation(
                "create",
                "enterprise",
                eid,
                {
                    "name": f"测试企业{key}有限公司",
                    "district_code": district,
                    "type_tags": types,
                    "focus_tags": focus,
                },
            )
        )
    for key, (
        district,
        cadre,
        method,
        day,
        ent,
        workers,
        groups,
        extra,
        with_group,
    ) in VISITS.items():
        vid = str(uuid.uuid4())
        camp.visit_ids[key] = vid
        fields = {
            "method": method,
            "visited_at": f"{day}T10:00:00+08:00",
            "district_code": district,
            "workers_met": workers,
            "workers_by_group": groups,
            "enterprise_id": camp.enterprise_ids[ent],
            "participants": [cadre, *extra],
        }
        if with_group:
            fields["work_group_code"] = GROUP[district]
        batches[cadre].append(phones[cadre].mutation("create", "visit", vid, fields))
    for key in DELETED:
        cadre = VISITS[key][1]
        batches[cadre].append(phones[cadre].mutation("delete", "visit", camp.visit_ids[key]))
    staged: list[tuple[str, str, str]] = []
    for visit_key, category, tag, stage in PROBLEMS:
        pid = str(uuid.uuid4())
        camp.problem_ids.append(pid)
        cadre = VISITS[visit_key][1]
        batches[cadre].append(
            phones[cadre].mutation(
                "create",
                "problem",
                pid,
                {
                    "visit_id": camp.visit_ids[visit_key],
                    "category": category,
                    "description": f"{category}问题",
                    "tag": tag,
                },
            )
        )
        if stage != "enterprise":
            staged.append((cadre, pid, stage))
    for visit_key, cents in HOME_VISITS:
        district, cadre, _, day, *_ = VISITS[visit_key]
        batches[cadre].append(
            phones[cadre].mutation(
                "create",
                "home_visit",
                str(uuid.uuid4()),
                {
                    "visit_id": camp.visit_ids[visit_key],
                    "district_code": district,
                    "visited_at": f"{day}T11:00:00+08:00",
                    "worker_name": "王某某",
                    "amount_cents": cents,
                },
            )
        )
    for cadre, mutations in batches.items():
        _push_ok(phones[cadre], mutations)
    # Moving problems up the ladder needs the version the phone last saw.
    versions: dict[str, int] = {}
    for cadre in {c for c, _, _ in staged}:
        changes, _ = phones[cadre].pull_all()
        versions.update({c["id"]: c["version"] for c in changes})
    moves: dict[str, list[dict]] = defaultdict(list)
    for cadre, pid, stage in staged:
        moves[cadre].append(
            phones[cadre].mutation(
                "update",
                "problem",
                pid,
                {
                    "stage": stage,
                    "stage_note": f"转{stage}",
                    # an outcome needs what was done (and, closed, why: the note)
                    **({"resolution": "已协调处理"} if stage in ("resolved", "closed") else {}),
                },
                base_version=versions[pid],
            )
        )
    for cadre, mutations in moves.items():
        _push_ok(phones[cadre], mutations)
    # A cadre corrects a visit: an update the audit history must show.
    phone = phones["cadre_a"]
    _push_ok(phone, [phone.mutation("update", "visit", camp.visit_ids["V2"], {"workers_met": 4})])
    # What the dedup workers would do: point the duplicate at its canonical record.
    for dup, canon in MERGED.items():
        row = db_session.get(Enterprise, camp.enterprise_ids[dup])
        row.canonical_id = camp.enterprise_ids[canon]
    db_session.commit()
    return camp


def live_visits() -> dict[str, tuple]:
    return {k: v for k, v in VISITS.items() if k not in DELETED}


def workers(key: str) -> int:
    """Workers met after the correction pushed in build()."""
    return 4 if key == "V2" else VISITS[key][5]
