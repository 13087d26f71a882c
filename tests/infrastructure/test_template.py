"""template.yaml: the deployed shape, asserted on the template as written and after the SAM transform.

Offline: the strict SAM transform runs through ``scripts.template_check`` (no AWS call). The
contract is docs/ARCHITECTURE.md "Contracts" (handlers, environment, S3 layout) and the issues'
template items.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scripts import template_check
from scripts.template_check import (
    STAR_RESOURCE_ACTIONS,
    iter_policy_statements,
    load_template,
    transform_template,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

FUNCTIONS = {
    "IngestFileFunction": "functions/ingest_file/",
    "PostRecordsFunction": "functions/post_records/",
    "ValidateRecordFunction": "functions/validate_record/",
}
COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    "POWERTOOLS_LOG_LEVEL",
    "MONETATE_API_URL",
    "MONETATE_RETAILER",
    "MONETATE_ENVIRONMENT",
    "MONETATE_SECRET_ID",
    "MONETATE_TOKEN_TTL",
}
EMITTED_METRICS = [
    "RowsRead", "RowsPosted", "RowsRejected", "RowsParked", "BatchesPosted", "BatchesParked",
    "PostLatency", "FilesCompleted", "FilesFailed", "KeyRevoked", "MessagesPosted",
    "MessagesDeadLettered", "MessagesRetried", "SpotChecks", "SpotChecksThrottled", "RowsUnchanged",
    "SyncLedgerLookupLatency", "SyncLedgerWriteLatency", "SyncLedgerLookupFailed", "SyncLedgerWriteFailed",
]  # fmt: skip


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def cfn(raw: dict[str, Any]) -> dict[str, Any]:
    return transform_template(copy.deepcopy(raw))


def res(cfn: dict[str, Any], logical_id: str) -> dict[str, Any]:
    assert logical_id in cfn["Resources"], f"{logical_id} missing from the template"
    resource: dict[str, Any] = cfn["Resources"][logical_id]
    return resource


def props(cfn: dict[str, Any], logical_id: str) -> dict[str, Any]:
    p: dict[str, Any] = res(cfn, logical_id).get("Properties") or {}
    return p


def of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def role_statements(cfn: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every Allow statement of a role: its inline policies and IAM policies attached to it."""
    out = []
    for where, stmt in iter_policy_statements(cfn):
        owner = where.split("/", 1)[0]
        attached = owner == role_id or {"Ref": role_id} in (props(cfn, owner).get("Roles") or [])
        if attached and stmt.get("Effect") == "Allow":
            out.append(stmt)
    return out


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    acts: set[str] = set()
    for s in statements:
        a = s["Action"]
        acts.update([a] if isinstance(a, str) else a)
    return acts


def statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [
        s for s in statements if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]


def resources_of(stmt: dict[str, Any]) -> list[Any]:
    r = stmt["Resource"]
    return r if isinstance(r, list) else [r]


def sub_text(value: Any) -> str:
    """The template string of an Fn::Sub (short or list form)."""
    assert isinstance(value, dict) and "Fn::Sub" in value, value
    sub = value["Fn::Sub"]
    return sub if isinstance(sub, str) else sub[0]


# ------------------------------------------------------------------------------- checks as a whole


def test_template_check_passes() -> None:
    # Given the template, When the offline checker runs, Then it finds no problem
    assert template_check.check(TEMPLATE) == []


def test_template_check_main_reports_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert template_check.main([str(TEMPLATE)]) == 0
    assert "OK" in capsys.readouterr().out


# ------------------------------------------------------------------------------- functions


@pytest.mark.parametrize(("logical_id", "code_uri"), FUNCTIONS.items())
def test_functions_follow_the_handler_contract_and_use_the_layer(
    raw: dict[str, Any], cfn: dict[str, Any], logical_id: str, code_uri: str
) -> None:
    assert props(raw, logical_id)["CodeUri"] == code_uri
    fn = props(cfn, logical_id)
    assert fn["Handler"] == "app.lambda_handler"
    assert fn["Runtime"] == "python3.12"
    assert fn["TracingConfig"] == {"Mode": "Active"}
    layer_refs = [item["Ref"] for item in fn["Layers"]]
    assert len(layer_refs) == 1 and layer_refs[0].startswith("MonetateIngestLayer")
    assert res(cfn, layer_refs[0])["Type"] == "AWS::Lambda::LayerVersion"


def test_exactly_three_functions(cfn: dict[str, Any]) -> None:
    assert set(of_type(cfn, "AWS::Lambda::Function")) == set(FUNCTIONS)


