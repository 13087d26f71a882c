"""The deployable artifacts (`sam build` output) hold everything the handlers import.

Given the functions and the layer built by `sam build` for python3.12, when each handler is imported
in a clean python3.12 (``-I -S -B``: no site-packages, no PYTHON* variables, no user site) whose
sys.path is only the function folder, the layer and the packages Lambda's runtime provides, then the
import succeeds, every module the handler's code can import later succeeds too, and nothing comes
from the development environment -- so a missing dependency fails here, not as
``Runtime.ImportModuleError`` in AWS.

The template targets arm64; on an x86_64 machine the layer's compiled wheels (cryptography, cffi,
wrapt, charset-normalizer) cannot be loaded. The imports then run against the same template built
for this machine (scripts/build.sh --host-arch), and separate tests prove that copy holds exactly
the deployable build's distributions and code, and that the deployable build's binaries are arm64.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from scripts import check_artifacts
from tests.packaging.conftest import ROOT, Artifacts, source_functions

pytestmark = pytest.mark.timeout(1800)  # the first test may build (about 2 minutes on a fresh machine)

# Modules each handler imports on its first invocation (deferred to keep cold starts short). The
# probe also finds every import in the handler's code by itself; these are named to be sure.
FIRST_INVOCATION = {
    "IngestFileFunction": [
        "monetate_ingest.ingest.handler",
        "monetate_ingest.ingest.job",
        "monetate_ingest.formats.readers",
        "monetate_ingest.formats.coercion",
        "monetate_ingest.ingest.checkpoints",
        "monetate_ingest.ingest.completion_events",
        "aws_lambda_powertools.utilities.idempotency",
        "aws_lambda_powertools.utilities.parameters",
        "boto3",
    ],
    "PostRecordsFunction": [
        "monetate_ingest.records.handler",
        "aws_lambda_powertools.utilities.idempotency",
        "aws_lambda_powertools.utilities.batch",
        "aws_lambda_powertools.utilities.parameters",
        "boto3",
    ],
    "ValidateRecordFunction": ["monetate_ingest.spotcheck.app", "aws_lambda_powertools.event_handler"],
}
# One cheap invocation that needs no network: (event file, expected statusCode).
INVOCATION = {"ValidateRecordFunction": ("events/api_gateway_get_page.json", 200)}

ELF_MACHINE = {"x86_64": 62, "arm64": 183}
EXT_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}


def probe(python: str, artifacts: Artifacts, runtime_site: Path, function: str) -> dict:  # type: ignore[type-arg]
    facts = artifacts.check_functions[function]
    code = facts["dir"]
    cmd = [
        python,
        "-I",
        "-S",
        "-B",
        str(ROOT / "scripts" / "check_artifacts.py"),
        "probe",
        "--code",
        str(code),
        "--handler",
        facts["handler"],
        "--own",
        "monetate_ingest",
        "--runtime-site",
        str(runtime_site),
        "--tracer",
        "--function-name",
        function,
    ]
    for layer in facts["layers"]:
        cmd += ["--layer", str(artifacts.check_dir / layer)]
    for module in FIRST_INVOCATION.get(function, []):
        cmd += ["--import", module]
    if function in INVOCATION:
        event, status = INVOCATION[function]
        cmd += ["--event", str(ROOT / event), "--expect-status", str(status)]
    # Lambda's environment, minus anything of this machine's (no AWS credentials, no endpoints).
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(code),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{facts['runtime']}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "_X_AMZN_TRACE_ID": "Root=1-6745a1b2-3c4d5e6f7a8b9c0d1e2f3a4b;Parent=53995c3f42cd8ad8;Sampled=0",
        "POWERTOOLS_SERVICE_NAME": "monetate-ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "MonetateIngest",
        "MONETATE_RETAILER": "acme",
        "MONETATE_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:monetate/api-AbCdEf",
        "RECORDS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/monetate-ingest-records",
        "RECORDS_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/monetate-ingest-records-dlq",
        "IDEMPOTENCY_TABLE": "monetate-ingest-idempotency",
        "DATA_BUCKET": "monetate-ingest-data",
    }
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"the probe of {function} printed no report (exit {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
            pytrace=False,
        )
    report["_exit"] = proc.returncode
    return report


@pytest.mark.parametrize("function", source_functions())
def test_handler_imports_from_the_built_artifacts_alone(
    function: str, lambda_python: str, artifacts: Artifacts, runtime_site: Path
) -> None:
    # Given the built function folder and its layer, in a clean python3.12
    assert function in artifacts.functions, f"{function} is not in {artifacts.build_dir}/template.yaml"
    # When its handler and everything its code imports are imported (and one cheap invocation)
    report = probe(lambda_python, artifacts, runtime_site, function)
    # Then nothing is missing, nothing came from the dev environment, no socket was touched
    failures = "\n".join(report["failures"])
    assert report["_exit"] == 0 and not report["failures"], f"{function}:\n{failures}"
    assert report["isolated"] and report["no_site"]
    assert report["python"].startswith(artifacts.functions[function]["runtime"].removeprefix("python"))
    assert report["origins"]["app"] == "function"
    assert report["origins"]["monetate_ingest"] == "layer"
    assert report["tracer_enabled"], "Powertools Tracer did not build enabled in a Lambda-like environment"
    for name in ("aws_lambda_powertools", "aws_xray_sdk", "requests", "jwt"):
        assert report["origins"].get(name) in (None, "layer"), f"{name} from {report['origins'][name]}"
    if function in INVOCATION:
        assert report["response_status"] == INVOCATION[function][1]
    print(
        f"{function}: handler import {report['handler_import_ms']} ms; {len(report['imported'])} modules; "
        f"boto3 {report.get('boto3_version')} from {report['origins'].get('boto3')}, "
        f"botocore {report.get('botocore_version')} from {report['origins'].get('botocore')}"
    )


def _dists(layer: Path) -> dict[str, str]:
    """{normalized distribution name: version} of a built layer's python/ folder."""
    found = {}
    for meta in (layer / "python").glob("*.dist-info/METADATA"):
        text = meta.read_text(errors="replace")
        name = re.search(r"^Name: (.+)$", text, re.M)
        version = re.search(r"^Version: (.+)$", text, re.M)
        assert name and version, meta
        found[re.sub(r"[-_.]+", "-", name.group(1).strip()).lower()] = version.group(1).strip()
    return found


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_checked_copy_holds_what_is_deployed(artifacts: Artifacts) -> None:
    """The host-architecture copy the imports ran against = the deployable build, but for binaries."""
    if artifacts.check_dir == artifacts.build_dir:  # same architecture: no copy, nothing can differ
        assert artifacts.host_arch == artifacts.template_arch
        return
    assert sorted(artifacts.check_functions) == sorted(artifacts.functions)
    for layer in artifacts.layers:
        deployed, checked = _dists(artifacts.build_dir / layer), _dists(artifacts.check_dir / layer)
        assert deployed == checked, (
            f"{layer}: the {artifacts.template_arch} and {artifacts.host_arch} builds resolved different "
            f"distributions (a release between the two builds? rerun `make build`): "
            f"{set(deployed.items()) ^ set(checked.items())}"
        )
        own = Path(layer) / "python" / "monetate_ingest"
        assert _tree_digest(artifacts.build_dir / own) == _tree_digest(artifacts.check_dir / own), (
            f"{own} differs between the two builds (sources edited during the build? rerun)"
        )
    for function in artifacts.functions:
        assert _tree_digest(artifacts.build_dir / function) == _tree_digest(artifacts.check_dir / function)


