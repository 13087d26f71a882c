"""Settings per function: each handler reads the groups it needs, errors name the variable."""

from __future__ import annotations

import pytest
from monetate_ingest.errors import SettingsError
from monetate_ingest.settings import (
    DEFAULT_BATCH_MAX_ROWS,
    IngestSettings,
    MonetateSettings,
    RecordsSettings,
    RowSettings,
    SpotcheckSettings,
    SyncSettings,
    monetate_from_env,
)

BASE = {"MONETATE_RETAILER": "acme", "MONETATE_SECRET_ID": "monetate/acme"}


def test_monetate_group_defaults_and_paths() -> None:
    # Given only the two required variables
    # When the Monetate group is read
    s = monetate_from_env(BASE)
    # Then the documented defaults apply and the Data API base is built from them
    assert s == MonetateSettings(retailer="acme", secret_id="monetate/acme")
    assert s.data_api_base == "https://api.monetate.net/api/data/v1/acme/production"
    assert s.auth_refresh_url == "https://api.monetate.net/api/auth/v0/refresh/"


@pytest.mark.parametrize("missing", ["MONETATE_RETAILER", "MONETATE_SECRET_ID"])
def test_a_missing_required_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(SettingsError, match=f"^{missing} is required but is not set$"):
        SpotcheckSettings.from_env(env)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("BATCH_MAX_ROWS", "0", "expected a whole number from 1 to 10000"),
        ("MONETATE_TOKEN_TTL", "abc", "expected a whole number"),
        ("MONETATE_API_URL", "ftp://x", "expected scheme and host only"),
        ("MONETATE_ENVIRONMENT", "..", "expected a single path segment"),
        ("UNKNOWN_COLUMNS", "drop", "expected one of reject, ignore, add"),
        ("NAIVE_DATETIME_TZ", "Mars/Base", "expected an IANA time zone"),
        ("CSV_DELIMITER", '"', "expected one character"),
    ],
)
def test_a_malformed_variable_is_named_with_the_rule(var: str, value: str, message: str) -> None:
    # Given a malformed value
    env = {**BASE, var: value}
    # When the widest settings are read, Then the error names the variable, the value and the rule
    with pytest.raises(SettingsError) as info:
        IngestSettings.from_env(env)
    assert str(info.value).startswith(f"{var}={value!r} is not valid: {message}")


def test_each_function_reads_its_own_groups() -> None:
    env = {
        **BASE,
        "BATCH_MAX_ROWS": "50",
        "RECORDS_QUEUE_URL": "https://sqs/q",
        "RECORDS_DLQ_URL": "https://sqs/dlq",
        "IDEMPOTENCY_TABLE": "t",
        "POST_CONCURRENCY": "8",
        "CSV_DELIMITER": "\\t",
        "VALIDATOR_MAX_WAIT": "1.5",
    }
    ingest = IngestSettings.for_function(env)
    records = RecordsSettings.from_env(env)
    spot = SpotcheckSettings.from_env(env)
    # The shared groups are the same values in every function
    assert ingest.monetate == records.monetate == spot.monetate
    assert ingest.rows == records.rows == RowSettings(batch_max_rows=50)
    # and each function has its own fields only
    assert (ingest.post_concurrency, ingest.csv_delimiter, ingest.records_queue_url) == (
        8,
        "\t",
        "https://sqs/q",
    )
    assert records.records_dlq_url == "https://sqs/dlq"
    assert spot.validator_max_wait == 1.5
    assert not hasattr(spot, "rows") and not hasattr(records, "post_concurrency")


@pytest.mark.parametrize(
    ("cls_env", "missing"),
    [
        ("ingest", "RECORDS_QUEUE_URL"),
        ("ingest", "IDEMPOTENCY_TABLE"),
        ("records", "RECORDS_DLQ_URL"),
        ("records", "IDEMPOTENCY_TABLE"),
    ],
)
def test_a_function_names_what_it_requires(cls_env: str, missing: str) -> None:
    env = {**BASE, "RECORDS_QUEUE_URL": "q", "RECORDS_DLQ_URL": "d", "IDEMPOTENCY_TABLE": "t"}
    del env[missing]
    with pytest.raises(SettingsError, match=f"^{missing} is required"):
        if cls_env == "ingest":
            IngestSettings.for_function(env)
        else:
            RecordsSettings.from_env(env)


def test_a_local_push_needs_no_queue() -> None:
    # The CLI's push parks to a file when no records queue is configured
    s = IngestSettings.from_env(BASE)
    assert s.records_queue_url is None and s.rows.batch_max_rows == DEFAULT_BATCH_MAX_ROWS


def test_blank_values_mean_unset() -> None:
    s = IngestSettings.from_env({**BASE, "BATCH_MAX_ROWS": "  ", "EVENT_BUS_NAME": ""})
    assert s.rows.batch_max_rows == DEFAULT_BATCH_MAX_ROWS and s.event_bus_name is None


# --- change-only sync ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [IngestSettings, RecordsSettings])
def test_sync_changes_without_a_ledger_table_names_both_variables(cls: type) -> None:
    # Given change-only sync asked for, but no ledger table
    env = {**BASE, "RECORDS_DLQ_URL": "q", "IDEMPOTENCY_TABLE": "t", "SYNC_MODE": "changes"}
    # When either writer reads its settings
    # Then the error names both variables
    with pytest.raises(SettingsError, match="SYNC_MODE=changes needs SYNC_LEDGER_TABLE"):
        cls.from_env(env)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("SYNC_MODE", "diff", "expected changes or all"),
        ("SYNC_FULL_EVERY_DAYS", "0", "expected a whole number from 1 to 365"),
        ("SYNC_FULL_EVERY_DAYS", "366", "expected a whole number from 1 to 365"),
    ],
)
def test_a_malformed_sync_variable_is_named(var: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{var}={value!r} is not valid: {message}"):
        IngestSettings.from_env({**BASE, var: value})


def test_sync_is_off_unless_asked_for() -> None:
    # Given no sync variable
    s = IngestSettings.from_env(BASE)
    # Then every row is posted, as before change-only sync
    assert s.sync == SyncSettings(mode="all", full_every_days=7, ledger_table=None)
    assert not s.sync.enabled


def test_sync_changes_with_its_table_is_read_by_both_writers() -> None:
    # Given change-only sync with a table and a 3-day full refresh
    env = {
        **BASE,
        "RECORDS_DLQ_URL": "q",
        "IDEMPOTENCY_TABLE": "t",
        "SYNC_MODE": "Changes",
        "SYNC_FULL_EVERY_DAYS": "3",
        "SYNC_LEDGER_TABLE": "ledger",
    }
    # When both writers read their settings
    # Then both carry the same sync group
    expected = SyncSettings(mode="changes", full_every_days=3, ledger_table="ledger")
    assert IngestSettings.from_env(env).sync == expected
    assert RecordsSettings.from_env(env).sync == expected
    assert expected.enabled
