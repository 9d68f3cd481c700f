"""The review page shows words, never codes (issue 12, item 7): enterprise types, visit
methods, the dedup rule of a pair and of a merge, who decided — in Chinese and English;
and every rule the dedup code can name has its words."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

from sqlalchemy import select

from server.review import RULES, rule_text
from tests.conftest import PASSWORD, create_user

ROOT = Path(__file__).resolve().parents[2]
CODES = (
    "labour_intensive",
    "non_public",
    "name_exact_conflicting",
    "same_entry_same_cadre",
    "review_name_exact",
    "symposium",
)


def _visible(html: str) -> str:
    """The page's text as a reader sees it (no tags, attributes, scripts or styles)."""
    html = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_review_page_shows_words_not_codes(client, app):
    from flask import g

    from server.extensions import db
    from server.models import DistrictUnit, Enterprise, Visit
    from worker.merges import merge, propose_review

    @app.before_request
    def _forget() -> None:
        g.pop("web_user", None)

    create_user("coord", "city_coordinator")
    district = db.session.scalar(select(DistrictUnit.id).where(DistrictUnit.code == "510104"))
    tags = ["labour_intensive", "non_public"]
    a, b, c, d = (
        Enterprise(id=str(uuid.uuid4()), name=n, district_id=district, type_tags=tags)
        for n in ("成都庆源实业有限公司", "成都庆源实业有限公司", "华兴机械", "华兴机械厂")
    )
    v1, v2 = (
        Visit(
            id=str(uuid.uuid4()),
            method="symposium",
            visited_at=datetime(2026, 3, 5, 2, 0, tzinfo=UTC),
            district_id=district,
            workers_met=3,
        )
        for _ in range(2)
    )
    db.session.add_all([a, b, c, d, v1, v2])
    db.session.flush()
    propose_review(db.session, "enterprise", a.id, b.id, 0.9, "name_exact_conflicting", {})
    propose_review(db.session, "visit", v1.id, v2.id, 0.7, "same_entry_same_cadre", {})
    merge(db.session, "enterprise", d.id, c.id, rule="review_name_exact", score=1.0, features={})
    db.session.commit()
    r = client.post("/login", data={"username": "coord", "password": PASSWORD, "next": "/review"})
    assert r.status_code == 302
    zh = _visible(client.get("/review?lang=zh").get_data(as_text=True))
    assert "劳动密集型" in zh and "非公有制" in zh
    assert "名称相同，但其他信息矛盾" in zh and "同一干部重复录入" in zh
    assert "座谈会" in zh
    assert "人工审核确认：名称完全相同" in zh and "自动去重" in zh
    en = _visible(client.get("/review?lang=en").get_data(as_text=True))
    assert "Labour-intensive" in en or "Labour intensive" in en
    assert "Same name, other details conflict" in en and "Symposium" in en
    assert "Confirmed in review: Same name" in en and "automatic dedup" in en
    for page in (zh, en):
        for code in CODES:
            assert code not in page, code
        assert not re.search(r"\bworker\b", page)


def test_every_dedup_rule_has_words():
    """Scan the dedup code for the rules it can name: each has a text in both languages."""
    found = set()
    match = (ROOT / "worker/dedup/match.py").read_text()
    found |= set(re.findall(r"return (?:AUTO|REVIEW|NO), [\w.]+, \"(\w+)\"", match))
    found |= set(re.findall(r"\"(name_(?:exact|similar)_\w+)\"", match))
    jobs = (ROOT / "worker/dedup_jobs.py").read_text()
    found |= set(re.findall(r"return [\d.]+, \"(\w+)\", feats", jobs))
    found |= set(re.findall(r"VISIT_RULE_\w+ = \"(\w+)\"", jobs))
    merges = (ROOT / "worker/merges.py").read_text()
    found |= set(re.findall(r"rule=\"(\w+)\"", merges))
    cluster = (ROOT / "worker/dedup/cluster.py").read_text()
    found |= set(re.findall(r"\"(\w+_conflict(?:_in_cluster)?)\"", cluster))
    assert {"name_exact", "uscc_equal", "chain", "same_meeting_other_cadre"} <= found
    missing = sorted(found - set(RULES))
    assert not missing, f"rules without words in server/review.py RULES: {missing}"
    for rule in found:
        assert rule_text(rule, "zh") != rule_text(rule, "en")
        assert rule_text(f"review_{rule}", "zh").startswith("人工审核确认")
    assert rule_text("something_new", "zh") == "其他规则"
