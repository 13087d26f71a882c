"""Helpers for the deployable artifacts (`sam build` output). Standard library only.

Three subcommands:

``digest``  a SHA-256 over everything `sam build` reads (template, samconfig, functions/, layers/,
            scripts/build.sh); scripts/build.sh --if-stale compares it with the one stored after
            the last successful build.
``sizes BUILD_DIR``
            each function folder and layer of a built template, unzipped and zipped (deflate, as
            `sam deploy` packages them), and each function plus its layers against Lambda's 250 MB
            unzipped limit.
``probe``   run *inside a clean interpreter* -- ``python3.12 -I -S -B check_artifacts.py probe ...``:
            no site-packages, no PYTHON* variables, no user site, no bytecode written into the
            artifacts. sys.path is set up the way Lambda's is (function folder, then the layers'
            ``python/lib/python3.12/site-packages`` and ``python``, then the runtime's own packages),
            the handler is imported, every module the handler's code can import -- including imports
            deferred into functions -- is imported too, an optional event is sent to the handler,
            and every loaded module's origin is checked. Prints one JSON object; exit status 0 when
            nothing failed.

Python 3.8+ for ``digest`` and ``sizes`` (they run under the machine's python3); ``probe`` runs
under the function's runtime version.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What `sam build` reads. __pycache__ and *.pyc are excluded (sam build skips them too).
DIGEST_INPUTS = ("template.yaml", "samconfig.toml", "scripts/build.sh", "functions", "layers")
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: a function plus all its layers, unzipped


# ------------------------------------------------------------------------------------------ digest
def _source_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for name in DIGEST_INPUTS:
        path = root / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for p in path.rglob("*"):
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
                    files.append(p)
    return sorted(files)


def digest(root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for path in _source_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- sizes
class _Counter(io.RawIOBase):
    """A write-only sink that counts bytes (zipfile needs tell(); no seek: streaming mode)."""

    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.n += len(b)
        return len(b)

    def tell(self) -> int:
        return self.n

    def flush(self) -> None:
        pass


def dir_sizes(path: Path) -> tuple[int, int, int]:
    """(unzipped bytes, zipped bytes, files) of a folder, zipped with deflate like `sam deploy`."""
    unzipped = files = 0
    sink = _Counter()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for p in sorted(path.rglob("*")):
            if p.is_file() and not p.is_symlink():
                unzipped += p.stat().st_size
                files += 1
                zf.write(p, p.relative_to(path).as_posix())
    return unzipped, sink.n, files


def _mb(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n < 1_048_576 else f"{n / 1_048_576:.1f} MB"


def _load_template(path: Path) -> dict:  # type: ignore[type-arg]
    """A CloudFormation template as plain data; short tags (!Ref x) become {"Ref": x}-style dicts."""
    import yaml  # PyYAML: in the SAM CLI's venv and in the dev venv (not needed by ``probe``)

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:  # type: ignore[type-arg]
        key = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            return {key: loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {key: loader.construct_sequence(node, deep=True)}
        return {key: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]

    Loader.add_multi_constructor("!", tagged)
    return yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass


def built_resources(build_dir: Path) -> tuple[dict[str, dict], list[str]]:  # type: ignore[type-arg]
    """({function logical id: facts}, [layer logical ids]) of a `sam build` output folder.

    A function's facts: ``dir`` (its built folder), ``handler``, ``runtime``, ``architecture`` and
    ``layers`` (logical ids of the layers built here, Globals' first as SAM merges them).
    """
    template = _load_template(build_dir / "template.yaml")
    glob = (template.get("Globals") or {}).get("Function") or {}
    resources = template.get("Resources") or {}

    def refs(items: object) -> list[str]:
        return [i["Ref"] for i in items or [] if isinstance(i, dict) and "Ref" in i]  # type: ignore[attr-defined]

    layers = [
        name for name, r in resources.items()
        if r.get("Type") == "AWS::Serverless::LayerVersion"
        and isinstance((r.get("Properties") or {}).get("ContentUri"), str)
        and (build_dir / r["Properties"]["ContentUri"]).is_dir()
    ]
    functions: dict[str, dict] = {}  # type: ignore[type-arg]
    for name, r in resources.items():
        props = r.get("Properties") or {}
        if r.get("Type") != "AWS::Serverless::Function" or not isinstance(props.get("CodeUri"), str):
            continue
        shared = refs(glob.get("Layers"))
        merged = shared + [x for x in refs(props.get("Layers")) if x not in shared]
        functions[name] = {
            "dir": build_dir / props["CodeUri"],
            "handler": props.get("Handler", glob.get("Handler")),
            "runtime": props.get("Runtime", glob.get("Runtime")),
            "architecture": (props.get("Architectures") or glob.get("Architectures") or ["x86_64"])[0],
            "layers": [x for x in merged if x in layers],
        }
    return functions, layers


def sizes(build_dir: Path) -> int:
    functions, layers = built_resources(build_dir)
    # (A built template's CodeUri/ContentUri is the logical id: the folder `sam build` made.)
    rows = {name: dir_sizes(build_dir / name) for name in sorted(functions) + sorted(layers)}
    print(f"\n{'artifact':<28} {'unzipped':>11} {'zipped':>11} {'files':>7}")
    for name, (unzipped, zipped, files) in rows.items():
        kind = "layer" if name in layers else "function"
        print(f"{name:<28} {_mb(unzipped):>11} {_mb(zipped):>11} {files:>7}  ({kind})")
    limit = _mb(LAMBDA_UNZIPPED_LIMIT)
    print(f"\n{'function + its layers':<28} {'unzipped':>11}   (Lambda's limit: {limit})")
    worst = 0
    for name, facts in sorted(functions.items()):
        total = rows[name][0] + sum(rows[r][0] for r in facts["layers"])
        worst = max(worst, total)
        print(f"{name:<28} {_mb(total):>11}")
    if worst > LAMBDA_UNZIPPED_LIMIT:
        print(f"a function with its layers exceeds Lambda's {_mb(LAMBDA_UNZIPPED_LIMIT)} unzipped limit",
              file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------------------------- probe
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        names = []
        if handler.type is None:
            return True
        for t in handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]:
            if isinstance(t, ast.Name):
                names.append(t.id)
        if {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"} & set(names):
            return True
    return False


def imports_in(path: Path, package: str | None) -> list[tuple[str, list[str]]]:
    """Every (module, [names]) a file imports, at module level or deferred into functions.

    Skipped: ``if TYPE_CHECKING:`` blocks (never run) and imports guarded by ``except ImportError``
    (optional on purpose). Relative imports are resolved against ``package``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Try) and _catches_import_error(node):
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, []))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = (package or "").split(".")
                base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                module = ".".join([p for p in base if p] + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module and module != "__future__":
                found.append((module, [a.name for a in node.names if a.name != "*"]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _find_source(module: str, roots: list[Path]) -> Path | None:
    rel = Path(*module.split("."))
    for root in roots:
        for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def import_closure(handler_module: str, own: list[str], roots: list[Path]) -> dict[str, set[str]]:
    """Modules reachable from the handler through our own code: {module: names imported from it}.

    Our own modules (the handler's and the ``own`` top-level packages) are followed; every module
    they import is listed, with the names taken from it (``from x import a`` -> ``{"x": {"a"}}``).
    """
    result: dict[str, set[str]] = {}
    seen: set[str] = set()
    todo = [handler_module]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        source = _find_source(module, roots)
        if source is None:
            continue
        package = module if source.name == "__init__.py" else module.rpartition(".")[0]
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parts = module.split(".")
        for i in range(1, len(parts)):
            todo.append(".".join(parts[:i]))
        for target, names in imports_in(source, package or None):
            result.setdefault(target, set()).update(names)
            top = target.split(".")[0]
            if top in own or target == handler_module:
                todo.append(target)
                for name in names:  # `from pkg import submodule`
                    if _find_source(f"{target}.{name}", roots) is not None:
                        todo.append(f"{target}.{name}")
    return result


class FakeContext:
    """The attributes of Lambda's context object that Powertools reads."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.aws_request_id = "00000000-0000-4000-8000-000000000000"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "probe"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def _guard_network(attempts: list[str]) -> None:
    """No socket may connect or send during the probe: importing and the page need no network."""
    import socket

    def refuse(name: str):  # type: ignore[no-untyped-def]
        def guarded(self, address, *args, **kwargs):  # type: ignore[no-untyped-def]
            attempts.append(f"{name} {address!r}" if not args else f"{name} {args[-1]!r}")
            raise OSError(f"network disabled in the packaging probe ({name})")

        return guarded

    socket.socket.connect = refuse("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse("connect_ex")  # type: ignore[method-assign]
    socket.socket.sendto = refuse("sendto")  # type: ignore[method-assign]


def probe(args: argparse.Namespace) -> int:
    import importlib
    import sysconfig
    import traceback

    # Absolute, not resolved: the runtime stand-in may be a folder of symlinks, and a module's
    # __file__ is spelled after the sys.path entry it was found through.
    code = Path(os.path.abspath(args.code))
    layers = [Path(os.path.abspath(p)) for p in args.layer]
    runtime = [Path(os.path.abspath(p)) for p in args.runtime_site]
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    layer_paths = []
    for layer in layers:  # Lambda: /opt/python/lib/python3.x/site-packages, then /opt/python
        layer_paths += [layer / "python" / "lib" / version / "site-packages", layer / "python"]
    sys.path[:0] = [str(code)] + [str(p) for p in layer_paths if p.is_dir()]
    sys.path += [str(p) for p in runtime]  # after the layers, as in Lambda

    report: dict[str, object] = {
        "python": sys.version.split()[0],
        "isolated": bool(sys.flags.isolated),
        "no_site": bool(sys.flags.no_site),
        "sys_path": list(sys.path),
    }
    failures: list[str] = []
    attempts: list[str] = []
    _guard_network(attempts)

    def fail(what: str) -> None:
        failures.append(what)

    if not (sys.flags.isolated and sys.flags.no_site):
        fail("the probe must run as `python -I -S -B`: isolated and without site-packages")

    # 1. the handler, as Lambda imports it
    module_name, _, attr = args.handler.rpartition(".")
    started = time.perf_counter()
    handler = None
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, attr)
        if not callable(handler):
            fail(f"{args.handler} is not callable")
    except BaseException:
        fail(f"import {args.handler}: {traceback.format_exc(limit=-3)}")
    report["handler_import_ms"] = round((time.perf_counter() - started) * 1000, 1)

    # 2. everything the handler's code can import later (deferred imports run on first invocation)
    roots = [code] + [p for p in layer_paths if p.is_dir()]
    closure = import_closure(module_name, args.own, roots)
    wanted: dict[str, set[str]] = {m: set(n) for m, n in closure.items()}
    for extra in args.import_:
        wanted.setdefault(extra, set())
    imported = []
    for name in sorted(wanted):
        try:
            mod = importlib.import_module(name)
        except BaseException:
            fail(f"import {name}: {traceback.format_exc(limit=-2)}")
            continue
        imported.append(name)
        for attr_name in sorted(wanted[name]):
            if hasattr(mod, attr_name):
                continue
            try:
                importlib.import_module(f"{name}.{attr_name}")
            except BaseException:
                fail(f"from {name} import {attr_name}: {traceback.format_exc(limit=-2)}")
    report["imported"] = imported

    # 3. Powertools Tracer: needs aws-xray-sdk in the layer. Built as in Lambda first (enabled when
    #    the environment looks like Lambda's: LAMBDA_TASK_ROOT set), which imports aws_xray_sdk and
    #    patches botocore and requests; then disabled, as tests and tools build it. (Tracer's
    #    settings are shared between instances, so the enabled one must come first.)
    if args.tracer:
        try:
            from aws_lambda_powertools import Tracer

            enabled = Tracer(service="packaging-probe")
            report["tracer_enabled"] = not enabled.disabled
            Tracer(service="packaging-probe", disabled=True)
            import aws_xray_sdk.core  # noqa: F401

            report["xray_sdk"] = sys.modules["aws_xray_sdk"].__file__
        except BaseException:
            fail(f"Powertools Tracer: {traceback.format_exc(limit=-3)}")

    # 4. one cheap invocation
    if args.event and handler is not None:
        try:
            event = json.loads(Path(args.event).read_text())
            response = handler(event, FakeContext(args.function_name))
            status = response.get("statusCode") if isinstance(response, dict) else None
            report["response_status"] = status
            report["response_body_chars"] = len(str(response.get("body") or "")) if status else 0
            if args.expect_status is not None and status != args.expect_status:
                fail(f"invocation with {args.event}: status {status}, expected {args.expect_status}")
        except BaseException:
            fail(f"invocation with {args.event}: {traceback.format_exc(limit=-4)}")

    # 5. where every loaded module came from: the artifacts, the runtime, or the standard library
    stdlib = {Path(os.path.abspath(sysconfig.get_paths()[k])) for k in ("stdlib", "platstdlib")}
    origins: dict[str, str] = {}
    kinds = [("function", [code]), ("layer", layers), ("runtime", runtime), ("stdlib", sorted(stdlib))]
    this_script = os.path.abspath(__file__)
    for name, mod in sorted(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if not file or os.path.abspath(file) == this_script:
            continue
        path = Path(os.path.abspath(file))
        kind = next((k for k, bases in kinds if any(b == path or b in path.parents for b in bases)), None)
        if kind is None:
            fail(f"module {name} was loaded from outside the artifacts, the runtime and the stdlib: {path}")
            kind = "elsewhere"
        top = name.split(".")[0]
        if kind != "stdlib" and top not in origins:
            origins[top] = kind
        if kind == "stdlib" and "site-packages" in path.parts:
            fail(f"module {name} was loaded from a site-packages directory: {path}")
    report["origins"] = origins
    for top in ("boto3", "botocore", "s3transfer"):
        mod = sys.modules.get(top)
        if mod is not None:
            report[f"{top}_version"] = getattr(mod, "__version__", "?")

    if attempts:
        fail(f"network use during the probe: {attempts}")
    report["failures"] = failures
    print(json.dumps(report, indent=1, sort_keys=True))
    return 1 if failures else 0


# -------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("digest", help="SHA-256 of the build inputs")
    p_sizes = sub.add_parser("sizes", help="artifact sizes of a `sam build` output folder")
    p_sizes.add_argument("build_dir", type=Path)
    p = sub.add_parser("probe", help="import a handler from built artifacts (run with python -I -S -B)")
    p.add_argument("--code", required=True, help="the built function folder (Lambda's /var/task)")
    p.add_argument("--layer", action="append", default=[], help="a built layer folder (holds python/)")
    p.add_argument("--runtime-site", action="append", default=[],
                   help="stand-in for the packages the Lambda runtime itself provides (boto3, botocore)")
    p.add_argument("--handler", default="app.lambda_handler")
    p.add_argument("--own", action="append", default=[], help="top-level package of our own code to follow")
    p.add_argument("--import", dest="import_", action="append", default=[], help="also import this module")
    p.add_argument("--tracer", action="store_true", help="build a Powertools Tracer")
    p.add_argument("--event", help="a JSON event to invoke the handler with")
    p.add_argument("--expect-status", type=int, help="the statusCode the invocation must answer")
    p.add_argument("--function-name", default="probe")
    args = parser.parse_args(argv)
    if args.command == "digest":
        print(digest())
        return 0
    if args.command == "sizes":
        return sizes(args.build_dir)
    return probe(args)


if __name__ == "__main__":
    sys.exit(main())
