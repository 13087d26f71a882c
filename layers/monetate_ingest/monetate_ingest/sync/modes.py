"""Which mode a file or message runs in: the setting, the schema, and the file's own override."""

from __future__ import annotations

from collections.abc import Mapping

from monetate_ingest.monetate.schema import SchemaSpec
from monetate_ingest.sync.decide import SyncMode

#: The S3 object tag or user metadata (``x-amz-meta-monetate-sync``) that forces a full post.
FORCE_NAME = "monetate-sync"
FORCE_VALUE = "all"


def forced_full(tags: Mapping[str, str] | None = None, metadata: Mapping[str, str] | None = None) -> bool:
    """Whether the object's tag or metadata ``monetate-sync=all`` asks for every row to be posted."""
    for source in (tags or {}, metadata or {}):
        for name, value in source.items():
            if name.strip().lower() == FORCE_NAME and value.strip().lower() == FORCE_VALUE:
                return True
    return False


def effective_mode(setting: SyncMode, schema: SchemaSpec, *, forced: bool = False) -> SyncMode:
    """``changes`` only when asked for, the schema has a unique key, and nothing forces ``all``.

    Without a unique key every post is new data in Monetate: there is nothing to compare with.
    """
    if setting == "changes" and schema.unique_key is not None and not forced:
        return "changes"
    return "all"
