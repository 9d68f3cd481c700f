"""Dedup keys keep no needy worker's phone or name in clear (issue 13, item 3).

A home visit's blocking keys for the phone and the name's sound are keyed hashes
(HMAC with ID_HASH_KEY): two records with one phone still meet in review, and nothing
in the dedup tables reads as a phone number or a name. Migration 0016 rewrites the
clear keys older code wrote. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from tests.conftest import Phone, create_user, make_app, scratch_pg_database

PHONE = "13812345678"


def new_id() -> str:
    return str(uuid.uuid4())


def drain() -> int:
    import worker.dedup_jobs  # noqa: F401  (registers the handler)
    from server.extensions import db
    from worker.outbox import drain as drain_rows

    return drain_rows(db.session)


def _dedup_tables_text(db) -> str:  # noqa: ANN001
    """Every value of every column of the dedup tables, as one text."""
    from server.models_dedup import DedupKey, MergeLink, ReviewCandidate

    out = []
    for model in (DedupKey, MergeLink, ReviewCandidate):
        for row in db.session.execute(select(model.__table__)).all():
            out.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(out)


def test_a_shared_phone_still_pairs_home_visits_and_is_stored_hashed(client):
    from server.extensions import db
    from server.models_dedup import DedupKey, ReviewCandidate

    create_user("cadre1", "field_cadre", "510104", "WG01")
    create_user("cadre2", "field_cadre", "510104", "WG01")
    p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
    h1, h2, h3 = new_id(), new_id(), new_id()
    base = {"district_code": "510104", "visited_at": "2026-03-05T10:00:00+08:00"}
    # Names of other sounds (wangxiaomei, wangxiaohong): only the phone key links them.
    r = p1.push(
        [
            p1.mutation(
                "create", "home_visit", h1, {**base, "worker_name": "王小梅", "phone": PHONE}
            ),
            # another worker, another phone: never paired with the others
            p1.mutation(
                "create",
                "home_visit",
                h3,
                {**base, "worker_name": "李大山", "phone": "13900001111"},
            ),
        ]
    )
    assert [x["status"] for x in r.json["results"]] == ["applied", "applied"], r.json
    r = p2.push(
        [
            p2.mutation(
                "create",
                "home_visit",
                h2,
                # typed another way: the key is of the normalised number
                {**base, "worker_name": "王小红", "phone": "+86 138-1234-5678"},
            )
        ]
    )
    assert r.json["results"][0]["status"] == "applied", r.json
    assert drain() >= 2

    pair = db.session.scalars(
        select(ReviewCandidate).where(ReviewCandidate.entity == "home_visit")
    ).all()
    assert [(c.a_id, c.b_id) for c in pair] == [tuple(sorted((h1, h2)))]
    assert pair[0].features["phone"] == "equal"

    keys = db.session.scalars(select(DedupKey.key).where(DedupKey.entity == "home_visit")).all()
    phone_keys = [k for k in keys if k.startswith("p:")]
    assert len(phone_keys) == 3 and len(set(phone_keys)) == 2  # h1 and h2 share one
    for key in keys:
        assert key[:2] in ("p:", "n:", "h:") and len(key) == 66, key
    stored = _dedup_tables_text(db)
    for clear in (PHONE, "+86" + PHONE, "13900001111", "1234", "wangxiaomei", "lidashan", "王"):
        assert clear not in stored, clear


def test_the_key_is_keyed(app):
    """The hash needs ID_HASH_KEY: another key, other hashes (no lookup table of all
    1.6 billion mainland numbers works without it)."""
    from server.identifiers import keyed_hash
    from worker.dedup_jobs import phone_key

    a = phone_key("+86" + PHONE, "key-one-0123456789abcdef")
    assert a == phone_key("138 1234 5678", "key-one-0123456789abcdef")
    assert a != phone_key("+86" + PHONE, "key-two-0123456789abcdef")
    assert a != keyed_hash("name", "+86" + PHONE, "key-one-0123456789abcdef")


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
    else:
        with scratch_pg_database("fv_dedupkeys") as url:
            yield url


def test_migration_rewrites_clear_keys_as_hashes(scratch_url, tmp_path):
    """Keys as the code before 0016 wrote them ("p:+8613...", "n:pinyin|district") are
    rewritten; a deleted record's go; the rewritten keys are those the worker now makes."""
    from flask_migrate import upgrade

    app = make_app(scratch_url, tmp_path, ID_HASH_KEY="migration-test-key-7f3a9c2e")
    with app.app_context():
        from server.extensions import db
        from server.reference import load_reference

        directory = app.extensions["migrate"].directory
        upgrade(directory=directory, revision="0014_merge_heads")
        load_reference(db.session)
        db.session.commit()
        district = db.session.scalar(sa.text("SELECT id FROM district_units WHERE code='510104'"))
        now = datetime(2026, 3, 5, 2, 0, tzinfo=UTC)
        live, gone = new_id(), new_id()
        for rid, deleted in ((live, False), (gone, True)):
            db.session.execute(
                sa.text(
                    "INSERT INTO home_visits (id, version, deleted, district_id, field_versions,"
                    " created_at, updated_at, visited_at, worker_name, phone, amount_cents)"
                    " VALUES (:id, 1, :deleted, :d, '{}', :t, :t, :t, '王小梅', :p, 0)"
                ),
                {"id": rid, "deleted": deleted, "d": district, "t": now, "p": "+86" + PHONE},
            )
            for key in ("p:+86" + PHONE, f"n:wangxiaomei|{district}", "h:" + "ab" * 32):
                db.session.execute(
                    sa.text("INSERT INTO dedup_keys (entity, key, record_id) VALUES (:e, :k, :r)"),
                    {"e": "home_visit", "k": key, "r": rid},
                )
        db.session.commit()

        upgrade(directory=directory, revision="0016_dedup_keys_hashed")

        from worker.dedup_jobs import home_visit_keys

        rows = db.session.execute(
            sa.text("SELECT record_id, key FROM dedup_keys ORDER BY record_id, key")
        ).all()
        # the row as a plain object: the ORM model has columns of later revisions
        record = db.session.execute(
            sa.text(
                "SELECT id, id_hash, phone, worker_name, district_id FROM home_visits"
                " WHERE id = :id"
            ),
            {"id": live},
        ).one()
        expected = home_visit_keys(
            SimpleNamespace(**record._mapping), "migration-test-key-7f3a9c2e"
        )
        assert sorted(k for r, k in rows if r == live) == sorted([*expected, "h:" + "ab" * 32])
        assert {k[:2] for k in expected} == {"p:", "n:"}
        # the deleted record keeps only its (already hashed) ID key; the worker drops it
        assert [k for r, k in rows if r == gone] == ["h:" + "ab" * 32]
        text = json.dumps([list(map(str, r)) for r in rows])
        assert PHONE not in text and "wangxiaomei" not in text
        db.session.remove()
        db.engine.dispose()
