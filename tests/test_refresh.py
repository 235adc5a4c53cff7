"""Library pieces behind the refresh and monitor flows (no Prefect)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from support import DEMO_DATA, write_tenant

from liftos.config import load_template
from liftos.data import ColumnSpec, load_panel
from liftos.errors import ConfigError, InputError, LiftOSError
from liftos.model.spec import ModelSpec, build_design
from liftos.refresh import roas_shifts
from liftos.tenancy import load_tenant
from liftos_app.flows.backfill import cutoffs


def _demo_panel():
    template = load_template("ecommerce")
    columns = ColumnSpec("date", "revenue", ("search", "social", "display", "email", "tv"),
                         ("price_index", "promo"))
    spec = ModelSpec(template, columns.channels, columns.controls, "revenue")
    return load_panel(DEMO_DATA, columns), spec


def test_roas_shift_only_when_mean_leaves_the_previous_interval():
    previous = {"tv": {"roas_mean": 2.0, "roas_hdi_low": 1.5, "roas_hdi_high": 2.5},
                "search": {"roas_mean": 3.0, "roas_hdi_low": 2.0, "roas_hdi_high": 4.0}}
    current = {"tv": {"roas_mean": 2.6}, "search": {"roas_mean": 3.9}, "email": {"roas_mean": 9}}
    shifts = roas_shifts(previous, current)
    assert [(s.channel, s.champion_high) for s in shifts] == [("tv", 2.5)]


def test_panel_window_and_reference_design_extrapolate_the_trend():
    panel, spec = _demo_panel()
    head = panel.window(until=str(panel.dates[99]))
    assert head.n_weeks == 100 and head.dates[-1] == panel.dates[99]
    assert panel.window(last_weeks=5).n_weeks == 5
    with pytest.raises(InputError, match="no weeks left"):
        panel.window(until="1999-01-01")
    fitted = build_design(head, spec)
    extended = build_design(panel, spec, reference=fitted)
    np.testing.assert_allclose(extended.trend[:100], fitted.trend)
    assert extended.trend[-1] > 1.5  # 155 weeks on a 0..1 scale over the first 99
    np.testing.assert_allclose(extended.y_scale, fitted.y_scale)
    np.testing.assert_allclose(extended.lagged[0][:, :100], fitted.lagged[0])


def test_tenant_file_errors_name_the_file_and_key(tmp_path):
    bad_zone = write_tenant(tmp_path, "acme", DEMO_DATA, timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match=r"acme.yaml: key 'timezone'.*Mars/Olympus"):
        load_tenant(bad_zone)
    missing = write_tenant(tmp_path, "beta", tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="nope.csv: data file not found"):
        load_tenant(missing)
    with pytest.raises(ConfigError, match="unknown tenant 'ghost'"):
        load_tenant("ghost")
    typo = write_tenant(tmp_path, "gamma", DEMO_DATA)
    typo.write_text(typo.read_text().replace("date_column", "date_col"))
    with pytest.raises(ConfigError, match=r"key 'data.date_col': unknown key"):
        load_tenant(typo)


def test_a_tenants_experiments_calibrate_its_features_and_bad_rows_are_named(tmp_path,
                                                                           monkeypatch):
    import json

    from liftos.home import DataHome
    from liftos.model.spec import Calibration
    from liftos.refresh import build_features, land_input, tenant_ref, validate_input

    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    experiments = tmp_path / "experiments.csv"
    experiments.write_text("channel,start,end,lift,se,name\n"
                           "tv,2024-03-04,2024-03-25,52000,9000,spring test\n"
                           "search,2031-01-06,2031-02-24,1000,100,next year\n")
    path = write_tenant(tmp_path, "acme", DEMO_DATA, experiments="experiments.csv")
    features = build_features(validate_input(land_input(tenant_ref(load_tenant(path),
                                                                   DataHome()))))
    spec = ModelSpec.from_dict(json.loads(Path(features.spec_path).read_text()))
    assert spec.calibrations == (
        Calibration("tv", 52000.0, 9000.0, "2024-03-04", "2024-03-25", "spring test"),)
    assert features.describe().endswith(
        "; 1 lift test(s) as calibration; 1 outside these weeks, not used: next year "
        "(search, 2031-01-06 to 2031-02-24)")

    experiments.write_text("channel,start,end,lift,se\ntv,2024-03-04,2024-03-25,52000,0\n")
    with pytest.raises(InputError, match=r"experiments.csv, column 'se', line 2: Input should "
                                         r"be greater than 0 \(got '0'\) \[rule: lift_test\]"):
        load_tenant(path)
    experiments.write_text("channel,start,end,lift,se\nradio,2024-03-04,2024-03-25,1,1\n")
    with pytest.raises(InputError, match=r"column 'channel', line 2: channel 'radio' is not one "
                                         r"the model has \(search, social, display, email, tv\)"):
        load_tenant(path)
    listed = tmp_path / "experiments.yaml"
    listed.write_text("- channel: tv\n  start: 2024-03-04\n  end: 2024-03-25\n  lift: 5\n"
                      "  se: 1\n- channel: tv\n  start: 2024-13-01\n  end: 2024-12-02\n"
                      "  lift: 5\n  se: 1\n")
    with pytest.raises(InputError, match=r"experiments.yaml, column 'start', line 7: expected a "
                                         r"date YYYY-MM-DD \(got '2024-13-01'\)"):
        load_tenant(write_tenant(tmp_path, "beta", DEMO_DATA, experiments=str(listed)))
    with pytest.raises(ConfigError, match=r"gamma.yaml: key 'experiments': file not found: "):
        load_tenant(write_tenant(tmp_path, "gamma", DEMO_DATA, experiments="nope.csv"))


def test_data_folder_resolves_to_its_data_file(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "data.csv").write_bytes(DEMO_DATA.read_bytes())
    tenant = load_tenant(write_tenant(tmp_path, "acme", DEMO_DATA), data=str(folder))
    assert tenant.data_path == (folder / "data.csv").resolve()


def test_backfill_cutoffs():
    assert cutoffs(date(2025, 1, 6), date(2025, 3, 3), 4) == [
        "2025-01-06", "2025-02-03", "2025-03-03"]
    with pytest.raises(LiftOSError, match="before start"):
        cutoffs(date(2025, 3, 3), date(2025, 1, 6), 4)


def test_code_version_changes_with_any_library_source(tmp_path):
    """Cached fits carry the library's code version: a fix to the model invalidates them."""
    import shutil

    from liftos import code_version

    package = tmp_path / "liftos"
    shutil.copytree(Path(__file__).resolve().parents[1] / "liftos" / "model", package / "model")
    before = code_version.__wrapped__(package)
    assert code_version.__wrapped__(package) == before
    source = package / "model" / "mmm.py"
    source.write_text(source.read_text() + "\n# a changed model\n")
    assert code_version.__wrapped__(package) != before


def test_spec_hash_covers_calibration_values_the_signature_ignores():
    import dataclasses

    from liftos.model.spec import Calibration

    _, spec = _demo_panel()
    one = dataclasses.replace(spec, calibrations=(Calibration("tv", 1000.0, 100.0),))
    wider = dataclasses.replace(spec, calibrations=(Calibration("tv", 1000.0, 200.0),))
    assert one.signature(1, "nutpie") == wider.signature(1, "nutpie")  # same graph
    assert one.sha256() != wider.sha256()                                       # not same model
