"""Batch clustering of enterprise records and the incremental index for new arrivals.

Clustering is representative-based to avoid chaining: two clusters merge only when their
representatives themselves match automatically, never through one loose link.
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.dedup.fs import FSModel, pair_levels
from worker.dedup.match import (
    AUTO,
    NO,
    REVIEW,
    DedupThresholds,
    EnterpriseRecord,
    PairScore,
    Prepared,
    _name_keys,
    blocking_keys,
    decide_pair,
    prepare,
    score_pair,
)
from worker.dedup.normalize import GENERIC_INDUSTRY

# Rules that settle a pair whatever the weights say: not part of the learned mixture.
_VETOES = frozenset(("uscc_equal", "uscc_conflict", "branch_mismatch", "industry_conflict"))
# Why two representatives can fail to match without contradicting each other.
_LOOSE_ONLY = frozenset(("below_review", "weak_name_only"))
# Review rules the learned weights may settle (the others name a conflict to look at).
_LEARNABLE = frozenset(("name_exact_conflicting", "name_similar_uncertain"))
# A person said the two records are one firm (a review decision given back as a label).
REVIEWER_SAME = "reviewer_same"
# Links that decide whatever the names' industries say and need no chaining guard.
_DECIDING = frozenset(("uscc_equal", REVIEWER_SAME))


@dataclass
class DedupResult:
    """Outcome of a batch run: cluster of each record, the merges made and pairs to review."""

    cluster_of: dict[str, str]  # record_id → cluster_id (the representative's record_id)
    merges: list[PairScore]  # the automatic decisions that joined clusters
    review: list[PairScore]  # uncertain pairs between different clusters
    stats: dict[str, int] = field(default_factory=dict)
    model: FSModel | None = None  # the weights learned on the batch (None: not learned)

    def clusters(self) -> dict[str, list[str]]:
        """cluster_id → member record ids."""
        out: dict[str, list[str]] = {}
        for rid, cid in self.cluster_of.items():
            out.setdefault(cid, []).append(rid)
        return out


_NONE: frozenset[str] = frozenset()


class _Clusters:
    """Union-find that keeps, per cluster, its representative, size and valid credit codes.

    The codes and industries of a cluster are held only once it has two or more records
    (a record alone has its own): a set for each of millions of records took more memory
    than the blocking index.
    """

    def __init__(self, items: list[Prepared]) -> None:
        self.items = items
        n = len(items)
        self.parent = list(range(n))
        self.size = [1] * n
        self.rep = self.parent.copy()  # the same int objects, not n more
        self._codes: dict[int, frozenset[str]] = {}
        self._industries: dict[int, frozenset[str]] = {}

    def codes(self, r: int) -> frozenset[str]:
        """The valid credit codes of root r's cluster."""
        got = self._codes.get(r)
        if got is None:
            p = self.items[r]  # a root never joined: the cluster is that one record
            return frozenset((p.uscc,)) if p.uscc_valid else _NONE
        return got

    def industries(self, r: int) -> frozenset[str]:
        """The industries named in root r's cluster."""
        got = self._industries.get(r)
        if got is None:
            ind = self.items[r].parts.industry
            return frozenset((ind,)) if ind else _NONE
        return got

    def find(self, i: int) -> int:
        """Root of i's cluster, with path halving."""
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, ra: int, rb: int) -> int:
        """Join two roots; the representative with a valid code (else the larger cluster's)
        stays."""
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        codes = self.codes(ra) | self.codes(rb)
        industries = self.industries(ra) | self.industries(rb)
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        rep_a, rep_b = self.rep[ra], self.rep[rb]
        if not self.items[rep_a].uscc_valid and self.items[rep_b].uscc_valid:
            self.rep[ra] = rep_b
        self._codes[ra] = codes
        self._industries[ra] = industries
        self._codes.pop(rb, None)
        self._industries.pop(rb, None)
        return ra

    def conflict(self, ra: int, rb: int) -> str:
        """Why two clusters can never be one: different valid codes or different industries."""
        ca, cb = self.codes(ra), self.codes(rb)
        if ca and cb and ca != cb:
            return "uscc_conflict_in_cluster"
        ia, ib = self.industries(ra), self.industries(rb)
        if ia and ib and ia != ib:
            return "industry_conflict_in_cluster"
        return ""


