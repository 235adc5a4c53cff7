"""One refresh run for bench_scale.py, in a process of its own (as a Prefect worker would start
it): ``mmm-refresh`` for one tenant or ``portfolio-refresh`` for several, without validation.
Prints {"wall_s", "fits": {tenant: timing}} as JSON on its last line."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", required=True, help="comma-separated")
    parser.add_argument("--dask-address", default=None)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args()
    from liftos.model.options import ModelOptions
    from liftos_app.flows.refresh import mmm_refresh, portfolio_refresh

    tenants = args.tenants.split(",")
    options = ModelOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=1)
    started = time.perf_counter()
    if len(tenants) == 1:
        summaries = {tenants[0]: mmm_refresh(tenant=tenants[0], options=options,
                                             run_validation=False,
                                             dask_address=args.dask_address)}
    else:
        summaries = portfolio_refresh(tenants=tenants, options=options, run_validation=False,
                                      dask_address=args.dask_address)
    wall = time.perf_counter() - started
    fits = {tenant: json.loads((Path(s.fit_dir) / "summary.json").read_text())["timing"]
            for tenant, s in summaries.items()}
    print(json.dumps({"wall_s": wall, "fits": fits}))


if __name__ == "__main__":
    main()
