"""A revoked API key (403) stops the file: report failed, the handler raises, no further POST.

Own module, so its own stack: the revoked key and the client's dead token do not leak elsewhere.
"""

from __future__ import annotations

import dataclasses
import json

from local.aws import patched_environ
from local.stack import ASYNC_RETRIES
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import (
    Harness,
    RevokeAfter,
    customers_csv,
)

# the module's stack and its per-test reset (fixtures shared through conftest_ingest)
harness = conftest_ingest.harness
clean = conftest_ingest.clean


def test_revoked_key_stops_the_file(clean: Harness) -> None:
    # Given a 30-row file in batches of 5, and the key revoked after the 2nd POST succeeded
    from monetate_ingest.ingest.handler import default_runtime

    env = {"BATCH_MAX_ROWS": "5", "POST_CONCURRENCY": "1"}
    with patched_environ(env):
        rt = default_runtime()
    rt.continuer_for = lambda context: clean.stack.continuations.append
    rt.deps = dataclasses.replace(rt.deps, client=RevokeAfter(rt.deps.client, clean.sandbox, 2))
    key = "incoming/customers/revoked/file.csv"
    # When the file is ingested
    (result,) = clean.drop(key, customers_csv(30, prefix="rv-"), handler=clean.handler(rt))
    # Then the invocation failed (raised), the report says failed with key_revoked …
    assert result.get("error") == "KeyRevokedError", result
    report = clean.report(key)
    assert report["status"] == "failed"
    assert [e["code"] for e in report["errors"]] == ["key_revoked"]
    assert report["counts"]["posted"] == 10
    # … and no Monetate call was made after the 403 in that invocation: Lambda's two asynchronous
    # retries each met one 403 and stopped too
    log = clean.sandbox.requests
    first_403 = next(i for i, r in enumerate(log) if r.status == 403)
    assert [r.status for r in log[first_403:]] == [403] * (1 + ASYNC_RETRIES)
    assert len(clean.stored("customers", "rv-")) == 10
    # … and the event waits in the on-failure destination, to be replayed once the key is fixed
    failures = clean.queue_messages(clean.stack.resources.ingest_failures_queue_url)
    assert len(failures) == 1
    assert json.loads(failures[0]["Body"])["requestPayload"]["Records"][0]["s3"]["object"]["key"]
