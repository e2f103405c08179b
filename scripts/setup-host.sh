#!/usr/bin/env bash
# Debian packages podkit's tests and demo need on this host, installed once.
set -euo pipefail

# docker-registry and apache2-utils (htpasswd): the private loopback registry of the image pull tests.
packages=(docker.io containerd cgroup-tools busybox-static gcc libc6-dev util-linux procps psmisc python3-venv git shellcheck
          docker-registry apache2-utils)
missing=()
for p in "${packages[@]}"; do
    # Captured whole, not piped into `grep -q`: under pipefail an early-exiting grep
    # makes dpkg-query die of SIGPIPE and the test fail although the package is there.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "host: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "$(dirname "$0")/apt-get.sh" update -qq
    "$(dirname "$0")/apt-get.sh" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The tests start their own registry (with authentication, on loopback); the package's service,
    # which systemd starts on install, is not wanted.
    if [ "$(cat /proc/1/comm)" = systemd ] && systemctl list-unit-files docker-registry.service >/dev/null 2>&1; then
        systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
    fi
else
    echo "host: Debian packages present"
fi
