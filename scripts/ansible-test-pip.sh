#!/usr/bin/env bash
# ansible-test bootstraps pip in the virtual environments it makes with a script it downloads
# from its own file server, which this machine cannot reach; scripts/ansible-test-get-pip.py
# stands in for it. Put it where the ansible-test of <python> (a venv's python) looks for the
# pip version it pins (each ansible-core pins its own).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
python=$1
version=$("$python" - <<'PY'
import inspect, re
import ansible_test._internal.python_requirements as requirements
print(re.search(r"pip=.([0-9.]+).", inspect.getsource(requirements)).group(1))
PY
)
mkdir -p ~/.ansible/test/cache
cp "$top/scripts/ansible-test-get-pip.py" ~/.ansible/test/cache/"get_pip_${version//./_}.py"
