"""Reading a CSV a person made: every row checked against the header, true line numbers.

Both the model's input tables (``liftos.data``) and file ingestion (``liftos.ingest.files``) read
CSVs here, so both report the same precise errors: a row with a field missing (which would shift
values into the wrong columns), a header naming a column twice, bytes that are not UTF-8 (with
a hint), the line of each row even after quoted fields that span lines. Blank lines are
skipped. Columns come back as text; each reader parses its own types.
"""

from __future__ import annotations

import csv
import io

import polars as pl

from liftos.errors import InputError


def read_csv(payload: bytes, name: str) -> tuple[pl.DataFrame, list[int]]:
    """A CSV upload as text columns, with each row's line in the file (quoted fields may span
    lines). Every row must have the header's fields (one missing would shift values into the
    wrong columns); blank lines are skipped."""
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = payload[:exc.start].count(b"\n") + 1
        raise InputError("utf8", f"byte 0x{payload[exc.start]:02x} is not UTF-8; save the file "
                         "as UTF-8 (it may be Latin-1, or a spreadsheet rather than a CSV)",
                         name, None, line) from None
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
