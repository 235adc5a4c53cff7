"""The accuracy suite: 30 simulated marketing panels with known ROAS, hard and varied on purpose.

Its own generator, written for this suite with numpy only (not ``liftos.simulate``, which draws
from LiftOS's own model family). Six families of five seeds each:

| family | what makes it hard |
|---|---|
| standard | the textbook case: geometric carry-over, Hill saturation, always-on spend |
| flighted | bursts of spend with weeks of none, strong carry-over |
| correlated | channels moved by one shared budget cycle (log-spend correlation 0.7-0.9) |
| shifting | a level break in the baseline and a random-walk baseline (not a smooth trend) |
| foreign | outside both models' family: delayed-peak adstock, exponential/tanh saturation |
| wide | 8-10 channels, 104-208 weeks, price and promotions that matter, noise 8-10% |

Every panel has 2-10 channels, 104-208 weeks, noise 3-10% of the mean KPI, a ``price`` and a
``promo`` control (and ``t``, a week index, for models that take their trend as a control).
The truth is each channel's ROAS over the panel's weeks: its whole contribution divided by its
whole spend, the quantity both models report. ``write`` puts ``data.csv`` and ``truth.json``
in a folder, so a run can be reread and checked.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

FAMILIES = ("standard", "flighted", "correlated", "shifting", "foreign", "wide")
SEEDS = (1, 2, 3, 4, 5)
CONTROLS = ("price", "promo")
MAX_LAG = 8


@dataclass
class Scenario:
    """One panel's recipe, drawn from its family's ranges by its seed."""

    family: str
    seed: int
    weeks: int
    channels: int
    noise: float
    media_share: float
    spend: list[str]  # per channel: always-on, flighted or correlated
    adstock: list[dict]
    saturation: list[dict]
    roas: list[float]
    correlation: float = 0.0
    level_break: float = 0.0
    walk: float = 0.0
    price_elasticity: float = 0.3
    promo_lift: float = 0.05
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.family}-{self.seed}"


def recipe(family: str, seed: int) -> Scenario:
    """The family's ranges, drawn with this seed (a fixed list: families x SEEDS)."""
    rng = np.random.default_rng([FAMILIES.index(family), seed, 20261201])
    channels = int(rng.integers(8, 11) if family == "wide" else rng.integers(2, 7))
    weeks = int(rng.integers(104, 209))
    kinds = {"flighted": ["flighted"] * channels,
             "correlated": ["correlated"] * channels}.get(
        family, [str(rng.choice(["always-on", "always-on", "flighted"])) for _ in range(channels)])
    if family == "standard":
        kinds = ["always-on"] * channels
    alphas = rng.uniform(0.55, 0.85, channels) if family == "flighted" else \
        rng.uniform(0.05, 0.75, channels)
    if family == "foreign":
        adstock = [{"form": "delayed", "alpha": float(a), "peak": int(rng.integers(1, 4))}
                   for a in rng.uniform(0.3, 0.7, channels)]
        saturation = [{"form": str(rng.choice(["exponential", "tanh"])),
                       "half": float(h)} for h in rng.uniform(0.4, 2.5, channels)]
    else:
        adstock = [{"form": "geometric", "alpha": float(a)} for a in alphas]
        # half-saturation relative to the channel's mean adstocked spend: 0.3 is deep in
        # saturation ("near"), 3 is nearly linear ("far")
        saturation = [{"form": "hill", "half": float(h), "shape": float(s)}
                      for h, s in zip(rng.uniform(0.3, 3.0, channels),
                                      rng.uniform(0.8, 2.5, channels), strict=True)]
    return Scenario(
        family=family, seed=seed, weeks=weeks, channels=channels,
        noise=float(rng.uniform(0.08, 0.10) if family == "wide" else rng.uniform(0.03, 0.08)),
        media_share=float(rng.uniform(0.2, 0.5)), spend=kinds, adstock=adstock,
        saturation=saturation, roas=[float(r) for r in rng.uniform(0.5, 5.0, channels)],
        correlation=float(rng.uniform(0.7, 0.9)) if family == "correlated" else 0.0,
        level_break=float(rng.choice([-1, 1]) * rng.uniform(0.15, 0.3))
        if family == "shifting" else 0.0,
        walk=0.02 if family == "shifting" else 0.0,
        price_elasticity=float(rng.uniform(0.8, 1.5) if family == "wide" else 0.3),
        promo_lift=float(rng.uniform(0.15, 0.3) if family == "wide" else 0.05))


