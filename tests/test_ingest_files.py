"""File ingestion into the canonical tables: raw kept, idempotent upserts, exact money, mapping,
rebuild from raw, the weekly panel."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from support import write_csv

from liftos.config import load_template
from liftos.errors import InputError
from liftos.home import DataHome
from liftos.ingest.curate import curated_path
from liftos.ingest.files import ingest_file, weekly_panel
from liftos.ingest.landing import RawLanding
from liftos.ingest.rebuild import rebuild

HEADER = ["date", "account_id", "campaign_id", "campaign_name", "cost_micros", "clicks",
          "conversions"]


@pytest.fixture
def home(tmp_path):
    return DataHome(tmp_path / "home")


@pytest.fixture
def template():
    return load_template("ecommerce")


def _media_rows(days: int, micros: int = 1_234_567, conversions: float = 2.0) -> list[list]:
    rows = []
    for d in range(days):
        day = f"2025-01-{d + 6:02d}"
        rows.append([day, "111", "c1", "Brand search", micros, 10, conversions])
        rows.append([day, "111", "c2", "YouTube spring video", 2 * micros, 5, 0.0])
    return rows


def test_media_file_lands_raw_and_upserts_idempotently(tmp_path, home, template):
    path = write_csv(tmp_path / "ads.csv", HEADER, _media_rows(14))
    first = ingest_file(path, "acme", template, home=home)
    assert (first.fetched, first.landed, first.inserted, first.updated) == (28, 1, 28, 0)
    again = ingest_file(path, "acme", template, home=home)
    assert (again.inserted, again.updated) == (0, 28)
    table = pl.read_parquet(curated_path(home, "acme", "media_daily"))
    assert table.height == 28
    landing = RawLanding("acme", "files", home)
    assert len(landing.entries()) == 2  # every request recorded ...
    assert len(list(landing.folder.rglob("*.gz"))) == 1  # ... the same bytes stored once
    assert set(table["channel"]) == {"search", "tv"}
    assert table.filter(pl.col("campaign_id") == "c1")["spend"][0] == Decimal("1.234567")


def test_late_conversions_update_rows_and_rebuild_reproduces_the_tables(tmp_path, home,
                                                                         template):
    ingest_file(write_csv(tmp_path / "a.csv", HEADER, _media_rows(7)), "acme", template,
                home=home)
    late = write_csv(tmp_path / "b.csv", HEADER, _media_rows(7, conversions=5.0)[:4])
    counts = ingest_file(late, "acme", template, home=home)
    assert (counts.inserted, counts.updated) == (0, 4)
    before = pl.read_parquet(curated_path(home, "acme", "media_daily"))
    assert before.filter(pl.col("date") == pl.date(2025, 1, 6),
                         pl.col("campaign_id") == "c1")["conversions"][0] == 5.0
    rebuild("acme", template, home=home)
    after = pl.read_parquet(curated_path(home, "acme", "media_daily"))
    assert after.equals(before)


def test_weekly_panel_from_canonical_tables(tmp_path, home, template):
    ingest_file(write_csv(tmp_path / "ads.csv", HEADER, _media_rows(14)), "acme", template,
                home=home)
    outcome = write_csv(tmp_path / "orders.csv", ["date", "value"],
                        [[f"2025-01-{d + 6:02d}", 100.0 + d] for d in range(14)])
    ingest_file(outcome, "acme", template, kind="outcome", home=home)
    panel = pl.read_csv(weekly_panel("acme", template, home=home))
    assert panel.columns[:2] == ["date", "revenue"] and {"search", "tv"} <= set(panel.columns)
    assert panel.height == 2 and panel["search"][0] == pytest.approx(7 * 1.234567)
    assert panel["revenue"][0] == pytest.approx(sum(100.0 + d for d in range(7)))


def test_bad_files_name_file_column_and_row(tmp_path, home, template):
    rows = _media_rows(2)
    rows[2][0] = "07/01/2025"
    with pytest.raises(InputError, match=r"bad.csv, column 'date', line 4: cannot read"):
        ingest_file(write_csv(tmp_path / "bad.csv", HEADER, rows), "acme", template, home=home)
    unmapped = [[r[0], r[1], r[2], "Podcast sponsorship", r[4], r[5], r[6]] for r in rows[:1]]
    counts = ingest_file(write_csv(tmp_path / "pod.csv", HEADER, unmapped), "acme",
                         load_template("ecommerce", {"channel_rules": [
                             {"source": "klaviyo", "channel": "email"}]}), home=home)
    assert (counts.inserted, counts.quarantined) == (0, 1)
    held = pl.read_parquet(home.folder("acme", "curated") / "quarantine_media_daily.parquet")
    assert held["expectation"].to_list() == ["channel_mapped"]
    assert held["campaign_name"].to_list() == ["Podcast sponsorship"]
    assert len(RawLanding("acme", "files", home).entries()) == 2  # raw kept even when bad


def test_ingest_and_rebuild_commands(tmp_path, monkeypatch, capsys):
    from support import DEMO_DATA, write_tenant

    from liftos_app.cli import main

    monkeypatch.setenv("LIFTOS_TENANTS_DIR", str(tmp_path))
    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    write_tenant(tmp_path, "acme", DEMO_DATA)
    ads = write_csv(tmp_path / "ads.csv", HEADER, _media_rows(7))
    orders = write_csv(tmp_path / "orders.csv", ["date", "value"],
                       [[f"2025-01-{d + 6:02d}", 10.0] for d in range(7)])
    assert main(["ingest", "files", str(ads), "--tenant", "acme"]) == 0
    assert main(["ingest", "files", str(orders), "--tenant", "acme", "--kind", "outcome"]) == 0
    out = capsys.readouterr().out
    assert "fetched 14, landed 1, upserted 14 (14 new, 0 updated), quarantined 0" in out
    assert "weekly panel:" in out
    assert main(["rebuild", "--tenant", "acme"]) == 0
    assert "rebuilt from raw: 2 batch(es) replayed: fetched 21" in capsys.readouterr().out
    assert main(["ingest", "files", str(tmp_path / "nope.csv"), "--tenant", "acme"]) == 2


def test_money_is_exact_even_where_a_float_cannot_hold_it(tmp_path, home, template):
    """9007199254.740993 is 2**53 + 1 millionths: a float64 reads it as ...994."""
    values = ["9007199254.740993", "0.000001", "123456789012.345678"]
    frame = pl.DataFrame({"date": ["2025-01-06", "2025-01-07", "2025-01-08"],
                          "campaign_name": ["Brand search"] * 3, "spend": values})
    path = tmp_path / "ads.csv"
    frame.write_csv(path)
    ingest_file(path, "acme", template, home=home)
    table = pl.read_parquet(curated_path(home, "acme", "media_daily")).sort("date")
    assert table["spend_micros"].to_list() == [9007199254740993, 1, 123456789012345678]
    assert [str(v) for v in table["spend"]] == values


@pytest.mark.parametrize("text, message", [
    ("date,campaign_name,spend\n\n2025-01-06,Brand search,12.50\n\n2025-01-07,Brand search\n",
     r"ads.csv, line 5: the row has 2 field\(s\), the header has 3 \[rule: row_shape\]"),
    ("date,spend,spend\n2025-01-06,1,2\n",
     r"ads.csv, column 'spend', line 1: column\(s\) \['spend'\] appear more than once"),
    (('date,campaign_name,spend\n2025-01-06,Brand search,12.50\n\n'
     '2025-01-07,"Brand search","$24,070.49"\n'),
     (r"ads.csv, column 'spend', line 4: cannot read '\$24,070.49' as an amount .*"
     r"\[rule: money_parses\]")),
])
def test_bad_csv_names_file_line_and_rule(tmp_path, home, template, text, message):
    path = tmp_path / "ads.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        ingest_file(path, "acme", template, home=home)


def test_blank_lines_in_a_csv_are_fine(tmp_path, home, template):
    path = tmp_path / "ads.csv"
    path.write_text("date,campaign_name,spend\n\n2025-01-06,Brand search,12.50\n\n")
    assert ingest_file(path, "acme", template, home=home).inserted == 1


def test_files_that_are_not_utf8_csv(tmp_path, home, template):
    latin = tmp_path / "latin.csv"  # a Latin-1 export: é in a column nobody uses
    latin.write_bytes("date,campaign_name,spend,note\n2025-01-06,Brand search,12.50,"
                      "caf\xe9\n".encode("latin-1"))
    assert ingest_file(latin, "acme", template, home=home).inserted == 1
    workbook = tmp_path / "ads.csv"
    workbook.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(InputError, match=r"ads.csv: this is a ZIP archive \(an .xlsx "
                                         r"workbook\?\), not a CSV file"):
        ingest_file(workbook, "acme", template, home=home)
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match="loop.csv: a symbolic link that points nowhere"):
        ingest_file(loop, "acme", template, home=home)
