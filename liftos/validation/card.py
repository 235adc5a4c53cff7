"""The trust card: every check with its figure and verdict, and one picture of the score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liftos.home import atomic_write
from liftos.report import data_uri
from liftos.validation.trust import TRUST_THRESHOLD


def trust_card_markdown(validation: dict[str, Any], png: Path | None = None,
                        decisions: tuple[int, int] | str | None = None) -> str:
    """The card; ``decisions``: (plan outcomes inside their 94% interval, outcomes), or why the
    decision audit could not be read."""
    trust = validation["trust"]
    lines = [(f"# Trust score {trust['score']:.1f} / 100 "
             f"({'passes' if trust['score'] >= TRUST_THRESHOLD else 'below'} the "
             f"{TRUST_THRESHOLD:.0f} threshold)"), "",
             "| component | score | weight |", "|---|---:|---:|",
             *(f"| {g} | {v:.1f} | {trust['weights'][g]:.0f} |"
               for g, v in trust["components"].items()),
             "", "| group | check | value | threshold | pass | score | detail |",
             "|---|---|---:|---|---|---:|---|",
             *(f"| {c['group']} | {c['name']} | {_fmt(c['value'])} | {c['threshold']} | "
               f"{'yes' if c['passed'] else '**no**'} | {c['score']:.2f} | {c['detail']} |"
               for c in validation["checks"])]
    lines += recovery_lines(validation.get("recovery"))
    if isinstance(decisions, str):
        lines += ["", f"Decision forecasts: the decision audit is broken ({decisions})"]
    elif decisions and decisions[1]:
        inside, total = decisions
        lines += ["", (f"Decision forecasts: {inside} of {total} approved plans' outcomes inside "
                      f"their 94% interval ({inside / total:.0%}; honest intervals give ~94%)")]
    if png is not None:
        lines += ["", f"![trust card]({data_uri(png)})"]
    return "\n".join(lines) + "\n"


def recovery_lines(recovery: dict[str, Any] | None) -> list[str]:
    """Per channel: can this tenant's spend recover its ROAS? A channel that cannot is shown
    as not recoverable, with why, instead of a confident number."""
    if not recovery:
        return []
    families = ", ".join(f"{name} {f['coverage']:.0%} inside, median error {f['median_error']:.0%}"
                         for name, f in recovery["families"].items())
    reported = ("no channel recoverable" if recovery["reported_coverage"] is None else
                f"on the channels reported {recovery['reported_coverage']:.0%} inside the 94% "
                f"interval, median ROAS error {recovery['reported_median_error']:.0%}")
    lines = ["", (f"## Recovery on known truths ({recovery['replicas']} replicas on this tenant's "
                  f"spend: {reported}; all channels {recovery['coverage']:.0%} and "
                  f"{recovery['median_error']:.0%}; by family: {families})"), "",
             ("| channel | inside 94%: own form / all | median error: own form / all | "
             "typical bias | recoverable |"), "|---|---:|---:|---:|---|"]
    for c in recovery["channels"]:
        verdict = "yes" if c["recoverable"] else f"**not recoverable**: {c['reason']}"
        lines.append(f"| {c['channel']} | {c['own_coverage']:.0%} / {c['coverage']:.0%} | "
                     f"{c['own_median_error']:.0%} / {c['median_error']:.0%} | "
                     f"{c['median_bias']:+.0%} | {verdict} |")
    return lines


def write_trust_card_png(validation: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trust = validation["trust"]
    groups = list(trust["components"])
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(groups)))
    values = [trust["components"][g] for g in groups]
    ax.barh(groups, values, color=["#2e7d32" if v >= TRUST_THRESHOLD else "#c62828"
                                   for v in values])
    ax.axvline(TRUST_THRESHOLD, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0, 100)
    ax.set_title(f"Trust score {trust['score']:.1f} / 100")
    ax.invert_yaxis()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
