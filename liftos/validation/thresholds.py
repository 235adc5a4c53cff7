"""Every threshold of the model review in one frozen record: the checks, the report, the trust
card and the champion gate read these values, so a limit is changed in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    rhat_ok: float = 1.01               # convergence: r-hat at or below passes ...
    rhat_bad: float = 1.1               # ... and scores 0 from here
    ess_ok: float = 400                 # bulk effective sample size
    coverage: tuple[float, float] = (0.85, 0.995)   # in-sample share inside the 94% interval
    data_ratio_ok: float = 10           # rows per free parameter
    vif_ok: float = 5.0                 # collinearity between channels ...
    vif_bad: float = 20.0               # ... scores 0 from here
    contraction_informed: float = 0.7   # posterior sd / prior sd below this: data informed it
    prior_tail: float = 0.05            # a posterior median beyond this tail of its prior ...
    ridge_corr: float = 0.5             # ... with |corr(log ROAS, log saturation)| from here
    placebo_share_max: float = 0.02     # share of media contribution a placebo may take
    mape_ok: float = 0.10               # holdout and backtest MAPE ...
    mape_bad: float = 0.30              # ... scores 0 from here
    holdout_r2_ok: float = 0.5
    holdout_coverage_ok: float = 0.75
    shuffle_share_kept_max: float = 0.5  # a time-shuffled channel keeps less than this share
    robustness_ok: float = 0.10          # confounder robustness value (weakest channel) ...
    robustness_full: float = 0.20        # ... scores 1 from here
    trust: float = 70.0                  # the trust score a challenger needs
    out_of_sample_tolerance: float = 0.10  # holdout MAPE may be this much worse than the champion's


THRESHOLDS = Thresholds()
