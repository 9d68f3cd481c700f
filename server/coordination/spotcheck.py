"""Random spot checks (随机抽查) of visit records, stratified and reproducible.

The population is the live visits under the filters in one deterministic order
(district code, work group code, visit id). The sample size is split over districts in
proportion to their visits (largest remainder), every district with visits getting at
least one when the size allows; each district's share is split the same way over its
work groups; then one `random.Random(seed)` picks inside each stratum in that fixed
order. Same seed and same data therefore give the same sample on any machine: a string
seed is hashed with SHA-512 by `random`, independent of PYTHONHASHSEED.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from server.coordination.filters import Filters, live, visit_conditions
from server.models import AuditEntry, DistrictUnit, User, Visit, WorkGroup
from server.models_supervision import CHECK_RESULTS, SpotCheckItem, SpotCheckSample

Stratum = tuple[int, int | None]  # (district id, work group id)


def allocate(size: int, counts: list[tuple[Any, int]], at_least_one: bool) -> dict[Any, int]:
    """Split `size` over keys in proportion to their counts (Hamilton / largest remainder).

    Ties in the remainders go to the earlier key, so the split is deterministic. With
    `at_least_one`, every key with a count gets one if the size allows, taken from the
    key with the largest share.
    """
    total = sum(n for _, n in counts)
    if total == 0 or size <= 0:
        return {k: 0 for k, _ in counts}
    if size >= total:
        return {k: n for k, n in counts}
    quotas = [(k, size * n / total) for k, n in counts]
    share = {k: int(q) for k, q in quotas}
    left = size - sum(share.values())
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i][1] - int(quotas[i][1])), i))
    for i in order[:left]:
        share[quotas[i][0]] += 1
    if at_least_one and size >= sum(1 for _, n in counts if n):
        for k, n in counts:
            if n and share[k] == 0:
                donor = max(share, key=lambda key: (share[key], -list(share).index(key)))
                share[donor] -= 1
                share[k] = 1
    return share


def plan_sample(
    session: Session, seed: str, size: int, f: Filters
) -> list[tuple[str, int, int | None]]:
    """The (visit id, district id, work group id) of a sample; nothing is written."""
    rows = session.execute(
        select(Visit.id, Visit.district_id, Visit.work_group_id)
        .join(DistrictUnit, DistrictUnit.id == Visit.district_id)
        .outerjoin(WorkGroup, WorkGroup.id == Visit.work_group_id)
        .where(*visit_conditions(f))
        .order_by(DistrictUnit.code, func.coalesce(WorkGroup.code, ""), Visit.id)
    ).all()
    strata: dict[Stratum, list[str]] = {}
    for visit_id, district_id, group_id in rows:
        strata.setdefault((district_id, group_id), []).append(visit_id)
    by_district: dict[int, list[Stratum]] = {}
    for key in strata:  # insertion order = the deterministic population order
        by_district.setdefault(key[0], []).append(key)
    per_district = allocate(
        size,
        [(d, sum(len(strata[s]) for s in keys)) for d, keys in by_district.items()],
        at_least_one=True,
    )
    rng = random.Random(seed)
    picked: list[tuple[str, int, int | None]] = []
    for district_id, keys in by_district.items():
        per_group = allocate(
            per_district[district_id], [(k, len(strata[k])) for k in keys], at_least_one=False
        )
        for key in keys:
            chosen = rng.sample(strata[key], per_group[key])
            picked.extend((v, key[0], key[1]) for v in sorted(chosen))
    return picked


def draw_sample(
    session: Session, seed: str, size: int, f: Filters, user: User | None, note: str | None = None
) -> SpotCheckSample:
    """Draw and keep a sample (the caller commits)."""
    sample = SpotCheckSample(
        seed=seed,
        size=size,
        filters=f.as_dict(),
        note=note,
        created_by_id=user.id if user else None,
    )
    for visit_id, district_id, group_id in plan_sample(session, seed, size, f):
        sample.items.append(
            SpotCheckItem(visit_id=visit_id, district_id=district_id, work_group_id=group_id)
        )
    session.add(sample)
    session.flush()
    return sample


def record_result(
    session: Session,
    item: SpotCheckItem,
    result: str,
    note: str | None,
    user: User,
    now: datetime,
    request_id: str | None = None,
) -> None:
    """Record a finding on a sampled visit, and audit it like any other change."""
    if result not in CHECK_RESULTS:
        raise ValueError(f"result: expected one of {', '.join(CHECK_RESULTS)}")
    changes = {}
    if item.result != result:
        changes["result"] = [item.result, result]
    if (item.note or None) != (note or None):
        changes["note"] = [item.note, note]
    item.result, item.note = result, note or None
    item.checked_by_id, item.checked_at = user.id, now
    session.add(
        AuditEntry(
            entity="spot_check",
            record_id=str(item.id),
            action="update",
            changes={"visit_id": item.visit_id, **changes},
            user_id=user.id,
            source="web",
            request_id=request_id,
        )
    )


def district_stats(
    session: Session, district_ids: frozenset[int] | None, f: Filters | None = None
) -> dict[int, dict[str, Any]]:
    """Per district: visits, visits sampled, visits checked, check rate, findings.

    The check rate is distinct checked visits over the district's live visits (under the
    filters' period when given), so checking one visit twice does not inflate it. With
    filters, only items whose visit took place in their period are counted.
    """
    vq = select(Visit.district_id, func.count()).where(*live(Visit))
    if f is not None:
        vq = select(Visit.district_id, func.count()).where(*visit_conditions(f))
    if district_ids is not None:
        vq = vq.where(Visit.district_id.in_(sorted(district_ids)))
    visits = dict(session.execute(vq.group_by(Visit.district_id)).all())
    sq = select(
        SpotCheckItem.district_id,
        func.count(func.distinct(SpotCheckItem.visit_id)),
        func.count(
            func.distinct(case((SpotCheckItem.result.is_not(None), SpotCheckItem.visit_id)))
        ),
        *(func.count(case((SpotCheckItem.result == r, 1))) for r in CHECK_RESULTS),
    )
    if district_ids is not None:
        sq = sq.where(SpotCheckItem.district_id.in_(sorted(district_ids)))
    if f is not None:
        # Only findings on visits of the period: a check of last quarter's records says
        # nothing about this month's. A checked visit deleted since still counts (a
        # record found untrue and then removed must not clear the finding).
        start, end = f.bounds()
        sq = sq.join(Visit, Visit.id == SpotCheckItem.visit_id).where(
            Visit.visited_at >= start, Visit.visited_at < end
        )
    out: dict[int, dict[str, Any]] = {}
    for district_id, sampled, checked, *found in session.execute(
        sq.group_by(SpotCheckItem.district_id)
    ):
        out[district_id] = {
            "sampled": sampled,
            "checked": checked,
            "findings": dict(zip(CHECK_RESULTS, found, strict=True)),
        }
    for district_id in set(visits) | set(out):
        s = out.setdefault(
            district_id, {"sampled": 0, "checked": 0, "findings": dict.fromkeys(CHECK_RESULTS, 0)}
        )
        s["visits"] = visits.get(district_id, 0)
        s["check_rate"] = s["checked"] / s["visits"] if s["visits"] else None
    return out


def strata_counts(items: list[SpotCheckItem]) -> Counter[int]:
    """How many items of a sample fell in each district."""
    return Counter(i.district_id for i in items)
