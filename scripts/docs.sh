#!/usr/bin/env bash
# The collection's docs site, as Galaxy users read it, built offline; `make docs` and the docs stage
# of scripts/test.sh run it.
#
# 1. antsibull-docs lint-collection-docs: docs/docsite/links.yml, extra-docs.yml, the guides' references
#    to plugins and options, and every module's and role's documentation.
# 2. antsibull-docs sphinx-init writes a fresh Sphinx project in build/docs/site (the collection's index
#    is the site's front page: --squash-hierarchy); its conf.py gets the offline block below; its
#    build.sh runs antsibull-docs collection and sphinx-build -W (a warning fails the build).
# 3. tests/docs/: the front page opened in headless Chromium (installed here when missing): its DOM
#    lists every module, and its screenshot, build/docs/index.png, is a real rendering of the page.
#
# Nothing is fetched: no intersphinx inventory (the mapping is emptied) and no collection from Galaxy
# (--use-current reads this tree through build/collections).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.venv/bin"
out="$top/build/docs"
site="$out/site"
reports=${PODKIT_REPORTS:-}
export PATH="$bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$top/build/collections"
collection="$ANSIBLE_COLLECTIONS_PATH/ansible_collections/podkit/docker"

log() { echo "docs: [${SECONDS}s] $*"; }

[ -d "$collection" ] || { echo "docs: $collection is missing; run make collection (make docs does)" >&2; exit 1; }

if ! command -v chromium >/dev/null; then
    log "installing chromium (Debian's package) for the page's screenshot"
    export DEBIAN_FRONTEND=noninteractive
    "$top/scripts/apt-get.sh" update -qq
    "$top/scripts/apt-get.sh" install -y -qq --no-install-recommends chromium >/dev/null
fi

log "antsibull-docs lint-collection-docs"
antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs "$collection"

rm -rf "$out"
mkdir -p "$site"
chmod 0700 "$site"  # antsibull-docs writes only into a directory no one else may write
antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error \
    --project podkit.docker --copyright "podkit.docker contributors" --title "podkit.docker" \
    --dest-dir "$site" podkit.docker >/dev/null

cat >>"$site/conf.py" <<'EOF'

# --- podkit.docker: an offline build (appended by scripts/docs.sh) ---
# No inventory is fetched: CI reaches no documentation site.
intersphinx_mapping = {}
# The references that only an inventory from the network resolves, each left as plain text. Any other
# unresolved reference still fails the build (nitpicky, -W).
nitpick_ignore = [
    # Every module page's "Return Values" links to the values all Ansible modules return, a page of
    # Ansible's own docs (the ansible_devel inventory).
    ("std:ref", "common_return_values"),
    # The environment variables page links to Ansible's configuration settings, also in Ansible's docs.
    ("std:ref", "ansible_configuration_settings"),
]
EOF

# A collection never released (changelogs/changelog.yaml without a release) gets a changelog page of one
# sentence without a title, which Sphinx's toctree warns about; only then is that warning let pass.
if ! "$bin/python" -c 'import sys, yaml; sys.exit(not yaml.safe_load(open(sys.argv[1])).get("releases"))' \
        "$top/changelogs/changelog.yaml"; then
    log "changelogs/changelog.yaml has no release yet: the site's changelog page says it is empty"
    cat >>"$site/conf.py" <<'EOF'
# No release in changelogs/changelog.yaml yet: the changelog page has no title (scripts/docs.sh).
suppress_warnings = ["toc.no_title"]
EOF
fi

log "building the site in $site"
if ! "$site/build.sh" >"$out/build.log" 2>&1; then
    cat "$out/build.log"
    echo "docs: the site's build failed (log: $out/build.log)" >&2
    exit 1
fi
# An inventory load would mean the offline block above did not apply.
if grep -q "loading intersphinx inventory" "$out/build.log"; then
    echo "docs: sphinx tried to load an intersphinx inventory from the network; see $out/build.log" >&2
    exit 1
fi
grep -E "^build (succeeded|finished)" "$out/build.log" || true
log "site: $site/build/html/index.html"

junit=()
[ -z "$reports" ] || junit=(--junitxml "$reports/docs.xml")
"$bin/pytest" -q "$top/tests/docs" "${junit[@]}"
log "screenshot of the front page: $out/index.png"