def _names_industry(p: Prepared) -> bool:
    """The record names a specific business (not none, not only a generic word)."""
    ind = p.parts.industry
    return bool(ind) and ind != GENERIC_INDUSTRY


def _asks_all_industries(p: Prepared) -> bool:
    """Records naming no specific industry must meet every industry of their trade name."""
    ind = p.parts.industry
    return not ind or ind == GENERIC_INDUSTRY


# The blocking index is built in this many parts (by the keys' hashes), one at a time.
KEY_PARTS = 16


def _candidate_blocks(
    items: list[Prepared], clear_cache: bool = True
) -> list[list[list[int]] | tuple[()]]:
    """Per record, the member lists of the blocks it belongs to (lists are shared, keys dropped).

    The industry-free "g:" blocks are kept only for records that name no specific industry:
    pairs of two specific industries found there would be industry conflicts anyway.

    Memory: a record has five or so keys, most of them its own alone, and at millions of
    records a dictionary of every key with a list each took more memory than the records.
    The keys' 64-bit hashes go into flat arrays in KEY_PARTS parts, each part is grouped
    with a dictionary of its own and dropped, and lists are made only for keys that two or
    more records share. Two keys with one hash would only share a block (a few more pairs
    compared), never lose one.
    """
    n = len(items)
    hashes = [array("q") for _ in range(KEY_PARTS)]
    # 2 * record + 1 when the record takes the block as its own (see the g: rule above)
    members = [array("q") for _ in range(KEY_PARTS)]
    for i, p in enumerate(items):
        asks = _asks_all_industries(p)
        for k in blocking_keys(p, cached=not clear_cache):
            h = hash(k)
            part = h % KEY_PARTS
            hashes[part].append(h)
            members[part].append(2 * i + (1 if asks or not k.startswith("g:") else 0))
    if clear_cache:
        _name_keys.cache_clear()
    blocks_of: list[list[list[int]] | tuple[()]] = [()] * n
    for part in range(KEY_PARTS):
        hs, ms = hashes[part], members[part]
        hashes[part] = members[part] = array("q")
        first: dict[int, int] = {}
        shared: dict[int, list[int]] = {}
        for x, h in enumerate(hs):
            y = first.setdefault(h, x)
            if y != x:
                grp = shared.get(h)
                if grp is None:
                    shared[h] = [ms[y], ms[x]]
                else:
                    grp.append(ms[x])
        del first, hs, ms
        for grp in shared.values():
            lst = [m >> 1 for m in grp]
            for m in grp:
                if m & 1:
                    own = blocks_of[m >> 1]
                    if own:
                        own.append(lst)  # type: ignore[union-attr]
                    else:
                        blocks_of[m >> 1] = [lst]
        del shared
    return blocks_of


def cluster_records(
    records: Iterable[EnterpriseRecord | Mapping[str, Any]],
    thresholds: DedupThresholds | None = None,
    progress: Callable[[int], None] | None = None,
    explain_merges: bool = True,
    labels: Mapping[tuple[str, str], bool] | None = None,
) -> DedupResult:
    """Cluster a batch of records: certain pairs merge, uncertain ones go to the review list.

    progress, when given, is called with the number of records just processed.
    explain_merges=False leaves DedupResult.merges empty (saves time and memory when only
    the clustering and the review list are wanted, as in the CSV command).
    labels: pairs of record ids a person decided (True: one firm, False: two), the answers
    of an earlier review list. A pair said to be one firm is linked (rule reviewer_same: it
    decides like a shared valid code); a pair said to be two is never linked by itself
    and never queued again, nor are its two clusters; with learned weights on
    (learned_auto) the answers are labels in the fit (worker/dedup/fs.py).
    """
    th = thresholds or DedupThresholds()
    # Millions of small objects make the cyclic GC rescan everything again and again
    # (quadratic in practice); nothing here creates cycles, so pause it for the run.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _cluster(records, th, progress, explain_merges, labels=labels)
    finally:
        if gc_was_enabled:
            gc.enable()


