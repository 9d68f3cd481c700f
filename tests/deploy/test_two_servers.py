"""Two web servers on one database (issue 15, item 5).

Two `fieldvisit serve` processes (as two hosts behind a proxy would run them) on one
PostgreSQL and one Redis, with one Celery worker. Each device sends its batches to the
servers in turn, and every batch is also sent a second time, at the same moment, to the
other server (a phone whose request timed out and was retried through another host).
Afterwards: every mutation applied exactly once, each device's counter at its last
mutation, versions strictly ordered with no two transactions sharing one, a pull that
hops between the servers page by page sees every record once, and the duplicate
enterprise two cadres recorded on different servers is merged once.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from tests.conftest import visit_fields
from tests.deploy.conftest import BIN, PROD_SECRETS, clean_env, free_port, wait_for, wait_http
from tests.worker.test_merge_flow import valid_uscc

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]

PASSWORD = "two-servers-123"
DEVICES = 6
BATCHES = 5
VISITS_PER_BATCH = 8  # each with 2 problems: 24 mutations a batch


def call(base: str, path: str, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base + path, data=data, method="POST" if data else "GET", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def device_batches(device: int, shared_code: str, shared_id: str) -> list[list[dict]]:
    """The device's mutations in batches; device 0 and 1 both record the shared firm."""
    mutations: list[dict] = []

    def add(entity: str, record_id: str, fields: dict) -> None:
        mutations.append(
            {
                "mid": len(mutations) + 1,
                "op": "create",
                "entity": entity,
                "id": record_id,
                "fields": fields,
            }
        )

    if device in (0, 1):
        name = "成都市华茂机械有限公司" if device == 0 else "华茂机械（成都）有限责任公司"
        add(
            "enterprise",
            shared_id if device == 0 else str(uuid.uuid4()),
            {"name": name, "district_code": "510104", "uscc": shared_code},
        )
    for n in range(BATCHES * VISITS_PER_BATCH):
        vid = str(uuid.uuid4())
        add("visit", vid, visit_fields(workers_met=3 + n % 20, notes=f"设备{device}第{n}次"))
        for k in range(2):
            add(
                "problem",
                str(uuid.uuid4()),
                {
                    "visit_id": vid,
                    "category": ["wages", "housing"][k],
                    "tag": "urgent",
                    "description": "职工反映的问题",
                },
            )
    size = len(mutations) // BATCHES + 1
    return [mutations[i : i + size] for i in range(0, len(mutations), size)]


