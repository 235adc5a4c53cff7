"""Adstock and saturation math against values computed by hand."""

import numpy as np
import pytensor.tensor as pt
import pytest

from liftos.features.transforms import (
    GeometricAdstock,
    HillSaturation,
    LogisticSaturation,
    Prior,
    WeibullAdstock,
    adstock_numpy,
    lagged,
)


def test_geometric_adstock_unnormalised_by_hand():
    # x = [1, 0, 0, 2], alpha = 0.5, max_lag 3: y_t = x_t + 0.5 x_{t-1} + 0.25 x_{t-2}
    adstock = GeometricAdstock(max_lag=3, normalize=False)
    x = np.array([[1.0], [0.0], [0.0], [2.0]])
    out = adstock_numpy(adstock, x, alpha=np.array([0.5]))
    np.testing.assert_allclose(out[:, 0], [1.0, 0.5, 0.25, 2.0])


def test_geometric_adstock_normalised_weights_sum_to_one():
    adstock = GeometricAdstock(max_lag=3)
    x = np.array([[1.0], [0.0], [0.0], [2.0]])
    out = adstock_numpy(adstock, x, alpha=np.array([0.5]))
    np.testing.assert_allclose(out[:, 0], np.array([1.0, 0.5, 0.25, 2.0]) / 1.75)


def test_weibull_cdf_weights_by_hand():
    adstock = WeibullAdstock(kind="cdf", max_lag=3, normalize=False)
    w = adstock.weights(np, np.arange(3.0), shape=np.array([2.0]), scale=np.array([2.0]))
    np.testing.assert_allclose(w[:, 0], [1.0, np.exp(-0.25), np.exp(-1.0)])


def test_weibull_cdf_gradients_are_finite_for_every_shape():
    """exp(-(0/scale)^shape) has a NaN gradient in scale for shape < 1; NUTS counted ~80% of
    an education fit's transitions divergent from it."""
    import pytensor

    shape, scale = pt.dvector("shape"), pt.dvector("scale")
    weights = WeibullAdstock(kind="cdf", max_lag=6).weights(pt, np.arange(6.0), shape, scale)
    gradient = pytensor.function([shape, scale], pytensor.grad(weights[2, 0], [shape, scale]))
    for k in (0.3, 0.7, 1.0, 2.5):
        assert np.isfinite(np.concatenate(gradient([k], [5.0]))).all(), k


def test_weibull_pdf_peaks_after_a_delay():
    adstock = WeibullAdstock(kind="pdf", max_lag=8)
    w = adstock.weights(np, np.arange(8.0), shape=np.array([3.0]), scale=np.array([4.0]))[:, 0]
    assert np.argmax(w) in (2, 3)
    assert w.sum() == pytest.approx(1.0)


def test_logistic_saturation_by_hand():
    sat = LogisticSaturation()
    # (1 - e^-2) / (1 + e^-2) with lam = 2, x = 1
    expected = (1 - np.exp(-2)) / (1 + np.exp(-2))
    assert sat.apply(np, np.array(1.0), lam=2.0) == pytest.approx(expected)
    assert sat.apply(np, np.array(0.0), lam=2.0) == 0.0


def test_hill_saturation_by_hand():
    sat = HillSaturation()
    assert sat.apply(np, np.array(0.5), half_saturation=0.5, slope=2.0) == pytest.approx(0.5)
    assert sat.apply(np, np.array(1.0), half_saturation=0.5, slope=2.0) == pytest.approx(0.8)
    assert sat.apply(np, np.array(0.0), half_saturation=0.5, slope=2.0) == pytest.approx(0.0, abs=1e-12)


def test_same_formula_in_pytensor_and_numpy():
    x = np.linspace(0, 1.5, 7)
    for sat, params in [(LogisticSaturation(), {"lam": 3.0}),
                        (HillSaturation(), {"half_saturation": 0.4, "slope": 1.7})]:
        symbolic = sat.apply(pt, pt.as_tensor(x), **params).eval()
        np.testing.assert_allclose(symbolic, sat.apply(np, x, **params), rtol=1e-12)
    lags = np.arange(4.0)
    adstock = GeometricAdstock(max_lag=4)
    np.testing.assert_allclose(
        adstock.weights(pt, pt.as_tensor(lags), alpha=pt.as_tensor([0.3, 0.7])).eval(),
        adstock.weights(np, lags, alpha=np.array([0.3, 0.7])))


def test_lagged_stacks_past_values_with_zeros_before_start():
    x = np.arange(1.0, 5.0)[:, None]
    out = lagged(x, 3)
    np.testing.assert_array_equal(out[:, :, 0], [[1, 0, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2]])


def test_prior_rejects_wrong_parameters():
    with pytest.raises(ValueError, match="Beta prior takes parameters"):
        Prior(dist="Beta", alpha=1.0)
    with pytest.raises(ValueError, match="must be > 0"):
        Prior(dist="HalfNormal", sigma=-1.0)
    assert Prior(dist="Beta", alpha=1, beta=3).mean() == pytest.approx(0.25)


def test_transform_rejects_unknown_prior_and_keeps_defaults():
    with pytest.raises(ValueError, match="unknown prior"):
        GeometricAdstock(priors={"lam": Prior(dist="Gamma", alpha=1, beta=1)})
    hill = HillSaturation(priors={"slope": Prior(dist="Gamma", alpha=2, beta=1)})
    assert set(hill.priors) == {"half_saturation", "slope"}
    assert hill.priors["slope"].params == {"alpha": 2.0, "beta": 1.0}