def result_label(engine: str) -> str:
    """The name of an engine's results: ``liftos@path/roas.yaml+low_rank`` writes
    ``liftos@roas+low_rank``."""
    name, template, mass_matrix = engine_parts(engine)
    return (name + (f"@{Path(template).stem}" if template else "")
            + (f"+{mass_matrix}" if mass_matrix else ""))


def engine_parts(engine: str) -> tuple[str, str, str]:
    """``NAME[@TEMPLATE][+MASS_MATRIX]``: LiftOS with another template or nutpie mass matrix."""
    rest, _, mass_matrix = engine.partition("+")
    name, _, template = rest.partition("@")
    return name, template, mass_matrix


def suite() -> list[Scenario]:
    return [recipe(family, seed) for family in FAMILIES for seed in SEEDS]


@dataclass
class Panel:
    scenario: Scenario
    frame: pd.DataFrame
    truth: dict[str, float]
    response: np.ndarray  # weeks x channels: each channel's contribution per unit of ROAS

    @property
    def channels(self) -> list[str]:
        return [f"ch{index + 1}" for index in range(self.scenario.channels)]

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.frame.to_csv(folder / "data.csv", index=False)
        (folder / "truth.json").write_text(json.dumps(
            {"roas": self.truth, "scenario": asdict(self.scenario)}, indent=1))
        return folder