def test_layer_is_built_for_the_runtime_and_architecture(raw: dict[str, Any]) -> None:
    layer = res(raw, "MonetateIngestLayer")
    assert layer["Properties"]["ContentUri"] == "layers/monetate_ingest/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    arch = raw["Globals"]["Function"]["Architectures"]
    assert layer["Properties"]["CompatibleArchitectures"] == arch
    assert layer["Metadata"] == {"BuildMethod": "python3.12", "BuildArchitecture": arch[0]}


def test_timeouts_and_memory(cfn: dict[str, Any]) -> None:
    assert props(cfn, "IngestFileFunction")["Timeout"] == 900
    assert props(cfn, "IngestFileFunction")["MemorySize"] >= 1769
    # continuations are a deliberate self-invocation chain; loop detection would stop it after 16
    assert props(cfn, "IngestFileFunction")["RecursiveLoop"] == "Allow"
    assert props(cfn, "PostRecordsFunction")["Timeout"] == 60
    assert props(cfn, "ValidateRecordFunction")["Timeout"] == 10


def env(cfn: dict[str, Any], logical_id: str) -> dict[str, Any]:
    variables: dict[str, Any] = props(cfn, logical_id)["Environment"]["Variables"]
    return variables


def test_every_function_gets_the_common_settings(cfn: dict[str, Any]) -> None:
    for logical_id in FUNCTIONS:
        e = env(cfn, logical_id)
        assert set(e) >= COMMON_ENV, f"{logical_id} lacks {COMMON_ENV - set(e)}"
        assert e["POWERTOOLS_SERVICE_NAME"] == "monetate-ingest"
        assert e["POWERTOOLS_METRICS_NAMESPACE"] == "MonetateIngest"
        assert e["MONETATE_SECRET_ID"] == {"Ref": "MonetateSecretArn"}
        assert e["MONETATE_RETAILER"] == {"Ref": "RetailerShortname"}
        assert e["MONETATE_TOKEN_TTL"] == {"Ref": "TokenTtl"}


