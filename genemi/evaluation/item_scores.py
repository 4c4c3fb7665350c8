"""Per-item score tables (``--save-item-scores``): one row per benchmark item, to diff models item by item.

``<output>/<model>/items/<benchmark>.csv`` (or ``.parquet``). Columns: ``subset``, ``item_id``, the option
scores ``score_0``, ``score_1``... (in the official option order), the benchmark's decision columns (``right``
= index of the right option, ``chosen`` = the option picked, -1 for a tie under the strict rule, ``correct``;
or e.g. ``text``/``image``/``group`` for 2x2 benchmarks), ``tie`` and ``tie_rule``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, Sequence

from genemi.errors import DataError
from genemi.manifest import write_atomic

FORMATS = ("csv", "parquet")


def flatten(rows: Iterable[dict], tie_rule: str) -> tuple[list[str], list[dict]]:
    """Rows with ``scores`` spread into ``score_i`` columns and list values JSON-encoded; the column order."""
    columns: list[str] = []
    flat_rows = []
    for row in rows:
        flat: dict = {}
        for key, value in row.items():
            if key == "scores":
                flat.update({f"score_{i}": float(v) for i, v in enumerate(value)})
            elif isinstance(value, (list, tuple, dict)):
                flat[key] = json.dumps(value)
            else:
                flat[key] = value
        flat["tie_rule"] = tie_rule
        for key in flat:
            if key not in columns:
                columns.append(key)
        flat_rows.append(flat)
    scores = sorted((c for c in columns if c.startswith("score_")), key=lambda c: int(c[6:]))
    rest = [c for c in columns if not c.startswith("score_")]
    head = [c for c in ("subset", "item_id") if c in rest]
    ordered = head + scores + [c for c in rest if c not in head]
    return ordered, flat_rows


def item_scores_path(folder: Path, benchmark: str, fmt: str) -> Path:
    return folder / f"{benchmark}.{fmt}"


def write_item_scores(folder: Path, benchmark: str, rows: Sequence[dict], tie_rule: str, fmt: str = "csv") -> Path:
    """Write one benchmark's rows atomically; returns the file."""
    if fmt not in FORMATS:
        raise DataError(f"item score format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    columns, flat = flatten(rows, tie_rule)
    path = item_scores_path(folder, benchmark, fmt)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        from genemi.evaluation.reports import write_rows_csv

        write_rows_csv(path, columns, flat)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [row.get(c) for row in flat] for c in columns})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        write_atomic(path, sink.getvalue().to_pybytes())
    return path


def _value(text: str):
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_item_scores(path: Path) -> list[dict]:
    """The rows of a table written by :func:`write_item_scores` (CSV cells typed back to bool/int/float)."""
    if not path.is_file():
        raise DataError(f"item scores not found: {path} (evaluate with --save-item-scores)")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _value(v) if k not in ("item_id", "subset") else v for k, v in row.items()}
                for row in csv.DictReader(fh)]
