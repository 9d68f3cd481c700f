"""The dedup workers' jobs: match newly synced records and merge or queue the duplicates.

Entry points:
- `handle_dedup`, the outbox handler for topic "dedup" (payload {"records": [[entity,
  id], ...]}), run by `worker.outbox.drain` in the transaction that marks the row done;
- `full_pass`, the scheduled pass over every record (task worker.tasks.dedup_full_pass).

Per entity (docs/dedup.md):
- enterprises: the matching engine in worker/dedup decides (a valid credit code decides,
  otherwise name, district, address and head count); certain pairs merge, uncertain ones
  go to review. Candidates come from the `dedup_keys` table, so a pass costs tens of
  comparisons per record, not a scan;
- visits: records of one meeting by different cadres (one work group, canonical
  enterprise and method, times within DEDUP_VISIT_WINDOW_MINUTES) merge automatically;
  one cadre's two entries only when their content is the same;
- home visits: never merged automatically; every match (the ID hash, or name + phone +
  district) goes to review.

Two workers must not make the same merge twice: each job takes a lock per blocking key
(a transaction-scoped advisory lock on PostgreSQL; on SQLite an early write takes the
database's single write lock), and the unique index on active merge links and on review
pairs refuses a duplicate that slipped through anyway.
"""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from pypinyin import lazy_pinyin
from rapidfuzz.distance import Indel
from sqlalchemy import delete, func, insert, or_, select, text
from sqlalchemy.orm import Session, scoped_session

from server.identifiers import keyed_hash, phone_normalise
from server.models import DistrictUnit, Enterprise, HomeVisit, OutboxMessage, Visit
from server.models_dedup import DedupKey
from worker.dedup import DedupIndex, DedupThresholds, blocking_keys, prepare
from worker.merges import (
    choose_canonical,
    cluster_ids,
    enterprise_cluster_ids,
    is_rejected,
    members_of,
    merge,
    obsolete_reviews_of,
    propose_review,
    recompute_visit,
    root_of,
    undo_merge,
)
from worker.outbox import handler

log = logging.getLogger(__name__)

# Two records of one home visit can carry dates a little apart (entered late, wrong day
# picked); beyond this they are different visits to the same worker, not duplicates.
HOME_VISIT_WINDOW_DAYS = 3
# Visits (docs/dedup.md): one meeting recorded by two cadres; one cadre's entry twice.
VISIT_RULE_MEETING = "same_meeting_other_cadre"
VISIT_RULE_ENTRY = "same_entry_same_cadre"


class DedupContext:
    """What a dedup run needs besides the session: thresholds, time zone, district codes."""

    def __init__(
        self,
        thresholds: DedupThresholds,
        timezone: str = "Asia/Shanghai",
        visit_window_minutes: int = 120,
    ) -> None:
        self.th = thresholds
        self.tz = ZoneInfo(timezone)
        self.visit_window = timedelta(minutes=visit_window_minutes)
        self._districts: dict[int, str] | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> DedupContext:
        """Thresholds from DEDUP_AUTO_THRESHOLD / DEDUP_REVIEW_THRESHOLD, zone from TIMEZONE,
        the visit window from DEDUP_VISIT_WINDOW_MINUTES."""
        th = DedupThresholds(
            auto=float(settings.DEDUP_AUTO_THRESHOLD), review=float(settings.DEDUP_REVIEW_THRESHOLD)
        )
        return cls(th, settings.TIMEZONE, int(settings.DEDUP_VISIT_WINDOW_MINUTES))

    @classmethod
    def from_app(cls) -> DedupContext:
        """From the current Flask app's settings (inside an app context)."""
        from flask import current_app

        return cls.from_settings(current_app.config["FV"])

    def district_code(self, session: Session, district_id: int | None) -> str:
        if self._districts is None:
            self._districts = dict(
                session.execute(select(DistrictUnit.id, DistrictUnit.code)).all()
            )
        return self._districts.get(district_id, "") if district_id is not None else ""

    @cached_property
    def id_hash_key(self) -> str:
        """ID_HASH_KEY of the current app: a needy worker's phone and name are kept in
        dedup_keys only as its HMAC, like ID numbers."""
        from flask import current_app

        return current_app.config["FV"].ID_HASH_KEY


