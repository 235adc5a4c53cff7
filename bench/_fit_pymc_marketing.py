"""One pymc-marketing 0.19.2 process fitting mmm_example.csv with nutpie (the baseline)."""

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
started = time.perf_counter()
import arviz as az
import nutpie
import pandas as pd
from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

data, draws, tune, chains, seed = sys.argv[1], *map(int, sys.argv[2:6])
imported = time.perf_counter() - started

timings = {"compile_s": 0.0, "sampling_s": 0.0}
_compile, _sample = nutpie.compile_pymc_model, nutpie.sample


def timed(name, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timings[name] += time.perf_counter() - t0
    return wrapper


# Instrumentation only: pm.sample(nuts_sampler="nutpie") calls these two functions.
nutpie.compile_pymc_model = timed("compile_s", _compile)
nutpie.sample = timed("sampling_s", _sample)

t0 = time.perf_counter()
frame = pd.read_csv(data, parse_dates=["date_week"])
model = MMM(date_column="date_week", channel_columns=["x1", "x2"],
            control_columns=["event_1", "event_2", "t"], adstock=GeometricAdstock(l_max=8),
            saturation=LogisticSaturation(), yearly_seasonality=2)
model.fit(frame.drop(columns=["y"]), frame["y"], nuts_sampler="nutpie", chains=chains,
          draws=draws, tune=tune, random_seed=seed, progressbar=False)
wall = time.perf_counter() - t0
contribution = model.compute_channel_contribution_original_scale()
roas = contribution.sum("date") / frame[["x1", "x2"]].sum().values
rhat = az.rhat(model.idata.posterior)
ess = az.ess(model.idata.posterior)
free = [v for v in model.idata.posterior.data_vars
        if v in {rv.name for rv in model.model.free_RVs}]
print("RESULT " + json.dumps({"import_s": imported, "runs": [{
    "wall_s": wall, **timings,
    "rhat_max": max(float(rhat[v].max()) for v in free),
    "ess_bulk_min": min(float(ess[v].min()) for v in free),
    "divergences": int(model.idata.sample_stats["diverging"].sum()),
    "roas": {c: float(roas.sel(channel=c).mean()) for c in ("x1", "x2")}}]}))
