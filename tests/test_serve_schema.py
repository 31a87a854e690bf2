"""``/openapi.json`` fuzzed with schemathesis against a running server: whatever a client sends, no answer is a 5xx
and none breaks the schema it documents (statuses, content types, bodies)."""

from __future__ import annotations

import pytest

from shared.formats import rundir
from tests.support.helpers import default_run

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The torch backend's export served from its ONNX file: the routes are the same code for both frameworks."""
    import cnnlab_torch
    from cnnlab_torch.backend import BACKEND

    run_dir = default_run(BACKEND, tmp_path_factory.mktemp("schema") / "run", epochs=1)
    with cnnlab_torch.serve(run_dir / rundir.ONNX, max_batch=4) as server:
        yield server


def test_no_request_gets_a_5xx_or_breaks_the_schema(served):
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    from schemathesis import checks as known

    checks = [known.not_a_server_error, known.status_code_conformance, known.content_type_conformance,
              known.response_schema_conformance]
    failures = []
    for operation in schema.get_all_operations():
        operation = operation.ok()

        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case):
            case.call_and_validate(checks=checks)

        try:
            fuzz()
        except Exception as error:  # noqa: BLE001 - every operation is fuzzed; all failures are reported together
            failures.append(f"{operation.label}: {str(error)[:600]}")
    assert failures == []
