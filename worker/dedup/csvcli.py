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
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from server.spreadsheet import FORMULA_START, csv_row
from worker.dedup.cluster import cluster_records
from worker.dedup.match import DedupThresholds, EnterpriseRecord, Prepared, prepare
from worker.dedup.normalize import normalize_name

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


# A row of the file, as the reader passes it on: (line, fields) for a record, or (line,
# None, reason, detail) for a line already known to be bad.
RowEvent = tuple


def iter_rows(data: bytes) -> Iterator[RowEvent]:
    """(line number, fields) of each CSV record; an undecodable line or a stray quote comes
    as (line number, None, reason, detail) and reading goes on with the next line."""
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
            yield lineno, None, "undecodable", "cannot decode (neither UTF-8 nor GB18030)"
            i += 1
            continue
        if "\x00" in text:
            yield lineno, None, "nul", "contains a NUL character"
            i += 1
            continue
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
            yield lineno, None, "quote", "unbalanced or misplaced quote"
            i += 1
            continue
        for k in range(i + 1, i + used):
            lines[k] = b""
        lines[i] = b""
        i += used
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line: nothing to report
        # plain ASCII reads the same in both encodings: only other lines are counted
        yield lineno, row, "" if text.isascii() else enc


def read_header(
    events: Iterator[RowEvent], bad: Callable[[RowEvent], None]
) -> tuple[list[str] | None, str]:
    """The first readable row's fields, lower-cased, and its encoding ("" for ASCII);
    unreadable lines before it go to bad. (None, "") when the file has no row at all."""
    for ev in events:
        if ev[1] is None:
            bad(ev)
            continue
        return [h.strip().lower() for h in ev[1]], ev[2]
    return None, ""


def check_columns(header: list[str], required: Sequence[str], what: str = "") -> None:
    """InputError naming the required columns the header lacks (none: nothing)."""
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            f"{what}missing header column(s): "
            + ", ".join(missing)
            + " (expected "
            + ",".join(required)
            + ")"
        )


@dataclass(frozen=True)
class Layout:
    """Where the columns are (from the header)."""

    width: int
    pos: dict[str, int]
    hc_pos: int | None


def _headcount(raw: str) -> int | None:
    """The optional head count (None when empty, not a number or out of range)."""
    try:
        headcount = int(raw) if raw.strip() else None
    except ValueError:
        return None
    if headcount is not None and not 0 <= headcount < 10**9:
        return None
    return headcount


# What became of one row: (line, record_id or None, prepared record or None, reason,
# detail, encoding). record_id None: the row is bad whatever else the file holds; a
# record_id with no prepared record: it could not be normalised.
Outcome = tuple


def row_outcomes(layout: Layout, events: list[RowEvent]) -> list[Outcome]:
    """Check and normalise a chunk of rows (the work that runs in the worker processes:
    it depends on nothing but the rows, so chunks may be done in any process)."""
    out: list[Outcome] = []
    width, pos = layout.width, layout.pos
    for ev in events:
        line, row = ev[0], ev[1]
        if row is None:
            out.append((line, None, None, ev[2], ev[3], ""))
            continue
        enc = ev[2]
        if len(row) != width:
            out.append(
                (line, None, None, "columns", f"expected {width} columns, found {len(row)}", enc)
            )
            continue
        longest = max(len(f) for f in row)
        if longest > MAX_FIELD_CHARS:
            detail = f"a field of {longest} characters (at most {MAX_FIELD_CHARS})"
            out.append((line, None, None, "long_field", detail, enc))
            continue
        rid = row[pos["record_id"]].strip()
        name = row[pos["name"]].strip()
        if not rid or not name:
            detail = f"empty {'record_id' if not rid else 'name'}"
            out.append((line, None, None, "empty", detail, enc))
            continue
        rec = EnterpriseRecord(
            record_id=rid,
            name=name,
            district=row[pos["district"]].strip(),
            uscc=row[pos["uscc"]].strip(),
            address=row[pos["address"]].strip(),
            headcount=None if layout.hc_pos is None else _headcount(row[layout.hc_pos]),
        )
        try:
            prepared = prepare(rec)  # the clustering takes the prepared record as it is
        except Exception as exc:  # noqa: BLE001 - one row must never stop the file
            detail = f"cannot be normalised ({type(exc).__name__})"
            out.append((line, rid, None, "unusable", detail, enc))
            continue
        out.append((line, rid, prepared, "", "", enc))
    return out


