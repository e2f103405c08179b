#!/usr/bin/env bash
# The project's Python environment in .venv, pinned by requirements-dev.txt and
# constraints.txt; reinstalled only when those files change. PODKIT_VENV,
# PODKIT_REQUIREMENTS and PODKIT_CONSTRAINTS make another one the same way
# (scripts/setup-core-venvs.sh: one per older ansible-core).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=${PODKIT_VENV:-$top/.venv}
requirements=${PODKIT_REQUIREMENTS:-$top/requirements-dev.txt}
constraints=${PODKIT_CONSTRAINTS:-$top/constraints.txt}
python=${PODKIT_PYTHON:-python3}
stamp="$venv/.podkit-requirements"
want=$(cat "$top/requirements.txt" "$requirements" "$constraints" | sha256sum | cut -c1-16)

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "venv: $venv is up to date"
    exit 0
fi
echo "venv: installing into $venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" -c "$constraints"
echo "$want" >"$stamp"
