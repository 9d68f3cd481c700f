"""The held-out roster generator and the pairwise scorer (bench/roster_heldout.py,
bench/dedup_score.py): valid codes, a consistent truth file, every family present,
reproducible output, and pair counts that match a brute-force count."""

from __future__ import annotations

import csv
import itertools
import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import dedup_score  # noqa: E402
import roster_heldout as rh  # noqa: E402

RECORDS = 2000


@pytest.fixture(scope="module")
def roster(tmp_path_factory) -> tuple[Path, Path, dict]:
    d = tmp_path_factory.mktemp("roster")
    out, truth = d / "roster.csv", d / "truth.csv"
    summary = rh.generate(RECORDS, 101, out, truth, bucket_rows=700)
    return out, truth, summary


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_check_characters():
    for code in ("91350100M000100Y43", "91440300708461136T", "91110000600037341L"):
        assert rh.uscc_is_valid(code)
        assert rh.uscc_check_char(code[:17]) == code[17]
    assert not rh.uscc_is_valid("91350100M000100Y44")
    assert rh.org_check_char("70846113") == "6"


def test_columns_and_truth_consistent(roster):
    out, truth, summary = roster
    rows, t = _read(out), _read(truth)
    assert list(rows[0]) == ["record_id", "name", "district", "uscc", "address", "headcount"]
    assert list(t[0]) == ["record_id", "firm_id", "group_id", "families", "negatives"]
    assert len(rows) == len(t) == RECORDS == summary["records"]
    assert [r["record_id"] for r in rows] == [r["record_id"] for r in t]
    assert len({r["record_id"] for r in rows}) == RECORDS
    assert all(r["name"] for r in rows)
    group_of: dict[str, str] = {}
    sizes: dict[str, int] = defaultdict(int)
    for r in t:
        assert group_of.setdefault(r["firm_id"], r["group_id"]) == r["group_id"]
        sizes[r["firm_id"]] += 1
    assert len(sizes) == summary["firms"]
    assert max(sizes.values()) <= 6
    assert sum(1 for n in sizes.values() if n == 1) > sum(1 for n in sizes.values() if n == 6)
    for r in rows:
        assert r["headcount"] == "" or int(r["headcount"]) >= 1


def test_intact_codes_valid_and_one_per_firm(roster):
    out, truth, _ = roster
    altered = {"uscc_partial", "uscc_typo", "uscc_format", "uscc_missing"}
    code_of: dict[str, str] = {}
    firm_of: dict[str, str] = {}
    n = 0
    for r, t in zip(_read(out), _read(truth), strict=True):
        fams = set(t["families"].split("|")) if t["families"] else set()
        if fams & altered:
            continue
        code = r["uscc"]
        assert rh.uscc_is_valid(code), (code, t)
        assert rh.org_check_char(code[8:16]) == code[16]
        assert code_of.setdefault(t["firm_id"], code) == code
        assert firm_of.setdefault(code, t["firm_id"]) == t["firm_id"]
        n += 1
    assert n > RECORDS / 3
    typo_valid = sum(
        rh.uscc_is_valid(r["uscc"])
        for r, t in zip(_read(out), _read(truth), strict=True)
        if "uscc_typo" in t["families"]
    )
    assert typo_valid <= 3  # a mistyped character almost always breaks the check


def test_every_family_and_negative_appears(roster):
    _, truth, _ = roster
    fams, negs = set(), set()
    for t in _read(truth):
        for x in filter(None, t["families"].split("|")):
            fams.add(x.split(":")[0])
            fams.add(x)
        negs.update(filter(None, t["negatives"].split("|")))
    assert set(rh.ALL_FAMILIES) <= fams, set(rh.ALL_FAMILIES) - fams
    assert set(rh.ALL_NEGATIVES) <= negs, set(rh.ALL_NEGATIVES) - negs
    for where in ("trade", "industry", "form", "branch"):
        assert f"drop_char:{where}" in fams
    assert dedup_score.NAME_FAMILIES == rh.NAME_FAMILY_SET


