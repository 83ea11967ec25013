"""The auditor's /transparency page and its downloads, through the real console app."""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader

from tests.edge.app.conftest import Console
from tests.edge.workflow.fakes import VIN

pytestmark = pytest.mark.anyio

Q1 = {"from": "2025-01-01", "to": "2025-04-01"}  # the world's clock is 2025-03-01


async def activate_one_car(console: Console) -> None:
    world = console.world
    await console.login(world.technician)
    started = await console.post("/api/v1/activations", {"vin": VIN, "features": ["CONNECT"]})
    assert started.status_code == 202
    world.activation.wait(started.json()["workflow_id"])


async def test_an_auditor_sees_the_period_figures_and_download_links(console: Console) -> None:
    await activate_one_car(console)
    await console.login(console.world.auditor)
    page = await console.get("/transparency", **Q1)
    assert page.status_code == 200
    assert "Transparency report" in page.text
    assert "/transparency/report.pdf?from=2025-01-01&amp;to=2025-04-01" in page.text
    assert "&lt; 5" in page.text or "< 5" in page.text  # one activation: a suppressed cell
    assert VIN not in page.text
    assert console.world.technician.operator.username not in page.text


async def test_downloads_come_in_every_format_without_personal_data(console: Console) -> None:
    await activate_one_car(console)
    await console.login(console.world.auditor)
    world = console.world
    for fmt, media in (
        ("html", "text/html"),
        ("json", "application/json"),
        ("pdf", "application/pdf"),
    ):
        response = await console.get(f"/transparency/report.{fmt}", **Q1)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(media)
        assert "attachment" in response.headers["content-disposition"]
        for personal in (VIN, world.technician.operator.id, world.technician.operator.username):
            assert personal.encode() not in response.content
    doc = (await console.get("/transparency/report.json", **Q1)).json()
    assert doc["activations"]["totals"]["done"] == 1
    assert doc["dealer_id"] == world.services.dealer_id
    assert (
        doc["compliance_profile"]["version"] == 3
    )  # the cloud's number of the profile the console serves
    pdf = (await console.get("/transparency/report.pdf", **Q1)).content
    assert pdf.startswith(b"%PDF-") and len(PdfReader(io.BytesIO(pdf)).pages) == 3


async def test_a_technician_is_refused_the_page_and_every_download(console: Console) -> None:
    await console.login(console.world.technician)
    page = await console.get("/transparency", **Q1)
    assert page.status_code == 403
    assert "Not permitted" in page.text
    download = await console.get("/transparency/report.pdf", **Q1)
    assert download.status_code == 403 and not download.content.startswith(b"%PDF")
    api = await console.get("/api/v1/transparency/report.json", **Q1)
    assert api.status_code == 403
    assert api.headers["content-type"] == "application/problem+json"
    assert json.loads(api.content)["code"] == "permission_denied"


async def test_without_a_session_the_page_sends_to_sign_in(console: Console) -> None:
    response = await console.get("/transparency")
    assert response.status_code == 303 and response.headers["location"] == "/login"


async def test_a_bad_period_or_format_is_refused_with_its_reason(console: Console) -> None:
    await console.login(console.world.auditor)
    backwards = await console.get(
        "/api/v1/transparency/report.json", **{"from": "2025-04-01", "to": "2025-01-01"}
    )
    assert backwards.status_code == 422
    assert "on or before it starts" in backwards.json()["detail"]
    half = await console.get("/transparency", **{"from": "2025-01-01"})
    assert half.status_code == 422
    unknown = await console.get("/api/v1/transparency/report.csv", **Q1)
    assert unknown.status_code == 404


async def test_without_dates_the_last_full_quarter_is_shown(console: Console) -> None:
    await console.login(console.world.auditor)
    page = await console.get("/transparency")
    assert page.status_code == 200
    assert 'value="2024-10-01"' in page.text and 'value="2025-01-01"' in page.text
