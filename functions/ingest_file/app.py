"""IngestFile: S3 ObjectCreated events (and its own continuations) → Monetate.

Thin by design: the logic is in the layer's ``monetate_ingest.ingest.handler``. Importing this module makes
no network call; clients, the secret and the token are created on the first invocation.
"""

from monetate_ingest.ingest.handler import make_handler

lambda_handler = make_handler()
