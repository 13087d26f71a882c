"""The decision per row and the report's sync counts."""

from __future__ import annotations

import pytest
from monetate_ingest.monetate.schema import SchemaSpec
from monetate_ingest.sync.decide import DAY, Decision, SyncCounts, decide, decide_all
from monetate_ingest.sync.entries import LedgerEntry, SourceTime, SyncRow
from monetate_ingest.sync.modes import effective_mode, forced_full

NOW = 1_714_600_000.0
FP = b"\x01" * 16
NIGHT1 = SourceTime(NOW - DAY, "etag-monday", 10)
NIGHT2 = SourceTime(NOW, "etag-tuesday", 10)


def entry(source: SourceTime = NIGHT1, fp: bytes = FP, posted_at: float = NOW - DAY) -> LedgerEntry:
    return LedgerEntry("k1", fp, posted_at, source)


def row(source: SourceTime = NIGHT2, fp: bytes = FP) -> SyncRow:
    return SyncRow("k1", fp, source)


def test_a_row_from_an_older_file_is_superseded_even_when_its_values_differ() -> None:
    # Given the ledger holds Tuesday's row, and Monday's file is replayed with other values
    decision = decide(row(NIGHT1, b"\x02" * 16), entry(NIGHT2), now=NOW, full_every_days=7)
    # Then Monday's row is not posted
    assert decision is Decision.SUPERSEDED and not decision.posts


def test_an_earlier_line_of_the_same_file_is_superseded_but_not_another_file_of_the_same_second() -> None:
    same_second_other_file = SourceTime(NIGHT2.time, "etag-other", 1)
    earlier_line = SourceTime(NIGHT2.time, NIGHT2.origin, 5)
    assert decide(row(earlier_line), entry(NIGHT2), now=NOW, full_every_days=7) is Decision.SUPERSEDED
    assert (
        decide(row(same_second_other_file), entry(NIGHT2), now=NOW, full_every_days=7) is Decision.UNCHANGED
    )


def test_a_stale_entry_is_posted_again_after_full_every_days() -> None:
    # Given an unchanged row whose last post is 7 days old (injected clock)
    old = entry(posted_at=NOW - 7 * DAY)
    # Then it is posted again (counted as changed); a day younger, it is not
    assert decide(row(), old, now=NOW, full_every_days=7) is Decision.CHANGED
    assert decide(row(), old, now=NOW - DAY, full_every_days=7) is Decision.UNCHANGED


def test_new_changed_and_unchanged() -> None:
    assert decide(row(), None, now=NOW, full_every_days=7) is Decision.NEW
    assert decide(row(fp=b"\x02" * 16), entry(), now=NOW, full_every_days=7) is Decision.CHANGED
    assert decide(row(), entry(), now=NOW, full_every_days=7) is Decision.UNCHANGED
    assert [d.posts for d in Decision] == [True, True, False, False]


def test_decide_all_looks_each_row_up_by_key() -> None:
    rows = [row(), SyncRow("k2", FP, NIGHT2)]
    assert decide_all(rows, {"k1": entry()}, now=NOW, full_every_days=7) == [Decision.UNCHANGED, Decision.NEW]


def test_counts_carry_superseded_inside_unchanged() -> None:
    # Given one decision of each kind
    counts = SyncCounts(mode="changes")
    counts.add([Decision.NEW, Decision.CHANGED, Decision.UNCHANGED, Decision.SUPERSEDED])
    # Then the report's sync object adds up: superseded rows are also unchanged (Monetate holds newer)
    assert counts.to_dict() == {"mode": "changes", "new": 1, "changed": 1, "unchanged": 2, "superseded": 1}
    assert SyncCounts().to_dict() == {"mode": "all", "new": 0, "changed": 0, "unchanged": 0, "superseded": 0}


def schema(unique: bool) -> SchemaSpec:
    fields = {"id": {"data_type": "STRING", "identifier": True}}
    if unique:
        fields["key"] = {"data_type": "STRING", "unique_key": True}
    return SchemaSpec.from_api({"name": "s", "type": "customer", "fields": fields})


def test_a_schema_without_a_unique_key_posts_everything() -> None:
    assert effective_mode("changes", schema(unique=False)) == "all"
    assert effective_mode("changes", schema(unique=True)) == "changes"
    assert effective_mode("all", schema(unique=True)) == "all"


@pytest.mark.parametrize(
    ("tags", "metadata", "forced"),
    [
        ({"monetate-sync": "all"}, None, True),
        (None, {"Monetate-Sync": " ALL "}, True),
        ({"monetate-sync": "changes"}, None, False),
        ({"owner": "all"}, {}, False),
    ],
)
def test_a_file_forces_a_full_post_with_its_tag_or_metadata(
    tags: dict[str, str] | None, metadata: dict[str, str] | None, forced: bool
) -> None:
    assert forced_full(tags, metadata) is forced
    assert effective_mode("changes", schema(unique=True), forced=forced_full(tags, metadata)) == (
        "all" if forced else "changes"
    )
