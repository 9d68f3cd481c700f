"""Batch clustering and the incremental index."""

from worker.dedup import DedupIndex, DedupThresholds, EnterpriseRecord, cluster_records

VALID = "91350100M000100Y43"

RECORDS = [
    # one enterprise written five ways
    EnterpriseRecord("r1", "成都华兴机械有限公司", "锦江区", VALID, "红星路88号"),
    EnterpriseRecord("r2", "华兴（成都）机械有限责任公司", "锦江", "", ""),
    EnterpriseRecord("r3", "華興機械有限公司", "成都市锦江区", "", "四川省成都市锦江区红星路88号"),
    EnterpriseRecord("r4", "华星机械有限公司", "锦江区", "", ""),
    EnterpriseRecord("r5", "四川大地精工有限公司", "", VALID, ""),  # renamed: the code decides
    # hard negatives
    EnterpriseRecord("n1", "成都华兴机械有限公司锦江分公司", "锦江区", "", ""),
    EnterpriseRecord("n2", "成都华兴机械有限公司第二分公司", "锦江区", "", ""),
    EnterpriseRecord("n3", "华兴食品有限公司", "锦江区", "", "红星路88号"),
    EnterpriseRecord("n4", "蓉欣商贸有限公司", "武侯区", "", ""),
    EnterpriseRecord("n5", "蓉鑫商贸有限公司", "双流县", "", ""),
]


def test_cluster_records_groups_variants_and_keeps_hard_negatives_apart():
    res = cluster_records(RECORDS)
    c = res.cluster_of
    assert c["r1"] == c["r2"] == c["r3"] == c["r4"] == c["r5"]
    others = {c[r] for r in ("n1", "n2", "n3", "n4", "n5")}
    assert len(others) == 5 and c["r1"] not in others
    assert res.stats["records"] == 10
    assert res.stats["clusters"] == 6
    assert res.stats["merged"] == 4
    # every merge is explained
    assert res.merges and all(m.rule and m.features is not None for m in res.merges)
    assert any(m.rule == "uscc_equal" for m in res.merges)


def test_uncertain_pair_goes_to_review_not_merged():
    recs = [
        EnterpriseRecord("a", "华兴机械有限公司", "锦江区"),
        EnterpriseRecord("b", "华兴机械有限公司", "双流县"),
    ]
    res = cluster_records(recs)
    assert res.cluster_of["a"] != res.cluster_of["b"]
    assert len(res.review) == 1 and res.review[0].rule == "name_exact_conflicting"


def test_no_chaining_through_loose_links():
    # 鑫达利 ~ 鑫达利源 ~ 鑫利源: neighbours match, the ends do not; no giant cluster.
    recs = [
        EnterpriseRecord(str(i), n, "锦江区")
        for i, n in enumerate(
            ["鑫达利贸易有限公司", "鑫达利源贸易有限公司", "鑫利源贸易有限公司", "利源贸易有限公司"]
        )
    ]
    res = cluster_records(recs)
    assert max(len(v) for v in res.clusters().values()) <= 2


def test_name_without_industry_matching_two_businesses_is_ambiguous():
    recs = [
        EnterpriseRecord("m", "华兴机械有限公司", "锦江区"),
        EnterpriseRecord("f", "华兴食品有限公司", "锦江区"),
        EnterpriseRecord("x", "华兴有限公司", "锦江区"),
    ]
    res = cluster_records(recs)
    assert len(set(res.cluster_of.values())) == 3
    assert any(r.rule == "ambiguous_industry" for r in res.review)


def test_cluster_size_is_capped():
    recs = [EnterpriseRecord(str(i), "华兴机械有限公司", "锦江区") for i in range(8)]
    res = cluster_records(recs, DedupThresholds(max_cluster=5))
    assert max(len(v) for v in res.clusters().values()) == 5


