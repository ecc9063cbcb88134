"""Property-based API fuzzing with schemathesis: every operation of the app's
own OpenAPI document, generated requests (valid and invalid), on a real Redis
database. No 5xx, every answer matches its declared status and schema.

Bounded: ``MAX_EXAMPLES`` cases per operation, no shrinking deadline surprises
(``deadline=None``), and the JS limits are small so simulate/transformation
cases stay fast.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from streamsink.api.app import create_app
from streamsink.settings import Settings

TOKEN = "fuzz-token"
MAX_EXAMPLES = 20  # x 35 operations: about 650 cases, ~20 s
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


@pytest.fixture(scope="module")
def fuzz_app(redis_server: str) -> Iterator[object]:
    url = f"{redis_server}?db=0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings_ = Settings(
        auth_token=TOKEN, redis_url=url, js_timeout_ms=200, js_memory_mb=32, max_body_bytes=65536
    )
    app = create_app(settings_, client)
    app.state.on_append = None  # nothing to deliver: no workers here
    app.state.on_sink_change = None
    yield app
    client.flushdb()
    client.close()


def test_api_fuzz(fuzz_app: object) -> None:
    """Each operation in turn (its own hypothesis run); failures are collected
    so one run reports every operation that misbehaves."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    failures: list[str] = []
    operations = 0
    statuses: collections.Counter[int] = collections.Counter()
    for item in schema.get_all_operations():
        operation = item.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
            response = case.call_and_validate(checks=CHECKS)
            statuses[response.status_code] += 1

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    print(f"{operations} operations, {sum(statuses.values())} cases, statuses {dict(statuses)}")
    assert operations >= 30 and sum(statuses.values()) >= 200
    assert not failures, "\n\n".join(failures)
