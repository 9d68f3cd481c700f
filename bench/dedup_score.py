"""Score a clustering of a held-out roster against its truth, overall and per variation family.

    python bench/dedup_score.py --truth truth.csv --clusters clusters.csv
    python bench/dedup_score.py --truth truth.csv --run roster.csv --clusters clusters.csv
    python bench/dedup_score.py --truth truth.csv --clusters clusters.csv \
        --splink roster.csv [--splink-out splink_clusters.csv]

``truth.csv`` comes from ``bench/roster_heldout.py`` (``record_id,firm_id,group_id,
families,negatives``); ``clusters.csv`` is the CSV command's output (``record_id,
cluster_id``; a record missing from it counts as a cluster of its own).

Pairwise figures are counted from the contingency of true firm x predicted cluster, never
by listing pairs: a group of n records of which k carry a family holds C(n,2) - C(n-k,2)
pairs where at least one record carries it. For each family: recall = true pairs found /
true pairs where either record carries the family; precision = correct predicted pairs /
predicted pairs where either record carries it. ``negatives`` (hard-negative kinds) are
scored the same way, and the false pairs between different firms of one hard-negative group
are counted.

``--run ROSTER`` first runs the CSV command (``--command``) on the roster and reports its
wall time, CPU time, peak memory and review-list length with the scores.
``--splink ROSTER`` also runs Splink 5 (DuckDB) on the roster with a modest hand-written
model (``pip install '.[bench]'``), times it, measures its peak memory, and scores its
clusters the same way.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

# The name families of bench/roster_heldout.py (a pair where neither record carries one
# differs at most in district, code, address and head count).
NAME_FAMILIES = frozenset(
    "drop_char homophone similar_shape space_punct width traditional abbreviation "
    "industry_short region_form legal_form english pinyin old_name legal_rep".split()
)


def c2(n: int) -> int:
    return n * (n - 1) // 2


def _labels(field: str, prefix: str = "") -> list[str]:
    """``a:b|c`` -> [prefix+a:b, prefix+a, prefix+c] (each detail also counts for its family)."""
    if not field:
        return []
    out = []
    for x in field.split("|"):
        out.append(prefix + x)
        if ":" in x:
            out.append(prefix + x.split(":", 1)[0])
    return list(dict.fromkeys(out))


def read_truth(path: Path):
    """record_id -> (firm index, group index, labels)."""
    firms: dict[str, int] = {}
    groups: dict[str, int] = {}
    truth: dict[str, tuple[int, int, tuple[str, ...]]] = {}
    label_cache: dict[tuple[str, str], tuple[str, ...]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        r = csv.reader(f)
        header = next(r)
        idx = {h: i for i, h in enumerate(header)}
        ir, ifi, ig = idx["record_id"], idx["firm_id"], idx["group_id"]
        ifa, ine = idx["families"], idx["negatives"]
        for row in r:
            fi = firms.setdefault(row[ifi], len(firms))
            gi = groups.setdefault(row[ig], len(groups))
            key = (row[ifa], row[ine])
            labels = label_cache.get(key)
            if labels is None:
                labels = tuple(_labels(row[ifa]) + _labels(row[ine], "neg:"))
                label_cache[key] = labels
            truth[row[ir]] = (fi, gi, labels)
    return truth


def read_clusters(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        r = csv.reader(f)
        header = next(r)
        idx = {h: i for i, h in enumerate(header)}
        ir, ic = idx["record_id"], idx["cluster_id"]
        return {row[ir]: row[ic] for row in r}


def _runs(keys: list[int]):
    """Index runs of equal keys: sorted row indices split where the key changes."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    run: list[int] = []
    last = None
    for i in order:
        k = keys[i]
        if k != last and run:
            yield run
            run = []
        last = k
        run.append(i)
    if run:
        yield run


