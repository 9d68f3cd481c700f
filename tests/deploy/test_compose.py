"""docker-compose.yml, Dockerfile and .dockerignore, checked without a Docker engine.

The commands these files run are exercised for real, outside Docker, in
test_processes.py and test_embedded.py; here we check that the files say what the
deployment needs and name only settings and commands that exist.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml  # noqa: E402  (in the test extra: a missing test dependency fails, never skips)

from config.settings import SETTINGS
from tests.deploy.conftest import REPO

APP_SERVICES = ("migrate", "web", "worker", "beat")
ALL_SERVICES = {
    "web",
    "worker",
    "beat",
    "redis",
    "postgres",
    "mailpit",
    "minio",
    "migrate",
    "proxy",
}
SETTING_NAMES = {s.name for s in SETTINGS}
SECRET_SETTINGS = {"SECRET_KEY", "ID_HASH_KEY"}
# Variables the compose file itself reads that are not fieldvisit settings.
COMPOSE_ONLY = {
    "POSTGRES_PASSWORD",
    "WEB_WORKERS",
    "WORKER_CONCURRENCY",
    "FIELDVISIT_TAG",
    "HTTP_PORT",
    "HTTPS_PORT",
    "LOG_MAX_SIZE",
    "LOG_MAX_FILES",
    # the off-the-shelf images, a digest can be pinned from .env
    "POSTGRES_IMAGE",
    "REDIS_IMAGE",
    "MINIO_IMAGE",
    "MAILPIT_IMAGE",
    "CADDY_IMAGE",
}
# Settings the compose file fixes rather than reads: the volume's mount point.
FIXED = {"DATA_DIR": "/data"}
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?+][^}]*)?\}")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (REPO / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def command_of(service: dict) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def test_all_services_and_one_shot_migration(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == ALL_SERVICES
    assert command_of(services["migrate"]) == ["fieldvisit", "init-db"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_commands(compose: dict) -> None:
    services = compose["services"]
    web = command_of(services["web"])
    assert web[:2] == ["fieldvisit", "serve"]
    assert web[web.index("--host") + 1] == "0.0.0.0"
    assert web[web.index("--port") + 1] == "8000"
    assert "--workers" in web
    assert command_of(services["worker"])[:4] == ["celery", "-A", "worker.celery_app", "worker"]
    assert command_of(services["beat"])[:4] == ["celery", "-A", "worker.celery_app", "beat"]
    assert interpolate(services["mailpit"]["image"], {}).startswith("axllent/mailpit")


def test_exactly_one_beat_and_no_embedded_beat_elsewhere(compose: dict) -> None:
    services = compose["services"]
    beats = [
        name
        for name, svc in services.items()
        if "command" in svc and "beat" in command_of(svc)[3:5]
    ]
    assert beats == ["beat"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    # `worker --beat` (-B) would start a second scheduler with every worker replica
    worker = command_of(services["worker"])
    assert "--beat" not in worker and "-B" not in worker


def test_health_checks(compose: dict) -> None:
    services = compose["services"]

    def test_of(name: str) -> str:
        check = services[name]["healthcheck"]
        test = check["test"]
        return " ".join(test[1:]) if isinstance(test, list) else test

    assert "/readyz" in test_of("web") and ":8000" in test_of("web")
    assert "pg_isready" in test_of("postgres")
    assert "redis-cli ping" in test_of("redis")
    worker = test_of("worker")
    assert "celery -A worker.celery_app inspect ping -d celery@$$HOSTNAME" in worker
    for name in ("web", "worker", "postgres", "redis"):
        assert not services[name]["healthcheck"].get("disable"), name


def test_named_volumes_for_data(compose: dict) -> None:
    volumes = set(compose["volumes"])
    services = compose["services"]

    def mounts(name: str) -> dict[str, str]:
        return {m.split(":")[1]: m.split(":")[0] for m in services[name]["volumes"]}

    assert mounts("postgres")["/var/lib/postgresql/data"] in volumes
    assert mounts("redis")["/data"] in volumes
    for name in APP_SERVICES:
        assert mounts(name)["/data"] in volumes, name
    assert all(services[n]["environment"]["DATA_DIR"] == "/data" for n in APP_SERVICES)


def test_app_environment_names_only_settings(compose: dict) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        unknown = set(env) - SETTING_NAMES
        assert not unknown, f"{name}: not settings of config/settings.py: {unknown}"
    env = services["web"]["environment"]
    # every app service gets the same settings: one anchor, no drift
    assert all(services[n]["environment"] == env for n in APP_SERVICES)
    assert all(services[n]["env_file"] == ".env" for n in APP_SERVICES)


def test_every_interpolated_variable_is_known(compose_text: str) -> None:
    used = set(INTERPOLATION.findall(compose_text))
    assert used, "expected ${VAR} interpolation for the secrets"
    assert used <= SETTING_NAMES | COMPOSE_ONLY, used - SETTING_NAMES - COMPOSE_ONLY


def test_secrets_come_only_from_the_environment(compose: dict, compose_text: str) -> None:
    env = compose["services"]["web"]["environment"]
    for name in SECRET_SETTINGS:
        # `${VAR:?message}`: compose refuses to start while the secret is unset or empty
        assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", env[name]), env[name]
    assert re.search(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres", env["DATABASE_URL"])
    assert re.fullmatch(
        r"\$\{POSTGRES_PASSWORD:\?[^}]+\}",
        compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"],
    )
    # no default (`:-`) for a key or a password anywhere in the file
    for name in (
        "SECRET_KEY",
        "ID_HASH_KEY",
        "POSTGRES_PASSWORD",
        "SMTP_PASSWORD",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
    ):
        assert not re.search(r"\$\{" + name + r":?-", compose_text), name
    # the URLs' defaults hold no password of their own: only the required variable
    for name in ("DATABASE_URL", "REDIS_URL"):
        default = interpolate(env[name], {"POSTGRES_PASSWORD": "<pw>"})
        assert re.sub(r"//[^:/@]+:<pw>@", "//user@", default).count(":") <= 2, default
        assert "@" not in default or ":<pw>@" in default, default
    # the example .env ships the names without values
    example = (REPO / ".env.example").read_text()
    for name in SECRET_SETTINGS | {"POSTGRES_PASSWORD", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"}:
        assert re.search(rf"^{name}=$", example, re.M), name
    # MinIO's root account is the app's S3 account: one pair of secrets, both required
    minio = compose["services"]["minio"]["environment"]
    assert re.fullmatch(r"\$\{S3_ACCESS_KEY_ID:\?[^}]+\}", minio["MINIO_ROOT_USER"])
    assert re.fullmatch(r"\$\{S3_SECRET_ACCESS_KEY:\?[^}]+\}", minio["MINIO_ROOT_PASSWORD"])


def test_dockerfile(dockerfile: list[tuple[str, str]]) -> None:
    by = {}
    for word, rest in dockerfile:
        by.setdefault(word, []).append(rest)
    (base,) = by["FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base  # a release, pinned
    runs = " ".join(by["RUN"])
    assert "fonts-" not in runs  # see test_no_font_needed_in_the_image
    assert re.search(r"pip install (--no-deps )?\.", runs)
    assert "useradd" in runs
    users = by["USER"]
    assert len(users) == 1 and users[0].split(":")[0] not in ("root", "0")
    # USER comes before the commands the container runs
    words = [w for w, _ in dockerfile]
    assert words.index("USER") < words.index("CMD")
    assert "HEALTHCHECK" in by and "/readyz" in by["HEALTHCHECK"][0]
    envs = " ".join(by["ENV"])
    assert "PYTHONPATH=/app" in envs  # pwa/ and migrations/ are found next to the code


# Libraries that draw text into images or PDFs on the server: with any of them, Chinese
# text needs a CJK font in the image (fonts-noto-cjk, about 90 MB) or becomes boxes.
RENDERING = re.compile(
    r"^\s*(?:import|from)\s+(PIL|matplotlib|reportlab|weasyprint|cairosvg|cairo|fpdf|"
    r"pygal|plotly|kaleido|svglib|xhtml2pdf|pdfkit|imgkit)\b",
    re.M,
)


def test_no_font_needed_in_the_image() -> None:
    """The image ships no fonts because the code renders nothing that needs one.

    Charts are inline SVG and briefings are HTML mail, both drawn by the reader's browser
    or mail app with its own fonts; XLSX files name a font without embedding it.
    """
    users = {}
    for folder in ("server", "sync", "worker", "config"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            found = RENDERING.findall(text)
            if found == ["PIL"] * len(found) and not re.search(r"ImageFont|ImageDraw", text):
                continue  # Pillow decoding and resizing photos draws no text
            if found:
                users[str(path.relative_to(REPO))] = found
    assert not users, f"server-side rendering: add fonts-noto-cjk to the Dockerfile: {users}"


def test_dockerfile_commands_exist(dockerfile: list[tuple[str, str]]) -> None:
    import json

    from server.cli import main

    cmd = json.loads(dict(dockerfile)["CMD"])
    assert cmd[:2] == ["fieldvisit", "serve"]
    assert "serve" in main.commands and "init-db" in main.commands
    serve_options = {opt for p in main.commands["serve"].params for opt in p.opts}
    assert {o for o in cmd if o.startswith("--")} <= serve_options
    entry = json.loads(dict(dockerfile)["ENTRYPOINT"])
    assert entry == ["tini", "--"]
    assert "tini" in " ".join(r for w, r in dockerfile if w == "RUN")


def test_compose_commands_use_existing_cli_options(compose: dict) -> None:
    from server.cli import main

    for name in ("web", "migrate"):
        cmd = command_of(compose["services"][name])
        sub = main.commands[cmd[1]]
        options = {opt for p in sub.params for opt in p.opts}
        assert {o for o in cmd[2:] if o.startswith("--")} <= options, name


def test_dockerignore_keeps_what_the_image_needs() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in ("pwa", "migrations", "server", "sync", "worker", "config", "pyproject.toml"):
        assert needed not in ignored and f"{needed}/" not in ignored
    for secret_or_bulk in (".env", ".git", ".venv", "instance"):
        assert secret_or_bulk in ignored
    assert Path(REPO / "pwa" / "index.html").exists()


class Missing(Exception):
    """A `${VAR:?message}` whose variable is unset or empty: compose refuses to start."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one value: ${VAR}, ${VAR:-default}, ${VAR:?err}, nesting."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 0, i
            while True:
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                if text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            name, op, arg = re.fullmatch(
                r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", text[i + 2 : j], re.S
            ).groups()
            value = env.get(name)
            if op in (":-", "-"):
                given = value if op == "-" else value or None
                out.append(given if given is not None else interpolate(arg, env))
            elif op in (":?", "?"):
                if value is None or (op == ":?" and value == ""):
                    raise Missing(f"{name}: {arg}")
                out.append(value)
            else:
                out.append(value or "")
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def container_env(service: dict, dotenv: dict[str, str]) -> dict[str, str]:
    """What the app sees: the env_file's lines, then `environment:` interpolated over them."""
    env = dict(dotenv) if service.get("env_file") == ".env" else {}
    env.update({k: interpolate(str(v), dotenv) for k, v in service["environment"].items()})
    return env


