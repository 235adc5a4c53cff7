"""Data quality of the canonical tables, checked by Great Expectations suites.

Each expectation has a severity:

* ``critical``: the batch is not loaded and the run fails, naming the expectation and example
  rows (duplicate keys, two currencies in one account, a week without outcome).
* ``quarantine``: the failing rows are set aside with their reason and the rest is loaded
  (negative spend, days outside the requested window, an unmapped campaign, a spend spike).
* ``warning``: reported, nothing withheld (a gap in an account's days).

Values that need context (a campaign's rolling median spend, an account's currencies over
history, the gap before a day) are derived with polars; Great Expectations checks them and
keeps the result, which is stored with the run. GX is imported here only (6-8 s), and one
ephemeral context serves a whole sync: suites take the window as parameters.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict

from liftos.errors import LiftOSError

Severity = Literal["critical", "quarantine", "warning"]


class QualityRules(BaseModel):
    """Thresholds and severities; a tenant may override them (``sources.quality``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spike_factor: float = 25.0
    spike_window_days: int = 28
    spike_min_history: int = 7
    gap_tolerance_days: int = 7
    severity: dict[str, Severity] = {}


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    description: str
    column: str


MEDIA_RULES = (
    Rule("unique_keys", "critical", "one row per (source, account, campaign, day)", "campaign_id"),
    Rule("one_currency_per_account", "critical", "each account reports in one currency",
         "currency"),
    Rule("non_negative_spend", "quarantine", "spend is not negative", "spend_micros"),
    Rule("dates_in_range", "quarantine", "days inside the requested window", "date"),
    Rule("channel_mapped", "quarantine", "the campaign maps to a modelling channel", "channel"),
    Rule("spend_spike", "quarantine", "spend within N x the campaign's rolling median",
         "spend_micros"),
    Rule("no_gaps", "warning", "no run of missing days longer than the tolerance", "date"),
)
OUTCOME_RULES = (
    Rule("unique_keys", "critical", "one row per (source, day, KPI)", "kpi"),
    Rule("dates_in_range", "quarantine", "days inside the requested window", "date"),
    Rule("value_present", "quarantine", "the KPI value is a number", "value"),
    Rule("non_negative_value", "quarantine", "the KPI value is not negative", "value"),
)
PANEL_RULES = (
    Rule("outcome_every_week", "critical", "every week with spend has an outcome", "week"),
)


@dataclass
class Finding:
    expectation: str
    severity: Severity
    description: str
    failed: int
    examples: list[dict[str, Any]]

    def line(self) -> str:
        return (f"{self.expectation} [{self.severity}]: {self.failed} row(s) fail "
                f"'{self.description}', e.g. {json.dumps(self.examples[:3], default=str)}")


@dataclass
class QualityReport:
    table: str
    checked: int
    findings: list[Finding]
    passed: pl.DataFrame
    quarantined: pl.DataFrame
    seconds: float
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def critical(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "critical"]

    def summary(self) -> dict[str, Any]:
        return {"table": self.table, "checked": self.checked, "passed": self.passed.height,
                "quarantined": self.quarantined.height, "seconds": round(self.seconds, 3),
                "statistics": self.statistics,
                "findings": [f.__dict__ for f in self.findings]}


class QualityFailed(LiftOSError):
    """A critical expectation failed: names it, where, and example rows."""

    def __init__(self, where: str, findings: list[Finding]):
        super().__init__(f"{where}: critical data-quality check failed: "
                         + "; ".join(f.line() for f in findings))
        self.findings = findings


class Checker:
    """One ephemeral Great Expectations context with the LiftOS suites, reused across batches."""

    def __init__(self, rules: QualityRules | None = None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.rules = rules or QualityRules()
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_pandas("liftos")
        self._definitions: dict[str, Any] = {}
        self._build("media_daily", MEDIA_RULES, self._media_expectations())
        self._build("outcome_daily", OUTCOME_RULES, self._outcome_expectations())
        self._build("panel_weeks", PANEL_RULES, self._panel_expectations())

    # -- suites -----------------------------------------------------------------------------
    def _media_expectations(self) -> dict[str, Any]:
        import great_expectations.expectations as gxe

        return {
            "unique_keys": gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["source", "account_id", "campaign_id", "date"]),
            "one_currency_per_account": gxe.ExpectColumnValuesToBeBetween(
                column="account_currencies", max_value=1),
            "non_negative_spend": gxe.ExpectColumnValuesToBeBetween(
                column="spend_micros", min_value=0),
            "dates_in_range": gxe.ExpectColumnValuesToBeBetween(
                column="date", min_value={"$PARAMETER": "first"},
                max_value={"$PARAMETER": "last"}),
            "channel_mapped": gxe.ExpectColumnValuesToNotBeNull(column="channel"),
            "spend_spike": gxe.ExpectColumnValuesToBeBetween(
                column="spend_vs_median", max_value=self.rules.spike_factor),
            "no_gaps": gxe.ExpectColumnValuesToBeBetween(
                column="gap_days", max_value=self.rules.gap_tolerance_days),
        }

    def _outcome_expectations(self) -> dict[str, Any]:
        import great_expectations.expectations as gxe

        return {
            "unique_keys": gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["source", "date", "kpi"]),
            "dates_in_range": gxe.ExpectColumnValuesToBeBetween(
                column="date", min_value={"$PARAMETER": "first"},
                max_value={"$PARAMETER": "last"}),
            "value_present": gxe.ExpectColumnValuesToNotBeNull(column="value"),
            "non_negative_value": gxe.ExpectColumnValuesToBeBetween(column="value",
                                                                    min_value=0),
        }

    def _panel_expectations(self) -> dict[str, Any]:
        import great_expectations.expectations as gxe

        return {"outcome_every_week": gxe.ExpectColumnValuesToBeBetween(
            column="outcome_days", min_value=1)}

    def _build(self, table: str, rules: tuple[Rule, ...], expectations: dict[str, Any]) -> None:
        gx = self._gx
        suite = self.context.suites.add(gx.ExpectationSuite(name=table))
        for rule in rules:
            expectation = expectations[rule.name]
            expectation.meta = {"rule": rule.name}
            suite.add_expectation(expectation)
        batch = self._source.add_dataframe_asset(table).add_batch_definition_whole_dataframe(
            "batch")
        self._definitions[table] = (rules, self.context.validation_definitions.add(
            gx.ValidationDefinition(name=table, data=batch, suite=suite)))

    # -- checks -----------------------------------------------------------------------------
    def check_media(self, new: pl.DataFrame, history: pl.DataFrame | None,
                    first: dt.date | None, last: dt.date | None) -> QualityReport:
        derived = _media_context(new, history, self.rules)
        return self._run("media_daily", new, derived, first, last)

    def check_outcome(self, new: pl.DataFrame, first: dt.date | None,
                      last: dt.date | None) -> QualityReport:
        return self._run("outcome_daily", new, new, first, last)

    def check_panel(self, media: pl.DataFrame, outcome: pl.DataFrame,
                    kpi: str) -> QualityReport:
        weeks = _panel_weeks(media, outcome, kpi)
        return self._run("panel_weeks", weeks, weeks, None, None)

    def _run(self, table: str, rows: pl.DataFrame, derived: pl.DataFrame,
             first: dt.date | None, last: dt.date | None) -> QualityReport:
        started = time.perf_counter()
        rules, definition = self._definitions[table]
        frame = _to_pandas(derived)
        low = dt.datetime.combine(first, dt.time()) if first else dt.datetime(1900, 1, 1)
        high = dt.datetime.combine(last, dt.time()) if last else dt.datetime(2999, 12, 31)
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={"first": low, "last": high},
            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False})
        by_rule = {r.expectation_config.meta["rule"]: r for r in result.results}
        findings, reasons = [], pl.Series("reason", [None] * rows.height, dtype=pl.Utf8)
        severity = {r.name: self.rules.severity.get(r.name, r.severity) for r in rules}
        rule_of = pl.Series("rule", [None] * rows.height, dtype=pl.Utf8)
        for rule in rules:
            outcome = by_rule[rule.name]
            if outcome.exception_info.get("raised_exception"):
                raise LiftOSError(f"data-quality check {rule.name} could not run: "
                                  f"{outcome.exception_info.get('exception_message')}")
            if outcome.success:
                continue
            index = outcome.result.get("unexpected_index_list") or []
            examples = [_example(derived, i, rule.column) for i in index[:5]]
            findings.append(Finding(rule.name, severity[rule.name], rule.description,
                                    int(outcome.result.get("unexpected_count", len(index))),
                                    examples))
            if severity[rule.name] == "quarantine" and index:
                mask = pl.Series([False] * rows.height)
                mask = mask.scatter(index, True)
                fresh = mask & reasons.is_null()
                reasons = pl.select(pl.when(fresh).then(pl.lit(
                    f"{rule.name}: {rule.description}")).otherwise(reasons)).to_series()
                rule_of = pl.select(pl.when(fresh).then(pl.lit(rule.name))
                                    .otherwise(rule_of)).to_series()
        flagged = reasons.is_not_null()
        quarantined = rows.filter(flagged).with_columns(
            reasons.filter(flagged).alias("reason"), rule_of.filter(flagged).alias("expectation"))
        return QualityReport(table, rows.height, findings, rows.filter(~flagged), quarantined,
                             time.perf_counter() - started,
                             {"evaluated_expectations": len(result.results),
                              "successful_expectations": sum(r.success for r in result.results)})


