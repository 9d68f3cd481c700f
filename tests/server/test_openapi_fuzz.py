"""schemathesis against the served OpenAPI document, in process (WSGI), as a few roles.

Every documented operation gets generated requests (positive and negative data, bounded
per operation); none may answer 5xx and every answer must match its documented schema.
POST /api/sync/push is left to its own hypothesis test (tests/sync), sign-out and device
revocation would end the fuzzing session's own token.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.conftest import Phone, create_user  # noqa: E402

SKIP = {
    ("POST", "/api/sync/push"),
    ("POST", "/api/auth/logout"),
    ("POST", "/api/admin/devices/{device_id}/revoke"),
}
EXAMPLES = 15
ROLES = {"city_coordinator": None, "district_head": "510104", "supervisor": None}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", list(ROLES))
def test_openapi_fuzz(app, client, role):
    create_user("fuzz", role, ROLES[role])
    phone = Phone(client, "fuzz")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    sent, errors = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):  # noqa: ANN001, ANN202
                nonlocal sent
                response = case.call(headers={**phone.headers, "Accept-Encoding": "identity"})
                sent += 1
                try:
                    case.validate_response(
                        response, checks=[not_a_server_error, response_schema_conformance]
                    )
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected
                    errors.append(
                        f"{case.method} {case.formatted_path} {case.query} "
                        f"{response.status_code}: {str(exc)[:300]}"
                    )

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE
    print(f"schemathesis: {sent} requests as {role}, {len(errors)} failures")
    assert not errors, "\n".join(errors[:30])