MINIMAL_DOTENV = {
    # as `openssl rand -hex 16` makes them (a sequence like 0123...cdef is refused)
    "SECRET_KEY": "9c41e07b5fd2a8306e1b7d94c2f0a5e3",
    "ID_HASH_KEY": "3b8e5f1ad07c92e46a0f3d1c8b75e290",
    "POSTGRES_PASSWORD": "pgpass0123",
    "S3_ACCESS_KEY_ID": "fieldvisit-minio",
    "S3_SECRET_ACCESS_KEY": "minio-secret-0123",
    "PUBLIC_URL": "https://fieldvisit.example.org",
}


def test_every_setting_is_reachable_from_dotenv(compose: dict) -> None:
    """A line in .env for any setting of config/settings.py reaches every app container."""
    dotenv = {**MINIMAL_DOTENV, **{s.name: f"from-dotenv-{s.name.lower()}" for s in SETTINGS}}
    for name in APP_SERVICES:
        env = container_env(compose["services"][name], dotenv)
        unreachable = {
            s.name: env.get(s.name)
            for s in SETTINGS
            if s.name not in FIXED and env.get(s.name) != dotenv[s.name]
        }
        assert not unreachable, f"{name}: .env does not reach {unreachable}"
        assert {k: env[k] for k in FIXED} == FIXED


