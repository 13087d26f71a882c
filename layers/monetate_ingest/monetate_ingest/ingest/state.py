"""Where a file's checkpoint is kept: the DynamoDB table, and a backup in S3 when the table fails.

:class:`FileState` loads the newer of the table's copy and the backup (``Checkpoint.saves``), and
saves to the table; when the table cannot be written it writes the backup under the file's scratch
prefix first and then raises the table's :class:`StateStoreError`, so the file fails naming the
table while a retry still resumes from the saved point and posts nothing again.
"""

from __future__ import annotations

from monetate_ingest.ingest.checkpoints import Checkpoint, CheckpointStore, newest
from monetate_ingest.ingest.exceptions import StateStoreError
from monetate_ingest.ingest.source import SourceObject
from monetate_ingest.observability import logger


class FileState:
    """The checkpoint of one file (see the module docstring)."""

    def __init__(self, store: CheckpointStore, source: SourceObject) -> None:
        self.store = store
        self.source = source
        self.identity = source.ref.identity
        #: False until a checkpoint was loaded: a file whose state is unknown never overwrites it.
        self.loaded = False

    def load(self) -> Checkpoint:
        found = newest(self.store.load(self.identity), self.source.load_backup())
        self.loaded = True
        return found or Checkpoint()

    def save(self, checkpoint: Checkpoint) -> None:
        checkpoint.saves += 1
        try:
            self.store.save(self.identity, checkpoint)
        except StateStoreError as exc:
            self.source.save_backup(checkpoint)
            logger.warning(
                "checkpoint table failed; checkpoint backed up in S3",
                extra={"backup": self.source.backup_key, "error": exc.message},
            )
            raise
