#!/usr/bin/env bash
# apt-get for the project's scripts: one at a time, and waiting for dpkg's lock rather than failing.
# The VM stage runs beside the others (scripts/test.sh), so its tool install can meet the docs
# stage's; apt-get alone gives up at once when another holds the lock.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
exec flock -w 900 /run/lock/podkit-apt.lock apt-get -o DPkg::Lock::Timeout=600 "$@"
