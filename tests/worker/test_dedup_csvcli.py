"""The CSV command end to end: encodings, malformed rows, summary, exit codes."""

import csv
import subprocess
import sys
from pathlib import Path

from worker.dedup.csvcli import main

ROOT = Path(__file__).resolve().parents[2]
HEADER = "record_id,name,district,uscc,address\n"
ROWS = (
    "1,成都华兴机械有限公司,锦江区,91350100M000100Y43,红星路88号\n"
    "2,華興機械有限責任公司,锦江区,,\n"
    "3,华兴（成都）机械有限公司,锦江,,\n"
    "4,华兴食品有限公司,锦江区,,红星路88号\n"
    "5,成都华兴机械有限公司锦江分公司,锦江区,,\n"
    "6,蓉城精工有限公司,武侯区,,\n"
)


def read_out(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return {r["record_id"]: r["cluster_id"] for r in csv.DictReader(fh)}


def check_clusters(out):
    assert set(out) == {"1", "2", "3", "4", "5", "6"}
    assert out["1"] == out["2"] == out["3"]
    assert len({out["1"], out["4"], out["5"], out["6"]}) == 4


def test_utf8_with_bom(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    inp.write_text(HEADER + ROWS, encoding="utf-8-sig")
    assert main([str(inp), "-o", str(outp)]) == 0
    check_clusters(read_out(outp))
    err = capsys.readouterr().err
    assert "records: 6, clusters: 4, merged: 2, sent to review: 0, malformed rows skipped: 0" in err


def test_gb18030_input_and_review_file(tmp_path, capsys):
    inp, outp, rev = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "rev.csv"
    extra = "7,华兴机械有限公司,双流县,,\n"  # same name, other district: review
    inp.write_bytes((HEADER + ROWS + extra).encode("gb18030"))
    assert main([str(inp), "-o", str(outp), "--review", str(rev)]) == 0
    out = read_out(outp)
    assert out["7"] != out["1"]
    with open(rev, encoding="utf-8", newline="") as fh:
        reviews = list(csv.DictReader(fh))
    assert len(reviews) == 1 and "7" in (reviews[0]["record_id_a"], reviews[0]["record_id_b"])
    assert reviews[0]["rule"] == "name_exact_conflicting"
    assert "sent to review: 1" in capsys.readouterr().err


def test_malformed_rows_reported_with_line_numbers_and_counted(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    bad = (
        "8,only three,columns\n"  # line 8: wrong column count
        ",无编号有限公司,锦江区,,\n"  # line 9: empty record_id
        "10,,锦江区,,\n"  # line 10: empty name
        "1,重复编号有限公司,锦江区,,\n"  # line 11: duplicate record_id
    )
    inp.write_text(HEADER + ROWS + bad, encoding="utf-8")
    assert main([str(inp), "-o", str(outp)]) == 0
    err = capsys.readouterr().err
    assert "line 8:" in err and "columns" in err
    assert "line 9: empty record_id" in err
    assert "line 10: empty name" in err
    assert "line 11: duplicate record_id '1'" in err
    assert "malformed rows skipped: 4" in err
    check_clusters(read_out(outp))


def test_missing_columns_exit_2_naming_them(tmp_path, capsys):
    inp = tmp_path / "in.csv"
    inp.write_text("record_id,name,address\n1,华兴机械有限公司,\n", encoding="utf-8")
    assert main([str(inp), "-o", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert "missing header column(s): district, uscc" in err


def test_unreadable_input_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope.csv"), "-o", str(tmp_path / "out.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_thresholds_from_the_command_line(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    inp.write_text(
        HEADER + "1,华兴达机械有限公司,锦江区,,\n2,华星达机械有限公司,锦江区,,\n", encoding="utf-8"
    )
    assert main([str(inp), "-o", str(outp)]) == 0
    assert len(set(read_out(outp).values())) == 1
    assert main([str(inp), "-o", str(outp), "--auto", "0.999", "--review-threshold", "0.5"]) == 0
    assert len(set(read_out(outp).values())) == 2
    assert "sent to review: 1" in capsys.readouterr().err.splitlines()[-1]


def test_runs_as_module_without_tty_progress(tmp_path):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    inp.write_text(HEADER + ROWS, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "worker.dedup.csvcli", str(inp), "-o", str(outp)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    # stderr is not a terminal here: only the summary, no progress bar
    assert proc.stderr.strip().splitlines() == [
        "records: 6, clusters: 4, merged: 2, sent to review: 0, malformed rows skipped: 0"
    ]
    check_clusters(read_out(outp))
