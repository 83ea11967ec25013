"""Signed webhooks to partners, delivered to a real HTTP receiver on SQLite and PostgreSQL.

The cloud is served over real mutual TLS (subscriptions are managed by OEM staff through the
API); events come from the real services (entitlement grant and revocation, an activation
report); the dispatcher runs step by step on an injected clock, so backoff is crossed by moving
the clock, never by waiting.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from forecourt.cloud.app import create_app
from forecourt.cloud.catalog.service import change_state, grant
from forecourt.cloud.integrations.delivery import DeliveryPolicy, WebhookDispatcher
from forecourt.cloud.integrations.destinations import ALLOW_LOOPBACK_ENV, DestinationPolicy
from forecourt.cloud.integrations.routes import Integrations
from forecourt.cloud.integrations.sealing import SecretSealer
from forecourt.cloud.integrations.verify import WebhookVerificationError, verify
from forecourt.cloud.server import serve_in_thread
from forecourt.core import Entitlement, EntitlementSource, Vin
from forecourt.store.registry import AuditRow, OutboxEventRow, WebhookSecretRow
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld, build_world


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    """A partner's endpoint: records each request, answers from a script (then 200)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    always: int | None = None
    rendezvous: threading.Barrier | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            if self.always is not None:
                return self.always
            return self.script.pop(0) if self.script else 200

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with state.lock:
                state.requests.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, self.path)
                )
            if state.rendezvous is not None:
                state.rendezvous.wait(timeout=10)  # both workers are sending at the same time
            status = state.answer()
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("location", "/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


class Dns:
    """The resolver the cloud is given: names answer from a table (a list is a script, one
    answer per lookup, the last one repeated); unknown names do not resolve."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {"crm.example.com": ["93.184.215.14"]}
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[tuple[Any, Any, Any, Any, Any]]:
        self.lookups.append(host)
        script = self.answers.get(host)
        if not script:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = script.pop(0) if len(script) > 1 else script[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Bench:
    world: CloudWorld
    staff: httpx.Client
    sealer: SecretSealer
    clock: Clock
    dispatcher: WebhookDispatcher
    dns: Dns

    def subscribe(self, url: str, *types: str) -> dict[str, Any]:
        answer = self.staff.post(
            "/v1/integrations/webhooks",
            json={"url": url, "event_types": list(types or ["entitlement.granted"])},
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def grant(self, reference: str, feature: str = "HEATED_SEATS") -> int:
        return _grant(self.world, reference, feature)

    def dispatcher_with(self, policy: DeliveryPolicy) -> WebhookDispatcher:
        made = WebhookDispatcher(
            self.world.context.db,
            self.sealer,
            policy=policy,
            clock=self.clock,
            destinations=self.dispatcher.destinations,
        )
        return made


def _grant(world: CloudWorld, reference: str, feature: str = "HEATED_SEATS") -> int:
    """A purchase's entitlement for the first car, through the catalog service."""
    car = world.demo.vehicles[0]
    with world.context.db.transaction() as session:
        return grant(
            session,
            Entitlement(
                Vin.parse(str(car.vin), verify_check_digit=False),
                feature,
                EntitlementSource.PURCHASE,
                NOW,
                None,
            ),
            reference,
            NOW,
        )


@contextmanager
def _bench(world: CloudWorld, tmp_path: Path, *, allow_loopback: bool = True) -> Iterator[Bench]:
    """The cloud served over mutual TLS, its routes and the stepped dispatcher sharing one
    destination policy: loopback allowed (the receiver is local) unless told otherwise."""
    sealer = SecretSealer.with_key(os.urandom(32))
    clock = Clock(NOW)
    dns = Dns()
    destinations = DestinationPolicy(allow_loopback=allow_loopback, resolver=dns)
    dispatcher = WebhookDispatcher(world.context.db, sealer, clock=clock, destinations=destinations)
    dispatcher.run_once()  # the seeded world's own grants go out before any partner subscribes
    app = create_app(world.config, world.context, webhook_sealer=sealer)
    app.state.integrations = Integrations(sealer, dispatcher)
    with serve_in_thread(
        app, world.tls_files(tmp_path / "tls"), staff_without_certificate=True
    ) as url:
        clients = Clients(world, url, tmp_path / "clients")
        try:
            yield Bench(world, clients.staff(), sealer, clock, dispatcher, dns)
        finally:
            dispatcher.close()
            clients.close()


@pytest.fixture
def bench(world: CloudWorld, tmp_path: Path) -> Iterator[Bench]:
    with _bench(world, tmp_path) as made:
        yield made


def _verified(secret: str, request: Received, at: datetime) -> dict[str, Any]:
    verify(secret, request.headers, request.body, now=at.timestamp())
    return dict(json.loads(request.body))


def test_subscriber_receives_a_signed_entitlement_event(bench: Bench, receiver: Receiver) -> None:
    sub = bench.subscribe(receiver.url)
    entitlement_id = bench.grant("crm-1")
    report = bench.dispatcher.run_once()
    assert [a.outcome for a in report.attempts] == ["delivered"]
    [request] = receiver.requests
    event = _verified(sub["secret"], request, bench.clock.now)
    assert event["type"] == "entitlement.granted"
    assert event["data"]["entitlement_id"] == entitlement_id
    assert event["data"]["vin"] == str(bench.world.demo.vehicles[0].vin)
    assert event["data"]["feature_code"] == "HEATED_SEATS"
    assert request.headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):
        verify(sub["secret"], request.headers, request.body + b" ", now=bench.clock.now.timestamp())
    other = bench.subscribe(receiver.url)["secret"]
    with pytest.raises(WebhookVerificationError):
        verify(other, request.headers, request.body, now=bench.clock.now.timestamp())
    assert bench.dispatcher.run_once().attempts == []  # delivered once, not again


