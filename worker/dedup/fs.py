"""Fellegi–Sunter weights learned on the roster itself (expectation maximisation).

The rules of match.decide_pair settle what is certain either way (a shared valid code,
different branches or businesses, disagreeing registered districts, a lone weak likeness)
and merge what has a second agreeing field. What is left for review is a mixture: true
duplicates whose only fault is, say, a mistyped district, and distinct firms of one name.
How often each comparison outcome occurs among duplicates (m) and among distinct firms (u)
differs from roster to roster, so it is estimated on the roster's own candidate pairs by
EM over the comparison patterns, as Splink does, instead of being tuned by hand. A review
pair whose posterior probability of being one firm reaches DedupThresholds.learned_auto is
merged (rule "learned_weights"); the rest stay in review. The answers people give to the
review list (the CSV command's --labels) enter the fit as labelled pairs: their counts
are put wholly among the duplicates or the distinct firms at every step.

Pure Python over distinct patterns (a few thousand at most): no numpy needed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from worker.dedup.match import (
    Prepared,
    address_similarity,
    industry_relation,
    name_similarity,
    uscc_relation,
)

# A pair decided by a person counts as this many candidate pairs in the fit: a few
# hundred answers should move weights estimated on tens of thousands of pairs.
LABEL_WEIGHT = 20.0

# Comparison levels per feature; the last level of each is "missing" (no weight).
FEATURES = ("name", "district", "address", "code", "headcount", "industry", "legal")
N_LEVELS = (12, 4, 4, 4, 4, 3, 3)

# Starting values: duplicates mostly agree, distinct firms mostly do not (EM moves them).
_M0 = (
    (0.45, 0.15, 0.10, 0.05, 0.05, 0.05, 0.05, 0.04, 0.03, 0.02, 0.01),
    (0.85, 0.10, 0.05),
    (0.80, 0.15, 0.05),
    (0.55, 0.40, 0.05),
    (0.80, 0.15, 0.05),
    (0.90, 0.10),
    (0.80, 0.20),
)
_U0 = (
    (0.10, 0.10, 0.05, 0.10, 0.05, 0.05, 0.10, 0.10, 0.15, 0.15, 0.05),
    (0.30, 0.40, 0.30),
    (0.10, 0.20, 0.70),
    (0.05, 0.05, 0.90),
    (0.30, 0.30, 0.40),
    (0.60, 0.40),
    (0.50, 0.50),
)

_NAME_LEVEL = {
    ("identical", True): 0,
    ("identical", False): 1,
    ("same_pinyin", True): 2,
    ("same_pinyin", False): 3,
    ("doubled_char", True): 4,
    ("doubled_char", False): 4,
    ("dropped_char", True): 5,
    ("dropped_char", False): 6,
    ("one_char_differs", True): 7,
    ("one_char_differs", False): 7,
}


def pair_levels(a: Prepared, b: Prepared) -> tuple[int, ...]:
    """The comparison pattern of two records (one level per feature of FEATURES)."""
    pa, pb = a.parts, b.parts
    sim, rule = name_similarity(pa, pb)
    long_name = min(len(pa.core), len(pb.core)) >= 3
    name = _NAME_LEVEL.get((rule, long_name))
    if name is None:
        name = 8 if sim >= 0.8 else 9 if sim >= 0.7 else 10
    da, db = a.dists, b.dists
    if not da or not db:
        district = 3
    elif any(d in db for d in da):
        district = 0
    elif a.dstrong and b.dstrong:
        district = 2
    else:
        district = 1
    if a.address and b.address:
        asim = address_similarity(a, b)
        address = 0 if asim >= 0.85 else 1 if asim >= 0.5 else 2
    else:
        address = 3
    rel = uscc_relation(a, b)
    code = {"equal_unchecked": 0, "equal_valid": 0, "near": 1, "differ": 2}.get(rel, 3)
    if a.headcount and b.headcount:
        ratio = max(a.headcount, b.headcount) / min(a.headcount, b.headcount)
        headcount = 0 if ratio <= 1.5 else 1 if ratio <= 3 else 2
    else:
        headcount = 3
    ind = industry_relation(pa.industry, pb.industry)
    industry = 0 if ind == "same" else 1 if ind == "generic" else 2
    if pa.legal and pb.legal:
        legal = 0 if pa.legal == pb.legal else 1
    else:
        legal = 2
    return (name, district, address, code, headcount, industry, legal)


@dataclass
class FSModel:
    """m and u probabilities per feature level and the share of matches among the pairs."""

    m: list[list[float]]
    u: list[list[float]]
    lam: float
    iterations: int = 0
    pairs: int = 0
    labelled: int = 0  # pairs decided by people that the fit used

    @classmethod
    def initial(cls) -> FSModel:
        """The starting values (before any roster is seen)."""
        m = [list(_pad(x, n)) for x, n in zip(_M0, N_LEVELS, strict=True)]
        u = [list(_pad(x, n)) for x, n in zip(_U0, N_LEVELS, strict=True)]
        return cls(m, u, 0.3)

    @classmethod
    def fit(
        cls,
        patterns: Counter,
        iterations: int = 60,
        tol: float = 1e-6,
        labelled: Counter | None = None,
        label_weight: float = LABEL_WEIGHT,
    ) -> FSModel:
        """Estimate m, u and the match share by EM on pattern counts.

        labelled counts (pattern, same) of pairs a person decided (the review queue's
        answers): each counts label_weight times, wholly among the duplicates (m) or the
        distinct firms (u) at every step, instead of by its posterior. They move the
        weights but not the match share: which pairs people are shown is not a sample.
        """
        model = cls.initial()
        total = sum(patterns.values())
        labelled = labelled or Counter()
        model.pairs = total
        model.labelled = sum(labelled.values())
        if not total:
            return model
        items = list(patterns.items())
        missing = [n - 1 for n in N_LEVELS]
        k = len(N_LEVELS)
        for it in range(iterations):
            m_acc = [[1e-3] * n for n in N_LEVELS]  # a little smoothing
            u_acc = [[1e-3] * n for n in N_LEVELS]
            matched = 0.0
            lam = model.lam
            m, u = model.m, model.u
            for pat, cnt in items:
                pm, pu = lam, 1.0 - lam
                for f in range(k):
                    lv = pat[f]
                    if lv != missing[f]:
                        pm *= m[f][lv]
                        pu *= u[f][lv]
                w = pm / (pm + pu) if pm + pu > 0 else 0.0
                matched += cnt * w
                cw, cu = cnt * w, cnt * (1.0 - w)
                for f in range(k):
                    lv = pat[f]
                    if lv != missing[f]:
                        m_acc[f][lv] += cw
                        u_acc[f][lv] += cu
            for (pat, same), cnt in labelled.items():
                acc = m_acc if same else u_acc
                for f in range(k):
                    lv = pat[f]
                    if lv != missing[f]:
                        acc[f][lv] += cnt * label_weight
            new_lam = min(max(matched / total, 1e-6), 1 - 1e-6)
            model.m = [_normalise(row, missing[f]) for f, row in enumerate(m_acc)]
            model.u = [_normalise(row, missing[f]) for f, row in enumerate(u_acc)]
            model.iterations = it + 1
            if abs(new_lam - lam) < tol:
                model.lam = new_lam
                break
            model.lam = new_lam
        return model

    def log2_bayes_factor(self, pat: tuple[int, ...]) -> float:
        """Sum of the features' match weights log2(m/u) (missing features weigh nothing)."""
        total = 0.0
        for f, lv in enumerate(pat):
            if lv != N_LEVELS[f] - 1:
                total += math.log2(self.m[f][lv] / self.u[f][lv])
        return total

    def posterior(self, pat: tuple[int, ...]) -> float:
        """Probability that a candidate pair with this pattern is one firm."""
        prior = math.log2(self.lam / (1 - self.lam))
        x = prior + self.log2_bayes_factor(pat)
        if x > 60:
            return 1.0
        return 1.0 - 1.0 / (1.0 + 2.0**x)

    def weights(self) -> dict[str, list[float]]:
        """Match weights log2(m/u) per feature level, for reports."""
        out = {}
        for f, name in enumerate(FEATURES):
            out[name] = [
                round(math.log2(self.m[f][lv] / self.u[f][lv]), 2) for lv in range(N_LEVELS[f] - 1)
            ]
        return out


def _pad(row: tuple[float, ...], n: int) -> tuple[float, ...]:
    """A starting row with a (never used) slot for the missing level."""
    return (*row, 1.0) if len(row) == n - 1 else row


def _normalise(row: list[float], missing: int) -> list[float]:
    """Probabilities over the non-missing levels (the missing slot is kept at 1)."""
    s = sum(v for i, v in enumerate(row) if i != missing)
    return [1.0 if i == missing else v / s for i, v in enumerate(row)]
