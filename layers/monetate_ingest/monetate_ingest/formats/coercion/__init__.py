"""Schema-aware row coercion: source rows (CSV cells, JSON objects) → Monetate-typed rows.

:func:`compile_coercer` resolves columns to fields once and builds a plan of
``(source key, field name, text converter, value converter)``; :meth:`RowCoercer.coerce` is a
loop over that plan. An empty or whitespace-only cell and a JSON null mean "absent".
"""

from __future__ import annotations

from typing import Any, Literal

from monetate_ingest.formats.coercion.converters import STRING, Converter, converter_for, escape_item
from monetate_ingest.formats.coercion.encoder import BlockEncodeFn, compile_cells_encoder
from monetate_ingest.formats.coercion.plan import (
    CellsCoerceFn,
    CellsEncodeFn,
    CoerceFn,
    Step,
    compile_cells_plan,
    compile_plan,
    run_steps,
)
from monetate_ingest.formats.encoding import encode_row
from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.monetate.schema import FieldSpec, SchemaSpec

__all__ = ["Policy", "RowCoercer", "compile_coercer", "escape_item"]

Policy = Literal["reject", "ignore", "add"]
_Step = Step


class RowCoercer:
    """Coerces rows of one source against one schema (build it with :func:`compile_coercer`).

    ``mapping`` is source column → field name; ``unknown_columns`` lists columns that are not
    fields (for JSON rows it grows as new keys are seen); ``missing_fields`` lists the fields every
    row needs that no CSV column maps to. Under ``add`` unknown columns are passed on as STRING
    fields of the same (stripped) name; under ``reject`` a JSON row with an unknown key is a row
    error, while for CSV the caller raises ``UnknownColumnsError`` from ``unknown_columns``.
    """

    def __init__(self, schema: SchemaSpec, columns: list[str] | None, unknown: Policy, naive_tz: str) -> None:
        if unknown not in ("reject", "ignore", "add"):
            raise ValueError(f"unknown-columns policy must be reject, ignore or add, not {unknown!r}")
        self.schema = schema
        self.columns = columns
        self.unknown = unknown
        self.mapping: dict[str, str] = {}
        self.unknown_columns: list[str] = []
        self._converters = {
            name: converter_for(spec.data_type, naive_tz) for name, spec in schema.fields.items()
        }
        self._lowered: dict[str, str | None] = {}
        for name in schema.fields:
            key = name.strip().lower()
            self._lowered[key] = None if key in self._lowered else name  # None: ambiguous
        self._required = [(f.name, _missing_message(f)) for f in schema.fields.values() if _needed(f)]
        self._steps: dict[str, _Step | None] = {}
        plan: list[_Step] = []
        if columns is not None:
            exact = {column for column in columns if column in schema.fields}
            taken = set(exact)  # exact matches win over case-insensitive ones
            for column in columns:
                step = self._resolve(column, None if column in exact else taken)
                if step is not None:
                    taken.add(step[1])
                    plan.append(step)
        self._plan = plan
        #: ``coerce(raw) -> dict``: the Monetate row for ``raw``; raises :class:`RowError` naming the field.
        self.coerce: CoerceFn = self._coerce_steps if columns is None else compile_plan(plan, self._required)
        #: ``coerce_cells(cells) -> dict``: the same for a CSV row given as its cells in ``columns``
        #: order (no ``{column: cell}`` dict needed); None for JSON rows or repeated column names.
        self.coerce_cells: CellsCoerceFn | None = (
            None if columns is None else compile_cells_plan(plan, self._required, columns)
        )
        #: ``encode_cells(cells) -> bytes``: the UTF-8 JSON of ``coerce_cells(cells)`` (compact,
        #: as :func:`monetate_ingest.delivery.batching.encode_row`), built without the dict; None when
        #: ``coerce_cells`` is None or the plan does not allow it.
        self.encode_cells: CellsEncodeFn | None = None
        #: ``encode_block(rows) -> list[bytes] | None``: :attr:`encode_cells` of many rows (all of
        #: ``len(columns)`` cells) at once, column by column; None when a row needs a closer look.
        self.encode_block: BlockEncodeFn | None = None
        if self.coerce_cells is not None and columns is not None:
            encoder = compile_cells_encoder(plan, self._required, columns, self.coerce_cells, encode_row)
            if encoder is not None:
                self.encode_cells, self.encode_block = encoder.row, encoder.block
        mapped = set(self.mapping.values())
        self.missing_fields = [] if columns is None else [n for n, _ in self._required if n not in mapped]

    def _resolve(self, column: str, taken: set[str] | None = None) -> _Step | None:
        """The plan step of a source column, recording it in ``mapping`` or ``unknown_columns``."""
        name: str | None = column if column in self.schema.fields else None
        if name is None:
            name = self._lowered.get(column.strip().lower())
        if name is not None and taken is not None and name in taken:
            name = None  # a second column for the same field
        converter: Converter
        if name is not None:
            converter = self._converters[name]
        else:
            self.unknown_columns.append(column)
            added = column.strip()
            if self.unknown != "add" or not added or added.lower() in self._lowered:
                return None  # ignored, rejected by the caller, or a second column for a field
            name, converter = added, STRING
        self.mapping[column] = name
        return (column, name, converter.text, converter.value)

    def _coerce_steps(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The generic path (JSON rows; CSV columns use the equivalent compiled plan)."""
        steps = self._plan if self.columns is not None else self._json_steps(raw)
        return run_steps(steps, self._required, raw)

    def _json_steps(self, raw: dict[str, Any]) -> list[_Step]:
        steps = self._steps
        plan: list[_Step] = []
        for key in raw:
            try:
                step = steps[key]
            except KeyError:
                step = steps[key] = self._resolve(key)
            if step is not None:
                plan.append(step)
            elif self.unknown == "reject" and key not in self.mapping:
                raise RowError(
                    f"field {key!r} is not in schema {self.schema.name!r} (UNKNOWN_COLUMNS=reject)", field=key
                )
        return plan


def _needed(spec: FieldSpec) -> bool:
    return spec.identifier or spec.unique_key or spec.required


def _missing_message(spec: FieldSpec) -> str:
    role = "identifier" if spec.identifier else "unique key" if spec.unique_key else "required"
    return f"{role} field {spec.name!r} is missing"


def compile_coercer(
    schema: SchemaSpec,
    columns: list[str] | None,
    *,
    unknown: Policy = "reject",
    naive_tz: str = "UTC",
) -> RowCoercer:
    """A coercer for rows with these ``columns`` (CSV header), or None for JSON rows (keys per row)."""
    return RowCoercer(schema, columns, unknown, naive_tz)
