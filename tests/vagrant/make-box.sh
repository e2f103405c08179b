#!/usr/bin/env bash
# `make box`: the Debian 12 disk of the VM test (tests/vm/build-image.sh, reused from its
# cache, never a second debootstrap) made a libvirt Vagrant box, added as podkit/debian12.
#
#   tests/vagrant/make-box.sh            build the box if its recipe changed, then `vagrant box add` it
#   tests/vagrant/make-box.sh --can-run  exit 0 when this machine can build it; else print the reasons, exit 77
#
# What the box adds to the disk:
# - it boots on its own: the disk tests/vm boots is a bare ext4 filesystem with qemu handing in
#   the kernel. A box instead gets an MBR partition table, the filesystem as its one partition,
#   and GRUB (Debian's grub-pc-bin: boot.img in the MBR, a core.img made by grub-mkimage right
#   after it, /boot/grub/grub.cfg). Not libvirt's kernel/initrd options: those name a file on the
#   host that qemu (user libvirt-qemu) must read, and a box's files live in VAGRANT_HOME, under a
#   home directory that user may not enter (root's is 0700 here); and a kernel update in the box
#   would never boot.
# - the `vagrant` user, passwordless sudo, and Vagrant's well-known insecure public key, which
#   Vagrant swaps for a key of its own on the first `vagrant up`, as with any public box.
# - offline provisioning: what playbooks/site.yml would fetch from the network is already there.
#   cgroup-tools and busybox-static are installed (the host role's package check then finds
#   nothing missing and needs no repository: its path for air-gapped hosts), and wheels of
#   requirements.txt wait in /var/cache/podkit-wheels, which /etc/pip.conf names, so the role's
#   pip install into /opt/podkit/venv needs no index.
#
# The box is cached like the disk: /var/cache/podkit-vm/box-<hash of the disk's recipe, this
# file, requirements.txt and constraints.txt>/podkit-debian12.box. Its version (0.0.<hash as a
# number>) tells `vagrant box add` and vagrant-libvirt's storage pool a new recipe from an old one.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache_root=${PODKIT_VM_CACHE:-/var/cache/podkit-vm}
box_name=${PODKIT_BOX_NAME:-podkit/debian12}
cannot_run=77
export PATH="$PATH:/usr/sbin:/sbin"
start=$SECONDS

log() { printf 'box: %s\n' "$*" >&2; }
took() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

