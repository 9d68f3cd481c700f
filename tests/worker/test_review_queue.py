"""The review queue: the coordinators' page (cookie sign-in) and the JSON API (bearer)."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from tests.conftest import PASSWORD, Phone, create_user


def _pair(entity_names=("成都庆源实业有限公司", "庆源劳务有限公司")) -> tuple:
    """Two enterprises and a pending review candidate between them."""
    from server.extensions import db
    from server.models import DistrictUnit, Enterprise
    from worker.merges import propose_review

    district = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == "510104"))
    a, b = (
        Enterprise(
            id=str(uuid.uuid4()),
            name=n,
            district_id=district.id,
            address="锦江区东大街1号" if i else None,
        )
        for i, n in enumerate(entity_names)
    )
    db.session.add_all([a, b])
    db.session.flush()
    row = propose_review(
        db.session, "enterprise", a.id, b.id, 0.8, "name_similar_uncertain", {"name_sim": 0.8}
    )
    db.session.commit()
    return a, b, row


def _forget_cached_user(app):  # noqa: ANN001, ANN202
    """The test app context outlives requests, and server.web caches the user in `g`."""
    from flask import g

    @app.before_request
    def _forget() -> None:
        g.pop("web_user", None)


def _web_login(client, username: str):  # noqa: ANN001, ANN202
    return client.post(
        "/login", data={"username": username, "password": PASSWORD, "next": "/review"}
    )


def test_page_needs_a_coordinator_and_decides_pairs(client, app):
    from server.extensions import db
    from server.models import Enterprise
    from server.models_dedup import MergeLink, ReviewCandidate

    _forget_cached_user(app)
    create_user("coord", "city_coordinator")
    create_user("cadre1", "field_cadre", "510104", "WG01")
    a, b, row = _pair()
    a2, b2, row2 = _pair(("华兴机械有限公司", "华星机械有限公司"))

    assert client.get("/review").status_code == 302  # to /login
    _web_login(client, "cadre1")
    assert client.get("/review").status_code == 403
    client.post("/logout", data={})

    r = _web_login(client, "coord")
    assert r.status_code == 302 and r.headers["Location"].endswith("/review")
    page = client.get("/review")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "疑似重复记录审核" in html
    assert html.count('class="card pair"') == 2
    assert '<tr class="diff"><th scope="row">名称</th>' in html  # the differing name is marked
    assert 'data-key="a"' in html and "j/k" in html
    assert 'name="viewport"' in html
    english = client.get("/review?lang=en").get_data(as_text=True)
    assert "Possible duplicates" in english and "Same (A)" in english
    assert "Possible duplicates" in client.get("/review").get_data(as_text=True)  # remembered
    client.get("/review?lang=zh")

    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    # Without the anti-forgery token a decision is refused.
    assert client.post(f"/review/{row.id}/decision", data={"decision": "accept"}).status_code == 400
    r = client.post(
        f"/review/{row.id}/decision",
        data={"decision": "accept", "csrf_token": token, "next_id": str(row2.id)},
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"#c-{row2.id}")
    db.session.expire_all()
    assert db.session.get(ReviewCandidate, row.id).status == "accepted"
    merged = {
        db.session.get(Enterprise, a.id).canonical_id,
        db.session.get(Enterprise, b.id).canonical_id,
    }
    assert merged == {None, a.id}  # the older record stays canonical
    link = db.session.scalars(select(MergeLink)).one()
    assert link.decided_by == "coord" and link.review_id == row.id

    client.post(f"/review/{row2.id}/decision", data={"decision": "unsure", "csrf_token": token})
    html = client.get("/review").get_data(as_text=True)
    assert html.count('class="card pair"') == 1 and "曾标记为不确定" in html
    # Undo from the page's list of merges.
    assert f"/review/merges/{link.id}/undo" in html
    client.post(f"/review/merges/{link.id}/undo", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Enterprise, b.id).canonical_id is None
    assert db.session.get(MergeLink, link.id).status == "undone"


def test_json_api_lists_decides_and_undoes(client, app):
    from server.extensions import db
    from server.models import Enterprise

    create_user("coord", "city_coordinator")
    create_user("cadre1", "field_cadre", "510104", "WG01")
    a, b, row = _pair()
    cadre = Phone(client, "cadre1")
    assert cadre.get("/api/review/candidates").status_code == 403
    coord = Phone(client, "coord")

    r = coord.get("/api/review/candidates")
    assert r.status_code == 200 and r.json["total"] == 1
    item = r.json["items"][0]
    assert item["id"] == row.id and "name" in item["differs"] and item["score"] == 0.8

    url = f"/api/review/candidates/{row.id}/decision"
    bad = coord.client.post(url, json={"decision": "maybe"}, headers=coord.headers)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid"
    r = coord.client.post(url, json={"decision": "accept"}, headers=coord.headers)
    assert r.status_code == 200 and r.json["status"] == "accepted" and r.json["merge_id"]
    again = coord.client.post(url, json={"decision": "reject"}, headers=coord.headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "already_decided"
    assert coord.get("/api/review/candidates").json["total"] == 0

    # The merged record's id keeps resolving, showing where it went.
    merges = coord.get(f"/api/merges?record_id={b.id}").json["items"]
    assert [m["id"] for m in merges] == [r.json["merge_id"]]
    undo = f"/api/merges/{r.json['merge_id']}/undo"
    assert cadre.client.post(undo, json={}, headers=cadre.headers).status_code == 403
    r = coord.client.post(undo, json={"reason": "两家"}, headers=coord.headers)
    assert r.status_code == 200 and r.json["status"] == "undone"
    assert coord.client.post(undo, json={}, headers=coord.headers).status_code == 409
    db.session.expire_all()
    assert db.session.get(Enterprise, b.id).canonical_id is None