# --- serialising concurrent workers ---------------------------------------------------


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class LockBusy(Exception):  # noqa: N818 - a state, not a programming error
    """A record's lock is held by another worker while this transaction already holds
    locks of its own: waiting could deadlock, so the record is tried again later."""


_PRELOCKED = "fieldvisit.dedup_prelocked"


def _plain(session: Session) -> Session:
    """The Session behind Flask-SQLAlchemy's scoped_session (it holds info and the
    transaction)."""
    return session() if isinstance(session, scoped_session) else session


def lock_keys(session: Session, keys: Iterable[str]) -> None:
    """Hold a lock per blocking key until the transaction ends.

    Deadlock-free by order: a transaction waits for locks only before it writes, all
    at once and sorted (`lock_records`); once it holds locks, a further key is only
    tried, and a busy one raises LockBusy instead of waiting (a worker waiting on a key
    while holding the version counter's row lock after a merge was the deadlock).
    """
    keys = sorted(set(keys))
    if session.get_bind().dialect.name == "postgresql":
        plain = _plain(session)
        if plain.info.get(_PRELOCKED) is plain.get_transaction() is not None:
            for key in keys:
                if not session.scalar(select(func.pg_try_advisory_xact_lock(_lock_id(key)))):
                    raise LockBusy(key.split(":", 1)[0])
            return
        for key in keys:
            session.execute(select(func.pg_advisory_xact_lock(_lock_id(key))))
    else:
        # SQLite has one writer at a time: writing first takes that lock now, before any
        # read, so no other worker can change the candidates between our read and write.
        session.execute(text("UPDATE sync_state SET id = id WHERE id = 0"))


def record_lock_names(
    session: Session, ctx: DedupContext, entity: str, record_id: str
) -> list[str]:
    """The lock names the job for one record takes (computed from the record as it is)."""
    if entity == "enterprise":
        e = session.get(Enterprise, record_id)
        if e is None:
            return []
        keys = blocking_keys(prepare(enterprise_record(session, ctx, e)))
        return ["enterprise:" + k for k in keys]
    if entity == "visit":
        v = session.get(Visit, record_id)
        ident = _visit_identity(session, ctx, v) if v is not None else None
        return ["visit:" + "|".join(map(str, ident))] if ident is not None else []
    if entity == "home_visit":
        h = session.get(HomeVisit, record_id)
        if h is None:
            return []
        return ["home_visit:" + k for k in home_visit_keys(h, ctx.id_hash_key)]
    return []


def lock_records(session: Session, ctx: DedupContext, records: Iterable[tuple[str, str]]) -> None:
    """Take the locks of every record a transaction will dedup, sorted, in one pass and
    before it writes anything; the jobs' own lock_keys calls then only try."""
    names: set[str] = set()
    for entity, rid in records:
        names.update(record_lock_names(session, ctx, entity, rid))
    lock_keys(session, names)
    plain = _plain(session)
    plain.info[_PRELOCKED] = plain.get_transaction()


KEY_MAX = 200  # the dedup_keys.key column


def stored_key(key: str) -> str:
    """A blocking key as the 200-character column keeps it: a longer key is cut and
    ends with a hash of the whole, so two long keys that differ after the cut stay two
    keys (cutting alone made them collide on pk_dedup_keys and poisoned the outbox)."""
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).hexdigest()
    return f"{key[: KEY_MAX - 17]}~{digest}"


def _store_keys(session: Session, entity: str, record_id: str, keys: list[str]) -> None:
    session.execute(
        delete(DedupKey).where(DedupKey.entity == entity, DedupKey.record_id == record_id)
    )
    if keys:
        session.execute(
            insert(DedupKey),
            [
                {"entity": entity, "key": k, "record_id": record_id}
                for k in {stored_key(k) for k in keys}
            ],
        )


def _drop_keys(session: Session, entity: str, record_id: str) -> None:
    session.execute(
        delete(DedupKey).where(DedupKey.entity == entity, DedupKey.record_id == record_id)
    )


