"""Memory-driven priors on the simulator: a short recent window refits better with what a long
history taught than with the template's default priors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from liftos.config import load_template
from liftos.data import ColumnSpec, load_panel
from liftos.errors import InputError
from liftos.model import mmm
from liftos.model.options import FitOptions
from liftos.model.spec import Calibration, ModelSpec, build_design
from liftos.priors import calibrations_from_posterior
from liftos.simulate import simulate

CHANNELS = ("search", "social", "tv")
RECENT = 40


def _errors(summary: dict, truth: dict[str, float]) -> float:
    return float(np.mean([abs(summary["channels"][c]["roas_mean"] / truth[c] - 1)
                          for c in CHANNELS]))


@pytest.mark.slow
def test_priors_from_a_long_history_improve_a_short_window_fit(tmp_path):
    template = load_template("ecommerce")
    spec = ModelSpec(template, CHANNELS, tuple(template.controls), "revenue")
    default_errors, memory_errors = [], []
    for seed in (1, 2, 3):
        sim = simulate(template, weeks=156, seed=seed, channels=list(CHANNELS))
        data, _ = sim.write(tmp_path / str(seed))
        panel = load_panel(data, ColumnSpec("date", "revenue", CHANNELS, tuple(template.controls)))
        history = panel.window(until=str(panel.dates[-RECENT - 1]))
        recent = panel.window(last_weeks=RECENT)
        options = FitOptions(draws=500, tune=500, chains=2, seed=seed, progress=False)
        long_fit = mmm.fit(history, spec, options)
        truth = sim.window_roas(slice(-RECENT, None))
        calibrations = calibrations_from_posterior(long_fit, recent, widen=2.0)
        default = mmm.fit(recent, spec, options).summary()
        informed = mmm.fit(recent, dataclasses.replace(spec, calibrations=calibrations),
                           options).summary()
        default_errors.append(_errors(default, truth))
        memory_errors.append(_errors(informed, truth))
    # Measured: default 8.1%, 9.3%, 23.1%; with memory 11.3%, 3.9%, 8.4% (mean 13.5% -> 7.9%).
    assert np.mean(memory_errors) < 0.75 * np.mean(default_errors), (default_errors, memory_errors)
    assert max(memory_errors) < max(default_errors)


def test_calibrations_shape_the_design_not_the_compiled_graph():
    template = load_template("ecommerce")
    sim = simulate(template, weeks=60, seed=5, channels=list(CHANNELS))
    panel = load_panel_from(sim)
    base = ModelSpec(template, CHANNELS, tuple(template.controls), "revenue")
    one = dataclasses.replace(base, calibrations=(Calibration("tv", 1000.0, 100.0),))
    other = dataclasses.replace(base, calibrations=(Calibration("tv", 5.0, 1.0),))
    assert one.signature(1, "nutpie") == other.signature(1, "nutpie")
    assert one.signature(1, "nutpie") != base.signature(1, "nutpie")
    design = build_design(panel, dataclasses.replace(one, calibrations=(
        Calibration("tv", 1000.0, 100.0, start=str(panel.dates[10]), end=str(panel.dates[19])),)))
    assert design.calibration_mask.sum() == 10
    with pytest.raises(InputError, match="covers no week"):
        build_design(panel, dataclasses.replace(one, calibrations=(
            Calibration("tv", 1.0, 1.0, start="1990-01-01", end="1990-02-01"),)))
    with pytest.raises(InputError, match="does not have"):
        build_design(panel, dataclasses.replace(one, calibrations=(Calibration("radio", 1, 1),)))
    with pytest.raises(ValueError, match="sd must be > 0"):
        Calibration("tv", 1.0, 0.0)
    assert ModelSpec.from_dict(one.to_dict()) == one


def load_panel_from(sim):
    import tempfile
    from pathlib import Path

    data, _ = sim.write(Path(tempfile.mkdtemp()))
    template = load_template("ecommerce")
    return load_panel(data, ColumnSpec("date", "revenue", CHANNELS, tuple(template.controls)))