def test_function_specific_environment(cfn: dict[str, Any], raw: dict[str, Any]) -> None:
    ingest = env(cfn, "IngestFileFunction")
    assert ingest["RECORDS_QUEUE_URL"] == {"Ref": "RecordsQueue"}
    assert ingest["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    for var, param in {
        "BATCH_MAX_ROWS": "BatchMaxRows",
        "BATCH_MAX_BYTES": "BatchMaxBytes",
        "POST_CONCURRENCY": "PostConcurrency",
        "UNKNOWN_COLUMNS": "UnknownColumns",
        "CSV_DELIMITER": "CsvDelimiter",
        "EVENT_BUS_NAME": "EventBusName",
    }.items():
        assert ingest[var] == {"Ref": param}
    # DATA_BUCKET is the bucket's constructed name (not a Ref: that would be a circular dependency)
    assert ingest["DATA_BUCKET"] == props(raw, "DataBucket")["BucketName"]
    assert "RECORDS_DLQ_URL" not in ingest

    post = env(cfn, "PostRecordsFunction")
    assert post["RECORDS_DLQ_URL"] == {"Ref": "RecordsDLQ"}
    assert post["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    assert post["BATCH_MAX_ROWS"] == {"Ref": "BatchMaxRows"}
    assert "RECORDS_QUEUE_URL" not in post

    validator = env(cfn, "ValidateRecordFunction")
    assert validator["VALIDATOR_MAX_WAIT"] == {"Ref": "ValidatorMaxWait"}
    assert set(validator) - COMMON_ENV == {"VALIDATOR_MAX_WAIT", "HTTP_READ_TIMEOUT"}
    # a slow Monetate must become our 502 before API Gateway's 29 s integration timeout
    assert float(validator["HTTP_READ_TIMEOUT"]) < 29


def test_settings_defaults_and_ranges_match_the_package(raw: dict[str, Any]) -> None:
    from monetate_ingest import settings

    params = raw["Parameters"]
    assert params["BatchMaxRows"]["Default"] == settings.DEFAULT_BATCH_MAX_ROWS
    assert params["BatchMaxBytes"]["Default"] == settings.DEFAULT_BATCH_MAX_BYTES
    assert params["PostConcurrency"]["Default"] == settings.DEFAULT_POST_CONCURRENCY
    assert (params["TokenTtl"]["MinValue"], params["TokenTtl"]["MaxValue"]) == (600, 43200)
    assert params["TokenTtl"]["Default"] == 3600
    assert params["UnknownColumns"]["AllowedValues"] == ["reject", "ignore", "add"]
    assert params["MonetateApiUrl"]["Default"] == "https://api.monetate.net"
    assert params["MonetateEnvironment"]["Default"] == "production"
    p = params["PostRecordsMaxConcurrency"]
    assert (p["MinValue"], p["MaxValue"], p["Default"]) == (2, 1000, 5)


def test_secret_arn_parameter_wants_the_full_arn(raw: dict[str, Any]) -> None:
    pattern = re.compile(raw["Parameters"]["MonetateSecretArn"]["AllowedPattern"])
    assert pattern.match("arn:aws:secretsmanager:eu-west-1:123456789012:secret:monetate/api-user-AbC123")
    assert not pattern.match("arn:aws:secretsmanager:eu-west-1:123456789012:secret:monetate/api-user")
    assert not pattern.match("monetate/api-user")


# ------------------------------------------------------------------------------- IngestFile


def test_s3_events_on_incoming_and_dry_run(cfn: dict[str, Any]) -> None:
    configs = props(cfn, "DataBucket")["NotificationConfiguration"]["LambdaConfigurations"]
    prefixes = set()
    for c in configs:
        assert c["Event"] == "s3:ObjectCreated:*"
        assert c["Function"] == {"Fn::GetAtt": ["IngestFileFunction", "Arn"]}
        (rule,) = c["Filter"]["S3Key"]["Rules"]
        assert rule["Name"].lower() == "prefix"
        prefixes.add(rule["Value"])
    assert prefixes == {"incoming/", "dry-run/"}
    permissions = [
        p["Properties"]
        for p in of_type(cfn, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "s3.amazonaws.com"
    ]
    assert len(permissions) == 2
    assert all(p["SourceAccount"] == {"Ref": "AWS::AccountId"} for p in permissions)


def test_async_invoke_config_retries_then_failure_queue(cfn: dict[str, Any]) -> None:
    (config,) = [
        r["Properties"]
        for r in of_type(cfn, "AWS::Lambda::EventInvokeConfig").values()
        if r["Properties"]["FunctionName"] == {"Ref": "IngestFileFunction"}
    ]
    assert config["MaximumRetryAttempts"] == 2
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["IngestFailuresQueue", "Arn"]
    }


def test_ingest_file_policies_are_least_privilege(cfn: dict[str, Any], raw: dict[str, Any]) -> None:
    stmts = role_statements(cfn, "IngestFileFunctionRole")
    assert actions_of(stmts) == {
        "s3:GetObject",
        "s3:GetObjectTagging",  # incoming/ and dry-run/ only: the monetate-sync=all tag
        "s3:PutObject",
        "s3:DeleteObject",  # reject parts only (rejects/.parts/*)
        "s3:ListBucket",  # reject parts only (s3:prefix condition)
        "secretsmanager:GetSecretValue",
        "sqs:SendMessage",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",  # the sync ledger only
        "events:PutEvents",
        "lambda:InvokeFunction",
        "kms:Decrypt",  # only with SecretKmsKeyArn / DataBucketKmsKeyArn (Fn::If)
        "kms:GenerateDataKey",
    }
    bucket_prefix = "arn:${AWS::Partition}:s3:::monetate-ingest-${AWS::AccountId}-${AWS::Region}-${Tail}/"
    get, parts = statements_with(stmts, "s3:GetObject")
    assert {sub_text(r) for r in resources_of(get)} == {
        bucket_prefix + "incoming/*",
        bucket_prefix + "dry-run/*",
    }
    assert {sub_text(r) for r in resources_of(parts)} == {bucket_prefix + "rejects/.parts/*"}
    (tags,) = statements_with(stmts, "s3:GetObjectTagging")
    assert tags["Action"] == "s3:GetObjectTagging"
    assert {sub_text(r) for r in resources_of(tags)} == {sub_text(r) for r in resources_of(get)}
    assert set(parts["Action"]) == {"s3:GetObject", "s3:DeleteObject"}
    (put,) = statements_with(stmts, "s3:PutObject")
    assert {sub_text(r) for r in resources_of(put)} == {
        bucket_prefix + "reports/*",
        bucket_prefix + "rejects/*",
    }
    # the ARN's ${Tail} is the same expression as the bucket name's last part
    bucket_name_parts = props(raw, "DataBucket")["BucketName"]["Fn::Join"][1]
    assert bucket_name_parts[0] == "monetate-ingest"
    for r in resources_of(get) + resources_of(put):
        assert r["Fn::Sub"][1]["Tail"] == bucket_name_parts[3]
    (secret,) = statements_with(stmts, "secretsmanager:GetSecretValue")
    assert resources_of(secret) == [{"Ref": "MonetateSecretArn"}]
    (send,) = [s for s in statements_with(stmts, "sqs:SendMessage") if "Sid" in s]
    assert resources_of(send) == [{"Fn::GetAtt": ["RecordsQueue", "Arn"]}]
    (ddb,) = statements_with(stmts, "dynamodb:DeleteItem")
    assert resources_of(ddb) == [{"Fn::GetAtt": ["IdempotencyTable", "Arn"]}]
    assert_sync_ledger_statement(stmts)
    (events,) = statements_with(stmts, "events:PutEvents")
    assert sub_text(events["Resource"]).endswith(":event-bus/${EventBusName}")
    (invoke,) = statements_with(stmts, "lambda:InvokeFunction")
    assert resources_of(invoke) == [{"Fn::GetAtt": ["IngestFileFunction", "Arn"]}]
    for kms in statements_with(stmts, "kms:Decrypt"):
        assert "kms:ViaService" in kms["Condition"]["StringEquals"]


def test_bucket_name_is_lowercase_and_short_enough(raw: dict[str, Any]) -> None:
    # account (12) + longest region (14) + UUID tail (12) + separators and prefix
    parts = props(raw, "DataBucket")["BucketName"]["Fn::Join"][1]
    assert parts[0] == parts[0].lower()
    assert len(parts[0]) + 1 + 12 + 1 + 14 + 1 + 12 <= 63


def test_bucket_lifecycle(cfn: dict[str, Any]) -> None:
    rules = {r["Id"]: r for r in props(cfn, "DataBucket")["LifecycleConfiguration"]["Rules"]}
    by_prefix = {r.get("Prefix"): r for r in rules.values()}
    for prefix in ("reports/", "rejects/"):
        assert by_prefix[prefix]["Status"] == "Enabled"
        assert by_prefix[prefix]["ExpirationInDays"] == {"Ref": "ReportRetentionDays"}
    assert by_prefix["incoming/"]["Status"] == {"Fn::If": ["ExpireIncoming", "Enabled", "Disabled"]}
    aborts = [r for r in rules.values() if "AbortIncompleteMultipartUpload" in r]
    assert aborts and aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7


# ------------------------------------------------------------------------------- PostRecords


def test_records_queue_visibility_covers_six_post_records_timeouts(cfn: dict[str, Any]) -> None:
    timeout = props(cfn, "PostRecordsFunction")["Timeout"]
    window = props(cfn, "RecordsEventSourceMapping")["MaximumBatchingWindowInSeconds"]
    assert props(cfn, "RecordsQueue")["VisibilityTimeout"] >= 6 * timeout + window


def test_redrive_policy_and_dlq(cfn: dict[str, Any]) -> None:
    queue = props(cfn, "RecordsQueue")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["RecordsDLQ", "Arn"]},
        "maxReceiveCount": 5,
    }
    dlq = props(cfn, "RecordsDLQ")
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    allow = dlq["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    (source,) = allow["sourceQueueArns"]
    assert sub_text(source).endswith(":" + sub_text(queue["QueueName"]))


def test_event_source_mapping(cfn: dict[str, Any]) -> None:
    esm = props(cfn, "RecordsEventSourceMapping")
    assert esm["EventSourceArn"] == {"Fn::GetAtt": ["RecordsQueue", "Arn"]}
    assert esm["FunctionName"] == {"Ref": "PostRecordsFunction"}
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BatchSize"] == {"Ref": "PostRecordsBatchSize"}
    assert esm["MaximumBatchingWindowInSeconds"] == 5
    assert esm["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "PostRecordsMaxConcurrency"}}
    assert len(of_type(cfn, "AWS::Lambda::EventSourceMapping")) == 1


def test_post_records_policies_are_least_privilege(cfn: dict[str, Any]) -> None:
    stmts = role_statements(cfn, "PostRecordsFunctionRole")
    assert actions_of(stmts) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",  # the sync ledger only
        "kms:Decrypt",  # only with SecretKmsKeyArn
    }
    assert_sync_ledger_statement(stmts)
    (consume,) = statements_with(stmts, "sqs:ReceiveMessage")
    assert resources_of(consume) == [{"Fn::GetAtt": ["RecordsQueue", "Arn"]}]
    (send,) = statements_with(stmts, "sqs:SendMessage")
    assert resources_of(send) == [{"Fn::GetAtt": ["RecordsDLQ", "Arn"]}]


def assert_sync_ledger_statement(stmts: list[dict[str, Any]]) -> None:
    """The ledger table: BatchGetItem and (conditional) PutItem, nothing else."""
    (ledger,) = [s for s in stmts if resources_of(s) == [{"Fn::GetAtt": ["SyncLedgerTable", "Arn"]}]]
    assert set(ledger["Action"]) == {"dynamodb:BatchGetItem", "dynamodb:PutItem"}


#: The operator's calls on the ledger (sync status / sync forget): never a function's.
OPERATOR_LEDGER_ACTIONS = {
    "dynamodb:Scan",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
}


@pytest.mark.parametrize(
    "role_id", ["IngestFileFunctionRole", "PostRecordsFunctionRole", "ValidateRecordFunctionRole"]
)
def test_the_functions_cannot_scan_or_bulk_delete_the_ledger(cfn: dict[str, Any], role_id: str) -> None:
    # Given a function's role / When its Allow statements are read
    stmts = role_statements(cfn, role_id)
    # Then none grants Scan, BatchWriteItem, Query or DeleteItem on the ledger (or on anything: "*")
    for stmt in stmts:
        on_ledger = {"Fn::GetAtt": ["SyncLedgerTable", "Arn"]} in resources_of(stmt) or "*" in resources_of(
            stmt
        )
        actions = {stmt["Action"]} if isinstance(stmt["Action"], str) else set(stmt["Action"])
        assert not (on_ledger and actions & OPERATOR_LEDGER_ACTIONS), stmt
    assert "dynamodb:Scan" not in actions_of(stmts)


def test_sync_ledger_table_and_settings(cfn: dict[str, Any], raw: dict[str, Any]) -> None:
    table = props(cfn, "SyncLedgerTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    params = raw["Parameters"]
    assert params["SyncMode"]["Default"] == "changes"
    assert params["SyncMode"]["AllowedValues"] == ["changes", "all"]
    days = params["SyncFullEveryDays"]
    assert (days["MinValue"], days["MaxValue"], days["Default"]) == (1, 365, 7)
    for logical_id in ("IngestFileFunction", "PostRecordsFunction"):
        e = env(cfn, logical_id)
        assert e["SYNC_MODE"] == {"Ref": "SyncMode"}
        assert e["SYNC_FULL_EVERY_DAYS"] == {"Ref": "SyncFullEveryDays"}
        assert e["SYNC_LEDGER_TABLE"] == {"Ref": "SyncLedgerTable"}


def test_idempotency_table(cfn: dict[str, Any]) -> None:
    table = props(cfn, "IdempotencyTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


# ------------------------------------------------------------------------------- ValidateRecord


def test_validator_has_reserved_concurrency_one(cfn: dict[str, Any]) -> None:
    assert props(cfn, "ValidateRecordFunction")["ReservedConcurrentExecutions"] == 1


def test_validator_reads_the_secret_and_nothing_else(cfn: dict[str, Any]) -> None:
    stmts = role_statements(cfn, "ValidateRecordFunctionRole")
    assert actions_of(stmts) == {"secretsmanager:GetSecretValue", "kms:Decrypt"}
    (secret,) = statements_with(stmts, "secretsmanager:GetSecretValue")
    assert resources_of(secret) == [{"Ref": "MonetateSecretArn"}]


def test_api_stage_throttles_every_method_to_one_per_second(cfn: dict[str, Any]) -> None:
    (stage_id,) = of_type(cfn, "AWS::ApiGateway::Stage")
    stage = props(cfn, stage_id)
    assert stage["StageName"] == "v1"
    assert stage["TracingEnabled"] is True
    (setting,) = stage["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert (setting["ThrottlingRateLimit"], setting["ThrottlingBurstLimit"]) == (1, 1)
    # access logging on by default (ApiAccessLogging=true)
    log = stage["AccessLogSetting"]["Fn::If"]
    assert log[0] == "EnableApiAccessLogging"
    assert log[1]["DestinationArn"] == {"Fn::GetAtt": ["ValidatorApiAccessLogGroup", "Arn"]}


def test_usage_plan_and_key_exist_with_api_key_auth(cfn: dict[str, Any]) -> None:
    plan = res(cfn, "ValidatorUsagePlan")
    assert plan["Condition"] == "UseApiKey"
    assert plan["Properties"]["Throttle"] == {"RateLimit": 1, "BurstLimit": 1}
    (api_stage,) = plan["Properties"]["ApiStages"]
    assert api_stage["ApiId"] == {"Ref": "ValidatorApi"}
    assert api_stage["Stage"] == {"Ref": "ValidatorApiv1Stage"}
    key = res(cfn, "ValidatorApiKey")
    assert (
        key["Condition"] == "UseApiKey" and "Value" not in key["Properties"]
    )  # generated, never in the template
    link = props(cfn, "ValidatorUsagePlanKey")
    assert link["KeyId"] == {"Ref": "ValidatorApiKey"} and link["UsagePlanId"] == {
        "Ref": "ValidatorUsagePlan"
    }
    assert cfn["Conditions"]["UseApiKey"] == {"Fn::Equals": [{"Ref": "ValidatorAuth"}, "ApiKey"]}


def test_records_route_requires_the_api_key_or_iam_and_the_page_is_public(cfn: dict[str, Any]) -> None:
    body = props(cfn, "ValidatorApi")["Body"]
    defs = body["securityDefinitions"]
    assert defs["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    assert defs["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    records = body["paths"]["/records/{schema}/{id}"]["get"]
    assert records["security"] == {"Fn::If": ["UseApiKey", [{"api_key": []}], [{"sigv4": []}]]}
    page = body["paths"]["/"]["get"]
    assert page["security"] == []  # static HTML, no data: reachable by a browser without a key
    assert set(body["paths"]) == {"/records/{schema}/{id}", "/"}
    for path in ("/records/{schema}/{id}", "/"):
        integration = body["paths"][path]["get"]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert "${ValidateRecordFunction.Arn}" in sub_text(integration["uri"])


def test_throttled_gateway_response_says_when_to_retry(cfn: dict[str, Any]) -> None:
    responses = props(cfn, "ValidatorApi")["Body"]["x-amazon-apigateway-gateway-responses"]
    throttled = responses["THROTTLED"]
    assert throttled["statusCode"] == "429"
    assert throttled["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


# ------------------------------------------------------------------------------- policies overall


def test_no_allow_statement_uses_resource_star_except_allow_listed_actions(cfn: dict[str, Any]) -> None:
    for where, stmt in iter_policy_statements(cfn):
        if stmt.get("Effect") != "Allow":
            continue
        resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
        actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        if "*" in resources:
            assert set(actions) <= set(STAR_RESOURCE_ACTIONS), f"{where}: {stmt}"
        assert not any(a == "*" or a.endswith(":*") for a in actions), f"{where}: {stmt}"


def test_roles_carry_only_the_two_sam_managed_policies(cfn: dict[str, Any]) -> None:
    for role_id, role in of_type(cfn, "AWS::IAM::Role").items():
        names = {arn.rsplit("/", 1)[-1] for arn in role["Properties"].get("ManagedPolicyArns", [])}
        assert names == {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}, role_id


# ------------------------------------------------------------------------------- encryption + TLS


def test_bucket_is_encrypted_private_and_tls_only(cfn: dict[str, Any]) -> None:
    bucket = props(cfn, "DataBucket")
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert algorithm == {"Fn::If": ["HasDataBucketKmsKey", "aws:kms", "AES256"]}  # encrypted either way
    assert rule["BucketKeyEnabled"] is True
    assert (
        all(bucket["PublicAccessBlockConfiguration"].values())
        and len(bucket["PublicAccessBlockConfiguration"]) == 4
    )
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    policy = props(cfn, "DataBucketPolicy")
    assert policy["Bucket"] == {"Ref": "DataBucket"}
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["DataBucket", "Arn"]} in deny["Resource"]


def test_queues_are_encrypted_and_tls_only(cfn: dict[str, Any]) -> None:
    queues = of_type(cfn, "AWS::SQS::Queue")
    assert set(queues) == {"RecordsQueue", "RecordsDLQ", "IngestFailuresQueue"}
    for logical_id in queues:
        assert props(cfn, logical_id)["SqsManagedSseEnabled"] is True
    (policy,) = of_type(cfn, "AWS::SQS::QueuePolicy").values()
    assert {q["Ref"] for q in policy["Properties"]["Queues"]} == set(queues)
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {r["Fn::GetAtt"][0] for r in deny["Resource"]} == set(queues)


def test_log_groups_have_retention_and_functions_log_to_them(cfn: dict[str, Any]) -> None:
    for logical_id, group in of_type(cfn, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id
    for logical_id in FUNCTIONS:
        group_id = logical_id.replace("Function", "LogGroup")
        assert props(cfn, logical_id)["LoggingConfig"]["LogGroup"] == {"Ref": group_id}


# ------------------------------------------------------------------------------- alarms, dashboard


def alarms(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in of_type(cfn, "AWS::CloudWatch::Alarm").items()}


def test_alarms_present(cfn: dict[str, Any]) -> None:
    found = alarms(cfn)
    by_metric = {
        (a["Namespace"], a["MetricName"], json.dumps(a["Dimensions"], sort_keys=True))
        for a in found.values()
        if "MetricName" in a
    }

    def has(namespace: str, metric: str, name: str, value: Any) -> bool:
        dims = json.dumps([{"Name": name, "Value": value}], sort_keys=True)
        return (namespace, metric, dims) in by_metric

    assert has(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        {"Fn::GetAtt": ["RecordsDLQ", "QueueName"]},
    )
    assert has(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        {"Fn::GetAtt": ["IngestFailuresQueue", "QueueName"]},
    )
    assert has(
        "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", {"Fn::GetAtt": ["RecordsQueue", "QueueName"]}
    )
    for fn in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            assert has("AWS/Lambda", metric, "FunctionName", {"Ref": fn}), (fn, metric)


@pytest.mark.parametrize(
    ("metric", "query"),
    [
        ("KeyRevoked", "SELECT SUM(KeyRevoked) FROM MonetateIngest WHERE service = 'monetate-ingest'"),
        ("FilesFailed", "SELECT SUM(FilesFailed) FROM MonetateIngest WHERE service = 'monetate-ingest'"),
        ("BatchesParked", "SELECT SUM(BatchesParked) FROM MonetateIngest WHERE service = 'monetate-ingest'"),
    ],
)
def test_custom_metric_alarms_sum_every_dimension_set(cfn: dict[str, Any], metric: str, query: str) -> None:
    # FilesFailed is emitted with a `schema` dimension; a Metrics Insights query sums all sets
    alarm = alarms(cfn)[f"{metric}Alarm"]
    (only,) = alarm["Metrics"]
    assert only["Expression"] == query
    assert only["ReturnData"] is True
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_alarm_thresholds_and_actions(cfn: dict[str, Any]) -> None:
    found = alarms(cfn)
    assert len(found) >= 12
    for name, alarm in found.items():
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }, name
    dlq = found["RecordsDLQDepthAlarm"]
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    age = found["RecordsQueueAgeAlarm"]
    assert (age["Threshold"], age["ComparisonOperator"]) == (900, "GreaterThanThreshold")


def test_dashboard_body_is_json_with_the_expected_widgets(cfn: dict[str, Any]) -> None:
    body_sub = props(cfn, "Dashboard")["DashboardBody"]["Fn::Sub"]
    text, variables = body_sub
    assert set(variables) == {"RecordsQueueName", "RecordsDLQName", "IngestFailuresName"}
    placeholders = set(re.findall(r"\$\{([^}]+)\}", text))
    assert placeholders <= set(variables) | {"AWS::Region"} | set(FUNCTIONS)
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))
    dumped = json.dumps(body)
    for metric in ("RowsRead", "RowsPosted", "RowsRejected", "RowsParked", "RowsUnchanged", "PostLatency"):
        assert metric in dumped
    assert "p95" in dumped and "p50" in dumped
    assert "ApproximateAgeOfOldestMessage" in dumped and "ApproximateNumberOfMessagesVisible" in dumped
    assert '"Errors"' in dumped and '"Duration"' in dumped


def dashboard_widgets(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    text = props(cfn, "Dashboard")["DashboardBody"]["Fn::Sub"][0]
    widgets: list[dict[str, Any]] = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))["widgets"]
    return widgets


def expressions(widget: dict[str, Any]) -> list[str]:
    return [m[0]["expression"] for m in widget["properties"]["metrics"] if isinstance(m[0], dict)]


def test_rows_unchanged_is_charted_like_rows_posted(cfn: dict[str, Any]) -> None:
    # Given the dashboard / When the rows widgets are read
    rows = [e for w in dashboard_widgets(cfn) for e in expressions(w) if 'MetricName="Rows' in e]
    # Then RowsUnchanged is there with the same namespace, dimensions and statistic as RowsPosted
    (posted,) = [e for e in rows if '"RowsPosted"' in e]
    (unchanged,) = [e for e in rows if '"RowsUnchanged"' in e]
    assert unchanged == posted.replace("RowsPosted", "RowsUnchanged")
    for name in ("RowsRejected", "RowsParked"):
        assert any(f'"{name}"' in e for e in rows), name


def test_the_sync_ledger_widget_charts_latency_percentiles_and_failures(cfn: dict[str, Any]) -> None:
    # Given the dashboard / When the sync ledger's widget is read
    (ledger,) = [w for w in dashboard_widgets(cfn) if w["properties"]["title"].startswith("Sync ledger")]
    found = expressions(ledger)
    # Then each latency has p50 and p99, each failure count its sum, over every dimension set of
    # the namespace: PostRecords emits them with {service} (the package's Powertools metrics),
    # IngestFile in its per-invocation EMF line with {schema, service}
    search = "SEARCH('MonetateIngest MetricName=\"%s\"', '%s', 300)"
    assert sorted(found) == sorted(
        [
            search % (m, stat)
            for m in ("SyncLedgerLookupLatency", "SyncLedgerWriteLatency")
            for stat in ("p50", "p99")
        ]
        + [search % (m, "Sum") for m in ("SyncLedgerLookupFailed", "SyncLedgerWriteFailed")]
    )


def test_sync_session_metrics_carry_the_dimensions_the_dashboard_searches() -> None:
    # Given a sync session with its default metrics sink (the package's Powertools metrics)
    from monetate_ingest.monetate.schema import SchemaSpec
    from monetate_ingest.observability import metrics
    from monetate_ingest.sync import InMemoryLedger, SourceTime
    from monetate_ingest.sync.factory import SyncSource

    schema = SchemaSpec.from_api(
        {"name": "customers", "fields": {"id": {"data_type": "STRING", "unique_key": True}}}
    )
    source = SyncSource("changes", 7, InMemoryLedger(), lambda: b"k" * 32, "acme", "production")
    session = source.session(schema)
    metrics.clear_metrics()
    try:
        # When a row is classified and recorded
        row = session.row({"id": "c1"}, SourceTime(1000.0, "etag", 2))
        session.classify([row])
        session.posted([row])
        blob = metrics.serialize_metric_set()
    finally:
        metrics.clear_metrics()
    # Then the latencies go out in namespace MonetateIngest with the one dimension set {service}
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "MonetateIngest" and directive["Dimensions"] == [["service"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {"SyncLedgerLookupLatency", "SyncLedgerWriteLatency"}


def test_the_ledger_table_name_is_an_output_for_the_operator(cfn: dict[str, Any]) -> None:
    assert cfn["Outputs"]["SyncLedgerTableName"]["Value"] == {"Ref": "SyncLedgerTable"}


def test_emitted_metrics_are_listed_in_the_template() -> None:
    text = TEMPLATE.read_text()
    for metric in EMITTED_METRICS:
        assert metric in text, metric


# ------------------------------------------------------------------------------- outputs


def test_outputs(cfn: dict[str, Any]) -> None:
    outputs = cfn["Outputs"]
    for name in (
        "ValidatorApiUrl",
        "SpotCheckPageUrl",
        "ApiKeyId",
        "BucketName",
        "RecordsQueueUrl",
        "RecordsDLQUrl",
        "IngestFailuresQueueUrl",
        "DashboardUrl",
    ):
        assert name in outputs, name
    assert outputs["ApiKeyId"]["Condition"] == "UseApiKey"
    assert "get-api-key" in outputs["ApiKeyId"]["Description"]
    assert "--include-value" in outputs["ApiKeyId"]["Description"]
    assert sub_text(outputs["SpotCheckPageUrl"]["Value"]).endswith("/v1/")


# ------------------------------------------------------------------------------- the checker itself


def test_checker_flags_resource_star(cfn: dict[str, Any]) -> None:
    bad = copy.deepcopy(cfn)
    role = bad["Resources"]["ValidateRecordFunctionRole"]["Properties"]
    role["Policies"].append(
        {
            "PolicyName": "oops",
            "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
        }
    )
    problems = template_check.check_policies(bad)
    assert any("Resource '*'" in p and "s3:GetObject" in p for p in problems)


def test_checker_allows_resource_star_for_xray(cfn: dict[str, Any]) -> None:
    ok = copy.deepcopy(cfn)
    role = ok["Resources"]["ValidateRecordFunctionRole"]["Properties"]
    role["Policies"].append(
        {
            "PolicyName": "xray",
            "PolicyDocument": {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                        "Resource": "*",
                    }
                ]
            },
        }
    )
    assert template_check.check_policies(ok) == []


def test_checker_flags_missing_layer_wrong_handler_and_unencrypted_queue(
    raw: dict[str, Any], cfn: dict[str, Any]
) -> None:
    bad_raw = copy.deepcopy(raw)
    bad_raw["Resources"]["PostRecordsFunction"]["Properties"]["Handler"] = "handler.main"
    bad_cfn = copy.deepcopy(cfn)
    bad_cfn["Resources"]["IngestFileFunction"]["Properties"]["Layers"] = []
    del bad_cfn["Resources"]["RecordsDLQ"]["Properties"]["SqsManagedSseEnabled"]
    problems = template_check.check_contract(bad_raw, bad_cfn) + template_check.check_encryption(bad_cfn)
    assert any("PostRecordsFunction: Handler" in p for p in problems)
    assert any("IngestFileFunction: does not use the MonetateIngestLayer" in p for p in problems)
    assert any("RecordsDLQ: no encryption" in p for p in problems)


def test_checker_reports_sam_transform_errors_readably(raw: dict[str, Any]) -> None:
    bad = copy.deepcopy(raw)
    bad["Resources"]["ValidateRecordFunction"]["Properties"]["Events"]["GetRecord"]["Properties"][
        "RestApiId"
    ] = {"Ref": "NoSuchApi"}
    with pytest.raises(template_check.TemplateCheckError) as err:
        transform_template(bad)
    assert err.value.problems and all(p.startswith("SAM transform") for p in err.value.problems)