# Rows handed to a worker at a time, and chunks in flight per worker: enough to keep the
# workers busy, few enough that rows read ahead do not pile up in memory.
CHUNK_ROWS = 2000
IN_FLIGHT_PER_JOB = 3
# Normalised names a worker remembers: identical names are normalised once, but a
# cache as large as the roster would double the memory the names take.
WORKER_CACHE_NAMES = 200_000


def _worker_outcomes(layout: Layout, events: list[RowEvent]) -> list[Outcome]:
    """row_outcomes in a worker process, with its name cache kept bounded."""
    if normalize_name.cache_info().currsize > WORKER_CACHE_NAMES:
        normalize_name.cache_clear()
    return row_outcomes(layout, events)


def _chunks(events: Iterator[RowEvent], size: int) -> Iterator[list[RowEvent]]:
    """The events in lists of at most size."""
    chunk: list[RowEvent] = []
    for ev in events:
        chunk.append(ev)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _outcomes(
    layout: Layout, events: Iterator[RowEvent], pool: Any | None, jobs: int
) -> Iterator[Outcome]:
    """Every row's outcome in file order, normalised in the pool's processes when given."""
    if pool is None:
        for chunk in _chunks(events, CHUNK_ROWS):
            yield from row_outcomes(layout, chunk)
        return
    pending: deque = deque()
    for chunk in _chunks(events, CHUNK_ROWS):
        pending.append(pool.apply_async(_worker_outcomes, (layout, chunk)))
        while len(pending) >= IN_FLIGHT_PER_JOB * jobs:
            yield from pending.popleft().get()
    while pending:
        yield from pending.popleft().get()


def read_records(
    data: bytes | Iterable[str],
    warn: Callable[[str], None],
    stats: ReadStats | None = None,
    pool: Any | None = None,
    jobs: int = 1,
) -> tuple[list[Prepared], int]:
    """Parse rows into prepared records; bad rows are reported through warn (with their line
    number), skipped and counted. data is the file's bytes (or lines of text). With a
    multiprocessing pool of jobs processes, rows are normalised there; what is reported and
    returned is the same, in the same order."""
    if not isinstance(data, bytes):
        data = "".join(data).encode("utf-8")
    stats = stats if stats is not None else ReadStats()
    csv.field_size_limit(sys.maxsize)  # long fields are reported below, not raised
    events = iter_rows(data)
    cols, enc = read_header(events, lambda ev: stats.skip(warn, ev[0], ev[2], ev[3]))
    if cols is None:
        raise InputError("input is empty: expected a header row with " + ",".join(REQUIRED))
    if enc:
        stats.encodings[enc] += 1
    check_columns(cols, REQUIRED)
    layout = Layout(
        width=len(cols),
        pos={c: cols.index(c) for c in REQUIRED},
        hc_pos=cols.index("headcount") if "headcount" in cols else None,
    )
    records: list[Prepared] = []
    seen: set[str] = set()
    for line, rid, prepared, reason, detail, enc in _outcomes(layout, events, pool, jobs):
        if enc:
            stats.encodings[enc] += 1
        if rid is None:
            stats.skip(warn, line, reason, detail)
        elif rid in seen:
            stats.skip(warn, line, "duplicate", f"duplicate record_id {rid!r}")
        elif prepared is None:
            stats.skip(warn, line, reason, detail)
        else:
            seen.add(rid)
            records.append(prepared)
    return records, stats.bad


# Below this size (about 40,000 rows) starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 4_000_000