def test_seeded_output_is_reproducible(roster, tmp_path):
    out, truth, _ = roster
    o2, t2 = tmp_path / "r.csv", tmp_path / "t.csv"
    rh.generate(RECORDS, 101, o2, t2, bucket_rows=700)
    assert o2.read_bytes() == out.read_bytes()
    assert t2.read_bytes() == truth.read_bytes()
    o3, t3 = tmp_path / "r3.csv", tmp_path / "t3.csv"
    rh.generate(RECORDS, 102, o3, t3, bucket_rows=700)
    assert o3.read_bytes() != out.read_bytes()


def test_cli_same_output_under_any_hash_seed(tmp_path):
    """Two processes with different string hashing write the same files."""
    outs = []
    for hs in ("1", "2"):
        o, t = tmp_path / f"r{hs}.csv", tmp_path / f"t{hs}.csv"
        argv = [sys.executable, str(BENCH / "roster_heldout.py"), "--records", "300"]
        argv += ["--seed", "5", "--out", str(o), "--truth", str(t), "--quiet"]
        subprocess.run(argv, check=True, env={**os.environ, "PYTHONHASHSEED": hs})
        outs.append((o.read_bytes(), t.read_bytes()))
    assert outs[0] == outs[1]
    assert len(_read(tmp_path / "r1.csv")) == 300


def _brute(truth_rows: list[dict], clusters: dict[str, str], label: str | None):
    """Pairs counted one by one: (true, predicted, correct) where either carries label."""
    t = p = tp = 0
    for a, b in itertools.combinations(truth_rows, 2):
        if label is not None:
            la = dedup_score._labels(a["families"]) + dedup_score._labels(a["negatives"], "neg:")
            lb = dedup_score._labels(b["families"]) + dedup_score._labels(b["negatives"], "neg:")
            if label not in la and label not in lb:
                continue
        same_t = a["firm_id"] == b["firm_id"]
        same_p = clusters[a["record_id"]] == clusters[b["record_id"]]
        t += same_t
        p += same_p
        tp += same_t and same_p
    return t, p, tp


def test_scorer_matches_brute_force(roster):
    _, truth, _ = roster
    rows = _read(truth)[:400]
    rng = random.Random(3)
    # A noisy clustering: true firms, some split, some merged with a neighbour.
    clusters = {}
    for r in rows:
        c = r["firm_id"]
        x = rng.random()
        if x < 0.15:
            c = "split-" + r["record_id"]
        elif x < 0.25:
            c = rows[rng.randrange(len(rows))]["firm_id"]
        clusters[r["record_id"]] = c
    sub = {r["record_id"]: r for r in rows}
    t_path = truth.parent / "truth_sub.csv"
    with open(t_path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(sub.values())
    res = dedup_score.score(dedup_score.read_truth(t_path), clusters)
    t, p, tp = _brute(rows, clusters, None)
    o = res["overall"]
    assert (o["true_pairs"], o["predicted_pairs"], o["correct_pairs"]) == (t, p, tp)
    checked = 0
    for label in ("uscc_missing", "drop_char", "region_form", "neg:branch"):
        entry = (res["negatives"] if label.startswith("neg:") else res["families"]).get(
            label.removeprefix("neg:")
        )
        if entry is None:
            continue
        t, p, tp = _brute(rows, clusters, label)
        assert (entry["true_pairs"], entry["predicted_pairs"], entry["correct_pairs"]) == (t, p, tp)
        checked += 1
    assert checked >= 3


def test_scorer_perfect_and_singletons(roster):
    _, truth, _ = roster
    t = dedup_score.read_truth(truth)
    rows = _read(truth)
    perfect = {r["record_id"]: r["firm_id"] for r in rows}
    res = dedup_score.score(t, perfect)
    assert res["overall"]["precision"] == res["overall"]["recall"] == 1.0
    assert all(v == 0 for v in res["false_pairs_within_negative_groups"].values())
    single = dedup_score.score(t, {})
    assert single["overall"]["recall"] == 0.0
    assert single["records_missing_from_output"] == RECORDS
