"""Command line: deduplicate an enterprise CSV file into record_id,cluster_id.

    python -m worker.dedup.csvcli INPUT.csv -o OUTPUT.csv [--review REVIEW.csv]
                                  [--auto 0.90] [--review-threshold 0.75]

Input columns: record_id,name,district,uscc,address (uscc and address may be empty; an
optional headcount column is used when present), in UTF-8 (with or without BOM) or GB18030.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import gc
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from server.spreadsheet import csv_row
from worker.dedup.cluster import cluster_records
from worker.dedup.match import DedupThresholds, EnterpriseRecord, Prepared, prepare

REQUIRED = ("record_id", "name", "district", "uscc", "address")
EXIT_OK = 0
EXIT_BAD_INPUT = 2
# A field longer than this is not an enterprise's name, code or address: the row is skipped
# (the csv module's own limit, 131,072 characters, raised an exception for the whole file).
MAX_FIELD_CHARS = 4096
# A quoted field may span lines (an address with a line break); a quote left open for
# longer than this is a stray quote, and only its own line is skipped.
MAX_RECORD_LINES = 8


class InputError(Exception):
    """The input cannot be used at all (unreadable, empty, missing columns)."""


@dataclass
class ReadStats:
    """What reading the file found: rows skipped (by reason) and the encodings of rows."""

    bad: int = 0
    reasons: Counter = field(default_factory=Counter)
    encodings: Counter = field(default_factory=Counter)

    def skip(self, warn: Callable[[str], None], line: int, reason: str, detail: str) -> None:
        """Report one bad row with its line number and count it."""
        warn(f"line {line}: {detail}; row skipped")
        self.bad += 1
        self.reasons[reason] += 1


def read_bytes(path: str) -> bytes:
    """The whole file (the exit-2 error when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def decode_line(raw: bytes) -> tuple[str | None, str]:
    """One physical line as text and the encoding it was in ("utf-8", "gb18030"), or None.

    UTF-8 is tried first: GB18030 text is almost never valid UTF-8, while UTF-8 text read as
    GB18030 decodes without error into garbage. A line that is mostly valid UTF-8 with a
    few broken bytes is a damaged UTF-8 line, not GB18030, and is not guessed at.
    """
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    loose = raw.decode("utf-8", "replace")
    broken = loose.count("\ufffd")
    valid = sum(1 for ch in loose if ch > "\x7f" and ch != "\ufffd")
    if valid <= 2 * broken:
        try:
            return raw.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            pass
    return None, ""


def _physical_lines(data: bytes) -> Iterator[bytes]:
    """The file's lines as bytes, each with its end of line (b"\\n" splits both encodings)."""
    start = 0
    n = len(data)
    while start < n:
        end = data.find(b"\n", start)
        if end < 0:
            yield data[start:]
            return
        yield data[start : end + 1]
        start = end + 1


def _parse(text: str) -> list[str] | None:
    """One CSV record from text (None when its quotes do not close within the text)."""
    if '"' not in text:
        return text.rstrip("\r\n").split(",")
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error:
        return None
    if len(rows) != 1:
        return None
    return rows[0]


def iter_rows(
    data: bytes, stats: ReadStats, warn: Callable[[str], None]
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each CSV record; undecodable lines and stray quotes are
    reported with their line numbers and skipped, and reading goes on with the next line."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines = list(_physical_lines(data))
    del data
    i = 0
    n = len(lines)
    while i < n:
        lineno = i + 1
        text, enc = decode_line(lines[i])
        if text is None:
            stats.skip(warn, lineno, "undecodable", "cannot decode (neither UTF-8 nor GB18030)")
            i += 1
            continue
        if "\x00" in text:
            stats.skip(warn, lineno, "nul", "contains a NUL character")
            i += 1
            continue
        if not text.isascii():
            stats.encodings[enc] += 1  # plain ASCII reads the same in both
        row = _parse(text)
        used = 1
        if row is None and text.count('"') % 2 == 1:
            # An open quote: the record may go on over the next lines (a line break inside a
            # quoted address). Join at most MAX_RECORD_LINES lines.
            joined = text
            for k in range(i + 1, min(n, i + MAX_RECORD_LINES)):
                more, _ = decode_line(lines[k])
                if more is None or "\x00" in more:
                    break
                joined += more
                if more.count('"') % 2 == 1:
                    row = _parse(joined)
                    used = k - i + 1
                    break
        if row is None:
            stats.skip(warn, lineno, "quote", "unbalanced or misplaced quote")
            i += 1
            continue
        for k in range(i + 1, i + used):
            lines[k] = b""
        lines[i] = b""
        i += used
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line: nothing to report
        yield lineno, row


def read_records(
    data: bytes | Iterable[str], warn: Callable[[str], None], stats: ReadStats | None = None
) -> tuple[list[Prepared], int]:
    """Parse rows into prepared records; bad rows are reported through warn (with their line
    number), skipped and counted. data is the file's bytes (or lines of text)."""
    if not isinstance(data, bytes):
        data = "".join(data).encode("utf-8")
    stats = stats if stats is not None else ReadStats()
    csv.field_size_limit(sys.maxsize)  # long fields are reported below, not raised
    rows = iter_rows(data, stats, warn)
    try:
        _, header = next(rows)
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
    records: list[Prepared] = []
    seen: set[str] = set()
    for line, row in rows:
        if len(row) != width:
            stats.skip(warn, line, "columns", f"expected {width} columns, found {len(row)}")
            continue
        longest = max(len(f) for f in row)
        if longest > MAX_FIELD_CHARS:
            stats.skip(
                warn,
                line,
                "long_field",
                f"a field of {longest} characters (at most {MAX_FIELD_CHARS})",
            )
            continue
        rid = row[pos["record_id"]].strip()
        name = row[pos["name"]].strip()
        if not rid or not name:
            stats.skip(warn, line, "empty", f"empty {'record_id' if not rid else 'name'}")
            continue
        if rid in seen:
            stats.skip(warn, line, "duplicate", f"duplicate record_id {rid!r}")
            continue
        headcount = None
        if hc_pos is not None:
            try:
                headcount = int(row[hc_pos]) if row[hc_pos].strip() else None
            except ValueError:
                headcount = None
            if headcount is not None and not 0 <= headcount < 10**9:
                headcount = None
        rec = EnterpriseRecord(
            record_id=rid,
            name=name,
            district=row[pos["district"]].strip(),
            uscc=row[pos["uscc"]].strip(),
            address=row[pos["address"]].strip(),
            headcount=headcount,
        )
        try:
            prepared = prepare(rec)  # the clustering takes the prepared record as it is
        except Exception as exc:  # noqa: BLE001 - one row must never stop the file
            stats.skip(warn, line, "unusable", f"cannot be normalised ({type(exc).__name__})")
            continue
        seen.add(rid)
        records.append(prepared)
    return records, stats.bad


def _details(stats: ReadStats) -> str:
    """The summary's tail: why rows were skipped and, for a mixed file, the encodings."""
    out = ""
    if stats.reasons:
        out += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(stats.reasons.items())) + ")"
    if len(stats.encodings) > 1:
        out += "; rows by encoding: " + ", ".join(
            f"{k} {v}" for k, v in sorted(stats.encodings.items())
        )
    return out


def _consume(holder: list[list[Prepared]]) -> Iterable[Prepared]:
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
    ap.add_argument(
        "--learned",
        type=float,
        default=None,
        metavar="P",
        help="also merge review pairs whose probability of being one firm, by weights "
        "learned on the file (Fellegi-Sunter, EM), is at least P (default: off)",
    )
    ap.add_argument(
        "--crowded-spellings",
        type=int,
        default=defaults.crowded_spellings,
        metavar="N",
        help="a same-sound pair with only the district agreeing goes to review when its "
        f"sound has N or more spellings in one business and district (default "
        f"{defaults.crowded_spellings}; 2: every such pair, for higher precision)",
    )
    ap.add_argument(
        "--max-block",
        type=int,
        default=defaults.max_block,
        metavar="N",
        help="records sharing a blocking key are all compared up to N of them; a bigger "
        f"block is sorted and each record meets its N nearest (default {defaults.max_block})",
    )
    ap.add_argument(
        "--stats",
        action="store_true",
        help="also print how many pairs were compared (the cost that grows with the file)",
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 2 unusable input)."""
    # Reading prepares hundreds of thousands of small objects, none in cycles: without
    # the cyclic collector rescanning them (cluster_records pauses it the same way).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _main(argv)
    finally:
        if was_enabled:
            gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    """The body of main."""
    args = build_parser().parse_args(argv)
    err = sys.stderr

    def warn(msg: str) -> None:
        print(msg, file=err)

    if args.learned is not None and not 0.5 <= args.learned <= 1:
        warn("error: need 0.5 <= --learned <= 1")
        return EXIT_BAD_INPUT
    if args.crowded_spellings < 2:
        warn("error: need --crowded-spellings >= 2")
        return EXIT_BAD_INPUT
    if not 0 <= args.review_threshold <= args.auto <= 1:
        warn("error: need 0 <= --review-threshold <= --auto <= 1")
        return EXIT_BAD_INPUT
    if args.max_block < 2:
        warn("error: --max-block must be at least 2")
        return EXIT_BAD_INPUT
    stats = ReadStats()
    try:
        data = read_bytes(args.input)
        records, bad = read_records(data, warn, stats)
        del data
    except InputError as exc:
        warn(f"error: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:
        warn(f"error: cannot read {args.input}: {exc}")
        return EXIT_BAD_INPUT

    th = replace(
        DedupThresholds(),
        auto=args.auto,
        review=args.review_threshold,
        learned_auto=args.learned,
        crowded_spellings=args.crowded_spellings,
        max_block=args.max_block,
    )
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
                # A person opens this one in a spreadsheet app: record ids from the
                # roster that could start a formula get the apostrophe prefix.
                for ps in result.review:
                    w.writerow(
                        csv_row(
                            [
                                ps.a,
                                ps.b,
                                f"{ps.score:.4f}",
                                ps.rule,
                                json.dumps(ps.features, ensure_ascii=False),
                            ]
                        )
                    )
    except OSError as exc:
        warn(f"error: cannot write output: {exc}")
        return EXIT_BAD_INPUT

    s = result.stats
    if args.stats:
        warn(
            f"pairs compared: {s['pairs_compared']} "
            f"({s['pairs_compared'] / max(1, s['records']):.1f} per record; blocks over "
            f"{th.max_block} records sorted and windowed: {s['oversized_blocks_split']})"
        )
    warn(
        f"records: {s['records']}, clusters: {s['clusters']}, merged: {s['merged']}, "
        f"sent to review: {s['review']}, malformed rows skipped: {bad}" + _details(stats)
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
