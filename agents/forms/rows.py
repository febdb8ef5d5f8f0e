"""Rows posted by the editor: each row carries a ``<list>[i]._row`` marker input, so a row whose
inputs are all empty (or whose checkboxes are all off) still counts."""

from __future__ import annotations

import re

MAX_ROWS = 500


def row_indices(data, prefix: str) -> list[int]:
    """The row numbers posted under `prefix` (each row carries a ``<prefix>[i]._row`` marker)."""
    pattern = re.compile(rf"^{re.escape(prefix)}\[(\d{{1,4}})\]\._row$")
    found = sorted({int(m.group(1)) for key in data for m in [pattern.match(key)] if m})
    return found[:MAX_ROWS]


def rows_from_post(data, prefix: str, columns, flags=()) -> list[dict]:
    rows = []
    for index in row_indices(data, prefix):
        base = f"{prefix}[{index}]"
        row = {col: data.get(f"{base}.{col}", "") for col in columns}
        row.update({flag: f"{base}.{flag}" in data for flag in flags})
        rows.append(row)
    return rows
