"""Vehicles and their factory ECU inventory, as stored rows and as :class:`Vehicle` values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.core import Ecu, EcuRole, LifecycleState, Market, Vehicle, Vin, to_json
from forecourt.store.registry import EcuRow, VehicleRow


def factory_digest(vehicle: Vehicle) -> str:
    """SHA-256 of the factory record (everything the plant decides, not where the car is now)."""
    factory = replace(vehicle, state=LifecycleState.BUILT, dealer_id=None, owner_ref=None)
    text = json.dumps(to_json(factory), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def vehicle_from_rows(row: VehicleRow, ecus: Sequence[EcuRow]) -> Vehicle:
    return Vehicle(
        vin=Vin.parse(row.vin, verify_check_digit=False),
        model=row.model,
        model_year=row.model_year,
        plant=row.plant,
        build_date=row.build_date,
        market=Market(row.market),
        option_codes=frozenset(row.option_codes),
        ecus=tuple(
            Ecu(
                role=EcuRole(e.role),
                logical_address=e.logical_address,
                serial=e.serial,
                hardware_number=e.hardware_number,
                software_version=e.software_version,
                signing_public_key=e.signing_public_key,
                sealing_public_key=e.sealing_public_key,
            )
            for e in sorted(ecus, key=lambda e: e.logical_address)
        ),
        state=LifecycleState(row.state),
        dealer_id=row.dealer_id,
        owner_ref=row.owner_ref,
    )


def insert_vehicle(session: Session, vehicle: Vehicle) -> None:
    """Add a new car and its ECUs (the caller has checked it is not there yet)."""
    session.add(
        VehicleRow(
            vin=str(vehicle.vin),
            model=vehicle.model,
            model_year=vehicle.model_year,
            plant=vehicle.plant,
            build_date=vehicle.build_date,
            market=vehicle.market.value,
            option_codes=sorted(vehicle.option_codes),
            state=vehicle.state.value,
            dealer_id=vehicle.dealer_id,
            owner_ref=vehicle.owner_ref,
            activation_counter=0,
            offline_counter=0,
            feed_digest=factory_digest(vehicle),
        )
    )
    session.flush()
    for ecu in vehicle.ecus:
        session.add(
            EcuRow(
                vin=str(vehicle.vin),
                role=ecu.role.value,
                logical_address=ecu.logical_address,
                serial=ecu.serial,
                hardware_number=ecu.hardware_number,
                software_version=ecu.software_version,
                signing_public_key=ecu.signing_public_key,
                sealing_public_key=ecu.sealing_public_key,
            )
        )


def vehicle_row(session: Session, vin: str, *, for_update: bool = False) -> VehicleRow:
    """The car's row (locked for update on PostgreSQL when asked) or ``vehicle_unknown``."""
    query = select(VehicleRow).where(VehicleRow.vin == vin)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise CloudProblem(404, ProblemCode.VEHICLE_UNKNOWN, "Vehicle unknown", f"no vehicle {vin}")
    return row


def load_vehicle_with_row(
    session: Session, vin: str, *, for_update: bool = False
) -> tuple[VehicleRow, Vehicle]:
    """The car's row (locked when asked) and the car with its ECUs, read in one query."""
    query = (
        select(VehicleRow, EcuRow)
        .outerjoin(EcuRow, EcuRow.vin == VehicleRow.vin)
        .where(VehicleRow.vin == vin)
    )
    if for_update:
        query = query.with_for_update(of=VehicleRow)
    found = session.execute(query).all()
    if not found:
        raise CloudProblem(404, ProblemCode.VEHICLE_UNKNOWN, "Vehicle unknown", f"no vehicle {vin}")
    row = found[0][0]
    return row, vehicle_from_rows(row, [ecu for _car, ecu in found if ecu is not None])


def load_vehicle(session: Session, vin: str, *, for_update: bool = False) -> Vehicle:
    return load_vehicle_with_row(session, vin, for_update=for_update)[1]