def _candidate_ids(
    session: Session, entity: str, keys: list[str], exclude: str, limit: int
) -> list[str]:
    if not keys:
        return []
    rows = session.scalars(
        select(DedupKey.record_id)
        .where(
            DedupKey.entity == entity,
            DedupKey.key.in_([stored_key(k) for k in keys]),
            DedupKey.record_id != exclude,
        )
        .distinct()
        .limit(limit)
    ).all()
    return list(rows)


def _release_deleted(session: Session, ctx: DedupContext, entity: str, record: Any) -> str:
    """A deleted record stops counting: its members are freed and matched again."""
    _drop_keys(session, entity, record.id)
    obsolete_reviews_of(session, entity, record.id)
    from server.models_dedup import LINK_ACTIVE, MergeLink

    links = session.scalars(
        select(MergeLink)
        .where(
            MergeLink.entity == entity,
            MergeLink.canonical_id == record.id,
            MergeLink.status == LINK_ACTIVE,
        )
        .order_by(MergeLink.id)
    ).all()
    freed = [link.record_id for link in links]
    for link in links:
        undo_merge(session, link.id, reason="canonical record deleted", remember=False)
    if entity == "visit" and record.canonical_id:
        root = root_of(session, "visit", record.canonical_id)
        if root is not None:
            recompute_visit(session, root)  # a deleted report no longer counts
    for rid in freed:
        dedup_one(session, ctx, entity, rid)
    return "deleted"


# --- enterprises --------------------------------------------------------------------------


def enterprise_record(session: Session, ctx: DedupContext, e: Enterprise) -> dict[str, Any]:
    """An enterprise row in the engine's record shape."""
    return {
        "record_id": e.id,
        "name": e.name,
        "district": ctx.district_code(session, e.district_id),
        "uscc": e.uscc or "",
        "address": e.address or "",
        "headcount": e.head_count,
    }


def dedup_enterprise(session: Session, ctx: DedupContext, enterprise_id: str) -> str:
    """Match one enterprise against its blocking-key candidates; merge, queue or leave it."""
    e = session.get(Enterprise, enterprise_id)
    if e is None:
        return "missing"
    record = enterprise_record(session, ctx, e)
    keys = blocking_keys(prepare(record))
    lock_keys(session, ["enterprise:" + k for k in keys])
    if e.deleted:
        return _release_deleted(session, ctx, "enterprise", e)
    _store_keys(session, "enterprise", e.id, keys)
    if e.canonical_id:
        return "already_merged"

    ids = _candidate_ids(session, "enterprise", keys, e.id, ctx.th.max_candidates)
    cands = (
        [
            c
            for c in session.scalars(select(Enterprise).where(Enterprise.id.in_(ids)))
            if not c.deleted and c.canonical_id != e.id
        ]
        if ids
        else []
    )
    if not cands:
        return "new"
    # The neighbourhood the batch would see (DedupIndex.match): the candidates and every
    # live member of their clusters, in arrival order (the full pass's and a CSV's order).
    root_ids = {c.canonical_id or c.id for c in cands}
    hood = session.scalars(
        select(Enterprise)
        .where(or_(Enterprise.id.in_(root_ids), Enterprise.canonical_id.in_(root_ids)))
        .order_by(Enterprise.created_at, Enterprise.id)
    )
    index = DedupIndex(ctx.th)
    for r in hood:
        if not r.deleted and r.id != e.id:
            index.add(enterprise_record(session, ctx, r), r.canonical_id or r.id)
    decision = index.match(record)

    if decision.action == "attach":
        target = session.get(Enterprise, decision.cluster_id)
        mine = cluster_ids(session, "enterprise", e.id)
        theirs = cluster_ids(session, "enterprise", target.id)
        if is_rejected(session, "enterprise", mine, theirs):
            return "rejected_before"
        canonical, dup = choose_canonical("enterprise", target, e)
        features = {
            **decision.features,
            "candidate": decision.candidate_id,
            "candidates_scored": decision.candidates_scored,
        }
        merge(
            session,
            "enterprise",
            dup.id,
            canonical.id,
            rule=decision.rule,
            score=round(decision.score, 4),
            features=features,
        )
        # Visits of the two enterprises may now be one visit.
        for vid in session.scalars(
            select(Visit.id).where(
                Visit.enterprise_id.in_(mine + theirs),
                Visit.deleted.is_(False),
                Visit.canonical_id.is_(None),
            )
        ).all():
            dedup_visit(session, ctx, vid)
    if decision.review:  # the pairs the batch would list (beside an attach too)
        queued = 0
        mine_now = root_of(session, "enterprise", e.id) or e
        for ps in decision.review:
            other = root_of(session, "enterprise", ps.b)
            if other is None or other.id == mine_now.id:
                continue
            propose_review(
                session,
                "enterprise",
                e.id,
                ps.b,
                ps.score,
                ps.rule,
                {**ps.features, "decision": ps.decision},
            )
            queued += 1
        if decision.action == "review":
            return "review" if queued else "new"
    return "merged" if decision.action == "attach" else "new"


