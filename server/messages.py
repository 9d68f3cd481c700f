"""Error messages in the reader's language: every error code in Chinese and English.

The API's `message` follows `Accept-Language` (Chinese when the request prefers it,
English otherwise); `code` and `field` stay as they are, and the field app shows its
own text for each code anyway (pwa/js/i18n.js). tests/pwa/test_error_codes.py checks
that every code the server can answer is here and in the app.
"""

from __future__ import annotations

from typing import Any

# code -> (Chinese, English). The English is a general sentence: where the server has a
# more precise English message (naming the value), English readers get that one.
MESSAGES: dict[str, tuple[str, str]] = {
    "after_mid_reused": ("请在重新编号后再发送", "send again after renumbering the reused entries"),
    "auth_required": ("请先登录", "sign in first"),
    "bad_credentials": ("用户名或密码不正确", "wrong user name or password"),
    "batch_too_large": ("一次发送的记录太多，请分批发送", "too many mutations in one batch"),
    "csrf": ("页面已过期，请刷新后重试", "the page expired: reload and try again"),
    "deleted": (
        "该记录已在服务器上删除，修改已保存在冲突记录中",
        "this record was deleted on the server; the edit is kept in its conflict log",
    ),
    "device_mismatch": ("本机登记信息不符，请重新登录", "this token belongs to another device"),
    "device_revoked": (
        "本机已被管理员停用，请重新登录；未同步的记录会保留并重新发送",
        "this device was revoked by an administrator: sign in again",
    ),
    "device_taken": ("这部手机登记在另一位用户名下", "this device belongs to another user"),
    "enterprise_not_found": (
        "所选企业不在服务器上（新建时未通过）",
        "the enterprise is not on the server (was its creation rejected?)",
    ),
    "entry_rejected": (
        "同一条记录中的另一项未通过，整条记录没有保存，请修改后重新发送",
        "another record of this entry was rejected: fix it and send the entry again",
    ),
    "error": ("请求出错", "the request failed"),
    "forbidden": ("没有权限", "your role may not do this"),
    "gap": ("请先发送之前的记录", "send the earlier mutations first"),
    "implausible_date": ("日期不在合理范围内", "the date is outside the plausible window"),
    "implausible_value": (
        "数值超出合理范围，请核对",
        "the value is beyond what one visit can plausibly record",
    ),
    "invalid": ("内容不符合要求", "invalid value"),
    "invalid_participant": (
        "参与人不在你能选择的人员中",
        "not a user you can name as a participant",
    ),
    "malformed": ("格式不对，服务器无法读取", "malformed request"),
    "masked_value": (
        "不能保存打星号的隐去内容，请填写完整或保持原样",
        "a masked value cannot be stored: type it in full or leave it unchanged",
    ),
    "method_not_allowed": ("不支持这种请求方式", "method not allowed"),
    "mid_reused": (
        "记录编号已被本机的另一条记录使用，将重新编号后发送",
        "this mid was already used for another entry: renumber and send again",
    ),
    "not_found": ("服务器上找不到", "not found"),
    "parent_deleted": (
        "所属走访已在服务器上删除，内容已保存在冲突记录中",
        "the visit was deleted; this entry is kept in its conflict log",
    ),
    "protocol_outdated": ("应用版本过旧，请更新", "this app is too old for the server: update it"),
    "protocol_unknown": ("应用版本比服务器新", "the app's protocol is newer than the server's"),
    "reference_out_of_scope": (
        "关联的记录超出你的权限范围",
        "the linked record is outside your scope",
    ),
    "replay_kept_newer": (
        "该记录已在服务器上被更新，保留了较新的内容，你的内容在冲突记录中",
        "the newer values were kept and yours are in the conflict log",
    ),
    "required": ("必填项未填写", "a required field is missing"),
    "server_error": ("服务器出错，请稍后重试", "unexpected server error"),
    "busy": ("服务器繁忙，请稍后重试", "the server is busy: try again"),
    "stage_conflict": ("处理阶段已被他人改动", "the stage was changed by someone else"),
    "stage_reason_required": ("退回处理阶段需要填写原因", "moving a stage back needs a note"),
    "token_expired": (
        "长时间未使用，登录已过期，请重新登录",
        "signed out after a long time unused",
    ),
    "too_large": ("内容太大", "the request is too large"),
    "incomplete_body": ("上传中断，稍后从断点继续", "the upload was cut off; it resumes later"),
    "storage_unavailable": ("照片存储暂时不可用，稍后重试", "the photo storage is unavailable"),
    "tus_version_unsupported": ("照片上传方式不受支持，请更新应用", "unsupported upload protocol"),
    "too_many_attempts": (
        "登录失败次数过多，请稍后再试",
        "too many failed sign-ins: wait and try again",
    ),
    "unavailable": ("服务器暂时不可用，请稍后重试", "the database is unavailable; try again later"),
    "unknown_district": ("区县代码不存在", "no such district unit"),
    "unknown_field": ("含有无法识别的字段", "unknown field"),
    "unknown_user": ("参与人不存在", "no such user"),
    "unknown_work_group": ("工作组不存在", "no such work group"),
    "unstorable": ("服务器无法保存这条记录，请检查内容", "the server could not store this entry"),
    "unsupported_media_type": ("不支持的内容类型", "unsupported media type"),
    "user_disabled": ("该账号已停用，请联系管理员", "this account is disabled"),
    "uscc_check": (
        "统一社会信用代码校验位不符，已按输入保存",
        "the credit code's check character does not match; kept as typed",
    ),
    "visit_not_found": ("所属走访不在服务器上", "the visit is not on the server"),
}

