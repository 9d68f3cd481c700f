"""dedup keys of home visits: the phone and the name's sound as keyed hashes (issue 13)

Before this, `dedup_keys` kept a needy worker's phone number ("p:+8613...") and the
pinyin of their name ("n:wangxiaomei|3") in clear. Both are rewritten as HMACs with
ID_HASH_KEY (worker.dedup_jobs.home_visit_keys), so equal phones still share a key.

Revision ID: 0016_dedup_keys_hashed
Revises: 0014_merge_heads
"""

import hashlib
import hmac
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0016_dedup_keys_hashed"
down_revision = "0014_merge_heads"
branch_labels = None
depends_on = None

_keys = sa.table("dedup_keys", sa.column("entity"), sa.column("key"), sa.column("record_id"))
_homes = sa.table(
    "home_visits",
    sa.column("id"),
    sa.column("phone"),
    sa.column("worker_name"),
    sa.column("district_id"),
    sa.column("deleted"),
)


# The hashing as server/identifiers.py and worker/dedup_jobs.py had it at this revision
# (kept here so later changes to them cannot change what this migration wrote).
def _keyed_hash(purpose, value, key):
    return hmac.new(key.encode(), f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def _phone_normalise(phone):
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone or ""))
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix) :]
    return "+86" + digits if re.fullmatch(r"1[3-9]\d{9}", digits) else ""


def _pinyin(name):
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin("".join(name.split()))).lower()


def _clear_keys(conn):
    """(record_id) of home visits whose phone or name key is still in clear."""
    rows = conn.execute(
        sa.select(_keys.c.record_id, _keys.c.key).where(_keys.c.entity == "home_visit")
    ).all()
    return sorted({rid for rid, key in rows if key.startswith(("p:", "n:")) and not _hashed(key)})


def _hashed(key):
    return bool(re.fullmatch(r"[pn]:[0-9a-f]{64}", key))


def upgrade():
    from flask import current_app

    secret = current_app.config["FV"].ID_HASH_KEY
    conn = op.get_bind()
    ids = _clear_keys(conn)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        conn.execute(
            _keys.delete().where(
                _keys.c.entity == "home_visit",
                _keys.c.record_id.in_(chunk),
                _keys.c.key.like("p:%") | _keys.c.key.like("n:%"),
            )
        )
        new = []
        for rid, phone, name, district_id, deleted in conn.execute(
            sa.select(
                _homes.c.id,
                _homes.c.phone,
                _homes.c.worker_name,
                _homes.c.district_id,
                _homes.c.deleted,
            ).where(_homes.c.id.in_(chunk))
        ):
            if deleted:
                continue
            keys = set()
            if phone:
                keys.add("p:" + _keyed_hash("phone", _phone_normalise(phone) or phone, secret))
            if name:
                keys.add("n:" + _keyed_hash("name", f"{_pinyin(name)}|{district_id}", secret))
            new += [{"entity": "home_visit", "key": k, "record_id": rid} for k in keys]
        if new:
            conn.execute(_keys.insert(), new)


def downgrade():
    # Hashes cannot be turned back into phones: the old code's next full dedup pass
    # writes its clear keys again.
    op.get_bind().execute(
        _keys.delete().where(
            _keys.c.entity == "home_visit",
            _keys.c.key.like("p:%") | _keys.c.key.like("n:%"),
        )
    )