# --- visits -------------------------------------------------------------------------------


def _visit_identity(session: Session, ctx: DedupContext, v: Visit) -> tuple | None:
    """(work group, canonical enterprise or district, method), or None.

    Without a work group, or without an enterprise (except hearing a district's report,
    where the district is the counterpart), two records cannot be told to be one visit.
    The time is compared pair by pair (the window crosses midnight), not part of the key.
    """
    if v.work_group_id is None or v.visited_at is None:
        return None
    if v.enterprise_id:
        ent = root_of(session, "enterprise", v.enterprise_id)
        where = "e:" + (ent.id if ent is not None else v.enterprise_id)
    elif v.method == "report":
        where = f"d:{v.district_id}"
    else:
        return None
    return (v.work_group_id, where, v.method)


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def normalize_notes(notes: str | None) -> str:
    """Notes as compared: NFKC (full-width → half-width), case folded, without spaces,
    punctuation or symbols (一次 重复录入。 = 一次重复录入)."""
    text_ = unicodedata.normalize("NFKC", notes or "").casefold()
    return "".join(ch for ch in text_ if unicodedata.category(ch)[0] not in "PZSC")


def visit_content(session: Session, v: Visit) -> tuple:
    """What one entry says: method, time (to the minute), counts and normalised notes.

    A canonical visit's counts are the combination of its duplicates; its own entry is
    the snapshot its first merge kept (MergeLink.before).
    """
    from server.models_dedup import MergeLink

    counts: dict[str, Any] = {
        "workers_met": v.workers_met or 0,
        "materials": v.materials or 0,
        "consultations": v.consultations or 0,
        "workers_by_group": v.workers_by_group or {},
    }
    first = session.scalars(
        select(MergeLink.before)
        .where(
            MergeLink.entity == "visit",
            MergeLink.canonical_id == v.id,
            MergeLink.before.is_not(None),
        )
        .order_by(MergeLink.id)
        .limit(1)
    ).first()
    if first:
        counts = {k: first.get(k, counts[k]) for k in counts}
    by_group = tuple(
        sorted((k, int(n)) for k, n in (counts["workers_by_group"] or {}).items() if n)
    )
    minute = _utc(v.visited_at).replace(second=0, microsecond=0)
    return (
        v.method,
        minute,
        int(counts["workers_met"] or 0),
        int(counts["materials"] or 0),
        int(counts["consultations"] or 0),
        by_group,
        normalize_notes(v.notes),
    )


def visit_pair(session: Session, ctx: DedupContext, a: Visit, b: Visit) -> str:
    """How two visits of one work group, enterprise and method relate.

    - ``meeting``: different cadres, times within the window: one meeting, two records;
    - ``apart``: different cadres, further apart: two meetings;
    - ``entry``: one cadre (or an unknown author), the same content: one entry twice;
    - ``distinct``: one cadre, other content: two visits (a morning and an afternoon
      symposium), never merged, not even through a third record.
    """
    if a.created_by_id is not None and b.created_by_id is not None:
        if a.created_by_id != b.created_by_id:
            near = abs(_utc(a.visited_at) - _utc(b.visited_at)) <= ctx.visit_window
            return "meeting" if near else "apart"
    return "entry" if visit_content(session, a) == visit_content(session, b) else "distinct"


