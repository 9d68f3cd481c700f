"""Every setting of fieldvisit: read from the environment, in one place, lazily.

`SETTINGS` is the documented list (docs/settings.md is generated from it and a test
checks the two agree). Nothing reads os.environ at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SECRET = "dev-secret-change-me"


class SettingsError(ValueError):
    """A setting has a value the system cannot run with; the message names it."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default, type and meaning."""

    name: str
    default: Any
    kind: type
    doc: str
    secret: bool = False


SETTINGS: list[Setting] = [
    Setting(
        "FIELDVISIT_ENV",
        "development",
        str,
        "`development` or `production`; production refuses unsafe settings.",
    ),
    Setting(
        "SECRET_KEY",
        DEFAULT_SECRET,
        str,
        "Signs sessions; production refuses the default and weak keys (under 16 "
        "characters, a placeholder such as change-me, one character or a short pattern "
        "repeated, a run like 0123456789abcdef) and a key equal to ID_HASH_KEY.",
        secret=True,
    ),
    Setting(
        "ID_HASH_KEY",
        "dev-id-hash-key",
        str,
        "Key of the HMAC that stores ID numbers and the dedup keys of phone numbers "
        "as keyed hashes; production refuses the default and weak keys as for "
        "SECRET_KEY. Changing it breaks matching of earlier hashes.",
        secret=True,
    ),
    Setting("DEBUG", False, bool, "Flask debug mode; production refuses it."),
    Setting(
        "DATA_DIR",
        str(ROOT / "instance"),
        str,
        "Folder for the SQLite database, the local broker, the mail outbox and exports.",
    ),
    Setting(
        "DATABASE_URL",
        "",
        str,
        "SQLAlchemy URL; empty means a SQLite file in DATA_DIR. "
        "PostgreSQL: postgresql+psycopg://user@host/db.",
        secret=True,
    ),
    Setting(
        "ALLOW_SQLITE_IN_PRODUCTION",
        False,
        bool,
        "Let production run on SQLite (a single small installation).",
    ),
    Setting(
        "REDIS_URL",
        "",
        str,
        "Celery broker and result backend; empty means the embedded broker "
        "(a SQLite file in DATA_DIR, no server).",
        secret=True,
    ),
    Setting(
        "TOKEN_TTL_DAYS", 90, int, "A device stays signed in this many days after its last use."
    ),
    Setting(
        "SIGNIN_MAX_FAILURES",
        5,
        int,
        "Failed sign-ins of one account within SIGNIN_WINDOW_SECONDS after which its "
        "sign-ins answer 429 too_many_attempts (right password or not) until the window "
        "passes; trying while refused starts the window again.",
    ),
    Setting(
        "SIGNIN_MAX_FAILURES_PER_ADDRESS",
        50,
        int,
        "The same for one client address, whatever the accounts (an office behind one "
        "address has many cadres).",
    ),
    Setting(
        "SIGNIN_WINDOW_SECONDS",
        900,
        int,
        "How long failed sign-ins are counted (kept in Redis when REDIS_URL is set, else "
        "in the web process's memory).",
    ),
    Setting(
        "SIGNIN_MAX_CONCURRENT_HASHES",
        2,
        int,
        "Most password checks (argon2, 64 MiB and a core each) running at once per web "
        "process; a sign-in that cannot start one within 5 s answers 503 busy.",
    ),
    Setting("SYNC_MIN_PROTOCOL", 1, int, "Oldest sync protocol version the server accepts."),
    Setting("SYNC_MAX_BATCH", 500, int, "Most mutations in one push."),
    Setting(
        "SYNC_MAX_BODY", 2 * 1024 * 1024, int, "Largest push body in bytes, after decompression."
    ),
    Setting("SYNC_PULL_MAX", 2000, int, "Most changes in one pull page."),
    Setting(
        "SYNC_PULL_WINDOW_DAYS",
        180,
        int,
        "A phone holds the visits and home visits of its scope from the last so many days "
        "or from CAMPAIGN_START, whichever reaches further back, plus every open problem "
        "with its visit; 0 keeps everything in scope.",
    ),
    Setting("API_PAGE_MAX", 200, int, "Most rows in one page of an API list."),
    Setting(
        "DEDUP_AUTO_THRESHOLD",
        0.92,
        float,
        "Enterprise pairs scoring at least this merge automatically.",
    ),
    Setting(
        "DEDUP_REVIEW_THRESHOLD",
        0.75,
        float,
        "Enterprise pairs scoring at least this (and below auto) go to review.",
    ),
    Setting(
        "DEDUP_FULL_PASS_CRON",
        "30 2 * * *",
        str,
        "When the scheduled full dedup pass runs (cron, in TIMEZONE).",
    ),
    Setting(
        "DEDUP_VISIT_WINDOW_MINUTES",
        120,
        int,
        "Visits of one work group at one enterprise by one method, recorded by different "
        "cadres at most this many minutes apart, are one meeting and merge (one cadre's "
        "two entries merge only when their content is the same).",
    ),
    Setting(
        "SYNC_SILENT_DAYS",
        3,
        int,
        "A phone with no successful sync for this many days is 'silent' on the sync-health "
        "page, and its district's figures are marked as possibly incomplete.",
    ),
    Setting(
        "DUPLICATE_VISIT_DAYS",
        7,
        int,
        "The field app warns of visits to the chosen enterprise from this many days back "
        "(and offers to join one as a participant instead of recording it again); 0 turns "
        "the warning off. Sent to phones with the reference data.",
    ),
    Setting(
        "OUTBOX_MAX_ATTEMPTS",
        5,
        int,
        "A background job (an outbox row) that failed this many times is set aside as "
        "dead: listed on the ops page and /api/admin/queue until an admin retries it.",
    ),
    Setting(
        "OUTBOX_RETRY_SECONDS",
        30,
        int,
        "Wait before a failed background job is tried again; doubles with each attempt "
        "(30 s, 1 min, 2 min...), at most an hour.",
    ),
    Setting(
        "BRIEFING_CRON",
        "0 8 * * 1",
        str,
        "When weekly briefings are built and sent (cron, in TIMEZONE).",
    ),
    Setting("TIMEZONE", "Asia/Shanghai", str, "Time zone of schedules and report periods."),
    Setting(
        "PUBLIC_URL",
        "http://127.0.0.1:5000",
        str,
        "Base URL used in emailed links to the web version.",
    ),
    Setting(
        "SMTP_HOST",
        "",
        str,
        "SMTP server; empty means mail is written as .eml files to DATA_DIR/outbox-mail.",
    ),
    Setting("SMTP_PORT", 587, int, "SMTP port."),
    Setting("SMTP_SECURITY", "starttls", str, "`starttls`, `tls` (implicit) or `none`."),
    Setting("SMTP_USER", "", str, "SMTP user name.", secret=True),
    Setting("SMTP_PASSWORD", "", str, "SMTP password.", secret=True),
    Setting("MAIL_FROM", "fieldvisit@localhost", str, "From address of briefings."),
    Setting(
        "CAMPAIGN_START",
        "2026-01-01",
        str,
        "First day of the campaign (YYYY-MM-DD): start of campaign-to-date briefings.",
    ),
    Setting(
        "CAMPAIGN_END",
        "2026-12-31",
        str,
        "Last day of the campaign (YYYY-MM-DD). Dates in URLs (dashboard, exports, "
        "problems, evaluation, briefings, record lists) must lie between "
        "SYNC_DATE_DAYS_BEFORE_CAMPAIGN days before CAMPAIGN_START and "
        "DATE_MAX_DAYS_AHEAD days after the earlier of this day and today; others answer "
        "400, so no request can ask for decades of weeks.",
    ),
    Setting(
        "SYNC_DATE_DAYS_BEFORE_CAMPAIGN",
        366,
        int,
        "A pushed visit or home-visit date may lie this many days before CAMPAIGN_START "
        "at the earliest; earlier ones are rejected as implausible_date.",
    ),
    Setting(
        "SYNC_DATE_DAYS_AHEAD",
        2,
        int,
        "A pushed visit or home-visit date may lie this many days after today at the "
        "latest (phones' clocks drift); later ones are rejected as implausible_date.",
    ),
    Setting(
        "PLAUSIBLE_SOFT",
        "workers_met=500,workers_by_group=500,materials=2000,consultations=300,"
        "amount_cents=500000,visits_per_day=8",
        str,
        "Soft plausibility limits (`field=limit`, comma-separated; a field left out keeps "
        "its default): a "
        "visit's workers_met, each workers_by_group count, materials, consultations, a "
        "home visit's amount_cents (condolence money in fen: 500000 = 5,000 yuan) and "
        "visits_per_day (visits one author records for one day). A record above one is "
        "stored but held for the supervision team's review (/spot-checks) and counts in "
        "no statistic, briefing or evaluation until accepted.",
    ),
    Setting(
        "PLAUSIBLE_HARD",
        "workers_met=5000,workers_by_group=5000,materials=20000,consultations=3000,"
        "amount_cents=5000000,visits_per_day=200",
        str,
        "Hard plausibility limits, the same fields: a pushed record beyond one is rejected "
        "as implausible_value naming the field and the limit. Each must be at least its "
        "soft limit. visits_per_day is only a flood guard: a cadre entering a day's paper "
        "records late is held for review above the soft limit, never refused.",
    ),
    Setting(
        "DATE_MIN",
        "2000-01-01",
        str,
        "Earliest date (YYYY-MM-DD) a date in a URL may name; earlier ones answer 400.",
    ),
    Setting(
        "DATE_MAX_DAYS_AHEAD",
        366,
        int,
        "How many days after today a date in a URL may lie; later ones answer 400.",
    ),
    Setting(
        "DASHBOARD_CACHE_BYTES",
        8 * 1024 * 1024,
        int,
        "Most bytes (the answers' JSON size) the dashboard cache keeps per web process; "
        "the least recently used answers go first.",
    ),
    Setting(
        "EXPORT_MAX_ROWS",
        20000,
        int,
        "Most rows of a visits, problems or enterprises export for roles below city "
        "coordinator (district heads); a larger one answers 400 naming `from` (narrow "
        "the dates) or `kind`. City staff export without this limit.",
    ),
    Setting(
        "HOME_VISIT_RETENTION_DAYS",
        30,
        int,
        "A deleted home visit keeps its needy worker's personal fields (name, phone, ID "
        "digits, hardship, notes) this many days, then they are erased (every 6 hours, and "
        "`fieldvisit erase-personal`); its amount, date and district stay for the "
        "statistics.",
    ),
    Setting(
        "ATTACHMENTS_STORAGE",
        "local",
        str,
        "Where photos and signatures are kept: `local` (a folder, ATTACHMENTS_DIR) or "
        "`s3` (S3-compatible object storage such as MinIO: the S3_* settings).",
    ),
    Setting(
        "ATTACHMENTS_DIR",
        "",
        str,
        "Folder of the `local` attachment storage; empty means DATA_DIR/attachments.",
    ),
    Setting("S3_ENDPOINT_URL", "", str, "S3 endpoint (`http://minio:9000`); empty means AWS."),
    Setting("S3_BUCKET", "fieldvisit-attachments", str, "Bucket of the `s3` storage."),
    Setting("S3_REGION", "us-east-1", str, "Region of the bucket."),
    Setting("S3_ACCESS_KEY_ID", "", str, "Access key of the `s3` storage.", secret=True),
    Setting("S3_SECRET_ACCESS_KEY", "", str, "Secret key of the `s3` storage.", secret=True),
    Setting(
        "S3_CREATE_BUCKET",
        False,
        bool,
        "Create the bucket at the first use when it does not exist (development, MinIO).",
    ),
    Setting(
        "UPLOAD_MAX_BYTES",
        10 * 1024 * 1024,
        int,
        "Largest photo or signature upload (tus `Tus-Max-Size`); a larger Upload-Length "
        "answers 413.",
    ),
    Setting(
        "UPLOAD_CHUNK_MAX",
        1024 * 1024,
        int,
        "Largest body of one upload PATCH (a chunk); a larger one answers 413. At most "
        "SYNC_MAX_BODY.",
    ),
    Setting(
        "UPLOAD_EXPIRE_HOURS",
        168,
        int,
        "An upload not finished this many hours after its last chunk is removed with "
        "what it received (the retention sweep).",
    ),
    Setting(
        "ATTACHMENT_MAX_PIXELS",
        50_000_000,
        int,
        "Largest image (width x height) the server decodes; a larger one is refused "
        "(422 image_too_large) before it is decompressed.",
    ),
    Setting(
        "ATTACHMENT_FULL_MAX_PX",
        2048,
        int,
        "Longest edge of the stored full image (re-encoded without metadata).",
    ),
    Setting("ATTACHMENT_THUMB_PX", 320, int, "Longest edge of the stored thumbnail."),
    Setting(
        "ATTACHMENT_FAR_METERS",
        1000,
        int,
        "Spot checks: a photo taken farther than this from the visit's position is highlighted.",
    ),
    Setting(
        "ATTACHMENT_LATE_HOURS",
        24,
        int,
        "Spot checks: a photo taken more than this many hours before or after the visit "
        "is highlighted.",
    ),
    Setting(
        "ATTACHMENT_RETENTION_DAYS",
        30,
        int,
        "A deleted record's photos and signatures are removed this many days after the "
        "deletion (with the personal-data sweep); a file shared with a live record stays.",
    ),
    Setting(
        "BRIEFING_STALE_SECONDS",
        900,
        int,
        "A briefing left 'sending' this long (a worker died mid-send) is sent again with "
        "the same Message-ID; keep it above the task time limit.",
    ),
    Setting(
        "DEADLINE_DAYS",
        "enterprise=15,government=30,source=90",
        str,
        "Handling period in days of each open ladder stage (with the enterprise, with the "
        "government, at the source); the clock starts when the problem reaches the stage.",
    ),
    Setting(
        "DEADLINE_DAYS_BY_CATEGORY",
        "safety.enterprise=7,safety.government=15,wages.enterprise=10",
        str,
        "Per category and stage (`category.stage=days`, comma-separated): replaces "
        "DEADLINE_DAYS for problems of that category.",
    ),
    Setting(
        "DEADLINE_DAYS_BY_TAG",
        "urgent.enterprise=5,urgent.government=10,urgent.source=45",
        str,
        "Per tag and stage (`tag.stage=days`; tags hope, urgent 最急, worry, resent); when "
        "a category's and a tag's period both apply, the shorter wins.",
    ),
    Setting(
        "DEADLINE_NEAR_DAYS",
        3,
        int,
        "Blue (临近): the due date is at most this many days away.",
    ),
    Setting(
        "DEADLINE_BEHIND_SHARE",
        0.5,
        float,
        "Yellow (滞后): at least this share of the stage's period has passed and nothing "
        "was recorded on the problem since the stage started. Red (超期): past the due date.",
    ),
    Setting(
        "REMINDER_INTERVAL_SECONDS",
        3600,
        int,
        "How often the beat plans deadline reminders and sends the per-user digests.",
    ),
    Setting(
        "BRIEFING_RETRY_SECONDS",
        900,
        int,
        "A briefing that failed on a transient error (SMTP down, 4xx) after its task's own "
        "retries is sent again by the sweep every this many seconds ...",
    ),
    Setting(
        "BRIEFING_GIVE_UP_HOURS",
        48,
        int,
        "... until this many hours after it was planned; then it stays failed (shown on "
        "/briefings/admin/deliveries) until an admin sends it again.",
    ),
    Setting(
        "STATUS_LOOKUPS_PER_WINDOW",
        10,
        int,
        "Public status page (查询码): most lookups per client address in ...",
    ),
    Setting(
        "STATUS_LOOKUP_WINDOW_SECONDS",
        600,
        int,
        "... this many seconds; more answer 429 (codes have about 59 bits, so guessing "
        "stays hopeless).",
    ),
    Setting("LOG_LEVEL", "INFO", str, "Log level of the web app and workers."),
    Setting("LOG_JSON", True, bool, "Structured (JSON) log lines."),
]

