"""Blocking keys of long names never collide (issue 11: a 61-character enterprise name
failed the dedup handler on pk_dedup_keys and poisoned its outbox row for ever)."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import Phone, create_user

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
NAMES = st.text(CJK | st.sampled_from("()（）有限公司 ABC123"), min_size=2, max_size=200)


def test_stored_keys_are_distinct_when_keys_are():
    from worker.dedup_jobs import KEY_MAX, stored_key

    base = "机" * 250
    keys = {base + "甲", base + "乙", base[:150]}
    stored = {stored_key(k) for k in keys}
    assert len(stored) == 3 and all(len(k) <= KEY_MAX for k in stored)
    assert stored_key(base[:150]) == base[:150]


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(names=st.lists(NAMES.filter(lambda n: len(n.strip()) >= 2), min_size=1, max_size=4))
def test_long_names_are_deduplicated_and_leave_no_pending_row(app, names):
    import worker.dedup_jobs  # noqa: F401  (registers the handler)
    from server.extensions import db
    from server.models import OutboxMessage, User
    from worker.outbox import drain

    client = app.test_client()
    if db.session.scalar(select(func.count()).select_from(User)) == 0:
        create_user("cadre1", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre1")
    r = phone.push(
        [
            phone.mutation(
                "create", "enterprise", str(uuid.uuid4()), {"name": n, "district_code": "510104"}
            )
            for n in names
        ]
    )
    assert r.status_code == 200 and all(x["status"] == "applied" for x in r.json["results"])
    drain(db.session)
    failed = db.session.scalars(select(OutboxMessage).where(OutboxMessage.done_at.is_(None))).all()
    assert failed == [], [f.last_error for f in failed]
