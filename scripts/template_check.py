"""Offline checks of ``template.yaml``: the strict SAM transform plus this project's own rules.

Run as ``python -m scripts.template_check template.yaml``. Exit status 0 when everything holds, 1 with
one readable line per problem otherwise. No AWS call is made: the managed-policy map SAM would read
from IAM is a fixed stub, the region is pinned, and local ``CodeUri``/``ContentUri`` paths are
swapped for placeholder S3 URIs before the transform (as ``sam package`` would do).

Our rules, on the transformed template:

* the three functions exist with the contract's code folders and handler (``functions/<name>/``,
  ``app.lambda_handler``) and every Lambda function uses the ``MonetateIngestLayer`` layer;
* no IAM ``Allow`` statement has ``Resource: "*"`` unless every action in it is one AWS only
  authorises on ``*`` (X-Ray trace upload and ``cloudwatch:PutMetricData`` have no resource-level
  permissions) and no ``Allow`` uses a bare ``*`` or ``service:*`` action; attached managed policies
  are limited to the two SAM adds (basic execution logs, X-Ray write), whose ``*`` resources are
  AWS's own definitions for the same reason;
* encryption at rest on every bucket, queue and table; the bucket has a TLS-only bucket policy and
  blocks public access; queues deny non-TLS access;
* every log group has a retention; every API method has an integration;
* the table of contents at the top agrees with the section headers and the resources under them
  (``scripts/template_toc.py``).

``transform_template()`` and ``load_template()`` are shared with ``tests/functional``.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.template_toc import toc_problems

#: Parameter values used for the offline transform (only those without defaults are required).
SAMPLE_PARAMETERS: dict[str, str] = {
    "RetailerShortname": "acme",
    "MonetateSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:monetate/api-AbCdEf",
}

#: logical id -> (code folder, handler): the handler contract (docs/ARCHITECTURE.md "Contracts").
CONTRACT_FUNCTIONS: dict[str, tuple[str, str]] = {
    "IngestFileFunction": ("functions/ingest_file/", "app.lambda_handler"),
    "PostRecordsFunction": ("functions/post_records/", "app.lambda_handler"),
    "ValidateRecordFunction": ("functions/validate_record/", "app.lambda_handler"),
}
LAYER_ID = "MonetateIngestLayer"
LAYER_CONTENT_URI = "layers/monetate_ingest/"

#: Actions that AWS authorises only on Resource "*" (no resource-level permissions exist).
STAR_RESOURCE_ACTIONS: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions for trace upload",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions for telemetry",
    "xray:GetSamplingRules": "X-Ray sampling rules are read account-wide",
    "xray:GetSamplingTargets": "X-Ray sampling targets are read account-wide",
    "xray:GetSamplingStatisticSummaries": "X-Ray sampling statistics are account-wide",
    "cloudwatch:PutMetricData": "CloudWatch metrics have no resource-level permissions (scope by namespace)",
}

#: Managed policies the functions may carry, and why their "*" resources are acceptable.
ALLOWED_MANAGED_POLICIES: dict[str, str] = {
    "AWSLambdaBasicExecutionRole": "logs:CreateLogGroup/CreateLogStream/PutLogEvents (SAM's default; "
    "our log groups are created by the template)",
    "AWSXrayWriteOnlyAccess": "added by Tracing: Active; X-Ray actions support only Resource '*'",
    "service-role/AWSLambdaBasicExecutionRole": "see AWSLambdaBasicExecutionRole",
}

_NO_VALUE = {"Ref": "AWS::NoValue"}
_PLACEHOLDER_S3 = "s3://template-check-placeholder/{}.zip"


class _OfflineManagedPolicyLoader:
    """Stands in for ``samtranslator``'s ``ManagedPolicyLoader``: a fixed map, no IAM call."""

    def load(self) -> dict[str, str]:
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in ALLOWED_MANAGED_POLICIES}


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse the YAML (short-form intrinsics such as ``!Sub`` included) into plain dicts and lists."""
    from cfnlint.decode import cfn_yaml

    try:
        node = cfn_yaml.load(str(path))
    except Exception as exc:  # the decoder raises several types; all mean "not a readable template"
        raise TemplateCheckError([f"{path}: cannot parse the template: {exc}"]) from None
    # cfn-lint's nodes carry line marks; a JSON round trip gives plain builtins.
    plain: dict[str, Any] = json.loads(json.dumps(node))
    return plain


class TemplateCheckError(Exception):
    """The template failed the SAM transform or one of our rules; ``problems`` lists each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _with_placeholder_code(template: dict[str, Any]) -> dict[str, Any]:
    """Local code paths -> placeholder S3 URIs, as ``sam package`` does, so the strict transform runs."""
    out = copy.deepcopy(template)
    for logical_id, res in out.get("Resources", {}).items():
        props = res.get("Properties") or {}
        key = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(
            res.get("Type", "")
        )
        if key and isinstance(props.get(key), str) and not props[key].startswith("s3://"):
            props[key] = _PLACEHOLDER_S3.format(logical_id)
    return out