def dedup_visit(session: Session, ctx: DedupContext, visit_id: str) -> str:
    """Merge the records of one meeting (one work group, enterprise and method) by
    different cadres within the window, and one cadre's identical entries."""
    v = session.get(Visit, visit_id)
    if v is None:
        return "missing"
    ident = _visit_identity(session, ctx, v)
    if ident is not None:
        lock_keys(session, ["visit:" + "|".join(map(str, ident))])
    if v.deleted:
        return _release_deleted(session, ctx, "visit", v)
    if v.canonical_id:
        # A merged report changed: the canonical visit's combined counts follow.
        root = root_of(session, "visit", v.id)
        if root is not None and root.id != v.id:
            recompute_visit(session, root)
        return "already_merged"
    if ident is None:
        return "no_identity"
    group, where, method = ident
    t = _utc(v.visited_at)
    query = select(Visit).where(
        Visit.work_group_id == group,
        Visit.method == method,
        Visit.visited_at >= t - ctx.visit_window,
        Visit.visited_at <= t + ctx.visit_window,
        Visit.deleted.is_(False),
        Visit.id != v.id,
    )
    if where.startswith("e:"):
        query = query.where(Visit.enterprise_id.in_(enterprise_cluster_ids(session, where[2:])))
    else:
        query = query.where(Visit.enterprise_id.is_(None), Visit.district_id == v.district_id)
    near = list(session.scalars(query.order_by(Visit.visited_at, Visit.id)))
    # The clusters the nearby records belong to (a merged record stands for its root's).
    roots: dict[str, Visit] = {}
    for o in near:
        root = root_of(session, "visit", o.id)
        if root is not None and root.id != v.id and not root.deleted:
            roots.setdefault(root.id, root)
    if not roots:
        return "new"

    def live(root: Visit) -> list[Visit]:
        return [root, *(m for m in members_of(session, "visit", root.id) if not m.deleted)]

    mine = live(v)
    joined: list[tuple[Visit, str]] = []
    rejected = 0
    for root in sorted(roots.values(), key=lambda r: (abs(_utc(r.visited_at) - t), r.id)):
        theirs = live(root)
        relations = {visit_pair(session, ctx, x, y) for x in mine for y in theirs}
        if not relations or not relations <= {"meeting", "entry"}:
            # One cadre's other visit is in one of them, or two of their records are
            # further apart than the window: not one meeting (no chaining through a third).
            continue
        if is_rejected(session, "visit", [x.id for x in mine], [y.id for y in theirs]):
            rejected += 1
            continue
        joined.append(
            (root, VISIT_RULE_ENTRY if "meeting" not in relations else VISIT_RULE_MEETING)
        )
        mine = mine + theirs  # a later cluster must agree with everything joined so far
    if not joined:
        return "rejected_before" if rejected else "new"
    canonical = v
    for root, _ in joined:
        canonical = choose_canonical("visit", canonical, root)[0]
    for root, rule in [(v, joined[0][1]), *joined]:
        if root.id == canonical.id:
            continue
        gap = abs(_utc(root.visited_at) - _utc(canonical.visited_at))
        features = {
            "work_group_id": group,
            "where": where,
            "method": method,
            "minutes_apart": round(gap.total_seconds() / 60, 1),
            "window_minutes": round(ctx.visit_window.total_seconds() / 60),
        }
        merge(session, "visit", root.id, canonical.id, rule=rule, score=1.0, features=features)
    return "merged"


# --- home visits (needy workers) -----------------------------------------------------------


def _pinyin(name: str) -> str:
    return "".join(lazy_pinyin("".join(name.split()))).lower()


def home_visit_keys(h: HomeVisit, key: str) -> list[str]:
    """Blocking keys of a home visit: the ID hash, the phone, the name's sound + district.

    The phone and the name are personal data: kept as keyed hashes (HMAC with
    ID_HASH_KEY, as ID numbers), so equal numbers and sounds still share a key while
    dedup_keys holds nothing readable (migration 0016 rewrote older clear keys)."""
    keys = []
    if h.id_hash:
        keys.append("h:" + h.id_hash)
    if h.phone:
        keys.append("p:" + phone_key(h.phone, key))
    if h.worker_name:
        keys.append("n:" + keyed_hash("name", f"{_pinyin(h.worker_name)}|{h.district_id}", key))
    return keys