def test_revocation_is_published_as_entitlement_revoked(bench: Bench, receiver: Receiver) -> None:
    sub = bench.subscribe(receiver.url, "entitlement.revoked")
    entitlement_id = bench.grant("crm-2")
    with bench.world.context.db.transaction() as session:
        change_state(session, entitlement_id, "revoke", NOW)
    bench.dispatcher.run_once()
    [request] = receiver.requests  # the grant is not a type this subscriber asked for
    event = _verified(sub["secret"], request, bench.clock.now)
    assert event["type"] == "entitlement.revoked"
    assert event["data"]["state"] == "revoked"


def test_receiver_failing_then_answering_gets_the_same_webhook_id_twice(
    bench: Bench, receiver: Receiver
) -> None:
    sub = bench.subscribe(receiver.url)
    receiver.script = [500, 200]
    bench.grant("crm-3")
    assert [a.outcome for a in bench.dispatcher.run_once().attempts] == ["retry"]
    assert bench.dispatcher.run_once().attempts == []  # not due before its backoff
    bench.clock.now += bench.dispatcher.policy.first_retry
    assert [a.outcome for a in bench.dispatcher.run_once().attempts] == ["delivered"]
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    _verified(sub["secret"], second, bench.clock.now)


def test_after_max_attempts_the_delivery_is_dead_lettered_and_listed(
    bench: Bench, receiver: Receiver
) -> None:
    sub = bench.subscribe(receiver.url)
    receiver.always = 503
    bench.grant("crm-4")
    dispatcher = bench.dispatcher_with(DeliveryPolicy(max_attempts=3))
    outcomes = []
    for _ in range(4):
        outcomes += [a.outcome for a in dispatcher.run_once().attempts]
        bench.clock.now += timedelta(hours=7)  # past any backoff
    dispatcher.close()
    assert outcomes == ["retry", "retry", "dead"]
    assert len(receiver.requests) == 3
    listed = {s["id"]: s for s in bench.staff.get("/v1/integrations/webhooks").json()}
    assert listed[sub["id"]]["deliveries"]["dead"] == 1
    dead = bench.staff.get(f"/v1/integrations/webhooks/{sub['id']}/deliveries?status=dead")
    assert dead.status_code == 200, dead.text
    [letter] = dead.json()
    assert letter["webhook_id"] == receiver.requests[0].headers["webhook-id"]
    assert letter["attempts"] == 3 and letter["last_error"] == "http 503"


def test_a_redirect_is_not_followed(bench: Bench, receiver: Receiver) -> None:
    bench.subscribe(receiver.url)
    receiver.script = [307]
    bench.grant("crm-5")
    [attempt] = bench.dispatcher.run_once().attempts
    assert attempt.outcome == "retry" and attempt.status == 307
    assert [r.path for r in receiver.requests] == ["/hooks"]


def test_no_event_is_written_when_the_causing_transaction_rolls_back(
    bench: Bench, receiver: Receiver
) -> None:
    bench.subscribe(receiver.url)
    car = bench.world.demo.vehicles[0]
    with bench.world.context.db.sessions() as session:
        before = session.scalar(select(func.count()).select_from(OutboxEventRow))
    with pytest.raises(RuntimeError), bench.world.context.db.transaction() as session:
        grant(
            session,
            Entitlement(
                Vin.parse(str(car.vin), verify_check_digit=False),
                "HEATED_SEATS",
                EntitlementSource.PURCHASE,
                NOW,
                None,
            ),
            "crm-rolled-back",
            NOW,
        )
        raise RuntimeError("the purchase fails after the grant")
    with bench.world.context.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEventRow)) == before
    assert bench.dispatcher.run_once().attempts == []
    assert receiver.requests == []


