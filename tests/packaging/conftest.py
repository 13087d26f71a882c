"""Fixtures of the packaging check: a Lambda-version interpreter, the built artifacts (built once per
session, only when their inputs changed), and a stand-in for the packages Lambda's runtime provides."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import check_artifacts

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
BUILD_DIR = ROOT / ".aws-sam" / "build"
ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}

# What Lambda's Python runtime itself puts on sys.path after the layers
# (/var/lang/lib/python3.12/site-packages): the AWS SDK and its dependencies.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
RUNTIME_DISTS = ("boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "six", "urllib3")


def source_functions() -> list[str]:
    """Logical ids of the template's functions (collection time: before anything is built)."""
    template = check_artifacts._load_template(TEMPLATE)
    return sorted(
        name
        for name, r in (template.get("Resources") or {}).items()
        if r.get("Type") == "AWS::Serverless::Function"
    )


def template_runtime() -> str:
    template = check_artifacts._load_template(TEMPLATE)
    runtime = ((template.get("Globals") or {}).get("Function") or {}).get("Runtime")
    return str(runtime or "python3.12")


@dataclass(frozen=True)
class Artifacts:
    build_dir: Path  # the deployable build (template's architecture)
    check_dir: Path  # the same build for this machine's architecture (== build_dir when they agree)
    functions: dict[str, dict]  # type: ignore[type-arg]
    layers: list[str]
    check_functions: dict[str, dict]  # type: ignore[type-arg]
    template_arch: str
    host_arch: str


def _runs(exe: str, want: str) -> bool:
    try:
        out = subprocess.run(
            [exe, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == want


@pytest.fixture(scope="session")
def lambda_python() -> str:
    """The interpreter of the functions' runtime (python3.12): on PATH, or pyenv's newest 3.12.x."""
    runtime = template_runtime()
    want = runtime.removeprefix("python")
    candidates = [os.environ.get("LAMBDA_PYTHON", ""), shutil.which(f"python{want}") or ""]
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        versions = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
        ).stdout.split()
        patch = sorted(
            (v for v in versions if re.fullmatch(rf"{re.escape(want)}\.\d+", v)),
            key=lambda v: int(v.rsplit(".", 1)[1]),
        )
        candidates += [str(Path(root) / "versions" / v / "bin" / f"python{want}") for v in reversed(patch)]
    for exe in candidates:
        if exe and _runs(exe, want):
            return exe
    pytest.fail(
        f"the packaging check needs {runtime} (the functions' Lambda runtime) and this machine has none.\n"
        f"Install it (for example `pyenv install {want}`), or point LAMBDA_PYTHON at one. CI images have\n"
        f"pyenv's {want}; `make build` needs it too (or `sam build --use-container` with Docker).",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def artifacts(lambda_python: str) -> Artifacts:
    """`sam build` output: built now unless scripts/build.sh --if-stale finds it up to date."""
    proc = subprocess.run(
        ["bash", "scripts/build.sh", "--if-stale", "--host-arch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/build.sh failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n"
            f"{proc.stderr[-4000:]}",
            pytrace=False,
        )
    sys.stderr.write(proc.stderr)
    host_arch = ARCHES.get(os.uname().machine, os.uname().machine)
    functions, layers = check_artifacts.built_resources(BUILD_DIR)
    arches = {f["architecture"] for f in functions.values()}
    assert len(arches) == 1, f"functions built for several architectures: {arches}"
    template_arch = arches.pop()
    check_dir = BUILD_DIR if template_arch == host_arch else ROOT / ".aws-sam" / f"host-{host_arch}" / "build"
    check_functions, _ = check_artifacts.built_resources(check_dir)
    return Artifacts(BUILD_DIR, check_dir, functions, layers, check_functions, template_arch, host_arch)


@pytest.fixture(scope="session")
def runtime_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the Lambda runtime's own site-packages: the SDK packages only.

    Lambda's python3.12 runtime ships boto3 and botocore (and their dependencies) itself, after the
    layers on sys.path; the layer deliberately does not ship boto3. The isolated interpreter has no
    SDK, so this folder links the dev venv's copies of exactly those packages -- and nothing else
    from the dev environment -- where the runtime's would be. A module the layer lacks and the
    runtime does not provide still fails to import.
    """
    site = tmp_path_factory.mktemp("lambda-runtime-site-packages")
    import boto3  # the dev venv's; only its location is used

    source = Path(boto3.__file__).resolve().parent.parent
    for entry in source.iterdir():
        name = entry.name
        top = name.removesuffix(".py")
        dist = name.split("-")[0].lower() if name.endswith(".dist-info") else None
        if top in RUNTIME_PROVIDED or (dist and dist in RUNTIME_DISTS):
            (site / name).symlink_to(entry)
    missing = [m for m in RUNTIME_PROVIDED if not any(site.glob(f"{m}*"))]
    assert not missing, f"the dev venv lacks runtime packages {missing} for the stand-in"
    return site
