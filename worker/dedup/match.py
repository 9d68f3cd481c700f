"""Pairwise comparison of enterprise records: blocking keys, features, score and decision.

Every decision carries its score, the name of the rule that fired and the features it
looked at, so that the database layer can record what decided a merge and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rapidfuzz.distance import Indel, Levenshtein

from worker.dedup.normalize import (
    GENERIC_INDUSTRY,
    NameParts,
    char_pinyin,
    district_in_address,
    district_in_region,
    district_of_code,
    normalize_address,
    normalize_district,
    normalize_name,
    normalize_uscc,
)

AUTO = "auto"
REVIEW = "review"
NO = "no"


@dataclass(frozen=True)
class DedupThresholds:
    """Tunable parameters of matching and clustering."""

    auto: float = 0.90  # score at or above which a corroborated pair merges by itself
    review: float = 0.75  # score at or above which a pair goes to human review
    # Records sharing a blocking key are all compared while the block holds at most this
    # many; a bigger block is sorted (district, address, name) and each record meets its
    # max_block nearest there, so the pairs per record stay flat as a roster grows
    # (was 400: at 2.3 million records blocks of a few hundred made cost quadratic).
    max_block: int = 20
    max_cluster: int = 60  # a merge that would make a bigger cluster goes to review instead
    max_candidates: int = 200  # incremental: candidates scored per new record at most
    # batch: the review list holds at most this share of the records (None: no cap)
    review_share: float | None = 0.02
    # batch: a review pair whose probability of being one firm, by Fellegi–Sunter weights
    # learned on the batch itself (EM), reaches this merges (None: off, the default: on the
    # extended generator it cost precision, see docs/dedup.md)
    learned_auto: float | None = None
    # batch and incremental: a same-sound pair (鑫旭 / 欣旭) with nothing but the district
    # agreeing goes to review when its sound has at least this many spellings in one
    # business and district ("crowded"); 2 sends every such pair to review (higher
    # precision, lower recall: docs/dedup.md)
    crowded_spellings: int = 4


@dataclass(frozen=True, slots=True)
class EnterpriseRecord:
    """One enterprise record as it arrives (from a CSV row, a sync, the database)."""

    record_id: str
    name: str
    district: str = ""
    uscc: str = ""
    address: str = ""
    headcount: int | None = None


def as_record(rec: EnterpriseRecord | Mapping[str, Any]) -> EnterpriseRecord:
    """Accept a record object or a plain dict with the same keys."""
    if isinstance(rec, EnterpriseRecord):
        return rec
    hc = rec.get("headcount")
    try:
        headcount = int(hc) if hc not in (None, "") else None
    except (TypeError, ValueError):
        headcount = None
    return EnterpriseRecord(
        record_id=str(rec["record_id"]),
        name=str(rec.get("name") or ""),
        district=str(rec.get("district") or ""),
        uscc=str(rec.get("uscc") or ""),
        address=str(rec.get("address") or ""),
        headcount=headcount,
    )


class Prepared:
    """A record with its normalised parts, computed once and reused in every comparison."""

    __slots__ = (
        "record_id",
        "name",
        "parts",
        "district",
        "district_src",
        "dists",
        "dstrong",
        "uscc",
        "uscc_valid",
        "address",
        "address_key",
        "headcount",
    )

    def __init__(self, rec: EnterpriseRecord) -> None:
        self.record_id = rec.record_id
        self.name = rec.name
        self.parts: NameParts = normalize_name(rec.name)
        self.uscc, self.uscc_valid = normalize_uscc(rec.uscc)
        # Where the enterprise is, from every source present: a district named in the
        # registered name (成都市郫县开华…), a district the address starts with, the district
        # field (picked by hand: sometimes wrong) and the region inside the credit code
        # (positions 3–8: where the firm *registered*, often a district it has since left).
        # None of them is a veto alone: two records agree on the district when any of their
        # claims agree (dists), and disagree strongly only when both registered names or
        # addresses say so (dstrong). district is the best single claim, district_src its
        # source ("name", "address", "field", "code").
        claims = (
            ("name", district_in_region(self.parts.region)),
            ("address", district_in_address(rec.address)),
            ("field", normalize_district(rec.district)),
            ("code", district_of_code(self.uscc)),
        )
        district, src = "", ""
        for s, d in claims:
            if d:
                district, src = d, s
                break
        self.district = district
        self.district_src = src
        self.dists = tuple(dict.fromkeys(d for _, d in claims if d))
        self.dstrong = tuple(dict.fromkeys(d for s, d in claims[:2] if d))
        self.address = normalize_address(rec.address)
        self.address_key = address_key(self.address)
        self.headcount = rec.headcount


_ADDRESS_KEY_RE = re.compile(r"^(.+?(?:大道|路|街|巷|道))(\d+)号")


def address_key(address: str) -> str:
    """Road and house number of a normalised address (红星路88号附1号 → 红星路#88), or "".

    What follows the number (a floor, 附1号, 1栋, a building's name, 旁, 附近) is written
    in many ways for one place; the road and the number are what locate it.
    """
    m = _ADDRESS_KEY_RE.match(address)
    return f"{m.group(1)}#{m.group(2)}" if m else ""


def address_similarity(a: Prepared, b: Prepared) -> float:
    """Similarity of two addresses in [0, 1]; one road and house number count as the same."""
    if a.address_key and a.address_key == b.address_key:
        return 1.0
    return Indel.normalized_similarity(a.address, b.address)


def prepare(rec: EnterpriseRecord | Mapping[str, Any] | Prepared) -> Prepared:
    """Normalise one record for matching (a record already prepared is returned as it is)."""
    if isinstance(rec, Prepared):
        return rec
    return Prepared(as_record(rec))


def _syllables(core: str) -> list[str]:
    """Toneless pinyin syllables of a trade name (stable across processes, unlike NameParts.py)."""
    return [char_pinyin(ch) for ch in core]


def blocking_keys(p: Prepared, cached: bool = True) -> list[str]:
    """Keys under which a record is indexed; records sharing a key are compared.

    Pinyin keys catch same-sound typos; one-syllable deletions catch dropped or doubled
    characters (and any single wrong character in names of three or more); the industry
    and branch label are part of the key because different ones never match.
    """
    parts = p.parts
    # cached=False: a pass over a whole roster (its keys would fill the cache for nothing)
    keys_of = _name_keys if cached else _name_keys.__wrapped__
    name_keys = keys_of(parts.core, parts.industry, parts.branch)
    if p.uscc:
        return ["u:" + p.uscc, *name_keys]
    return list(name_keys)


@lru_cache(maxsize=1 << 18)
def _name_keys(core: str, industry: str, branch: str) -> tuple[str, ...]:
    """The name part of the blocking keys, computed once per distinct trade name."""
    syl = _syllables(core)
    if not syl:
        return ()
    suffix = "|" + industry + "|" + branch
    full = "-".join(syl)
    keys = ["d:" + full + suffix]
    if len(syl) >= 3:
        for i in range(len(syl)):
            keys.append("d:" + "-".join(syl[:i] + syl[i + 1 :]) + suffix)
    # Records whose industry is unknown or generic must meet every industry of that name.
    keys.append("g:" + full + "|" + branch)
    return tuple(dict.fromkeys(keys))


def _collapse(text: str) -> str:
    """Drop immediately repeated characters (华兴兴 → 华兴), a common typing slip."""
    out = []
    prev = ""
    for ch in text:
        if ch != prev:
            out.append(ch)
        prev = ch
    return "".join(out)


def name_similarity(a: NameParts, b: NameParts) -> tuple[float, str]:
    """Similarity of two trade names in [0, 1] and the pattern that explains it."""
    if a.core == b.core:
        return 1.0, "identical"
    if a.py == b.py:
        return 0.95, "same_pinyin"
    if _collapse(a.py) == _collapse(b.py):
        return 0.93, "doubled_char"
    la, lb = len(a.py), len(b.py)
    d = Levenshtein.distance(a.py, b.py, score_cutoff=2)
    if d == 1:
        if la != lb and min(la, lb) >= 2:
            # A two-character name inside a three-character one is often another firm
            # at city scale: weaker, so that the district alone cannot carry it.
            return (0.88 if min(la, lb) >= 3 else 0.84), "dropped_char"
        if la == lb and la >= 3:
            return 0.85, "one_char_differs"
    # Short names leave little room: scale so that unrelated names fall far below review.
    return 0.9 * Indel.normalized_similarity(a.core, b.core), "char_ratio"


def industry_relation(a: str, b: str) -> str:
    """same / missing (a side names none) / generic (科技, 实业 against a business) / conflict."""
    if a == b:
        return "same" if a else "missing"
    if not a or not b:
        return "missing"
    if a == GENERIC_INDUSTRY or b == GENERIC_INDUSTRY:
        # 庆源实业 and 庆源劳务 may be one group's two companies: never merged unseen.
        return "generic"
    return "conflict"


def uscc_relation(a: Prepared, b: Prepared) -> str:
    """How the two credit codes relate: decides, supports, or contradicts identity."""
    if not a.uscc or not b.uscc:
        return "missing"
    if a.uscc == b.uscc:
        return "equal_valid" if a.uscc_valid else "equal_unchecked"
    if a.uscc_valid and b.uscc_valid:
        return "conflict_valid"
    # One code failed its check: a typo of the other one is likely when they are this close.
    if Levenshtein.distance(a.uscc, b.uscc, score_cutoff=3) <= 2:
        return "near"
    return "differ"


@dataclass
class PairScore:
    """The comparison of two records: score, decision, the rule that fired and its features."""

    a: str
    b: str
    score: float
    decision: str  # "auto", "review" or "no"
    rule: str
    features: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for the decision log."""
        return {
            "a": self.a,
            "b": self.b,
            "score": round(self.score, 4),
            "decision": self.decision,
            "rule": self.rule,
            "features": self.features,
        }


def score_pair(a: Prepared, b: Prepared, th: DedupThresholds | None = None) -> PairScore:
    """Compare two prepared records and decide: merge automatically, review, or not the same."""
    feats: dict[str, Any] = {"core_a": a.parts.core, "core_b": b.parts.core}
    decision, score, rule = decide_pair(a, b, th or _DEFAULT, feats)
    return PairScore(a.record_id, b.record_id, score, decision, rule, feats)


_DEFAULT = DedupThresholds()


def decide_pair(
    a: Prepared, b: Prepared, th: DedupThresholds, feats: dict[str, Any] | None = None
) -> tuple[str, float, str]:
    """(decision, score, rule) for a pair; fills feats when given (the batch skips it for speed)."""
    pa, pb = a.parts, b.parts
    uscc = uscc_relation(a, b)
    if feats is not None:
        feats["uscc"] = uscc
    if uscc == "equal_valid":
        return AUTO, 1.0, "uscc_equal"
    if uscc == "conflict_valid":
        return NO, 0.0, "uscc_conflict"
    if pa.branch != pb.branch:
        if feats is not None:
            feats["branch_a"], feats["branch_b"] = pa.branch, pb.branch
        return NO, 0.0, "branch_mismatch"
    ind = industry_relation(pa.industry, pb.industry)
    if (
        ind == "same"
        and pa.industry == GENERIC_INDUSTRY
        and pa.industry_words[:2] != pb.industry_words[:2]
    ):
        # 华兴科技 / 华兴实业: one brand's two generic words are often two companies.
        ind = "generic"
    related = (
        ind == "same"
        and pa.subindustry != pb.subindustry
        and bool(pa.subindustry and pb.subindustry)
        and not pa.industry_words.startswith(pb.industry_words)
        and not pb.industry_words.startswith(pa.industry_words)
    )
    if feats is not None and related:
        feats["subindustry"] = f"{pa.industry_words}/{pb.industry_words}"
    if feats is not None:
        feats["industry"] = ind
    if ind == "conflict":
        if feats is not None:
            feats["industry_a"], feats["industry_b"] = pa.industry, pb.industry
        return NO, 0.0, "industry_conflict"

    name_sim, name_rule = name_similarity(pa, pb)
    score = name_sim
    if name_sim < th.review - 0.15 and uscc != "equal_unchecked":
        # No evidence below can lift the score to review: stop early (most pairs end here).
        if feats is not None:
            feats["name_sim"], feats["name_rule"] = round(name_sim, 4), name_rule
        return NO, score, "below_review"
    corroborated: list[str] = []
    contradicted: list[str] = []

    da, db = a.dists, b.dists
    if da and db:
        if any(d in db for d in da):
            district = "same"
            score += 0.04
            corroborated.append("district")
        elif a.dstrong and b.dstrong:
            # Both registered names or addresses name other districts: two firms, unless
            # the address or a code says otherwise.
            district = "differ"
            score -= 0.15
            contradicted.append("district")
        else:
            # A typed field or a code's region disagrees: often a typing slip or a move.
            district = "differ_weak"
            score -= 0.05
            contradicted.append("district_weak")
    else:
        district = "missing"

    asim = None
    if a.address and b.address:
        asim = address_similarity(a, b)
        if asim >= 0.85:
            score += 0.06
            corroborated.append("address")
        elif asim < 0.5:
            score -= 0.08
            contradicted.append("address")

    if uscc == "equal_unchecked":
        score += 0.12
        corroborated.append("uscc_unchecked")
    elif uscc == "near":
        score += 0.08
        corroborated.append("uscc_near")
    elif uscc == "differ":
        score -= 0.05
        contradicted.append("uscc")

    ratio = None
    if a.headcount and b.headcount:
        ratio = max(a.headcount, b.headcount) / min(a.headcount, b.headcount)
        if ratio <= 1.5:
            score += 0.02
        elif ratio > 3:
            score -= 0.05
            contradicted.append("headcount")

    if ind != "same":
        score -= 0.03
    legal_differs = bool(pa.legal and pb.legal and pa.legal != pb.legal)
    if legal_differs:
        score -= 0.02

    score = max(0.0, min(1.0, score))
    if feats is not None:
        feats["name_sim"] = round(name_sim, 4)
        feats["name_rule"] = name_rule
        feats["district"] = district
        if asim is not None:
            feats["address_sim"] = round(asim, 3)
        if ratio is not None:
            feats["headcount_ratio"] = round(ratio, 2)
        if legal_differs:
            feats["legal"] = f"{pa.legal}/{pb.legal}"
        feats["corroborated_by"] = corroborated
        if contradicted:
            feats["contradicted_by"] = contradicted
        if a.district_src != "field" or b.district_src != "field":
            feats["district_from"] = f"{a.district_src or '-'}/{b.district_src or '-'}"

    strong = [c for c in corroborated if c != "district"]
    if ind == "generic":
        pass  # at most review
    elif name_rule == "identical":
        # A district conflict needs the address or the code to agree before merging, and
        # a name without its industry needs some second field (华兴 may be 华兴机械 or 华兴食品).
        # Identical after normalisation but two addresses (or codes, sizes) that disagree:
        # two firms of one name (a 厂 and a 有限公司), not merged unseen; nor when another
        # district is named (only a typed field or a code's region, but a second firm of
        # that name elsewhere is as likely as a typing slip): a second field must agree.
        if score >= th.auto and (
            strong
            or (
                district not in ("differ", "differ_weak")
                and not related
                and (ind == "same" or corroborated)
                and not any(c not in ("district", "district_weak") for c in contradicted)
            )
        ):
            return AUTO, score, "name_exact"
    elif score >= th.auto and (
        strong
        or (
            corroborated
            and ind == "same"
            and not related  # 玉华汽车配件 / 宇华汽车销售: two businesses, two firms
            and (min(len(pa.core), len(pb.core)) > 2 or not contradicted)
        )
    ):
        # A similar name needs a second agreeing field; the district alone only when the
        # industry agrees too; for a two-character trade name only when no other field
        # disagrees: a city holds many same-sounding two-character names in one business
        # and district (鑫旭 / 欣旭), told apart only by their addresses, codes, sizes.
        return AUTO, score, "name_similar_corroborated"
    if name_rule != "identical" and district == "differ" and not corroborated:
        # A similar name in another district with nothing else agreeing: a different firm.
        return NO, score, "district_conflict"
    if not strong and uscc != "equal_unchecked":
        # Not worth a coordinator's time (the review list must stay short enough to be read):
        if any(c not in ("district", "district_weak") for c in contradicted):
            # the address, the code or the size disagrees and nothing but the name agrees;
            return NO, score, "contradicted"
        if district == "differ":
            # the same name, but both registered (name, address) in other districts;
            return NO, score, "district_conflict"
        if not corroborated and (
            name_rule == "one_char_differs"
            or (
                name_rule in ("same_pinyin", "dropped_char")
                and min(len(pa.core), len(pb.core)) <= 2
            )
        ):
            # or a weak likeness of short names (欣旭 / 鑫旭, 新康 / 馨宏康) with no field agreeing.
            return NO, score, "weak_name_only"
    if score >= th.review:
        rule = "name_exact_conflicting" if name_rule == "identical" else "name_similar_uncertain"
        return REVIEW, score, rule
    if uscc == "equal_unchecked":
        # The same unchecked code under different names is worth a look, never a merge.
        return REVIEW, score, "uscc_unchecked_equal"
    return NO, score, "below_review"
