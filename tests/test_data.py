"""Every bad-input rule: a clear error naming the file, column, line and rule."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from support import write_csv

from liftos.config import load_template
from liftos.data import ColumnSpec, load_panel
from liftos.errors import InputError
from liftos.model.spec import ModelSpec, build_design

SPEC = ColumnSpec("date", "revenue", ("tv", "search"), ("price",))
HEADER = ["date", "revenue", "tv", "search", "price"]


def weekly_rows(n=30, start=date(2024, 1, 1)):
    rng = np.random.default_rng(0)
    return [[(start + timedelta(weeks=i)).isoformat(), round(1000 + 100 * rng.random(), 2),
             round(50 * rng.random(), 2), round(30 * rng.random(), 2), 1.0] for i in range(n)]


def expect_error(path, rule, spec=SPEC, column=None, line=None) -> InputError:
    with pytest.raises(InputError) as err:
        load_panel(path, spec)
    error = err.value
    assert error.rule == rule, str(error)
    assert str(path) in str(error)
    if column is not None:
        assert error.column == column
    if line is not None:
        assert error.line == line
    return error


def test_valid_table_becomes_a_panel(tmp_path):
    panel = load_panel(write_csv(tmp_path / "ok.csv", HEADER, weekly_rows()), SPEC)
    assert panel.spend.shape == (1, 30, 2) and panel.target.shape == (1, 30)
    assert panel.control_values.shape == (1, 30, 1)
    assert len(panel.source_sha256) == 64


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.csv", "file_exists")


def test_misspelled_column_suggests_closest(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["date", "revenue", "tv", "serach", "price"], weekly_rows())
    error = expect_error(path, "column_exists", column="search")
    assert "did you mean 'serach'" in str(error)


def test_non_numeric_spend_names_line(tmp_path):
    rows = weekly_rows()
    rows[4][2] = "12O.5"
    error = expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), "numeric", column="tv", line=6)
    assert "'12O.5'" in str(error)


def test_negative_spend(tmp_path):
    rows = weekly_rows()
    rows[9][3] = -5
    expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), "non_negative_spend",
                 column="search", line=11)


@pytest.mark.parametrize("value,rule", [("", "no_missing_values"), ("nan", "finite"),
                                        ("inf", "finite")])
def test_nan_and_inf(tmp_path, value, rule):
    rows = weekly_rows()
    rows[2][1] = value
    expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), rule, column="revenue", line=4)


def test_duplicate_week_names_both_lines(tmp_path):
    rows = weekly_rows()
    rows[5][0] = rows[4][0]
    error = expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), "unique_weeks")
    assert "lines [6, 7]" in str(error)


def test_missing_weeks(tmp_path):
    rows = weekly_rows()
    del rows[10:12]
    error = expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), "no_missing_weeks")
    assert "2 week(s) missing" in str(error)


def test_unsorted_dates(tmp_path):
    rows = weekly_rows()
    rows[3], rows[4] = rows[4], rows[3]
    expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), "sorted_dates", line=6)


def test_bad_date(tmp_path):
    rows = weekly_rows()
    rows[7][0] = "2024-13-45"
    expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), "date_parses", column="date", line=9)


def test_channel_all_zeros(tmp_path):
    rows = weekly_rows()
    for row in rows:
        row[2] = 0
    expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), "channel_has_spend", column="tv")


def test_constant_target(tmp_path):
    rows = weekly_rows()
    for row in rows:
        row[1] = 500
    expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), "target_varies", column="revenue")


def test_too_few_rows_for_the_parameters(tmp_path):
    panel = load_panel(write_csv(tmp_path / "d.csv", HEADER, weekly_rows(12)), SPEC)
    spec = ModelSpec(load_template("ecommerce"), SPEC.channels, SPEC.controls, "revenue")
    with pytest.raises(InputError) as err:
        build_design(panel, spec)
    assert err.value.rule == "enough_rows"
    assert "12 weekly rows" in str(err.value)


def test_empty_table(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(",".join(HEADER) + "\n")
    expect_error(path, "not_empty")


def test_daily_data_is_aggregated_to_complete_weeks(tmp_path):
    start = date(2024, 1, 3)  # a Wednesday: the first partial week is dropped
    rows = [[(start + timedelta(days=i)).isoformat(), 10.0 + (i % 5), 1.0 + (i % 3), 2.0, 1.0]
            for i in range(7 * 10)]
    panel = load_panel(write_csv(tmp_path / "daily.csv", HEADER, rows), SPEC)
    assert str(panel.dates[0]) == "2024-01-08"  # first Monday
    assert all((panel.dates[1:] - panel.dates[:-1]).astype(int) == 7)
    # each complete week sums seven days of spend
    frame = pl.read_csv(tmp_path / "daily.csv").with_columns(pl.col("date").str.to_date())
    week = frame.filter((pl.col("date") >= date(2024, 1, 8)) & (pl.col("date") < date(2024, 1, 15)))
    assert panel.spend[0, 0, 0] == pytest.approx(week["tv"].sum())
    assert any("partial weeks" in note for note in panel.notes)


def test_geo_panel_must_be_balanced(tmp_path):
    header = ["date", "geo", "revenue", "tv", "search", "price"]
    rows = [[r[0], geo, *r[1:]] for geo in ("north", "south") for r in weekly_rows(20)]
    rows = [r for r in rows if not (r[1] == "south" and r[0] == rows[-1][0])]
    spec = ColumnSpec("date", "revenue", ("tv", "search"), ("price",), "geo")
    expect_error(write_csv(tmp_path / "g.csv", header, rows), "balanced_panel", spec=spec)


def _csv_text(path, rows, header=HEADER, blank_after=None):
    lines = [",".join(header)]
    for i, row in enumerate(rows):
        lines.append(",".join(str(v) for v in row))
        if blank_after is not None and i == blank_after:
            lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_row_with_a_field_missing_is_refused_not_shifted(tmp_path):
    rows = weekly_rows()
    rows[5] = rows[5][:-1]
    error = expect_error(_csv_text(tmp_path / "d.csv", rows), "row_shape", line=7)
    assert "the row has 4 field(s), the header has 5" in str(error)


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    path = _csv_text(tmp_path / "d.csv", [r + [2.0] for r in weekly_rows()],
                     header=[*HEADER, "tv"])
    expect_error(path, "header", column="tv", line=1)


def test_blank_lines_are_skipped_and_lines_stay_true(tmp_path):
    rows = weekly_rows()
    assert load_panel(_csv_text(tmp_path / "ok.csv", rows, blank_after=3), SPEC).n_weeks == 30
    rows[8][2] = "oops"
    expect_error(_csv_text(tmp_path / "d.csv", rows, blank_after=3), "numeric", column="tv",
                 line=11)  # header, 4 rows, a blank line, then rows 5..9


def test_lines_after_a_quoted_field_that_spans_lines(tmp_path):
    header = [*HEADER, "note"]
    rows = [[*r, ""] for r in weekly_rows()]
    rows[1][-1] = '"launch week\nTV flight starts"'
    rows[6][2] = "oops"
    expect_error(_csv_text(tmp_path / "d.csv", rows, header=header), "numeric", column="tv",
                 line=9)  # the quoted note takes two lines


def test_messages_name_the_users_date_column_not_an_internal_one(tmp_path):
    rows = weekly_rows()
    del rows[10:12]
    spec = ColumnSpec("week_start", "revenue", ("tv", "search"), ("price",))
    path = _csv_text(tmp_path / "d.csv", rows, header=["week_start", *HEADER[1:]])
    error = expect_error(path, "no_missing_weeks", spec=spec, column="week_start")
    assert "__date__" not in str(error)


@pytest.mark.parametrize("column, value, rule", [
    ("tv", "1e300", "magnitude"), ("revenue", "-2e16", "magnitude"),
    ("search", "1e-300", "spend_resolution")])
def test_absurd_values_are_refused_before_a_fit(tmp_path, column, value, rule):
    rows = weekly_rows()
    rows[3][HEADER.index(column)] = value
    expect_error(write_csv(tmp_path / "d.csv", HEADER, rows), rule, column=column, line=5)


def test_an_unbalanced_geo_panel_blames_the_geo_that_lacks_weeks(tmp_path):
    header = ["date", "geo", "revenue", "tv", "search", "price"]
    rows = [[r[0], geo, *r[1:]] for geo in ("north", "south") for r in weekly_rows(20)]
    rows = [r for r in rows if not (r[1] == "north" and r[0] == "2024-02-05")]
    spec = ColumnSpec("date", "revenue", ("tv", "search"), ("price",), "geo")
    error = expect_error(write_csv(tmp_path / "g.csv", header, rows), "balanced_panel",
                         spec=spec)
    assert "geo 'north' lacks 1 week(s) that other geos have: 2024-02-05" in str(error)


def test_daily_data_with_missing_days_names_them(tmp_path):
    start = date(2024, 1, 1)
    rows = [[(start + timedelta(days=i)).isoformat(), 10.0 + (i % 5), 1.0 + (i % 3), 2.0, 1.0]
            for i in range(7 * 10) if i not in (17, 18)]
    error = expect_error(write_csv(tmp_path / "daily.csv", HEADER, rows), "no_missing_days",
                         column="date")
    assert "daily data lacks 2 day(s): 2024-01-18, 2024-01-19" in str(error)


def test_a_quoted_header_is_named_by_its_real_name(tmp_path):
    path = tmp_path / "d.csv"
    lines = ['"date","revenue","tv, national","search","price"'] + [
        ",".join(str(v) for v in row) for row in weekly_rows()]
    path.write_text("\n".join(lines) + "\n")
    spec = ColumnSpec("date", "revenue", ("tv, national", "search"), ("price",))
    assert load_panel(path, spec).channels == ["tv, national", "search"]
