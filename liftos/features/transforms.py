"""Media transformations: carry-over (adstock) and diminishing returns (saturation).

Each transformation is a small, validated object that owns its priors and its math. The math is
written once against an array namespace ``xp`` (``numpy`` or ``pytensor.tensor``) so that the
PyMC model, the posterior summaries and the response curves all use the very same formula.

Shapes: parameters have shape ``(..., C)`` (one value per channel, optionally with leading draw
axes); the caller broadcasts them against media arrays of shape ``(..., T, C)``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

_PRIOR_PARAMETERS: dict[str, tuple[str, ...]] = {
    "Beta": ("alpha", "beta"),
    "Gamma": ("alpha", "beta"),
    "HalfNormal": ("sigma",),
    "Normal": ("mu", "sigma"),
    "LogNormal": ("mu", "sigma"),
    "Laplace": ("mu", "b"),
}


class Prior(BaseModel):
    """A prior distribution, written in YAML as ``{dist: Beta, alpha: 1, beta: 3}``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    dist: Literal["Beta", "Gamma", "HalfNormal", "Normal", "LogNormal", "Laplace"]

    @model_validator(mode="after")
    def _parameters_match_distribution(self) -> Prior:
        expected = set(_PRIOR_PARAMETERS[self.dist])
        given = set(self.model_extra or {})
        if given != expected:
            raise ValueError(
                f"{self.dist} prior takes parameters {sorted(expected)}, got {sorted(given)}")
        for name, value in self.params.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(  # noqa: TRY004 - pydantic turns ValueError into a config error
                    f"{self.dist} parameter '{name}' must be a number, got {value!r}")
            if name in ("sigma", "b", "alpha", "beta") and value <= 0:
                raise ValueError(f"{self.dist} parameter '{name}' must be > 0, got {value}")
        return self

    @property
    def params(self) -> dict[str, float]:
        return {key: float(value) for key, value in (self.model_extra or {}).items()}

    def to_pymc(self, name: str, shape: int | tuple[int, ...] | None = None):
        """Create the PyMC random variable inside the current model context."""
        import pymc as pm

        return getattr(pm, self.dist)(name, shape=shape, **self.params)

    def mean(self) -> float:
        """Prior mean, used for defaults in simulation and documentation."""
        p = self.params
        return {
            "Beta": lambda: p["alpha"] / (p["alpha"] + p["beta"]),
            "Gamma": lambda: p["alpha"] / p["beta"],
            "HalfNormal": lambda: p["sigma"] * np.sqrt(2 / np.pi),
            "Normal": lambda: p["mu"],
            "LogNormal": lambda: float(np.exp(p["mu"] + p["sigma"] ** 2 / 2)),
            "Laplace": lambda: p["mu"],
        }[self.dist]()

    def describe(self) -> str:
        return f"{self.dist}(" + ", ".join(f"{k}={v:g}" for k, v in self.params.items()) + ")"


def _prior(dist: str, **params: float) -> Prior:
    return Prior(dist=dist, **params)


