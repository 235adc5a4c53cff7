"""liftos.ingest.sources: the one entry point both the CLI and the Prefect task call."""

from __future__ import annotations

import pytest
from support import DEMO_DATA, write_tenant

from liftos.errors import ConfigError
from liftos.ingest.sources import CONNECTORS, ENDPOINT_FIELD, source_settings
from liftos.tenancy import load_tenant


def test_sources_known_and_their_endpoint_overrides():
    assert set(CONNECTORS) == set(ENDPOINT_FIELD) == {"google_ads", "klaviyo"}


def test_a_tenant_without_the_source_is_told_which_file_lacks_it(tmp_path):
    tenant = load_tenant(write_tenant(tmp_path, "acme", DEMO_DATA))
    with pytest.raises(ConfigError, match=r"tenant acme: no 'sources.klaviyo' in .*acme.yaml"):
        source_settings(tenant, "klaviyo")
    with pytest.raises(ConfigError, match=r"unknown source 'meta'; known: \['google_ads', "):
        source_settings(tenant, "meta")


def test_the_configured_source_settings_are_returned(tmp_path):
    path = write_tenant(tmp_path, "acme", DEMO_DATA,
                        sources={"klaviyo": {"since": "2024-01-01", "chunk_days": 30}})
    settings = source_settings(load_tenant(path), "klaviyo")
    assert settings.chunk_days == 30 and str(settings.since) == "2024-01-01"


def test_the_planning_settings_of_a_tenant_are_typed(tmp_path):
    path = write_tenant(tmp_path, "acme", DEMO_DATA,
                        planning={"propose_after_promotion": True, "objective": "cvar"})
    planning = load_tenant(path).planning
    assert planning.propose_after_promotion and planning.objective == "cvar"
    bad = write_tenant(tmp_path, "beta", DEMO_DATA, planning={"objective": "greedy"})
    with pytest.raises(ConfigError, match=r"beta.yaml: invalid planning settings:\n.*"
                                          r"planning.objective"):
        load_tenant(bad)
