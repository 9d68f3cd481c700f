"""Merging duplicate records, undoing merges, and the review queue's decisions.

Plain functions over a SQLAlchemy session, used by the dedup workers (decided_by
"worker") and by the review pages and API (decided_by a coordinator). The caller commits.

What a merge does (docs/dedup.md):
- the duplicate keeps all its data; only its `canonical_id` is set (an ORM change, so
  it gets a new version and phones pull it);
- a `MergeLink` records the rule, score, features and who decided;
- a visit merged into another combines into the canonical one: participants are the
  union and every count the maximum, because cadres at the same visit met the same
  workers (summing would count them twice);
- chains are flattened: when B (with A merged into it) merges into C, A is repointed to
  C with a "chain" link whose parent is the B→C link, so undoing B→C puts A back on B.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import SYNCED_MODELS, AuditEntry, Enterprise, User, Visit
from server.models_dedup import (
    LINK_ACTIVE,
    LINK_SUPERSEDED,
    LINK_UNDONE,
    REVIEW_ACCEPTED,
    REVIEW_OBSOLETE,
    REVIEW_OPEN,
    REVIEW_PENDING,
    REVIEW_REJECTED,
    REVIEW_UNSURE,
    MergeLink,
    ReviewCandidate,
)

DEDUP_ENTITIES = ("enterprise", "visit", "home_visit")
VISIT_COUNT_FIELDS = ("workers_met", "materials", "consultations")
_MAX_CHAIN = 20


class MergeError(Exception):
    """A merge, undo or decision that cannot be done; `status` is the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def root_of(session: Session, entity: str, record_id: str) -> Any | None:
    """The canonical record a record resolves to (itself when not merged)."""
    model = SYNCED_MODELS[entity]
    obj = session.get(model, record_id)
    for _ in range(_MAX_CHAIN):
        if obj is None or not obj.canonical_id:
            return obj
        nxt = session.get(model, obj.canonical_id)
        if nxt is None:
            return obj  # a dangling pointer must not hide the record itself
        obj = nxt
    return obj


def members_of(session: Session, entity: str, root_id: str) -> list[Any]:
    """Records merged into `root_id` (chains are flat, so one level is all of them)."""
    model = SYNCED_MODELS[entity]
    return list(
        session.scalars(
            select(model).where(model.canonical_id == root_id).order_by(model.created_at, model.id)
        )
    )


def cluster_ids(session: Session, entity: str, root_id: str) -> list[str]:
    """The root and the ids merged into it."""
    model = SYNCED_MODELS[entity]
    ids = session.scalars(select(model.id).where(model.canonical_id == root_id)).all()
    return [root_id, *ids]


def choose_canonical(entity: str, a: Any, b: Any) -> tuple[Any, Any]:
    """(canonical, duplicate) of two roots: a valid credit code first, then the older record.

    The older record usually is the one phones already show; keeping it stable means
    fewer records change on phones.
    """

    def rank(obj: Any) -> tuple:
        valid = bool(getattr(obj, "uscc_valid", False)) if entity == "enterprise" else False
        created = obj.created_at if obj.created_at.tzinfo else obj.created_at.replace(tzinfo=UTC)
        return (not valid, created, obj.id)

    return (a, b) if rank(a) <= rank(b) else (b, a)


# --- visits: how counts combine ---------------------------------------------------------


def visit_counts(visit: Visit) -> dict[str, Any]:
    """The fields a merge combines, as JSON (kept in MergeLink.before for undo)."""
    return {
        **{f: int(getattr(visit, f) or 0) for f in VISIT_COUNT_FIELDS},
        "workers_by_group": dict(visit.workers_by_group or {}),
        "participants": sorted(u.id for u in visit.participants),
    }


