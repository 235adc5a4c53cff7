"""Does the pooled geo model's 94% ROAS interval contain the truth ~94% of the time?

``tests/test_model.py::test_geo_model_pools_channel_effects`` holds one seed to a relative error
because its truth sat on the edge of the HDI. This checks that this was chance, not a biased
model: the same scenario (ecommerce, 3 geos, search + tv, 104 weeks, the test's sampler
settings) over a fixed list of seeds, truth from the simulator. Prints one table.

    .venv/bin/python bench/bench_coverage.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from liftos.config import load_template
from liftos.data import ColumnSpec, load_panel
from liftos.model import mmm
from liftos.model.options import FitOptions
from liftos.model.spec import ModelSpec
from liftos.simulate import simulate
from liftos_app.cli.options import add_model_options, model_options

CHANNELS = ("search", "tv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    # the sampler flags of `liftos fit`, at the geo test's settings
    add_model_options(parser, defaults={"draws": 500, "tune": 500, "chains": 2})
    parser.add_argument("--geos", type=int, default=3)
    args = parser.parse_args()
    template = load_template("ecommerce")
    spec = ModelSpec(template, CHANNELS, tuple(template.controls), "revenue")
    options = model_options(args, FitOptions, progress=False)
    rows, inside, errors = [], 0, []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(1, args.seeds + 1):
            sim = simulate(template, weeks=104, seed=seed, geos=args.geos, channels=list(CHANNELS))
            data, _ = sim.write(Path(folder) / str(seed))
            panel = load_panel(data, ColumnSpec("date", "revenue", CHANNELS,
                                                tuple(template.controls),
                                                "geo" if args.geos > 1 else None))
            summary = mmm.fit(panel, spec, options).summary()
            for channel in CHANNELS:
                truth = sim.truth["channels"][channel]["roas"]
                ch = summary["channels"][channel]
                hit = ch["roas_hdi_low"] <= truth <= ch["roas_hdi_high"]
                inside += hit
                errors.append(ch["roas_mean"] / truth - 1)
                rows.append((seed, channel, truth, ch["roas_mean"], ch["roas_hdi_low"],
                             ch["roas_hdi_high"], hit, summary["diagnostics"]["rhat_max"]))
    print(f"{args.geos} geo(s); sampler: {args.chains} chains x {args.tune} tune x "
          f"{args.draws} draws")
    print(f"{'seed':>4} {'channel':<8}{'true':>8}{'mean':>8}{'94% HDI':>20}  inside  r-hat")
    for seed, channel, truth, mean, low, high, hit, rhat in rows:
        print(f"{seed:>4} {channel:<8}{truth:>8.3f}{mean:>8.3f}   [{low:>6.3f}, {high:>6.3f}]"
              f"  {'yes' if hit else 'NO':>6}  {rhat:.3f}")
    n = len(rows)
    below = sum(math.comb(n, k) * 0.94 ** k * 0.06 ** (n - k) for k in range(inside + 1))
    errors.sort()
    print(f"coverage {inside}/{n} = {inside / n:.0%} (nominal 94%; P(<= {inside} | 94%) = "
          f"{below:.2f}); median |ROAS error| "
          f"{sorted(abs(e) for e in errors)[n // 2]:.1%}; mean error {sum(errors) / n:+.1%}")


if __name__ == "__main__":
    main()
