#!/usr/bin/env bash
# Make sure a Docker engine answers on the local socket.
#
# Reuses an engine that already answers. Otherwise starts dockerd in the
# background (this host's PID 1 is not systemd, so there is no unit to start),
# after clearing what an engine killed by a previous run leaves behind: a pid
# file naming a dead process, and containerd's pid file and socket.
set -euo pipefail

sock=${PODKIT_DOCKER_SOCK:-/var/run/docker.sock}
log=${PODKIT_DOCKERD_LOG:-/var/log/podkit-dockerd.log}
wait_s=${PODKIT_DOCKERD_WAIT:-60}
proxy=${PODKIT_DOCKERD_PROXY:-http://127.0.0.1:9}

answers() { docker -H "unix://$sock" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if answers; then
    echo "dockerd: an engine already answers on $sock"
    exit 0
fi

if command -v systemctl >/dev/null 2>&1 && [ "$(cat /proc/1/comm)" = systemd ]; then
    systemctl start docker
else
    # A pid file is stale when no running dockerd carries its pid.
    for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
        if [ -f "$pidfile" ]; then
            pid=$(cat "$pidfile" 2>/dev/null || true)
            if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
                echo "dockerd: removing stale $pidfile"
                rm -f "$pidfile"
            fi
        fi
    done
    if pgrep -x dockerd >/dev/null; then
        echo "dockerd: a dockerd process exists but does not answer yet; waiting for it"
    else
        rm -f "$sock" /var/run/docker/containerd/containerd.sock
        echo "dockerd: starting in the background, log in $log"
        # No registry is reachable from this project's machines, and tests must never
        # send traffic off the host: any pull the engine attempts goes to a closed
        # port on loopback and fails at once.
        HTTP_PROXY=$proxy HTTPS_PROXY=$proxy NO_PROXY="" setsid nohup dockerd >>"$log" 2>&1 </dev/null &
    fi
fi

for _ in $(seq 1 $((wait_s * 4))); do
    if answers; then
        echo "dockerd: answering ($(docker -H "unix://$sock" info --format '{{.CgroupDriver}} driver, cgroup v{{.CgroupVersion}}'))"
        exit 0
    fi
    sleep 0.25
done
echo "dockerd: no answer on $sock after ${wait_s}s; last lines of $log:" >&2
tail -n 30 "$log" >&2 || true
exit 1
