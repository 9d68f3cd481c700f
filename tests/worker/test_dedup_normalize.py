"""Normalisation of Chinese enterprise names: the variants cadres type must meet."""

from worker.dedup.normalize import (
    clean_text,
    normalize_address,
    normalize_district,
    normalize_name,
    normalize_uscc,
    pinyin_text,
)


def test_variants_of_one_name_share_trade_name_and_industry():
    variants = [
        "成都华兴机械有限公司",
        "华兴机械有限责任公司",
        "四川省成都市华兴机械制造有限公司",
        "华兴（成都）机械有限公司",
        "华兴(成都)机械有限公司",
        "華興機械有限公司",
        "华兴 机械 有限 公司",
        "锦江区华兴机械有限公司",
        "成都市锦江区华兴机械有限公司",
        "【成都】华兴机械有限公司",
    ]
    parts = [normalize_name(v) for v in variants]
    assert {p.core for p in parts} == {"华兴"}
    assert {p.industry for p in parts} == {"机械"}
    assert {p.branch for p in parts} == {""}


def test_full_width_and_traditional_are_folded():
    assert clean_text("ＡＢＣ（成都）") == "ABC(成都)"
    assert clean_text("華興機械") == "华兴机械"


def test_legal_forms_are_canonical():
    assert (
        normalize_name("华兴机械有限公司").legal
        == normalize_name("华兴机械有限责任公司").legal
        == "ltd"
    )
    assert (
        normalize_name("华兴机械股份有限公司").legal
        == normalize_name("华兴机械股份公司").legal
        == "jsc"
    )
    assert normalize_name("华兴集团有限公司").core == "华兴"


def test_industry_is_kept_apart_from_trade_name():
    a, b = normalize_name("华兴机械有限公司"), normalize_name("华兴食品有限公司")
    assert a.core == b.core == "华兴"
    assert (a.industry, b.industry) == ("机械", "食品")


def test_branches_are_labelled():
    parent = normalize_name("成都华兴机械有限公司")
    jinjiang = normalize_name("成都华兴机械有限公司锦江分公司")
    jinjiang2 = normalize_name("华兴机械有限公司锦江区分公司")
    second = normalize_name("华兴机械有限公司第二分公司")
    second_digit = normalize_name("华兴机械有限公司第2分公司")
    assert parent.branch == ""
    assert jinjiang.branch == jinjiang2.branch == "锦江|分公司"
    assert second.branch == second_digit.branch == "#2|分公司"
    assert jinjiang.core == second.core == parent.core == "华兴"


def test_same_sound_characters_share_pinyin():
    assert pinyin_text("华兴") == pinyin_text("华星") == "hua xing"
    assert normalize_name("华兴机械").py == normalize_name("华星机械").py
    assert normalize_name("鑫达贸易").py == normalize_name("新大贸易").py


def test_district_and_address():
    assert (
        normalize_district("锦江区")
        == normalize_district("锦江")
        == normalize_district("成都市锦江区")
        == "510104"
    )
    assert normalize_district("") == ""
    assert (
        normalize_address("四川省成都市锦江区红星路88号")
        == normalize_address("红星路８８号")
        == "红星路88号"
    )


def test_uscc_cleaning_and_check():
    assert normalize_uscc("91350100M000100Y43") == ("91350100M000100Y43", True)
    assert normalize_uscc(" 91350100m000100y43 ") == ("91350100M000100Y43", True)
    assert normalize_uscc("91350100M000100Y44") == ("91350100M000100Y44", False)
    assert normalize_uscc("12345") == ("", False)


def test_one_dropped_character_in_legal_form_industry_or_branch_still_parses():
    whole = normalize_name("华兴机械制造有限公司")
    for typo in (
        "华兴机械制造有限司",  # legal form
        "华兴机械制造有限责任公",
        "华兴机械制有限公司",  # industry word
        "华兴械制造有限公司",
    ):
        p = normalize_name(typo)
        assert (p.core, p.industry, p.legal) == (whole.core, whole.industry, whole.legal), typo
    assert normalize_name("华兴机械有限公司第二分司").branch == "#2|分公司"
    assert normalize_name("华兴机械有限公司第3公司").branch == "#3|分公司"
    assert normalize_name("华兴机械有限公司锦江分公").branch == "锦江|分公司"
    # a dropped character never makes a two-character trade name disappear
    assert normalize_name("华兴有限司").core == "华兴"


