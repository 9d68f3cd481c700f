"""Pinyin initials for the phone's offline search: every reading of a polyphonic character."""

from __future__ import annotations

import uuid

from sync.pinyin import initials, initials_any, initials_table, letters
from tests.conftest import Phone, create_user


def test_the_names_own_reading_and_every_reading():
    assert initials("成都长虹桥") == "cdchq"  # 长虹 read as a phrase: chang hong
    assert initials_any("长虹桥").startswith("[cz]")
    assert initials("重庆银行") == "cqyh" and initials_any("重庆银行").startswith("[c")
    assert "z" in letters("重") and "x" in letters("行") and "h" in letters("行")
    assert set(letters("厦")) == {"x", "s"}
    assert initials("成都ABC（有限）公司")[:5] == "cdabc"
    assert initials_any("ABC") is None and initials("") == ""


def test_the_phones_table_covers_the_common_characters_under_each_reading():
    table = initials_table()
    chars = "".join(table.values())
    assert len(set(chars)) == 3755
    assert "长" in table["c"] and "长" in table["z"] and "行" in table["x"] and "行" in table["h"]


def test_reference_and_pull_carry_both(client, app):
    create_user("cadre1", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre1")
    eid = str(uuid.uuid4())
    m = phone.mutation(
        "create", "enterprise", eid, {"name": "成都长虹桥机械有限公司", "district_code": "510104"}
    )
    assert phone.push([m]).json["results"][0]["status"] == "applied"
    ref = client.get("/api/reference", headers=phone.headers).json
    ent = next(e for e in ref["enterprises"] if e["id"] == eid)
    assert ent["initials"].startswith("cdchq") and ent["initials_any"].startswith("cd[cz]")
    assert "长" in ref["initials_table"]["z"]
    changes, _ = phone.pull_all()
    pulled = next(c for c in changes if c["id"] == eid)
    assert pulled["data"]["initials_any"] == ent["initials_any"]
