"""Every permission is checked on the server, scoped to the dealer, whatever the page showed."""

from __future__ import annotations

import httpx
import pytest

from tests.edge.app.conftest import Console
from tests.edge.app.world import ConsoleWorld
from tests.edge.operators.conftest import OTHER_DEALER
from tests.edge.workflow.fakes import VIN

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "allowed"),
    [
        ("auditor", "post", "/api/v1/activations", {"vin": VIN, "features": ["CONNECT"]}, False),
        ("technician", "get", "/api/v1/ledger/entries", None, False),
        ("technician", "get", "/api/v1/ledger/checkpoint", None, False),
        ("auditor", "get", "/api/v1/ledger/entries", None, True),
        ("auditor", "get", f"/api/v1/consent/{VIN}", None, False),
        ("technician", "get", f"/api/v1/consent/{VIN}", None, True),
        ("technician", "post", "/api/v1/activations/batch",
         {"vins": [VIN, "WVWZZZ1JZXW000002"], "features": ["CONNECT"], "reason": "fleet"}, False),
        ("auditor", "get", "/api/v1/reviews", None, True),
        ("auditor", "get", "/api/v1/status", None, True),
    ],
)  # fmt: skip
async def test_the_role_matrix_is_enforced_by_the_api(  # noqa: PLR0917 - one table row
    console: Console, who: str, method: str, path: str, body: object, allowed: bool
) -> None:
    await console.login(getattr(console.world, who))
    response = await (console.post(path, body) if method == "post" else console.get(path))
    if allowed:
        assert response.status_code < 400, response.text
    else:
        assert response.status_code == 403
        problem = response.json()
        assert problem["code"] == "permission_denied" and problem["reason"] == "role"


async def test_an_operator_of_another_dealer_is_refused_at_this_dealers_console(
    world: ConsoleWorld,
) -> None:
    other = world.other_dealer_tech
    world.env.clock.advance(30)
    login = world.env.operators.login(
        OTHER_DEALER, other.operator.username, other.password, other.code()
    )
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://console.test",
        cookies={"fc_session": login.session_token},
    ) as client:
        for path in ("/api/v1/vehicles", "/api/v1/activations", "/api/v1/reviews"):
            response = await client.get(path)
            assert response.status_code == 403, path
            assert response.json()["reason"] == "other_dealer"
        started = await client.post(
            "/api/v1/activations",
            json={"vin": VIN, "features": ["CONNECT"]},
            headers={"x-csrf-token": login.csrf_token},
        )
        assert started.status_code == 403
        assert started.json()["reason"] == "other_dealer"
    assert world.activation.list(world.technician.operator) == []


async def test_the_dealer_login_form_never_signs_in_another_dealers_operator(
    console: Console,
) -> None:
    response = await console.login(console.world.other_dealer_tech)
    assert response.status_code == 401
    assert response.json()["code"] == "login_failed"


async def test_unknown_feature_and_car_are_refused_with_stable_codes(console: Console) -> None:
    await console.login(console.world.technician)
    feature = await console.post("/api/v1/activations", {"vin": VIN, "features": ["TELEPORT"]})
    assert feature.status_code == 422 and feature.json()["code"] == "feature_unknown"
    car = await console.post(
        "/api/v1/activations", {"vin": "WVWZZZ1JZXW999999", "features": ["CONNECT"]}
    )
    assert car.status_code == 404 and car.json()["code"] == "vehicle_unknown"
    bad = await console.post("/api/v1/activations", {"vin": "not a vin", "features": ["CONNECT"]})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
    assert (await console.get("/api/v1/activations")).json() == []