def _media_context(new: pl.DataFrame, history: pl.DataFrame | None,
                   rules: QualityRules) -> pl.DataFrame:
    """The new rows with what their checks need from history: the account's number of
    currencies, spend relative to the campaign's rolling median, the gap before the day."""
    key = ["source", "account_id", "campaign_id", "date"]
    numbered = new.with_row_index("_row")
    past = (history.select(key + ["currency", "spend_micros"]) if history is not None
            and history.height else None)
    both = numbered.select(["_row"] + key + ["currency", "spend_micros"])
    if past is not None:
        past = past.join(new.select(key), on=key, how="anti").with_columns(
            pl.lit(None, pl.UInt32).alias("_row"))
        both = pl.concat([past.select(both.columns), both])
    currencies = both.group_by("source", "account_id").agg(
        pl.col("currency").n_unique().alias("account_currencies"))
    window = rules.spike_window_days
    spikes = (both.sort("date").with_columns(
        pl.col("spend_micros").cast(pl.Float64).shift(1)
        .rolling_median(window, min_samples=rules.spike_min_history)
        .over("source", "account_id", "campaign_id").alias("_median"))
        .filter(pl.col("_row").is_not_null())
        .select("_row", pl.when(pl.col("_median") > 0)
                .then(pl.col("spend_micros") / pl.col("_median")).alias("spend_vs_median")))
    days = both.select("source", "account_id", "date").unique().sort("date").with_columns(
        (pl.col("date") - pl.col("date").shift(1)).dt.total_days().over("source", "account_id")
        .alias("gap_days"))
    return (numbered.join(currencies, on=["source", "account_id"], how="left")
            .join(spikes, on="_row", how="left")
            .join(days, on=["source", "account_id", "date"], how="left")
            .sort("_row").drop("_row"))


