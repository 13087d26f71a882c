#!/usr/bin/env bash
# `make build`: the deployable artifacts, with `sam build`, from AWS SAM CLI in its own venv; then
# their sizes (each function folder and layer, unzipped and zipped).
#
# Usage: scripts/build.sh [--if-stale] [--host-arch]
#   --if-stale   do nothing when the build inputs (template, samconfig, functions/, layers/, this
#                script) are unchanged since the last successful build (a SHA-256 of them is kept
#                beside the build, e.g. .aws-sam/build.sources.sha256). `make test` uses it; `make build`
#                always builds.
#   --host-arch  also build the same template for this machine's architecture, into
#                .aws-sam/host-<arch>/build, when the template targets another one (arm64 here, on
#                an x86_64 machine). The packaging test imports the handlers from that copy: compiled
#                wheels for arm64 cannot be loaded on x86_64. NEVER deploy it. The test also checks
#                that it holds exactly the same distributions as the deployable build.
#
# * AWS SAM CLI is installed on first use into .tools/sam (never into the project's .venv: its pins
#   would fight the dev dependencies).
# * The functions run on python3.12 in Lambda. SAM's Python builder needs a python3.12 on PATH to
#   build for that runtime (it refuses another version). When pyenv has 3.12 we expose it next to
#   the default 3.11 with PYENV_VERSION=<3.11.x>:<3.12.x>; a plain python3.12 on PATH works as is.
# * Without any python3.12 the only faithful build is `sam build --use-container`, which needs
#   Docker. We don't fake it: the script explains and stops, unless ALLOW_RUNTIME_OVERRIDE=1, which
#   builds from a copy of the template with the runtime rewritten to this machine's python3 - good
#   enough to look at, not to deploy (and the packaging test refuses it: it needs python3.12).
# * arm64 dependencies are fetched as manylinux aarch64 wheels by SAM's builder; no emulation needed.
#
# Environment: TEMPLATE (default template.yaml), BUILD_DIR (default .aws-sam/build), SAM_VENV
# (default .tools/sam), SAM_BUILD_ARGS (extra arguments for `sam build`).
set -euo pipefail
cd "$(dirname "$0")/.."

IF_STALE=0
HOST_ARCH=0
for arg in "$@"; do
  case "$arg" in
    --if-stale) IF_STALE=1 ;;
    --host-arch) HOST_ARCH=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) printf 'build: unknown argument %s (see --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

TEMPLATE=${TEMPLATE:-template.yaml}
BUILD_DIR=${BUILD_DIR:-.aws-sam/build}
SAM_VENV=${SAM_VENV:-.tools/sam}
export SAM_CLI_TELEMETRY=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'build: %s\n' "$*" >&2; }

# Build directory -> the file holding the digest of the inputs it was built from.
stamp_of() { printf '%s.sources.sha256' "$1"; }

case "$(uname -m)" in
  x86_64|amd64) host_arch=x86_64 ;;
  aarch64|arm64) host_arch=arm64 ;;
  *) host_arch=$(uname -m) ;;
esac
template_arch=$(sed -n 's/^ *\(Architectures: *\[ *\|BuildArchitecture: *\)\(arm64\|x86_64\).*/\2/p' "$TEMPLATE" | head -1)
template_arch=${template_arch:-x86_64}
HOST_BUILD_DIR=.aws-sam/host-$host_arch/build
need_host_build=0
[[ $HOST_ARCH == 1 && $template_arch != "$host_arch" ]] && need_host_build=1

# --- up to date? ---------------------------------------------------------------------------------
current_digest=""
up_to_date() {  # build dir
  [[ -f "$1/template.yaml" && -f "$(stamp_of "$1")" ]] && [[ "$(cat "$(stamp_of "$1")")" == "$current_digest" ]]
}
if [[ $IF_STALE == 1 ]]; then
  current_digest=$(python3 scripts/check_artifacts.py digest)
  if up_to_date "$BUILD_DIR" && { [[ $need_host_build == 0 ]] || up_to_date "$HOST_BUILD_DIR"; }; then
    say "artifacts up to date in $BUILD_DIR$([[ $need_host_build == 1 ]] && echo " and $HOST_BUILD_DIR") (inputs unchanged since the last build)"
    exit 0
  fi
fi

