"""Deployments from ``prefect.yaml`` (the single source of crons), the work pool and the
automations from ``deployments/``: what ``liftos deploy`` and ``liftos serve`` do."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from liftos.errors import ConfigError
from liftos.settings import settings

# Entrypoints (``flows/refresh.py:mmm_refresh``) are relative to the folder holding ``flows/``:
# the repository in a checkout, ``liftos_app`` in an installed package.
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def deployments(path: Path | None = None) -> list[dict[str, Any]]:
    return yaml.safe_load((path or settings().prefect_yaml).read_text())["deployments"]


def load_entrypoint(entrypoint: str):
    """``flows/refresh.py:mmm_refresh`` -> the flow object (``liftos_app.flows.refresh``)."""
    file, name = entrypoint.split(":")
    module = importlib.import_module("liftos_app." + file.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def ensure_work_pool(spec_path: Path | None = None) -> str:
    """Create the process work pool if it does not exist; returns its name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    spec = yaml.safe_load((spec_path or settings().deployment_file("work-pool.yaml")).read_text())
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(
                name=spec["name"], type=spec["type"], description=spec.get("description"),
                concurrency_limit=spec.get("concurrency_limit")))
        except ObjectAlreadyExists:
            pass
    return spec["name"]


def deploy_all() -> None:
    """``prefect deploy --all`` from the folder holding ``flows/`` (so the pull step points
    there)."""
    env = {**os.environ, "PWD": str(SOURCE_ROOT)}
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all",
               "--prefect-file", str(settings().prefect_yaml)]
    done = subprocess.run(command, cwd=SOURCE_ROOT, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise ConfigError(f"prefect deploy failed ({done.returncode}):\n{done.stdout[-2000:]}"
                          f"\n{done.stderr[-2000:]}")


def automation_specs(path: Path | None = None, deployment_ids: dict[str, str] | None = None
                     ) -> list[Any]:
    """The automations as Prefect objects, each ``deployment: FLOW/NAME`` resolved to its id."""
    from prefect.automations import AutomationCore

    path = path or settings().deployment_file("automations.yaml")
    specs = []
    for raw in yaml.safe_load(path.read_text())["automations"]:
        actions = []
        for action in raw["actions"]:
            action = dict(action)
            name = action.pop("deployment", None)
            if name is not None:
                if deployment_ids is None or name not in deployment_ids:
                    raise ConfigError(f"{path}: automation '{raw['name']}': deployment '{name}' "
                                      "is not deployed")
                action["deployment_id"] = deployment_ids[name]
            actions.append(action)
        specs.append(AutomationCore.model_validate({**raw, "actions": actions}))
    return specs


def create_automations(path: Path | None = None) -> list[str]:
    """Create (or replace, by name) the automations; returns their names."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        ids = {f"{flows.get(d.flow_id)}/{d.name}": str(d.id) for d in client.read_deployments()}
        specs = automation_specs(path, ids)
        for spec in specs:
            for existing in client.read_automations_by_name(spec.name):
                client.delete_automation(existing.id)
            client.create_automation(spec)
    return [spec.name for spec in specs]


def serve_all() -> None:
    """Serve every deployment of prefect.yaml from this process, with its schedules (local
    development: no work pool or worker needed)."""
    from prefect import serve
    from prefect.client.schemas.schedules import CronSchedule

    runnables = []
    for spec in deployments():
        flow = load_entrypoint(spec["entrypoint"])
        schedules = [CronSchedule(cron=s["cron"], timezone=s.get("timezone", "UTC"))
                     for s in spec.get("schedules") or []]
        runnables.append(flow.to_deployment(
            name=spec["name"], description=spec.get("description"), tags=spec.get("tags"),
            parameters=spec.get("parameters") or {}, schedules=schedules or None))
    serve(*runnables)
