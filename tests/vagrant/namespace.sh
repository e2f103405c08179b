# shellcheck shell=bash
# Sourced by tests/vm/run.sh: libvirt, and everything Vagrant does through it, inside a network
# namespace the run makes (podkit-vagrant-<pid>), so libvirt's bridge, its NAT rules, its DHCP
# (dnsmasq), the VM's network and every ssh of Vagrant and of its Ansible provisioner exist only
# there. The namespace has no link out: nothing the VM or Vagrant sends reaches an address
# outside it. The host reaches the VM only through a port on 127.0.0.1 forwarded into the
# namespace (ns_forward).
#
# libvirt's configuration and state (networks, the pool, the box's volume, logs, sockets) live
# in the run's directory, mounted over libvirt's directories in a mount namespace of the run's
# own: the host keeps no trace, and a libvirtd the host may run is neither seen nor touched.
# qemu runs as root: the packages that make the libvirt-qemu user (libvirt-daemon-system) are
# not needed.
#
#   ns_start RUN_DIR     make the namespace, start virtlogd and libvirtd in it
#   ns_vagrant ARGS...   vagrant in the namespace (VAGRANT_* of the run exported by ns_start)
#   ns_virsh ARGS...     virsh in the namespace
#   ns_forward PORT IP   127.0.0.1:PORT on the host to IP:22 in the namespace (ns_retarget IP moves it)
#   ns_stop              destroy what Vagrant and libvirt made, stop everything the run started,
#                        remove the namespace; returns 1, naming each, if anything was left behind
#
# The caller provides log().

ns_name=podkit-vagrant-$$
ns_holder=
ns_libvirtd_pid=
ns_virtlogd_pid=
ns_forward_pid=
ns_made_dirs=()
ns_run_dir=

# A command inside the namespace's network and the holder's mount namespace, where libvirt's
# directories are the run's own.
ns_exec() { nsenter --target "$ns_holder" --mount --net "$@"; }
ns_vagrant() { ns_exec vagrant "$@"; }
ns_virsh() { ns_exec virsh -q "$@"; }

ns_stop_pid() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
}

ns_start() {
    ns_run_dir=$1
    local state=$ns_run_dir/libvirt b
    log "network namespace $ns_name, libvirt's directories from $state; virtlogd and libvirtd in them"
    mkdir -p "$state"/{etc,lib,log/qemu,cache,run}
    cp /etc/libvirt/libvirt.conf /etc/libvirt/libvirt-admin.conf "$state/etc/" 2>/dev/null || true
    printf 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nremember_owner = 0\n' >"$state/etc/qemu.conf"
    # libvirt resolves its built-in qemu user and group (libvirt-qemu) before it reads qemu.conf;
    # libvirt-daemon-system would add them to the host, the run adds them to its own copies.
    cp /etc/passwd "$state/passwd"
    cp /etc/group "$state/group"
    getent passwd libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$state/passwd"
    getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$state/group"
    local binds=(/etc/libvirt:etc /var/lib/libvirt:lib /var/log/libvirt:log /var/cache/libvirt:cache /run/libvirt:run
        /etc/passwd:passwd /etc/group:group)
    for b in "${binds[@]}"; do
        [ -e "${b%%:*}" ] || { mkdir -p "${b%%:*}"; ns_made_dirs+=("${b%%:*}"); }
    done
    ip netns add "$ns_name"
    local mounts=
    for b in "${binds[@]}"; do mounts+="mount --bind $state/${b#*:} ${b%%:*} && "; done
    ip netns exec "$ns_name" unshare --mount --propagation private sh -c "ip link set lo up && ${mounts}exec sleep infinity" &
    ns_holder=$!
    for _ in $(seq 40); do
        [ "$(readlink "/proc/$ns_holder/ns/mnt" 2>/dev/null)" != "$(readlink /proc/self/ns/mnt)" ] &&
            [ "$(cat "/proc/$ns_holder/comm" 2>/dev/null)" = sleep ] && break
        sleep 0.25
    done
    [ "$(cat "/proc/$ns_holder/comm" 2>/dev/null)" = sleep ] || { log "the namespace holder did not start" >&2; return 1; }
    ns_exec virtlogd --daemon --pid-file "$ns_run_dir/virtlogd.pid"
    ns_exec libvirtd --daemon --pid-file "$ns_run_dir/libvirtd.pid"
    for _ in $(seq 60); do
        [ -s "$ns_run_dir/libvirtd.pid" ] && ns_exec virsh uri >/dev/null 2>&1 && break
        sleep 0.5
    done
    ns_virtlogd_pid=$(cat "$ns_run_dir/virtlogd.pid" 2>/dev/null) || true
    ns_libvirtd_pid=$(cat "$ns_run_dir/libvirtd.pid" 2>/dev/null) || true
    if [ -z "$ns_libvirtd_pid" ] || ! ns_exec virsh uri >/dev/null; then
        tail -n 20 "$state/log/libvirtd.log" >&2 || true
        log "libvirtd did not answer" >&2
        return 1
    fi
    export VAGRANT_DOTFILE_PATH=$ns_run_dir/dot-vagrant VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1
    export LIBVIRT_DEFAULT_URI=qemu:///system
}

