#!/usr/bin/env bash
# The main job on localhost: playbooks/site.yml makes this machine a pod host
# (podkit.docker.host) and deploys the article's pod `foo` from the inventory
# (podkit.docker.pods), then prints its tree as the kernel sees it. `make demo`
# runs `make setup` first; running it again changes nothing.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export ANSIBLE_COLLECTIONS_PATH="$top/build/collections"
export ANSIBLE_ROLES_PATH="$top/roles"
# Multi-line strings (the tree) print as blocks, not as one escaped line.
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml
export ANSIBLE_LOCALHOST_WARNING=False
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}

"$top/.venv/bin/ansible-playbook" -i "$top/inventory" "$top/playbooks/site.yml" "$@"

echo
echo "demo: the app answers its sidecar on the pod's localhost:"
# httpd may still be binding its port right after a (re)start.
for _ in 1 2 3 4 5 6 7 8 9 10; do
    docker exec foo_sidecar wget -qO- http://localhost:80/ && exit 0
    sleep 0.5
done
exit 1
