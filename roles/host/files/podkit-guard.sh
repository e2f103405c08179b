#!/bin/sh
# Run podkit-guard on a host whose PID 1 is not systemd: a supervisor in the background starts
# the guard again whenever it exits (as Restart=always does under systemd). Used by the
# podkit.docker.host role; the tests start a guard scoped to their own record directory with it.
#
#   podkit-guard.sh start    leave a running supervisor alone; else start one
#   podkit-guard.sh stop     stop the supervisor and its guard
#   podkit-guard.sh status   exit 0 when the supervisor runs
#
# The last line printed is the outcome the role reads: "podkit-guard: unchanged" or
# "podkit-guard: changed".
set -eu

python=${PODKIT_GUARD_PYTHON:-python3}
pythonpath=${PODKIT_GUARD_PYTHONPATH:-/usr/local/lib/podkit-guard/podkit-guard.zip}
state_dir=${PODKIT_GUARD_STATE_DIR:-/var/lib/podkit}
pidfile=${PODKIT_GUARD_PIDFILE:-/run/podkit-guard.pid}
log=${PODKIT_GUARD_LOG:-/var/log/podkit-guard.log}
resync=${PODKIT_GUARD_RESYNC:-60}
docker_host=${PODKIT_GUARD_DOCKER_HOST:-unix:///var/run/docker.sock}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
supervisor() { cat "$pidfile" 2>/dev/null || true; }

supervise() {
    child=
    trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait; exit 0' TERM INT
    stopping=
    while [ -z "$stopping" ]; do
        PYTHONPATH=$pythonpath "$python" -m ansible_collections.podkit.docker.plugins.module_utils._guard \
            --docker-host "$docker_host" --state-dir "$state_dir" --resync "$resync" --log-file "$log" &
        child=$!
        wait "$child" || true
        [ -n "$stopping" ] && break
        echo "$(date '+%F %T') podkit-guard: the guard (pid $child) exited; starting it again in 1s" >>"$log"
        sleep 1
    done
}

case "${1:-start}" in
    start)
        if alive "$(supervisor)"; then
            echo "podkit-guard: the supervisor runs (pid $(supervisor))"
            echo "podkit-guard: unchanged"
            exit 0
        fi
        mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
        setsid nohup sh "$0" supervise </dev/null >>"$log" 2>&1 &
        echo $! >"$pidfile"
        echo "podkit-guard: started the supervisor (pid $!), log in $log"
        echo "podkit-guard: changed"
        ;;
    supervise)
        supervise
        ;;
    stop)
        pid=$(supervisor)
        if ! alive "$pid"; then
            rm -f "$pidfile"
            echo "podkit-guard: unchanged"
            exit 0
        fi
        kill -TERM "$pid"
        i=0
        while alive "$pid" && [ "$i" -lt 120 ]; do
            sleep 0.25
            i=$((i + 1))
        done
        rm -f "$pidfile"
        echo "podkit-guard: changed"
        ;;
    status)
        alive "$(supervisor)"
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
