"""Enterprise deduplication: normalise names, compare records, cluster them, match new ones.

The functions take plain records (EnterpriseRecord or dicts) and return clusters, pair
scores and decisions with explanations; no database or web framework is involved.
"""

from worker.dedup.cluster import DedupIndex, DedupResult, MatchDecision, cluster_records
from worker.dedup.match import (
    DedupThresholds,
    EnterpriseRecord,
    PairScore,
    Prepared,
    blocking_keys,
    name_similarity,
    prepare,
    score_pair,
)
from worker.dedup.normalize import NameParts, normalize_name

__all__ = [
    "DedupIndex",
    "DedupResult",
    "DedupThresholds",
    "EnterpriseRecord",
    "MatchDecision",
    "NameParts",
    "PairScore",
    "Prepared",
    "blocking_keys",
    "cluster_records",
    "name_similarity",
    "normalize_name",
    "prepare",
    "score_pair",
]