REVIEW_FLOOR = 50


def _label_pairs(
    items: list[Prepared], labels: Mapping[tuple[str, str], bool]
) -> dict[tuple[int, int], bool]:
    """The labelled pairs as (lower, higher) record positions; unknown ids are left out."""
    pos = {p.record_id: k for k, p in enumerate(items)}
    out: dict[tuple[int, int], bool] = {}
    for (a, b), same in labels.items():
        i, j = pos.get(a), pos.get(b)
        if i is None or j is None or i == j:
            continue
        out[(i, j) if i < j else (j, i)] = bool(same)
    return out


def _neighbourhood_key(p: Prepared) -> tuple[str, str, str]:
    """Sort order inside an oversized block: likely duplicates end up next to each other."""
    return (p.district, p.address, p.parts.core)


def _cluster(
    records: Iterable[EnterpriseRecord | Mapping[str, Any]],
    th: DedupThresholds,
    progress: Callable[[int], None] | None,
    explain_merges: bool,
    local: bool = False,
    labels: Mapping[tuple[str, str], bool] | None = None,
) -> DedupResult:
    """The body of cluster_records; local=True is the incremental path's run over one new
    record's neighbourhood (keys cached across runs, review pairs not rescored)."""
    items = [prepare(r) for r in records]
    n = len(items)
    decided = _label_pairs(items, labels) if labels else {}
    blocks_of = _candidate_blocks(items, clear_cache=not local)
    asks = [_asks_all_industries(p) for p in items]

    # Compact tuples, not PairScore objects: features are rebuilt only for what is reported.
    auto_pairs: list[tuple[float, int, int, str]] = []
    review_pairs: list[tuple[int, int, float, str, str]] = []
    compared = 0
    learn = th.learned_auto is not None
    patterns: Counter = Counter()
    # A block over max_block records is split, not skipped: its records are sorted (by
    # district, address and name) and each is compared with its max_block nearest
    # neighbours in that order (a sorted neighbourhood), so cost stays linear and every
    # block is reached.
    windows: dict[int, tuple[list[int], dict[int, int]]] = {}
    half = max(1, th.max_block // 2)
    max_block = th.max_block
    step = 0
    for i in range(n):
        blocks = blocks_of[i]
        a = items[i]
        seen: set[int] = set()
        for lst in blocks:
            if len(lst) < 2:
                continue
            if len(lst) > max_block:
                w = windows.get(id(lst))
                if w is None:
                    order = sorted(lst, key=lambda k: _neighbourhood_key(items[k]))
                    w = windows[id(lst)] = (order, {k: x for x, k in enumerate(order)})
                order, where = w
                x = where[i]
                lst = order[max(0, x - half) : x + half + 1]
            for j in lst:
                # Each unordered pair once: partners after i, once across shared blocks; a
                # specific-industry partner before i never saw i's g: block, so i takes it.
                if j == i or j in seen or (j < i and (asks[j] or not asks[i])):
                    continue
                seen.add(j)
                if decided and ((i, j) if i < j else (j, i)) in decided:
                    continue  # a person decided this pair: see below
                decision, score, rule = decide_pair(a, items[j], th)
                compared += 1
                if learn and rule not in _VETOES:
                    patterns[pair_levels(a, items[j])] += 1
                if decision == AUTO:
                    auto_pairs.append((score, i, j, rule))
                elif decision == REVIEW:
                    review_pairs.append((i, j, score, rule, ""))
        blocks_of[i] = []  # free as we go
        step += 1
        if progress is not None and step == 1000:
            progress(step)
            step = 0
    if progress is not None and step:
        progress(step)
    del blocks_of

    labelled: Counter = Counter()
    for (i, j), same in decided.items():
        if same:
            auto_pairs.append((1.0, i, j, REVIEWER_SAME))
        if learn:
            labelled[(pair_levels(items[i], items[j]), same)] += 1
    model = None
    learned = 0
    if learn:
        # Weights learned on this roster's own candidate pairs (and the answers people
        # gave) decide the review pairs they are sure of (see worker/dedup/fs.py).
        model = FSModel.fit(patterns, labelled=labelled)
        kept_review = []
        for t in review_pairs:
            i, j, score, rule, _ = t
            if rule in _LEARNABLE and model.posterior(pair_levels(items[i], items[j])) >= (
                th.learned_auto
            ):
                auto_pairs.append((score, i, j, "learned_weights"))
                learned += 1
            else:
                kept_review.append(t)
        review_pairs = kept_review
    auto_pairs = _demote_ambiguous(items, auto_pairs, review_pairs, th.crowded_spellings)
    uf = _Clusters(items)
    merges: list[PairScore] = []
    # Strongest evidence first, so that representatives are settled by certain links.
    auto_pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    last = n - 1
    for score, i, j, rule in auto_pairs:
        ri, rj = uf.find(i), uf.find(j)
        if ri == rj:
            if local and last in (i, j):
                merges.append(score_pair(items[last], items[i + j - last], th))
            continue
        why = uf.conflict(ri, rj)
        if why == "industry_conflict_in_cluster" and (
            rule in _DECIDING or (_names_industry(items[i]) and _names_industry(items[j]))
        ):
            # A shared valid credit code decides, whatever the names' industries say; and
            # two records that both name their (one) business are no chain through a name
            # without one (华兴机械 - 华兴 - 华兴食品), which is what the check is for.
            why = ""
        if why:
            if rule != "uscc_equal" or why != "uscc_conflict_in_cluster":
                review_pairs.append((i, j, score, why, rule))
            continue
        if uf.size[ri] + uf.size[rj] > th.max_cluster:
            review_pairs.append((i, j, score, "cluster_too_large", rule))
            continue
        rep_i, rep_j = uf.rep[ri], uf.rep[rj]
        if rule not in _DECIDING and (rep_i, rep_j) != (i, j) and (rep_i, rep_j) != (j, i):
            # Chaining guard: the clusters' representatives must match each other too.
            # Review level suffices: the pair itself is certain, the representatives only
            # have to be plausibly the same (a chain of loose links fails this). Joined by
            # two identical trade names, only a contradiction between the representatives
            # stops it (an address, code, size, district or business that disagrees), not
            # spellings of theirs too far apart to compare.
            decision, _, why = decide_pair(items[rep_i], items[rep_j], th)
            if decision == NO and (rule != "name_exact" or why not in _LOOSE_ONLY):
                review_pairs.append((i, j, score, "representatives_disagree", rule))
                continue
        uf.union(ri, rj)
        if local:
            if last in (i, j):  # the new record's own links, strongest first
                merges.append(score_pair(items[last], items[i + j - last], th))
        elif explain_merges:
            merges.append(score_pair(items[i], items[j], th))

    cluster_of: dict[str, str] = {}
    for i, p in enumerate(items):
        cluster_of[p.record_id] = items[uf.rep[uf.find(i)]].record_id

    # One review entry per pair of clusters, the strongest one; none for two clusters a
    # person already said are two firms.
    apart = set()
    for (i, j), same in decided.items():
        if not same:
            ri, rj = uf.find(i), uf.find(j)
            apart.add((ri, rj) if ri < rj else (rj, ri))
    best: dict[tuple[int, int], tuple[int, int, float, str, str]] = {}
    for t in review_pairs:
        ri, rj = uf.find(t[0]), uf.find(t[1])
        if ri == rj:
            continue
        key = (ri, rj) if ri < rj else (rj, ri)
        if key in apart:
            continue
        cur = best.get(key)
        # ties go to the lowest pair of records, whatever order the pairs were found in
        if cur is None or t[2] > cur[2] or (t[2] == cur[2] and t[:2] < cur[:2]):
            best[key] = t
    # A queue people can clear: at most review_share of the records, the pairs whose
    # decision would change the clusters most first (likelihood of being one firm times
    # the record pairs an acceptance would join).
    size = uf.size

    def weight(t: tuple[int, int, float, str, str]) -> float:
        return t[2] ** 8 * (size[uf.find(t[0])] * size[uf.find(t[1])]) ** 0.5

    ranked = sorted(best.values(), key=lambda t: (-weight(t), -t[2], t[0], t[1]))
    cap = len(ranked)
    if th.review_share is not None:
        cap = max(REVIEW_FLOOR, int(th.review_share * n))  # small lists keep a few
    not_queued = max(0, len(ranked) - cap)
    review: list[PairScore] = []
    for i, j, _score, rule, _pair_rule in ranked[:cap]:
        if local:
            if last not in (i, j):
                continue  # the incremental path queues the new record's pairs only
            i, j = last, i + j - last
        ps = score_pair(items[i], items[j], th)
        if rule != ps.rule:
            ps = _relabel(ps, REVIEW, rule)
        review.append(ps)
    n_clusters = len(set(cluster_of.values()))
    stats = {
        "records": n,
        "clusters": n_clusters,
        "merged": n - n_clusters,
        "review": len(review),
        "review_not_queued": not_queued,
        "pairs_compared": compared,
        "oversized_blocks_split": len(windows),
        "learned_merges": learned,
        "labels_used": len(decided),
    }
    return DedupResult(
        cluster_of=cluster_of, merges=merges, review=review, stats=stats, model=model
    )


def _demote_ambiguous(
    items: list[Prepared],
    auto_pairs: list[tuple[float, int, int, str]],
    review_pairs: list[tuple[int, int, float, str, str]],
    crowded: int = 4,
) -> list[tuple[float, int, int, str]]:
    """A record naming no industry that matches several businesses of one brand is ambiguous.

    华兴有限公司 could be 华兴机械 or 华兴食品: its automatic pairs go to review instead.
    """
    partner_inds: dict[int, set[str]] = {}
    for _, i, j, rule in auto_pairs:
        if rule in _DECIDING:
            continue
        pi, pj = items[i].parts.industry, items[j].parts.industry
        if not pi and pj:
            partner_inds.setdefault(i, set()).add(pj)
        elif not pj and pi:
            partner_inds.setdefault(j, set()).add(pi)
    ambiguous = {i for i, s in partner_inds.items() if len(s) > 1}
    # Likewise a record without any district whose name matches firms in several districts
    # (樱福酒业 in 彭州 and in 青白江): which one it is, a person has to say.
    partner_dists: dict[int, set[str]] = {}
    for _, i, j, rule in auto_pairs:
        if rule in _DECIDING:
            continue
        di, dj = items[i].district, items[j].district
        if not di and dj:
            partner_dists.setdefault(i, set()).add(dj)
        elif not dj and di:
            partner_dists.setdefault(j, set()).add(di)
    no_district = {i for i, s in partner_dists.items() if len(s) > 1}
    # A spelling seen in several records that agree with each other is an established name;
    # two established spellings that are merely similar (安明岸 / 安名岸) are two firms,
    # whereas a one-off spelling next to an established one is a typo of it.
    established = set()
    # A spelling that several records of one business and district carry is established
    # too, merged or not (a typo is a one-off). Only the spellings and sounds of the
    # similar-name pairs are counted (a table over millions of records is memory).
    similar = [(i, j) for _, i, j, rule in auto_pairs if rule == "name_similar_corroborated"]
    wanted_spellings = set()
    wanted_sounds = set()
    for i, j in similar:
        for k in (i, j):
            p = items[k]
            wanted_spellings.add((p.parts.core, p.parts.industry, p.district))
            wanted_sounds.add((p.parts.py, p.parts.industry, p.district))
    spelling: Counter = Counter()
    sounds: dict[tuple[str, str, str], set[str]] = {}
    for p in items:
        key = (p.parts.core, p.parts.industry, p.district)
        if key in wanted_spellings:
            spelling[key] += 1
        key = (p.parts.py, p.parts.industry, p.district)
        if key in wanted_sounds:
            sounds.setdefault(key, set()).add(p.parts.core)
    del wanted_spellings, wanted_sounds
    for i, j in similar:
        for k in (i, j):
            p = items[k]
            if spelling[(p.parts.core, p.parts.industry, p.district)] > 1:
                established.add(k)
    for _, i, j, rule in auto_pairs:
        if rule == "name_exact":
            established.add(i)
            established.add(j)
    # A sound that many spellings share in one business and district (鑫旭, 欣旭, 新旭 …)
    # is crowded: the more firms a city holds, the more often two of them sound alike, so
    # there a same-sound pair needs an agreeing address, code or size, not the district
    # alone (the weight of a value falls with its frequency, as in Splink's term
    # frequencies). A typo makes one spelling next to its firm's, rarely two.
    kept = []
    for t in auto_pairs:
        score, i, j, rule = t
        if rule in _DECIDING:
            kept.append(t)  # a valid code (or a person) decides whatever the name says
        elif (i in ambiguous and items[j].parts.industry) or (
            j in ambiguous and items[i].parts.industry
        ):
            review_pairs.append((i, j, score, "ambiguous_industry", rule))
        elif (i in no_district and items[j].district) or (j in no_district and items[i].district):
            review_pairs.append((i, j, score, "ambiguous_district", rule))
        elif rule == "name_similar_corroborated" and i in established and j in established:
            review_pairs.append((i, j, score, "two_established_spellings", rule))
        elif rule == "name_similar_corroborated" and _crowded_sound(
            items[i], items[j], sounds, crowded
        ):
            review_pairs.append((i, j, score, "crowded_sound", rule))
        else:
            kept.append(t)
    return kept


CROWDED_SPELLINGS = 4  # the default of DedupThresholds.crowded_spellings


def _crowded_sound(
    a: Prepared, b: Prepared, sounds: dict, crowded: int = CROWDED_SPELLINGS
) -> bool:
    """Same sound, other spelling, in a crowded sound, and nothing but the district agrees."""
    pa, pb = a.parts, b.parts
    if pa.py != pb.py or pa.core == pb.core:
        return False
    if len(sounds.get((pa.py, pa.industry, a.district), ())) < crowded:
        return False
    feats: dict[str, Any] = {}
    decide_pair(a, b, DedupThresholds(), feats)
    return not any(c != "district" for c in feats.get("corroborated_by", ()))


def _relabel(ps: PairScore, decision: str, rule: str) -> PairScore:
    """The same comparison with a decision changed by a clustering rule."""
    feats = dict(ps.features)
    if ps.rule != rule:
        feats["pair_rule"] = ps.rule
    return PairScore(ps.a, ps.b, ps.score, decision, rule, feats)


@dataclass
class MatchDecision:
    """What to do with one newly arrived record, and why."""

    record_id: str
    action: str  # "attach", "review" or "new"
    cluster_id: str  # cluster attached to; for "new"/"review" the record's own new cluster
    score: float
    rule: str
    candidate_id: str | None  # the existing record that decided (or needs review against)
    features: dict[str, Any] = field(default_factory=dict)
    # uncertain candidates, best first (with "attach": pairs with other clusters to review)
    review: list[PairScore] = field(default_factory=list)
    candidates_scored: int = 0


class DedupIndex:
    """Blocking-key index over existing records, for matching new ones against tens of candidates.

    A new record gets the batch's answer (cluster_records, the CSV command): match runs the
    batch clustering itself over the record's neighbourhood, i.e. the records sharing a
    blocking key with it (in a block over max_block records, its max_block nearest in the
    batch's sort order) and the other members of their clusters, so every batch rule applies
    (crowded sounds, established spellings, ambiguous industry or district, the cluster-level
    code and industry checks with a shared valid code's override, the cluster size cap and
    the chaining guard). The database layer mirrors it: it stores blocking_keys(prepare(rec))
    per record in a table and feeds the neighbourhood back (worker/dedup_jobs.py).
    """

    def __init__(self, thresholds: DedupThresholds | None = None) -> None:
        self.th = thresholds or DedupThresholds()
        # the local runs keep every review pair of the new record (the cap is a batch rule
        # over a whole list) and learn no weights from a neighbourhood of tens of pairs
        self._local_th = dataclasses.replace(self.th, review_share=None, learned_auto=None)
        self.items: list[Prepared] = []
        self.by_id: dict[str, int] = {}
        self.cluster: list[str] = []
        self.rep_of: dict[str, int] = {}
        self.members: dict[str, list[int]] = {}
        # key → record index, or list of indexes (most keys have one record: saves memory)
        self.keys: dict[str, int | list[int]] = {}
        # oversized blocks in the batch's sort order: key → (size when sorted, sort keys, order)
        self._sorted: dict[str, tuple[int, list[tuple[str, str, str]], list[int]]] = {}

    @classmethod
    def build(
        cls,
        records: Iterable[EnterpriseRecord | Mapping[str, Any]],
        cluster_of: Mapping[str, str] | None = None,
        thresholds: DedupThresholds | None = None,
    ) -> DedupIndex:
        """Index existing records; cluster_of maps record_id → cluster id (default: own id)."""
        idx = cls(thresholds)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # see cluster_records: millions of small objects
        try:
            for r in records:
                p = prepare(r)
                cid = cluster_of.get(p.record_id, p.record_id) if cluster_of else p.record_id
                idx._add_prepared(p, cid)
        finally:
            if gc_was_enabled:
                # The index lives as long as the worker: move it out of the collector's
                # sight, or the first collections afterwards rescan millions of objects.
                gc.freeze()
                gc.enable()
        return idx

    def __len__(self) -> int:
        return len(self.items)

    def add(
        self, record: EnterpriseRecord | Mapping[str, Any], cluster_id: str | None = None
    ) -> None:
        """Index one record as a member of cluster_id (its own cluster when None)."""
        p = prepare(record)
        self._add_prepared(p, cluster_id or p.record_id)

    def _add_prepared(self, p: Prepared, cluster_id: str) -> None:
        """Index a prepared record; the first member (or the first with a valid code) represents."""
        i = len(self.items)
        self.items.append(p)
        self.by_id[p.record_id] = i
        self.cluster.append(cluster_id)
        self.members.setdefault(cluster_id, []).append(i)
        rep = self.rep_of.get(cluster_id)
        if rep is None or (p.uscc_valid and not self.items[rep].uscc_valid):
            self.rep_of[cluster_id] = i
        keys = self.keys
        for k in blocking_keys(p):
            cur = keys.get(k)
            if cur is None:
                keys[k] = i
            elif isinstance(cur, int):
                keys[k] = [cur, i]
            else:
                cur.append(i)

    def _window(self, key: str, lst: list[int], p: Prepared) -> list[int]:
        """The max_block records of an oversized block nearest to p in the batch's order."""
        cached = self._sorted.get(key)
        if cached is None or cached[0] != len(lst):
            order = sorted(lst, key=lambda k: _neighbourhood_key(self.items[k]))
            cached = (len(lst), [_neighbourhood_key(self.items[k]) for k in order], order)
            self._sorted[key] = cached
        _, sort_keys, order = cached
        x = bisect.bisect_right(sort_keys, _neighbourhood_key(p))
        half = max(1, self.th.max_block // 2)
        return order[max(0, x - half) : x + half]

    def candidates(self, p: Prepared) -> list[int]:
        """Indexes of existing records sharing a blocking key with p, as the batch compares
        them: every member of a block, in a block over max_block records its max_block
        nearest neighbours; industry-free keys only for or with records naming no
        specific industry. Capped at max_candidates (the nearest-key ones first)."""
        out: dict[int, None] = {}
        asks = _asks_all_industries(p)
        items = self.items
        for k in blocking_keys(p):
            cur = self.keys.get(k)
            if cur is None:
                continue
            lst = [cur] if isinstance(cur, int) else cur
            if len(lst) > self.th.max_block:
                lst = self._window(k, lst, p)
            general = k.startswith("g:") and not asks
            for j in lst:
                if general and not _asks_all_industries(items[j]):
                    continue  # two specific industries: an industry conflict anyway
                if items[j].record_id != p.record_id:
                    out[j] = None
        return list(out)[: self.th.max_candidates]

    def neighbourhood(self, cand: list[int]) -> list[int]:
        """The candidates and the other members of their clusters, in index order."""
        local: dict[int, None] = dict.fromkeys(cand)
        for j in cand:
            for k in self.members.get(self.cluster[j], ()):
                local[k] = None
        return sorted(local)

    def match(
        self, record: EnterpriseRecord | Mapping[str, Any], add: bool = False
    ) -> MatchDecision:
        """Decide attach / review / new for one record; with add=True also index it.

        The batch clustering over the record's neighbourhood decides (see the class
        docstring): attach to the cluster of the record it is linked to, queue the pairs the
        batch would list for review, or a cluster of its own.
        """
        p = prepare(record)
        cand = self.candidates(p)
        decision: MatchDecision | None = None
        if cand:
            local = [k for k in self.neighbourhood(cand) if self.items[k].record_id != p.record_id]
            items = [self.items[k] for k in local]
            items.append(p)
            res = _cluster(items, self._local_th, None, False, local=True)
            pos = {it.record_id: x for x, it in enumerate(items)}
            mine = res.cluster_of[p.record_id]
            mates = Counter(
                self.cluster[local[x]]
                for x, it in enumerate(items[:-1])
                if res.cluster_of[it.record_id] == mine
            )
            if mates:
                # The record's own strongest link into the stored cluster holding most of its
                # batch cluster (the neighbourhood may join what is stored apart).
                cid = max(mates, key=lambda c: (mates[c], -min(self.members[c])))
                link = next(
                    (ps for ps in res.merges if self.cluster[local[pos[ps.b]]] == cid), None
                )
                if link is None:  # joined through a neighbour: the best comparison explains
                    link = max(
                        (
                            score_pair(p, self.items[k], self.th)
                            for k in self.members[cid]
                            if k in set(local)
                        ),
                        key=lambda ps: ps.score,
                    )
                # Pairs with other clusters the batch would list for review stay listed.
                elsewhere = [ps for ps in res.review if self.cluster[local[pos[ps.b]]] != cid]
                elsewhere.sort(key=lambda r: -r.score)
                decision = MatchDecision(
                    p.record_id,
                    "attach",
                    cid,
                    link.score,
                    link.rule,
                    link.b,
                    link.features,
                    elsewhere[:5],
                    len(cand),
                )
            elif res.review:
                reviews = sorted(res.review, key=lambda r: -r.score)
                top = reviews[0]
                decision = MatchDecision(
                    p.record_id,
                    "review",
                    p.record_id,
                    top.score,
                    top.rule,
                    top.b,
                    top.features,
                    reviews[:5],
                    len(cand),
                )
        if decision is None:
            decision = MatchDecision(
                p.record_id,
                "new",
                p.record_id,
                0.0,
                "no_candidate_matched",
                None,
                {},
                [],
                len(cand),
            )
        if add:
            self._add_prepared(p, decision.cluster_id)
        return decision

    def match_many(
        self, records: Iterable[EnterpriseRecord | Mapping[str, Any]], add: bool = True
    ) -> list[MatchDecision]:
        """Match records one after another; with add=True later ones can attach to earlier ones."""
        return [self.match(r, add=add) for r in records]


__all__ = [
    "AUTO",
    "NO",
    "REVIEW",
    "DedupIndex",
    "DedupResult",
    "MatchDecision",
    "cluster_records",
]
