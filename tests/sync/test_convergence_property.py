"""Property: random offline edit histories of several devices, with retries, lost answers,
duplicates and reorderings, converge on every device and lose no acknowledged edit."""

from __future__ import annotations

import uuid
from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import Phone, create_user, visit_fields

FIELDS = ("notes", "materials", "consultations")
RECORDS = 3
DEVICES = 3

step = st.one_of(
    st.tuples(
        st.just("edit"),
        st.integers(0, DEVICES - 1),
        st.integers(0, RECORDS - 1),
        st.sampled_from(FIELDS),
    ),
    st.tuples(st.just("create"), st.integers(0, DEVICES - 1)),
    st.tuples(
        st.just("push"),
        st.integers(0, DEVICES - 1),
        st.integers(1, 4),
        st.sampled_from(["normal", "lose_answer", "duplicate", "reorder"]),
    ),
    st.tuples(st.just("pull"), st.integers(0, DEVICES - 1)),
)


class SimClient:
    """A phone: a mirror of server records, an outbox, a cursor."""

    def __init__(self, phone: Phone, log: dict):
        self.phone, self.log = phone, log
        self.pending: list[dict] = []
        self.known: dict[str, dict] = {}
        self.cursor: str | None = None

    def edit(self, rid: str, field: str, value) -> None:  # noqa: ANN001
        base = self.known[rid]["version"]
        m = self.phone.mutation("update", "visit", rid, {field: value}, base_version=base)
        self.pending.append(m)
        seen = self.known[rid]["data"].get(field)
        self.log["edits"][(self.phone.device_id, m["mid"])] = (rid, field, value, base, seen)

    def create(self, rid: str) -> None:
        self.pending.append(self.phone.mutation("create", "visit", rid, visit_fields()))
        self.log["creates"].add(rid)

    def _record(self, answer: dict) -> None:
        for result in answer["results"]:
            key = (self.phone.device_id, result["mid"])
            status = result["status"]
            if status == "duplicate":
                status = result["original"]["status"]
            if status == "applied" and key in self.log["edits"]:
                self.log["applied"].setdefault(key, result.get("version"))

    def push(self, size: int, mode: str, seen: bool = True) -> None:
        batch = self.pending[:size]
        if not batch:
            return
        if mode == "reorder" and len(batch) > 1:
            early = self.phone.push(batch[len(batch) // 2 :])
            assert early.status_code == 200
            self._record(early.json)
        answer = self.phone.push(batch)
        assert answer.status_code == 200, answer.json
        self._record(answer.json)  # the server applied it, even if the phone never hears
        if mode == "lose_answer":
            return
        if mode == "duplicate":
            answer = self.phone.push(batch)
            self._record(answer.json)
        last = answer.json["last_mid"]
        self.pending = [m for m in self.pending if m["mid"] > last]

    def pull(self) -> None:
        changes, self.cursor = self.phone.pull_all(self.cursor)
        for change in changes:
            if change["deleted"]:
                self.known.pop(change["id"], None)
            else:
                self.known[change["id"]] = {"version": change["version"], "data": change["data"]}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_random_histories_converge_without_losing_acknowledged_edits(client, app, steps):
    from server.extensions import db
    from server.models import Conflict, User, Visit

    if db.session.scalar(select(User).where(User.username == "p0")) is None:
        for i in range(DEVICES):
            create_user(f"p{i}", "field_cadre", "510104", "WG01")
    log = {"edits": {}, "applied": {}, "creates": set()}
    clients = [SimClient(Phone(client, f"p{i}"), log) for i in range(DEVICES)]
    seed = clients[0]
    rids = [str(uuid.uuid4()) for _ in range(RECORDS)]
    for rid in rids:
        seed.create(rid)
    seed.push(RECORDS, "normal")
    for c in clients:
        c.pull()
    values = count()

    for op in steps:
        c = clients[op[1]]
        if op[0] == "edit":
            _, _, index, field = op
            n = next(values)
            c.edit(rids[index], field, f"v{n}" if field == "notes" else n)
        elif op[0] == "create":
            rid = str(uuid.uuid4())
            c.create(rid)
        elif op[0] == "push":
            c.push(op[2], op[3])
        else:
            c.pull()

    for c in clients:  # everyone comes back online
        while c.pending:
            c.push(50, "normal")
    for c in clients:
        c.pull()

    ours = set(rids) | log["creates"]
    server = {rid: c for rid, c in clients[0].known.items() if rid in ours}
    for c in clients[1:]:
        assert {rid: v for rid, v in c.known.items() if rid in ours} == server
    # nothing doubled or lost: one row per record created
    assert db.session.scalar(
        select(func.count()).select_from(Visit).where(Visit.id.in_(ours))
    ) == len(ours)
    assert set(server) == ours

    conflicts = db.session.scalars(select(Conflict).where(Conflict.record_id.in_(ours))).all()
    for key, version in log["applied"].items():
        rid, field, value, _, seen = log["edits"][key]
        if server[rid]["data"][field] == value or value == seen:
            continue  # kept, or a no-op edit (the value was already there)
        kept = any(
            x.field == field and x.server_value == value for x in conflicts if x.record_id == rid
        )
        # overwritten knowingly: by an edit based on a version that included this one,
        # or by a later edit of the same device (it had this value on screen)
        informed = any(
            log["edits"][other][0] == rid
            and log["edits"][other][1] == field
            and (log["edits"][other][3] >= version or (other[0] == key[0] and other[1] > key[1]))
            for other in log["applied"]
            if other != key
        )
        assert kept or informed, f"acknowledged edit {field}={value!r} on {rid} was lost"
