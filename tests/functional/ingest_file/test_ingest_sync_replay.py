"""A file that failed part-way (revoked key) and is replayed after the next night's file loaded
overwrites none of the newer rows (issue 14: change-only sync keeps each record's source time).

Own module, so its own stack: the revoked key and the client's dead token do not leak elsewhere.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from local.aws import patched_environ
from local.stack import USERNAME
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import HEADER, Harness, RevokeAfter

harness = conftest_ingest.harness
clean = conftest_ingest.clean

ENV = {"SYNC_MODE": "changes", "BATCH_MAX_ROWS": "5", "POST_CONCURRENCY": "1"}


def _night(points: int) -> str:
    rows = [f"rp-{i},u{i}@x.com,{points + i},true,2024-05-01 10:00,x" for i in range(20)]
    return "\n".join([HEADER, *rows]) + "\n"


def _fresh_runtime(clean: Harness, ttl: int) -> Any:
    """A new container's runtime under ``ENV``: its own Monetate client and token (the client is
    shared per settings within a container, so each gets other settings: its token TTL)."""
    from monetate_ingest.ingest.handler import default_runtime

    with patched_environ({**ENV, "MONETATE_TOKEN_TTL": str(ttl)}):
        rt = default_runtime()
    rt.continuer_for = lambda context: clean.stack.continuations.append
    return rt


def test_a_failed_file_replayed_after_a_newer_file_overwrites_nothing(clean: Harness) -> None:
    # Given night 1's file failing part-way: the key is revoked after 2 of its 4 batches
    rt = _fresh_runtime(clean, 3000)
    rt.deps = dataclasses.replace(rt.deps, client=RevokeAfter(rt.deps.client, clean.sandbox, 2))
    night1 = "incoming/customers/replay/night1.csv"
    (result,) = clean.drop(night1, _night(100), handler=clean.handler(rt))
    assert result.get("error") == "KeyRevokedError", result
    assert len(clean.stored("customers", "rp-")) == 10  # Monetate holds the first 10 rows
    failed_event = next(inv["event"] for inv in clean.stack.invocations if "night1" in str(inv["event"]))
    # And the key fixed, and night 2's file (newer: S3 LastModified has whole seconds) loaded
    clean.sandbox.register_key(USERNAME, clean.stack.public_pem)
    time.sleep(1.1)
    night2 = "incoming/customers/replay/night2.csv"
    clean.drop(night2, _night(200), handler=clean.handler(_fresh_runtime(clean, 3001)))
    assert clean.report(night2)["counts"]["posted"] == 20
    # When night 1's failed event is replayed, as the README advises after a revoked key
    clean.stack._invoke(clean.handler(_fresh_runtime(clean, 3002)), failed_event)
    # Then night 1 completes without posting any of its older rows over night 2's
    report = clean.report(night1)
    assert report["status"] == "complete", report["errors"]
    # (its 20 rows are one lookup group, which did not finish before: all 20 are read again, and all
    # are older than night 2's entries, the 10 it had posted as well)
    assert report["counts"] == {"read": 20, "posted": 0, "rejected": 0, "parked": 0, "unchanged": 20}
    assert report["sync"]["superseded"] == 20
    stored = {r["customer_id"]: r["points"] for r in clean.stored("customers", "rp-")}
    assert stored == {f"rp-{i}": 200 + i for i in range(20)}
