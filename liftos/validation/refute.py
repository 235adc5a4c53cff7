"""Refutation tests: the model should find nothing where there is nothing.

* Placebo: a channel of random spend (same level and variability as the real channels, but
  unrelated to the KPI) must get close to zero contribution.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from liftos.data import Panel

PLACEBO = "placebo"


def with_placebo(panel: Panel, seed: int = 0) -> Panel:
    """``panel`` plus a ``placebo`` channel: each real week's spend of a random channel, shuffled
    in time, so it looks like real spend but cannot have caused anything."""
    rng = np.random.default_rng(seed)
    source = panel.spend[:, :, rng.integers(panel.spend.shape[2])]
    placebo = np.stack([rng.permutation(source[g]) for g in range(source.shape[0])])
    return dataclasses.replace(
        panel, channels=[*panel.channels, PLACEBO],
        spend=np.concatenate([panel.spend, placebo[:, :, None]], axis=2))