def test_compiled_extensions_are_for_the_target(artifacts: Artifacts) -> None:
    """Every shared object of the deployable build is ELF for the template's architecture, and every
    extension module is tagged for the runtime's Python (cpython-312 or the stable ABI)."""
    arch = artifacts.template_arch
    runtime = {f["runtime"] for f in artifacts.functions.values()}.pop()
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    wrong = []
    for folder in [*artifacts.layers, *artifacts.functions]:
        for so in (artifacts.build_dir / folder).rglob("*.so*"):
            if not so.is_file():
                continue
            head = so.read_bytes()[:20]
            if head[:4] != b"\x7fELF":
                continue
            machine = int.from_bytes(head[18:20], "little")
            if machine != ELF_MACHINE[arch]:
                wrong.append(f"{so}: ELF machine {machine}, not {arch}")
            m = re.search(r"\.(cpython-\d+)-([a-z0-9_]+)-linux-gnu\.so$", so.name)
            if m and (m.group(1) != tag or m.group(2) != EXT_ARCH[arch]):
                wrong.append(f"{so.name}: built for {m.group(1)}/{m.group(2)}, not {tag}/{EXT_ARCH[arch]}")
    assert not wrong, "\n".join(wrong)


def test_functions_fit_lambdas_size_limit(artifacts: Artifacts) -> None:
    def size(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())

    for function, facts in artifacts.functions.items():
        total = size(facts["dir"]) + sum(size(artifacts.build_dir / layer) for layer in facts["layers"])
        limit = check_artifacts.LAMBDA_UNZIPPED_LIMIT
        assert total < limit, f"{function}: {total} bytes unzipped with its layers (limit {limit})"


def test_no_bytecode_in_the_deployable_build(artifacts: Artifacts) -> None:
    """sam build copies no __pycache__, and the probes (python -B) must not have written any."""
    found = [str(p) for p in artifacts.build_dir.rglob("__pycache__")]
    assert not found, f"compiled bytecode in the deployable build: {found[:5]}"


def test_the_layer_ships_a_consistent_aws_sdk(artifacts: Artifacts) -> None:
    """If the layer ships botocore, it shadows the runtime's: then it must ship boto3 and s3transfer
    too, at versions that accept that botocore, or the SDK is a mix of two releases."""
    for layer in artifacts.layers:
        dists = _dists(artifacts.build_dir / layer)
        if "botocore" not in dists:
            continue
        missing = [d for d in ("boto3", "s3transfer") if d not in dists]
        assert not missing, f"{layer} ships botocore {dists['botocore']} without {missing}"
        requires = [
            line
            for meta in (artifacts.build_dir / layer / "python").glob("boto3-*.dist-info/METADATA")
            for line in meta.read_text().splitlines()
            if line.startswith("Requires-Dist: botocore")
        ]
        low = re.search(r">=\s*([\d.]+)", requires[0]) if requires else None
        high = re.search(r"<\s*([\d.]+)", requires[0]) if requires else None
        version = tuple(int(x) for x in dists["botocore"].split(".")[:3])
        assert low and version >= tuple(int(x) for x in low.group(1).split(".")), requires
        assert not high or version < tuple(int(x) for x in high.group(1).split(".")), requires


def test_lambda_python_is_the_runtime(lambda_python: str, artifacts: Artifacts) -> None:
    out = subprocess.run(
        [lambda_python, "-I", "-S", "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    runtimes = {f["runtime"] for f in artifacts.functions.values()}
    assert runtimes == {"python" + ".".join(out.split()[0].split(".")[:2])}, (runtimes, out)
    assert os.path.isabs(lambda_python)
