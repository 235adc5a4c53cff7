"""One engine's process for the accuracy suite: fits every scenario folder given, in order,
and writes ``<engine>.json`` beside each one's data (a rerun skips folders that have it).

    python bench/_accuracy_fit.py ENGINE DRAWS TUNE CHAINS SEED TARGET FOLDER [FOLDER ...]

TARGET is the target acceptance for every engine, or ``default`` for each one's own.

ENGINE is ``liftos`` (the product's generic template, as a new tenant gets it; ``liftos@FILE``
fits with the template FILE instead and writes ``liftos@<its stem>.json``; ``+low_rank`` after
either samples with nutpie's low-rank mass matrix) or
``pymc-marketing`` (0.19.2 with its defaults: geometric adstock over 8 weeks, logistic
saturation, yearly seasonality of order 2, nutpie; the week index ``t`` as a control for its
trend, as in its own example).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from accuracy_suite import engine_parts, result_label

CONTROLS = ["price", "promo"]


def fit_liftos(folder: Path, channels: list[str], sampler: dict, template: str = "",
               mass_matrix: str = "") -> dict:
    from liftos.config import load_template
    from liftos.data import ColumnSpec, load_panel
    from liftos.model import mmm
    from liftos.model.options import FitOptions
    from liftos.model.spec import ModelSpec
    from liftos.validation.checks import ridges

    panel = load_panel(folder / "data.csv", ColumnSpec("date", "y", tuple(channels),
                                                       tuple(CONTROLS)))
    spec = ModelSpec(load_template(template or "generic"), tuple(channels), tuple(CONTROLS), "y")
    options = FitOptions(**sampler, progress=False, mass_matrix=mass_matrix or "diag")
    result = mmm.fit(panel, spec, options)
    summary = result.summary()
    found = summary["channels"]
    return {"roas": {c: [found[c]["roas_mean"], found[c]["roas_hdi_low"],
                         found[c]["roas_hdi_high"]] for c in channels},
            "ridges": ridges(result),
            "loo": result.loo(),
            "rhat_max": summary["diagnostics"]["rhat_max"],
            "ess_bulk_min": summary["diagnostics"]["ess_bulk_min"],
            "divergences": summary["diagnostics"]["divergences"]}


def fit_pymc_marketing(folder: Path, channels: list[str], sampler: dict) -> dict:
    import arviz as az
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    frame = pd.read_csv(folder / "data.csv", parse_dates=["date"])
    model = MMM(date_column="date", channel_columns=channels, control_columns=[*CONTROLS, "t"],
                adstock=GeometricAdstock(l_max=8), saturation=LogisticSaturation(),
                yearly_seasonality=2)
    model.fit(frame.drop(columns=["y"]), frame["y"], nuts_sampler="nutpie",
              chains=sampler["chains"], draws=sampler["draws"], tune=sampler["tune"],
              random_seed=sampler["seed"], progressbar=False,
              **{k: v for k, v in sampler.items() if k == "target_accept"})
    contribution = model.compute_channel_contribution_original_scale()
    roas = contribution.sum("date") / frame[channels].sum().values
    samples = roas.stack(sample=("chain", "draw")).transpose("sample", "channel").values
    posterior = model.idata.posterior
    free = [v for v in posterior.data_vars if v in {rv.name for rv in model.model.free_RVs}]
    rhat, ess = az.rhat(posterior[free]), az.ess(posterior[free])
    result = {}
    for index, channel in enumerate(channels):
        low, high = az.hdi(samples[:, index], hdi_prob=0.94)
        result[channel] = [float(samples[:, index].mean()), float(low), float(high)]
    return {"roas": result, "rhat_max": max(float(rhat[v].max()) for v in free),
            "ess_bulk_min": min(float(ess[v].min()) for v in free),
            "divergences": int(model.idata.sample_stats["diverging"].sum())}


def main() -> None:
    warnings.filterwarnings("ignore")
    engine, draws, tune, chains, seed, target, *folders = sys.argv[1:]
    sampler = {"draws": int(draws), "tune": int(tune), "chains": int(chains), "seed": int(seed)}
    if target != "default":  # each engine's own target acceptance unless one is set for all
        sampler["target_accept"] = float(target)
    label = result_label(engine)
    engine, template, mass_matrix = engine_parts(engine)
    if engine != "liftos" and (template or mass_matrix):
        raise SystemExit(f"{label}: only liftos takes @TEMPLATE or +MASS_MATRIX")
    fit = {"liftos": fit_liftos, "pymc-marketing": fit_pymc_marketing}[engine]
    options = [template, mass_matrix] if engine == "liftos" else []
    for name in folders:
        folder = Path(name)
        out = folder / f"{label}.json"
        if out.exists():
            continue
        truth = json.loads((folder / "truth.json").read_text())["roas"]
        started = time.perf_counter()
        try:
            result = fit(folder, list(truth), sampler, *options)
        except Exception as exc:  # noqa: BLE001 - a failed fit is a result of the suite
            result = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        result["wall_s"] = time.perf_counter() - started
        result["sampler"] = sampler
        out.write_text(json.dumps(result))
        print(f"{label} {folder.name}: {result['wall_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
