#!/usr/bin/env bash
# The Vagrant playground, end to end, the way README.md tells a person to use it:
# `make box`, `vagrant up --provider libvirt` (site.yml provisions the box), the article's pod
# answers inside it, a second `vagrant provision` changes nothing, `vagrant reload` brings the
# pod back whole through podkit-guard, `vagrant destroy -f` leaves nothing behind.
#
#   tests/vagrant/run.sh            install what it lacks, run the whole flow, clean up
#   tests/vagrant/run.sh --can-run  exit 0 when this machine can run it; otherwise print each
#                                   reason on a line of its own and exit 77
#
# Networking stays inside a network namespace this script makes (podkit-vagrant-<pid>): libvirtd
# and virtlogd run in it, so libvirt's bridge, its NAT rules and DHCP (dnsmasq) exist only there,
# and vagrant (its ssh, the ansible provisioner's ssh) runs in it too. The namespace has no link
# out: nothing the VM or vagrant sends reaches an address outside it. The box is provisioned
# offline (tests/vagrant/make-box.sh says how). The namespace, the daemons this script started,
# libvirt's domain, network, and the box's volume and pool are all gone when it ends.
#
# Exit status 77 means "this machine cannot run it", as tests/vm/run.sh --can-boot.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
packages=(vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base
    qemu-system-x86 qemu-utils iptables iproute2 fdisk openssh-client)
commands=(vagrant libvirtd virtlogd virsh dnsmasq qemu-system-x86_64 qemu-img iptables ip sfdisk ssh)
need_mem_mib=$((3 * 1024))
need_disk_mib=$((4 * 1024))
whole_timeout=${PODKIT_VAGRANT_WHOLE_TIMEOUT:-120}
pod=foo  # the article's pod (inventory/group_vars/podkit_hosts.yml)
cannot_run=77
start=$SECONDS
export PATH="$top/.venv/bin:$PATH:/usr/sbin:/sbin"

log() { printf 'vagrant-test: %s\n' "$*"; }
took() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
fail() { log "FAIL: $*" >&2; exit 1; }

missing_commands() {
    local c out=()
    for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || out+=("$c"); done
    echo "${out[*]}"
}

installable() {
    local policy
    policy=$(apt-cache policy "$1" 2>/dev/null) || return 1
    [[ $policy == *"Candidate: "[0-9]* ]]
}

why=()
can_run() {
    why=()
    [ "$(uname -m)" = x86_64 ] || why+=("not an x86_64 machine")
    [ "$(id -u)" = 0 ] || why+=("libvirtd and network namespaces need root")
    [ -x "$top/.venv/bin/ansible-playbook" ] || why+=("no $top/.venv (make venv)")
    if [ -n "$(missing_commands)" ]; then
        local p lacking=()
        for p in "${packages[@]}"; do installable "$p" || lacking+=("$p"); done
        if [ ${#lacking[@]} -gt 0 ]; then
            "$top/scripts/apt-get.sh" update -qq >/dev/null 2>&1 || true
            for p in "${lacking[@]}"; do
                installable "$p" || why+=("package $p is neither installed nor installable (apt-cache policy $p)")
            done
        fi
    fi
    local probe=podkit-vagrant-probe-$$
    if ip netns add "$probe" 2>/dev/null; then
        ip netns del "$probe"
    else
        why+=("cannot make a network namespace (ip netns add)")
    fi
    local reasons
    reasons=$("$here/make-box.sh" --can-run) || why+=("${reasons//$'\n'/; }")
    local mem free
    mem=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
    [ "${mem:-0}" -ge "$need_mem_mib" ] || why+=("only ${mem:-0} MiB of memory available ($need_mem_mib MiB needed)")
    free=$(df -P -BM /var/lib | awk 'NR == 2 { sub("M", "", $4); print $4 }')
    [ "${free:-0}" -ge "$need_disk_mib" ] || why+=("only ${free:-0} MiB free under /var/lib ($need_disk_mib MiB needed for libvirt's volumes)")
    [ ${#why[@]} -eq 0 ]
}

case "${1:-}" in
    --can-run)
        can_run || { printf '%s\n' "${why[@]}"; exit $cannot_run; }
        exit 0
        ;;
    "") ;;
    *) echo "usage: $0 [--can-run]" >&2; exit 2 ;;
esac
if ! can_run; then
    printf 'vagrant-test: cannot run here: %s\n' "${why[@]}" >&2
    exit $cannot_run
fi

if [ -n "$(missing_commands)" ]; then
    t0=$SECONDS
    log "installing ${packages[*]} (missing: $(missing_commands))"
    "$top/scripts/apt-get.sh" update -qq
    "$top/scripts/apt-get.sh" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    [ -z "$(missing_commands)" ] || fail "installed ${packages[*]}, yet $(missing_commands) still cannot be found"
    log "tools installed in $(took "$t0")"
fi

t0=$SECONDS
"$here/make-box.sh"
log "make box: $(took "$t0")"

ns=podkit-vagrant-$$
run_dir=$(mktemp -d /var/tmp/podkit-vagrant-run.XXXXXX)
state=$run_dir/libvirt
holder=
libvirtd_pid=
virtlogd_pid=
made_dirs=()
# Every command of the run that talks to libvirt or the VM: inside the namespace's network and the
# holder's mount namespace, where libvirt's directories are the run's own.
in_ns() { nsenter --target "$holder" --mount --net "$@"; }
export VAGRANT_CWD=$top VAGRANT_DOTFILE_PATH=$run_dir/dot-vagrant VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1
export PODKIT_VAGRANT_SERIAL_LOG=$run_dir/serial.log ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
export LIBVIRT_DEFAULT_URI=qemu:///system PODKIT_VAGRANT_LIBVIRT_DRIVER=${PODKIT_VAGRANT_LIBVIRT_DRIVER:-qemu}
vagrant_() { in_ns vagrant "$@"; }
virsh_() { in_ns virsh -q "$@"; }

stop_pid() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
}

