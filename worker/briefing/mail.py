"""Building briefing emails and handing them to SMTP, or to .eml files when none is set.

With SMTP_HOST empty (the embedded default) a message is written atomically to
DATA_DIR/outbox-mail/<message-id>.eml, and an admin page lists those files, so a
briefing can be seen end to end with no mail server.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeSerializer

from config.settings import Settings
from worker.briefing.compute import Period

UNSUBSCRIBE_SALT = "briefing-unsubscribe"
# RFC 5322 allows 998 characters a line. With the SMTP policy's 78 the email package
# cannot fold the List-Unsubscribe URL (no spaces in it) and RFC 2047-encodes it instead,
# which mail apps do not read as a URL: no one-click unsubscribe. Non-ASCII headers
# (the Subject) are still encoded, only on longer lines.
MAIL_POLICY = SMTP_POLICY.clone(max_line_length=998)


class PermanentSendError(Exception):
    """The server refused for good (bad recipient...): retrying will not help."""


def outbox_dir(settings: Settings) -> Path:
    """Where messages go when no SMTP server is configured."""
    return Path(settings.DATA_DIR) / "outbox-mail"


def web_url(settings: Settings, district: str, period: Period) -> str:
    """The web version of a briefing (city-wide when district is 'city')."""
    query = urlencode({"period": period.kind, "start": period.key_date.isoformat()})
    return f"{settings.PUBLIC_URL.rstrip('/')}/briefings/{district}?{query}"


def unsubscribe_token(settings: Settings, recipient_id: int, email: str) -> str:
    """A signed token naming one subscription; no login needed to use it."""
    return URLSafeSerializer(settings.SECRET_KEY, salt=UNSUBSCRIBE_SALT).dumps(
        [recipient_id, email.lower()]
    )


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[int, str] | None:
    """(recipient id, email) of a valid token, or None for a forged or garbled one."""
    try:
        recipient_id, email = URLSafeSerializer(settings.SECRET_KEY, salt=UNSUBSCRIBE_SALT).loads(
            token
        )
    except (BadSignature, ValueError, TypeError):
        return None
    return int(recipient_id), str(email)


def unsubscribe_url(settings: Settings, recipient_id: int, email: str) -> str:
    return (
        f"{settings.PUBLIC_URL.rstrip('/')}/briefings/unsubscribe/"
        f"{unsubscribe_token(settings, recipient_id, email)}"
    )


def new_message_id(settings: Settings) -> str:
    """A Message-ID in the sender's domain; stored before sending so a resend reuses it."""
    domain = settings.MAIL_FROM.rpartition("@")[2] or "localhost"
    return make_msgid(idstring="briefing", domain=domain)


def build_message(
    settings: Settings,
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    unsubscribe: str | None = None,
    sender: str = "基层走访简报",
) -> EmailMessage:
    """multipart/alternative: plain text first, HTML last (the preferred part)."""
    from datetime import UTC, datetime

    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = subject  # the policy encodes non-ASCII per RFC 2047
    msg["From"] = formataddr((sender, settings.MAIL_FROM))
    msg["To"] = to
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe:
        # RFC 2369 / RFC 8058: the HTTPS URL in angle brackets, as plain ASCII, and the
        # one-click marker; the URL takes a POST with no cookie or token (briefing_web).
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def _outbox_file(settings: Settings, message_id: str) -> Path:
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    return outbox_dir(settings) / f"{digest}.eml"


def deliver(settings: Settings, msg: EmailMessage) -> str:
    """Send one message; returns where it went ('smtp' or the .eml path).

    Raises PermanentSendError when the server rejects it for good; any other exception
    is worth a retry (connection refused, timeouts, 4xx answers).
    """
    if not settings.SMTP_HOST:
        return str(_write_outbox(settings, msg))
    try:
        with _connect(settings) as smtp:
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(500 <= code < 600 for code in codes):
            raise PermanentSendError(f"recipient refused: {exc.recipients}") from exc
        raise
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600 and exc.smtp_code != 530:
            raise PermanentSendError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        raise
    return "smtp"


def _connect(settings: Settings) -> smtplib.SMTP:
    timeout = 30
    if settings.SMTP_SECURITY == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.SMTP_HOST,
            settings.SMTP_PORT,
            timeout=timeout,
            context=ssl.create_default_context(),
        )
    else:
        smtp = smtplib.SMTP(settings.SMTP_HOST, settings.SMTP_PORT, timeout=timeout)
        if settings.SMTP_SECURITY == "starttls":
            smtp.starttls(context=ssl.create_default_context())
    if settings.SMTP_USER:
        smtp.login(settings.SMTP_USER, settings.SMTP_PASSWORD)
    return smtp


def _write_outbox(settings: Settings, msg: EmailMessage) -> Path:
    """Write atomically, named by Message-ID: writing the same message twice is a no-op."""
    target = _outbox_file(settings, str(msg["Message-ID"]))
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(msg.as_bytes())
    os.replace(tmp, target)
    return target


def already_in_outbox(settings: Settings, message_id: str) -> bool:
    """True when the file outbox holds this message (lets a resend after a crash skip)."""
    return not settings.SMTP_HOST and _outbox_file(settings, message_id).exists()