def test_two_servers_one_database(tmp_path, spawn, fresh_pg_url, redis_url) -> None:
    env = clean_env(
        FIELDVISIT_ENV="production",
        DATABASE_URL=fresh_pg_url,
        REDIS_URL=redis_url,
        DATA_DIR=str(tmp_path),
        LOG_JSON="true",
        LOG_LEVEL="WARNING",
        HOSTNAME=socket.gethostname(),
        **PROD_SECRETS,
    )

    def fieldvisit(*args: str, **extra: str) -> None:
        done = subprocess.run(
            [str(BIN / "fieldvisit"), *args],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    fieldvisit("init-db")
    ports = [free_port(), free_port()]
    servers = [
        spawn(
            [str(BIN / "fieldvisit"), "serve", "--host", "127.0.0.1", "--port", str(port)]
            + ["--workers", "1", "--threads", "4"],
            env,
            cwd=tmp_path,
        )
        for port in ports
    ]
    worker = spawn(
        [str(BIN / "celery"), "-A", "worker.celery_app", "worker", "--concurrency", "2"]
        + ["--loglevel", "WARNING"],
        env,
        cwd=tmp_path,
    )
    for i in range(DEVICES):
        fieldvisit(
            "create-user",
            f"cadre{i}",
            "--role",
            "field_cadre",
            "--district",
            "510104",
            "--work-group",
            f"WG0{i % 3 + 1}",
            FIELDVISIT_NEW_PASSWORD=PASSWORD,
        )
    fieldvisit("create-user", "head", "--role", "district_head", "--district", "510104",
               FIELDVISIT_NEW_PASSWORD=PASSWORD)  # fmt: skip
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    for base, proc in zip(bases, servers, strict=True):
        wait_http(f"{base}/healthz", proc, timeout=40)

    shared_code, shared_id = valid_uscc("91510100MA6HM0001"), str(uuid.uuid4())
    devices = []
    for i in range(DEVICES):
        status, login = call(
            bases[i % 2], "/api/auth/login", {"username": f"cadre{i}", "password": PASSWORD}
        )
        assert status == 200, login
        devices.append(
            (login["token"], login["device_id"], device_batches(i, shared_code, shared_id))
        )

    def drive(device: tuple) -> list[tuple[str, str]]:
        token, device_id, batches = device
        seen: list[tuple[str, str]] = []
        with ThreadPoolExecutor(2) as pair:
            for k, batch in enumerate(batches):
                body = {"protocol": 1, "device_id": device_id, "mutations": batch}
                # the batch and its retry through the other host, at the same moment
                answers = list(
                    pair.map(
                        lambda base, body=body: call(base, "/api/sync/push", body, token),
                        [bases[k % 2], bases[(k + 1) % 2]],
                    )
                )
                for status, answer in answers:
                    assert status in (200, 409, 503), answer
                # Whatever each copy was told, the device resends until it is applied or
                # a duplicate: the end state must be the same.
                for _ in range(5):
                    status, answer = call(bases[(k + 1) % 2], "/api/sync/push", body, token)
                    if status == 200:
                        break
                assert status == 200, answer
                statuses = {r["status"] for r in answer["results"]}
                assert statuses <= {"applied", "duplicate"}, answer["results"][:3]
                for status, first in answers:
                    if status == 200:
                        seen += [(str(r["mid"]), r["status"]) for r in first["results"]]
        return seen

    with ThreadPoolExecutor(DEVICES) as pool:
        outcomes = list(pool.map(drive, devices))

    # both copies reached a server: besides "applied", copies were answered "duplicate"
    statuses = {status for seen in outcomes for _, status in seen}
    assert statuses == {"applied", "duplicate"}, statuses

    engine = sa.create_engine(fresh_pg_url)
    try:
        with engine.connect() as conn:
            expected = {
                "visits": DEVICES * BATCHES * VISITS_PER_BATCH,
                "problems": 2 * DEVICES * BATCHES * VISITS_PER_BATCH,
                "enterprises": 2,
            }
            for table, count in expected.items():
                assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == count
            # exactly once per mutation, whatever the two copies raced
            for (_, device_id, batches), seen in zip(devices, outcomes, strict=True):
                total = sum(len(b) for b in batches)
                last = conn.execute(
                    sa.text("SELECT last_mid FROM devices WHERE id = :d"), {"d": device_id}
                ).scalar()
                assert last == total
                applied = [mid for mid, status in seen if status == "applied"]
                assert len(applied) == len(set(applied)), "a mutation applied twice"
                results = conn.execute(
                    sa.text("SELECT count(*), count(DISTINCT mid) FROM mutation_results"
                            " WHERE device_id = :d"), {"d": device_id}
                ).one()  # fmt: skip
                assert tuple(results) == (total, total)
            # one version per transaction: no two devices' batches share a version
            rows = conn.execute(
                sa.text(
                    "SELECT v.version, count(DISTINCT mr.device_id) FROM visits v"
                    " JOIN mutation_results mr ON mr.record_id = v.id"
                    " GROUP BY v.version HAVING count(DISTINCT mr.device_id) > 1"
                )
            ).all()
            assert rows == []
    finally:
        engine.dispose()

    # a pull that hops between the servers page by page sees every record once
    status, login = call(bases[0], "/api/auth/login", {"username": "head", "password": PASSWORD})
    assert status == 200, login
    cursor, ids, page = None, [], 0
    while True:
        path = "/api/sync/pull?limit=97" + (f"&cursor={cursor}" if cursor else "")
        status, body = call(bases[page % 2], path, token=login["token"])
        assert status == 200, body
        ids += [(c["entity"], c["id"]) for c in body["changes"]]
        cursor, page = body["cursor"], page + 1
        if not body["has_more"]:
            break
    assert len(ids) == len(set(ids))
    assert sum(1 for e, _ in ids if e == "visit") == expected["visits"]
    assert sum(1 for e, _ in ids if e == "problem") == expected["problems"]

    # dedup ran once for the firm the two cadres recorded on different servers
    def merged() -> int | None:
        engine = sa.create_engine(fresh_pg_url)
        try:
            with engine.connect() as conn:
                pending = conn.execute(
                    sa.text("SELECT count(*) FROM outbox WHERE done_at IS NULL")
                ).scalar()
                links = conn.execute(sa.text("SELECT count(*) FROM merge_links")).scalar()
        finally:
            engine.dispose()
        return links if pending == 0 else None

    assert wait_for(merged, 60, "the worker to drain the outbox") == 1
    assert worker.alive(), worker.output()[-3000:]
    for proc in servers + [worker]:
        proc.popen.terminate()
    for proc in servers + [worker]:
        assert proc.popen.wait(timeout=30) == 0, proc.output()[-3000:]
