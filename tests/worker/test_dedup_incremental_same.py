"""The incremental path gives a synced record the CSV command's answer (issue 14, item 6).

The same generated roster goes through the batch clustering (cluster_records, what the CSV
command runs) and through the incremental path (DedupIndex.match, and the database job
dedup_enterprise on SQLite and PostgreSQL); their cluster assignments are compared.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from dedup_generate import generate  # noqa: E402

from worker.dedup import DedupIndex, EnterpriseRecord, cluster_records  # noqa: E402


def records(n: int, seed: int) -> list[EnterpriseRecord]:
    return [
        EnterpriseRecord(
            rid,
            f["name"],
            f["district"],
            f["uscc"],
            f["address"],
            int(f["headcount"]) if f["headcount"] else None,
        )
        for rid, _, f in generate(n, seed=seed, extended=True)
    ]


def partition(cluster_of: dict[str, str]) -> dict[str, frozenset[str]]:
    """record → the set of records in its cluster (cluster ids themselves do not matter)."""
    members: dict[str, set[str]] = {}
    for rid, cid in cluster_of.items():
        members.setdefault(cid, set()).add(rid)
    return {rid: frozenset(members[cid]) for rid, cid in cluster_of.items()}


def pair_agreement(a: dict[str, str], b: dict[str, str]) -> float:
    """F1 of the same-cluster pairs of one clustering against the other's."""

    def pairs(c: dict[str, str]) -> set[tuple[str, str]]:
        groups: dict[str, list[str]] = {}
        for rid, cid in c.items():
            groups.setdefault(cid, []).append(rid)
        return {(x, y) for g in groups.values() for x in g for y in g if x < y}

    pa, pb = pairs(a), pairs(b)
    both = len(pa & pb)
    return 2 * both / (len(pa) + len(pb)) if pa or pb else 1.0


def test_a_new_record_gets_the_batch_answer():
    """Index a roster clustered by the batch, leave out its last 300 records, match each
    of them: it attaches to the cluster the batch put it in, or to none when the batch
    left it without another member."""
    recs = records(4000, seed=31)
    batch = cluster_records(recs).cluster_of
    new = recs[-300:]
    held = {r.record_id for r in new}
    idx = DedupIndex.build([r for r in recs if r.record_id not in held], batch)
    others = {batch[r.record_id] for r in recs if r.record_id not in held}
    attached = 0
    for r in new:
        d = idx.match(r)
        expected = batch[r.record_id] if batch[r.record_id] in others else None
        got = d.cluster_id if d.action == "attach" else None
        assert got == expected, (r, d.action, d.rule)
        attached += got is not None
    assert attached > 100  # the roster holds many duplicates: the test sees both answers


def test_one_record_at_a_time_clusters_as_the_batch():
    """The whole roster arriving one record at a time (what syncs do) ends close to the
    batch's clusters: what differs is order (a record the batch would have given to a
    firm that arrived later), measured here, not rules."""
    recs = records(4000, seed=32)
    batch = cluster_records(recs).cluster_of
    idx = DedupIndex()
    idx.match_many(recs, add=True)
    incremental = {p.record_id: idx.cluster[i] for i, p in enumerate(idx.items)}
    assert pair_agreement(incremental, batch) >= 0.98  # 0.990 measured
    same = partition(incremental)
    other = partition(batch)
    assert sum(same[r] == other[r] for r in batch) >= 0.95 * len(batch)  # 0.966 measured


def test_the_database_job_is_the_same_matcher(app):
    """dedup_enterprise on the database (SQLite and PostgreSQL) clusters a roster arriving
    one record at a time exactly as DedupIndex.match does, and close to the batch."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import DistrictUnit, Enterprise
    from worker.dedup.normalize import normalize_district
    from worker.dedup_jobs import DedupContext, dedup_enterprise, enterprise_record

    recs = records(500, seed=33)
    districts = {d.code: d.id for d in db.session.scalars(select(DistrictUnit))}
    fallback = next(iter(districts.values()))
    base = datetime(2026, 3, 1, tzinfo=UTC)
    ids = []
    for i, r in enumerate(recs):
        eid = str(uuid.UUID(int=i + 1))
        ids.append(eid)
        db.session.add(
            Enterprise(
                id=eid,
                name=r.name,
                uscc=r.uscc or None,
                address=r.address or None,
                head_count=r.headcount,
                district_id=districts.get(normalize_district(r.district), fallback),
                created_at=base + timedelta(seconds=i),
            )
        )
    db.session.commit()
    ctx = DedupContext.from_app()
    for eid in ids:
        dedup_enterprise(db.session, ctx, eid)
        db.session.commit()
    stored = {e.id: e.canonical_id or e.id for e in db.session.scalars(select(Enterprise))}
    # The records as the database holds them (district as its code), through both paths.
    as_stored = [enterprise_record(db.session, ctx, db.session.get(Enterprise, x)) for x in ids]
    idx = DedupIndex(ctx.th)
    idx.match_many(as_stored, add=True)
    in_memory = {p.record_id: idx.cluster[i] for i, p in enumerate(idx.items)}
    assert partition(stored) == partition(in_memory)
    merged = sum(1 for x in ids if stored[x] != x)
    assert merged > 50
    batch = cluster_records(as_stored, ctx.th).cluster_of
    assert pair_agreement(stored, batch) >= 0.97


def test_review_answers_match_for_new_records():
    """What the batch queues between a new record and the clusters already there, the
    index queues too (a pair with a member of the same cluster)."""
    recs = records(3000, seed=34)
    res = cluster_records(recs)
    batch = res.cluster_of
    new = recs[-300:]
    held = {r.record_id for r in new}
    idx = DedupIndex.build([r for r in recs if r.record_id not in held], batch)
    expected = set()
    for ps in res.review:
        if (ps.a in held) != (ps.b in held):
            x, y = (ps.a, ps.b) if ps.a in held else (ps.b, ps.a)
            expected.add((x, batch[y]))
    listed = set()
    for r in new:
        d = idx.match(r)
        assert all(ps.a == r.record_id for ps in d.review)
        listed.update((r.record_id, batch[ps.b]) for ps in d.review)
    assert expected and expected <= listed
