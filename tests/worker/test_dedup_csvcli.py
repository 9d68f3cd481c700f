"""The CSV command end to end: encodings, malformed rows, summary, exit codes."""

import contextlib
import csv
import io
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def summary(err):
    return err.strip().splitlines()[-1]


def test_stray_quote_skips_only_its_line(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    stray = '7,"华兴机械有限公司,锦江区,,\n'  # line 8: a quote that never closes
    rows = "".join(f"{100 + k},蓉城{k}号精工有限公司,武侯区,,\n" for k in range(300))
    inp.write_text(HEADER + ROWS + stray + rows, encoding="utf-8")
    assert main([str(inp), "-o", str(outp)]) == 0
    err = capsys.readouterr().err
    assert "line 8: unbalanced or misplaced quote; row skipped" in err
    out = read_out(outp)
    assert "7" not in out and "100" in out and "399" in out  # the lines after it are read
    assert "malformed rows skipped: 1 (quote: 1)" in summary(err)


def test_quoted_field_over_two_lines_is_one_record(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    multi = '7,"华兴机械有限公司",锦江区,,"红星路\n88号"\n8,"带""引号""的商行",锦江区,,\n'
    inp.write_text(HEADER + ROWS + multi, encoding="utf-8")
    assert main([str(inp), "-o", str(outp)]) == 0
    out = read_out(outp)
    assert {"7", "8"} <= set(out)
    assert "malformed rows skipped: 0" in summary(capsys.readouterr().err)


def test_field_over_the_csv_limit_is_reported_not_raised(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    huge = "7,华兴" + "机" * 200_000 + ",锦江区,,\n"  # line 8
    quoted_huge = '8,"' + "华" * 140_000 + '",锦江区,,\n'  # line 9, over 131,072 in quotes
    inp.write_text(HEADER + ROWS + huge + quoted_huge, encoding="utf-8")
    assert main([str(inp), "-o", str(outp)]) == 0
    err = capsys.readouterr().err
    assert "line 8: a field of 200002 characters" in err
    assert "line 9: a field of 140000 characters" in err
    out = read_out(outp)
    check_clusters(out)
    assert "malformed rows skipped: 2 (long_field: 2)" in summary(err)


def test_undecodable_row_reported_and_the_rest_read(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    data = (HEADER + ROWS).encode("utf-8")
    # line 8: UTF-8 with broken bytes (a truncated character, a stray 0xFF)
    data += "7,华兴机械".encode() + b"\xe6\x9c,\xff\xfe,,\n"
    data += "8,蜀都精工有限公司,武侯区,,\n".encode()
    inp.write_bytes(data)
    assert main([str(inp), "-o", str(outp)]) == 0
    err = capsys.readouterr().err
    assert "line 8: cannot decode" in err
    out = read_out(outp)
    assert "7" not in out and "8" in out
    check_clusters({k: v for k, v in out.items() if k != "8"})
    assert "malformed rows skipped: 1 (undecodable: 1)" in summary(err)


def test_utf8_rows_inside_a_gb18030_file_are_read_as_utf8(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    data = (HEADER + ROWS).encode("gb18030")
    data += "7,成都华兴机械有限责任公司,锦江区,,红星路88号\n".encode()  # pasted in UTF-8
    data += "8,蓉城精工有限公司,武侯区,,\n".encode("gb18030")
    inp.write_bytes(data)
    assert main([str(inp), "-o", str(outp)]) == 0
    err = capsys.readouterr().err
    out = read_out(outp)
    assert out["7"] == out["1"]  # read correctly, not as garbled GB18030
    assert out["8"] == out["6"]
    assert "rows by encoding: gb18030 7, utf-8 1" in summary(err)


def test_nul_and_wrong_width_rows_do_not_stop_the_file(tmp_path, capsys):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    data = (HEADER + ROWS).encode("utf-8") + b"7,\x00bad,x,,\n" + b"8,a,b\n"
    data += "9,锦华机械有限公司,锦江区,,\n".encode()
    inp.write_bytes(data)
    assert main([str(inp), "-o", str(outp)]) == 0
    err = capsys.readouterr().err
    assert "line 8: contains a NUL character" in err
    assert "line 9: expected 5 columns, found 3" in err
    assert "9" in read_out(outp)
    assert "malformed rows skipped: 2 (columns: 1, nul: 1)" in summary(err)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.text(alphabet='华兴机械有限公司锦江区,"\r\n \x00', max_size=30).map(str.encode),
            st.text(alphabet='华兴机械有限公司锦江区,"\r\n', max_size=30).map(
                lambda s: s.encode("gb18030")
            ),
        ),
        max_size=12,
    )
)
def test_any_bytes_after_the_header_never_crash(tmp_path, blobs):
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    inp.write_bytes((HEADER + ROWS).encode() + b"".join(blobs))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(inp), "-o", str(outp)])
    assert code == 0
    last = err.getvalue().strip().splitlines()[-1]
    assert last.startswith("records: ")
    out = read_out(outp)
    assert {"1", "2", "3", "4", "5", "6"} <= set(out)


def test_crowded_spellings_from_the_command_line(tmp_path, capsys):
    """--crowded-spellings 2 sends a same-sound pair with only the district agreeing to
    review (the precision setting); the default merges it; under 2 is refused."""
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    inp.write_text(
        HEADER + "1,华兴达机械有限公司,锦江区,,\n2,华星达机械有限公司,锦江区,,\n", encoding="utf-8"
    )
    assert main([str(inp), "-o", str(outp)]) == 0
    assert len(set(read_out(outp).values())) == 1
    assert main([str(inp), "-o", str(outp), "--crowded-spellings", "2"]) == 0
    assert len(set(read_out(outp).values())) == 2
    assert "sent to review: 1" in capsys.readouterr().err.splitlines()[-1]
    assert main([str(inp), "-o", str(outp), "--crowded-spellings", "1"]) == 2


def test_max_block_windows_a_big_block_and_refuses_nonsense(tmp_path, capsys):
    """--max-block: a block bigger than N is sorted and windowed (not skipped): the pairs
    next to each other in it still merge, the summary says how many pairs were compared;
    a value below 2 is refused with exit code 2."""
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [
        f"{2 * k + t},华兴机械有限公司,锦江区,,红星路{k + 1}号\n" for k in range(20) for t in (0, 1)
    ]
    inp.write_text(HEADER + "".join(rows), encoding="utf-8")
    assert main([str(inp), "-o", str(outp), "--max-block", "4", "--stats"]) == 0
    err = capsys.readouterr().err
    assert "blocks over 4 records sorted and windowed: " in err
    compared = int(err.split("pairs compared: ")[1].split()[0])
    assert 0 < compared < 40 * 39 // 2  # not every pair of the 40 records
    out = read_out(outp)
    for k in range(20):  # the two rows at one address are one firm
        assert out[str(2 * k)] == out[str(2 * k + 1)]
    assert main([str(inp), "-o", str(outp), "--max-block", "1"]) == 2
    assert "--max-block must be at least 2" in capsys.readouterr().err
