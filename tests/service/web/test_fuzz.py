"""Fuzzing the whole HTTP surface from its OpenAPI document (issue 24), with schemathesis.

The real service runs on 127.0.0.1 on the test database (``tests/support/live_service.py``);
for each role — anonymous, a viewer (a real account and API token), the administrator
(``DECROCHE_ADMIN_TOKEN``) — every operation of ``service/web/openapi.json`` is sent
inputs generated from its schema, valid and invalid (schemathesis' positive and negative
modes). Each answer must not be a 5xx, and must conform to the document: its status
documented, its content type and body those documented for that status.

Bounded for CI: ``DECROCHE_FUZZ_EXAMPLES`` examples per operation and mode (default 3,
seeded, so a run repeats), and ``DECROCHE_FUZZ_EXAMPLES=500`` for a long, random run. Every
failure is listed (method, path, the request, the status, and for a 500 the line that
raised it) before the test fails; ``DECROCHE_FUZZ_REPORT=file.json`` also writes them there.

Left out: the wall's stream (it never ends), and the webhooks except anonymously — they are
authenticated by signatures the fuzzer cannot make, so the check is that an unsigned body
is refused without a 5xx.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.accounts.model import Role
from service.settings import Settings
from service.web.openapi import DOCUMENT
from tests.conftest import ADMIN_TOKEN
from tests.support.live_service import LiveService

EXAMPLES = int(os.environ.get("DECROCHE_FUZZ_EXAMPLES", "3"))
LONG_RUN = "DECROCHE_FUZZ_EXAMPLES" in os.environ
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
NEVER = {("GET", "/api/v1/wall/stream")}  # server-sent events: the answer never ends
TIMEOUT_S = 30


@dataclass
class Found:
    """What one role's run met."""

    requests: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    seen: set[tuple[str, str, str, int]] = field(default_factory=set)


def _fuzzed(role: str, method: str, path: str) -> bool:
    if (method, path) in NEVER:
        return False
    return not path.startswith("/webhooks/") or role == "anonymous"


def _record(
    found: Found, service: LiveService, case: Any, response: requests.Response, exc: BaseException
) -> None:
    titles = (
        sorted({f.title for f in exc.exceptions}) if isinstance(exc, FailureGroup) else [repr(exc)]
    )
    key = (case.method, case.path, "; ".join(titles), response.status_code)
    if key in found.seen:  # one example of each kind of failure per operation and status
        return
    found.seen.add(key)
    rid = response.headers.get("X-Request-Id", "")
    found.failures.append(
        {
            "method": case.method,
            "path": case.path,
            "url": response.request.url,
            "status": response.status_code,
            "problems": titles,
            "request_body": _shown(response.request.body),
            "response_body": response.text[:300],
            "raised": service.tracebacks.frames.get(rid),
            "curl": case.as_curl_command(headers=dict(response.request.headers)),
        }
    )


def _shown(body: object) -> str | None:
    if body is None:
        return None
    text = body.decode("utf-8", "backslashreplace") if isinstance(body, bytes) else str(body)
    return text[:300]


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    service: LiveService,
    headers: Callable[[], dict[str, str]],
    found: Found,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode)
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG_RUN,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(strategy)
        sent = headers()
        found.requests += 1
        try:
            response = case.call(
                base_url=service.url,
                session=session,
                headers=sent,
                timeout=TIMEOUT_S,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            found.failures.append(
                {"method": case.method, "path": case.path, "problems": [repr(exc)]}
            )
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=sent)
        except (FailureGroup, AssertionError) as exc:
            _record(found, service, case, response, exc)

    try:
        run()
    except Unsatisfiable:  # negative mode: nothing in this operation can be made invalid
        pass
    finally:
        session.close()


def _credentials(service: LiveService, role: str) -> Callable[[], dict[str, str]]:
    if role == "anonymous":
        return dict
    if role == "admin":
        return lambda: {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    # A fresh token per operation: the run may revoke its own (DELETE /api/v1/tokens/{id}).
    current: dict[str, str] = {}

    def viewer() -> dict[str, str]:
        return dict(current)

    def renew() -> None:
        token = service.user_token("fuzz-viewer@ville.test", Role.VIEWER)
        current["Authorization"] = f"Bearer {token}"

    viewer.renew = renew  # type: ignore[attr-defined]
    return viewer


def _report(role: str, found: Found, elapsed: float) -> str:
    lines = [f"{role}: {found.requests} requests in {elapsed:.1f} s, {len(found.failures)} found"]
    for f in found.failures:
        lines.append(
            f"- {f['method']} {f['path']} → {f.get('status')}: {'; '.join(f['problems'])}"
            f"\n    {f.get('url')} body={f.get('request_body')!r}"
            + (f"\n    raised: {f['raised']}" if f.get("raised") else "")
        )
    return "\n".join(lines)


@pytest.mark.parametrize("role", ["anonymous", "viewer", "admin"])
def test_no_input_gets_a_5xx_or_an_answer_off_its_schema(
    role: str, db: Any, settings: Settings, tmp_path: Path
) -> None:
    schema = schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text("utf-8")))
    found = Found()
    started = time.monotonic()
    with LiveService(settings) as service:
        headers = _credentials(service, role)
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            if not _fuzzed(role, operation.method.upper(), operation.path):
                continue
            renew = getattr(headers, "renew", None)
            if renew is not None:
                renew()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz_operation(operation, mode, service, headers, found)
    elapsed = time.monotonic() - started
    summary = _report(role, found, elapsed)
    print(summary)
    report = os.environ.get("DECROCHE_FUZZ_REPORT")
    if report:
        path = Path(f"{report}.{role}.json")
        payload = {"role": role, "requests": found.requests, "seconds": round(elapsed, 1)}
        path.write_text(json.dumps({**payload, "failures": found.failures}, indent=1))
    assert not found.failures, summary