def test_a_disabled_subscription_gets_nothing(bench: Bench, receiver: Receiver) -> None:
    kept = bench.subscribe(receiver.url.replace("/hooks", "/kept"))
    dropped = bench.subscribe(receiver.url.replace("/hooks", "/dropped"))
    bench.grant("crm-6")
    bench.dispatcher.fan_out()  # a delivery is already waiting for it ...
    answer = bench.staff.post(f"/v1/integrations/webhooks/{dropped['id']}/disable")
    assert answer.status_code == 200 and answer.json()["enabled"] is False
    bench.grant("crm-7")  # ... and a new event comes after
    bench.dispatcher.run_once()
    assert sorted(r.path for r in receiver.requests) == ["/kept", "/kept"]
    listed = {s["id"]: s for s in bench.staff.get("/v1/integrations/webhooks").json()}
    assert listed[dropped["id"]]["deliveries"]["cancelled"] == 1
    assert listed[kept["id"]]["deliveries"]["delivered"] == 2


def test_during_a_rotation_old_and_new_secrets_both_sign(bench: Bench, receiver: Receiver) -> None:
    sub = bench.subscribe(receiver.url)
    rotated = bench.staff.post(
        f"/v1/integrations/webhooks/{sub['id']}/secret-rotation", json={"grace_hours": 1}
    )
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    bench.grant("crm-8")
    bench.dispatcher.run_once()
    [during] = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    _verified(sub["secret"], during, bench.clock.now)
    _verified(new, during, bench.clock.now)
    bench.clock.now += timedelta(hours=2)
    bench.grant("crm-9")
    bench.dispatcher.run_once()
    after = receiver.requests[1]
    _verified(new, after, bench.clock.now)
    with pytest.raises(WebhookVerificationError):
        _verified(sub["secret"], after, bench.clock.now)


def test_secrets_are_stored_sealed_and_bound_to_their_subscription(
    bench: Bench, receiver: Receiver
) -> None:
    first, second = bench.subscribe(receiver.url), bench.subscribe(receiver.url)
    with bench.world.context.db.sessions() as session:
        rows = {r.subscription_id: r.sealed for r in session.scalars(select(WebhookSecretRow))}
    assert first["secret"] not in rows[first["id"]]
    assert bench.sealer.open(first["id"], rows[first["id"]]) == first["secret"]
    with pytest.raises(ValueError, match=second["id"]):
        bench.sealer.open(second["id"], rows[first["id"]])  # copied to another subscription


@pytest.mark.parametrize(
    ("url", "types"),
    [
        ("http://crm.example.com/hooks", ["entitlement.granted"]),
        ("https://user:pw@crm.example.com/hooks", ["entitlement.granted"]),
        ("ftp://crm.example.com/hooks", ["entitlement.granted"]),
        ("https://crm.example.com/hooks", ["entitlement.grant"]),
    ],
)
def test_a_bad_subscription_is_refused_and_nothing_is_stored(
    bench: Bench, url: str, types: list[str]
) -> None:
    answer = bench.staff.post("/v1/integrations/webhooks", json={"url": url, "event_types": types})
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_failed"
    assert bench.staff.get("/v1/integrations/webhooks").json() == []