# Field names in Chinese, for "字段：原因".
FIELDS_ZH: dict[str, str] = {
    "uscc": "统一社会信用代码",
    "id_number": "身份证号",
    "phone": "电话",
    "name": "名称",
    "visited_at": "走访时间",
    "workers_met": "面对面职工人数",
    "workers_by_group": "重点职工人数",
    "district_code": "区县",
    "work_group_code": "工作组",
    "participants": "参与人",
    "enterprise_id": "企业",
    "visit_id": "所属走访",
    "stage": "处理阶段",
    "stage_note": "处理说明",
    "description": "问题描述",
    "username": "用户名",
    "password": "密码",
    "device_id": "设备",
}


def prefers_chinese(accept_language: str | None) -> bool:
    """True when the Accept-Language header ranks Chinese above English (ties: Chinese,
    the product's first language; no header: English, the API's default)."""
    best: dict[str, float] = {}
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in ("zh", "en"):
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        best[lang] = max(best.get(lang, 0.0), q)
    return best.get("zh", 0.0) > 0 and best.get("zh", 0.0) >= best.get("en", 0.0)


def localize(code: str, message: str, field: str | None, chinese: bool) -> str:
    """The message for `code` in the reader's language: for English readers the server's
    own (precise) message; for Chinese readers the code's text, with the field named."""
    if not chinese:
        return message
    zh = MESSAGES.get(code, MESSAGES["error"])[0]
    if field:
        name = FIELDS_ZH.get(field.split(".")[-1].split("[")[0], field)
        return f"{name}：{zh}"
    return zh


def localize_error(body: dict[str, Any], chinese: bool) -> dict[str, Any]:
    """An {"error": {...}} body with its message in the reader's language."""
    err = body.get("error")
    if chinese and isinstance(err, dict) and "code" in err:
        err["message"] = localize(err["code"], err.get("message", ""), err.get("field"), True)
    return body


def localize_results(results: list[dict[str, Any]], chinese: bool) -> None:
    """Push results (rejected, conflict, skipped) with messages in the reader's language."""
    if not chinese:
        return
    for result in results:
        for item in (result, result.get("cause"), result.get("original")):
            if isinstance(item, dict) and item.get("code") and item.get("message"):
                item["message"] = localize(item["code"], item["message"], item.get("field"), True)
        for warning in result.get("warnings") or ():
            if isinstance(warning, dict) and warning.get("code"):
                warning["message"] = localize(
                    warning["code"], warning.get("message", ""), warning.get("field"), True
                )