# Everything the run made, whatever stage it stopped at; then proof that nothing is left.
cleanup() {
    local rc=$? left=()
    trap - EXIT
    set +e  # every step runs, whatever one of them says
    close_ssh
    if [ -n "$libvirtd_pid" ] && kill -0 "$libvirtd_pid" 2>/dev/null; then
        [ -d "$VAGRANT_DOTFILE_PATH" ] && { vagrant_ destroy -f >/dev/null 2>&1 || true; }
        local d n
        for d in $(virsh_ list --all --name 2>/dev/null); do virsh_ destroy "$d" >/dev/null 2>&1 || true; virsh_ undefine "$d" >/dev/null 2>&1 || true; done
        for n in $(virsh_ net-list --all --name 2>/dev/null); do virsh_ net-destroy "$n" >/dev/null 2>&1 || true; virsh_ net-undefine "$n" >/dev/null 2>&1 || true; done
        [ -z "$(virsh_ list --all --name 2>/dev/null)" ] || left+=("libvirt domains: $(virsh_ list --all --name | tr '\n' ' ')")
        [ -z "$(virsh_ net-list --all --name 2>/dev/null)" ] || left+=("libvirt networks: $(virsh_ net-list --all --name | tr '\n' ' ')")
    fi
    stop_pid "$libvirtd_pid"
    stop_pid "$virtlogd_pid"
    if [ -n "$holder" ]; then
        # Whatever still runs in the namespace was started by this run: named as left behind, then ended.
        local pid
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            [ "$pid" = "$holder" ] && continue
            left+=("process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) in $ns")
            stop_pid "$pid"
        done
        stop_pid "$holder"
    fi
    ip netns del "$ns" 2>/dev/null || true
    local netns_list d
    netns_list=$(ip netns list)
    [[ " $netns_list " != *" $ns "* ]] || left+=("network namespace $ns")
    for d in "${made_dirs[@]}"; do rmdir "$d" 2>/dev/null || left+=("$d (made empty for the run's mount, now not empty)"); done
    if [ $rc -ne 0 ] && [ -f "$run_dir/serial.log" ]; then
        echo "--- the VM's serial console (last 40 lines) ---" >&2
        tail -n 40 "$run_dir/serial.log" | tr -d '\r' >&2 || true
    fi
    if [ ${#left[@]} -gt 0 ]; then
        printf 'vagrant-test: FAIL: left behind: %s\n' "${left[@]}" >&2
        rc=1
    else
        log "nothing left: no libvirt domain or network, no namespace $ns, libvirtd and virtlogd stopped"
    fi
    [ -n "${PODKIT_VAGRANT_KEEP_RUN_DIR:-}" ] || rm -rf "$run_dir"
    log "the whole Vagrant test took $(took "$start") (wall time); exit $rc"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# libvirt's configuration and state (networks, the pool, the box's volume, logs, sockets) live in
# the run directory, mounted over libvirt's directories in a mount namespace of the run's own: the
# host keeps no trace, and a libvirtd the host may run is neither seen nor touched. qemu runs as
# root: the packages that make the libvirt-qemu user (libvirt-daemon-system) are not needed.
log "network namespace $ns, libvirt's directories from $state; virtlogd and libvirtd in them"
mkdir -p "$state"/{etc,lib,log/qemu,cache,run}
cp /etc/libvirt/libvirt.conf /etc/libvirt/libvirt-admin.conf "$state/etc/" 2>/dev/null || true
printf 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nremember_owner = 0\n' >"$state/etc/qemu.conf"
# libvirt resolves its built-in qemu user and group (libvirt-qemu) before it reads qemu.conf;
# libvirt-daemon-system would add them to the host, the run adds them to its own copies.
cp /etc/passwd "$state/passwd"
cp /etc/group "$state/group"
getent passwd libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$state/passwd"
getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$state/group"
binds=(/etc/libvirt:etc /var/lib/libvirt:lib /var/log/libvirt:log /var/cache/libvirt:cache /run/libvirt:run
    /etc/passwd:passwd /etc/group:group)
for b in "${binds[@]}"; do
    [ -e "${b%%:*}" ] || { mkdir -p "${b%%:*}"; made_dirs+=("${b%%:*}"); }
done
ip netns add "$ns"
mounts=
for b in "${binds[@]}"; do mounts+="mount --bind $state/${b#*:} ${b%%:*} && "; done
ip netns exec "$ns" unshare --mount --propagation private sh -c "ip link set lo up && ${mounts}exec sleep infinity" &
holder=$!
for _ in $(seq 40); do
    [ "$(readlink "/proc/$holder/ns/mnt" 2>/dev/null)" != "$(readlink /proc/self/ns/mnt)" ] &&
        [ "$(cat "/proc/$holder/comm" 2>/dev/null)" = sleep ] && break
    sleep 0.25
done
[ "$(cat "/proc/$holder/comm" 2>/dev/null)" = sleep ] || fail "the namespace holder did not start"
in_ns virtlogd --daemon --pid-file "$run_dir/virtlogd.pid"
in_ns libvirtd --daemon --pid-file "$run_dir/libvirtd.pid"
for _ in $(seq 60); do
    [ -s "$run_dir/libvirtd.pid" ] && in_ns virsh uri >/dev/null 2>&1 && break
    sleep 0.5
done
virtlogd_pid=$(cat "$run_dir/virtlogd.pid" 2>/dev/null) || true
libvirtd_pid=$(cat "$run_dir/libvirtd.pid" 2>/dev/null) || true
if [ -z "$libvirtd_pid" ] || ! in_ns virsh uri >/dev/null; then
    tail -n 20 "$state/log/libvirtd.log" >&2 || true
    fail "libvirtd did not answer"
fi

t0=$SECONDS
log "vagrant up --provider libvirt (boot, then site.yml)"
vagrant_ up --provider libvirt >"$run_dir/up.log" 2>&1 || { tail -n 80 "$run_dir/up.log" >&2; fail "vagrant up failed"; }
up_time=$(took "$t0")
log "vagrant up: $up_time"
grep -E '^docker-host +: ok=' "$run_dir/up.log" | sed 's/^/  first provision: /'
grep -qE '^docker-host +: ok=[0-9]+ +changed=[1-9][0-9]* +unreachable=0 +failed=0' "$run_dir/up.log" ||
    fail "the first provision did not run site.yml to a change without failure (see the recap above)"

vagrant_ ssh-config >"$run_dir/vagrant-ssh.conf"
# Ends the run's ssh master connection (each boot has its own).
close_ssh() {
    local socket
    for socket in "$run_dir"/cm-*; do
        [ -S "$socket" ] && in_ns ssh -o ControlPath="$socket" -O exit docker-host >/dev/null 2>&1
        rm -f "$socket"
    done
    return 0
}
in_vm() {
    in_ns ssh -F "$run_dir/vagrant-ssh.conf" -o ControlMaster=auto -o ControlPath="$run_dir/cm-%C" -o ControlPersist=120 \
        -o ConnectTimeout=20 docker-host "$@"
}

# The article's check: the sidecar reaches the app over the pod's own localhost.
page=$(in_vm "sudo docker exec ${pod}_sidecar wget -qO- http://127.0.0.1:80/")
[ "$page" = "hello from pod $pod" ] || fail "the pod's page read '$page'"
log "inside the box, ${pod}_sidecar -> localhost:80 answers: $page"
in_vm "sudo docker ps --format '{{.Names}} {{.Status}}' | sed 's/^/  docker ps: /'; stat -fc '  /sys/fs/cgroup: %T' /sys/fs/cgroup"

t0=$SECONDS
vagrant_ provision >"$run_dir/provision.log" 2>&1 || { tail -n 80 "$run_dir/provision.log" >&2; fail "vagrant provision failed"; }
provision_time=$(took "$t0")
recap=$(grep -E '^docker-host +: ok=' "$run_dir/provision.log") || fail "no PLAY RECAP in the second provision"
log "second vagrant provision ($provision_time): $recap"
[[ $recap =~ changed=0\ +unreachable=0\ +failed=0 ]] || {
    grep -B2 '^changed:' "$run_dir/provision.log" >&2 || true
    fail "the second provision changed something"
}

# Across a reboot: the guard, not Ansible (reload runs no provisioner), makes the pod whole.
# With the guard stopped (still enabled), the sidecar is removed first: Docker alone cannot
# bring it back at boot, only the guard can.
member_state() { in_vm "sudo docker inspect -f '{{.Name}} {{.Id}} {{.State.StartedAt}}' ${pod}_sandbox ${pod}_app"; }
before=$(member_state)
boot_before=$(in_vm cat /proc/sys/kernel/random/boot_id)
in_vm "systemctl is-enabled -q podkit-guard && sudo systemctl stop podkit-guard && sudo docker rm -f ${pod}_sidecar >/dev/null"
close_ssh  # its connection would not outlive the reboot
t0=$SECONDS
vagrant_ reload >"$run_dir/reload.log" 2>&1 || { tail -n 60 "$run_dir/reload.log" >&2; fail "vagrant reload failed"; }
reload_time=$(took "$t0")
vagrant_ ssh-config >"$run_dir/vagrant-ssh.conf"
boot_after=$(in_vm cat /proc/sys/kernel/random/boot_id)
[ "$boot_after" != "$boot_before" ] || fail "vagrant reload did not reboot the box"
whole_script="set -e; s=\$(sudo docker inspect -f '{{.State.Running}} {{.State.Pid}}' ${pod}_sandbox); set -- \$s; [ \"\$1\" = true ]; sp=\$2;
for m in app sidecar; do r=\$(sudo docker inspect -f '{{.State.Running}} {{.State.Pid}}' ${pod}_\$m); set -- \$r; [ \"\$1\" = true ];
for n in net ipc; do [ \"\$(sudo readlink /proc/\$2/ns/\$n)\" = \"\$(sudo readlink /proc/\$sp/ns/\$n)\" ]; done; done"
t0=$SECONDS
until in_vm "$whole_script" 2>/dev/null; do
    [ $((SECONDS - t0)) -lt "$whole_timeout" ] || {
        in_vm "sudo journalctl -b -u podkit-guard -u docker --no-pager | tail -40" >&2 || true
        fail "pod $pod not whole ${whole_timeout}s after the reloaded box answered"
    }
    sleep 2
done
log "vagrant reload ($reload_time): new boot, pod $pod whole $((SECONDS - t0))s after ssh answered"
after=$(member_state)
while read -r name id started; do
    read -r _ id2 started2 <<<"$(grep "^$name " <<<"$after")"
    [ "$id2" = "$id" ] || fail "$name is a new container after the reload ($id -> $id2): the pod was recreated, not restarted"
    [ "$started2" != "$started" ] || fail "$name was not restarted in the new boot (StartedAt $started)"
    log "  $name: same container ${id:0:12}, started $started -> $started2"
done <<<"$before"
[ "$(in_vm "sudo docker exec ${pod}_sidecar wget -qO- http://127.0.0.1:80/")" = "hello from pod $pod" ] ||
    fail "the pod does not answer after the reload"
in_vm "sudo journalctl -b -u podkit-guard --no-pager -o cat | tail -n 3 | sed 's/^/  guard log: /'" || true
in_vm "systemctl is-active podkit-guard" >/dev/null || fail "podkit-guard is not active after the reload"

close_ssh
t0=$SECONDS
vagrant_ destroy -f >"$run_dir/destroy.log" 2>&1 || { cat "$run_dir/destroy.log" >&2; fail "vagrant destroy failed"; }
log "vagrant destroy -f: $(took "$t0")"
[ -z "$(virsh_ list --all --name)" ] || fail "a libvirt domain is left after vagrant destroy: $(virsh_ list --all --name)"
log "PASS: up $up_time, provision again $provision_time (changed=0), reload $reload_time (pod whole by the guard)"