why=()
can_run() {
    why=()
    [ "$(id -u)" = 0 ] || why+=("building the box mounts its disk: needs root")
    command -v losetup >/dev/null && losetup -f >/dev/null 2>&1 || why+=("no free loop device (losetup -f)")
    local reasons
    reasons=$("$top/tests/vm/run.sh" --can-build) || why+=("the disk cannot be built: ${reasons//$'\n'/; }")
    if ! command -v vagrant >/dev/null; then
        local policy
        policy=$(apt-cache policy vagrant 2>/dev/null) || policy=
        [[ $policy == *"Candidate: "[0-9]* ]] || why+=("vagrant is neither installed nor installable")
    fi
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
can_run || { printf 'box: cannot build the box here: %s\n' "${why[@]}" >&2; exit $cannot_run; }

if ! command -v vagrant >/dev/null || ! command -v sfdisk >/dev/null; then
    log "installing vagrant and fdisk"
    "$top/scripts/apt-get.sh" install -y -qq --no-install-recommends vagrant fdisk >/dev/null
fi

disk_dir=$("$top/tests/vm/run.sh" --image)
hash=$(cat "$top/tests/vm/build-image.sh" "$here/make-box.sh" "$top/requirements.txt" "$top/constraints.txt" | sha256sum | cut -c1-16)
version=0.0.$((16#${hash:0:8}))
dir=$cache_root/box-$hash
box=$dir/podkit-debian12.box

build() {
    local work root loops=() t0=$SECONDS
    work=$(mktemp -d /var/tmp/podkit-box-build.XXXXXX)
    root=$work/root
    # shellcheck disable=SC2317  # called by the trap
    cleanup() {
        local m
        for m in "$root/dev/pts" "$root/dev" "$root/sys" "$root/proc" "$root"; do
            if mountpoint -q "$m" 2>/dev/null; then umount "$m" || umount -l "$m" || true; fi
        done
        for m in "${loops[@]}"; do losetup -d "$m" 2>/dev/null || true; done
        rm -rf "$work"
    }
    trap cleanup RETURN
    trap 'cleanup; exit 1' ERR

    log "wheels of requirements.txt (for the box's pip, which has no index)"
    "$top/.venv/bin/pip" wheel --quiet --wheel-dir "$work/wheels" --requirement "$top/requirements.txt" \
        --constraint "$top/constraints.txt" >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; return 1; }

    log "the disk's filesystem (recipe ${disk_dir##*/}), mounted to add what a box needs"
    cp --sparse=always "$disk_dir/base.img" "$work/root.img"
    loops+=("$(losetup -f --show "$work/root.img")")
    mkdir "$root"
    mount "${loops[0]}" "$root"
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    mount --bind /dev "$root/dev"
    mount -t devpts devpts "$root/dev/pts"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

    # Packages the way apt installs them; daemons kept from starting in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    in_root apt-get update -qq
    in_root apt-get -y -qq --no-install-recommends install cgroup-tools busybox-static grub-pc-bin >"$work/apt.log" 2>&1 || {
        tail -n 40 "$work/apt.log" >&2
        return 1
    }
    rm -f "$root/usr/sbin/policy-rc.d"
    in_root apt-get clean

    install -d -m 0755 "$root/var/cache/podkit-wheels"
    cp "$work/wheels"/*.whl "$root/var/cache/podkit-wheels/"
    cat >"$root/etc/pip.conf" <<'EOF'
# This box is made to be provisioned offline (tests/vagrant/make-box.sh): pip installs
# from the wheels the box carries. Remove these lines to use an index again.
[global]
no-index = true
find-links = /var/cache/podkit-wheels
EOF

    in_root useradd --create-home --shell /bin/bash --user-group vagrant
    install -d -m 0700 -o "$(in_root id -u vagrant)" -g "$(in_root id -g vagrant)" "$root/home/vagrant/.ssh"
    install -m 0600 -o "$(in_root id -u vagrant)" -g "$(in_root id -g vagrant)" "$vagrant_key" \
        "$root/home/vagrant/.ssh/authorized_keys"
    printf 'vagrant ALL=(ALL) NOPASSWD: ALL\nDefaults:vagrant !requiretty\n' >"$root/etc/sudoers.d/vagrant"
    chmod 0440 "$root/etc/sudoers.d/vagrant"
    in_root visudo -cq

    # Booted from the partition by GRUB rather than by qemu's -kernel: the root is found by its
    # label, and the kernel's symlinks (/vmlinuz, /initrd.img) follow kernel updates.
    echo 'LABEL=podkit-root / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
    sed -i 's/^update_initramfs=.*/update_initramfs=yes/' "$root/etc/initramfs-tools/update-initramfs.conf"
    if [ ! -e "$root/vmlinuz" ] || [ ! -e "$root/initrd.img" ]; then
        log "the disk has no /vmlinuz or /initrd.img link"
        return 1
    fi
    install -d "$root/boot/grub"
    cp -r "$root/usr/lib/grub/i386-pc" "$root/boot/grub/"
    cat >"$root/boot/grub/grub.cfg" <<'EOF'
# Written by tests/vagrant/make-box.sh (no update-grub: the box has one kernel entry).
set timeout=1
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
search --no-floppy --label podkit-root --set root
menuentry "Debian GNU/Linux 12 (podkit box)" {
    linux /vmlinuz root=LABEL=podkit-root rw console=tty0 console=ttyS0,115200 net.ifnames=0 systemd.unified_cgroup_hierarchy=1 quiet
    initrd /initrd.img
}
EOF
    # The first-stage core image: enough to read the partition and its config.
    in_root grub-mkimage -O i386-pc -o /tmp/core.img -p '(hd0,msdos1)/boot/grub' \
        biosdisk part_msdos ext2 normal linux search search_label configfile serial terminal echo test
    cp "$root/tmp/core.img" "$work/core.img"
    cp "$root/usr/lib/grub/i386-pc/boot.img" "$work/boot.img"
    rm -f "$root/tmp/core.img" "$root/etc/resolv.conf"
    umount "$root/dev/pts" "$root/dev" "$root/sys" "$root/proc" "$root"
    e2fsck -fy "${loops[0]}" >/dev/null 2>&1 || [ $? -le 1 ]
    losetup -d "${loops[0]}"
    loops=()

    log "a partitioned disk: MBR with GRUB, the filesystem from 1 MiB on"
    local fs_bytes
    fs_bytes=$(stat -c %s "$work/root.img")
    truncate -s $((fs_bytes + 1024 * 1024)) "$work/disk.img"
    echo 'start=2048, type=83, bootable' | sfdisk -q "$work/disk.img"
    dd if="$work/boot.img" of="$work/disk.img" bs=440 count=1 conv=notrunc status=none
    [ "$(stat -c %s "$work/core.img")" -le $((2047 * 512)) ] || { log "core.img does not fit before the partition"; return 1; }
    dd if="$work/core.img" of="$work/disk.img" bs=512 seek=1 conv=notrunc status=none
    dd if="$work/root.img" of="$work/disk.img" bs=1M seek=1 conv=notrunc,sparse status=none
    rm -f "$work/root.img"

    log "box.img (qcow2), metadata.json, the box's Vagrantfile"
    mkdir "$work/box"
    qemu-img convert -f raw -O qcow2 "$work/disk.img" "$work/box/box.img"
    rm -f "$work/disk.img"
    local gib=$(((fs_bytes + 1024 * 1024 + (1 << 30) - 1) >> 30))
    printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$gib" >"$work/box/metadata.json"
    cat >"$work/box/Vagrantfile" <<'EOF'
# The podkit Debian 12 box (tests/vagrant/make-box.sh): a libvirt box that boots by GRUB.
Vagrant.configure("2") do |config|
  # Nothing is shared from the host by default: the box has no NFS client or rsync.
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
end
EOF
    echo "$hash" >"$work/box/podkit-box-recipe"
    tar -C "$work/box" -cf "$work/podkit-debian12.box" .
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    mv "$work/podkit-debian12.box" "$dir.tmp/"
    mv "$dir.tmp" "$dir"
    log "box built in $(took "$t0"): $(du -h "$box" | cut -f1)"
}

vagrant_key=$(find /usr/share/rubygems-integration /usr/lib/ruby /opt/vagrant -path "*/keys/vagrant.pub" -print -quit 2>/dev/null) || true
[ -n "$vagrant_key" ] || { log "Vagrant's insecure public key (keys/vagrant.pub) is not where vagrant is installed"; exit 1; }

mkdir -p "$cache_root"
exec 9>"$cache_root/.box-lock"
flock 9
if [ -f "$box" ]; then
    log "reusing the box of recipe $hash"
else
    build
fi
touch "$dir"
find "$cache_root" -mindepth 1 -maxdepth 1 -type d -name 'box-*' ! -name "box-$hash" -mmin +1440 -exec rm -rf {} +

# Added once per recipe; earlier versions go, so `vagrant up` finds exactly this one.
boxes=$(vagrant box list 2>/dev/null) || boxes=
if [[ $'\n'$boxes$'\n' == *$'\n'"$box_name (libvirt, $version)"$'\n'* ]]; then
    log "$box_name $version is added already"
else
    vagrant box remove --all --force "$box_name" >/dev/null 2>&1 || true
    printf '{"name": "%s", "versions": [{"version": "%s", "providers": [{"name": "libvirt", "url": "file://%s"}]}]}\n' \
        "$box_name" "$version" "$box" >"$dir/catalog.json"
    vagrant box add --force "$dir/catalog.json" >&2
fi
log "$box_name $version ready ($(took "$start"))"
