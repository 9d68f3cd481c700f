"""Fixtures of the coordination tests: the campaign of fixture_data pushed through sync."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.coordination import fixture_data


@pytest.fixture
def campaign(app, client, db_session):
    """The fixture campaign, pushed by phones; returns the ids by fixture key."""
    return fixture_data.build(client, db_session)


def web_login(client, username: str) -> None:
    """Sign a test client in through the cookie form."""
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.data[:300]
    # The test's outer app context shares `g` across requests: forget the previous user.
    from flask import g

    g.pop("web_user", None)