def test_neighbouring_businesses_are_separate_categories():
    cat = lambda n: normalize_name(n).industry  # noqa: E731
    assert cat("华兴服装有限公司") != cat("华兴纺织有限公司")
    assert cat("华兴印务有限公司") != cat("华兴包装材料有限公司")
    assert cat("华兴网络科技有限公司") == cat("华兴信息技术有限公司")


def test_address_numbers_in_chinese_numerals_are_digits():
    assert normalize_address("红星路八十八号") == normalize_address("成都市锦江区红星路88号")
    assert normalize_address("红星路一〇五号三楼") == "红星路105号3楼"
    assert normalize_address("一环路东一段") == "一环路东一段"  # a road's name is left alone


def test_a_wrong_character_inside_the_legal_form_or_industry_word_still_parses():
    from worker.dedup import normalize_name

    plain = normalize_name("成都蓝光服饰有限公司")
    for typed in (
        "成都蓝光服饰有很公司",  # a look-alike inside the legal form
        "成都蓝光服饰有限公同",
        "成都蓝光服饰有限",  # cut short
        "成都蓝光服饰责任有限公司",  # words swapped
    ):
        p = normalize_name(typed)
        assert (p.core, p.industry, p.legal) == (plain.core, plain.industry, "ltd"), typed
    # 务限责任公司 is 服务 + 限责任公司 (a dropped 有), not a replaced first character.
    assert normalize_name("蓝光家政服务限责任公司").industry_words == "家政服务"
    # an industry word typed by its sound (pinyin input) or with one character wrong
    assert (
        normalize_name("蓝光鞋叶有限公司").industry == normalize_name("蓝光鞋业有限公司").industry
    )
    assert normalize_name("蓝光机械制适有限公司").core == "蓝光"


def test_names_in_latin_letters_read_as_pinyin_or_english():
    from worker.dedup import normalize_name, prepare, score_pair

    zh = normalize_name("成都蓝光印务有限公司")
    for latin in (
        "Chengdu Languang Printing Co., Ltd.",
        "LANGUANGYINWU",
        "成都Languang印务有限公司",
    ):
        p = normalize_name(latin)
        assert p.py == zh.py and p.industry == zh.industry, latin
    # one letter in a Chinese name stays a letter
    assert normalize_name("成都E福源餐饮有限公司").core == "E福源"
    a = prepare(
        {"record_id": "a", "name": "Chengdu Languang Printing Co., Ltd.", "address": "红星路8号"}
    )
    b = prepare({"record_id": "b", "name": "成都蓝光印务有限公司", "address": "红星路8号"})
    assert score_pair(a, b).decision == "auto"


def test_branch_suffix_cut_short_or_a_legal_form_typed_as_one():
    from worker.dedup import normalize_name

    full = normalize_name("成都蓝光建材有限公司青羊分公司")
    assert normalize_name("成都蓝光建材有限公司青羊分").branch == full.branch == "青羊|分公司"
    # a character left over from a mistyped legal form is not part of the qualifier
    assert normalize_name("成都蓝光建材有限公同青羊分公司").branch == full.branch
    # 有限分司 is 有限公司 with a look-alike, the parent, not a branch
    assert normalize_name("成都蓝光建材有限分司").branch == ""
    # a name that merely ends in 分 is no branch
    assert normalize_name("蓝光积分有限公司").branch == ""


def test_the_business_is_the_head_word():
    from worker.dedup import normalize_name

    assert (
        normalize_name("蓝光建筑劳务有限公司").industry
        == normalize_name("蓝光劳务有限公司").industry
    )
    assert (
        normalize_name("蓝光电子科技有限公司").industry
        == normalize_name("蓝光电子有限公司").industry
    )