# --- a python3.12 for the python3.12 runtime ---------------------------------------------------
runtime=$(sed -n 's/^ *Runtime: *\(python3\.[0-9]*\).*/\1/p' "$TEMPLATE" | head -1)
runtime=${runtime:-python3.12}
want=${runtime#python}   # e.g. 3.12
runtime_override=""

have_python() { command -v "python$want" >/dev/null 2>&1 && "python$want" -c 'import sys' >/dev/null 2>&1; }

if ! have_python && command -v pyenv >/dev/null 2>&1; then
  # Newest installed patch release of the wanted minor, plus the current default (for everything else).
  target=$(pyenv versions --bare 2>/dev/null | grep -E "^${want//./\\.}\.[0-9]+$" | sort -V | tail -1 || true)
  current=$(pyenv version-name 2>/dev/null | cut -d: -f1 || true)
  if [[ -n "$target" ]]; then
    export PYENV_VERSION="${current:+$current:}$target"
    say "using pyenv's Python $target for $runtime (PYENV_VERSION=$PYENV_VERSION)"
  fi
fi

if have_python; then
  say "building for $runtime ($template_arch) with $(command -v "python$want") ($("python$want" --version 2>&1))"
elif [[ "${ALLOW_RUNTIME_OVERRIDE:-0}" == "1" ]]; then
  runtime_override=$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
  say "WARNING: no $runtime on this machine; ALLOW_RUNTIME_OVERRIDE=1 builds with $runtime_override instead."
  say "         The artifacts are for looking at only - do not deploy them (rebuild with $runtime or --use-container)."
else
  say "no $runtime here, and SAM's Python builder needs exactly that version to build for the $runtime runtime."
  say "Options: install it (e.g. 'pyenv install ${want}'), build in Docker with"
  say "  'sam build --use-container', or run ALLOW_RUNTIME_OVERRIDE=1 make build to look at the artifacts."
  exit 1
fi

# --- AWS SAM CLI, in its own venv --------------------------------------------------------------
if [[ ! -x "$SAM_VENV/bin/sam" ]]; then
  say "installing AWS SAM CLI into $SAM_VENV (first run only, about a minute)"
  python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v 'is ignored' || true
  "$SAM_VENV/bin/pip" install -q aws-sam-cli 2>&1 | grep -v 'is ignored' || true
  [[ -x "$SAM_VENV/bin/sam" ]] || { say "could not install aws-sam-cli into $SAM_VENV"; exit 1; }
fi
SAM="$(cd "$SAM_VENV" && pwd)/bin/sam"
say "$("$SAM" --version)"

# sam build needs every CodeUri folder to exist.
missing=$(sed -n 's/^ *CodeUri: *\(functions\/[^ ]*\).*/\1/p' "$TEMPLATE" | while read -r d; do [[ -f "$d/app.py" ]] || echo "$d"; done)
if [[ -n "$missing" ]]; then
  say "missing handler files (functions/<name>/app.py): $(echo "$missing" | tr '\n' ' ')"
  exit 1
fi

# --- build -------------------------------------------------------------------------------------
[[ -n "$current_digest" ]] || current_digest=$(python3 scripts/check_artifacts.py digest)

# sam_build <build dir> <cache dir> <sed expression or empty>: a template rewritten by the sed
# expression is written next to the build (relative source paths resolve from --base-dir), and
# sam runs from the build's parent folder: SAM keeps downloaded dependencies in ./.aws-sam/deps and
# deletes the ones its own build graph does not know, so two builds sharing a working directory
# would throw away each other's dependencies and download them again every time.
sam_build() {
  local build_dir=$1 cache_dir=$2 rewrite=$3 template=$TEMPLATE start run_dir=$PWD root=$PWD
  mkdir -p "$(dirname "$build_dir")"
  if [[ -n "$rewrite" ]]; then
    template="$(dirname "$build_dir")/template.source.yaml"
    sed -e "$rewrite" "$TEMPLATE" >"$template"
    run_dir="$(cd "$(dirname "$build_dir")" && pwd)"
  fi
  [[ $template == /* ]] || template="$root/$template"
  [[ $build_dir == /* ]] || build_dir="$root/$build_dir"
  [[ $cache_dir == /* ]] || cache_dir="$root/$cache_dir"
  rm -f "$(stamp_of "$build_dir")"
  start=$(date +%s)
  # --cached/--parallel keep rebuilds fast; everything lands under .aws-sam/ (git-ignored).
  (cd "$run_dir" && "$SAM" build --template-file "$template" --base-dir "$root" \
    --build-dir "$build_dir" --cache-dir "$cache_dir" --parallel --cached ${SAM_BUILD_ARGS:-}) 2>&1 \
    | grep -v -e 'is ignored' -e '^\[\*\]' -e '^Commands you can use next' -e '^=====' \
    || { say "sam build failed"; exit 1; }
  [[ -f "$build_dir/template.yaml" ]] || { say "sam build produced no $build_dir/template.yaml"; exit 1; }
  say "built in $(( $(date +%s) - start )) s into ${build_dir#"$root"/}"
  printf '%s\n' "$current_digest" >"$(stamp_of "$build_dir")"
}

deploy_rewrite=""
[[ -n "$runtime_override" ]] && deploy_rewrite="s/\\b$runtime\\b/$runtime_override/g"
if [[ $IF_STALE == 0 ]] || ! up_to_date "$BUILD_DIR"; then
  sam_build "$BUILD_DIR" "$(dirname "$BUILD_DIR")/cache" "$deploy_rewrite"
  if [[ -n "$runtime_override" ]]; then
    rm -f "$(stamp_of "$BUILD_DIR")"   # never "up to date" for the packaging test
  fi
  # Artifact sizes: each function folder and layer, unzipped and zipped (as `sam deploy` zips them).
  "$SAM_VENV/bin/python" scripts/check_artifacts.py sizes "$BUILD_DIR"
fi

if [[ $need_host_build == 1 ]] && { [[ $IF_STALE == 0 ]] || ! up_to_date "$HOST_BUILD_DIR"; }; then
  say "packaging-check copy for this machine ($host_arch; the deployable build is $template_arch): $HOST_BUILD_DIR - never deploy it"
  sam_build "$HOST_BUILD_DIR" ".aws-sam/host-$host_arch/cache" \
    "s/\\b$template_arch\\b/$host_arch/g${deploy_rewrite:+;$deploy_rewrite}"
fi