def processors() -> int:
    """Processors this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def start_pool(jobs: int) -> Any:
    """jobs worker processes for normalising rows. Forked where the system can (the workers
    start at once, with the reference data already loaded), spawned elsewhere."""
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(jobs)


# The answers a reviewer writes in the review file's added "same" column.
SAME_WORDS = frozenset(("1", "y", "yes", "true", "same", "是", "同一", "相同", "√"))
DIFFERENT_WORDS = frozenset(("0", "n", "no", "false", "different", "否", "不同", "不是", "×"))
LABEL_COLUMNS = ("record_id_a", "record_id_b", "same")


def _unprefixed(value: str) -> str:
    """A record id as written before the review file's formula guard ("'=A1" → "=A1")."""
    value = value.strip()
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def read_labels(
    data: bytes, warn: Callable[[str], None]
) -> tuple[dict[tuple[str, str], bool], Counter]:
    """A reviewer's answers: the review file (or any CSV with record_id_a, record_id_b and
    same columns) with "same" filled in per pair (1/0, yes/no, 是/否 ...). A row left empty
    is undecided; a row that cannot be read or says something else is reported with its
    line number and skipped. The counts: same, different, undecided, bad."""
    counts: Counter = Counter()
    labels: dict[tuple[str, str], bool] = {}

    def bad(line: int, detail: str) -> None:
        warn(f"labels line {line}: {detail}; row skipped")
        counts["bad"] += 1

    csv.field_size_limit(sys.maxsize)
    events = iter_rows(data)
    header, _ = read_header(events, lambda ev: bad(ev[0], ev[3]))
    check_columns(header or [], LABEL_COLUMNS, "labels file (the review file with a same column): ")
    assert header is not None
    pos = [header.index(c) for c in LABEL_COLUMNS]
    for ev in events:
        line, row = ev[0], ev[1]
        if row is None:
            bad(line, ev[3])
            continue
        if len(row) != len(header):
            bad(line, f"expected {len(header)} columns, found {len(row)}")
            continue
        a, b, answer = (row[k] for k in pos)
        a, b = _unprefixed(a), _unprefixed(b)
        answer = answer.strip().lower()
        if not answer:
            counts["undecided"] += 1
            continue
        if not a or not b or a == b:
            bad(line, "needs two different record ids")
            continue
        if answer in SAME_WORDS:
            same = True
        elif answer in DIFFERENT_WORDS:
            same = False
        else:
            shown = answer if len(answer) <= 20 else answer[:20] + "…"
            bad(line, f"same must be 1 or 0 (yes/no, 是/否), not {shown!r}")
            continue
        key = (a, b) if a < b else (b, a)
        if key in labels and labels[key] != same:
            warn(f"labels line {line}: the pair was answered both ways; the last answer counts")
        labels[key] = same
    for same in labels.values():
        counts["same" if same else "different"] += 1
    return labels, counts


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
        "--labels",
        metavar="ANSWERS.csv",
        help="a reviewer's answers: the review file with a column same filled in (1/0, "
        "yes/no, 是/否); pairs said to be one firm are merged, pairs said to be two are "
        "kept apart and not asked again, and with --learned the answers refine the weights",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="processes that normalise the records (default 0: one per processor for a "
        f"file over {PARALLEL_MIN_BYTES // 1_000_000} MB, else 1)",
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
    if args.jobs < 0:
        warn("error: --jobs must be 0 (automatic) or more")
        return EXIT_BAD_INPUT
    stats = ReadStats()
    pool = None
    t_start = time.perf_counter()
    labels = None
    label_counts: Counter = Counter()
    if args.labels:
        try:
            labels, label_counts = read_labels(read_bytes(args.labels), warn)
        except InputError as exc:
            warn(f"error: {exc}")
            return EXIT_BAD_INPUT
    try:
        data = read_bytes(args.input)
        jobs = args.jobs or (processors() if len(data) > PARALLEL_MIN_BYTES else 1)
        if jobs > 1:
            pool = start_pool(jobs)
        records, bad = read_records(data, warn, stats, pool=pool, jobs=jobs)
        del data
    except InputError as exc:
        warn(f"error: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:
        warn(f"error: cannot read {args.input}: {exc}")
        return EXIT_BAD_INPUT
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()

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
    t_read = time.perf_counter()
    holder = [records]
    del records  # handed over: the records are released as they are prepared
    try:
        result = cluster_records(
            _consume(holder),
            th,
            progress=bar.update if bar else None,
            explain_merges=False,
            labels=labels,
        )
    finally:
        if bar is not None:
            bar.close()

    t_cluster = time.perf_counter()
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
            f"{th.max_block} records sorted and windowed: {s['oversized_blocks_split']}); "
            f"reading and normalising {t_read - t_start:.1f} s in {jobs} process(es), "
            f"clustering {t_cluster - t_read:.1f} s"
        )
    if args.labels:
        warn(
            f"labels: {label_counts['same']} same, {label_counts['different']} different, "
            f"{label_counts['undecided']} undecided, {label_counts['bad']} skipped; "
            f"{s['labels_used']} pairs of this file's records used"
        )
    warn(
        f"records: {s['records']}, clusters: {s['clusters']}, merged: {s['merged']}, "
        f"sent to review: {s['review']}, malformed rows skipped: {bad}" + _details(stats)
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