def _panel_weeks(media: pl.DataFrame, outcome: pl.DataFrame, kpi: str) -> pl.DataFrame:
    week = pl.col("date").dt.truncate("1w")
    spend_weeks = media.select(week.alias("week")).unique()
    if spend_weeks.height:
        spend_weeks = pl.DataFrame({"week": pl.date_range(
            spend_weeks["week"].min(), spend_weeks["week"].max(), "1w", eager=True)})
    days = (outcome.filter(pl.col("kpi") == kpi).group_by(week.alias("week"))
            .agg(pl.col("date").n_unique().alias("outcome_days")))
    return spend_weeks.join(days, on="week", how="left").with_columns(
        pl.col("outcome_days").fill_null(0)).sort("week")


def _to_pandas(frame: pl.DataFrame):
    """GX reads pandas: dates as datetimes, decimals as floats (checks only, never stored)."""
    casts = [pl.col(c).cast(pl.Datetime("us")) for c, t in frame.schema.items() if t == pl.Date]
    casts += [pl.col(c).cast(pl.Float64) for c, t in frame.schema.items()
              if isinstance(t, pl.Decimal)]
    return frame.with_columns(casts).to_pandas()


def _example(frame: pl.DataFrame, index: int, column: str) -> dict[str, Any]:
    row = frame.row(index, named=True)
    keep = [c for c in ("account_id", "campaign_id", "campaign_name", "date", "week", "kpi",
                        column) if c in row]
    keep += [c for c in ("spend_vs_median", "account_currencies", "gap_days", "outcome_days")
             if c in row and c not in keep]
    return {"row": index, **{c: row[c] for c in keep}}
