"""A reviewer's answers given back to the CSV command (--labels): pairs said to be one firm
merge, pairs said to be two stay apart and are not asked again, bad answer rows are
reported with their line numbers, and the answers move the learned weights."""

import csv
import io
from collections import Counter

from worker.dedup import cluster_records
from worker.dedup.csvcli import main, read_labels
from worker.dedup.fs import FSModel

HEADER = "record_id,name,district,uscc,address\n"


def clusters(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return {r["record_id"]: r["cluster_id"] for r in csv.DictReader(fh)}


def review_pairs(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return {frozenset((r["record_id_a"], r["record_id_b"])) for r in csv.DictReader(fh)}


def run(tmp_path, rows, answers=None, extra=()):
    inp, outp, review = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "review.csv"
    inp.write_text(HEADER + rows, encoding="utf-8")
    argv = [str(inp), "-o", str(outp), "--review", str(review), *extra]
    if answers is not None:
        ans = tmp_path / "answers.csv"
        ans.write_text(answers, encoding="utf-8")
        argv += ["--labels", str(ans)]
    code = main(argv)
    return code, clusters(outp), review_pairs(review)


def test_answer_same_merges_and_answer_different_keeps_apart(tmp_path, capsys):
    rows = (
        "1,成都华兴机械有限公司,锦江区,,红星路88号\n"
        "2,华兴食品有限公司,锦江区,,红星路88号\n"  # another business: never merged alone
        "3,蓉城精工有限公司,武侯区,,\n"
        "4,蓉城精工有限公司,武侯区,,\n"  # identical: merged alone
    )
    code, out, _ = run(tmp_path, rows)
    assert code == 0
    assert out["1"] != out["2"] and out["3"] == out["4"]
    answers = "record_id_a,record_id_b,score,rule,features,same\n1,2,,,,是\n3,4,,,,0\n"
    code, out, review = run(tmp_path, rows, answers)
    assert code == 0
    assert out["1"] == out["2"]  # a person said one firm
    assert out["3"] != out["4"]  # a person said two firms
    assert frozenset(("3", "4")) not in review  # and is not asked again
    err = capsys.readouterr().err
    assert "labels: 1 same, 1 different, 0 undecided, 0 skipped; 2 pairs" in err
    assert err.strip().splitlines()[-1].startswith("records: ")


def test_the_review_file_itself_with_a_same_column_is_read(tmp_path):
    rows = "1,华兴机械有限公司,锦江区,,\n2,华兴机械有限公司,金牛区,,\n3,天府食品有限公司,青羊区,,\n"
    code, out, review = run(tmp_path, rows)
    assert code == 0 and frozenset(("1", "2")) in review and out["1"] != out["2"]
    with open(tmp_path / "review.csv", encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    buf = io.StringIO()
    w = csv.writer(buf)
    for i, r in enumerate(table):  # the reviewer adds a column and answers in it
        w.writerow([*r, "same" if i == 0 else "yes"])
    answers = buf.getvalue()
    code, out, review = run(tmp_path, rows, answers)
    assert code == 0 and out["1"] == out["2"] and frozenset(("1", "2")) not in review


def test_bad_answer_rows_reported_with_line_numbers(tmp_path):
    data = (
        "record_id_a,record_id_b,same\n"
        "1,2,1\n"
        "3,4,maybe\n"  # line 3: not an answer
        "5,6\n"  # line 4: wrong width
        "7,7,1\n"  # line 5: one record
        "8,9,\n"  # undecided: not an error
        "'=A1,10,否\n"  # formula-guarded id
    ).encode() + b"\xff\xfe,1,1\n"  # line 8: undecodable
    warnings = []
    labels, counts = read_labels(data, warnings.append)
    assert labels == {("1", "2"): True, ("10", "=A1"): False}
    assert counts == Counter(same=1, different=1, undecided=1, bad=4)
    joined = "\n".join(warnings)
    for line in ("labels line 3:", "labels line 4:", "labels line 5:", "labels line 8:"):
        assert line in joined


def test_labels_file_without_the_columns_exit_2(tmp_path, capsys):
    code = None
    inp = tmp_path / "in.csv"
    inp.write_text(HEADER + "1,华兴机械有限公司,锦江区,,\n", encoding="utf-8")
    ans = tmp_path / "answers.csv"
    ans.write_text("a,b\n1,2\n", encoding="utf-8")
    code = main([str(inp), "-o", str(tmp_path / "o.csv"), "--labels", str(ans)])
    assert code == 2
    assert "missing header column(s): record_id_a, record_id_b, same" in capsys.readouterr().err


def test_answers_move_the_learned_weights():
    # Candidate pairs: one firm or two, the fit cannot tell apart a name pattern seen as
    # often in both; people's answers say that pattern is one firm.
    pat_dup = (0, 0, 0, 3, 3, 0, 0)
    pat_hard = (7, 0, 3, 3, 3, 0, 2)
    pat_other = (10, 1, 2, 3, 3, 0, 2)
    patterns = Counter({pat_dup: 500, pat_hard: 400, pat_other: 3000})
    plain = FSModel.fit(patterns)
    taught = FSModel.fit(patterns, labelled=Counter({(pat_hard, True): 30}))
    assert taught.labelled == 30
    assert taught.posterior(pat_hard) > plain.posterior(pat_hard)
    against = FSModel.fit(patterns, labelled=Counter({(pat_hard, False): 30}))
    assert against.posterior(pat_hard) < plain.posterior(pat_hard)


def test_labels_with_unknown_ids_are_left_out():
    recs = [
        {"record_id": "a", "name": "华兴机械有限公司", "district": "锦江区"},
        {"record_id": "b", "name": "天府食品有限公司", "district": "锦江区"},
    ]
    res = cluster_records(recs, labels={("a", "zz"): True, ("a", "b"): True})
    assert res.stats["labels_used"] == 1
    assert res.cluster_of["a"] == res.cluster_of["b"]
