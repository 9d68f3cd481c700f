"""Command line: deduplicate an enterprise CSV file into record_id,cluster_id.

    python -m worker.dedup.csvcli INPUT.csv -o OUTPUT.csv [--review REVIEW.csv]
                                  [--auto 0.90] [--review-threshold 0.75]

Input columns: record_id,name,district,uscc,address (uscc and address may be empty; an
optional headcount column is used when present), in UTF-8 (with or without BOM) or GB18030.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from worker.dedup.cluster import cluster_records
from worker.dedup.match import DedupThresholds, EnterpriseRecord

REQUIRED = ("record_id", "name", "district", "uscc", "address")
EXIT_OK = 0
EXIT_BAD_INPUT = 2


class InputError(Exception):
    """The input cannot be used at all (unreadable, undecodable, missing columns)."""


def detect_encoding(path: str) -> str:
    """UTF-8 (BOM or not) when the whole file decodes as such, else GB18030."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for enc in ("utf-8-sig", "gb18030"):
        try:
            data.decode(enc)  # decoded text is dropped: the file is parsed as a stream
            return enc
        except UnicodeDecodeError:
            continue
    raise InputError(f"cannot decode {path}: neither UTF-8 nor GB18030")


def read_records(
    lines: Iterable[str], warn: Callable[[str], None]
) -> tuple[list[EnterpriseRecord], int]:
    """Parse rows into records; malformed rows are reported through warn and counted."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(
            "input is empty: expected a header row with " + ",".join(REQUIRED)
        ) from None
    cols = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise InputError(
            "missing header column(s): "
            + ", ".join(missing)
            + " (expected "
            + ",".join(REQUIRED)
            + ")"
        )
    pos = {c: cols.index(c) for c in REQUIRED}
    hc_pos = cols.index("headcount") if "headcount" in cols else None
    width = len(cols)
    records: list[EnterpriseRecord] = []
    seen: set[str] = set()
    bad = 0
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line: nothing to report
        if len(row) != width:
            warn(f"line {line}: expected {width} columns, found {len(row)}; row skipped")
            bad += 1
            continue
        rid = row[pos["record_id"]].strip()
        name = row[pos["name"]].strip()
        if not rid or not name:
            warn(f"line {line}: empty {'record_id' if not rid else 'name'}; row skipped")
            bad += 1
            continue
        if rid in seen:
            warn(f"line {line}: duplicate record_id {rid!r}; row skipped")
            bad += 1
            continue
        seen.add(rid)
        headcount = None
        if hc_pos is not None:
            try:
                headcount = int(row[hc_pos]) if row[hc_pos].strip() else None
            except ValueError:
                headcount = None
        records.append(
            EnterpriseRecord(
                record_id=rid,
                name=name,
                district=row[pos["district"]].strip(),
                uscc=row[pos["uscc"]].strip(),
                address=row[pos["address"]].strip(),
                headcount=headcount,
            )
        )
    return records, bad


def _consume(holder: list[list[EnterpriseRecord]]) -> Iterable[EnterpriseRecord]:
    """Yield the records, dropping each one once yielded, to keep peak memory down."""
    recs = holder.pop()
    for i in range(len(recs)):
        rec = recs[i]
        recs[i] = None  # type: ignore[call-overload]
        yield rec


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    defaults = DedupThresholds()
    ap = argparse.ArgumentParser(
        prog="fieldvisit-dedup-csv",
        description="Cluster duplicate enterprise records in a CSV file.",
    )
    ap.add_argument("input", help="CSV with record_id,name,district,uscc,address")
    ap.add_argument("-o", "--output", required=True, help="CSV to write: record_id,cluster_id")
    ap.add_argument(
        "--review",
        metavar="REVIEW.csv",
        help="CSV to write the uncertain pairs to, with score, rule and features",
    )
    ap.add_argument(
        "--auto",
        type=float,
        default=defaults.auto,
        help=f"score for automatic merges (default {defaults.auto})",
    )
    ap.add_argument(
        "--review-threshold",
        type=float,
        default=defaults.review,
        help=f"score for sending a pair to review (default {defaults.review})",
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 2 unusable input)."""
    args = build_parser().parse_args(argv)
    err = sys.stderr

    def warn(msg: str) -> None:
        print(msg, file=err)

    if not 0 <= args.review_threshold <= args.auto <= 1:
        warn("error: need 0 <= --review-threshold <= --auto <= 1")
        return EXIT_BAD_INPUT
    try:
        enc = detect_encoding(args.input)
        with open(args.input, encoding=enc, newline="") as fh:
            records, bad = read_records(fh, warn)
    except InputError as exc:
        warn(f"error: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:
        warn(f"error: cannot read {args.input}: {exc}")
        return EXIT_BAD_INPUT

    th = replace(DedupThresholds(), auto=args.auto, review=args.review_threshold)
    bar = None
    if err.isatty():
        import shutil

        from tqdm import tqdm

        # A pseudo-terminal may report zero columns, which makes tqdm print nothing.
        cols = shutil.get_terminal_size((80, 20)).columns or 80
        bar = tqdm(total=len(records), unit="rec", desc="dedup", file=err, ncols=cols)
    holder = [records]
    del records  # handed over: the records are released as they are prepared
    try:
        result = cluster_records(
            _consume(holder), th, progress=bar.update if bar else None, explain_merges=False
        )
    finally:
        if bar is not None:
            bar.close()

    try:
        with open(args.output, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["record_id", "cluster_id"])
            # cluster_of keeps the input order
            for rid, cid in result.cluster_of.items():
                w.writerow([rid, cid])
        if args.review:
            with open(args.review, "w", encoding="utf-8", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["record_id_a", "record_id_b", "score", "rule", "features"])
                for ps in result.review:
                    w.writerow(
                        [
                            ps.a,
                            ps.b,
                            f"{ps.score:.4f}",
                            ps.rule,
                            json.dumps(ps.features, ensure_ascii=False),
                        ]
                    )
    except OSError as exc:
        warn(f"error: cannot write output: {exc}")
        return EXIT_BAD_INPUT

    s = result.stats
    warn(
        f"records: {s['records']}, clusters: {s['clusters']}, merged: {s['merged']}, "
        f"sent to review: {s['review']}, malformed rows skipped: {bad}"
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
