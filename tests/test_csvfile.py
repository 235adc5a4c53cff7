"""liftos.csvfile: the one CSV reader of model inputs and uploads."""

from __future__ import annotations

import os
import re

import pytest

from liftos.csvfile import check_file, decode, read_csv
from liftos.errors import InputError


def test_utf8_with_a_bom_and_latin1_exports_both_read():
    assert decode("\ufeffdate,spend\n".encode(), "a.csv") == "date,spend\n"
    assert decode("caf\xe9,1\n".encode("latin-1"), "b.csv") == "caf\xe9,1\n"


@pytest.mark.parametrize("payload, words", [
    (b"PK\x03\x04rest", "ZIP archive (an .xlsx workbook?)"),
    (b"%PDF-1.7", "a PDF document"),
    ("date,spend\n".encode("utf-16"), "NUL bytes"),
])
def test_files_that_are_not_csv_are_named_for_what_they_are(payload, words):
    with pytest.raises(InputError, match=re.escape(words)) as info:
        decode(payload, "upload.csv")
    assert info.value.file == "upload.csv"


def test_rows_keep_their_true_line_numbers_across_quoted_newlines_and_blank_lines():
    text = 'date,note,spend\n2025-01-06,"two\nlines",10\n\n2025-01-13,plain,20\n'
    frame, lines = read_csv(text.encode(), "x.csv")
    assert frame["note"].to_list() == ["two\nlines", "plain"]
    assert lines == [2, 5]
    assert frame["spend"].to_list() == ["10", "20"]  # text: the caller parses amounts exactly


def test_a_short_row_is_refused_with_its_line():
    with pytest.raises(InputError) as info:
        read_csv(b"date,spend\n2025-01-06,1\n2025-01-13\n", "x.csv")
    assert (info.value.rule, info.value.line) == ("row_shape", 3)


def test_a_repeated_header_column_is_refused():
    with pytest.raises(InputError, match=r"\['spend'\] appear more than once") as info:
        read_csv(b"date,spend,spend\n", "x.csv")
    assert info.value.rule == "header"


def test_paths_that_are_not_readable_files_say_what_they_are(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        check_file(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="is a folder"):
        check_file(tmp_path)
    os.symlink(tmp_path / "nowhere", tmp_path / "link.csv")
    with pytest.raises(InputError, match="points nowhere"):
        check_file(tmp_path / "link.csv")
