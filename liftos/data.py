"""Load a wide spend/outcome table (CSV or Parquet) and validate it into a weekly panel.

Wide means one row per week (per geo) and one spend column per channel. Every rule that can fail
raises :class:`InputError` naming the file, the column, the row and the rule. Daily data is
aggregated to weeks automatically.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from liftos.csvfile import check_file, read_csv
from liftos.errors import InputError
from liftos.features.calendar import to_weekly

SINGLE_GEO = "all"
INTERNAL_DATE = "__date__"
MAX_MAGNITUDE = 1e15  # no weekly spend or KPI is this large: a unit or parsing mistake
MIN_SPEND = 1e-6      # money is kept in micros: a smaller positive spend is not money


@dataclass(frozen=True)
class ColumnSpec:
    """Which columns of the table mean what."""

    date_column: str
    target: str
    channels: tuple[str, ...]
    controls: tuple[str, ...] = ()
    geo_column: str | None = None

    def numeric_columns(self) -> list[str]:
        return [self.target, *self.channels, *self.controls]


@dataclass
class Panel:
    """A validated, balanced weekly panel: ``spend[g, t, c]``, ``target[g, t]``."""

    dates: np.ndarray            # (T,) datetime64[D], week starts
    geos: list[str]              # (G,)
    channels: list[str]          # (C,)
    controls: list[str]          # (K,)
    target_name: str
    spend: np.ndarray            # (G, T, C)
    target: np.ndarray           # (G, T)
    control_values: np.ndarray   # (G, T, K)
    source: str = ""
    source_sha256: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def n_weeks(self) -> int:
        return len(self.dates)

    def to_frame(self) -> pl.DataFrame:
        """Long-by-geo, wide-by-channel frame (the layout the CLI reads)."""
        G, T = self.target.shape
        columns: dict[str, object] = {
            "geo": np.repeat(self.geos, T),
            "date": np.tile(self.dates, G),
            self.target_name: self.target.reshape(-1),
        }
        for i, channel in enumerate(self.channels):
            columns[channel] = self.spend[:, :, i].reshape(-1)
        for i, control in enumerate(self.controls):
            columns[control] = self.control_values[:, :, i].reshape(-1)
        return pl.DataFrame(columns).with_columns(pl.col("date").cast(pl.Date))

    def save(self, path: Path) -> None:
        self.to_frame().write_parquet(path)

    def window(self, until: str | None = None, last_weeks: int | None = None) -> Panel:
        """The weeks starting on or before ``until``, then only the last ``last_weeks`` of them."""
        keep = np.ones(self.n_weeks, dtype=bool)
        if until is not None:
            try:
                keep &= self.dates <= np.datetime64(until, "D")
            except ValueError:
                raise InputError("date_parses", f"'until' must be a date YYYY-MM-DD, got {until!r}",
                                 self.source) from None
        index = np.flatnonzero(keep)
        if last_weeks is not None:
            index = index[-last_weeks:]
        if len(index) == 0:
            raise InputError("not_empty", f"no weeks left in the window (until={until}, "
                             f"last_weeks={last_weeks}); data starts {self.dates[0]}", self.source)
        return dataclasses.replace(
            self, dates=self.dates[index], spend=self.spend[:, index],
            target=self.target[:, index], control_values=self.control_values[:, index],
            notes=[*self.notes, f"window: {self.dates[index[0]]} to {self.dates[index[-1]]}"])

    @classmethod
    def load(cls, path: Path, target: str, channels: Sequence[str], controls: Sequence[str],
             source: str = "", source_sha256: str = "") -> Panel:
        """Read a panel written by :meth:`save` (already validated when it was built)."""
        spec = ColumnSpec("date", target, tuple(channels), tuple(controls), "geo")
        panel = _frame_to_panel(pl.read_parquet(path), spec, str(path), None)
        panel.source, panel.source_sha256 = source, source_sha256
        return panel


def load_panel(path: str | Path, spec: ColumnSpec, week_start: str = "monday") -> Panel:
    """Read ``path`` (CSV or Parquet) and validate it into a weekly :class:`Panel`."""
    path = Path(path)
    frame, lines = _read_table(path)
    reader = _RowNamer(path, lines, spec.date_column)
    _check_columns(frame, spec, reader)
    frame = _parse_dates(frame, spec, reader)
    frame = _parse_numbers(frame, spec, reader)
    geo_column = spec.geo_column or "__geo__"
    if spec.geo_column is None:
        frame = frame.with_columns(pl.lit(SINGLE_GEO).alias(geo_column))
    else:
        frame = frame.with_columns(pl.col(geo_column).cast(pl.Utf8))
    _check_order_and_duplicates(frame, spec, geo_column, reader)
    notes: list[str] = []
    frame = _to_weekly_if_daily(frame, spec, geo_column, week_start, reader, notes)
    internal = ColumnSpec(INTERNAL_DATE, spec.target, spec.channels, spec.controls, geo_column)
    panel = _frame_to_panel(frame.rename({spec.date_column: INTERNAL_DATE}), internal,
                            str(path), reader)
    panel.source, panel.source_sha256, panel.notes = str(path), file_sha256(path), notes
    _check_content(panel, spec, reader)
    return panel


class _RowNamer:
    """Turns a 0-based data row index into what a person sees: a CSV line or a Parquet row."""

    def __init__(self, path: Path, lines: list[int] | None = None, date_column: str = ""):
        self.path = str(path)
        self.is_csv = lines is not None
        self.lines = lines or []
        self.date_column = date_column

    def line(self, index: int) -> int:
        return self.lines[index] if self.is_csv else index + 1

    def error(self, rule: str, message: str, column: str | None = None,
              index: int | None = None) -> InputError:
        if column == INTERNAL_DATE:  # the user's own name, not ours
            column = self.date_column
        if index is not None and not self.is_csv:
            message = f"(row {index + 1}) {message}"
            return InputError(rule, message, self.path, column, None)
        return InputError(rule, message, self.path, column,
                          self.line(index) if index is not None else None)


def _read_table(path: Path) -> tuple[pl.DataFrame, list[int] | None]:
    """The table, and for a CSV the file line of each row (None for Parquet)."""
    check_file(path)
    lines = None
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path)
        else:
            frame, lines = read_csv(path.read_bytes(), str(path))
    except InputError:
        raise
    except OSError as exc:
        raise InputError("readable_table", f"cannot read the file: {exc.strerror or exc}",
                         str(path)) from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError("readable_table", f"cannot read the table: {first}", str(path)
                         ) from None
    if frame.height == 0:
        raise InputError("not_empty", "the table has no data rows", str(path))
    return frame, lines


def _check_columns(frame: pl.DataFrame, spec: ColumnSpec, rows: _RowNamer) -> None:
    wanted = [spec.date_column, *spec.numeric_columns()]
    if spec.geo_column:
        wanted.append(spec.geo_column)
    missing = [c for c in wanted if c not in frame.columns]
    if not missing:
        return
    parts = []
    for column in missing:
        close = difflib.get_close_matches(column, frame.columns, n=1, cutoff=0.5)
        parts.append(f"'{column}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    raise rows.error("column_exists", f"missing column(s) {', '.join(parts)}; "
                     f"the table has {frame.columns}", column=missing[0])


def _parse_dates(frame: pl.DataFrame, spec: ColumnSpec, rows: _RowNamer) -> pl.DataFrame:
    column = spec.date_column
    raw = frame[column]
    if raw.dtype == pl.Date:
        parsed = raw
    elif raw.dtype == pl.Datetime:
        parsed = raw.dt.date()
    else:
        text = raw.cast(pl.Utf8).str.strip_chars()
        parsed = text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
        if parsed.null_count() == len(parsed):
            parsed = text.str.to_date(strict=False)
    bad = (parsed.is_null()).arg_true()
    if len(bad):
        i = int(bad[0])
        raise rows.error("date_parses", f"cannot read {raw[i]!r} as a date (expected YYYY-MM-DD)",
                         column, i)
    return frame.with_columns(parsed.alias(column))


def _parse_numbers(frame: pl.DataFrame, spec: ColumnSpec, rows: _RowNamer) -> pl.DataFrame:
    converted = []
    for column in spec.numeric_columns():
        raw = frame[column]
        text = raw.cast(pl.Utf8).str.strip_chars() if raw.dtype == pl.Utf8 else raw
        values = text.cast(pl.Float64, strict=False)
        empty = (text.is_null() | (text.cast(pl.Utf8) == "")).arg_true()
        if len(empty):
            i = int(empty[0])
            raise rows.error("no_missing_values", "empty value (NaN); fill it or drop the row",
                             column, i)
        unreadable = values.is_null().arg_true()
        if len(unreadable):
            i = int(unreadable[0])
            raise rows.error("numeric", f"{raw[i]!r} is not a number", column, i)
        not_finite = (~values.is_finite()).arg_true()
        if len(not_finite):
            i = int(not_finite[0])
            raise rows.error("finite", f"value {raw[i]!r} is not finite (NaN or infinity)",
                             column, i)
        huge = (values.abs() > MAX_MAGNITUDE).arg_true()
        if len(huge):
            i = int(huge[0])
            raise rows.error("magnitude", f"value {values[i]:g} is beyond {MAX_MAGNITUDE:g}; "
                             "check the units", column, i)
        if column in spec.channels:
            dust = ((values > 0) & (values < MIN_SPEND)).arg_true()
            if len(dust):
                i = int(dust[0])
                raise rows.error("spend_resolution", f"spend {values[i]:g} is below one "
                                 f"millionth of a currency unit ({MIN_SPEND:g}); check the "
                                 "units", column, i)
            negative = (values < 0).arg_true()
            if len(negative):
                i = int(negative[0])
                raise rows.error("non_negative_spend",
                                 f"spend {values[i]:g} is negative", column, i)
        converted.append(values.alias(column))
    return frame.with_columns(converted)


def _check_order_and_duplicates(frame: pl.DataFrame, spec: ColumnSpec, geo_column: str,
                                rows: _RowNamer) -> None:
    indexed = frame.select(geo_column, spec.date_column).with_row_index("__row__")
    duplicated = indexed.filter(pl.struct(geo_column, spec.date_column).is_duplicated())
    if duplicated.height:
        first = duplicated.row(0, named=True)
        same = duplicated.filter((pl.col(geo_column) == first[geo_column])
                                 & (pl.col(spec.date_column) == first[spec.date_column]))
        lines = [rows.line(int(i)) for i in same["__row__"]]
        geo = "" if spec.geo_column is None else f" for geo '{first[geo_column]}'"
        raise rows.error("unique_weeks",
                         f"date {first[spec.date_column]} appears more than once{geo} "
                         f"(lines {lines})", spec.date_column, int(same["__row__"][1]))
    for _, group in indexed.group_by(geo_column, maintain_order=True):
        dates = group[spec.date_column]
        backwards = (dates.diff().dt.total_days() < 0).arg_true()
        if len(backwards):
            i = int(group["__row__"][int(backwards[0])])
            raise rows.error("sorted_dates",
                             f"date {frame[spec.date_column][i]} comes after a later date; "
                             "sort the table by date", spec.date_column, i)


def _to_weekly_if_daily(frame: pl.DataFrame, spec: ColumnSpec, geo_column: str,
                        week_start: str, rows: _RowNamer, notes: list[str]) -> pl.DataFrame:
    steps = frame.group_by(geo_column).agg(pl.col(spec.date_column).diff().dt.total_days()
                                           .median().alias("step"))
    if steps["step"].max() is None or steps["step"].max() > 1:
        return frame
    for (geo,), part in frame.group_by(geo_column):
        days = part[spec.date_column]
        expected = pl.date_range(days.min(), days.max(), "1d", eager=True)
        missing = expected.filter(~expected.is_in(days.implode()))
        if len(missing):
            shown = ", ".join(str(d) for d in missing.head(5).to_list())
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            where = "" if geo == SINGLE_GEO else f" in geo '{geo}'"
            raise rows.error("no_missing_days", f"daily data lacks {len(missing)} day(s)"
                             f"{where}: {shown}{more}", spec.date_column)
    weekly, dropped = to_weekly(frame, spec.date_column, sum_columns=[spec.target, *spec.channels],
                                mean_columns=list(spec.controls), by=[geo_column],
                                week_start=week_start)
    notes.append(f"daily rows aggregated to {weekly.height} weekly rows "
                 f"(weeks start on {week_start})")
    if dropped:
        notes.append(f"dropped partial weeks starting {', '.join(map(str, dropped))}")
    return weekly


def _frame_to_panel(frame: pl.DataFrame, spec: ColumnSpec, source: str,
                    rows: _RowNamer | None) -> Panel:
    geo_column = spec.geo_column or "geo"
    geos = list(dict.fromkeys(frame[geo_column].to_list()))
    per_geo = {geo: frame.filter(pl.col(geo_column) == geo).sort(spec.date_column)
               for geo in geos}
    weeks = frame[spec.date_column].unique().sort()
    for geo, part in per_geo.items():  # blame the geo that lacks weeks, naming them
        missing = weeks.filter(~weeks.is_in(part[spec.date_column].implode()))
        if len(missing):
            shown = ", ".join(str(d) for d in missing.head(5).to_list())
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            message = (f"geo '{geo}' lacks {len(missing)} week(s) that other geos have: "
                       f"{shown}{more}; every geo needs the same weeks")
            if rows is None:
                raise InputError("balanced_panel", message, source)
            raise rows.error("balanced_panel", message, spec.date_column)
    reference = per_geo[geos[0]][spec.date_column]
    _check_weekly_steps(reference, spec.date_column, rows, geos[0])
    stack = lambda cols: np.stack(
        [part.select(cols).to_numpy().astype(float) for part in per_geo.values()])
    return Panel(
        dates=reference.to_numpy().astype("datetime64[D]"),
        geos=[str(g) for g in geos],
        channels=list(spec.channels),
        controls=list(spec.controls),
        target_name=spec.target,
        spend=stack(list(spec.channels)),
        target=stack([spec.target])[..., 0],
        control_values=stack(list(spec.controls)) if spec.controls else np.zeros(
            (len(geos), len(reference), 0)),
        source=source,
    )


def _check_weekly_steps(dates: pl.Series, column: str, rows: _RowNamer | None, geo: str) -> None:
    days = dates.diff().dt.total_days().to_numpy()[1:]
    if rows is None or len(days) == 0:
        return
    for i, step in enumerate(days):
        if step == 7:
            continue
        before, after = dates[i], dates[i + 1]
        if step % 7 == 0:
            raise rows.error("no_missing_weeks",
                             f"{int(step // 7) - 1} week(s) missing between {before} and {after}",
                             column)
        raise rows.error("weekly_frequency",
                         f"dates {before} and {after} are {int(step)} days apart; expected "
                         "weekly (7 days) or daily data", column)


def _check_content(panel: Panel, spec: ColumnSpec, rows: _RowNamer) -> None:
    for i, channel in enumerate(panel.channels):
        if not panel.spend[:, :, i].any():
            raise rows.error("channel_has_spend",
                             "channel has zero spend in every week; drop it from --channels",
                             channel)
    for g, geo in enumerate(panel.geos):
        values = panel.target[g]
        if np.ptp(values) == 0:
            where = "" if geo == SINGLE_GEO else f" in geo '{geo}'"
            raise rows.error("target_varies",
                             f"target is constant ({values[0]:g}){where}; nothing to explain",
                             spec.target)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"tv, search"`` -> ``("tv", "search")``; empty items are dropped."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(item.strip() for item in items if item.strip())
