"""Sampler options: one model for the command line, the Prefect flows and the bench.

``ModelOptions`` is what a run may choose (the Prefect UI renders it as a form, the CLI turns
each field into a flag with its description as help). ``FitOptions`` derives from it and adds how
this process samples (progress bar, cores, mass matrix), which never changes the fit's key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelOptions(BaseModel):
    """Sampler settings a run may change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    draws: int = Field(1000, ge=1, description="posterior draws per chain")
    tune: int = Field(1000, ge=1, description="warm-up (tuning) steps per chain")
    chains: int = Field(4, ge=1, description="independent chains (r-hat needs at least 2)")
    seed: int = Field(1, description="random seed: the same seed gives the same posterior")
    target_accept: float = Field(
        0.9, gt=0, lt=1, description="NUTS target acceptance rate: higher takes smaller steps, "
                                     "fewer divergences on ridged posteriors, slower")
    sampler: Literal["nutpie", "pymc"] = Field(
        "nutpie", description="NUTS implementation (nutpie compiles with numba; pymc is the "
                              "reference)")

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def fit_options(self, progress: bool = False) -> FitOptions:
        return FitOptions(**self.model_dump(), progress=progress)


class FitOptions(ModelOptions):
    """How this process samples: the run's options plus local execution choices."""

    progress: bool = True
    cores: int | None = None
    # "diag" is robust (no divergences on the reference data); "low_rank" takes ~3x fewer
    # gradients per draw on correlated posteriors but diverged occasionally there (bench/).
    mass_matrix: Literal["diag", "low_rank"] = "diag"
