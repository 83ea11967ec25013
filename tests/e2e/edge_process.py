"""A real edge in its own process, for the SIGKILL test: start one activation, then run on.

``python -m tests.e2e.edge_process job.json`` builds the edge with :func:`start_edge` from the
settings in the job file, starts the activation it describes, writes the workflow id to
``<job>.started`` and waits to be killed.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from forecourt.core import ConsentChoice, ConsentRecord, DataCategory
from forecourt.edge.link.doip import LinkConfig
from forecourt.edge.wiring import EdgeSettings, start_edge
from forecourt.edge.workflow import ConsentCapture


def settings_to_json(settings: EdgeSettings) -> dict[str, Any]:
    return {
        "data_dir": str(settings.data_dir),
        "dealer_id": settings.dealer_id,
        "edge_id": settings.edge_id,
        "cloud_url": settings.cloud_url,
        "tls_cert": str(settings.tls_cert),
        "tls_key": str(settings.tls_key),
        "tls_ca": str(settings.tls_ca),
        "car_addresses": list(settings.car_addresses),
        "cloud_ledger_vkey": settings.cloud_ledger_vkey,
        "max_block_data": settings.link.max_block_data,
    }


def consent_to_json(capture: ConsentCapture) -> dict[str, Any]:
    record = capture.record
    return {
        "notice_version": record.notice_version,
        "captured_at": record.captured_at.isoformat(),
        "choices": [[c.category.value, c.granted] for c in record.choices],
        "cross_border": record.cross_border,
        "notice_id": capture.notice_id,
        "region": capture.region,
        "subject_ref": capture.subject_ref,
    }


def _settings(doc: dict[str, Any]) -> EdgeSettings:
    return EdgeSettings(
        data_dir=Path(doc["data_dir"]),
        dealer_id=doc["dealer_id"],
        edge_id=doc["edge_id"],
        cloud_url=doc["cloud_url"],
        tls_cert=Path(doc["tls_cert"]),
        tls_key=Path(doc["tls_key"]),
        tls_ca=Path(doc["tls_ca"]),
        car_addresses=tuple(doc["car_addresses"]),
        cloud_ledger_vkey=doc["cloud_ledger_vkey"],
        link=LinkConfig(max_block_data=doc["max_block_data"]),
        sync_interval=0.2,
    )


def _consent(doc: dict[str, Any]) -> ConsentCapture:
    return ConsentCapture(
        record=ConsentRecord(
            doc["notice_version"],
            datetime.fromisoformat(doc["captured_at"]),
            tuple(ConsentChoice(DataCategory(c), bool(g)) for c, g in doc["choices"]),
            cross_border=bool(doc["cross_border"]),
        ),
        notice_id=doc["notice_id"],
        region=doc["region"],
        subject_ref=doc["subject_ref"],
    )


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    with start_edge(_settings(job["settings"])) as edge:
        operator = edge.operators.get(job["operator_id"])
        workflow_id = edge.activations.start(
            operator, vin=job["vin"], features=job["features"], consent=_consent(job["consent"])
        )
        Path(job_path + ".started").write_text(workflow_id)
        threading.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    main(sys.argv[1])
