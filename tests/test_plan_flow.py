"""The budget-plan flow end to end on a real Prefect server: it proposes, pauses for a typed
answer, refuses edits that break the constraints (and stays paused), and records approvals,
rejections and expiries in the decision audit, memory and events."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from support import artifacts, events

from liftos.planning.audit import DecisionLog


def _start(**parameters):
    """Run the flow in a thread (it blocks while paused); returns its state holder."""
    from liftos_app.flows.plan import budget_plan

    holder: dict = {"at": time.time()}
    thread = threading.Thread(target=lambda: holder.setdefault(
        "state", budget_plan(tenant="acme", poll_s=1, return_state=True, **parameters)),
        daemon=True)
    thread.start()
    holder["thread"] = thread
    return holder


def _paused_run(holder: dict, after: float = 0.0, timeout: float = 60.0) -> str:
    """The id of this test's acme plan run (created after ``_start``) once it is paused (and
    was paused after ``after``): a run another test left paused is never answered here."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    name=FlowRunFilterName(any_=["plan-acme"]))):
                if (run.state.is_paused() and run.state.timestamp.timestamp() > after
                        and run.created.timestamp() > holder["at"] - 1):
                    return str(run.id)
        time.sleep(0.3)
    raise AssertionError("the flow did not pause for a decision")


def _logs(run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(run_id)])))
    return "\n".join(log.message for log in logs)


def _wait_for_log(run_id: str, text: str, timeout: float = 15.0) -> str:
    """The run's logs once they hold ``text`` (logs reach the server in batches)."""
    deadline = time.monotonic() + timeout
    while text not in (logs := _logs(run_id)):
        assert time.monotonic() < deadline, logs
        time.sleep(0.3)
    return logs


def _finish(holder, timeout: float = 60.0):
    holder["thread"].join(timeout)
    assert not holder["thread"].is_alive(), "the flow did not finish"
    return holder["state"]


def test_refused_edits_keep_it_paused_then_an_approval_is_recorded(prefect_api, champion_home,
                                                                  capsys):
    from prefect.client.orchestration import get_client

    from liftos_app.cli import main

    holder = _start()
    run_id = _paused_run(holder)
    # over REST, as any client would: an edit far outside the +-30% limits
    with get_client(sync_client=True) as client:
        response = client._client.post(f"/flow_runs/{run_id}/resume", json={"run_input": {
            "decision": "approve", "approver": "ana@acme", "amounts": {"tv": 1.0}}})
    assert response.json()["status"] == "ACCEPT", response.text
    refused_at = time.time()
    run_id_again = _paused_run(holder, after=refused_at - 1)
    assert run_id_again == run_id
    logs = _wait_for_log(run_id, "edited amounts from ana@acme refused")
    assert "tv 1.00 is outside its limits" in logs

    proposal = DecisionLog("acme").verify()[0]
    brief = (Path(proposal.payload["plan"]).parent / "brief.md").read_text()
    assert "Over 13 weeks it is expected to add" in brief  # the plan, in plain language
    assert "beats the current allocation in" in artifacts(run_id, "brief-acme")[0].data
    charts = artifacts(run_id, "plan-charts-acme")[0].data
    assert charts.count("](data:image/png;base64,") == 2 and "file://" not in charts
    # the CLI: a budget-neutral edit between two channels no limit binds
    first, second = [c for c in proposal.payload["channels"] if not c["limit"]][:2]
    moved = 100.0
    assert main(["plan", "approve", run_id, "--by", "ana@acme", "--comment", "fine",
                 "--amount", f"{first['channel']}={first['recommended_weekly'] - moved}",
                 "--amount", f"{second['channel']}={second['recommended_weekly'] + moved}"]) == 0
    state = _finish(holder)
    assert state.is_completed(), state.message
    decision = state.result()
    assert decision.payload["verdict"] == "approved" and decision.payload["by"] == "ana@acme"
    assert decision.payload["weekly"][first["channel"]] == pytest.approx(
        first["recommended_weekly"] - moved)
    records = DecisionLog("acme").verify()
    assert [r.kind for r in records] == ["proposal", "decision"]
    assert records[1].payload["proposal_hash"] == records[0].hash
    assert events("liftos.plan.proposed", run_id) and events("liftos.plan.approved", run_id)

    from liftos.memory.store import MemoryStore

    remembered = MemoryStore().search("acme", "was the budget plan approved", kind="decision")
    assert remembered and "approved by ana@acme" in remembered[0].memory.text


def test_a_rejection_from_the_cli_is_recorded(prefect_api, champion_home, capsys):
    from liftos_app.cli import main

    holder = _start(objective="cvar", chain="chain-9")  # as the signal chain starts it
    run_id = _paused_run(holder)
    assert main(["plan", "reject", run_id, "--by", "bo", "--comment", "not this quarter"]) == 0
    state = _finish(holder)
    assert state.result().payload["verdict"] == "rejected"
    assert DecisionLog("acme").verify()[0].payload["chain"] == "chain-9"
    from liftos.memory.store import MemoryStore

    decided = MemoryStore().search("acme", "budget plan rejected", kind="decision")[0].memory
    assert decided.facts["chain"] == "chain-9"
    assert events("liftos.plan.rejected", run_id)
    assert main(["plan", "reject", run_id, "--by", "bo"]) == 2
    assert "is not waiting for a decision" in capsys.readouterr().err


def test_an_unanswered_proposal_expires(prefect_api, champion_home):
    holder = _start(decision_timeout_s=3)
    state = _finish(holder)
    assert state.is_failed()  # Prefect fails a pause that times out
    run_id = str(state.state_details.flow_run_id)
    _wait_for_log(run_id, "budget plan for 'acme' expired: no decision within 3 s (proposal #1)")
    records = DecisionLog("acme").verify()
    assert [r.kind for r in records] == ["proposal", "decision"]
    assert records[-1].payload["verdict"] == "expired"
    assert events("liftos.plan.expired", run_id)


def test_no_proposal_from_an_untrusted_champion(prefect_api, champion_home):
    champion = champion_home.champion("acme")
    champion_home.set_champion("acme", {**champion, "trust_score": 40.0})
    state = _finish(_start())
    assert state.is_failed()
    assert "trust score 40.0 is below the threshold 70; no plan is proposed" in state.message
    assert DecisionLog("acme").verify() == []
