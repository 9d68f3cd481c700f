"""Pair decisions: identity by code, names compared with typing errors, hard negatives
kept apart."""

from worker.dedup import DedupThresholds, blocking_keys, prepare, score_pair
from worker.dedup.match import AUTO, NO, REVIEW

VALID = "91350100M000100Y43"  # passes the GB 32100 check
VALID_OTHER = "91440300708461136T"
BAD_CHECK = "91350100M000100Y44"  # one character off: the check fails


def rec(rid, name, district="锦江区", uscc="", address="", headcount=None):
    return prepare(
        {
            "record_id": rid,
            "name": name,
            "district": district,
            "uscc": uscc,
            "address": address,
            "headcount": headcount,
        }
    )


def test_region_suffix_and_bracket_variants_merge():
    a = rec("a", "成都华兴机械有限公司")
    for i, name in enumerate(
        ["华兴（成都）机械有限责任公司", "四川省成都市华兴机械制造有限公司", "華興機械有限公司"]
    ):
        ps = score_pair(a, rec(f"b{i}", name))
        assert ps.decision == AUTO, (name, ps)
        assert ps.rule == "name_exact"


def test_same_pinyin_typo_merges_with_second_field():
    ps = score_pair(rec("a", "成都华兴达机械有限公司"), rec("b", "华星达机械有限公司"))
    assert ps.decision == AUTO
    assert ps.rule == "name_similar_corroborated"
    assert ps.features["name_rule"] == "same_pinyin"
    assert "district" in ps.features["corroborated_by"]


def test_similar_name_without_second_field_goes_to_review():
    ps = score_pair(
        rec("a", "华兴达机械有限公司", district=""), rec("b", "华星达机械有限公司", district="")
    )
    assert ps.decision == REVIEW
    assert ps.features["corroborated_by"] == []


def test_doubled_and_dropped_characters():
    doubled = score_pair(rec("a", "鑫达利贸易有限公司"), rec("b", "鑫达达利贸易有限公司"))
    assert doubled.features["name_rule"] == "doubled_char"
    assert doubled.decision == AUTO
    dropped = score_pair(rec("a", "鑫达利源贸易有限公司"), rec("b", "鑫利源贸易有限公司"))
    assert dropped.features["name_rule"] == "dropped_char"
    assert dropped.decision == AUTO


def test_branches_are_not_their_parent_nor_each_other():
    parent = rec("p", "成都华兴机械有限公司")
    b1 = rec("b1", "成都华兴机械有限公司锦江分公司")
    b2 = rec("b2", "成都华兴机械有限公司第二分公司")
    b3 = rec("b3", "成都华兴机械有限公司第三分公司")
    for x, y in [(parent, b1), (parent, b2), (b1, b2), (b2, b3)]:
        ps = score_pair(x, y)
        assert ps.decision == NO and ps.rule == "branch_mismatch", (x.name, y.name)
    same_branch = score_pair(b2, rec("b2x", "华兴机械有限责任公司第2分公司"))
    assert same_branch.decision == AUTO


def test_same_brand_in_another_business_is_not_a_duplicate():
    ps = score_pair(
        rec("a", "华兴机械有限公司", address="红星路88号"),
        rec("b", "华兴食品有限公司", address="红星路88号"),
    )
    assert ps.decision == NO
    assert ps.rule == "industry_conflict"
    assert (ps.features["industry_a"], ps.features["industry_b"]) == ("机械", "食品")


def test_valid_code_decides_identity_even_when_names_differ():
    ps = score_pair(
        rec("a", "华兴机械有限公司", uscc=VALID), rec("b", "蓉城精工有限公司", uscc=VALID)
    )
    assert ps.decision == AUTO and ps.rule == "uscc_equal" and ps.score == 1.0


def test_different_valid_codes_are_different_enterprises():
    ps = score_pair(
        rec("a", "华兴机械有限公司", uscc=VALID), rec("b", "华兴机械有限公司", uscc=VALID_OTHER)
    )
    assert ps.decision == NO and ps.rule == "uscc_conflict"