def generate(scenario: Scenario) -> Panel:
    """Draw the panel: spend, media contributions with the set ROAS, baseline, controls."""
    rng = np.random.default_rng([FAMILIES.index(scenario.family), scenario.seed, 7])
    weeks, count = scenario.weeks, scenario.channels
    spend = _spend(scenario, rng)
    response = np.empty_like(spend)
    for c in range(count):
        shape = _saturate(_carry(spend[:, c], scenario.adstock[c]), scenario.saturation[c])
        response[:, c] = shape * spend[:, c].sum() / shape.sum()
    contribution = response * np.array(scenario.roas)
    media = contribution.sum(axis=1)
    level = media.mean() * (1 - scenario.media_share) / scenario.media_share
    t = np.arange(weeks)
    baseline = level * (1 + 0.1 * np.sin(2 * np.pi * t / 52.18) + 0.05 * np.cos(
        4 * np.pi * t / 52.18) + 0.1 * t / weeks)
    if scenario.level_break:
        baseline = baseline * np.where(t >= int(rng.integers(weeks // 3, 2 * weeks // 3)),
                                       1 + scenario.level_break, 1.0)
    if scenario.walk:
        baseline = baseline * np.exp(np.cumsum(rng.normal(0, scenario.walk, weeks)))
    price = 1 + 0.1 * _ar1(rng, weeks, 0.8)
    promo = (rng.random(weeks) < 0.08).astype(float)
    baseline = baseline * (1 - scenario.price_elasticity * (price - 1)) * (
        1 + scenario.promo_lift * promo)
    kpi = baseline + media
    kpi = kpi + rng.normal(0, scenario.noise * kpi.mean(), weeks)
    frame = pd.DataFrame({"date": pd.date_range("2021-01-04", periods=weeks, freq="7D")
                          .strftime("%Y-%m-%d"), "y": kpi.round(2)})
    names = [f"ch{index + 1}" for index in range(count)]
    for c, name in enumerate(names):
        frame[name] = spend[:, c].round(2)
    frame["price"], frame["promo"], frame["t"] = price.round(4), promo, t
    rounded = frame[names].to_numpy()
    truth = {name: float(contribution[:, c].sum() / rounded[:, c].sum())
             for c, name in enumerate(names)}
    return Panel(scenario, frame, truth, response)


def _ar1(rng: np.random.Generator, weeks: int, phi: float) -> np.ndarray:
    out = np.zeros(weeks)
    shocks = rng.normal(0, np.sqrt(1 - phi**2), weeks)
    for week in range(1, weeks):
        out[week] = phi * out[week - 1] + shocks[week]
    return out


def _spend(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    weeks, count = scenario.weeks, scenario.channels
    scale = rng.uniform(1_000, 20_000, count)
    shared = _ar1(rng, weeks, 0.9)
    spend = np.empty((weeks, count))
    for c, kind in enumerate(scenario.spend):
        own = _ar1(rng, weeks, 0.6)
        if kind == "correlated":
            rho = np.sqrt(scenario.correlation)  # log-spend correlation between two channels
            spend[:, c] = scale[c] * np.exp(0.5 * (rho * shared + np.sqrt(1 - rho**2) * own))
        elif kind == "flighted":
            spend[:, c] = scale[c] * np.exp(0.3 * own) * _flights(rng, weeks)
        else:
            spend[:, c] = scale[c] * np.exp(0.35 * own) * (
                1 + 0.2 * np.sin(2 * np.pi * (np.arange(weeks) / 52.18 + rng.random())))
    return spend


def _flights(rng: np.random.Generator, weeks: int) -> np.ndarray:
    """On for 2-6 weeks, off for 2-8, from a random first state."""
    on, out, week = bool(rng.random() < 0.5), np.zeros(weeks), 0
    while week < weeks:
        span = int(rng.integers(2, 7) if on else rng.integers(2, 9))
        out[week:week + span] = 1.0 if on else 0.0
        week, on = week + span, not on
    if not out.any():
        out[: weeks // 4] = 1.0
    return out


def _carry(spend: np.ndarray, adstock: dict) -> np.ndarray:
    """Carry-over weights summing to 1 over MAX_LAG weeks (spend's effect is not lost)."""
    lags = np.arange(MAX_LAG)
    if adstock["form"] == "delayed":
        weights = adstock["alpha"] ** ((lags - adstock["peak"]) ** 2)
    else:
        weights = adstock["alpha"] ** lags
    weights = weights / weights.sum()
    return np.convolve(spend, weights)[: len(spend)]


def _saturate(carried: np.ndarray, saturation: dict) -> np.ndarray:
    x = carried / (saturation["half"] * carried.mean())
    if saturation["form"] == "exponential":
        return 1 - np.exp(-x * np.log(2))
    if saturation["form"] == "tanh":
        return np.tanh(x * np.arctanh(0.5))
    return x ** saturation["shape"] / (1 + x ** saturation["shape"])


def known_shapes(panel: Panel) -> dict:
    """What the data holds: least squares that knows every channel's true carry-over and
    saturation (the exact weekly response), fitting only each ROAS and the baseline's terms
    (intercept, trend, yearly Fourier order 2, price, promo). No model that must also learn
    the shapes can expect to beat its error, except by priors that happen to be right; its
    94% interval is the t interval of the coefficient."""
    from scipy import stats

    frame, weeks = panel.frame, panel.scenario.weeks
    t = np.arange(weeks)
    angle = 2 * np.pi * t / 52.18
    baseline = np.column_stack([np.ones(weeks), t / weeks, np.sin(angle), np.cos(angle),
                                np.sin(2 * angle), np.cos(2 * angle), frame["price"],
                                frame["promo"]])
    design = np.column_stack([baseline, panel.response])
    y = frame["y"].to_numpy()
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    freedom = weeks - design.shape[1]
    residual = y - design @ coefficients
    covariance = residual @ residual / freedom * np.linalg.inv(design.T @ design)
    half = stats.t.ppf(0.97, freedom)
    spend = frame[panel.channels].to_numpy().sum(axis=0)
    roas = {}
    for c, channel in enumerate(panel.channels):
        k = baseline.shape[1] + c
        scale = panel.response[:, c].sum() / spend[c]
        estimate, sd = coefficients[k] * scale, np.sqrt(covariance[k, k]) * scale
        roas[channel] = [float(estimate), float(estimate - half * sd),
                         float(estimate + half * sd)]
    return {"roas": roas}
