"""The activation workflow with a fake car and a fake cloud: happy path, refusals, reviews."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from forecourt.edge.cloud_client import Assignment, CloudRefused
from forecourt.edge.operators import ReviewKind, Role
from forecourt.edge.outbox import ACTIVATION_COMPLETED, CONSENT_RECORDED, WORKFLOW_STEP
from forecourt.edge.workflow import (
    TRANSITIONS,
    CarTarget,
    FailureCode,
    IllegalTransition,
    Progress,
    WorkflowNotCancellable,
    WorkflowState,
)
from forecourt.edge.workflow.states import HAPPY_PATH, TERMINAL, check_transition
from forecourt.ledger.entry import ActivityRecord, decode_record
from forecourt.store.edge import EdgeConsentRecord, EdgeOutboxMessage
from tests.edge.operators.conftest import DEALER, OTHER_DEALER
from tests.edge.workflow.conftest import Env, consent
from tests.edge.workflow.fakes import OTHER_VIN, VIN, FakeCar

S = WorkflowState


def test_transition_table_has_every_state_and_terminal_states_have_no_exit() -> None:
    assert set(TRANSITIONS) == set(WorkflowState)
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
    for a, b in itertools.pairwise(HAPPY_PATH):
        check_transition("wf", a, b)


def test_illegal_transition_is_refused_naming_both_states() -> None:
    try:
        check_transition("wf-1", S.IDENTIFIED, S.APPLYING)
    except IllegalTransition as exc:
        assert (exc.source, exc.target) == (S.IDENTIFIED, S.APPLYING)
    else:
        raise AssertionError("identified → applying must be illegal")


def test_cancel_is_not_a_legal_move_once_the_car_applies() -> None:
    assert S.CANCELLED not in TRANSITIONS[S.APPLYING]
    assert S.CANCELLED not in TRANSITIONS[S.VERIFIED]


def test_online_activation_walks_every_state_and_activates_the_car_once(env: Env) -> None:
    service = env.service()
    seen: list[Progress] = []
    wf_id = service.start(
        env.technician.operator,
        vin=VIN,
        features=["nav", "voice"],
        consent=consent(),
        client_address="10.0.0.5",
    )
    service.subscribe(seen.append)
    wf = service.wait(wf_id)
    assert wf.state is S.DONE, wf.error_detail
    assert [s.to_state for s in env_steps(env, wf_id)] == list(HAPPY_PATH[1:])
    assert env.car.applies == 1 and env.car.counter == 1
    assert env.car.last_bundle_id is not None
    progress = service.progress(wf_id)
    assert (
        progress.bytes_done == progress.bytes_total == sum(len(f) for f in env.car.files.values())
    )
    assert set(progress.timings_ms) >= {"connected", "transferring", "applying", "done"}
    env.ledger_is_whole()


def test_every_step_evidence_is_hashed_into_its_ledger_entry_with_operator_committed(
    env: Env,
) -> None:
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    service.wait(wf_id)
    for step in env_steps(env, wf_id):
        [entry] = env.log.store.entries(step.ledger_index, step.ledger_index + 1)
        record = decode_record(entry.payload)
        assert isinstance(record, ActivityRecord)
        assert step.evidence_sha256 in record.evidence_hashes
        assert record.response_status == f"{step.to_state.value}:{step.status}"
        assert env.technician.operator.id not in entry.payload.decode()
        assert "operator_id" in record.commitments


def test_identified_step_records_what_was_read_and_consent_rows_per_category(env: Env) -> None:
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"], consent=consent())
    service.wait(wf_id)
    identified = next(s for s in env_steps(env, wf_id) if s.to_state is S.IDENTIFIED)
    assert identified.evidence["step"]["vin"] == VIN
    assert [e["serial"] for e in identified.evidence["step"]["ecus"]] == ["CGW-0001", "IVI-0001"]
    with env.sessions() as s:
        rows = s.execute(select(EdgeConsentRecord)).scalars().all()
        types = s.execute(select(EdgeOutboxMessage.event_type)).scalars().all()
    assert {(r.purpose, r.decision) for r in rows} == {
        ("location", "granted"),
        ("audio_voice", "denied"),
        ("cross_border", "denied"),
    }
    assert all(r.notice_version == "eu-2025.1" and r.vin == VIN for r in rows)
    assert CONSENT_RECORDED in types and ACTIVATION_COMPLETED in types
    assert types.count(WORKFLOW_STEP) == len(env_steps(env, wf_id))


def test_auditor_cannot_start_an_activation_and_nothing_is_stored(env: Env) -> None:
    service = env.service()
    auditor = env.staff.hire(Role.AUDITOR)
    try:
        service.start(auditor.operator, vin=VIN, features=["nav"])
    except Exception as exc:
        assert type(exc).__name__ == "PermissionDenied"
    else:
        raise AssertionError("an auditor must not start activations")
    assert service.list(env.technician.operator) == []


def test_operator_of_another_dealer_is_refused(env: Env) -> None:
    service = env.service()
    foreign = env.staff.hire(Role.TECHNICIAN, dealer_id=OTHER_DEALER)
    try:
        service.start(foreign.operator, vin=VIN, features=["nav"])
    except Exception as exc:
        assert getattr(exc, "reason", None) == "other_dealer"
    else:
        raise AssertionError("dealer scope must be enforced")


def test_car_with_another_vin_at_the_address_is_refused(env: Env) -> None:
    service = env.service()
    wf = service.wait(
        service.start(
            env.technician.operator, vin=OTHER_VIN, address=env.car.address, features=["nav"]
        )
    )
    assert wf.state is S.REFUSED and wf.error_code == FailureCode.VIN_MISMATCH
    assert env.car.applies == 0


def test_unreachable_car_fails_with_its_code(env: Env) -> None:
    env.car.reachable = False
    service = env.service()
    wf = service.wait(service.start(env.technician.operator, vin=VIN, features=["nav"]))
    assert wf.state is S.FAILED and wf.error_code == FailureCode.CAR_UNREACHABLE
    env.ledger_is_whole()


def test_cloud_refusal_ends_refused_with_the_cloud_codes_in_evidence(env: Env) -> None:
    env.cloud.refusal = CloudRefused("authorise", 403, ("not_entitled", "hardware_missing"))
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["adas"])
    wf = service.wait(wf_id)
    assert wf.state is S.REFUSED and wf.error_code == FailureCode.CLOUD_REFUSED
    last = env_steps(env, wf_id)[-1]
    assert last.evidence["step"]["codes"] == ["not_entitled", "hardware_missing"]
    assert env.car.files == {}


def test_ecu_refusing_authentication_fails_with_the_nrc(env: Env) -> None:
    env.car.auth_nrc = 0x35
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    wf = service.wait(wf_id)
    assert wf.error_code == FailureCode.AUTHENTICATION_FAILED
    assert env_steps(env, wf_id)[-1].evidence["step"]["nrc"] == "0x35"


def test_car_refusing_the_bundle_is_refused_with_nrc_and_car_unchanged(env: Env) -> None:
    env.car.apply_nrc = 0x24
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    wf = service.wait(wf_id)
    assert wf.state is S.REFUSED and wf.error_code == FailureCode.CAR_REFUSED_BUNDLE
    assert env_steps(env, wf_id)[-1].evidence["step"]["nrc"] == "0x24"
    assert env.car.counter == 0 and env.car.installed == {}


def test_missing_package_fails_before_any_byte_reaches_the_car(env: Env) -> None:
    env.packages.missing.add(env.images[0].sha256)
    service = env.service()
    wf = service.wait(service.start(env.technician.operator, vin=VIN, features=["nav"]))
    assert wf.error_code == FailureCode.PACKAGE_UNAVAILABLE
    assert env.car.sent_bytes == 0


def test_dropped_link_mid_transfer_resumes_from_the_car_confirmed_position(env: Env) -> None:
    env.car.cut_after["ivi-os.img"] = 8192
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    wf = service.wait(wf_id)
    assert wf.state is S.DONE
    files = next(s for s in env_steps(env, wf_id) if s.to_state is S.APPLYING)
    ivi = next(f for f in files.evidence["step"]["files"] if f["name"] == "ivi-os.img")
    assert ivi["confirmed"] == env.images[0].size
    total = sum(r.size for r in env.images) + len(env.car.files["activation.bundle"])
    assert env.car.sent_bytes == total  # no byte sent twice
    assert env.car.applies == 1


def test_foreign_vehicle_waits_for_a_manager_review_then_runs_once(env: Env) -> None:
    env.cloud.assignments[VIN] = Assignment(VIN, "dealer-z", 0)
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    wf = service.wait(wf_id)
    assert wf.state is S.AWAITING_REVIEW
    review_id = wf.context["reviews"][ReviewKind.FOREIGN_VEHICLE.value]["id"]
    assert env.car.applies == 0
    try:
        env.approve(review_id, env.senior)  # a senior technician may not approve this kind
    except Exception as exc:
        assert type(exc).__name__ == "ReviewerNotQualified"
    env.approve(review_id, env.manager)
    service.review_decided(wf_id)
    wf = service.wait(wf_id)
    assert wf.state is S.DONE
    assert (
        env.reviews.get(env.manager.operator, review_id).executor_id == env.technician.operator.id
    )
    service.review_decided(wf_id)  # a repeated notification does nothing
    assert service.wait(wf_id).state is S.DONE and env.car.applies == 1
    env.ledger_is_whole()


def test_reactivation_needs_review_and_a_rejection_refuses_it(env: Env) -> None:
    env.car.counter = 3
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    wf = service.wait(wf_id)
    review_id = wf.context["reviews"][ReviewKind.REACTIVATION.value]["id"]
    env.reviews.reject(env.senior.operator, review_id, note="customer not present")
    service.review_decided(wf_id)
    wf = service.wait(wf_id)
    assert wf.state is S.REFUSED and wf.error_code == FailureCode.REVIEW_REJECTED
    assert env.car.applies == 0


def test_expired_review_refuses_the_workflow(env: Env) -> None:
    env.car.counter = 1
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    service.wait(wf_id)
    env.clock.advance(env.reviews.policy.request_ttl.total_seconds() + 1)
    service.review_decided(wf_id)
    assert service.wait(wf_id).error_code == FailureCode.REVIEW_EXPIRED


def test_batch_activation_runs_all_cars_after_one_approval_only(env: Env) -> None:
    cars = [FakeCar(vin=f"WVWZZZ1JZXW00001{i}", address=f"127.0.0.{20 + i}") for i in range(3)]
    for car in cars:
        env.connector.add(car)
        env.cloud.assignments[car.vin] = Assignment(car.vin, DEALER, 0)
    service = env.service()
    try:
        service.start_batch(
            env.technician.operator,
            targets=[CarTarget(vin=c.vin) for c in cars],
            features=["nav"],
            reason="fleet hand-over",
        )
    except Exception as exc:
        assert type(exc).__name__ == "PermissionDenied"  # technicians may not request batches
    ids = service.start_batch(
        env.senior.operator,
        targets=[CarTarget(vin=c.vin) for c in cars],
        features=["nav"],
        reason="fleet hand-over",
    )
    records = [service.wait(i) for i in ids]
    assert {r.state for r in records} == {S.AWAITING_REVIEW}
    assert sum(c.applies for c in cars) == 0
    review_id = records[0].context["reviews"][ReviewKind.BATCH_ACTIVATION.value]["id"]
    env.approve(review_id, env.manager)
    for i in ids:
        service.review_decided(i)
    assert {service.wait(i).state for i in ids} == {S.DONE}
    assert [c.applies for c in cars] == [1, 1, 1]


def test_cancel_before_transfer_ends_cancelled_and_after_apply_is_refused(env: Env) -> None:
    env.car.counter = 1  # waits for a reactivation review
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    service.wait(wf_id)
    wf = service.cancel(env.technician.operator, wf_id)
    assert wf.state is S.CANCELLED
    try:
        service.cancel(env.technician.operator, wf_id)
    except WorkflowNotCancellable as exc:
        assert exc.state is S.CANCELLED
    else:
        raise AssertionError("a cancelled workflow cannot be cancelled again")


def test_many_cars_run_at_once_each_activated_once(env: Env) -> None:
    cars = [FakeCar(vin=f"WVWZZZ1JZXW0002{i:02d}"[:17], address=f"127.0.1.{i}") for i in range(8)]
    for car in cars:
        env.connector.add(car)
        env.cloud.assignments[car.vin] = Assignment(car.vin, DEALER, 0)
    service = env.service(max_parallel=4)
    ids = [service.start(env.technician.operator, vin=c.vin, features=["nav"]) for c in cars]
    assert {service.wait(i).state for i in ids} == {S.DONE}
    assert [c.applies for c in cars] == [1] * 8
    env.ledger_is_whole()


def env_steps(env: Env, wf_id: str):  # type: ignore[no-untyped-def]
    from forecourt.edge.workflow import WorkflowStore

    return WorkflowStore(env.sessions, env.audit).steps(wf_id)