def score(truth, clusters: dict[str, str]) -> dict:
    """Pairwise precision, recall and F1, overall, per family and per hard-negative kind.

    Rows are sorted by firm, by cluster and by (group, cluster); each run of equal keys
    adds its pairs, so memory grows with the records, never with the pairs or the families.
    """
    cl_index: dict[str, int] = {}
    firm_of: list[int] = []
    group_of: list[int] = []
    clus_of: list[int] = []
    labels_of: list[tuple[str, ...]] = []
    carriers: Counter = Counter()
    group_kind: dict[int, str] = {}
    missing = 0
    for rid, (fi, gi, labels) in truth.items():
        c = clusters.get(rid)
        if c is None:
            missing += 1
            c = "\x00missing:" + rid
        firm_of.append(fi)
        group_of.append(gi)
        clus_of.append(cl_index.setdefault(c, len(cl_index)))
        labels_of.append(labels)
        for lab in labels:
            carriers[lab] += 1
            if lab.startswith("neg:") and ":" not in lab[4:]:
                group_kind.setdefault(gi, lab[4:])
    shift = 1 << 32

    def pairs_in(run: list[int], acc: Counter) -> int:
        """Adds C(n,2) - C(n-k,2) per label carried by k of the run's n rows."""
        n = len(run)
        if n < 2:
            return 0
        k: Counter = Counter()
        for i in run:
            k.update(labels_of[i])
        for lab, m in k.items():
            acc[lab] += c2(n) - c2(n - m)
        return c2(n)

    true_by: Counter = Counter()
    pred_by: Counter = Counter()
    tp_by: Counter = Counter()
    true_pairs = sum(pairs_in(run, true_by) for run in _runs(firm_of))
    cluster_sizes: Counter = Counter()
    pred_pairs = 0
    largest = 0
    for run in _runs(clus_of):
        pred_pairs += pairs_in(run, pred_by)
        cluster_sizes[len(run)] += 1
        largest = max(largest, len(run))
    tp = 0
    within_group_false: Counter = Counter()
    plain_t = plain_tp = 0
    # (group, cluster) runs hold whole (firm, cluster) cells: firms nest in groups.
    for run in _runs([g * shift + c for g, c in zip(group_of, clus_of, strict=True)]):
        cells: dict[int, list[int]] = {}
        for i in run:
            cells.setdefault(firm_of[i], []).append(i)
        in_cells = sum(pairs_in(cell, tp_by) for cell in cells.values())
        tp += in_cells
        kind = group_kind.get(group_of[run[0]])
        if kind is not None:
            within_group_false[kind] += c2(len(run)) - in_cells
        for cell in cells.values():
            plain = sum(1 for i in cell if _name_unvaried(labels_of[i]))
            plain_tp += c2(plain)
    for run in _runs(firm_of):
        plain_t += c2(sum(1 for i in run if _name_unvaried(labels_of[i])))

    def prf(tp_: int, t: int, p: int) -> dict:
        prec = tp_ / p if p else 1.0
        rec = tp_ / t if t else 1.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        return {
            "precision": round(prec, 4),
            "recall": round(rec, 4),
            "f1": round(f1, 4),
            "true_pairs": t,
            "predicted_pairs": p,
            "correct_pairs": tp_,
        }

    families = {}
    negatives = {}
    for lab in sorted(carriers):
        entry = prf(tp_by[lab], true_by[lab], pred_by[lab])
        entry["records"] = carriers[lab]
        (negatives if lab.startswith("neg:") else families)[lab.removeprefix("neg:")] = entry
    return {
        "records": len(truth),
        "records_missing_from_output": missing,
        "firms": len(set(firm_of)),
        "clusters": len(cl_index),
        "largest_cluster": largest,
        "cluster_sizes": {str(k): cluster_sizes[k] for k in sorted(cluster_sizes) if k <= 10},
        "overall": prf(tp, true_pairs, pred_pairs),
        # Pairs where neither record's name was varied (only the other fields may differ).
        "recall_names_unvaried": round(plain_tp / plain_t, 4) if plain_t else 1.0,
        "families": families,
        "negatives": negatives,
        # Predicted pairs joining two different firms of one hard-negative group.
        "false_pairs_within_negative_groups": dict(sorted(within_group_false.items())),
    }