# Each connection to 127.0.0.1:PORT gets a socat of its own inside the namespace, connected to the
# VM's sshd at the address in RUN_DIR/vm-address (ns_retarget changes it, e.g. after a reboot that
# brought another DHCP lease). The listener has a process group of its own; ns_stop ends it whole.
ns_forward() {
    local port=$1
    ns_retarget "$2"
    cat >"$ns_run_dir/connect" <<EOF
#!/bin/sh
exec nsenter --net=/run/netns/$ns_name socat STDIO "TCP:\$(cat '$ns_run_dir/vm-address'):22,connect-timeout=10"
EOF
    chmod 0755 "$ns_run_dir/connect"
    # Its complaints (a connection the VM's shutdown broke) go to the run's forward.log, not the test's output.
    setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "EXEC:$ns_run_dir/connect" 2>>"$ns_run_dir/forward.log" &
    ns_forward_pid=$!
    for _ in $(seq 40); do
        grep -qi ":$(printf '%04X' "$port") 00000000:0000 0A" /proc/net/tcp 2>/dev/null && return 0
        sleep 0.25
    done
    log "the forward on 127.0.0.1:$port did not start listening" >&2
    return 1
}
ns_retarget() { echo "$1" >"$ns_run_dir/vm-address"; }

ns_stop() {
    local left=() d n pid
    if [ -n "$ns_forward_pid" ]; then
        # The listener and every connection's socat, inside the namespace or not: one process group.
        kill -- "-$ns_forward_pid" 2>/dev/null || true
        for _ in $(seq 40); do pgrep -g "$ns_forward_pid" >/dev/null || break; sleep 0.25; done
        pkill -9 -g "$ns_forward_pid" 2>/dev/null || true
    fi
    if [ -n "$ns_libvirtd_pid" ] && kill -0 "$ns_libvirtd_pid" 2>/dev/null; then
        [ -d "${VAGRANT_DOTFILE_PATH:-/nonexistent}" ] && { ns_vagrant destroy -f >/dev/null 2>&1 || true; }
        for d in $(ns_virsh list --all --name 2>/dev/null); do ns_virsh destroy "$d" >/dev/null 2>&1 || true; ns_virsh undefine "$d" >/dev/null 2>&1 || true; done
        for n in $(ns_virsh net-list --all --name 2>/dev/null); do ns_virsh net-destroy "$n" >/dev/null 2>&1 || true; ns_virsh net-undefine "$n" >/dev/null 2>&1 || true; done
        [ -z "$(ns_virsh list --all --name 2>/dev/null)" ] || left+=("libvirt domains: $(ns_virsh list --all --name | tr '\n' ' ')")
        [ -z "$(ns_virsh net-list --all --name 2>/dev/null)" ] || left+=("libvirt networks: $(ns_virsh net-list --all --name | tr '\n' ' ')")
    fi
    ns_stop_pid "$ns_libvirtd_pid"
    ns_stop_pid "$ns_virtlogd_pid"
    if [ -n "$ns_holder" ]; then
        # Whatever still runs in the namespace was started by this run: named as left behind, then ended.
        for pid in $(ip netns pids "$ns_name" 2>/dev/null); do
            [ "$pid" = "$ns_holder" ] && continue
            left+=("process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) in $ns_name")
            ns_stop_pid "$pid"
        done
        ns_stop_pid "$ns_holder"
    fi
    ip netns del "$ns_name" 2>/dev/null || true
    [[ " $(ip netns list 2>/dev/null | cut -d' ' -f1 | tr '\n' ' ') " != *" $ns_name "* ]] || left+=("network namespace $ns_name")
    for d in "${ns_made_dirs[@]}"; do rmdir "$d" 2>/dev/null || left+=("$d (made empty for the run's mount, now not empty)"); done
    if [ ${#left[@]} -gt 0 ]; then
        printf 'left behind: %s\n' "${left[@]}" >&2
        return 1
    fi
    log "nothing left: no libvirt domain or network, no namespace $ns_name, libvirtd and virtlogd stopped"
}
