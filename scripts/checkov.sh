#!/usr/bin/env bash
# checkov, offline, from its own venv (.tools/checkov; created on first use), on template.yaml and
# on the same template after the SAM transform (so the generated roles, permissions and API stage
# are scanned too). Skipped checks and their reasons: .checkov.yaml.
#
# Environment: TEMPLATE (default template.yaml), CHECKOV_VENV (default .tools/checkov),
# PYTHON (the project venv's python, used for the offline SAM transform; default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPLATE=${TEMPLATE:-template.yaml}
CHECKOV_VENV=${CHECKOV_VENV:-.tools/checkov}
PYTHON=${PYTHON:-.venv/bin/python}
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Offline: no guideline download, no Prisma Cloud/Bridgecrew API, no version check.
export BC_SKIP_MAPPING=TRUE
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
export ANSI_COLORS_DISABLED=1

say() { printf 'checkov: %s\n' "$*" >&2; }

if [[ ! -x "$CHECKOV_VENV/bin/checkov" ]]; then
  say "installing checkov into $CHECKOV_VENV (first run only, under a minute)"
  python3 -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v 'is ignored' || true
  "$CHECKOV_VENV/bin/pip" install -q checkov 2>&1 | grep -v 'is ignored' || true
  [[ -x "$CHECKOV_VENV/bin/checkov" ]] || { say "could not install checkov into $CHECKOV_VENV"; exit 1; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$TEMPLATE" "$tmp/transformed.json" <<'PY'
import json, sys
from scripts.template_check import TemplateCheckError, transform_template
try:
    cfn = transform_template(sys.argv[1])
except TemplateCheckError as exc:
    sys.exit("checkov: the SAM transform failed:\n  " + "\n  ".join(exc.problems))
with open(sys.argv[2], "w") as fh:
    json.dump(cfn, fh, indent=1)
PY

status=0
for target in "$TEMPLATE" "$tmp/transformed.json"; do
  label=$target; [[ $target == "$tmp/transformed.json" ]] && label="$TEMPLATE (after the SAM transform)"
  say "scanning $label"
  "$CHECKOV_VENV/bin/checkov" --config-file .checkov.yaml -f "$target" --skip-download || status=1
done
[[ $status -eq 0 ]] && say "passed (skipped checks and reasons: .checkov.yaml)" || say "FAILED"
exit $status