def test_the_compose_defaults_are_a_valid_production_configuration(compose: dict) -> None:
    """Only the secrets and PUBLIC_URL in .env: the settings the app then loads."""
    from config.settings import load_settings

    env = container_env(compose["services"]["web"], MINIMAL_DOTENV)
    settings = load_settings(env)
    assert settings.is_production
    assert (
        settings.DATABASE_URL
        == "postgresql+psycopg://fieldvisit:pgpass0123@postgres:5432/fieldvisit"
    )
    assert settings.REDIS_URL == "redis://redis:6379/0"
    assert (settings.SMTP_HOST, settings.SMTP_PORT, settings.SMTP_SECURITY) == (
        "mailpit",
        1025,
        "none",
    )
    assert settings.PUBLIC_URL == "https://fieldvisit.example.org"
    assert (settings.ATTACHMENTS_STORAGE, settings.S3_ENDPOINT_URL) == ("s3", "http://minio:9000")
    assert (settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY) == (
        "fieldvisit-minio",
        "minio-secret-0123",
    )
    # and a deployer's relay replaces the mail catcher without editing the compose file
    relay = {"SMTP_HOST": "smtp.example.org", "SMTP_PORT": "465", "SMTP_SECURITY": "tls"}
    relay |= {"SMTP_USER": "fv", "SMTP_PASSWORD": "relay-secret"}
    settings = load_settings(container_env(compose["services"]["worker"], MINIMAL_DOTENV | relay))
    assert (settings.SMTP_HOST, settings.SMTP_PORT, settings.SMTP_SECURITY) == (
        "smtp.example.org",
        465,
        "tls",
    )
    assert (settings.SMTP_USER, settings.SMTP_PASSWORD) == ("fv", "relay-secret")


