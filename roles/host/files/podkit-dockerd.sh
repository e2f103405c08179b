#!/bin/sh
# Run the Docker engine on a host whose PID 1 is not systemd (containers, CI
# runners, minimal images): there is no unit to start, so dockerd is started in
# the background and waited for. Used by the podkit.docker.host role.
#
#   podkit-dockerd.sh start     leave an engine that answers alone; else start one
#   podkit-dockerd.sh restart   stop the engine this host runs, then start it again
#
# The last line printed is the outcome the role reads: "podkit-dockerd: unchanged"
# or "podkit-dockerd: changed". dockerd inherits this script's environment (the
# role passes podkit_host_dockerd_environment, e.g. a proxy).
set -eu

sock=${PODKIT_DOCKER_SOCK:-/var/run/docker.sock}
log=${PODKIT_DOCKERD_LOG:-/var/log/podkit-dockerd.log}
wait_s=${PODKIT_DOCKERD_WAIT:-60}
pidfile=${PODKIT_DOCKERD_PIDFILE:-/var/run/docker.pid}
containerd_dir=${PODKIT_CONTAINERD_DIR:-/var/run/docker/containerd}

answers() { docker -H "unix://$sock" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

wait_for_answer() {
    i=0
    while [ "$i" -lt $((wait_s * 4)) ]; do
        answers && return 0
        sleep 0.25
        i=$((i + 1))
    done
    echo "podkit-dockerd: no answer on $sock after ${wait_s}s; last lines of $log:" >&2
    tail -n 30 "$log" >&2 || true
    return 1
}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop_engine() {
    pid=$(cat "$pidfile" 2>/dev/null || true)
    # The oldest dockerd, asked of pgrep itself: no pipe into head that could cut it short.
    alive "$pid" || pid=$(pgrep -o -x dockerd || true)
    if ! alive "$pid"; then
        return 0
    fi
    echo "podkit-dockerd: stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    # dockerd stops its containers first (10 s each at most), so give it time.
    i=0
    while alive "$pid" && [ "$i" -lt $((wait_s * 4)) ]; do
        sleep 0.25
        i=$((i + 1))
    done
    if alive "$pid"; then
        echo "podkit-dockerd: dockerd (pid $pid) did not stop within ${wait_s}s" >&2
        exit 1
    fi
}

start_engine() {
    # What an engine killed earlier leaves behind would stop a new one from starting:
    # a pid file naming a dead process, containerd's pid file and socket.
    for file in "$pidfile" "$containerd_dir/containerd.pid"; do
        if [ -f "$file" ] && ! alive "$(cat "$file" 2>/dev/null || true)"; then
            echo "podkit-dockerd: removing stale $file"
            rm -f "$file"
        fi
    done
    if pgrep -x dockerd >/dev/null; then
        echo "podkit-dockerd: a dockerd process exists but does not answer yet; waiting for it"
    else
        rm -f "$sock" "$containerd_dir/containerd.sock"
        echo "podkit-dockerd: starting dockerd in the background, log in $log"
        setsid nohup dockerd >>"$log" 2>&1 </dev/null &
    fi
    wait_for_answer
}

case "${1:-start}" in
    start)
        if answers; then
            echo "podkit-dockerd: an engine already answers on $sock"
            echo "podkit-dockerd: unchanged"
            exit 0
        fi
        start_engine
        ;;
    restart)
        stop_engine
        start_engine
        ;;
    *)
        echo "usage: $0 start|restart" >&2
        exit 2
        ;;
esac
echo "podkit-dockerd: engine answers ($(docker -H "unix://$sock" version --format '{{.Server.Version}}'))"
echo "podkit-dockerd: changed"
