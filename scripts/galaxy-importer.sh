#!/usr/bin/env bash
# Galaxy's importer (galaxy-importer, pinned in requirements-dev.txt) on the collection tarball, as
# Galaxy and Automation Hub run it when the collection is published, with no Galaxy server:
#
#   scripts/galaxy-importer.sh              build the tarball into build/importer/, then import it
#   scripts/galaxy-importer.sh TARBALL      import TARBALL
#
# Settings: tests/galaxy-importer.cfg (ansible-test off, ansible-lint on, offline). Fails on an
# import error and on any WARNING or ERROR line the importer prints: galaxy-importer logs each
# ansible-lint finding as a warning and still exits 0.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.venv/bin"
export PATH="$bin:$PATH"

work="$top/build/importer"
rm -rf "$work" && mkdir -p "$work"
if [ $# -ge 1 ]; then
    tarball=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
    "$bin/ansible-galaxy" collection build --force --output-path "$work" "$top" >/dev/null
    tarball=$(ls "$work"/podkit-docker-*.tar.gz)
fi

# The importer writes importer_result.json into its working directory and ansible-lint's cache under
# ansible_local_tmp; ansible-lint installs the collection it lints under ANSIBLE_HOME (default
# ~/.ansible, shared by everything on the machine): all of it stays in build/importer. The
# checkout's collections path must not leak in: the importer lints the collection it extracted.
cd "$work"
log="$work/importer.log"
rc=0
env -u ANSIBLE_COLLECTIONS_PATH -u ANSIBLE_ROLES_PATH \
    GALAXY_IMPORTER_CONFIG="$top/tests/galaxy-importer.cfg" \
    GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="$work/tmp" \
    GALAXY_IMPORTER_TMP_ROOT_DIR="$work" \
    ANSIBLE_HOME="$work/ansible-home" \
    "$bin/python" -m galaxy_importer.main "$tarball" >"$log" 2>&1 || rc=$?
cat "$log"

problems=$(grep -E '^(WARNING|ERROR|CRITICAL)[: ]|Traceback' "$log" || true)
if [ $rc -ne 0 ] || ! grep -q '^Importer processing completed successfully' "$log"; then
    echo "galaxy-importer: the import of $(basename "$tarball") failed (exit $rc)" >&2
    exit 1
fi
if [ -n "$problems" ]; then
    echo "galaxy-importer: $(wc -l <<<"$problems") warning(s) or error(s) on $(basename "$tarball"):" >&2
    echo "$problems" >&2
    exit 1
fi
echo "galaxy-importer: $(basename "$tarball") imports with no error and no lint finding"
