"""Chinese everywhere: every error code the server can answer has a message in both
languages, on the server (following Accept-Language) and in the field app."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from server.messages import MESSAGES, localize, prefers_chinese
from tests.conftest import PASSWORD, Phone, create_user, service_missing, visit_fields

ROOT = Path(__file__).resolve().parents[2]
# Statuses of /readyz, not errors.
NOT_ERRORS = {"ready", "degraded", "not_ready"}
# Raised anywhere in server/ and sync/:
_RAISED = [
    r'(?:ApiError|ProtocolError)\(\s*(?:\d+|status)\s*,\s*"([a-z_]+)"',
    r'Rejected\(\s*"([a-z_]+)"',
]
# Written as dicts only where answers are built: push results, error handlers, the API
# (elsewhere "code" names other things, e.g. what a district lacks in server/nonreporters.py).
_WRITTEN = [
    r'"code"\s*:\s*"([a-z_]+)"',
    r'\bcode\s*=\s*"([a-z_]+)"',
    r'\d{3}\s*:\s*"([a-z_]+)"',  # the HTTP status -> code table of server/errors.py
]
CJK = re.compile(r"[\u4e00-\u9fff]")


def server_codes() -> set[str]:
    """Every error code written in server/ and sync/ (read from the source, so a new code
    fails this test until it has its messages)."""
    codes: set[str] = set()
    for path in [*ROOT.joinpath("server").rglob("*.py"), *ROOT.joinpath("sync").rglob("*.py")]:
        if path.name == "messages.py":
            continue
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT).as_posix()
        answers = rel.startswith(("sync/", "server/api/")) or rel == "server/errors.py"
        for pattern in _RAISED + (_WRITTEN if answers else []):
            codes.update(re.findall(pattern, text))
    return codes - NOT_ERRORS


def test_the_scan_finds_the_codes_it_should():
    codes = server_codes()
    for known in ("bad_credentials", "device_revoked", "entry_rejected", "invalid", "gap"):
        assert known in codes
    assert "method_not_allowed" in codes and "server_error" in codes


def test_every_server_code_has_a_chinese_and_an_english_message():
    missing = sorted(server_codes() - set(MESSAGES))
    assert not missing, f"codes without messages in server/messages.py: {missing}"
    for code, (zh, en) in MESSAGES.items():
        assert CJK.search(zh) and not CJK.search(en) and en, code


def test_every_server_code_has_the_apps_own_text_in_both_languages():
    node = shutil.which("node")
    if node is None:
        service_missing("node (Debian's nodejs)")
    script = """
    import { errorText, t, setLang } from './pwa/js/i18n.js';
    globalThis.document = { documentElement: {} };
    const codes = JSON.parse(process.argv[1]);
    const out = {};
    for (const lang of ['zh', 'en']) {
      setLang(lang);
      for (const c of codes) {
        const rej = t(`rej_${c}`);
        out[`${lang}:${c}`] = rej !== `rej_${c}` ? rej : errorText(c);
      }
    }
    console.log(JSON.stringify(out));
    """
    codes = sorted(server_codes())
    res = subprocess.run(
        [node, "--input-type=module", "-e", script, json.dumps(codes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    texts = json.loads(res.stdout)
    unmapped = [
        c
        for c in codes
        if texts[f"zh:{c}"].startswith("出错了") or not CJK.search(texts[f"zh:{c}"])
    ]
    assert not unmapped, f"codes the app shows as a bare code in Chinese: {unmapped}"
    for c in codes:
        assert not CJK.search(texts[f"en:{c}"]) and not texts[f"en:{c}"].startswith("Error ("), c


def test_accept_language_is_read_with_its_weights():
    assert prefers_chinese("zh-CN,zh;q=0.9,en;q=0.8")
    assert prefers_chinese("zh")
    assert not prefers_chinese("en-US,en;q=0.9,zh-CN;q=0.5")
    assert not prefers_chinese(None) and not prefers_chinese("fr, de")
    assert prefers_chinese("en;q=0.5, zh-TW;q=0.6")
    assert localize("invalid", "uscc: bad", "uscc", True) == "统一社会信用代码：内容不符合要求"
    assert localize("invalid", "uscc: bad", "uscc", False) == "uscc: bad"


def test_server_messages_follow_accept_language(client, app):
    create_user("cadre1", "field_cadre", "510104", "WG01")
    bad = {"username": "cadre1", "password": "wrong"}
    zh = client.post("/api/auth/login", json=bad, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert zh.status_code == 401 and zh.json["error"]["code"] == "bad_credentials"
    assert zh.json["error"]["message"] == "用户名或密码不正确"
    assert "Accept-Language" in zh.headers.get("Vary", "")
    en = client.post("/api/auth/login", json=bad, headers={"Accept-Language": "en"})
    assert en.json["error"]["code"] == "bad_credentials"
    assert not CJK.search(en.json["error"]["message"])
    assert client.post("/api/auth/login", json={"username": "cadre1", "password": PASSWORD})
    # Whole-request errors and push results alike.
    gone = client.get("/api/nothing-here", headers={"Accept-Language": "zh"})
    assert gone.status_code == 404 and gone.json["error"]["message"] == "服务器上找不到"
    phone = Phone(client, "cadre1")
    m = phone.mutation("create", "visit", "6f9b1c2e-0c7a-4d55-9a3e-2b1f0d4c8e71", visit_fields())
    m["fields"]["workers_met"] = "many"
    r = client.post(
        "/api/sync/push",
        json={"protocol": 1, "device_id": phone.device_id, "mutations": [m]},
        headers={**phone.headers, "Accept-Language": "zh-CN"},
    )
    result = r.json["results"][0]
    assert result["code"] == "invalid" and result["field"] == "workers_met"
    assert result["message"] == "面对面职工人数：内容不符合要求"
    # The stored result keeps the server's words: an English replay reads English.
    again = client.post(
        "/api/sync/push",
        json={"protocol": 1, "device_id": phone.device_id, "mutations": [m]},
        headers={**phone.headers, "Accept-Language": "en"},
    )
    assert not CJK.search(again.json["results"][0]["original"]["message"])