def test_bad_check_code_is_evidence_not_identity():
    # The same code with a failed check does not merge different names by itself ...
    alone = score_pair(
        rec("a", "华兴机械有限公司", uscc=BAD_CHECK), rec("b", "蓉城精工有限公司", uscc=BAD_CHECK)
    )
    assert alone.decision != AUTO
    assert alone.features["uscc"] == "equal_unchecked"
    # ... but it corroborates a similar name when the district is unknown.
    helped = score_pair(
        rec("a", "华兴达机械有限公司", district="", uscc=BAD_CHECK),
        rec("b", "华星达机械有限公司", district="", uscc=BAD_CHECK),
    )
    assert helped.decision == AUTO
    assert "uscc_unchecked" in helped.features["corroborated_by"]
    # A mistyped code next to the valid one is "near", evidence as well.
    near = score_pair(
        rec("a", "华兴达机械有限公司", district="", uscc=VALID),
        rec("b", "华星达机械有限公司", district="", uscc=BAD_CHECK),
    )
    assert near.features["uscc"] == "near" and near.decision == AUTO


def test_identical_name_in_another_district_is_reviewed():
    ps = score_pair(
        rec("a", "华兴机械有限公司", district="锦江区"),
        rec("b", "华兴机械有限公司", district="双流县"),
    )
    assert ps.decision == REVIEW
    # Only the typed fields disagree (a typing slip is common): weak, not a veto.
    assert ps.features["district"] == "differ_weak"
    # Both registered names name other districts: a strong disagreement, not queued.
    strong = score_pair(
        rec("a", "成都市锦江区华兴机械有限公司", district="锦江区"),
        rec("b", "成都市双流县华兴机械有限公司", district="双流县"),
    )
    assert strong.features["district"] == "differ" and strong.decision == NO


def test_identical_name_with_only_a_wrong_typed_district_is_not_merged_unseen():
    a = rec("a", "华兴机械有限公司", district="锦江区", address="红星路88号")
    b = rec("b", "华兴机械有限公司", district="双流县", address="红星路88号")
    assert score_pair(a, b).decision == AUTO  # the address agrees: the district was mistyped


def test_identical_name_in_one_district_with_disagreeing_addresses_is_not_merged():
    ps = score_pair(
        rec("a", "华兴机械有限公司", address="红星路88号"),
        rec("b", "华兴机械厂", address="滨江东路1号"),
    )
    assert ps.decision == NO and ps.rule == "contradicted"


def test_unrelated_names_do_not_match():
    ps = score_pair(rec("a", "华兴机械有限公司"), rec("b", "蓉城机械有限公司"))
    assert ps.decision == NO


def test_thresholds_are_parameters():
    a, b = rec("a", "华兴达机械有限公司"), rec("b", "华星达机械有限公司")
    assert score_pair(a, b).decision == AUTO
    assert score_pair(a, b, DedupThresholds(auto=0.995, review=0.5)).decision == REVIEW


def test_blocking_keys_meet_typos_and_separate_industries():
    keys = lambda n: set(blocking_keys(rec("x", n)))  # noqa: E731
    assert keys("华兴达机械有限公司") & keys("华星达机械有限公司")  # same pinyin
    assert keys("华兴达机械有限公司") & keys("华达机械有限公司")  # dropped character
    assert keys("华兴达机械有限公司") & keys("华兴兴达机械有限公司")  # doubled character
    d_keys = lambda n: {k for k in keys(n) if k.startswith("d:")}  # noqa: E731
    assert not d_keys("华兴机械有限公司") & d_keys("华兴食品有限公司")
    assert "u:" + VALID in set(blocking_keys(rec("x", "华兴机械", uscc=VALID)))


def test_decisions_carry_explainable_features():
    d = score_pair(
        rec("a", "成都华兴机械有限公司", address="红星路88号"),
        rec("b", "华星机械有限公司", address="红星路88号"),
    ).as_dict()
    assert set(d) == {"a", "b", "score", "decision", "rule", "features"}
    assert d["features"]["name_rule"] == "same_pinyin"
    assert d["features"]["address_sim"] == 1.0


def _chengdu_code(region: str, body: str = "MA6CXXXX0") -> str:
    """A valid credit code registered in a Chengdu district (positions 3–8)."""
    from server.identifiers import uscc_check_char

    head = "91" + region + body
    return head + uscc_check_char(head)