@pytest.mark.parametrize("secret", sorted(MINIMAL_DOTENV))
def test_compose_refuses_to_start_without_a_secret_or_the_public_url(
    compose: dict, secret: str
) -> None:
    dotenv = {k: v for k, v in MINIMAL_DOTENV.items() if k != secret}
    with pytest.raises(Missing, match=secret):
        container_env(compose["services"]["web"], dotenv)


def test_images_are_pinned_releases(compose: dict) -> None:
    for name, service in compose["services"].items():
        image = interpolate(service["image"], {})
        repo, _, tag = image.rpartition(":")
        assert repo and tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
        if name not in APP_SERVICES:  # off-the-shelf images: a numbered release
            # (MinIO names its releases by date: RELEASE.2024-10-13T13-34-11Z)
            assert re.match(r"v?\d+\.\d+(\.\d+)?(-|$)", tag) or re.fullmatch(
                r"RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", tag
            ), f"{name}: {image} is not a release"


def test_images_can_be_pinned_by_digest_from_dotenv(compose: dict) -> None:
    """Each off-the-shelf image is `${NAME_IMAGE:-release}`: a deployer pins the digest
    they pulled (docs/deploy.md) with a line in .env, never an edit of the compose file."""
    pinned = "postgres:16.4-bookworm@sha256:" + "0" * 64
    for name, service in compose["services"].items():
        if name in APP_SERVICES:
            continue
        var = re.fullmatch(r"\$\{([A-Z_]+_IMAGE):-[^}]+\}", service["image"])
        assert var, f"{name}: {service['image']} cannot be set from .env"
        assert interpolate(service["image"], {var.group(1): pinned}) == pinned
        assert var.group(1) in (REPO / ".env.example").read_text(encoding="utf-8"), var.group(1)


def test_every_service_rotates_its_log(compose: dict) -> None:
    for name, service in compose["services"].items():
        logging = service.get("logging")
        assert logging and logging["driver"] == "json-file", name
        options = {k: interpolate(str(v), {}) for k, v in logging["options"].items()}
        assert re.fullmatch(r"\d+[kmg]", options["max-size"]), name
        assert int(options["max-file"]) >= 2, name


def test_web_scales_behind_the_proxy(compose: dict) -> None:
    services = compose["services"]
    # a fixed host port would make `--scale web=2` fail on the second container
    assert "ports" not in services["web"]
    assert all("ports" not in services[n] for n in APP_SERVICES)
    published = [interpolate(p, {}) for p in services["proxy"]["ports"]]
    assert "80:80" in published and "443:443" in published
    mounts = {m.split(":")[1]: m.split(":")[0] for m in services["proxy"]["volumes"]}
    caddyfile = (REPO / mounts["/etc/caddy/Caddyfile"]).read_text()
    site = [line for line in caddyfile.splitlines() if line and not line.startswith("#")][0]
    assert site == "{$PUBLIC_URL} {"  # the certificate is for PUBLIC_URL's host
    # every replica of `web` is an upstream: the service name looked up as A records
    assert re.search(r"dynamic a \{\s*name web\s*port 8000", caddyfile)
    assert "PUBLIC_URL" in services["proxy"]["environment"]
    assert "/data" in mounts  # the certificates survive a restart
    assert not services["proxy"]["healthcheck"].get("disable")