def combine_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two reports of the same visit as one: union of participants, maximum of counts.

    The cadres at one visit met the same workers: the larger report is the better
    estimate of how many, and a sum would count people twice. Group counts take their
    own maximum, so each stays ≤ workers_met.
    """
    groups = dict(a.get("workers_by_group") or {})
    for key, value in (b.get("workers_by_group") or {}).items():
        groups[key] = max(int(groups.get(key, 0)), int(value))
    out = {f: max(int(a.get(f, 0)), int(b.get(f, 0))) for f in VISIT_COUNT_FIELDS}
    out["workers_by_group"] = {k: v for k, v in sorted(groups.items()) if v}
    out["participants"] = sorted(set(a.get("participants", [])) | set(b.get("participants", [])))
    return out


def _apply_counts(session: Session, visit: Visit, counts: dict[str, Any]) -> None:
    for f in VISIT_COUNT_FIELDS:
        if getattr(visit, f) != counts[f]:
            setattr(visit, f, counts[f])
    if (visit.workers_by_group or {}) != counts["workers_by_group"]:
        visit.workers_by_group = counts["workers_by_group"]
    wanted = counts["participants"]
    if sorted(u.id for u in visit.participants) != wanted:
        users = session.scalars(select(User).where(User.id.in_(wanted))).all() if wanted else []
        by_id = {u.id: u for u in users}
        visit.participants = [by_id[i] for i in wanted if i in by_id]


def recompute_visit(session: Session, root: Visit) -> None:
    """Set a canonical visit's combined fields from its own report and its live members.

    Its own report is the snapshot taken before its first merge (later merges changed
    the fields in place); members count with their current values, which max and union
    make safe even when a member had members of its own.
    """
    first = session.scalars(
        select(MergeLink)
        .where(
            MergeLink.entity == "visit",
            MergeLink.canonical_id == root.id,
            MergeLink.before.is_not(None),
        )
        .order_by(MergeLink.id)
        .limit(1)
    ).first()
    counts = dict(first.before) if first is not None else visit_counts(root)
    for member in members_of(session, "visit", root.id):
        # A member held as implausible (server/plausibility.py) adds nothing until the
        # supervision team accepts it; accepting it recomputes its root.
        if not member.deleted and not member.held:
            counts = combine_counts(counts, visit_counts(member))
    _apply_counts(session, root, counts)


# --- merge and undo ---------------------------------------------------------------------


def _who(user: User | None) -> str:
    return user.username if user is not None else "worker"


def _audit(
    session: Session,
    entity: str,
    record_id: str,
    action: str,
    changes: dict[str, Any],
    user: User | None,
) -> None:
    session.add(
        AuditEntry(
            entity=entity,
            record_id=record_id,
            action=action,
            changes=changes,
            user_id=user.id if user else None,
            source="api" if user else "worker",
        )
    )


def merge(
    session: Session,
    entity: str,
    record_id: str,
    into_id: str,
    *,
    rule: str,
    score: float | None = None,
    features: dict[str, Any] | None = None,
    user: User | None = None,
    review: ReviewCandidate | None = None,
) -> MergeLink | None:
    """Merge `record_id`'s cluster into `into_id`'s; None when they are already one."""
    dup = root_of(session, entity, record_id)
    target = root_of(session, entity, into_id)
    if dup is None or target is None:
        raise MergeError(404, "not_found", f"no {entity} {record_id if dup is None else into_id}")
    if dup.deleted or target.deleted:
        raise MergeError(409, "deleted", "a deleted record cannot be merged")
    if dup.id == target.id:
        return None
    by = _who(user)
    link = MergeLink(
        entity=entity,
        record_id=dup.id,
        canonical_id=target.id,
        status=LINK_ACTIVE,
        rule=rule[:40],
        score=score,
        features=dict(features or {}),
        decided_by=by,
        decided_by_id=user.id if user else None,
        review_id=review.id if review is not None else None,
    )
    if entity == "visit":
        link.before = visit_counts(target)
        _apply_counts(session, target, combine_counts(link.before, visit_counts(dup)))
    dup.canonical_id = target.id
    session.add(link)
    session.flush()  # the unique index on active links stops a second, racing merge here

    members = members_of(session, entity, dup.id)
    if members:
        ids = [m.id for m in members]
        for old in session.scalars(
            select(MergeLink).where(
                MergeLink.entity == entity,
                MergeLink.record_id.in_(ids),
                MergeLink.status == LINK_ACTIVE,
            )
        ):
            old.status = LINK_SUPERSEDED
        session.flush()  # free the active slot before the repointing links take it
        for m in members:
            m.canonical_id = target.id
            session.add(
                MergeLink(
                    entity=entity,
                    record_id=m.id,
                    canonical_id=target.id,
                    status=LINK_ACTIVE,
                    rule="chain",
                    score=score,
                    features={"via": dup.id},
                    decided_by=by,
                    decided_by_id=user.id if user else None,
                    parent_id=link.id,
                )
            )
            _audit(session, entity, m.id, "merge", {"canonical_id": [dup.id, target.id]}, user)
        session.flush()
    _audit(
        session,
        entity,
        dup.id,
        "merge",
        {"canonical_id": [None, target.id], "rule": link.rule, "link": link.id},
        user,
    )
    if entity == "visit" and dup.held:
        # A report held as implausible adds nothing to the combined counts until the
        # supervision team accepts it (server/plausibility.decide recomputes then).
        recompute_visit(session, target)
    return link


def undo_merge(
    session: Session,
    link_id: int,
    user: User | None = None,
    reason: str | None = None,
    remember: bool = True,
) -> MergeLink:
    """Undo one merge: the record is its own again, the link is kept and marked undone.

    With `remember` the pair is recorded as rejected, so the workers never merge it
    automatically again (a person's undo outranks a rule).
    """
    link = session.get(MergeLink, link_id)
    if link is None:
        raise MergeError(404, "not_found", f"no merge {link_id}")
    if link.status != LINK_ACTIVE:
        hint = " (a later merge moved it: undo that one)" if link.status == LINK_SUPERSEDED else ""
        raise MergeError(409, "not_active", f"merge {link_id} is {link.status}{hint}")
    model = SYNCED_MODELS[link.entity]
    now = datetime.now(UTC)
    rec = session.get(model, link.record_id)
    link.status, link.undone_at = LINK_UNDONE, now
    link.undone_by_id, link.undo_reason = (user.id if user else None), reason
    if rec is not None:
        rec.canonical_id = None
    session.flush()

    # Records the undone merge repointed go back to where they were.
    children = session.scalars(
        select(MergeLink).where(MergeLink.parent_id == link.id, MergeLink.status == LINK_ACTIVE)
    ).all()
    for child in children:
        child.status, child.undone_at = LINK_UNDONE, now
        child.undone_by_id, child.undo_reason = link.undone_by_id, f"parent merge {link.id} undone"
        session.flush()
        member = session.get(model, child.record_id)
        prev = session.scalars(
            select(MergeLink)
            .where(
                MergeLink.entity == link.entity,
                MergeLink.record_id == child.record_id,
                MergeLink.canonical_id == link.record_id,
                MergeLink.status == LINK_SUPERSEDED,
            )
            .order_by(MergeLink.id.desc())
            .limit(1)
        ).first()
        if prev is not None:
            prev.status = LINK_ACTIVE
        if member is not None:
            member.canonical_id = link.record_id if prev is not None else None
    session.flush()

    if link.entity == "visit":
        canonical = session.get(Visit, link.canonical_id)
        if canonical is not None:
            recompute_visit(session, canonical)
    if remember:
        remember_rejection(
            session,
            link.entity,
            link.record_id,
            link.canonical_id,
            user,
            reason or f"merge {link.id} undone",
        )
    _audit(
        session,
        link.entity,
        link.record_id,
        "unmerge",
        {"canonical_id": [link.canonical_id, None], "link": link.id},
        user,
    )
    return link


# --- review queue -----------------------------------------------------------------------


def _pair(x: str, y: str) -> tuple[str, str]:
    return (x, y) if x < y else (y, x)


def find_candidate(session: Session, entity: str, x: str, y: str) -> ReviewCandidate | None:
    """The review row of an unordered pair, if any."""
    a, b = _pair(x, y)
    return session.scalars(
        select(ReviewCandidate).where(
            ReviewCandidate.entity == entity, ReviewCandidate.a_id == a, ReviewCandidate.b_id == b
        )
    ).first()


def propose_review(
    session: Session,
    entity: str,
    x: str,
    y: str,
    score: float,
    rule: str,
    features: dict[str, Any] | None = None,
) -> ReviewCandidate | None:
    """Queue a pair for a person; idempotent (one row per pair, decided pairs stay decided)."""
    if x == y:
        return None
    existing = find_candidate(session, entity, x, y)
    if existing is not None:
        if existing.status in REVIEW_OPEN and score > (existing.score or 0):
            existing.score, existing.rule, existing.features = score, rule[:40], features or {}
        return existing
    a, b = _pair(x, y)
    row = ReviewCandidate(
        entity=entity,
        a_id=a,
        b_id=b,
        score=round(float(score), 4),
        rule=rule[:40],
        features=features or {},
        status=REVIEW_PENDING,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another worker queued the same pair a moment ago: theirs stands.
        return find_candidate(session, entity, x, y)
    return row


def remember_rejection(
    session: Session, entity: str, x: str, y: str, user: User | None, note: str | None
) -> ReviewCandidate:
    """Record that two records are not the same (a person said so)."""
    row = find_candidate(session, entity, x, y)
    if row is None:
        a, b = _pair(x, y)
        row = ReviewCandidate(
            entity=entity, a_id=a, b_id=b, score=0.0, rule="merge_undone", features={}
        )
        session.add(row)
    row.status = REVIEW_REJECTED
    row.decided_by_id = user.id if user else None
    row.decided_at = datetime.now(UTC)
    row.note = note
    session.flush()
    return row


def is_rejected(session: Session, entity: str, xs: list[str], ys: list[str]) -> bool:
    """Whether a person rejected any pair between two clusters' records."""
    if not xs or not ys:
        return False
    rc = ReviewCandidate
    hit = session.scalar(
        select(func.count())
        .select_from(rc)
        .where(
            rc.entity == entity,
            rc.status == REVIEW_REJECTED,
            or_(and_(rc.a_id.in_(xs), rc.b_id.in_(ys)), and_(rc.a_id.in_(ys), rc.b_id.in_(xs))),
        )
    )
    return bool(hit)


DECISIONS = {"accept": REVIEW_ACCEPTED, "reject": REVIEW_REJECTED, "unsure": REVIEW_UNSURE}


def decide(
    session: Session, candidate_id: int, decision: str, user: User, note: str | None = None
) -> ReviewCandidate:
    """A coordinator's answer on a pair: accept merges it, reject keeps it apart for good."""
    if decision not in DECISIONS:
        raise MergeError(400, "invalid", "decision: must be accept, reject or unsure")
    row = session.get(ReviewCandidate, candidate_id)
    if row is None:
        raise MergeError(404, "not_found", f"no review candidate {candidate_id}")
    if row.status not in REVIEW_OPEN:
        raise MergeError(409, "already_decided", f"this pair was already {row.status}")
    if decision == "accept":
        a = root_of(session, row.entity, row.a_id)
        b = root_of(session, row.entity, row.b_id)
        if a is None or b is None or a.deleted or b.deleted:
            row.status = REVIEW_OBSOLETE
            session.flush()
            raise MergeError(409, "stale", "a record of this pair was deleted")
        if a.id != b.id:
            canonical, dup = choose_canonical(row.entity, a, b)
            link = merge(
                session,
                row.entity,
                dup.id,
                canonical.id,
                rule=f"review_{row.rule}",
                score=row.score,
                features=row.features,
                user=user,
                review=row,
            )
            row.merge_id = link.id if link else None
    row.status = DECISIONS[decision]
    row.decided_by_id, row.decided_at, row.note = user.id, datetime.now(UTC), note
    session.flush()
    return row


def obsolete_reviews_of(session: Session, entity: str, record_id: str) -> int:
    """Close open review rows that involve a (deleted) record."""
    rows = session.scalars(
        select(ReviewCandidate).where(
            ReviewCandidate.entity == entity,
            ReviewCandidate.status.in_(REVIEW_OPEN),
            or_(ReviewCandidate.a_id == record_id, ReviewCandidate.b_id == record_id),
        )
    ).all()
    for row in rows:
        row.status = REVIEW_OBSOLETE
    return len(rows)


def enterprise_cluster_ids(session: Session, enterprise_id: str) -> list[str]:
    """Every enterprise id in the same cluster as `enterprise_id` (for visit matching)."""
    ent = session.get(Enterprise, enterprise_id)
    if ent is None:
        return [enterprise_id]
    root = ent.canonical_id or ent.id
    return cluster_ids(session, "enterprise", root)
