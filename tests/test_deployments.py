"""prefect.yaml and deployments/ are valid without running a flow or a server."""

from __future__ import annotations

import inspect
import uuid
from datetime import UTC, datetime

import pytest
import yaml
from support import REPO

from liftos.settings import settings
from liftos_app.flows.deploy import automation_specs, deployments, load_entrypoint


@pytest.fixture(scope="module")
def specs() -> list[dict]:
    return deployments()


def test_the_three_deployments_exist_on_the_process_pool(specs):
    assert {d["name"] for d in specs} == {"weekly-refresh", "monitor", "backfill", "budget-plan",
                                          "visibility", "sentiment", "signal-impact"}
    pool = yaml.safe_load(settings().deployment_file("work-pool.yaml").read_text())
    assert pool["type"] == "process"
    assert all(d["work_pool"]["name"] == pool["name"] for d in specs)


@pytest.mark.parametrize("index", range(7))
def test_entrypoints_import_and_parameters_match_the_flow_signature(specs, index):
    spec = specs[index]
    flow = load_entrypoint(spec["entrypoint"])
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(spec.get("parameters") or {}) <= accepted, spec["name"]
    flow.validate_parameters(spec.get("parameters") or {})  # types check, required ones present


def test_crons_parse_and_fire_when_intended(specs):
    from prefect.client.schemas.schedules import CronSchedule

    from liftos.tenancy import load_tenant

    by_name = {d["name"]: d for d in specs}
    weekly = by_name["weekly-refresh"]["schedules"][0]
    tenant = load_tenant(by_name["weekly-refresh"]["parameters"]["tenant"])
    assert weekly["timezone"] == tenant.timezone  # Monday 06:00 in the tenant's time zone
    schedule = CronSchedule(cron=weekly["cron"], timezone=weekly["timezone"])
    start = datetime(2026, 11, 18, tzinfo=UTC)  # a Wednesday
    local = _next_fire(schedule, start)
    assert (local.weekday(), local.hour, local.minute) == (0, 6, 0)

    hourly = CronSchedule(cron=by_name["monitor"]["schedules"][0]["cron"], timezone="UTC")
    first, second = _next_fires(hourly, start, 2)
    assert (second - first).total_seconds() == 3600
    assert not by_name["backfill"]["schedules"]


def _next_fires(schedule, start: datetime, n: int) -> list[datetime]:
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    tz = ZoneInfo(schedule.timezone)
    sim = CronSim(schedule.cron, start.astimezone(tz))
    return [next(sim) for _ in range(n)]


def _next_fire(schedule, start: datetime) -> datetime:
    return _next_fires(schedule, start, 1)[0]


def test_automations_parse_into_prefect_automations(specs):
    ids = {f"{load_entrypoint(d['entrypoint']).name}/{d['name']}": str(uuid.uuid4())
           for d in specs}
    automations = automation_specs(deployment_ids=ids)
    trigger_events = {event for a in automations for event in a.trigger.expect}
    assert {"liftos.data.arrived", "liftos.sentiment.shifted", "liftos.visibility.shifted",
            "liftos.signal.impact"} <= trigger_events
    targets = {str(action.deployment_id) for a in automations for action in a.actions
               if hasattr(action, "deployment_id")}
    assert targets <= set(ids.values())


def test_silent_runs_are_crashed_only_after_three_missed_heartbeats(specs):
    """The crash automation's window and the heartbeat every deployment run emits are set in
    two files; a window shorter than three beats would crash healthy runs."""
    ids = {f"{load_entrypoint(d['entrypoint']).name}/{d['name']}": str(uuid.uuid4())
           for d in specs}
    crash = next(a for a in automation_specs(deployment_ids=ids)
                 if a.name == "liftos-crash-silent-runs")
    assert crash.trigger.posture == "Proactive"
    assert [a.state.value for a in crash.actions] == ["CRASHED"]
    beats = {int(d["work_pool"]["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])
             for d in specs}
    assert len(beats) == 1 and crash.trigger.within.total_seconds() >= 3 * beats.pop()


def test_automation_naming_an_undeployed_deployment_is_a_clear_error():
    from liftos.errors import ConfigError

    with pytest.raises(ConfigError, match="mmm-refresh/weekly-refresh.*not deployed"):
        automation_specs(deployment_ids={})


def test_prefect_yaml_is_the_only_home_of_crons():
    crons = [path for path in (REPO / "flows").rglob("*.py") if "cron=" in path.read_text()
             and path.name != "deploy.py"]
    assert not crons, f"crons outside prefect.yaml: {crons}"
    assert settings().prefect_yaml.samefile(REPO / "prefect.yaml")  # the bundled link


def test_the_local_cluster_does_not_compete_for_port_8787():
    """With 8787 taken (a data team's own Dask cluster), the run says nothing about ports."""
    import socket
    import warnings

    from distributed import LocalCluster

    from liftos_app.flows.dask_runner import cluster_spec

    _, kwargs = cluster_spec()
    with socket.socket() as taken:
        try:
            taken.bind(("", 8787))
            taken.listen()
        except OSError:
            pass  # already taken by something else: the same situation
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with LocalCluster(**kwargs) as cluster:
                assert cluster.scheduler.http_server.port != 8787
