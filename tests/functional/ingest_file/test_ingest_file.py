"""IngestFile as a whole: whatever happens to a file, its report's counts add up.

The concerns have their own modules: ``test_ingest_formats`` (formats, keys, the sample event),
``test_ingest_rejects`` (reasons, line numbers, bisection), ``test_ingest_delivery`` (parking,
unknown columns and schemas, dry run, completion events, secrets in logs), ``test_ingest_resume``
(duplicates, multipart, crash and resume, continuation), ``test_ingest_revoked`` (403).
"""

from __future__ import annotations

from local.sandbox.faults import FaultConfig
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import (
    FAST_RETRIES,
    Harness,
    assert_invariant,
    customers_csv,
)

# the module's stack and its per-test reset (fixtures shared through conftest_ingest)
harness = conftest_ingest.harness
clean = conftest_ingest.clean


def test_every_report_keeps_the_invariant(clean: Harness) -> None:
    # Given files that end complete, with rejects, failed, as a dry run, and parked
    files = {
        "incoming/customers/inv/ok.csv": customers_csv(5, prefix="inv-ok-"),
        "incoming/customers/inv/rejects.csv": customers_csv(3, prefix="inv-r-")
        + "x,y,NaN,true,,\n,z,1,no,,\n",
        "incoming/customers/inv/failed.csv": "customer_id,mystery\nq,1\n",
        "incoming/nowhere/inv/failed.csv": "a\n1\n",
        "dry-run/customers/inv/dry.csv": customers_csv(2, prefix="inv-d-") + "d,e,1,perhaps,,\n",
    }
    # When they are all ingested, and then one more while Monetate fails every POST
    for key, body in files.items():
        clean.drop(key, body)
    clean.sandbox.faults = FaultConfig(error_rate=1.0, apply_to="post")
    clean.drop(
        "incoming/customers/inv/parked.csv",
        customers_csv(4, prefix="inv-p-") + "p,q,x,true,,\n",
        **FAST_RETRIES,
    )
    clean.sandbox.reset()
    # Then every report in the bucket says read = posted + rejected + parked
    listed = clean.stack.s3.list_objects_v2(Bucket=clean.bucket, Prefix="reports/")["Contents"]
    reports = [clean.stack.read_json(o["Key"]) for o in listed if "/inv/" in o["Key"]]
    assert len(reports) == 6
    for report in reports:
        assert_invariant(report)
    by_status = sorted(r["status"] for r in reports)
    assert by_status == ["complete", "complete", "complete", "complete", "failed", "failed"]
    parked = next(r for r in reports if r["source"]["key"].endswith("parked.csv"))
    assert parked["counts"] == {"read": 5, "posted": 0, "rejected": 1, "parked": 4, "unchanged": 0}