def _name_unvaried(labels: tuple[str, ...]) -> bool:
    return not any(lab.split(":", 1)[0] in NAME_FAMILIES for lab in labels)


# ------------------------------------------------------------------------------------------
# Splink
# ------------------------------------------------------------------------------------------

# Dropped from names before comparing: the legal form and region words (a hand-written
# normalisation, deliberately modest: the kind a Splink user writes in an afternoon).
_FORMS = [
    "集团有限责任公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "股份公司",
    "集团公司",
    "分公司",
    "公司",
    "集团",
]
_REGIONS = ["四川省", "四川", "成都市", "成都"]


def _prepare(roster: Path) -> dict[str, list]:
    import unicodedata

    import opencc
    from pypinyin import lazy_pinyin

    t2s = opencc.OpenCC("t2s")
    py_cache: dict[str, str] = {}

    def py(s: str) -> str:
        out = []
        for ch in s:
            p = py_cache.get(ch)
            if p is None:
                p = py_cache[ch] = lazy_pinyin(ch)[0].lower()
            out.append(p)
        return "".join(out)

    def norm(s: str) -> str:
        s = t2s.convert(unicodedata.normalize("NFKC", s))
        return "".join(ch for ch in s if ch.isalnum()).upper()

    cols: dict[str, list] = {
        k: []
        for k in ("unique_id", "name_n", "name_py", "trade_py", "district", "uscc", "addr", "hc")
    }
    districts = json.loads(
        (Path(__file__).resolve().parent.parent / "config" / "districts.json").read_text("utf-8")
    )["districts"]
    # Longest first, so 成都市锦江区 is stripped whole and 锦江区 before 锦江.
    district_names = sorted(
        {x for d in districts for x in (d["name"], d["short"])}, key=len, reverse=True
    )
    dmap = {}
    for d in districts:
        for form in (d["name"], d["short"], "成都市" + d["name"], "成都" + d["short"]):
            dmap[form] = d["code"]
    with open(roster, encoding="utf-8-sig", newline="") as f:
        r = csv.DictReader(f)
        for row in r:
            n = norm(row["name"])
            for prefixes in (_REGIONS, district_names):
                for reg in prefixes:
                    if n.startswith(reg):
                        n = n[len(reg) :]
                        break
            core = n
            for form in _FORMS:
                if core.endswith(form):
                    core = core[: -len(form)]
                    break
            core = core.replace("成都", "").replace("四川", "") or n
            dist = row["district"].strip()
            cols["unique_id"].append(int(row["record_id"]))
            cols["name_n"].append(core or None)
            cols["name_py"].append(py(core) or None)
            cols["trade_py"].append(py(core[:2]) or None)
            cols["district"].append(dmap.get(dist, dist) or None)
            u = unicodedata.normalize("NFKC", row["uscc"]).replace(" ", "").upper()
            cols["uscc"].append(u or None)
            a = norm(row["address"])
            for pre in ("四川省", "成都市", "成都"):
                a = a.removeprefix(pre)
            cols["addr"].append(a or None)
            hc = row.get("headcount") or ""
            cols["hc"].append(int(hc) if hc.isdigit() else None)
    return cols


JW_NAME = 'jaro_winkler_similarity("name_py_l", "name_py_r")'


