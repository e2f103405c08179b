#!/usr/bin/env bash
# The Debian 12 VM end-to-end test: systemd, cgroup v2, Docker's systemd cgroup driver, booted the
# way README.md's Vagrant playground boots it.
#
#   tests/vm/run.sh              install the tools it lacks, build (or reuse) the disk and its box
#                                (make box), `vagrant up` (site.yml provisions the box), run
#                                tests/vm/test_*.py against it, `vagrant destroy -f`, and check that
#                                nothing of the run is left
#   tests/vm/run.sh --can-boot   exit 0 when this machine can build and boot the VM (installing what
#                                is missing is part of the run, not of this check); otherwise print
#                                each reason on a line of its own and exit 77
#   tests/vm/run.sh --can-build  the same for building the disk alone (tests/vagrant/make-box.sh asks)
#   tests/vm/run.sh --shell      boot the disk with qemu alone, no Vagrant, and wait (prints the ssh
#                                command); stopped on Ctrl-C
#   tests/vm/run.sh --image      build the disk if its recipe changed, print the directory holding it
#                                (tests/vagrant/make-box.sh makes the Vagrant box of this very disk)
#
# The disk is built by build-image.sh and cached under $PODKIT_VM_CACHE (default
# /var/cache/podkit-vm/<hash of build-image.sh>/), so it is rebuilt only when its recipe changes;
# make-box.sh caches the box beside it. The run boots the box with `vagrant up --provider libvirt`
# (qemu, TCG: KVM is not usable here; 2 CPUs, 2 GiB). libvirtd, its network and every ssh of Vagrant
# live in a network namespace the run makes (tests/vagrant/namespace.sh); the tests reach the VM
# through a port on 127.0.0.1 forwarded into it, as root with a key made for the run, and run
# `vagrant provision` and `vagrant reload` through $PODKIT_VM_VAGRANT.
#
# Exit status 77 (the "skipped" of automake's test drivers) means "this machine cannot
# boot the VM", so scripts/test.sh can tell it from a run that broke.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache_root=${PODKIT_VM_CACHE:-/var/cache/podkit-vm}
reports=${PODKIT_REPORTS:-$top/build/reports}
# What building the disk needs, then what booting it through Vagrant and libvirt adds.
disk_packages=(debootstrap qemu-system-x86 qemu-utils e2fsprogs openssh-client)
disk_commands=(debootstrap qemu-system-x86_64 qemu-img mkfs.ext4 ssh ssh-keygen)
packages=("${disk_packages[@]}" vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    dnsmasq-base iptables iproute2 fdisk socat)
commands=("${disk_commands[@]}" vagrant libvirtd virtlogd virsh dnsmasq iptables ip sfdisk socat nsenter)
need_disk_mib=$((10 * 1024))
need_mem_mib=$((3 * 1024))
boot_timeout=${PODKIT_VM_BOOT_TIMEOUT:-420}
cannot_boot=77
start=$SECONDS
# debootstrap and mkfs.ext4 live in sbin, which a non-login root shell may lack.
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf 'vm: %s\n' "$*"; }
took() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

missing_commands() {
    local c out=()
    for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || out+=("$c"); done
    # A plugin, not a command: vagrant without it knows no libvirt provider.
    [[ $(dpkg-query -W -f='${Status}' vagrant-libvirt 2>/dev/null) == *" installed" ]] || out+=("vagrant-libvirt")
    echo "${out[*]}"
}

# Whether apt has a version of package $1 to install. The answer is read whole into a
# variable: `apt-cache policy | grep -q` under pipefail fails whenever grep stops reading
# early (apt-cache dies of SIGPIPE, the pipeline returns 141), which made every package
# look uninstallable on a machine that lacked them.
installable() {
    local policy
    policy=$(apt-cache policy "$1" 2>/dev/null) || return 1
    [[ $policy == *"Candidate: "[0-9]* ]]
}

# MiB free in the filesystem that holds $1, or will once it is made (a check makes nothing).
free_mib() {
    local dir=$1 out
    until [ -d "$dir" ]; do dir=$(dirname "$dir"); done
    out=$(df -P -BM "$dir") || return 1
    out=$(awk 'NR == 2 { sub("M", "", $4); print $4 }' <<<"$out")
    echo "${out:-0}"
}