class _Transform(BaseModel):
    """Common behaviour: forbid unknown keys; priors default per parameter, override one by one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parameter_names: ClassVar[tuple[str, ...]] = ()
    priors: dict[str, Prior] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete_priors(self) -> _Transform:
        unknown = set(self.priors) - set(self.parameter_names)
        if unknown:
            raise ValueError(f"unknown prior(s) {sorted(unknown)}; "
                             f"this transformation has {list(self.parameter_names)}")
        merged = {**self.default_priors(), **self.priors}
        object.__setattr__(self, "priors", merged)
        return self

    @classmethod
    def default_priors(cls) -> dict[str, Prior]:
        return {}


# ---------------------------------------------------------------------------------------------
# Adstock: weights over lags 0..max_lag-1, applied as a convolution over past spend.
# ---------------------------------------------------------------------------------------------


class GeometricAdstock(_Transform):
    """Carry-over decaying by ``alpha`` per week: w_l = alpha^l (normalised to sum to 1)."""

    type: Literal["geometric"] = "geometric"
    max_lag: int = Field(8, ge=1, le=104)
    normalize: bool = True
    parameter_names: ClassVar[tuple[str, ...]] = ("alpha",)

    @classmethod
    def default_priors(cls) -> dict[str, Prior]:
        return {"alpha": _prior("Beta", alpha=1.0, beta=3.0)}

    def weights(self, xp: Any, lags: Any, alpha: Any) -> Any:
        w = alpha[..., None, :] ** lags[:, None]
        return _normalize(xp, w) if self.normalize else w


class WeibullAdstock(_Transform):
    """Flexible carry-over (Weibull survival, ``kind='cdf'``, or delayed peak, ``kind='pdf'``).

    ``cdf``: w_l = exp(-(l / scale)^shape), a decay whose speed can change over time.
    ``pdf``: w_l = Weibull density at l + 1, allowing the effect to peak after a delay (TV).
    """

    type: Literal["weibull"] = "weibull"
    kind: Literal["cdf", "pdf"] = "cdf"
    max_lag: int = Field(12, ge=1, le=104)
    normalize: bool = True
    parameter_names: ClassVar[tuple[str, ...]] = ("shape", "scale")

    @classmethod
    def default_priors(cls) -> dict[str, Prior]:
        return {"shape": _prior("Gamma", alpha=2.0, beta=2.0),
                "scale": _prior("Gamma", alpha=2.0, beta=0.5)}

    def weights(self, xp: Any, lags: np.ndarray, shape: Any, scale: Any) -> Any:
        """``lags`` are numpy constants (lag 0 is found by value), for pytensor too."""
        k = shape[..., None, :]
        lam = scale[..., None, :]
        if self.kind == "cdf":
            # w_0 = 1 for every shape. Computed as exp(-0^k), its gradient in scale is
            # 0^(k-1)·0 = NaN for shape < 1, and NUTS marks every such step divergent.
            first = lags[:, None] == 0
            safe = xp.where(first, 1.0, lags[:, None])
            w = xp.where(first, 1.0, xp.exp(-((safe / lam) ** k)))
        else:
            t = (lags[:, None] + 1.0) / lam
            w = (k / lam) * t ** (k - 1.0) * xp.exp(-(t ** k))
        return _normalize(xp, w) if self.normalize else w


def _normalize(xp: Any, w: Any) -> Any:
    return w / w.sum(axis=-2, keepdims=True)


Adstock = Annotated[GeometricAdstock | WeibullAdstock, Field(discriminator="type")]


# ---------------------------------------------------------------------------------------------
# Saturation: applied to adstocked spend scaled by the channel's maximum (x in [0, ~1]).
# ---------------------------------------------------------------------------------------------


class LogisticSaturation(_Transform):
    """(1 - e^{-lam x}) / (1 + e^{-lam x}): concave, 0 at 0, tends to 1; ``lam`` sets the bend."""

    type: Literal["logistic"] = "logistic"
    parameter_names: ClassVar[tuple[str, ...]] = ("lam",)

    @classmethod
    def default_priors(cls) -> dict[str, Prior]:
        return {"lam": _prior("Gamma", alpha=3.0, beta=1.0)}

    def apply(self, xp: Any, x: Any, lam: Any) -> Any:
        decay = xp.exp(-lam * x)
        return (1.0 - decay) / (1.0 + decay)


class HillSaturation(_Transform):
    """x^s / (x^s + k^s): S-shaped for s > 1; ``k`` is the half-saturation point (scaled spend)."""

    type: Literal["hill"] = "hill"
    parameter_names: ClassVar[tuple[str, ...]] = ("half_saturation", "slope")

    @classmethod
    def default_priors(cls) -> dict[str, Prior]:
        return {"half_saturation": _prior("Gamma", alpha=2.0, beta=4.0),
                "slope": _prior("Gamma", alpha=3.0, beta=2.0)}

    def apply(self, xp: Any, x: Any, half_saturation: Any, slope: Any) -> Any:
        # Spend of exactly zero would give 0 * log(0) in the gradient of x^slope.
        x_pos = xp.maximum(x, 1e-9)
        xs = x_pos ** slope
        return xs / (xs + half_saturation ** slope)


Saturation = Annotated[LogisticSaturation | HillSaturation, Field(discriminator="type")]


def lagged(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Stack past values: ``(..., T, C) -> (..., T, max_lag, C)``, zeros before the first week."""
    T = x.shape[-2]
    out = np.zeros(x.shape[:-2] + (T, max_lag, x.shape[-1]), dtype=float)
    for lag in range(min(max_lag, T)):
        out[..., lag:, lag, :] = x[..., : T - lag, :]
    return out


def adstock_numpy(adstock: GeometricAdstock | WeibullAdstock, x: np.ndarray,
                  **params: np.ndarray) -> np.ndarray:
    """Adstock a plain series ``(T, C)`` with parameters of shape ``(C,)`` (tests, simulator)."""
    lags = np.arange(adstock.max_lag, dtype=float)
    w = adstock.weights(np, lags, **params)
    return np.einsum("tlc,lc->tc", lagged(x, adstock.max_lag), w)
