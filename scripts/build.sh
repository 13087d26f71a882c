#!/usr/bin/env bash
# `make build`: the deployable artifacts, with `sam build`, from AWS SAM CLI in its own venv.
#
# * AWS SAM CLI is installed on first use into .tools/sam (never into the project's .venv: its pins
#   would fight the dev dependencies).
# * The functions run on python3.12 in Lambda. SAM's Python builder needs a python3.12 on PATH to
#   build for that runtime (it refuses another version). When pyenv has 3.12 we expose it next to
#   the default 3.11 with PYENV_VERSION=<3.11.x>:<3.12.x>; a plain python3.12 on PATH works as is.
# * Without any python3.12 the only faithful build is `sam build --use-container`, which needs
#   Docker. We don't fake it: the script explains and stops, unless ALLOW_RUNTIME_OVERRIDE=1, which
#   builds into a temporary copy of the template with the runtime rewritten to this machine's python3
#   (pure-Python packages are identical; compiled wheels are fetched for the target platform by
#   pip either way) - good enough to test packaging, not to deploy.
# * arm64 dependencies are fetched as manylinux aarch64 wheels by SAM's builder; no emulation needed.
#
# Environment: TEMPLATE (default template.yaml), BUILD_DIR (default .aws-sam/build), SAM_VENV
# (default .tools/sam), SAM_BUILD_ARGS (extra arguments for `sam build`).
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPLATE=${TEMPLATE:-template.yaml}
BUILD_DIR=${BUILD_DIR:-.aws-sam/build}
SAM_VENV=${SAM_VENV:-.tools/sam}
export SAM_CLI_TELEMETRY=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'build: %s\n' "$*" >&2; }

# --- AWS SAM CLI, in its own venv --------------------------------------------------------------
if [[ ! -x "$SAM_VENV/bin/sam" ]]; then
  say "installing AWS SAM CLI into $SAM_VENV (first run only, about a minute)"
  python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v 'is ignored' || true
  "$SAM_VENV/bin/pip" install -q aws-sam-cli 2>&1 | grep -v 'is ignored' || true
  [[ -x "$SAM_VENV/bin/sam" ]] || { say "could not install aws-sam-cli into $SAM_VENV"; exit 1; }
fi
SAM="$SAM_VENV/bin/sam"
say "$("$SAM" --version)"

# --- a python3.12 for the python3.12 runtime ---------------------------------------------------
runtime=$(sed -n 's/^ *Runtime: *\(python3\.[0-9]*\).*/\1/p' "$TEMPLATE" | head -1)
runtime=${runtime:-python3.12}
want=${runtime#python}   # e.g. 3.12
template_to_build=$TEMPLATE
tmp_template=""
cleanup() { [[ -n "$tmp_template" ]] && rm -f "$tmp_template"; return 0; }
trap cleanup EXIT

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
  say "building for $runtime with $(command -v "python$want") ($("python$want" --version 2>&1))"
elif [[ "${ALLOW_RUNTIME_OVERRIDE:-0}" == "1" ]]; then
  local_py=$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
  tmp_template=$(mktemp "${TEMPLATE%.yaml}.build-XXXXXX.yaml")
  sed -e "s/\b$runtime\b/$local_py/g" "$TEMPLATE" >"$tmp_template"
  template_to_build=$tmp_template
  say "WARNING: no $runtime on this machine; ALLOW_RUNTIME_OVERRIDE=1 builds with $local_py instead."
  say "         The artifacts test packaging only - do not deploy them (rebuild with $runtime or --use-container)."
else
  say "no $runtime here, and SAM's Python builder needs exactly that version to build for the $runtime runtime."
  say "Options: install it (e.g. 'pyenv install ${want}'), build in Docker with"
  say "  '$SAM build --use-container', or run ALLOW_RUNTIME_OVERRIDE=1 make build for a packaging-only build."
  exit 1
fi

# sam build needs every CodeUri folder to exist.
missing=$(sed -n 's/^ *CodeUri: *\(functions\/[^ ]*\).*/\1/p' "$TEMPLATE" | while read -r d; do [[ -f "$d/app.py" ]] || echo "$d"; done)
if [[ -n "$missing" ]]; then
  say "missing handler files (functions/<name>/app.py): $(echo "$missing" | tr '\n' ' ')"
  exit 1
fi

# --- build -------------------------------------------------------------------------------------
start=$(date +%s)
# --cached/--parallel keep rebuilds fast; the build dir is .aws-sam/ (git-ignored).
"$SAM" build --template-file "$template_to_build" --build-dir "$BUILD_DIR" --parallel --cached \
  ${SAM_BUILD_ARGS:-} 2>&1 | grep -v 'is ignored' || { say "sam build failed"; exit 1; }
[[ -f "$BUILD_DIR/template.yaml" ]] || { say "sam build produced no $BUILD_DIR/template.yaml"; exit 1; }
say "built in $(( $(date +%s) - start )) s into $BUILD_DIR"

# --- artifact sizes (unzipped; Lambda's limit is 250 MB for a function plus its layers) ---------
printf '\n%-28s %12s %10s\n' "artifact" "unzipped" "files"
total=0
for dir in "$BUILD_DIR"/*/; do
  name=$(basename "$dir")
  kb=$(du -sk "$dir" | cut -f1)
  files=$(find "$dir" -type f | wc -l)
  total=$(( total + kb ))
  awk -v n="$name" -v kb="$kb" -v f="$files" 'BEGIN { printf "%-28s %9.1f MB %10d\n", n, kb / 1024, f }'
done
awk -v kb="$total" 'BEGIN { printf "%-28s %9.1f MB\n", "total", kb / 1024 }'
if command -v zip >/dev/null 2>&1; then
  for dir in "$BUILD_DIR"/*/; do
    name=$(basename "$dir")
    zipped=$( (cd "$dir" && zip -qr -X - . | wc -c) )
    awk -v n="$name" -v b="$zipped" 'BEGIN { printf "%-28s %9.1f MB zipped\n", n, b / 1048576 }'
  done
fi
