#!/usr/bin/env bash
# Lay the collection's files (tracked, plus new files that are not ignored) out at
# <dest> = .../ansible_collections/podkit/docker, where ansible-test and
# ansible-playbook look for it. The copy is rebuilt whole, so deleted files go too.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest=$1
cd "$top"
rm -rf "$dest.new"
mkdir -p "$dest.new"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$dest.new"
rm -rf "$dest"
mv "$dest.new" "$dest"
# ansible-test lists the files to check with git; this copy sits inside the project's
# work tree under an ignored directory, so it gets a repository of its own.
git -C "$dest" init -q
git -C "$dest" add -A
