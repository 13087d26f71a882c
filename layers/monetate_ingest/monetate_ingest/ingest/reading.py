"""The rows of an opened file, in the form its coercer takes fastest, from the checkpoint on.

CSV files give runs of cells encoded column by column when the coercer can (``cell_blocks``),
else rows as their cells, else ``{column: cell}`` dicts; JSON files give their rows, the first
:data:`JSON_PEEK_ROWS` looked at for unknown fields before anything is posted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from monetate_ingest.formats.coercion import RowCoercer
from monetate_ingest.formats.readers import RowSource, SourceRow
from monetate_ingest.formats.readers.csv_rows import CsvRows
from monetate_ingest.ingest.columns import ColumnPolicy
from monetate_ingest.ingest.units import Item
from monetate_ingest.monetate.schema import SchemaSpec

#: JSON files: rows looked at for unknown fields before anything is posted.
JSON_PEEK_ROWS = 1_000
#: CSV rows are read, coerced and encoded this many at a time (at most; see ``CsvRows.cell_blocks``).
MAX_BLOCK_ROWS = 2_000


def items_of(
    source: RowSource, schema: SchemaSpec, policy: ColumnPolicy, batch_max_rows: int, *, skip: int
) -> tuple[Iterator[Item], RowCoercer, list[str]]:
    """The items after the first ``skip`` rows, their coercer, and the file's columns."""
    rows: Iterator[Item]
    if isinstance(source, CsvRows):
        columns = source.header() or []
        coercer = policy.coercer(schema, columns, csv=True)
        if coercer.encode_block is not None:  # runs of good rows, encoded column by column
            size = max(1, min(batch_max_rows, MAX_BLOCK_ROWS))
            rows, skip = source.cell_blocks(size, skip=skip), 0
        elif coercer.coerce_cells is not None:  # a good row as its cells: no {column: cell} dict
            rows = source.cell_rows()
        else:
            rows = iter(source)
    else:
        json_rows = iter(source)
        peeked = list(itertools.islice(json_rows, JSON_PEEK_ROWS))
        columns = _keys_of(peeked)
        rows = itertools.chain(peeked, json_rows)
        coercer = policy.coercer(schema, columns, csv=False)
    if skip:
        rows = itertools.islice(rows, skip, None)
    return rows, coercer, columns


def _keys_of(rows: list[SourceRow]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        if row.values:
            for k in row.values:
                seen.setdefault(k, None)
    return list(seen)
