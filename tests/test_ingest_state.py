"""liftos.ingest.state and sync: bookmarks, the window a sync reads, and its chunks."""

from __future__ import annotations

from datetime import date
from itertools import pairwise

import pytest

from liftos.errors import LiftOSError
from liftos.home import DataHome
from liftos.ingest.state import Bookmark, Bookmarks, chunks, window
from liftos.ingest.sync import SyncResult, yesterday


def test_a_first_sync_needs_a_start_day():
    with pytest.raises(LiftOSError, match="nothing loaded yet: give the first day"):
        window(None, None, date(2025, 1, 31), 14, "acct-1")
    assert window(None, date(2025, 1, 1), date(2025, 1, 31), 14, "s") == (
        date(2025, 1, 1), date(2025, 1, 31))


def test_a_later_sync_rereads_the_lookback_and_history_requests_win():
    mark = Bookmark(date(2025, 1, 1), date(2025, 1, 31))
    assert window(mark, None, date(2025, 2, 10), 14, "s") == (date(2025, 1, 18),
                                                              date(2025, 2, 10))
    assert window(mark, date(2024, 12, 1), date(2025, 2, 10), 14, "s")[0] == date(2024, 12, 1)
    assert window(mark, None, date(2025, 1, 10), 14, "s") is None  # nothing new yet


def test_chunks_cover_the_window_exactly_once():
    pieces = list(chunks(date(2025, 1, 1), date(2025, 3, 1), 30))
    assert pieces[0] == (date(2025, 1, 1), date(2025, 1, 30))
    assert pieces[-1][1] == date(2025, 3, 1)
    assert all((b[0] - a[1]).days == 1 for a, b in pairwise(pieces))
    with pytest.raises(LiftOSError, match="chunk_days must be at least 1"):
        list(chunks(date(2025, 1, 1), date(2025, 1, 2), 0))


def test_bookmarks_merge_and_survive_a_new_process(tmp_path):
    home = DataHome(tmp_path)
    marks = Bookmarks("acme", "google_ads", home)
    marks.advance("111", date(2025, 2, 1), date(2025, 2, 28))
    marks.advance("111", date(2025, 1, 1), date(2025, 1, 31))
    assert Bookmarks("acme", "google_ads", home).get("111") == Bookmark(date(2025, 1, 1),
                                                                        date(2025, 2, 28))
    assert Bookmarks("acme", "google_ads", home).get("222") is None


def test_yesterday_is_the_accounts_day_and_results_read_as_one_line():
    assert (date.today() - yesterday("Pacific/Kiritimati")).days in (0, 1, 2)
    assert SyncResult("klaviyo").line().startswith("klaviyo: ")