def transform_template(
    template: str | Path | dict[str, Any],
    parameters: dict[str, str] | None = None,
    *,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """Run the strict SAM transform offline and return the CloudFormation template."""
    import boto3
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    raw = load_template(template) if isinstance(template, (str, Path)) else template
    fragment = _with_placeholder_code(raw)
    values: dict[str, Any] = dict(SAMPLE_PARAMETERS)
    values.update(parameters or {})
    loader = _OfflineManagedPolicyLoader()
    previous_region = ArnGenerator.BOTO_SESSION_REGION_NAME
    try:
        # What samtranslator.translator.transform.transform() does, plus an explicit boto3 Session
        # (creating one is local: it only fixes the region for the pseudo parameters and partition).
        to_py27_compatible_template(fragment, values)
        metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
        translator = Translator(
            None, Parser(), boto_session=boto3.session.Session(region_name=region), metrics=metrics
        )
        cfn = translator.translate(fragment, parameter_values=values, get_managed_policy_map=loader.load)
        metrics.publish()  # to the dummy publisher; silences samtranslator's "unpublished metrics" note
        return undo_mark_unicode_str_in_template(cfn)  # type: ignore[no-any-return]
    except InvalidDocumentException as exc:
        raise TemplateCheckError([f"SAM transform: {cause.message}" for cause in exc.causes]) from None
    except Exception as exc:  # samtranslator raises a few other exception types for bad input
        raise TemplateCheckError([f"SAM transform failed: {type(exc).__name__}: {exc}"]) from None
    finally:
        ArnGenerator.BOTO_SESSION_REGION_NAME = previous_region


# ---------------------------------------------------------------------------------------- helpers


def _branches(value: Any) -> Iterator[Any]:
    """Yield every concrete alternative of a value that may be wrapped in ``Fn::If``."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, yes, no = value["Fn::If"]
        for branch in (yes, no):
            if branch != _NO_VALUE:
                yield from _branches(branch)
    else:
        yield value


def _as_list(value: Any) -> list[Any]:
    out: list[Any] = []
    for v in _branches(value):
        out.extend(v if isinstance(v, list) else [v])
    return out


_POLICY_DOCUMENT_TYPES = (
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::RolePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
)


def iter_policy_statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every inline statement of roles, IAM policies and resource policies."""
    for logical_id, res in cfn.get("Resources", {}).items():
        props = res.get("Properties") or {}
        kind = res.get("Type")
        docs: list[tuple[str, Any]] = []
        if kind == "AWS::IAM::Role":
            for item in _as_list(props.get("Policies", [])):
                for pol in _branches(item):  # SAM keeps Fn::If around conditional policies
                    docs.append((f"{logical_id}/{pol.get('PolicyName', '?')}", pol.get("PolicyDocument")))
        elif kind in _POLICY_DOCUMENT_TYPES:
            docs.append((logical_id, props.get("PolicyDocument")))
        for where, doc in docs:
            for d in _branches(doc):
                if not isinstance(d, dict):
                    continue
                for stmt in [b for item in _as_list(d.get("Statement", [])) for b in _branches(item)]:
                    if isinstance(stmt, dict):
                        yield where, stmt


def _resources(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfn.get("Resources", {}).items() if v.get("Type") == kind}


def _managed_policy_name(arn: Any) -> str:
    if isinstance(arn, dict) and "Fn::Sub" in arn:
        arn = arn["Fn::Sub"] if isinstance(arn["Fn::Sub"], str) else arn["Fn::Sub"][0]
    text = str(arn)
    return text.split(":policy/", 1)[1] if ":policy/" in text else text


# ---------------------------------------------------------------------------------------- rules


def check_contract(raw: dict[str, Any], cfn: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    resources = raw.get("Resources", {})
    globals_fn = (raw.get("Globals") or {}).get("Function") or {}
    for logical_id, (code_uri, handler) in CONTRACT_FUNCTIONS.items():
        res = resources.get(logical_id)
        if not res or res.get("Type") != "AWS::Serverless::Function":
            problems.append(f"{logical_id}: missing; the contract has {', '.join(CONTRACT_FUNCTIONS)}")
            continue
        props = res.get("Properties") or {}
        if str(props.get("CodeUri", "")).rstrip("/") + "/" != code_uri:
            problems.append(f"{logical_id}: CodeUri is {props.get('CodeUri')!r}; contract: {code_uri!r}")
        got = props.get("Handler", globals_fn.get("Handler"))
        if got != handler:
            problems.append(f"{logical_id}: Handler is {got!r}; the contract says {handler!r}")
    layer = resources.get(LAYER_ID)
    if not layer or layer.get("Type") != "AWS::Serverless::LayerVersion":
        problems.append(f"{LAYER_ID}: missing AWS::Serverless::LayerVersion")
    else:
        content = str((layer.get("Properties") or {}).get("ContentUri", "")).rstrip("/") + "/"
        if content != LAYER_CONTENT_URI:
            problems.append(f"{LAYER_ID}: ContentUri is {content!r}; expected {LAYER_CONTENT_URI!r}")
        if not str((layer.get("Metadata") or {}).get("BuildMethod", "")).startswith("python3"):
            problems.append(f"{LAYER_ID}: Metadata.BuildMethod must be python3.x to install requirements")

    layer_ids = {k for k in _resources(cfn, "AWS::Lambda::LayerVersion") if k.startswith(LAYER_ID)}
    for logical_id, res in _resources(cfn, "AWS::Lambda::Function").items():
        layers = (res.get("Properties") or {}).get("Layers", [])
        refs = {item.get("Ref") for item in layers if isinstance(item, dict)}
        if not refs & layer_ids:
            problems.append(f"{logical_id}: does not use the {LAYER_ID} layer (Layers: {layers!r})")
    return problems


def check_policies(cfn: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for where, stmt in iter_policy_statements(cfn):
        if stmt.get("Effect") != "Allow":
            continue  # Deny statements (TLS-only) rightly apply to "*" principals/resources
        actions = [str(a) for a in _as_list(stmt.get("Action", []))]
        resources = _as_list(stmt.get("Resource", []))
        sid = stmt.get("Sid", "?")
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{where} [{sid}]: wildcard action {action!r}; name the actions")
        if "*" in resources:
            unjustified = [a for a in actions if a not in STAR_RESOURCE_ACTIONS]
            if unjustified:
                problems.append(
                    f"{where} [{sid}]: Resource '*' for {', '.join(unjustified)}; "
                    "name the resource ARNs (only actions without resource-level permissions may use '*')"
                )
        if "NotResource" in stmt or "NotAction" in stmt:
            problems.append(f"{where} [{sid}]: NotAction/NotResource in an Allow statement widens it; avoid")
    for logical_id, role in _resources(cfn, "AWS::IAM::Role").items():
        arns = [
            a
            for item in _as_list((role.get("Properties") or {}).get("ManagedPolicyArns", []))
            for a in _branches(item)
        ]
        for arn in arns:
            name = _managed_policy_name(arn)
            if name not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{logical_id}: managed policy {name!r} is not allow-listed; use inline ones")
    return problems


def check_encryption(cfn: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    bucket_policies = list(_resources(cfn, "AWS::S3::BucketPolicy").values())
    for logical_id, res in _resources(cfn, "AWS::S3::Bucket").items():
        props = res.get("Properties") or {}
        rules = ((props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")) or []
        if not rules:
            problems.append(f"{logical_id}: no default encryption (BucketEncryption)")
        pab = props.get("PublicAccessBlockConfiguration") or {}
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if pab.get(flag) is not True:
                problems.append(f"{logical_id}: PublicAccessBlockConfiguration.{flag} must be true")
        if not any(
            (p.get("Properties") or {}).get("Bucket") == {"Ref": logical_id}
            and _has_tls_deny((p.get("Properties") or {}).get("PolicyDocument"))
            for p in bucket_policies
        ):
            problems.append(f"{logical_id}: no bucket policy denying aws:SecureTransport=false")
    queue_policies = list(_resources(cfn, "AWS::SQS::QueuePolicy").values())
    for logical_id, res in _resources(cfn, "AWS::SQS::Queue").items():
        props = res.get("Properties") or {}
        if props.get("SqsManagedSseEnabled") is not True and not props.get("KmsMasterKeyId"):
            problems.append(f"{logical_id}: no encryption at rest (SqsManagedSseEnabled or KmsMasterKeyId)")
        if not any(
            {"Ref": logical_id} in ((p.get("Properties") or {}).get("Queues") or [])
            and _has_tls_deny((p.get("Properties") or {}).get("PolicyDocument"))
            for p in queue_policies
        ):
            problems.append(f"{logical_id}: no queue policy denying aws:SecureTransport=false")
    for logical_id, res in _resources(cfn, "AWS::DynamoDB::Table").items():
        sse = (res.get("Properties") or {}).get("SSESpecification") or {}
        if sse.get("SSEEnabled") is not True:
            problems.append(f"{logical_id}: SSESpecification.SSEEnabled must be true")
    for logical_id, res in _resources(cfn, "AWS::Logs::LogGroup").items():
        if "RetentionInDays" not in (res.get("Properties") or {}):
            problems.append(f"{logical_id}: log group without RetentionInDays keeps logs forever")
    return problems


def check_api(cfn: dict[str, Any]) -> list[str]:
    """Every method of every REST API definition is wired to an integration (SAM merges them in)."""
    problems: list[str] = []
    for logical_id, res in _resources(cfn, "AWS::ApiGateway::RestApi").items():
        body = (res.get("Properties") or {}).get("Body") or {}
        for path, item in (body.get("paths") or {}).items():
            for alt in _branches(item):
                for method, op in (alt or {}).items():
                    if method.startswith("x-") or method == "parameters":
                        continue
                    if "x-amazon-apigateway-integration" not in (op or {}):
                        problems.append(
                            f"{logical_id}: {method.upper()} {path} has no integration "
                            "(a DefinitionBody path without a function Api event, or MergeDefinitions off)"
                        )
    return problems


def _has_tls_deny(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    for stmt in [b for item in _as_list(doc.get("Statement", [])) for b in _branches(item)]:
        cond = (stmt.get("Condition") or {}).get("Bool") or {}
        if stmt.get("Effect") == "Deny" and str(cond.get("aws:SecureTransport")).lower() == "false":
            return True
    return False


def check(path: str | Path) -> list[str]:
    """Every problem found in the template at ``path`` (empty when it passes)."""
    try:
        raw = load_template(path)
        cfn = transform_template(raw)
    except TemplateCheckError as exc:
        return exc.problems
    contents = [f"contents: {p}" for p in toc_problems(Path(path).read_text(encoding="utf-8"))]
    return check_contract(raw, cfn) + check_policies(cfn) + check_encryption(cfn) + check_api(cfn) + contents


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m scripts.template_check template.yaml", file=sys.stderr)
        return 2
    path = Path(args[0])
    if not path.is_file():
        print(f"template_check: {path} does not exist", file=sys.stderr)
        return 2
    problems = check(path)
    if problems:
        print(f"template_check: {path}: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    cfn = transform_template(path)
    kinds: dict[str, int] = {}
    for res in cfn["Resources"].values():
        kinds[res["Type"]] = kinds.get(res["Type"], 0) + 1
    summary = ", ".join(f"{n} {k.split('::', 1)[1]}" for k, n in sorted(kinds.items()))
    print(
        f"template_check: {path}: OK (SAM transform, contract, least privilege, encryption, contents)"
        f" - {summary}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
