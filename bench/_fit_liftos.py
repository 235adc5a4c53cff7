"""One LiftOS process: a first fit of mmm_example.csv, then a second fit of a same-shaped data set."""

import json
import sys
import time

started = time.perf_counter()
from liftos.config import load_template
from liftos.data import ColumnSpec, load_panel
from liftos.model import mmm
from liftos.model.options import FitOptions
from liftos.model.spec import ModelSpec

data, draws, tune, chains, seed = sys.argv[1], *map(int, sys.argv[2:6])
imported = time.perf_counter() - started
columns = ColumnSpec("date_week", "y", ("x1", "x2"), ("event_1", "event_2"))
spec = ModelSpec(load_template("generic"), ("x1", "x2"), ("event_1", "event_2"), "y")
options = FitOptions(draws=draws, tune=tune, chains=chains, seed=seed, progress=False)
runs = []
for attempt in range(2):
    t0 = time.perf_counter()
    panel = load_panel(data, columns)
    if attempt == 1:  # a new week of data: same shapes, different values
        panel.target = panel.target * 1.03
    result = mmm.fit(panel, spec, options)
    summary = result.summary()
    runs.append({"truth_scale": 1.03 if attempt == 1 else 1.0, "wall_s": time.perf_counter() - t0, "compile_s": result.timing["compile_s"],
                 "sampling_s": result.timing["sampling_s"],
                 "rhat_max": summary["diagnostics"]["rhat_max"],
                 "ess_bulk_min": summary["diagnostics"]["ess_bulk_min"],
                 "divergences": summary["diagnostics"]["divergences"],
                 "roas": {c: summary["channels"][c]["roas_mean"] for c in ("x1", "x2")}})
print("RESULT " + json.dumps({"import_s": imported, "runs": runs}))
