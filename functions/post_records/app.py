"""PostRecords: SQS envelopes → Monetate rows, partial batch failures, an explaining DLQ.

Thin by design: the logic is in the layer's ``monetate_ingest.records.handler``. Importing this module
makes no network call; the client, the secret, the token and the AWS clients are created on the
first invocation.
"""

from monetate_ingest.records.handler import make_handler

lambda_handler = make_handler()
