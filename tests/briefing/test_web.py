"""Briefing pages, downloads, JSON API, unsubscribe and admin pages over HTTP."""

from __future__ import annotations

from io import BytesIO
from urllib.parse import urlsplit

from openpyxl import load_workbook

from server.extensions import db
from server.models_briefing import BriefingRecipient
from tests.briefing.fixture_data import WEEK, A, B, seed
from tests.conftest import PASSWORD, Phone, create_user
from worker.briefing import mail
from worker.briefing.deliver import plan_deliveries

Q = {"period": "week", "start": WEEK.isoformat()}


def _week():
    from datetime import date

    from worker.briefing.compute import period_containing

    return period_containing("week", WEEK, date(2026, 1, 1))


def _login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.data


def test_login_page_and_redirect(client, db_session):
    r = client.get(f"/briefings/{A}")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    page = client.get("/login").get_data(as_text=True)
    assert "用户名" in page and "密码" in page
    create_user("x", "district_head", A)
    bad = client.post("/login", data={"username": "x", "password": "wrong"})
    assert bad.status_code == 401 and "用户名或密码不正确" in bad.get_data(as_text=True)


def test_district_head_sees_only_own_district(client, db_session):
    seed()
    _login(client, "head_a")
    r = client.get(f"/briefings/{A}", query_string=Q)
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "锦江区" in page and "@media print" in page and "干部参与率" in page
    assert client.get(f"/briefings/{B}", query_string=Q).status_code == 403
    assert client.get("/briefings/city", query_string=Q).status_code == 403
    assert client.get(f"/briefings/{B}/xlsx", query_string=Q).status_code == 403
    x = client.get(f"/briefings/{A}/xlsx", query_string=Q)
    assert x.status_code == 200
    wb = load_workbook(BytesIO(x.data))
    assert wb.sheetnames[0] == "概况"
    rows = {r[0]: r[1] for r in wb["概况"].iter_rows(min_row=2, values_only=True)}
    assert rows["走访次数"] == 6 and rows["面对面接触职工"] == 64 and rows["慰问金（元）"] == 800


def test_coordinator_city_page_and_xlsx(client, db_session):
    seed()
    create_user("coord", "city_coordinator")
    _login(client, "coord")
    page = client.get("/briefings/city", query_string=Q).get_data(as_text=True)
    assert "全市各单位进展" in page and "青羊区" in page
    assert client.get(f"/briefings/{B}", query_string=Q).status_code == 200
    wb = load_workbook(BytesIO(client.get("/briefings/city/xlsx", query_string=Q).data))
    ws = wb["全市汇总"]
    header = [c.value for c in ws[1]]
    first = dict(zip(header, [c.value for c in ws[2]], strict=True))
    assert first["单位"] == "锦江区" and first["接触职工"] == 64 and first["名次"] == 1
    assert ws.max_row - 1 >= 20


def test_json_api_scope(client, db_session):
    seed()
    phone = Phone(client, "head_a")
    r = phone.get(f"/api/briefings/{A}?period=week&start={WEEK}")
    assert r.status_code == 200
    assert r.json["current"]["workers_met"] == 64 and r.json["rank"] == 1
    assert phone.get(f"/api/briefings/{B}?period=week&start={WEEK}").status_code == 403
    assert phone.get("/api/briefings/city").status_code == 403
    assert phone.get(f"/api/briefings/{A}?period=year").status_code == 400
    assert client.get(f"/api/briefings/{A}").status_code == 401
    create_user("sup", "supervisor")
    sup = Phone(client, "sup")
    assert sup.get(f"/api/briefings/city?period=week&start={WEEK}").json["rows"][0]["code"] == A


def test_unsubscribe_link(client, app, db_session):
    r = BriefingRecipient(district=A, email="head@a.example")
    db.session.add(r)
    db.session.commit()
    path = urlsplit(mail.unsubscribe_url(app.config["FV"], r.id, r.email)).path
    ask = client.get(path)
    assert ask.status_code == 200 and "确认退订" in ask.get_data(as_text=True)
    db.session.refresh(r)
    assert r.unsubscribed_at is None  # a GET (link prefetch) changes nothing
    assert "已退订" in client.post(path).get_data(as_text=True)
    db.session.refresh(r)
    assert r.unsubscribed_at is not None
    assert client.get(path[:-3] + "abc").status_code == 404


