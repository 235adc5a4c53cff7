"""Shared fixtures. Model fits are session-scoped: compiling a model costs seconds."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path

import pytest
from support import (
    BUNDLED_DATA,
    DEMO_DATA,
    FAKES_CERT_DIR,
    POSTGRES_ADMIN_URL,
    REPO,
    free_port,
    local_server,
    postgres_database,
    postgres_unreachable,
    prefect_api_at,
    prefect_server_command,
)

# Prefect reads its settings at import: keep the tests' Prefect state out of ~/.prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="liftos-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("LIFTOS_HOME", tempfile.mkdtemp(prefix="liftos-test-home-"))
# The brief's model is the local fake, never a real endpoint a developer's shell points at.
for _name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LIFTOS_OPENAI_BLOCK"):
    os.environ.pop(_name, None)
# gRPC reads its trusted roots once per process: trust the fake Google Ads certificate from the
# start (the client code is the production one; only the endpoint and this trust differ).


def _trust_fake_certificate() -> None:
    from liftos.fakes.tls import self_signed, trust_bundle

    cert, _ = self_signed(FAKES_CERT_DIR)
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(trust_bundle(cert, FAKES_CERT_DIR))


_trust_fake_certificate()


def _reference_data_dir() -> Path:
    """``LIFTOS_SHARED_DATA``, else ``../shared/data`` beside the checkout, else the bundled copy."""
    if "LIFTOS_SHARED_DATA" in os.environ:
        return Path(os.environ["LIFTOS_SHARED_DATA"])
    shared = REPO.parent / "shared" / "data"
    return shared if (shared / "mmm_example.csv").exists() else BUNDLED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = _reference_data_dir()
    assert (folder / "mmm_example.csv").exists(), f"reference data missing in {folder}"
    return folder


# Serial seconds per module (this machine, 2026-12-01): pytest-xdist hands whole modules
# (--dist loadfile) to its workers in collection order, so the longest go first and the
# short ones fill the gaps at the end instead of one worker finishing a long module alone.
MODULE_SECONDS = {
    "test_postgres.py": 355, "test_cluster.py": 286, "test_validation.py": 212,
    "test_orchestration.py": 210, "test_server_e2e.py": 203, "test_model.py": 210,
    "test_install.py": 145, "test_planning.py": 190, "test_priors.py": 121,
    "test_recovery.py": 118, "test_api.py": 104, "test_ingest_sources.py": 99,
    "test_embedded.py": 65, "test_hub.py": 55, "test_signals.py": 48, "test_cli.py": 47,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest modules first; the sort is stable, so each module keeps its file order."""
    items.sort(key=lambda item: -MODULE_SECONDS.get(item.path.name, 0))


def pytest_report_header() -> str:
    reason = postgres_unreachable()
    return ("Prefect test server: " + (f"SQLite ({reason})" if reason else
                                       f"PostgreSQL at {POSTGRES_ADMIN_URL.rsplit('@', 1)[-1]}"))


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """One Prefect test server for the session, heartbeats off (they add ~1 s a flow). On
    PostgreSQL where one answers (CI, production): on SQLite's single writer, flows waited
    seconds for their state writes (a weekly refresh took 8-10 s against 6-7 s). Else (a laptop)
    Prefect's SQLite test harness; the report header says which."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    no_beats = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    if postgres_unreachable():
        with prefect_test_harness(server_startup_timeout=60), temporary_settings(
                updates=no_beats):
            yield
        return
    from liftos_app.flows.server import drop_database

    url, port = postgres_database(), free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = tmp_path_factory.mktemp("prefect-server") / "server.log"
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_UI_ENABLED": "false"}
    server = local_server(prefect_server_command(url, port), f"{api}/health", log, env=env,
                          timeout=180)
    try:
        with server, prefect_api_at(api, no_beats):
            yield
            _drain_logs_and_events()
    finally:
        drop_database(url)


def _drain_logs_and_events() -> None:
    """Send the session's last logs and events before its server stops (as the harness does)."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        with contextlib.suppress(RuntimeError):  # never started
            result = APILogWorker.instance().drain()
            if inspect.isawaitable(result):
                await result
        result = EventsWorker.drain_all()
        if inspect.isawaitable(result):
            await result

    run_coro_as_sync(drain())