def phone_key(phone: str, key: str) -> str:
    """A stored phone number's dedup key: the keyed hash of its E.164 form."""
    return keyed_hash("phone", phone_normalise(phone) or phone, key)


def score_home_visits(
    ctx: DedupContext, a: HomeVisit, b: HomeVisit
) -> tuple[float, str, dict[str, Any]]:
    """(score, rule, features) of two home-visit records being one visit to one worker."""
    days = abs(
        (a.visited_at.astimezone(ctx.tz).date() - b.visited_at.astimezone(ctx.tz).date()).days
    )
    feats: dict[str, Any] = {"days_apart": days}
    if days > HOME_VISIT_WINDOW_DAYS:
        return 0.0, "different_visit", feats
    if a.id_hash and b.id_hash:
        feats["id_hash"] = "equal" if a.id_hash == b.id_hash else "differs"
        if a.id_hash == b.id_hash:
            return 1.0, "id_hash_equal", feats
        return 0.0, "id_hash_differs", feats
    name_sim = Indel.normalized_similarity(a.worker_name or "", b.worker_name or "")
    if _pinyin(a.worker_name or "") == _pinyin(b.worker_name or ""):
        name_sim = max(name_sim, 0.95)  # same sound: a pinyin input slip
    score = 0.6 * name_sim
    if a.phone and b.phone:
        feats["phone"] = "equal" if a.phone == b.phone else "differs"
        score += 0.25 if a.phone == b.phone else -0.1
    if a.district_id == b.district_id:
        feats["district"] = "same"
        score += 0.15
    else:
        feats["district"] = "differs"
    feats["name_sim"] = round(name_sim, 3)
    return max(0.0, min(1.0, score)), "name_phone_district", feats


def dedup_home_visit(session: Session, ctx: DedupContext, home_visit_id: str) -> str:
    """Queue possible duplicates of a home visit for review; never merges by itself."""
    h = session.get(HomeVisit, home_visit_id)
    if h is None:
        return "missing"
    keys = home_visit_keys(h, ctx.id_hash_key)
    lock_keys(session, ["home_visit:" + k for k in keys])
    if h.deleted:
        return _release_deleted(session, ctx, "home_visit", h)
    _store_keys(session, "home_visit", h.id, keys)
    if h.canonical_id:
        return "already_merged"
    ids = _candidate_ids(session, "home_visit", keys, h.id, ctx.th.max_candidates)
    queued = 0
    for c in session.scalars(select(HomeVisit).where(HomeVisit.id.in_(ids))) if ids else []:
        if c.deleted or (c.canonical_id or c.id) == h.id:
            continue
        score, rule, feats = score_home_visits(ctx, h, c)
        if score >= ctx.th.review:
            propose_review(session, "home_visit", h.id, c.id, score, rule, feats)
            queued += 1
    return "review" if queued else "new"


# --- entry points ---------------------------------------------------------------------------

_JOBS = {"enterprise": dedup_enterprise, "visit": dedup_visit, "home_visit": dedup_home_visit}


def dedup_one(session: Session, ctx: DedupContext, entity: str, record_id: str) -> str:
    """Dedup one record of any entity; returns what happened ("merged", "review", ...)."""
    job = _JOBS.get(entity)
    return job(session, ctx, str(record_id)) if job else "ignored"


_ORDER = {"enterprise": 0, "visit": 1, "home_visit": 2}


def _pairs(records: Iterable[Any]) -> list[tuple[str, str]]:
    """[entity, id] pairs, enterprises first (visits match on them)."""
    pairs = [(str(e), str(i)) for e, i in records]
    return sorted(pairs, key=lambda p: _ORDER.get(p[0], 9))


def dedup_records(session: Session, ctx: DedupContext, records: Iterable[Any]) -> dict[str, int]:
    """Dedup a list of [entity, id] pairs; enterprises first (visits match on them)."""
    pairs = _pairs(records)
    lock_records(session, ctx, pairs)
    outcomes: dict[str, int] = {}
    for entity, rid in pairs:
        out = dedup_one(session, ctx, entity, rid)
        outcomes[out] = outcomes.get(out, 0) + 1
    return outcomes


class RecordsFailed(Exception):
    """Every record of an outbox row failed; the row is retried as a whole."""