def test_incremental_attach_review_new():
    res = cluster_records(RECORDS)
    idx = DedupIndex.build(RECORDS, res.cluster_of)
    attach = idx.match(
        {"record_id": "x1", "name": "成都市华兴机械有限责任公司", "district": "锦江区"}
    )
    assert attach.action == "attach" and attach.cluster_id == res.cluster_of["r1"]
    assert attach.rule == "name_exact" and attach.features["district"] == "same"
    review = idx.match({"record_id": "x2", "name": "华兴机械有限公司", "district": "金牛区"})
    assert review.action == "review" and review.review
    new = idx.match({"record_id": "x3", "name": "天府云端软件有限公司", "district": "高新区"})
    assert new.action == "new" and new.cluster_id == "x3"
    by_code = idx.match({"record_id": "x4", "name": "完全不同的名称有限公司", "uscc": VALID})
    assert by_code.action == "attach" and by_code.rule == "uscc_equal"
    assert all(d.candidates_scored < 20 for d in (attach, review, new, by_code))


def test_incremental_new_records_can_attach_to_each_other():
    idx = DedupIndex.build([EnterpriseRecord("e1", "蓉城精工有限公司", "武侯区")])
    first, second = idx.match_many(
        [
            {"record_id": "n1", "name": "天府云端软件有限公司", "district": "高新区"},
            {"record_id": "n2", "name": "成都天府云端软件有限责任公司", "district": "高新区"},
        ]
    )
    assert first.action == "new"
    assert second.action == "attach" and second.cluster_id == "n1"
    assert len(idx) == 3


def test_record_without_district_matching_two_districts_goes_to_review():
    recs = [
        EnterpriseRecord("p1", "樱福酒业有限责任公司", "彭州市", "", ""),
        EnterpriseRecord("p2", "成都樱福酒业有限公司", "彭州市", "", ""),
        EnterpriseRecord("q1", "樱福酒业有限公司", "青白江区", "", ""),
        EnterpriseRecord("q2", "青白江区樱福酒业有限公司", "", "", ""),
        EnterpriseRecord("x", "樱福酒业有限公司", "", "", ""),
    ]
    res = cluster_records(recs)
    c = res.cluster_of
    assert c["p1"] == c["p2"] and c["q1"] == c["q2"] and c["p1"] != c["q1"]
    assert c["x"] not in (c["p1"], c["q1"])
    assert any(ps.rule == "ambiguous_district" for ps in res.review)


def test_review_list_is_capped_and_ranked():
    # 60 names, each typed in two districts with nothing else agreeing: review pairs.
    recs = []
    trade = "华兴达鑫盛泰丰源恒通宏昌隆瑞祥福康安和顺"
    names = [a + b + c for a in trade[:4] for b in trade[4:9] for c in trade[9:12]][:60]
    for k, name in enumerate(names):
        recs.append(EnterpriseRecord(f"a{k}", name + "机械有限公司", "锦江区"))
        recs.append(EnterpriseRecord(f"b{k}", name + "机械有限公司", "双流县"))
    # one of them also has a third record: accepting it would join more record pairs
    recs.append(
        EnterpriseRecord("c0", names[0] + "机械制造有限公司", "双流县", address="红星路1号")
    )
    recs.append(EnterpriseRecord("c1", names[0] + "机械有限公司", "双流县", address="红星路1号"))
    full = cluster_records(recs, DedupThresholds(review_share=None))
    assert len(full.review) > 60 and full.stats["review_not_queued"] == 0
    capped = cluster_records(recs, DedupThresholds(review_share=0.02))
    assert len(capped.review) == 50  # the floor for small lists; 2 % of 122 is 2
    assert capped.stats["review_not_queued"] == len(full.review) - 50
    assert capped.cluster_of == full.cluster_of  # the cap changes the queue, not the clusters
    # first: the pair whose acceptance joins the most record pairs (a0 with b0, c0, c1)
    top = capped.review[0]
    assert "a0" in (top.a, top.b) and {top.a, top.b} & {"b0", "c0", "c1"}