@pytest.fixture(scope="session")
def dask_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None, silence_logs=40) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def demo_panel():
    """The bundled demo tenant's weekly panel (ecommerce template, 5 channels, 104 weeks)."""
    from liftos.config import load_template
    from liftos.data import ColumnSpec, load_panel

    template = load_template("ecommerce")
    columns = ColumnSpec("date", "revenue", ("search", "social", "display", "email", "tv"),
                         ("price_index", "promo"))
    return load_panel(DEMO_DATA, columns), template


@pytest.fixture(scope="session")
def synthetic_fit(demo_panel):
    """A FitResult without sampling: 2 x 100 posterior draws scattered around each prior's mean,
    and the panel's KPI replaced by what that posterior expects. Unit tests of code that reads
    a posterior (monitoring, refutations) run in milliseconds on it."""
    import arviz as az
    import numpy as np

    from liftos.model.options import FitOptions
    from liftos.model.results import FitResult
    from liftos.model.spec import ModelSpec, build_design

    panel, template = demo_panel
    spec = ModelSpec(template, tuple(panel.channels), tuple(panel.controls), "revenue")
    design = build_design(panel, spec)
    rng = np.random.default_rng(0)

    def around(mean, shape):
        return np.asarray(mean) * np.exp(0.05 * rng.standard_normal((2, 100, *shape)))

    posterior = {"baseline_coef": 0.02 * rng.standard_normal((2, 100, len(design.baseline_names)))
                 + np.r_[1.0, np.zeros(len(design.baseline_names) - 1)],
                 "sigma": around(0.03, ())}
    for block in design.blocks:
        for role, transform in (("adstock", block.adstock), ("saturation", block.saturation)):
            for name in transform.parameter_names:
                means = [getattr(c, role).priors[name].mean() for c in block.configs]
                posterior[block.variable(role, name)] = around(means, (len(means),))
        posterior[block.variable("effect")] = around(
            [c.effect_prior.mean() for c in block.configs], (len(block.configs),))
    idata = az.from_dict(posterior=posterior,
                         sample_stats={"diverging": np.zeros((2, 100), dtype=bool)})
    fit = FitResult(spec=spec, panel=panel, design=design, idata=idata,
                    options=FitOptions(draws=100, chains=2),
                    timing={"compile_s": 0.0, "sampling_s": 0.0, "total_s": 0.0})
    # Rescale so the expected KPI peaks at the data's scale: then the design rebuilt from the
    # new KPI (as FitResult.load does) has the same scales, and a saved copy predicts the same.
    index = np.arange(200)
    expected = (fit.baseline(index) + fit.contributions(index).sum(axis=-1)).mean(axis=0)
    shrink = float((expected / design.y_scale[:, None]).max())
    posterior = {name: values / shrink if name == "baseline_coef" or name.startswith("effect")
                 else values for name, values in posterior.items()}
    idata = az.from_dict(posterior=posterior,
                         sample_stats={"diverging": np.zeros((2, 100), dtype=bool)})
    fit = dataclasses.replace(fit, idata=idata)
    expected = (fit.baseline(index) + fit.contributions(index).sum(axis=-1)).mean(axis=0)
    panel = dataclasses.replace(panel, target=expected)
    return dataclasses.replace(fit, panel=panel, design=build_design(panel, spec))


@pytest.fixture
def champion_home(synthetic_fit, tmp_path, monkeypatch):
    """A data home whose tenant 'acme' has the synthetic fit as its champion."""
    from liftos.home import DataHome

    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    fit_dir = synthetic_fit.save(tmp_path / "fit")
    home = DataHome()
    home.set_champion("acme", {"fit_dir": str(fit_dir), "trust_score": 82.5})
    return home
