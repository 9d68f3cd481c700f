"""The dedup command's review file is opened by a person in a spreadsheet app: record ids
taken from the roster that could start a formula are written as text (issue 13)."""

import csv

from worker.dedup.csvcli import main

HEADER = "record_id,name,district,uscc,address\n"


def test_review_file_ids_cannot_start_a_formula(tmp_path):
    inp, outp, rev = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "rev.csv"
    # Same name in two districts: one pair for review; both ids are formulas.
    inp.write_text(
        HEADER + '"=HYPERLINK(""http://e.x/"")",华兴机械有限公司,锦江区,,\n'
        "@SUM(1),华兴机械有限公司,双流县,,\n",
        encoding="utf-8",
    )
    assert main([str(inp), "-o", str(outp), "--review", str(rev)]) == 0
    with open(rev, encoding="utf-8", newline="") as fh:
        reviews = list(csv.DictReader(fh))
    assert len(reviews) == 1
    ids = {reviews[0]["record_id_a"], reviews[0]["record_id_b"]}
    assert ids == {'\'=HYPERLINK("http://e.x/")', "'@SUM(1)"}
    # The clusters file is for joining back to the roster: its ids stay as given.
    with open(outp, encoding="utf-8", newline="") as fh:
        assert {r["record_id"] for r in csv.DictReader(fh)} == {
            '=HYPERLINK("http://e.x/")',
            "@SUM(1)",
        }
