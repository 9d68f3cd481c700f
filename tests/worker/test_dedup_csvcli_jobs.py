"""The CSV command's worker processes change nothing but the time: the same clusters,
review list, warnings (in file order) and summary as one process, on a file full of bad
rows of every kind; and a name's pinyin key is the same in every process."""

import contextlib
import io
import random
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.dedup import csvcli

ROOT = Path(__file__).resolve().parents[2]
HEADER = "record_id,name,district,uscc,address,headcount\n"
TRADE = "华兴蓉城锦江精工蜀都天府金牛青羊新鸿达盛嘉恒腾驰润丰永"
INDUSTRY = ["机械", "机械制造", "食品", "商贸", "家政服务", "建筑劳务", "电子科技"]
FORM = ["有限公司", "有限责任公司", "股份有限公司", "有限公 司", ""]
DISTRICT = ["锦江区", "青羊区", "金牛区", "武侯区", "成华区", "锦江", ""]


def roster(seed: int, rows: int) -> bytes:
    """A roster with near-duplicate names and, every few rows, a bad row of some kind."""
    rnd = random.Random(seed)
    out = [HEADER.encode()]
    for i in range(rows):
        trade = "".join(rnd.choice(TRADE) for _ in range(rnd.choice([2, 3, 3, 4])))
        name = rnd.choice(["", "成都", "成都市", "四川"]) + trade + rnd.choice(INDUSTRY)
        name += rnd.choice(FORM)
        road = rnd.choice(["红星路", "人民南路", "蜀都大道"]) + f"{rnd.randint(1, 40)}号"
        line = f"{i},{name},{rnd.choice(DISTRICT)},,{road},{rnd.choice(['', '12', 'x'])}\n"
        kind = rnd.random()
        if kind < 0.03:
            out.append(line.encode("gb18030"))
        elif kind < 0.05:
            out.append(b"\xff\xfe" + line.encode())  # undecodable
        elif kind < 0.06:
            out.append(line.replace(",", ",\x00", 1).encode())  # NUL
        elif kind < 0.07:
            out.append(f'{i},"{name},锦江区,,\n'.encode())  # stray quote
        elif kind < 0.08:
            out.append(f"{i},{name}\n".encode())  # wrong width
        elif kind < 0.09:
            out.append(f"{rnd.randint(0, i)},{name},锦江区,,,\n".encode())  # duplicate id
        elif kind < 0.10:
            out.append(f",{name},锦江区,,,\n".encode())  # empty id
        elif kind < 0.105:
            out.append(f"{i},{name}{'机' * 5000},锦江区,,,\n".encode())  # long field
        elif kind < 0.11:
            out.append(f'{i},{name},锦江区,,"红星路\n88号",\n'.encode())  # two lines
        else:
            out.append(line.encode())
    return b"".join(out)


def run(path: Path, tmp: Path, jobs: int) -> tuple[int, str, bytes, bytes]:
    """Exit code, stderr, clusters and review file of one run."""
    outp, review = tmp / f"out{jobs}.csv", tmp / f"review{jobs}.csv"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = csvcli.main(
            [str(path), "-o", str(outp), "--review", str(review), "--jobs", str(jobs)]
        )
    return code, err.getvalue(), outp.read_bytes(), review.read_bytes()


def test_two_processes_give_what_one_gives(tmp_path, monkeypatch):
    # Small chunks: the rows are spread over many tasks and both workers.
    monkeypatch.setattr(csvcli, "CHUNK_ROWS", 37)
    inp = tmp_path / "in.csv"
    inp.write_bytes(roster(11, 3000))
    one = run(inp, tmp_path, 1)
    two = run(inp, tmp_path, 2)
    assert one[0] == two[0] == 0
    assert one == two
    err = one[1]
    for reason in ("cannot decode", "NUL", "quote", "columns", "duplicate record_id", "empty"):
        assert reason in err, reason
    # the warnings come in file order
    lines = [int(x.split(":")[0].split()[1]) for x in err.splitlines() if x.startswith("line ")]
    assert lines == sorted(lines) and len(lines) > 100


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), rows=st.integers(0, 400), chunk=st.integers(1, 50))
def test_any_roster_same_in_one_and_three_processes(tmp_path, monkeypatch, seed, rows, chunk):
    monkeypatch.setattr(csvcli, "CHUNK_ROWS", chunk)
    inp = tmp_path / "in.csv"
    inp.write_bytes(roster(seed, rows))
    assert run(inp, tmp_path, 1) == run(inp, tmp_path, 3)


def test_jobs_must_not_be_negative(tmp_path, capsys):
    inp = tmp_path / "in.csv"
    inp.write_bytes(roster(1, 10))
    assert csvcli.main([str(inp), "-o", str(tmp_path / "o.csv"), "--jobs", "-1"]) == 2
    assert "--jobs" in capsys.readouterr().err


KEY_SCRIPT = (
    "import sys, json\n"
    "from worker.dedup.normalize import pinyin_key\n"
    "names = json.loads(sys.stdin.read())\n"
    "if sys.argv[1] == 'reverse': names = names[::-1]\n"
    "keys = {n: pinyin_key(n) for n in names}\n"
    "print(json.dumps(keys, ensure_ascii=False))\n"
)


def test_pinyin_key_does_not_depend_on_the_order_names_arrive_in():
    # The key was once numbered in the order syllables were first seen, so two processes
    # (the CSV command's workers) gave one name two keys.
    names = ["成都华兴机械", "華興", "ABC锦江", "天府\ue123", "蓉城精工", "青羊", "绿"]
    import json

    got = []
    for order in ("forward", "reverse"):
        proc = subprocess.run(
            [sys.executable, "-c", KEY_SCRIPT, order],
            input=json.dumps(names),
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        got.append(json.loads(proc.stdout))
    assert got[0] == got[1]
    assert got[0]["成都华兴机械"][2:4] == got[0]["華興"]  # one sound, one key
    assert len(got[0]["成都华兴机械"]) == len("成都华兴机械")
