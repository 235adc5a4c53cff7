"""One pymc-marketing 0.19.2 process: fit a simulated data set, then its BudgetOptimizer (the
baseline of bench_planner.py). Arguments: a JSON file with data, columns, sampler settings,
weekly budget and per-channel bounds; prints RESULT {allocation, seconds}."""

import json
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
import pandas as pd
from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

spec = json.loads(Path(sys.argv[1]).read_text())
frame = pd.read_csv(spec["data"], parse_dates=["date"])
model = MMM(date_column="date", channel_columns=spec["channels"],
            control_columns=spec["controls"] or None,
            adstock=GeometricAdstock(l_max=spec["l_max"]), saturation=LogisticSaturation(),
            yearly_seasonality=2)
model.fit(frame.drop(columns=[spec["target"]]), frame[spec["target"]], nuts_sampler="nutpie",
          chains=spec["chains"], draws=spec["draws"], tune=spec["tune"],
          random_seed=spec["seed"], progressbar=False)
started = time.perf_counter()
allocation, result = model.optimize_budget(
    budget=spec["budget"], num_periods=spec["horizon"],
    budget_bounds={c: tuple(b) for c, b in spec["bounds"].items()})
seconds = time.perf_counter() - started
print("RESULT " + json.dumps({
    "allocation": {c: float(allocation.sel(channel=c)) for c in spec["channels"]},
    "seconds": seconds, "success": bool(result.success)}))
