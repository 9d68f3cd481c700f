"""Benchmark of enterprise dedup: quality, time and memory of the CSV command and the
incremental API.

Prints one JSON document. For each size it generates records with known duplicates
(bench/dedup_generate.py), runs `python -m worker.dedup.csvcli` in a subprocess and measures
wall time and peak resident memory of that process (os.wait4), then scores pairwise
precision/recall/F1 against the truth. The incremental pass indexes the largest size's
records with their clusters and matches 1,000 further records from the same universe.

    python bench/dedup_bench.py [--sizes 50000,500000] [--new 1000] [--workdir /tmp/dedup-bench]
                                [--extended] [--seed 7] [--no-reach]

--extended generates the variation families and hard negatives of issue 14 (see
dedup_generate.py). Each size also reports recall by variation family, wrong pairs by
hard-negative kind, the review share of records and the share of true pairs that share a
blocking key (reachable_true_pairs).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dedup_generate import generate  # noqa: E402
from memwatch import TreeMemory  # noqa: E402

HEADER = ["record_id", "name", "district", "uscc", "address", "headcount"]


def write_csv(path: Path, rows: list[tuple[str, str, dict]]) -> None:
    """Write generated rows as the CSV command's input."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for rid, _, f in rows:
            w.writerow([rid, f["name"], f["district"], f["uscc"], f["address"], f["headcount"]])


def pairs(n: int) -> int:
    """Number of unordered pairs among n items."""
    return n * (n - 1) // 2


