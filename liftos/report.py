"""A report a marketer can read: markdown with the key numbers and four PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liftos.validation.checks import unconverged
from liftos.validation.thresholds import THRESHOLDS as T


def write_report(result, out_dir: str | Path) -> Path:
    """Write ``report.md`` and ``plots/*.png`` for a fit; returns the markdown path."""
    import matplotlib

    from liftos.home import write_json
    from liftos.validation.lift import calibration_rows
    from liftos.validation.runner import not_recoverable

    matplotlib.use("Agg")
    out = Path(out_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    series = result.time_series()
    curves = result.response_curves()
    _plot_fit(series, summary, plots / "fit_vs_actual.png")
    _plot_contributions(series, result.spec.channels, summary, plots / "contributions.png")
    _plot_roas(summary, plots / "roas.png")
    _plot_response_curves(curves, summary, plots / "response_curves.png")
    write_json(out / "series.json", series_json(result))
    write_json(out / "curves.json", {"curves": curves})
    path = out / "report.md"
    path.write_text(_markdown(summary, curves, not_recoverable(out))
                    + _calibration_markdown(calibration_rows(result), summary["kpi"]["unit"]))
    return path


def _calibration_markdown(rows: list[dict], unit: str) -> str:
    if not rows:
        return ""
    lines = ["", "## Calibration", "",
             (f"The fit was calibrated on {len(rows)} measurement(s) of a channel's contribution "
              f"({unit}): lift tests, or what the champion implied (memory priors)."), "",
             "| source | channel | weeks | measured (± se) | this fit (94% interval) |",
             "|---|---|---|---:|---:|"]
    for r in rows:
        weeks = f"{r['start'] or 'start'} to {r['end'] or 'end'}"
        lines.append(f"| {r['source']} | {r['channel']} | {weeks} | {r['measured']:,.0f} "
                     f"(± {r['sd']:,.0f}) | {r['model_mean']:,.0f} ({r['model_low']:,.0f}–"
                     f"{r['model_high']:,.0f}) |")
    return "\n".join([*lines, ""])


def data_uri(path: Path, width: int = 720) -> str:
    """A PNG as a ``data:`` URI, scaled down to ``width`` pixels: an artifact that carries its
    own pictures shows them in the Prefect UI from any browser (a file link only works on the
    machine that ran the flow)."""
    import base64
    import io

    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((width, width * 4))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def series_json(result) -> dict[str, Any]:
    """The weekly series behind the plots, for the API: actual, fitted with its 94% band,
    baseline, and each channel's mean contribution (KPI units, summed over geos)."""
    series = result.time_series()
    contribution = np.asarray(series["contribution_mean"])
    return {"dates": [str(d)[:10] for d in series["dates"]],
            **{k: np.asarray(series[k]).tolist() for k in
               ("actual", "fitted_mean", "fitted_low", "fitted_high", "baseline_mean")},
            "channels": {name: contribution[:, c].tolist()
                         for c, name in enumerate(result.spec.channels)}}


def curves_json(result) -> dict[str, Any]:
    return {"curves": result.response_curves()}


def _markdown(summary: dict[str, Any], curves: dict[str, dict],
              unrecoverable: dict[str, str]) -> str:
    run, kpi, diag, fit = summary["run"], summary["kpi"], summary["diagnostics"], summary["fit"]
    data = run["data"]
    ratio = "ROAS" if kpi["kind"] == "revenue" else f"{kpi['name']} per unit of spend"
    unsettled = unconverged(summary["channels"])
    lines = [
        f"# Marketing-mix report: {kpi['name']}",
        "",
        (f"Data: `{data['source']}` ({data['weeks']} weeks, {data['start']} to {data['end']}, "
        f"{len(data['geos'])} geo(s)); template `{run['template']}`; sha256 `{data['sha256'][:12]}`."),
        *[f"Note: {note}." for note in data["notes"]],
        "",
        "## What each channel caused",
        "",
        f"| channel | spend | contribution ({kpi['unit']}) | {ratio} (94% interval) | share of media |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, ch in sorted(summary["channels"].items(), key=lambda kv: -kv[1]["roas_mean"]):
        flag = "" if ch["roas_plausible"] else " ⚠ outside template bounds"
        estimate = (f"{_num(ch['roas_mean'])} ({_num(ch['roas_hdi_low'])}–"
                    f"{_num(ch['roas_hdi_high'])}){flag}")
        if name in unsettled:
            estimate += f" ⚠ not converged ({unsettled[name]})"
        if name in unrecoverable:
            estimate = f"not recoverable on this spend (the fit says {estimate})"
        lines.append(f"| {name} | {ch['spend_total']:,.0f} | {ch['contribution_total_mean']:,.0f} "
                     f"| {estimate} | {ch['share_mean']:.1%} |")
    lines += [f"- **{name}**: not recoverable: {why}." for name, why in unrecoverable.items()]
    lines += ["", "![ROAS](plots/roas.png)", "", "## Where the next dollar goes", ""]
    for name, curve in curves.items():
        spend = np.array(curve["spend"])
        response = np.array(curve["response_mean"])
        current = curve["current_weekly_spend"]
        i = int(np.searchsorted(spend, current))
        i = min(max(i, 1), len(spend) - 1)
        marginal = (response[i] - response[i - 1]) / max(spend[i] - spend[i - 1], 1e-12)
        lines.append(f"- **{name}**: at the current {current:,.0f} a week, the next unit of "
                     f"spend returns about {_num(marginal)} {kpi['unit']} (marginal {ratio}).")
    lines += ["", "![Response curves](plots/response_curves.png)", "",
              "## Fit and contributions over time", "",
              f"In-sample R² {fit['r2']:.3f}, MAPE {fit['mape']:.1%}.", "",
              "![Fit vs actual](plots/fit_vs_actual.png)", "",
              "![Contributions](plots/contributions.png)", "",
              "## Can we trust the sampler?", "",
              "| check | value | target | status |", "|---|---:|---:|---|",
              _check_row("max r-hat", diag["rhat_max"], f"≤ {T.rhat_ok}", diag["rhat_max"] <= T.rhat_ok),
              _check_row("min bulk ESS", diag["ess_bulk_min"], f"≥ {T.ess_ok}",
                         diag["ess_bulk_min"] >= T.ess_ok),
              _check_row("divergences", diag["divergences"], "0", diag["divergences"] == 0),
              "",
              (f"Sampler {diag['sampler']}: {diag['chains']} chains × {diag['draws']} draws "
              f"after {diag['tune']} tuning steps."), ""]
    return "\n".join(lines)


def _check_row(name: str, value: float, target: str, ok: bool) -> str:
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    return f"| {name} | {shown} | {target} | {'ok' if ok else 'CHECK'} |"


def _num(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 0.01 else f"{value:.2e}"


def _plot_fit(series, summary, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    dates = series["dates"]
    ax.fill_between(dates, series["fitted_low"], series["fitted_high"], alpha=0.25,
                    label="94% predictive interval")
    ax.plot(dates, series["fitted_mean"], label="model")
    ax.plot(dates, series["actual"], "k.", ms=3, label="actual")
    ax.set_title(f"{summary['kpi']['name']}: model vs actual")
    ax.legend(loc="upper left")
    _save(fig, path)


def _plot_contributions(series, channels, summary, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    stack = [series["baseline_mean"]] + [series["contribution_mean"][:, c]
                                         for c in range(len(channels))]
    ax.stackplot(series["dates"], *stack, labels=["baseline", *channels], alpha=0.8)
    ax.plot(series["dates"], series["actual"], "k.", ms=3, label="actual")
    ax.set_title(f"What drove {summary['kpi']['name']} each week")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    _save(fig, path)


def _plot_roas(summary, path: Path) -> None:
    import matplotlib.pyplot as plt

    names = list(summary["channels"])
    ch = summary["channels"]
    means = np.array([ch[n]["roas_mean"] for n in names])
    err = np.array([[means[i] - ch[n]["roas_hdi_low"], ch[n]["roas_hdi_high"] - means[i]]
                    for i, n in enumerate(names)]).T
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(names) + 1.5))
    ax.errorbar(means, range(len(names)), xerr=err, fmt="o", capsize=4)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("return per unit of spend (mean, 94% HDI)")
    ax.set_title("ROAS by channel")
    _save(fig, path)


def _plot_response_curves(curves, summary, path: Path) -> None:
    import matplotlib.pyplot as plt

    n = len(curves)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (name, curve) in zip(axes.flat, curves.items()):
        ax.fill_between(curve["spend"], curve["response_hdi_low"], curve["response_hdi_high"],
                        alpha=0.25)
        ax.plot(curve["spend"], curve["response_mean"])
        ax.axvline(curve["current_weekly_spend"], color="k", ls="--", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("weekly spend")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"Weekly {summary['kpi']['name']} response (dashed: current spend)")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
