"""The real cloud client over an httpx transport: routes, idempotency key, retries, refusals."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from forecourt.blobs import RetryPolicy
from forecourt.edge.cloud_client import (
    AuthorisationRequest,
    CloudRefused,
    CloudUnreachable,
    HttpCloudClient,
    OutgoingEvent,
)
from forecourt.edge.outbox import ACTIVATION_COMPLETED, OFFLINE_PACKAGE_USED, WORKFLOW_STEP
from tests.edge.operators.conftest import FakeClock

REQUEST = AuthorisationRequest(
    request_id="req-1",
    vin="WVWZZZ1JZXW000001",
    dealer_id="dealer-a",
    operator_id="op-1",
    operator_role="technician",
    features=("nav",),
    inventory=(),
    nonce_hex="00" * 16,
    activation_counter=0,
    consent={},
)


def client(handler, attempts: int = 3) -> tuple[HttpCloudClient, list[float]]:  # type: ignore[no-untyped-def]
    sleeps: list[float] = []
    return HttpCloudClient(
        "https://cloud.test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.02),
        sleep=sleeps.append,
    ), sleeps


def test_authorise_posts_with_the_idempotency_key_and_reads_the_bundle() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201,
            json={
                "authorisation_id": "a-1",
                "bundle": base64.b64encode(b"signed").decode(),
                "packages": [
                    {
                        "name": "os",
                        "ecu_address": 4098,
                        "sha256": "a" * 64,
                        "size": 3,
                        "url": "https://cloud.test/v1/packages/" + "a" * 64,
                    }
                ],
            },
        )

    c, _ = client(handler)
    auth = c.authorise(REQUEST)
    assert auth.bundle == b"signed" and auth.packages[0].ecu_address == 0x1002
    assert seen[0].url.path == "/v1/activations"
    assert seen[0].headers["idempotency-key"] == "req-1"
    assert json.loads(seen[0].content)["operator"] == {
        "operator_id": "op-1",
        "role": "technician",
    }


def test_server_errors_are_retried_with_backoff_then_succeed() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503)
        return httpx.Response(200, json={"vin": "x", "dealer_id": "dealer-a", "activations": 2})

    c, sleeps = client(handler)
    assert c.assignment("WVWZZZ1JZXW000001").activations == 2
    assert len(sleeps) == 2


def test_transport_failures_after_all_attempts_raise_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    c, sleeps = client(handler)
    with pytest.raises(CloudUnreachable) as err:
        c.offline_packages("dealer-a")
    assert err.value.operation == "offline_packages" and len(sleeps) == 2


def test_problem_details_become_a_refusal_with_every_code_and_no_retry() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            403,
            headers={"content-type": "application/problem+json"},
            json={
                "type": "about:blank",
                "title": "refused",
                "detail": "2 reasons",
                "reasons": [{"code": "not_entitled"}, {"code": "hardware_missing"}],
            },
        )

    c, _ = client(handler)
    with pytest.raises(CloudRefused) as err:
        c.authorise(REQUEST)
    assert err.value.codes == ("not_entitled", "hardware_missing")
    assert err.value.status == 403 and len(calls) == 1


def test_events_go_as_one_cloudevents_batch_and_the_per_id_answer_is_read() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "accepted": ["e1", "e2", "not-sent"],
                "duplicates": ["e4"],
                "rejected": [{"id": "e3", "code": "activation_unknown", "detail": "gone"}],
                "double_uses": [{"package_id": "p-1", "vin": "V", "uses": 2}],
            },
        )

    c, _ = client(handler)
    now = FakeClock()()
    events = [
        OutgoingEvent("e1", ACTIVATION_COMPLETED, "V", now, {"authorisation_id": "req-9"}),
        OutgoingEvent("e2", OFFLINE_PACKAGE_USED, "V", now, {"package_id": "p-1"}),
        OutgoingEvent("e3", ACTIVATION_COMPLETED, "V", now, {"authorisation_id": "gone"}),
        OutgoingEvent("e4", WORKFLOW_STEP, "V", now, {}),
    ]
    outcome = c.push_events(events)
    assert outcome.accepted == ("e1", "e2")  # an id the edge did not send is ignored
    assert outcome.duplicates == ("e4",)
    assert outcome.rejected == (("e3", "activation_unknown"),)
    assert [(d.package_id, d.vin) for d in outcome.double_uses] == [("p-1", "V")]
    assert len(seen) == 1 and seen[0].url.path == "/v1/sync/events"
    assert seen[0].headers["content-type"] == "application/cloudevents-batch+json"
    batch = json.loads(seen[0].content)
    assert [e["id"] for e in batch] == ["e1", "e2", "e3", "e4"]
    assert {e["specversion"] for e in batch} == {"1.0"}


def test_a_malformed_sync_answer_is_a_refusal_and_marks_nothing() -> None:
    c, _ = client(lambda request: httpx.Response(200, json={"accepted": "e1"}))
    now = FakeClock()()
    with pytest.raises(CloudRefused) as err:
        c.push_events([OutgoingEvent("e1", WORKFLOW_STEP, "V", now, {})])
    assert err.value.codes == ("malformed_response",)


def test_package_urls_are_made_absolute_against_the_cloud() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            201,
            json={
                "request_id": "req-1",
                "bundle": base64.b64encode(b"signed").decode(),
                "packages": [
                    {"name": "os", "ecu_address": 4098, "sha256": "a" * 64, "size": 3,
                     "url": "/v1/packages/" + "a" * 64},
                ],
            },
        )  # fmt: skip

    c, _ = client(handler)
    assert c.authorise(REQUEST).packages[0].url == "https://cloud.test/v1/packages/" + "a" * 64