_BY_NAME = {s.name: s for s in SETTINGS}


def _parse(setting: Setting, raw: str) -> Any:
    if setting.kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{setting.name}={raw!r}: expected true/false")
    if setting.kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{setting.name}={raw!r}: expected an integer") from None
    if setting.kind is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{setting.name}={raw!r}: expected a number") from None
    return raw


@dataclass
class Settings:
    """Resolved settings; build with `load_settings()`."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def is_production(self) -> bool:
        return self.values["FIELDVISIT_ENV"] == "production"

    @property
    def database_url(self) -> str:
        return self.values["DATABASE_URL"] or f"sqlite:///{Path(self.DATA_DIR) / 'fieldvisit.db'}"

    @property
    def broker_url(self) -> str:
        if self.values["REDIS_URL"]:
            return self.values["REDIS_URL"]
        return f"sqla+sqlite:///{Path(self.DATA_DIR) / 'broker.db'}"

    @property
    def result_backend(self) -> str:
        if self.values["REDIS_URL"]:
            return self.values["REDIS_URL"]
        return f"db+sqlite:///{Path(self.DATA_DIR) / 'results.db'}"


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Read every setting from `env` (default os.environ), then apply overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.name)
        values[setting.name] = setting.default if raw is None else _parse(setting, raw)
    for name, value in overrides.items():
        if name not in _BY_NAME:
            raise SettingsError(f"{name}: unknown setting")
        values[name] = value
    settings = Settings(values)
    validate(settings)
    return settings


# The long keys production checks for strength (weak_key_reason).
KEY_SETTINGS = ("SECRET_KEY", "ID_HASH_KEY")
# Well-known placeholders: a key containing one was copied from an example, not generated.
KEY_PLACEHOLDERS = (
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "replaceme",
    "placeholder",
    "your-secret",
    "your_secret",
    "dev-secret",
    "dev-id-hash-key",
    "insecure",
    "notsecret",
    "not-secret",
)


def weak_key_reason(key: str) -> str | None:
    """Why `key` is too weak for production (too short, a placeholder, one character,
    a short repeating pattern, a run of neighbouring characters), or None.

    Not a measure of true randomness (nothing can tell that from one string): it refuses
    what people type instead of generating a key. A key from `openssl rand -hex 32` or
    `secrets.token_hex(32)` always passes.
    """
    if len(key) < 16:
        return f"has {len(key)} characters"
    lowered = key.lower()
    for placeholder in KEY_PLACEHOLDERS:
        if placeholder in lowered:
            return f"contains the placeholder {placeholder!r}"
    if len(set(key)) == 1:
        return "is one character repeated"
    # The shortest period: "abcabcabc..." repeats "abc". A random key of 16+ characters
    # never repeats within its first half.
    for period in range(1, len(key) // 2 + 1):
        if all(key[i] == key[i % period] for i in range(len(key))):
            return f"repeats a pattern of {period} characters"
    if len(set(key)) < 5:
        return f"uses only {len(set(key))} different characters"
    # Neighbouring characters (same, next or previous code point): "0123456789abcdef",
    # "aaaabbbb", "zyxw...". In random hex about one step in five is one, so three in
    # four is never chance.
    steps = [abs(ord(b) - ord(a)) <= 1 for a, b in zip(key, key[1:], strict=False)]
    if sum(steps) * 4 >= len(steps) * 3:
        return "is mostly a run of neighbouring characters"
    return None


def _validate_attachments(v: dict[str, Any]) -> None:
    """The attachment settings: a known storage, positive sizes, chunks under the body."""
    if v["ATTACHMENTS_STORAGE"] not in ("local", "s3"):
        raise SettingsError(
            f"ATTACHMENTS_STORAGE={v['ATTACHMENTS_STORAGE']!r}: expected local or s3"
        )
    for name in (
        "UPLOAD_MAX_BYTES",
        "UPLOAD_CHUNK_MAX",
        "UPLOAD_EXPIRE_HOURS",
        "ATTACHMENT_MAX_PIXELS",
        "ATTACHMENT_FULL_MAX_PX",
        "ATTACHMENT_THUMB_PX",
        "ATTACHMENT_FAR_METERS",
        "ATTACHMENT_LATE_HOURS",
        "ATTACHMENT_RETENTION_DAYS",
    ):
        if v[name] < 1:
            raise SettingsError(f"{name}={v[name]}: must be at least 1")
    if v["UPLOAD_CHUNK_MAX"] > v["SYNC_MAX_BODY"]:
        raise SettingsError("UPLOAD_CHUNK_MAX: must not exceed SYNC_MAX_BODY")
    if v["ATTACHMENTS_STORAGE"] == "s3" and not v["S3_BUCKET"]:
        raise SettingsError("S3_BUCKET: the s3 attachment storage needs a bucket")


def validate(settings: Settings) -> None:
    """Refuse settings that would run unsafely or not at all; say which and why."""
    v = settings.values
    if v["FIELDVISIT_ENV"] not in ("development", "production"):
        raise SettingsError(
            f"FIELDVISIT_ENV={v['FIELDVISIT_ENV']!r}: expected development or production"
        )
    if v["SMTP_SECURITY"] not in ("starttls", "tls", "none"):
        raise SettingsError(f"SMTP_SECURITY={v['SMTP_SECURITY']!r}: expected starttls, tls or none")
    if not 0 < v["DEDUP_REVIEW_THRESHOLD"] <= v["DEDUP_AUTO_THRESHOLD"] <= 1:
        raise SettingsError(
            "DEDUP_REVIEW_THRESHOLD and DEDUP_AUTO_THRESHOLD: need 0 < review <= auto <= 1"
        )
    for name in ("CAMPAIGN_START", "CAMPAIGN_END", "DATE_MIN"):
        try:
            date.fromisoformat(v[name])
        except ValueError:
            raise SettingsError(f"{name}={v[name]!r}: expected YYYY-MM-DD") from None
    if date.fromisoformat(v["CAMPAIGN_END"]) < date.fromisoformat(v["CAMPAIGN_START"]):
        raise SettingsError("CAMPAIGN_END: must not be before CAMPAIGN_START")
    for name in (
        "DASHBOARD_CACHE_BYTES",
        "EXPORT_MAX_ROWS",
        "HOME_VISIT_RETENTION_DAYS",
        "SIGNIN_MAX_FAILURES",
        "SIGNIN_MAX_FAILURES_PER_ADDRESS",
        "SIGNIN_WINDOW_SECONDS",
        "SIGNIN_MAX_CONCURRENT_HASHES",
        "SYNC_MAX_BATCH",
        "SYNC_MAX_BODY",
        "SYNC_PULL_MAX",
        "API_PAGE_MAX",
        "TOKEN_TTL_DAYS",
        "SYNC_MIN_PROTOCOL",
        "BRIEFING_STALE_SECONDS",
        "BRIEFING_RETRY_SECONDS",
        "BRIEFING_GIVE_UP_HOURS",
        "DEADLINE_NEAR_DAYS",
        "REMINDER_INTERVAL_SECONDS",
        "STATUS_LOOKUPS_PER_WINDOW",
        "STATUS_LOOKUP_WINDOW_SECONDS",
        "DATE_MAX_DAYS_AHEAD",
        "SYNC_DATE_DAYS_AHEAD",
        "SYNC_DATE_DAYS_BEFORE_CAMPAIGN",
        "OUTBOX_MAX_ATTEMPTS",
        "OUTBOX_RETRY_SECONDS",
        "SYNC_SILENT_DAYS",
        "DEDUP_VISIT_WINDOW_MINUTES",
    ):
        if v[name] < 1:
            raise SettingsError(f"{name}={v[name]}: must be at least 1")
    if not 0 <= v["DUPLICATE_VISIT_DAYS"] <= 366:
        raise SettingsError("DUPLICATE_VISIT_DAYS: need 0 to 366 days")
    if not 0 <= v["SYNC_PULL_WINDOW_DAYS"] <= 36600:
        raise SettingsError(
            f"SYNC_PULL_WINDOW_DAYS={v['SYNC_PULL_WINDOW_DAYS']}: need 0 (no window) to 36600 days"
        )
    if not 0 < v["DEADLINE_BEHIND_SHARE"] <= 1:
        raise SettingsError("DEADLINE_BEHIND_SHARE: need 0 < share <= 1")
    from server.deadlines import DeadlineRules, DeadlineSettingsError

    try:
        DeadlineRules.from_settings(settings)
    except DeadlineSettingsError as exc:
        raise SettingsError(str(exc)) from None
    from server.plausibility import Limits, PlausibilitySettingsError

    try:
        Limits.from_settings(settings)
    except PlausibilitySettingsError as exc:
        raise SettingsError(str(exc)) from None
    _validate_attachments(v)
    if settings.is_production:
        for name in KEY_SETTINGS:
            why = weak_key_reason(v[name])
            if why:
                raise SettingsError(
                    f"{name}: production needs a random key of 16+ characters "
                    f"(openssl rand -hex 32); this one {why}"
                )
        if v["SECRET_KEY"] == v["ID_HASH_KEY"]:
            raise SettingsError(
                "SECRET_KEY: must differ from ID_HASH_KEY (one key must not both sign "
                "sessions and hash ID numbers)"
            )
        if v["DEBUG"]:
            raise SettingsError("DEBUG: production refuses debug mode")
        if settings.database_url.startswith("sqlite") and not v["ALLOW_SQLITE_IN_PRODUCTION"]:
            raise SettingsError(
                "DATABASE_URL: production refuses SQLite unless ALLOW_SQLITE_IN_PRODUCTION=true"
            )


def settings_markdown() -> str:
    """docs/settings.md, generated from SETTINGS."""
    lines = [
        "# Settings",
        "",
        "Every setting is an environment variable (generated from `config/settings.py`;",
        "`tests/deploy/test_settings.py` checks this page against the code). Secrets come only",
        "from the environment.",
        "",
        "| Variable | Default | Meaning |",
        "|---|---|---|",
    ]
    for s in SETTINGS:
        default = s.default
        if s.name == "DATA_DIR":
            default = "./instance"
        text = str(default).lower() if s.kind is bool else default
        shown = "(empty)" if default == "" else f"`{text}`"
        lines.append(f"| `{s.name}` | {shown} | {s.doc} |")
    return "\n".join(lines) + "\n"
