"""``schema show NAME`` and ``schema add-field NAME FIELD TYPE``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monetate_ingest.cli.common import CliError, Context, table
from monetate_ingest.monetate.exceptions import NotFoundError
from monetate_ingest.monetate.schema import SchemaSpec

if TYPE_CHECKING:
    from monetate_ingest.monetate.client import MonetateClient


def show(ctx: Context) -> int:
    client = ctx.client(ctx.settings())
    spec = _get(client, ctx.args.name)
    _print_schema(ctx, spec)
    return 0


def add_field(ctx: Context) -> int:
    name, field, data_type = ctx.args.name, ctx.args.field, ctx.args.type
    client = ctx.client(ctx.settings())
    spec = _get(client, name)
    existing = spec.fields.get(field)
    if existing is not None:
        raise CliError(f"schema {name!r} already has a field {field!r} ({existing.data_type})")
    client.add_fields(name, {field: {"data_type": data_type}})
    ctx.print(f"added field {field!r} ({data_type}) to schema {name!r}")
    _print_schema(ctx, _get(client, name))
    return 0


def _get(client: MonetateClient, name: str) -> SchemaSpec:
    try:
        data = client.get_schema(name)
    except NotFoundError:
        raise CliError(
            f"schema {name!r} does not exist for this retailer and environment (see `check` for the list)"
        ) from None
    spec = SchemaSpec.from_api(data)
    return spec if spec.name else SchemaSpec(name=name, type=spec.type, fields=spec.fields)


def _print_schema(ctx: Context, spec: SchemaSpec) -> None:
    ctx.print(f"schema {spec.name} (type {spec.type or '-'}, {len(spec.fields)} fields)")
    rows = [
        (f.name, f.data_type, f.identifier, f.unique_key, f.event_time, f.required)
        for f in spec.fields.values()
    ]
    ctx.print(table(("FIELD", "TYPE", "IDENTIFIER", "UNIQUE_KEY", "EVENT_TIME", "REQUIRED"), rows))
