"""Stop the edge after the commit of every state; a new service on the same database resumes.

The simulated crash is a ``BaseException`` raised by the runner's hook right after a commit (or
between the apply routine and the commit of ``verified``): nothing after it runs, as if the
process died. Then a fresh :class:`ActivationService` on the same database and the same car calls
``resume_all()``. Whatever the crash point, the car is activated exactly once, the cloud
authorised exactly once, and every committed step has exactly one ledger entry.
"""

from __future__ import annotations

import pytest

from forecourt.edge.cloud_client import Assignment
from forecourt.edge.workflow import WorkflowState, WorkflowStore
from tests.edge.workflow.conftest import Env, consent
from tests.edge.workflow.fakes import VIN

S = WorkflowState


class Crash(BaseException):
    """The process dies here."""


def crash_at(point: str):  # type: ignore[no-untyped-def]
    def hook(reached: str) -> None:
        if reached == point:
            raise Crash(point)

    return hook


POINTS = [
    "after:connected",
    "after:identified",
    "after:authorised",
    "after:transferring",
    "after:applying",
    "after:apply_io",
    "after:verified",
]


@pytest.mark.parametrize("point", POINTS)
def test_crash_after_each_commit_resumes_and_activates_the_car_once(env: Env, point: str) -> None:
    first = env.service(hook=crash_at(point))
    wf_id = first.start(env.technician.operator, vin=VIN, features=["nav"], consent=consent())
    with pytest.raises(Crash):
        first.wait(wf_id)
    first.shutdown()
    interrupted = WorkflowStore(env.sessions, env.audit).get(wf_id)
    assert interrupted.state not in (S.DONE, S.FAILED)

    second = env.service()
    assert second.resume_all() == [wf_id]
    wf = second.wait(wf_id)
    assert wf.state is S.DONE, wf.error_detail
    assert env.car.applies == 1 and env.car.counter == 1
    assert len(env.cloud.authorisations) == 1  # retried calls carried the same request id
    steps = WorkflowStore(env.sessions, env.audit).steps(wf_id)
    assert [s.seq for s in steps] == list(range(1, len(steps) + 1))
    assert [s.to_state for s in steps].count(S.DONE) == 1
    env.ledger_is_whole()


def test_crash_after_the_car_applied_is_detected_from_its_report_not_applied_again(
    env: Env,
) -> None:
    first = env.service(hook=crash_at("after:apply_io"))
    wf_id = first.start(env.technician.operator, vin=VIN, features=["nav"])
    with pytest.raises(Crash):
        first.wait(wf_id)
    first.shutdown()
    assert env.car.applies == 1
    second = env.service()
    second.resume_all()
    assert second.wait(wf_id).state is S.DONE
    assert env.car.apply_calls == 1
    verified = next(
        s for s in WorkflowStore(env.sessions, env.audit).steps(wf_id) if s.to_state is S.VERIFIED
    )
    assert verified.evidence["step"]["already_applied"] is True


def test_link_lost_without_retries_fails_cleanly_with_its_code(env: Env) -> None:
    first = env.service(link_retries=0)
    env.car.cut_after["ivi-os.img"] = 4096 * 3
    wf_id = first.start(env.technician.operator, vin=VIN, features=["nav"])
    wf = first.wait(wf_id)
    assert wf.state is S.FAILED and wf.error_code == "car_unreachable"
    assert env.car.applies == 0
    assert len(env.car.files["ivi-os.img"]) == 4096 * 3


def test_approved_review_executed_before_a_crash_still_counts_once(env: Env) -> None:
    env.cloud.assignments[VIN] = Assignment(VIN, "dealer-z", 0)
    first = env.service(hook=crash_at("after:identified"))
    wf_id = first.start(env.technician.operator, vin=VIN, features=["nav"])
    with pytest.raises(Crash):
        first.wait(wf_id)  # crashes right after the first "identified" commit
    first.shutdown()
    second = env.service()
    second.resume_all()
    wf = second.wait(wf_id)
    assert wf.state is S.AWAITING_REVIEW
    review_id = next(iter(wf.context["reviews"].values()))["id"]
    env.approve(review_id, env.manager)
    # The third edge process crashes right after the review was executed and the step committed.
    third = env.service(hook=crash_at("after:identified"))
    third.review_decided(wf_id)
    with pytest.raises(Crash):
        third.wait(wf_id)
    third.shutdown()
    fourth = env.service()
    fourth.resume_all()
    assert fourth.wait(wf_id).state is S.DONE
    assert env.car.applies == 1
    env.ledger_is_whole()