def test_a_crowded_sound_needs_more_than_the_district():
    # Four spellings of one sound in one business and district: four firms more likely
    # than typos of one, so the district alone does not merge them.
    names = [
        "鑫旭装饰工程有限公司",
        "欣旭装饰工程有限公司",
        "新旭装饰工程有限公司",
        "馨旭装饰工程有限公司",
    ]
    recs = [EnterpriseRecord(f"r{k}", n, "锦江区") for k, n in enumerate(names)]
    res = cluster_records(recs)
    assert len(set(res.cluster_of.values())) == 4
    assert {r.rule for r in res.review} == {"crowded_sound"}
    # two spellings only (a firm and a typo of it): merged on the district
    pair = cluster_records(recs[:2])
    assert len(set(pair.cluster_of.values())) == 1
    # an agreeing address merges even in a crowded sound
    recs[1] = EnterpriseRecord("r1", names[1], "锦江区", address="红星路88号")
    recs.append(EnterpriseRecord("r9", names[0], "锦江区", address="红星路88号"))
    res = cluster_records(recs)
    assert res.cluster_of["r1"] == res.cluster_of["r9"] == res.cluster_of["r0"]


def test_a_business_named_by_both_joins_a_cluster_a_shared_code_made_of_two_names():
    """A valid code joined 蓝光机械 and 蓝光电子 (the code decides); a third 蓝光机械 joins
    them: the cluster-level industry check is for chains through a name without a business,
    not for two records that both name theirs."""
    recs = [
        EnterpriseRecord("a", "成都蓝光机械有限公司", "锦江区", VALID, ""),
        EnterpriseRecord("b", "成都蓝光电子有限公司", "锦江区", VALID, ""),
        EnterpriseRecord("c", "蓝光机械有限公司", "锦江区", "", "红星路8号"),
    ]
    c = cluster_records(recs).cluster_of
    assert c["a"] == c["b"] == c["c"]
    # Through a name without a business it still stops: 蓝光 is 蓝光机械 or 蓝光食品.
    recs = [
        EnterpriseRecord("m", "蓝光机械有限公司", "锦江区", "", "红星路8号"),
        EnterpriseRecord("x", "蓝光有限公司", "锦江区", "", "红星路8号"),
        EnterpriseRecord("f", "蓝光食品有限公司", "锦江区", "", "红星路8号"),
    ]
    c = cluster_records(recs).cluster_of
    assert c["m"] != c["f"]


def test_identical_names_join_unless_the_representatives_contradict_each_other():
    # A representative spelt too differently to compare (b0, joined to b1 by a shared code)
    # does not stop two identical names from joining their clusters ...
    recs = [
        EnterpriseRecord("b0", "四川蓝先宏远机械有限公司", "锦江区", VALID, ""),
        EnterpriseRecord("b1", "蓝光宏达机械有限公司", "锦江区", VALID, ""),
        EnterpriseRecord("a1", "蓝光宏达机械有限公司", "锦江区", "", "红星路8号"),
        EnterpriseRecord("a2", "蓝光宏达机械有限公司", "锦江区", "", ""),
    ]
    res = cluster_records(recs)
    assert len(set(res.cluster_of.values())) == 1
    # ... two addresses that disagree do: one name at two addresses are two firms, and
    # address-less records of that name must not chain them.
    recs = [
        EnterpriseRecord("a1", "蓝光宏达机械有限公司", "锦江区", "", "红星路8号"),
        EnterpriseRecord("a2", "蓝光宏达机械有限公司", "锦江区", "", ""),
        EnterpriseRecord("b1", "蓝光宏达机械有限公司", "锦江区", "", "人民南路99号"),
        EnterpriseRecord("b2", "蓝光宏达机械有限公司", "锦江区", "", ""),
    ]
    c = cluster_records(recs).cluster_of
    assert c["a1"] != c["b1"]
