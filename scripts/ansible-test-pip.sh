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
# A virtual environment ansible-test began and never finished (its run killed, or two runs making it at
# once) has no pyvenv.cfg; ansible-test would take it as made and fail in it ("No module named ...")
# on every later run. Removed, it is made again.
for venv in ~/.ansible/test/venv/*/*/*/; do
    [ -d "$venv" ] && [ ! -e "$venv/pyvenv.cfg" ] && { echo "ansible-test: removing the half-made $venv"; rm -rf "$venv"; }
done
exit 0
