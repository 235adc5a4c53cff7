"""Reading a CSV a person made: every row checked against the header, true line numbers.

Both the model's input tables (``liftos.data``) and file ingestion (``liftos.ingest.files``) read
CSVs here, so both report the same precise errors: a row with a field missing (which would shift
values into the wrong columns), a header naming a column twice, bytes that are not UTF-8 (with
a hint), the line of each row even after quoted fields that span lines. Blank lines are
skipped. Files that are not UTF-8 are read as Latin-1; files that are not text (a workbook, an
archive) are named for what they are. Columns come back as text; each reader parses its own
types.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from liftos.errors import InputError

NOT_CSV = {b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?)", b"\x1f\x8b": "gzip-compressed",
           b"%PDF": "a PDF document", b"\xd0\xcf\x11\xe0": "an .xls workbook"}


def decode(payload: bytes, name: str) -> str:
    """UTF-8 (with or without a BOM); else Latin-1, which every Western spreadsheet export can
    be read as (the amounts and dates that matter are ASCII either way). A file that is not
    text at all is named for what it is."""
    for magic, what in NOT_CSV.items():
        if payload.startswith(magic):
            raise InputError("csv", f"this is {what}, not a CSV file: export the sheet as CSV "
                             "(UTF-8)", name)
    if b"\x00" in payload[:4096]:
        raise InputError("csv", "the file has NUL bytes: it is UTF-16 or binary, not a UTF-8 "
                         "CSV; save it as CSV (UTF-8)", name)
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def check_file(path: Path) -> None:
    """A path that can be read as a file, or an error saying what it is instead."""
    if path.is_symlink() and not path.exists():
        raise InputError("file_exists", "a symbolic link that points nowhere (broken or "
                         "looping)", str(path))
    if not path.exists():
        raise InputError("file_exists", "file not found", str(path))
    if path.is_dir():
        raise InputError("file_exists", "is a folder, not a table file", str(path))


def read_csv(payload: bytes, name: str) -> tuple[pl.DataFrame, list[int]]:
    """A CSV upload as text columns, with each row's line in the file (quoted fields may span
    lines). Every row must have the header's fields (one missing would shift values into the
    wrong columns); blank lines are skipped."""
    text = decode(payload, name)
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if not header:
        raise InputError("header", "the file is empty (no header row)", name)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputError("header", f"column(s) {repeated} appear more than once in the header",
                         name, repeated[0], 1)
    data, lines, end = [], [], rows.line_num
    try:
        for row in rows:
            start, end = end + 1, rows.line_num
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise InputError("row_shape", f"the row has {len(row)} field(s), the header "
                                 f"has {len(header)}", name, None, start)
            data.append(row)
            lines.append(start)
    except csv.Error as exc:
        raise InputError("csv", f"cannot read the file as CSV: {exc}", name, None,
                         rows.line_num) from None
    frame = pl.DataFrame(data, schema={column: pl.Utf8 for column in header}, orient="row")
    return frame.with_columns(pl.all().replace("", None)), lines