def test_admin_recipients_send_and_outbox(client, app, db_session):
    seed()
    create_user("root", "admin")
    _login(client, "root")
    page = client.get("/briefings/admin/recipients").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert (
        client.post(
            "/briefings/admin/recipients",
            data={"action": "add", "district": A, "email": "head@a.example"},
        ).status_code
        == 400
    )  # no CSRF token
    r = client.post(
        "/briefings/admin/recipients",
        data={"csrf_token": token, "action": "add", "district": A, "email": "Head@A.example"},
    )
    assert r.status_code == 302
    assert "head@a.example" in client.get("/briefings/admin/recipients").get_data(as_text=True)
    r = client.post(
        "/briefings/admin/send",
        data={"csrf_token": token, "period": "week", "start": WEEK.isoformat()},
    )
    assert r.status_code == 302
    deliveries = client.get("/briefings/admin/deliveries").get_data(as_text=True)
    assert "head@a.example" in deliveries and "pending" in deliveries
    # 立即发送 only queued: the worker sends (here its plain function, as its task does).
    from worker.briefing.deliver import send_delivery

    for i in plan_deliveries(db.session, app.config["FV"], _week()).to_send:
        assert send_delivery(db.session, app.config["FV"], i) == "sent"
    deliveries = client.get("/briefings/admin/deliveries").get_data(as_text=True)
    assert "head@a.example" in deliveries and "sent" in deliveries
    outbox = client.get("/briefings/admin/outbox").get_data(as_text=True)
    assert "【走访简报】锦江区周报" in outbox
    name = outbox.split("/briefings/admin/outbox/")[1].split('"')[0]
    one = client.get(f"/briefings/admin/outbox/{name}").get_data(as_text=True)
    assert "multipart/alternative" in one and "srcdoc=" in one and "面对面接触职工" in one
    # Sending again creates nothing new.
    client.post(
        "/briefings/admin/send",
        data={"csrf_token": token, "period": "week", "start": WEEK.isoformat()},
    )
    assert len(list(mail.outbox_dir(app.config["FV"]).glob("*.eml"))) >= 1
    from sqlalchemy import func, select

    from server.models_briefing import BriefingDelivery

    assert db.session.scalar(select(func.count()).select_from(BriefingDelivery)) == 1


def test_briefing_index_sends_city_staff_to_the_city_page(client, db_session):
    seed()
    create_user("coord", "city_coordinator")
    _login(client, "coord")
    r = client.get("/briefings/", query_string=Q)
    assert r.status_code == 302, r.data[:300]
    assert urlsplit(r.headers["Location"]).path == "/briefings/city"
    assert "period=week" in r.headers["Location"]
    assert "全市各单位进展" in client.get(r.headers["Location"]).get_data(as_text=True)


def test_web_sign_in_lands_each_role_on_its_own_pages(client, db_session):
    """Never on the field app at '/': its service worker would take the tab over."""
    create_user("adm", "admin")
    create_user("coord", "city_coordinator")
    create_user("sup", "supervisor")
    create_user("head", "district_head", A)
    create_user("cadre", "field_cadre", A)
    create_user("lead", "group_leader")
    expected = {
        "adm": "/dashboard",
        "coord": "/dashboard",
        "sup": "/dashboard",
        "head": "/dashboard",
        "cadre": "/briefings/",
        "lead": None,
    }
    for username, path in expected.items():
        client.post("/logout")
        r = client.post("/login", data={"username": username, "password": PASSWORD})
        assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/start"
        start = client.get("/start")
        if path is None:  # no web pages of its own: told that its work is in the app
            assert start.status_code == 200 and "走访应用" in start.get_data(as_text=True)
        else:
            assert start.status_code == 302, username
            assert urlsplit(start.headers["Location"]).path == path, username
        from flask import g

        g.pop("web_user", None)
    # A link's next= is kept, but never the field app's own page.
    client.post("/logout")
    for target, landed in (("/problems", "/problems"), ("/", "/start"), ("/index.html", "/start")):
        r = client.post("/login", data={"username": "coord", "password": PASSWORD, "next": target})
        assert urlsplit(r.headers["Location"]).path == landed, target


def test_login_page_switches_to_english(client, db_session):
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert "User name" in page and "Password" in page and ">中文<" in page
    create_user("x", "district_head", A)
    bad = client.post("/login?lang=en", data={"username": "x", "password": "wrong"})
    assert bad.status_code == 401 and "Wrong user name or password" in bad.get_data(as_text=True)
    assert "用户名" in client.get("/login?lang=zh").get_data(as_text=True)