def pairwise(pred: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering against the true one."""
    both = Counter((pred[r], truth[r]) for r in pred)
    tp = sum(pairs(c) for c in both.values())
    pp = sum(pairs(c) for c in Counter(pred.values()).values())
    tt = sum(pairs(c) for c in Counter(truth[r] for r in pred).values())
    p = tp / pp if pp else 1.0
    r = tp / tt if tt else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f, 4),
        "true_pairs": tt,
        "predicted_pairs": pp,
    }


def by_family(pred: dict[str, str], rows: list[tuple[str, str, dict]]) -> dict:
    """Recall of true pairs by the variation family either record carries, and wrong merges
    (predicted pairs of two enterprises) by the hard-negative kind of the two enterprises."""
    fams = {rid: f.get("families", ()) for rid, _, f in rows}
    negs = {rid: f.get("neg", "") for rid, _, f in rows}
    truth: dict[str, list[str]] = {}
    for rid, eid, _ in rows:
        truth.setdefault(eid, []).append(rid)
    total: Counter = Counter()
    found: Counter = Counter()
    for members in truth.values():
        for x in range(len(members)):
            a = members[x]
            for y in range(x + 1, len(members)):
                b = members[y]
                hit = pred[a] == pred[b]
                for fam in set(fams[a]) | set(fams[b]) or {"plain"}:
                    total[fam] += 1
                    found[fam] += hit
    recall = {
        fam: {"pairs": total[fam], "recall": round(found[fam] / total[fam], 4)}
        for fam in sorted(total, key=lambda f: -total[f])
    }
    eid_of = {rid: eid for rid, eid, _ in rows}
    members_of: dict[str, list[str]] = {}
    for rid, cid in pred.items():
        members_of.setdefault(cid, []).append(rid)
    wrong: Counter = Counter()
    for members in members_of.values():
        if len(members) < 2:
            continue
        for x in range(len(members)):
            a = members[x]
            for y in range(x + 1, len(members)):
                b = members[y]
                if eid_of[a] != eid_of[b]:
                    kinds = sorted({negs[a] or "original", negs[b] or "original"})
                    wrong["/".join(kinds)] += 1
    return {"recall_by_family": recall, "wrong_pairs_by_kind": dict(wrong.most_common())}


def reachable(rows: list[tuple[str, str, dict]]) -> dict:
    """Share of true pairs whose records share at least one blocking key (the pairs the
    matcher can compare at all), overall and by variation family."""
    from worker.dedup import blocking_keys, prepare

    keys = {}
    for rid, _, f in rows:
        p = prepare({"record_id": rid, **{k: f[k] for k in HEADER[1:]}})
        keys[rid] = set(blocking_keys(p))
    fams = {rid: f.get("families", ()) for rid, _, f in rows}
    truth: dict[str, list[str]] = {}
    for rid, eid, _ in rows:
        truth.setdefault(eid, []).append(rid)
    total: Counter = Counter()
    hit: Counter = Counter()
    for members in truth.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                a, b = members[x], members[y]
                ok = not keys[a].isdisjoint(keys[b])
                for fam in ("all", *(set(fams[a]) | set(fams[b]))):
                    total[fam] += 1
                    hit[fam] += ok
    return {fam: round(hit[fam] / total[fam], 4) for fam in sorted(total, key=lambda f: -total[f])}


def run_cli(inp: Path, out: Path, review: Path) -> dict[str, float]:
    """Run the CSV command in a child process; wall time and its own peak RSS."""
    cmd = [
        sys.executable,
        "-m",
        "worker.dedup.csvcli",
        str(inp),
        "-o",
        str(out),
        "--review",
        str(review),
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    watch = TreeMemory(proc.pid)
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    tree = watch.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"csvcli failed ({proc.returncode}): {stderr}")
    # CPU time too: the machine is shared, so wall time includes waiting for a core.
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        # the largest single process; the command's workers are in tree_peak_*
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        **tree,
        "summary": stderr.strip().splitlines()[-1],
    }


def read_pairs(path: Path, a: str, b: str) -> dict[str, str]:
    """A two-column CSV as a dict."""
    with path.open(encoding="utf-8", newline="") as fh:
        return {row[a]: row[b] for row in csv.DictReader(fh)}


def bench_size(
    n: int, rows: list[tuple[str, str, dict]], workdir: Path, reach: bool = True
) -> dict:
    """Quality, time and memory of the CSV command on n generated records."""
    inp, out, rev = workdir / f"in{n}.csv", workdir / f"out{n}.csv", workdir / f"review{n}.csv"
    write_csv(inp, rows)
    res = run_cli(inp, out, rev)
    pred = read_pairs(out, "record_id", "cluster_id")
    truth = {rid: eid for rid, eid, _ in rows}
    res.update(pairwise(pred, truth))
    res.update(by_family(pred, rows))
    if reach:
        res["reachable_true_pairs"] = reachable(rows)
    res["records"] = n
    res["true_enterprises"] = len(set(truth.values()))
    res["predicted_clusters"] = len(set(pred.values()))
    sizes = Counter(pred.values())
    res["largest_cluster"] = max(sizes.values())
    with rev.open(encoding="utf-8", newline="") as fh:
        rrows = list(csv.DictReader(fh))
    res["review_pairs"] = len(rrows)
    res["review_share_of_records"] = round(len(rrows) / n, 4)
    res["review_pairs_truly_same"] = sum(
        truth[r["record_id_a"]] == truth[r["record_id_b"]] for r in rrows
    )
    return res


def bench_incremental(
    existing: list[tuple[str, str, dict]],
    new: list[tuple[str, str, dict]],
    cluster_of: dict[str, str],
) -> dict:
    """Index the existing records with their clusters, then match the new ones and time it."""
    from worker.dedup import DedupIndex, EnterpriseRecord

    def rec(rid: str, f: dict) -> EnterpriseRecord:
        return EnterpriseRecord(
            rid,
            f["name"],
            f["district"],
            f["uscc"],
            f["address"],
            int(f["headcount"]) if f["headcount"] else None,
        )

    t0 = time.perf_counter()
    idx = DedupIndex.build((rec(rid, f) for rid, _, f in existing), cluster_of)
    build_s = time.perf_counter() - t0
    new_recs = [rec(rid, f) for rid, _, f in new]
    t0 = time.perf_counter()
    c0 = time.process_time()
    decisions = idx.match_many(new_recs, add=True)
    match_s = time.perf_counter() - t0
    match_cpu = time.process_time() - c0

    truth = {rid: eid for rid, eid, _ in existing}
    truth.update({rid: eid for rid, eid, _ in new})
    members: dict[str, list[str]] = {}
    for rid, cid in cluster_of.items():
        members.setdefault(cid, []).append(rid)
    existing_eids = set(eid for _, eid, _ in existing)
    actions = Counter(d.action for d in decisions)
    correct_attach = 0
    for d in decisions:
        if d.action == "attach":
            # Right when the record the decision names is truly the same enterprise.
            if d.candidate_id is not None and truth[d.candidate_id] == truth[d.record_id]:
                correct_attach += 1
    has_dup = sum(truth[rid] in existing_eids for rid, _, _ in new)
    return {
        "existing": len(existing),
        "new": len(new),
        "index_build_s": round(build_s, 2),
        "match_s": round(match_s, 3),
        "match_cpu_s": round(match_cpu, 3),
        "ms_per_record": round(1000 * match_s / max(1, len(new)), 3),
        "actions": dict(actions),
        "attach_precision": round(correct_attach / max(1, actions["attach"]), 4),
        "new_with_true_existing_duplicate": has_dup,
        "attach_recall": round(correct_attach / max(1, has_dup), 4),
        "mean_candidates_scored": round(
            sum(d.candidates_scored for d in decisions) / max(1, len(decisions)), 1
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print JSON."""
    ap = argparse.ArgumentParser(description="Enterprise dedup benchmark")
    ap.add_argument("--sizes", default="50000,500000", help="comma-separated record counts")
    ap.add_argument(
        "--new", type=int, default=1000, help="new records for the incremental pass (0: skip)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default="/tmp/dedup-bench")
    ap.add_argument(
        "--no-reach", action="store_true", help="skip the share of true pairs sharing a key"
    )
    ap.add_argument(
        "--extended",
        action="store_true",
        help="generate with the variation families of issue 14 (dedup_generate --extended)",
    )
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    report: dict = {"cores": os.cpu_count(), "csv_command": []}
    last = None
    for i, n in enumerate(sizes):
        extra = args.new if n == max(sizes) else 0
        rows = generate(n + extra, seed=args.seed + i, extended=args.extended)
        existing, new = rows[:n], rows[n:]
        res = bench_size(n, existing, workdir, reach=not args.no_reach)
        report["csv_command"].append(res)
        print(json.dumps(res, ensure_ascii=False), file=sys.stderr)
        if extra:
            last = (existing, new, read_pairs(workdir / f"out{n}.csv", "record_id", "cluster_id"))
    if last is not None and args.new:
        report["incremental"] = bench_incremental(*last)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