@handler("dedup")
def handle_dedup(session: Session, row: OutboxMessage) -> dict[str, int]:
    """Outbox handler: dedup the records a sync push created or changed.

    Each record in its own savepoint: one that fails (a bug, a value the engine cannot
    take, a lock another worker holds) cannot hold back the others of its push. It is
    queued again as an outbox row of its own, which fails, backs off and goes dead
    alone. When every record fails the row itself fails.
    """
    from sync.push import infrastructure_error
    from worker.outbox import backoff, describe_error, limits

    ctx = DedupContext.from_app()
    pairs = _pairs(row.payload.get("records", []))
    lock_records(session, ctx, pairs)
    outcomes: dict[str, int] = {}
    failed: list[tuple[str, str, str, bool]] = []
    for entity, rid in pairs:
        try:
            with session.begin_nested():
                out = dedup_one(session, ctx, entity, rid)
        except Exception as exc:
            if infrastructure_error(exc):
                raise
            busy = isinstance(exc, LockBusy)
            failed.append((entity, rid, describe_error(exc), busy))
            log.warning(
                "dedup record failed",
                extra={
                    "outbox_id": row.id,
                    "entity": entity,
                    "record_id": rid,
                    "error": describe_error(exc),
                },
            )
            continue
        outcomes[out] = outcomes.get(out, 0) + 1
    if failed and len(failed) == len(pairs) and not all(f[3] for f in failed):
        raise RecordsFailed(failed[0][2])
    if failed:
        now = datetime.now(UTC)
        for entity, rid, error, busy in failed:
            # A busy lock is nobody's fault: tried again soon, not counted as a failure.
            attempts = 0 if busy else 1
            session.add(
                OutboxMessage(
                    topic="dedup",
                    entity=entity,
                    record_id=rid,
                    payload={"records": [[entity, rid]]},
                    request_id=row.request_id,
                    attempts=attempts,
                    last_error=None if busy else error,
                    next_attempt_at=now + backoff(max(attempts, 1), limits()[1]),
                )
            )
        outcomes["requeued"] = len(failed)
    log.info("dedup done", extra={"outbox_id": row.id, "outcomes": outcomes})
    return outcomes


def full_pass(session: Session, ctx: DedupContext, batch: int = 200) -> dict[str, Any]:
    """Match every live record again, committing per batch; safe to run at any time.

    Catches what the incremental pass missed (two records synced at the same moment by
    workers that did not see each other's keys, an engine with new rules) and rebuilds
    the key table. Records already merged or already queued are left as they are.
    """
    started = time.perf_counter()
    stats: dict[str, Any] = {}
    for entity, model in (("enterprise", Enterprise), ("visit", Visit), ("home_visit", HomeVisit)):
        ids = session.scalars(
            select(model.id).where(model.deleted.is_(False)).order_by(model.created_at, model.id)
        ).all()
        outcomes: dict[str, int] = {}
        for i in range(0, len(ids), batch):
            lock_records(session, ctx, [(entity, rid) for rid in ids[i : i + batch]])
            for rid in ids[i : i + batch]:
                try:
                    with session.begin_nested():
                        out = dedup_one(session, ctx, entity, rid)
                except LockBusy:
                    out = "busy"  # an incremental job holds it: it deduplicates it
                outcomes[out] = outcomes.get(out, 0) + 1
            session.commit()  # short transactions: key locks are held per batch only
        stats[entity] = outcomes
    # Keys of records deleted or gone since the last pass.
    for entity, model in (("enterprise", Enterprise), ("home_visit", HomeVisit)):
        live = select(model.id).where(model.deleted.is_(False))
        session.execute(
            delete(DedupKey).where(DedupKey.entity == entity, DedupKey.record_id.not_in(live))
        )
    session.commit()
    stats["seconds"] = round(time.perf_counter() - started, 3)
    return stats


__all__ = [
    "DedupContext",
    "dedup_enterprise",
    "dedup_home_visit",
    "dedup_one",
    "dedup_records",
    "dedup_visit",
    "full_pass",
    "handle_dedup",
    "home_visit_keys",
    "phone_key",
    "lock_keys",
    "lock_records",
    "LockBusy",
    "RecordsFailed",
    "record_lock_names",
    "score_home_visits",
]