def test_subscriptions_need_the_integrations_scope(bench: Bench) -> None:
    from forecourt.cloud.auth import Scope, issue_token

    with bench.world.context.db.transaction() as session:
        token = issue_token(session, "catalog-only", frozenset({Scope.CATALOG_WRITE.value}), NOW)
    answer = bench.staff.get(
        "/v1/integrations/webhooks", headers={"authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 403 and answer.json()["code"] == "scope_missing"


def test_an_applied_activation_is_published_with_its_features(
    bench: Bench, receiver: Receiver, tmp_path: Path
) -> None:
    sub = bench.subscribe(receiver.url, "activation.applied")
    world = bench.world
    car, features = world.activatable()
    base = str(bench.staff.base_url)
    edge = Clients(world, base, tmp_path / "edge").dealer(car.dealer_id or "")
    body = world.request(car, features)
    assert edge.post("/v1/activations", json=body).status_code == 201
    bench.dispatcher.run_once()
    assert receiver.requests == []  # issued is not applied
    report = edge.post(f"/v1/activations/{body['request_id']}/report", json={"outcome": "applied"})
    assert report.status_code == 200
    edge.close()
    bench.dispatcher.run_once()
    [request] = receiver.requests
    event = _verified(sub["secret"], request, bench.clock.now)
    assert event["type"] == "activation.applied"
    assert event["data"]["vin"] == str(car.vin)
    assert set(features) <= set(event["data"]["features"])
    assert event["data"]["request_id"] == body["request_id"]


@pytest.fixture
def pg_world(pg_url: str) -> Iterator[CloudWorld]:
    built = build_world(pg_url)
    yield built
    built.context.db.dispose()


@pytest.mark.postgres
def test_two_delivery_runs_at_once_send_each_event_exactly_once_on_postgresql(
    pg_world: CloudWorld, receiver: Receiver, tmp_path: Path
) -> None:
    with _bench(pg_world, tmp_path) as bench:
        bench.subscribe(receiver.url)
        for n in range(8):
            bench.grant(f"crm-many-{n}")
        bench.dispatcher.fan_out()
        receiver.rendezvous = threading.Barrier(2)  # the first two sends overlap
        policy = DeliveryPolicy(claim_batch=1)
        workers = [bench.dispatcher_with(policy), bench.dispatcher_with(policy)]
        counts: list[int] = []

        def run(dispatcher: WebhookDispatcher) -> None:
            counts.append(len(dispatcher.run_once().attempts))

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for worker in workers:
            worker.close()
        assert not receiver.rendezvous.broken
        ids = receiver.ids()
        assert len(ids) == 8 and len(set(ids)) == 8
        assert min(counts) >= 1 and sum(counts) == 8  # both workers sent, disjoint events


def test_deliver_webhooks_once_sends_what_is_due_and_exits(
    world: CloudWorld, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from forecourt.cloud.integrations.cli import deliver_webhooks_command
    from forecourt.cloud.integrations.sealing import KEY_FILE_ENV
    from forecourt.cloud.integrations.subscriptions import create_subscription

    key_file = tmp_path / "webhook.key"
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    monkeypatch.setenv(ALLOW_LOOPBACK_ENV, "1")  # the receiver is on this host
    sealer = SecretSealer.from_file(lambda: key_file)
    WebhookDispatcher(world.context.db, sealer).run_once()  # the seeded world's own events
    with world.context.db.transaction() as session:
        _row, secret = create_subscription(
            session,
            sealer,
            url=receiver.url,
            event_types=["entitlement.granted"],
            description="crm",
            actor="test",
            now=NOW,
            destinations=DestinationPolicy(allow_loopback=True),
        )
    _grant(world, "cli-1")
    command = typer.Typer()
    command.command()(deliver_webhooks_command)
    result = CliRunner().invoke(command, ["--once", "--database-url", world.config.database_url])
    assert result.exit_code == 0, result.output
    assert "delivered 1" in result.output
    [request] = receiver.requests
    verify(secret.secret, request.headers, request.body)
    assert secret.secret not in result.output


@pytest.mark.parametrize(
    ("url", "answers", "detail"),
    [
        ("https://internal.partner.example/hooks", ["10.0.0.5"], "private"),
        ("https://metadata.partner.example/latest", ["169.254.169.254"], "link_local"),
        ("https://cgnat.partner.example/hooks", ["100.64.0.9"], "shared"),
        ("https://v6.partner.example/hooks", ["fd00::5"], "unique_local"),
        ("https://[::ffff:10.0.0.1]/hooks", [], "private"),
        ("https://169.254.169.254/latest/meta-data", [], "link_local"),
        ("https://gone.partner.example/hooks", [], "does not resolve"),
        ("https://crm.example.com:22/hooks", [], "port 22 is not allowed"),
        ("https://crm.example.com:5432/hooks", [], "port 5432 is not allowed"),
    ],
)
def test_a_destination_inside_the_network_is_refused_at_subscription_and_nothing_stored(
    bench: Bench, url: str, answers: list[str], detail: str
) -> None:
    host = httpx.URL(url).host
    if answers:
        bench.dns.answers[host] = answers
    answer = bench.staff.post(
        "/v1/integrations/webhooks", json={"url": url, "event_types": ["entitlement.granted"]}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_failed"
    assert detail in answer.json()["detail"]
    assert bench.staff.get("/v1/integrations/webhooks").json() == []


def test_https_on_443_or_8443_to_a_public_host_is_accepted(bench: Bench) -> None:
    for url in ("https://crm.example.com/hooks", "https://crm.example.com:8443/hooks"):
        assert bench.subscribe(url)["url"] == url


def test_a_name_that_turns_private_after_subscribing_is_refused_at_delivery_then_retried(
    bench: Bench, receiver: Receiver
) -> None:
    """Vetted at subscription (loopback, the opted-in receiver), the name then answers the
    metadata address: the delivery looks it up again, is refused and sends nothing; once DNS
    answers right again the retry is delivered with the same webhook-id."""
    port = httpx.URL(receiver.url).port
    bench.dns.answers["hooks.partner.example"] = ["127.0.0.1", "169.254.169.254"]
    bench.subscribe(f"http://hooks.partner.example:{port}/hooks")
    bench.grant("crm-rebind")
    [attempt] = bench.dispatcher.run_once().attempts
    assert (attempt.outcome, attempt.error) == ("retry", "destination_not_allowed")
    assert receiver.requests == []
    assert bench.dns.lookups.count("hooks.partner.example") == 2  # subscription, delivery
    bench.dns.answers["hooks.partner.example"] = ["127.0.0.1"]  # DNS fixed
    bench.clock.now += bench.dispatcher.policy.first_retry
    [retried] = bench.dispatcher.run_once().attempts
    assert retried.outcome == "delivered"
    assert receiver.ids() == [attempt.webhook_id]
    assert bench.dns.lookups.count("hooks.partner.example") == 3  # one lookup per connection


def test_loopback_is_refused_without_the_opt_in_at_subscription_and_at_delivery(
    world: CloudWorld, receiver: Receiver, tmp_path: Path
) -> None:
    from forecourt.cloud.integrations.subscriptions import create_subscription

    with _bench(world, tmp_path, allow_loopback=False) as bench:
        answer = bench.staff.post(
            "/v1/integrations/webhooks",
            json={"url": receiver.url, "event_types": ["entitlement.granted"]},
        )
        assert answer.status_code == 422 and "loopback" in answer.json()["detail"]
        with world.context.db.transaction() as session:  # made where loopback was allowed
            create_subscription(
                session,
                bench.sealer,
                url=receiver.url,
                event_types=["entitlement.granted"],
                description="moved here from a development cloud",
                actor="test",
                now=NOW,
                destinations=DestinationPolicy(allow_loopback=True),
            )
        bench.grant("crm-loopback")
        [attempt] = bench.dispatcher.run_once().attempts
        assert (attempt.outcome, attempt.error) == ("retry", "destination_not_allowed")
        assert receiver.requests == []


def test_a_dead_letter_is_redelivered_with_the_same_webhook_id_and_audited(
    bench: Bench, receiver: Receiver
) -> None:
    sub = bench.subscribe(receiver.url)
    receiver.always = 503
    bench.grant("crm-redeliver")
    dispatcher = bench.dispatcher_with(DeliveryPolicy(max_attempts=1))
    assert [a.outcome for a in dispatcher.run_once().attempts] == ["dead"]
    dispatcher.close()
    base = f"/v1/integrations/webhooks/{sub['id']}/deliveries"
    [letter] = bench.staff.get(f"{base}?status=dead").json()
    receiver.always = None
    answer = bench.staff.post(f"{base}/{letter['id']}/redeliver")
    assert answer.status_code == 200, answer.text
    assert answer.json()["webhook_id"] == letter["webhook_id"]
    assert answer.json()["previous_attempts"] == 1
    [attempt] = bench.dispatcher.run_once().attempts
    assert attempt.outcome == "delivered"
    assert receiver.ids() == [letter["webhook_id"], letter["webhook_id"]]
    [after] = bench.staff.get(base).json()
    assert (after["status"], after["attempts"]) == ("delivered", 1)
    with bench.world.context.db.sessions() as session:
        [audit] = session.scalars(select(AuditRow).where(AuditRow.action == "webhook_redelivered"))
    assert audit.subject == sub["id"] and audit.detail["delivery_id"] == letter["id"]
    again = bench.staff.post(f"{base}/{letter['id']}/redeliver")  # delivered is no dead letter
    assert again.status_code == 409 and "delivered" in again.json()["detail"]
    other = bench.subscribe(receiver.url)
    elsewhere = bench.staff.post(
        f"/v1/integrations/webhooks/{other['id']}/deliveries/{letter['id']}/redeliver"
    )
    assert elsewhere.status_code == 404
    with bench.world.context.db.sessions() as session:
        audits = session.scalars(select(AuditRow).where(AuditRow.action == "webhook_redelivered"))
        assert len(list(audits)) == 1  # refusals change nothing
