#!/usr/bin/env bash
# The recipe of the test VM's disk: a Debian bookworm root made with debootstrap,
# set up to boot under qemu with systemd (cgroup v2), DHCP on its one NIC, the
# serial console and root login by a key that qemu hands in through fw_cfg.
# Usage: build-image.sh OUTDIR   (writes OUTDIR/base.img, vmlinuz, initrd.img)
#
# run.sh hashes this file to name the cache directory, so any change here
# rebuilds the image; everything the image holds is therefore written inline.
# No loop mounts: the root is a plain directory turned into an ext4 image by
# `mkfs.ext4 -d`, which needs no kernel help (loop devices may be missing).
set -euo pipefail

out=${1:?usage: build-image.sh OUTDIR}
mirror=${PODKIT_VM_MIRROR:-http://deb.debian.org/debian}
security=${PODKIT_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
size=${PODKIT_VM_DISK_SIZE:-6G}

# Kept lean: what a Debian 12 cloud host has that the test needs. dbus, because
# Docker's systemd cgroup driver talks to systemd over the system bus.
include=linux-image-cloud-amd64,systemd-sysv,udev,dbus,openssh-server,ifupdown,isc-dhcp-client,
include+=iproute2,netbase,python3,python3-apt,sudo,ca-certificates,procps,kmod,initramfs-tools,less

work=$(mktemp -d /var/tmp/podkit-vm-build.XXXXXX)
root=$work/root
cleanup() {
    # debootstrap mounts proc/sys inside the root while it runs; never leave them behind.
    for m in "$root/proc" "$root/sys" "$root/dev/pts" "$root/dev"; do
        if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

echo "vm-build: debootstrap bookworm into $root"
debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" "$root/debootstrap/debootstrap.log" 2>/dev/null
    exit 1
}

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF

# What every apt and dpkg run in the VM does, set before the first one: no fsync per
# file (the disk is a throwaway overlay), no translations, no documentation or
# manuals unpacked. Under TCG each saves a share of the host role's one package
# transaction, the longest step of the test.
cat >"$root/etc/dpkg/dpkg.cfg.d/podkit-test-vm" <<'EOF'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
cat >"$root/etc/apt/apt.conf.d/90podkit-test-vm" <<'EOF'
Acquire::Languages "none";
EOF

# Security updates now, so every run boots the same kernel and the role's apt
# run inside the VM has little to do.
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount -t devpts devpts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
in_root apt-get update -qq
in_root apt-get -y -qq -o Dpkg::Options::=--force-confold dist-upgrade >"$work/upgrade.log" 2>&1 || {
    tail -n 40 "$work/upgrade.log"
    exit 1
}

# The heavy part of what the host role installs, unpacked here at native speed rather
# than by the role under TCG (this one apt transaction was the longest step of the first
# site run, 7.7 min in all). It stays a real Debian host the role converges: the packages are
# installed the way apt installs them, the engine's units are left disabled and stopped
# (the role enables and starts them), and cgroup-tools and busybox-static are left out,
# so the role's check finds them missing and its one apt transaction (package lists
# refreshed, then installed) still runs for real. policy-rc.d keeps the packages'
# maintainer scripts from starting daemons in the chroot. The image's own apt history is
# kept apart, so /var/log/apt/history.log tells what the role installed.
preinstalled=(docker.io containerd python3-docker python3-jmespath python3-venv gcc libc6-dev)
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
in_root apt-get -y -qq --no-install-recommends install "${preinstalled[@]}" >"$work/preinstall.log" 2>&1 || {
    tail -n 40 "$work/preinstall.log"
    exit 1
}
rm -f "$root/usr/sbin/policy-rc.d"
in_root systemctl disable docker.service docker.socket containerd.service >/dev/null 2>&1
mv "$root/var/log/apt/history.log" "$root/var/log/apt/history.image.log"
(IFS=,; echo "${preinstalled[*]}") >"$root/etc/podkit-vm-preinstalled"
in_root apt-get clean
umount "$root/dev/pts" "$root/dev" "$root/sys" "$root/proc"

echo "vm-build: configuring"
echo debian12 >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 debian12
::1 localhost ip6-localhost ip6-loopback
EOF
cat >"$root/etc/fstab" <<'EOF'
/dev/vda / ext4 rw,errors=remount-ro 0 1
EOF
# net.ifnames=0 on the kernel command line makes the one virtio NIC eth0.
cat >"$root/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
# dhclient writes the real one (qemu's user-mode resolver) at boot.
rm -f "$root/etc/resolv.conf"
: >"$root/etc/machine-id"

# Root logs in with the run's key only: qemu passes it as the fw_cfg blob
# opt/podkit/authorized_keys, copied into place before sshd starts.
echo qemu_fw_cfg >"$root/etc/modules-load.d/podkit-fw-cfg.conf"
cat >"$root/etc/systemd/system/podkit-authorized-keys.service" <<'EOF'
[Unit]
Description=Install the test run's SSH key handed in by qemu (fw_cfg)
After=systemd-modules-load.service
Before=ssh.service
ConditionPathExists=/sys/firmware/qemu_fw_cfg/by_name/opt/podkit/authorized_keys/raw

[Service]
Type=oneshot
ExecStart=/usr/bin/install -D -m 0600 /sys/firmware/qemu_fw_cfg/by_name/opt/podkit/authorized_keys/raw /root/.ssh/authorized_keys

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/podkit-authorized-keys.service \
    "$root/etc/systemd/system/multi-user.target.wants/podkit-authorized-keys.service"
install -d -m 0700 "$root/root/.ssh"
cat >"$root/etc/ssh/sshd_config.d/podkit.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
EOF
# qemu boots the kernel and initrd copied out below, never the VM's own /boot:
# rebuilding the initramfs when a package asks (busybox-static does) would cost
# minutes under TCG for nothing.
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$root/etc/initramfs-tools/update-initramfs.conf"
# Nothing in the test needs these, and under TCG every timer costs seconds.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

echo "vm-build: kernel, initrd and a ${size} ext4 image"
mkdir -p "$out"
kernel=$(find "$root/boot" -name 'vmlinuz-*-cloud-amd64' | sort -V | tail -n 1)
initrd=$root/boot/initrd.img-${kernel##*/vmlinuz-}
grep -Eq '^CONFIG_FW_CFG_SYSFS=(y|m)' "$root/boot/config-${kernel##*/vmlinuz-}" || {
    echo "vm-build: the cloud kernel lacks qemu_fw_cfg; the key cannot be handed in" >&2
    exit 1
}
cp "$kernel" "$out/vmlinuz"
cp "$initrd" "$out/initrd.img"
mkfs.ext4 -q -F -L podkit-root -d "$root" "$out/base.img" "$size"
echo "vm-build: done ($(du -sh --apparent-size "$out/base.img" | cut -f1) apparent, $(du -sh "$out/base.img" | cut -f1) used)"
