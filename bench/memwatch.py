"""Peak memory of a process *and its children*, summed (a command with worker processes).

The kernel's peak (ru_maxrss, os.wait4) is that of the largest single process, so a
command that forks workers would look smaller than it is. TreeMemory samples every
process of the tree every `interval` seconds and keeps the peak of the sum: of their
resident sets (RSS, counting pages that forked processes share once per process) and of
their proportional sets (PSS, shared pages split between the processes sharing them,
which is what the machine actually spends). Linux only (/proc).
"""

from __future__ import annotations

import threading
from pathlib import Path


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def _tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _rss_pss_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, pss


class TreeMemory:
    """Sample a process tree's memory in a thread until stop()."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.pid)
            rss = pss = 0
            for p in pids:
                r, s = _rss_pss_kb(p)
                rss += r
                pss += s
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.peak_processes = max(self.peak_processes, len(pids))
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, float]:
        """Stop sampling; the peaks in MB."""
        self._stop.set()
        self._thread.join()
        return {
            "tree_peak_rss_mb": round(self.peak_rss_kb / 1024, 1),
            "tree_peak_pss_mb": round(self.peak_pss_kb / 1024, 1),
            "processes": self.peak_processes,
        }