def run_splink(roster: Path, out: Path, threshold: float = 0.9) -> dict:
    """Dedupe ``roster`` with Splink; write ``record_id,cluster_id`` to ``out``."""
    import duckdb
    import pyarrow as pa
    import splink
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t0 = time.perf_counter()
    c0 = time.process_time()  # all threads of this process, DuckDB's included
    cols = _prepare(roster)
    t_prep = time.perf_counter() - t0
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.register("roster_arrow", pa.table(cols))
    con.execute("CREATE TABLE roster AS SELECT * FROM roster_arrow")
    con.unregister("roster_arrow")
    db_api = DuckDBAPI(con)
    df = db_api.register("roster")
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            # Pinyin is ASCII: DuckDB's string distances count bytes, so Chinese text is
            # compared through its pinyin; the characters only for an exact match.
            cl.CustomComparison(
                output_column_name="name",
                comparison_levels=[
                    {
                        "sql_condition": '"name_n_l" IS NULL OR "name_n_r" IS NULL',
                        "label_for_charts": "null",
                        "is_null_level": True,
                    },
                    {"sql_condition": '"name_n_l" = "name_n_r"', "label_for_charts": "exact"},
                    {
                        "sql_condition": '"name_py_l" = "name_py_r"',
                        "label_for_charts": "same pinyin",
                    },
                    {
                        "sql_condition": f"{JW_NAME} >= 0.95",
                        "label_for_charts": "jw 0.95",
                    },
                    {
                        "sql_condition": f"{JW_NAME} >= 0.88",
                        "label_for_charts": "jw 0.88",
                    },
                    {
                        "sql_condition": f"{JW_NAME} >= 0.75",
                        "label_for_charts": "jw 0.75",
                    },
                    {"sql_condition": "ELSE", "label_for_charts": "else"},
                ],
            ),
            cl.ExactMatch("uscc"),
            cl.ExactMatch("district"),
            cl.JaroWinklerAtThresholds("addr", [0.95, 0.85]),
            cl.CustomComparison(
                output_column_name="hc",
                comparison_levels=[
                    {
                        "sql_condition": '"hc_l" IS NULL OR "hc_r" IS NULL',
                        "label_for_charts": "null",
                        "is_null_level": True,
                    },
                    {"sql_condition": '"hc_l" = "hc_r"', "label_for_charts": "exact"},
                    {
                        "sql_condition": 'abs("hc_l" - "hc_r") <= 0.3 * greatest("hc_l", "hc_r")',
                        "label_for_charts": "within 30%",
                    },
                    {"sql_condition": "ELSE", "label_for_charts": "else"},
                ],
            ),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("uscc"),
            block_on("name_n"),
            block_on("name_py"),
            block_on("trade_py", "district"),
            block_on("addr"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(df, settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("uscc"), block_on("name_n", "district")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("name_n"), record_sample_proportion=1.0
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("uscc"), record_sample_proportion=1.0
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("trade_py", "district"), record_sample_proportion=1.0
    )
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=threshold
    )
    rel = clusters.as_duckdbpyrelation()
    rows = rel.project("unique_id, cluster_id").fetchall()
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["record_id", "cluster_id"])
        w.writerows(rows)
    wall = time.perf_counter() - t0
    return {
        "splink_version": splink.__version__,
        "wall_s": round(wall, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "prepare_s": round(t_prep, 1),
        "threshold_match_probability": threshold,
    }


def run_command(command: str, roster: Path, clusters: Path) -> dict | None:
    """Run the CSV command on ``roster``; its wall time, CPU time and peak memory."""
    import shlex
    import subprocess

    review = clusters.with_name(clusters.stem + ".review.csv")
    argv = [*shlex.split(command), str(roster), "-o", str(clusters), "--review", str(review)]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from memwatch import TreeMemory

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch = TreeMemory(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    tree = watch.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(stderr)
        return None
    with open(review, encoding="utf-8", newline="") as f:
        review_pairs = max(0, sum(1 for _ in csv.reader(f)) - 1)
    return {
        "command": " ".join(argv),
        "wall_s": round(wall, 1),
        "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1),
        # The first child this process waits for, so its peak is the children's peak.
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        # the command and its worker processes together, sampled every 0.2 s
        **tree,
        "review_pairs": review_pairs,
        "summary": (stdout.strip() or stderr.strip()).splitlines()[-1:],
    }


def review_rounds(a: argparse.Namespace, truth: dict) -> list[dict]:
    """Rounds of answering the review list from the truth and running again with them."""
    review = a.clusters.with_name(a.clusters.stem + ".review.csv")
    answers = a.clusters.with_name(a.clusters.stem + ".answers.csv")
    given: dict[tuple[str, str], bool] = {}
    rounds = []
    for k in range(1, a.review_rounds + 1):
        with open(review, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                x, y = (row[c].removeprefix("'") for c in ("record_id_a", "record_id_b"))
                given[(x, y)] = truth[x][0] == truth[y][0]
        with open(answers, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["record_id_a", "record_id_b", "same"])
            w.writerows([x, y, int(same)] for (x, y), same in given.items())
        run = run_command(f"{a.command} --labels {answers}", a.run, a.clusters)
        if run is None:
            raise SystemExit("the CSV command failed with --labels")
        overall = score(truth, read_clusters(a.clusters))["overall"]
        rounds.append(
            {
                "round": k,
                "answers_given": len(given),
                "answers_same": sum(given.values()),
                "precision": overall["precision"],
                "recall": overall["recall"],
                "f1": overall["f1"],
                "review_pairs": run["review_pairs"],
                "wall_s": run["wall_s"],
            }
        )
    return rounds


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--clusters", type=Path, help="the CSV command's record_id,cluster_id")
    ap.add_argument(
        "--run",
        type=Path,
        metavar="ROSTER",
        help="first run the CSV command on ROSTER (writing --clusters), timed",
    )
    ap.add_argument(
        "--command",
        default=str(Path(sys.executable).with_name("fieldvisit-dedup-csv")),
        help="the CSV command for --run (default: the one beside this Python)",
    )
    ap.add_argument("--splink", type=Path, metavar="ROSTER", help="also run Splink on ROSTER")
    ap.add_argument("--splink-out", type=Path, help="where Splink's clusters are written")
    ap.add_argument("--splink-threshold", type=float, default=0.9)
    ap.add_argument("--brief", action="store_true", help="overall and family F1 only")
    ap.add_argument(
        "--review-rounds",
        type=int,
        default=0,
        metavar="N",
        help="with --run: N rounds of a simulated reviewer who answers every pair of the "
        "review list from the truth, the answers given back with --labels (F1 per round)",
    )
    a = ap.parse_args(argv)
    if not a.clusters and not a.splink:
        ap.error("give --clusters, --splink, or both")
    if a.run and not a.clusters:
        ap.error("--run needs --clusters (where the command writes its clusters)")
    result: dict = {}
    run = None
    if a.run:
        run = run_command(a.command, a.run, a.clusters)
        if run is None:
            return 1
    truth = read_truth(a.truth)
    if a.clusters:
        result["matcher"] = score(truth, read_clusters(a.clusters))
        if run:
            result["matcher"] = {"run": run, **result["matcher"]}
    if a.run and a.review_rounds > 0:
        result["review_rounds"] = review_rounds(a, truth)
    if a.splink:
        out = a.splink_out or a.splink.with_name(a.splink.stem + ".splink_clusters.csv")
        # Peak memory of Splink alone: measured in a child process that only runs it.
        import subprocess

        here = str(Path(__file__).resolve().parent)
        code = (
            f"import json,sys;sys.path.insert(0,{here!r});import dedup_score as d;"
            f"r=d.run_splink({str(a.splink)!r},{str(out)!r},{a.splink_threshold!r});"
            "r['peak_rss_mb']=d.peak_rss_mb();print(json.dumps(r))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            return 1
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        result["splink"] = {"run": run, **score(truth, read_clusters(out))}
    if a.brief:
        for v in result.values():
            if not isinstance(v, dict):
                continue  # the review rounds
            v["families"] = {k: x["f1"] for k, x in v["families"].items()}
            v["negatives"] = {k: x["precision"] for k, x in v["negatives"].items()}
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
