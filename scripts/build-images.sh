#!/usr/bin/env bash
# Build the local images podkit's tests and demo use, with no registry:
#   podkit/pause   - images/pause/pause.c, compiled -static, FROM scratch
#   podkit/busybox - Debian's static busybox, FROM scratch
# Each image carries the hash of its sources in a label and is rebuilt only
# when that hash changes.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
pause_image=${PODKIT_PAUSE_IMAGE:-podkit/pause:latest}
busybox_image=${PODKIT_BUSYBOX_IMAGE:-podkit/busybox:latest}
busybox_bin=${PODKIT_BUSYBOX_BIN:-/bin/busybox}
export DOCKER_BUILDKIT=0

current_hash() {
    docker image inspect --format '{{ index .Config.Labels "io.podkit.source-hash" }}' "$1" 2>/dev/null || true
}

build() {  # image, context dir, source hash
    local image=$1 ctx=$2 hash=$3
    if [ "$(current_hash "$image")" = "$hash" ]; then
        echo "images: $image is up to date (sources $hash)"
        return
    fi
    echo "images: building $image (sources $hash)"
    local out
    if ! out=$(docker build --quiet --pull=false --label "io.podkit.source-hash=$hash" -t "$image" "$ctx" 2>&1); then
        echo "$out" >&2
        return 1
    fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# pause: hash of the C source and Dockerfile; the binary is compiled only when needed.
pause_hash=$(cat "$top/images/pause/pause.c" "$top/images/pause/Dockerfile" | sha256sum | cut -c1-16)
if [ "$(current_hash "$pause_image")" != "$pause_hash" ]; then
    cp "$top/images/pause/Dockerfile" "$work/"
    gcc -Os -Wall -Wextra -Werror -static -o "$work/pause" "$top/images/pause/pause.c"
    strip "$work/pause"
fi
build "$pause_image" "$work" "$pause_hash"

# busybox: hash of the binary and the Dockerfile.
busybox_hash=$(cat "$busybox_bin" "$top/images/busybox/Dockerfile" | sha256sum | cut -c1-16)
if [ "$(current_hash "$busybox_image")" != "$busybox_hash" ]; then
    ctx="$work/busybox"
    mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/rootfs/var/www"
    chmod 1777 "$ctx/rootfs/tmp"
    cp "$busybox_bin" "$ctx/rootfs/bin/busybox"
    for applet in $("$busybox_bin" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$ctx/rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
    cp "$top/images/busybox/Dockerfile" "$ctx/"
fi
build "$busybox_image" "${ctx:-$work}" "$busybox_hash"
