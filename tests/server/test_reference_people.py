"""What /api/reference gives the duplicate-visit warning: the days it looks back and the
names of the people whose visits the phone pulls (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.conftest import Phone, create_user


def test_cadre_gets_the_days_and_the_people_of_its_scope(client, app):
    create_user("ca", "field_cadre", "510104", "WG01")
    create_user("leader_wg01", "group_leader", None, "WG01")  # serves 锦江区 with WG01
    create_user("far", "field_cadre", "510105", None)
    create_user("boss", "coordinator")
    ref = Phone(client, "ca").get("/api/reference").json
    assert ref["duplicate_visit_days"] == 7
    names = {p["username"]: p["name"] for p in ref["people"]}
    assert {"ca", "leader_wg01"} <= set(names) and names["ca"] == "ca"
    assert "far" not in names and "boss" not in names
    # City staff pull only their own visits: no city-wide staff list for them.
    assert Phone(client, "boss").get("/api/reference").json["people"] == []


def test_the_days_follow_the_setting(_migrated):
    from tests.conftest import _clean, make_app

    url, data_dir = _migrated
    application = make_app(url, data_dir, DUPLICATE_VISIT_DAYS=3)
    with application.app_context():
        from server.extensions import db

        _clean(db)
        create_user("ca", "field_cadre", "510104", "WG01")
        ref = Phone(application.test_client(), "ca").get("/api/reference").json
        assert ref["duplicate_visit_days"] == 3
        db.session.remove()
        db.engine.dispose()
