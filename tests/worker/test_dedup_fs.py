"""Fellegi–Sunter weights learned by EM: recovered from a known mixture, used in the batch."""

import random
from collections import Counter

from worker.dedup import DedupThresholds, EnterpriseRecord, cluster_records
from worker.dedup.fs import N_LEVELS, FSModel, pair_levels
from worker.dedup.match import prepare


def _mixture(lam, m, u, n, seed=3):
    """Patterns drawn from a two-class model with independent features."""
    rnd = random.Random(seed)
    counts = Counter()
    for _ in range(n):
        probs = m if rnd.random() < lam else u
        counts[tuple(rnd.choices(range(len(p)), p)[0] for p in probs)] += 1
    return counts


def test_em_recovers_the_match_share_and_weights_of_a_known_mixture():
    # Only the first levels of each feature are used (the last is "missing").
    m = [[0.7, 0.2, 0.1], [0.9, 0.1], [0.8, 0.2]]
    u = [[0.05, 0.15, 0.8], [0.3, 0.7], [0.2, 0.8]]
    counts = _mixture(0.3, m, u, 40_000)
    # pad to the model's feature layout: the remaining features are always "missing"
    pad = tuple(n - 1 for n in N_LEVELS[3:])
    patterns = Counter()
    for pat, c in counts.items():
        name = (0, 5, 9)[pat[0]]  # three name levels
        patterns[(name, pat[1], pat[2] * 2, *pad)] += c
    model = FSModel.fit(patterns)
    assert abs(model.lam - 0.3) < 0.03
    w = model.weights()
    assert w["name"][0] > 3 and w["name"][9] < -2  # identical names weigh for, weak against
    assert w["district"][0] > 0 > w["district"][1]
    # the true posteriors: 0.3*0.7*0.9*0.8 / (that + 0.7*0.05*0.3*0.2) and the like
    assert abs(model.posterior((0, 0, 0, *pad)) - 0.9863) < 0.01
    assert model.posterior((9, 1, 2, *pad)) < 0.01


def test_pair_levels_name_the_comparison_outcomes():
    a = prepare({"record_id": "a", "name": "华兴达机械有限公司", "district": "锦江区"})
    b = prepare({"record_id": "b", "name": "华星达机械厂", "district": "双流县"})
    name, district, address, code, headcount, industry, legal = pair_levels(a, b)
    assert name == 2  # same pinyin, three characters
    assert district == 1  # typed fields disagree: weak
    assert (address, code, headcount) == (3, 3, 3)  # missing
    assert industry == 0 and legal == 1


def test_batch_learns_weights_only_when_asked():
    recs = [
        EnterpriseRecord(f"r{k}", name, district, "", address)
        for k, (name, district, address) in enumerate(
            [
                ("华兴达机械有限公司", "锦江区", "红星路88号"),
                ("华兴达机械有限公司", "锦江区", "红星路88号"),
                ("华兴达机械有限公司", "双流县", ""),
                ("蓉欣商贸有限公司", "武侯区", ""),
                ("蓉鑫商贸有限公司", "武侯区", ""),
            ]
        )
    ]
    off = cluster_records(recs)
    assert off.model is None and off.stats["learned_merges"] == 0
    on = cluster_records(recs, DedupThresholds(learned_auto=0.99))
    assert on.model is not None and on.model.pairs > 0
    assert 0 < on.model.lam < 1
