"""liftos.validation.card and thresholds: the trust card states the threshold in force."""

from __future__ import annotations

import dataclasses

from liftos.validation.card import trust_card_markdown, write_trust_card_png
from liftos.validation.thresholds import THRESHOLDS


def _validation(score: float) -> dict:
    return {"trust": {"score": score, "components": {"convergence": 90.0, "fit": 40.0},
                      "weights": {"convergence": 30, "fit": 25}},
            "checks": [{"group": "fit", "name": "holdout MAPE", "value": 0.2,
                        "threshold": "<= 10%", "passed": False, "score": 0.33, "detail": ""}]}


def test_the_card_says_pass_or_below_against_the_configured_threshold(tmp_path):
    assert f"(passes the {THRESHOLDS.trust:.0f} threshold)" in trust_card_markdown(
        _validation(THRESHOLDS.trust))
    png = write_trust_card_png(_validation(75.0), tmp_path / "c.png")
    assert png.stat().st_size > 2_000
    card = trust_card_markdown(_validation(THRESHOLDS.trust - 0.1), png)
    assert "(below the 70 threshold)" in card and "| fit | holdout MAPE | 0.2 |" in card
    assert "**no**" in card


def test_the_card_carries_its_picture_so_any_browser_shows_it(tmp_path):
    """The Prefect UI shows artifacts in a browser that cannot read the flow's disk: the card
    embeds its PNG (a data URI), never a file:// link."""
    import base64
    import io

    from PIL import Image

    png = write_trust_card_png(_validation(75.0), tmp_path / "c.png")
    card = trust_card_markdown(_validation(75.0), png)
    assert "file://" not in card and str(tmp_path) not in card
    encoded = card.split("](data:image/png;base64,")[1].split(")")[0]
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
        assert image.format == "PNG" and 300 <= image.width <= 720


def test_thresholds_are_one_frozen_record():
    try:
        THRESHOLDS.trust = 0.0  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("thresholds can be changed at run time")
    assert THRESHOLDS.rhat_ok < THRESHOLDS.rhat_bad and THRESHOLDS.vif_ok < THRESHOLDS.vif_bad