def test_every_district_source_is_evidence_none_a_veto():
    # Typed 金牛区 by mistake; the code says 锦江 (510104), as does the other record. (The
    # code used to outrank the field; issue 14 showed a code's region is where the firm
    # registered, often a district it has left, so now every claim counts and any agreeing
    # pair of claims makes the districts agree.)
    a = rec("a", "成都华兴达机械有限公司", district="金牛区", uscc=_chengdu_code("510104"))
    b = rec("b", "华兴达机械有限公司", district="锦江区")
    assert set(a.dists) == {"510104", "510106"}
    ps = score_pair(a, b)
    assert ps.features["district"] == "same" and ps.decision == AUTO
    # A code registered in a district the firm left does not split it from its records.
    moved = rec("m", "华兴达机械有限公司", district="锦江区", uscc=_chengdu_code("510107"))
    assert score_pair(moved, b).features["district"] == "same"
    # An address that starts with a district names it; a road called 金牛大道 does not.
    c = rec("c", "华兴达机械有限公司", district="高新区", address="四川省成都市彭州市府源巷24号")
    assert c.district == "510182" and c.district_src == "address"
    assert rec("d", "华兴达机械有限公司", district="", address="金牛大道8号").district == ""


def test_short_similar_name_needs_no_disagreeing_field():
    # Two-character same-sound names in one district and business: merged only when no
    # other field disagrees.
    ok = score_pair(rec("a", "鑫旭装饰工程有限公司"), rec("b", "欣旭装饰工程有限公司"))
    assert ok.decision == AUTO
    other = score_pair(
        rec("a", "鑫旭装饰工程有限公司", address="红星路88号"),
        rec("b", "欣旭装饰工程有限公司", address="滨江东路1号"),
    )
    assert other.decision == NO and other.rule == "contradicted"


def test_weak_short_likeness_is_not_queued():
    ps = score_pair(
        rec("a", "鑫旭装饰工程有限公司", district=""), rec("b", "欣旭装饰工程有限公司", district="")
    )
    assert ps.decision == NO and ps.rule == "weak_name_only"
    # A longer name with the same typo is worth a look.
    longer = score_pair(
        rec("a", "鑫旭达装饰有限公司", district=""), rec("b", "欣旭达装饰有限公司", district="")
    )
    assert longer.decision == REVIEW


def test_related_businesses_of_one_category_need_more_than_the_district():
    # 汽车配件 and 汽车销售 are one category but two businesses: a same-sound name and the
    # district are not enough...
    ps = score_pair(rec("a", "玉华汽车配件有限公司"), rec("b", "宇华汽车销售有限公司"))
    assert ps.decision != AUTO and ps.features["subindustry"] == "汽车配件/汽车销售"
    # ...while a truncated word of one business is the same business.
    same = score_pair(rec("a", "玉华汽车销售有限公司"), rec("b", "宇华汽车有限公司"))
    assert same.decision == AUTO
    # and an agreeing address still merges related words
    addr = score_pair(
        rec("a", "玉华汽车配件有限公司", address="红星路88号"),
        rec("b", "宇华汽车销售有限公司", address="红星路88号"),
    )
    assert addr.decision == AUTO


def test_generic_words_of_one_brand_are_not_merged_unseen():
    ps = score_pair(rec("a", "华兴科技有限公司"), rec("b", "华兴实业有限公司"))
    assert ps.decision != AUTO and ps.features["industry"] == "generic"


def test_one_road_and_house_number_is_one_address():
    from worker.dedup.match import address_key

    assert address_key("红星路88号附1号") == address_key("红星路88号5楼") == "红星路#88"
    assert address_key("红星路12号") != address_key("红星路88号")
    # 附1号, a floor or a building's name after the number still corroborate
    ps = score_pair(
        rec("a", "华兴达机械有限公司", district="", address="人中大道24号5楼"),
        rec("b", "华星达机械有限公司", district="", address="四川省成都市人中大道二十四号附1号"),
    )
    assert ps.features["address_sim"] == 1.0 and ps.decision == AUTO