# Fills why[] with every reason this machine cannot build the disk.
why=()
can_build() {
    why=()
    [ "$(uname -m)" = x86_64 ] || why+=("not an x86_64 machine")
    [ "$(id -u)" = 0 ] || why+=("debootstrap needs root")
    [ -x "$top/.venv/bin/ansible-playbook" ] || why+=("no $top/.venv (make venv)")
    if [ -n "$(missing_commands)" ]; then
        local p lacking=()
        for p in "${packages[@]}"; do installable "$p" || lacking+=("$p"); done
        if [ ${#lacking[@]} -gt 0 ]; then
            # A fresh machine's package lists may be missing or predate its packages: read them once.
            "$top/scripts/apt-get.sh" update -qq >/dev/null 2>&1 || true
            for p in "${lacking[@]}"; do
                installable "$p" || why+=("package $p is neither installed nor installable (apt-cache policy $p)")
            done
        fi
    fi
    local dir free
    for dir in "$cache_root" /var/tmp; do
        free=$(free_mib "$dir") || { why+=("cannot read the free space under $dir"); continue; }
        [ "$free" -ge "$need_disk_mib" ] ||
            why+=("only $free MiB free under $dir ($need_disk_mib MiB needed for the disk and the run)")
    done
    local mem
    mem=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
    [ "${mem:-0}" -ge "$need_mem_mib" ] || why+=("only ${mem:-0} MiB of memory available ($need_mem_mib MiB needed)")
    [ ${#why[@]} -eq 0 ]
}

# Fills why[] with every reason this machine cannot build the disk, make it a box and boot that
# through Vagrant and libvirt in a network namespace. (libvirt's copy of the box lives in the run's
# directory under /var/tmp, whose free space can_build checks.)
can_boot() {
    can_build
    local probe=podkit-vm-probe-$$ reasons
    if ip netns add "$probe" 2>/dev/null; then
        ip netns del "$probe"
    else
        why+=("cannot make a network namespace (ip netns add)")
    fi
    # make-box.sh asks --can-build of this script, never --can-boot: no loop.
    reasons=$("$top/tests/vagrant/make-box.sh" --can-run) || why+=("${reasons//$'\n'/; }")
    [ ${#why[@]} -eq 0 ]
}

install_tools() {
    local missing t0=$SECONDS
    missing=$(missing_commands)
    [ -z "$missing" ] && return 0
    log "installing ${packages[*]} (missing: $missing)"
    export DEBIAN_FRONTEND=noninteractive
    "$top/scripts/apt-get.sh" update -qq
    "$top/scripts/apt-get.sh" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    missing=$(missing_commands)
    if [ -n "$missing" ]; then
        log "installed ${packages[*]}, yet $missing still cannot be found" >&2
        return 1
    fi
    log "tools installed in $(took "$t0")"
}

# Prints the directory holding base.img, vmlinuz and initrd.img for the current recipe.
image() {
    local hash dir
    hash=$(sha256sum "$here/build-image.sh" | cut -c1-16)
    dir=$cache_root/$hash
    mkdir -p "$cache_root"
    exec 9>"$cache_root/.lock"
    flock 9  # two runs at once build it once
    if [ ! -f "$dir/base.img" ]; then
        log "building the disk (recipe $hash) into $dir" >&2
        rm -rf "$dir.tmp"
        local t0=$SECONDS
        "$here/build-image.sh" "$dir.tmp" >&2
        mv "$dir.tmp" "$dir"
        log "disk built in $(took "$t0")" >&2
    else
        log "reusing the disk built from recipe $hash" >&2
    fi
    # Marks it used. Disks of other recipes (a checkout of another commit may still
    # boot one) go once unused for a day; each holds about 0.7 GiB (sparse).
    touch "$dir"
    find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name "$hash" -mmin +1440 -exec rm -rf {} +
    flock -u 9
    echo "$dir"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run_dir=
qemu_pid=
ns_holder=
rc=0
# The end of every run, whatever stage it stopped at: qemu stopped (--shell), or Vagrant's VM
# destroyed and everything of the namespace removed, then proof that nothing is left.
# shellcheck disable=SC2317  # called by the EXIT trap
finish() {
    [ "$rc" -ne 0 ] || rc=$1
    trap - EXIT
    set +e
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        log "stopping the VM (qemu pid $qemu_pid)"
        kill "$qemu_pid" 2>/dev/null || true
        for _ in $(seq 20); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    # A failed run shows how the VM's last boot went.
    [ "$rc" -eq 0 ] || [ ! -s "$run_dir/serial.log" ] || serial_tail
    if [ -n "$ns_holder" ]; then
        ns_stop || { log "FAIL: the run left something behind (above)" >&2; rc=1; }
    fi
    [ -n "$run_dir" ] && [ -z "${PODKIT_VM_KEEP_RUN_DIR:-}" ] && rm -rf "$run_dir"
    log "the whole VM test took $(took "$start") (wall time); exit $rc"
    exit "$rc"
}

serial_tail() {
    echo "--- the VM's serial console (last 80 lines) ---" >&2
    tail -n 80 "$run_dir/serial.log" >&2 || true
    echo "--- end of serial console ---" >&2
}

vm_ssh() {
    ssh -i "$run_dir/id_ed25519" -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o ConnectTimeout=10 -o BatchMode=yes root@127.0.0.1 "$@"
}

# --shell: the disk booted by qemu alone (the kernel handed in, the key by fw_cfg), no Vagrant.
boot_qemu() {
    local images=$1
    qemu-img create -q -f qcow2 -b "$images/base.img" -F raw "$run_dir/overlay.qcow2"
    port=$(free_port)
    log "booting Debian 12 (TCG, 2 CPUs, 2 GiB), ssh on 127.0.0.1:$port"
    qemu-system-x86_64 \
        -name podkit-vm-test -machine pc -accel tcg,thread=multi -cpu "${PODKIT_VM_CPU:-max}" -smp 2 -m 2048 \
        -display none -monitor none -serial "file:$run_dir/serial.log" \
        -kernel "$images/vmlinuz" -initrd "$images/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.unified_cgroup_hierarchy=1 quiet" \
        -drive "file=$run_dir/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe,discard=unmap" \
        -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=net0 \
        -fw_cfg "name=opt/podkit/authorized_keys,file=$run_dir/id_ed25519.pub" \
        -device virtio-rng-pci \
        >"$run_dir/qemu.log" 2>&1 &
    qemu_pid=$!
    local t0=$SECONDS
    until vm_ssh true 2>/dev/null; do
        if ! kill -0 "$qemu_pid" 2>/dev/null; then
            log "qemu exited before the VM answered on ssh:" >&2
            cat "$run_dir/qemu.log" >&2
            serial_tail
            return 1
        fi
        if [ $((SECONDS - t0)) -ge "$boot_timeout" ]; then
            log "no ssh answer after ${boot_timeout} s" >&2
            serial_tail
            return 1
        fi
        sleep 3
    done
    log "ssh answered after $((SECONDS - t0)) s: $(vm_ssh 'uname -r; stat -fc %T /sys/fs/cgroup' | tr '\n' ' ')"
}

# The run's VM: the box booted and provisioned by `vagrant up` in the run's namespace, its sshd
# forwarded to 127.0.0.1:$port, root's key the run's own.
boot_vagrant() {
    ns_start "$run_dir"
    export VAGRANT_CWD=$top PODKIT_VAGRANT_SERIAL_LOG=$run_dir/serial.log ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
    export PODKIT_VAGRANT_LIBVIRT_DRIVER=${PODKIT_VAGRANT_LIBVIRT_DRIVER:-qemu}
    # The VM is destroyed at the end: its disk need not survive a crash of this host, so the guest's flushes
    # (dpkg's, containerd's, journald's) are not waited for, as the qemu boot (--shell) does.
    export PODKIT_VAGRANT_DISK_CACHE=${PODKIT_VAGRANT_DISK_CACHE:-unsafe}
    # $PODKIT_VM_VAGRANT: vagrant for this run's VM, for this script and the tests (vagrant provision, vagrant
    # reload), and for a person in a kept run directory: the environment above, written out once. After an up or
    # a reload it writes vagrant ssh-config to vagrant-ssh.conf and the VM's address to vm-address, which the
    # forward follows, should DHCP have given another.
    local var exports=""
    for var in VAGRANT_CWD VAGRANT_DOTFILE_PATH VAGRANT_DEFAULT_PROVIDER VAGRANT_CHECKPOINT_DISABLE LIBVIRT_DEFAULT_URI \
        PODKIT_VAGRANT_SERIAL_LOG PODKIT_VAGRANT_LIBVIRT_DRIVER PODKIT_VAGRANT_DISK_CACHE ANSIBLE_FORCE_COLOR ANSIBLE_NOCOLOR; do
        exports+="export $var=$(printf %q "${!var}")"$'\n'
    done
    cat >"$run_dir/vagrant" <<WRAPPER
#!/bin/sh
# vagrant for the VM of run $run_dir, in its network namespace (tests/vm/run.sh).
$exports
in_ns() { nsenter --target $ns_holder --mount --net "\$@"; }
in_ns vagrant "\$@" || exit
case \$1 in
    up | reload)
        in_ns vagrant ssh-config >'$run_dir/vagrant-ssh.conf' || exit
        address=\$(awk '\$1 == "HostName" { print \$2 }' '$run_dir/vagrant-ssh.conf')
        [ -z "\$address" ] || echo "\$address" >'$run_dir/vm-address' ;;
esac
WRAPPER
    chmod 0755 "$run_dir/vagrant"

    local t0=$SECONDS
    log "vagrant up --provider libvirt: the box booted (TCG, 2 CPUs, 2 GiB), then site.yml provisions it"
    if ! "$run_dir/vagrant" up --provider libvirt >"$run_dir/up.log" 2>&1; then
        tail -n 80 "$run_dir/up.log" >&2
        log "vagrant up failed" >&2
        return 1
    fi
    grep -E '^docker-host +: ok=' "$run_dir/up.log" | sed 's/^/vm: vagrant up provisioned: /'
    log "vagrant up: $(took "$t0")"

    local address
    address=$(cat "$run_dir/vm-address" 2>/dev/null) || { log "vagrant ssh-config named no HostName" >&2; return 1; }
    # Root's key is the run's: the tests and their Ansible work as root, as on any pod host.
    ns_exec ssh -F "$run_dir/vagrant-ssh.conf" docker-host \
        'sudo install -D -m 0600 /dev/stdin /root/.ssh/authorized_keys' <"$run_dir/id_ed25519.pub"
    port=$(free_port)
    ns_forward "$port" "$address"
    vm_ssh true || { log "no ssh answer through 127.0.0.1:$port" >&2; return 1; }
    log "ssh on 127.0.0.1:$port (forwarded to $address:22 in $ns_name): $(vm_ssh 'uname -r; stat -fc %T /sys/fs/cgroup' | tr '\n' ' ')"
}

case "${1:-}" in
    --can-boot)
        can_boot || { printf '%s\n' "${why[@]}"; exit $cannot_boot; }
        exit 0
        ;;
    --can-build)
        can_build || { printf '%s\n' "${why[@]}"; exit $cannot_boot; }
        exit 0
        ;;
    --image)
        can_build || { printf 'vm: cannot build the disk here: %s\n' "${why[@]}" >&2; exit $cannot_boot; }
        install_tools
        image
        exit 0
        ;;
    --shell | "")
        ;;
    *)
        echo "usage: $0 [--can-boot|--can-build|--shell|--image]" >&2
        exit 2
        ;;
esac

if ! can_boot; then
    printf 'vm: cannot boot the test VM here: %s\n' "${why[@]}" >&2
    exit $cannot_boot
fi
install_tools
trap 'finish $?' EXIT
trap 'exit 130' INT TERM
run_dir=$(mktemp -d /var/tmp/podkit-vm-run.XXXXXX)
ssh-keygen -q -t ed25519 -N '' -C podkit-vm-test -f "$run_dir/id_ed25519"

if [ "${1:-}" = --shell ]; then
    boot_qemu "$(image)"
    log "ssh -i $run_dir/id_ed25519 -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1"
    log "Ctrl-C stops the VM"
    PODKIT_VM_KEEP_RUN_DIR=
    wait "$qemu_pid"
    exit 0
fi

# shellcheck source=tests/vagrant/namespace.sh
. "$top/tests/vagrant/namespace.sh"
t0=$SECONDS
"$top/tests/vagrant/make-box.sh"
log "make box: $(took "$t0")"
boot_vagrant

export PODKIT_VM_SSH_PORT=$port PODKIT_VM_SSH_KEY=$run_dir/id_ed25519 PODKIT_VM_RUN_DIR=$run_dir
export PODKIT_VM_VAGRANT=$run_dir/vagrant PODKIT_VM_UP_LOG=$run_dir/up.log
mkdir -p "$reports"
cd "$top"
# -rP: what a passing test prints (the reboot's seconds to a whole pod) is in the log too.
"$top/.venv/bin/pytest" -p no:cacheprovider -v -rP --durations=0 tests/vm --junitxml "$reports/vm.xml" || rc=$?

# The playground's last command: nothing of the VM is left in libvirt (finish checks the rest).
t0=$SECONDS
if ! ns_vagrant destroy -f >"$run_dir/destroy.log" 2>&1; then
    cat "$run_dir/destroy.log" >&2
    log "FAIL: vagrant destroy -f failed" >&2
    rc=1
elif [ -n "$(ns_virsh list --all --name)" ]; then
    log "FAIL: a libvirt domain is left after vagrant destroy -f: $(ns_virsh list --all --name | tr '\n' ' ')" >&2
    rc=1
else
    log "vagrant destroy -f: $(took "$t0"), no libvirt domain left"
fi
exit "$rc"
