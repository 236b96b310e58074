#!/bin/sh
# /init of the test guest's initramfs (busybox sh, PID 1), what a distro initramfs does for this
# machine: the guest's disks are virtio-blk and the cloud kernel builds virtio_blk as a module, so
# the kernel cannot mount root= by itself. Loads the modules (listed in dependency order in
# /lib/modules/load-order), waits a bounded time for the device named by root= (PARTUUID=, UUID=,
# LABEL=, PARTLABEL= through util-linux blkid, or /dev/...), mounts it as rootfstype= with rw/ro,
# and switch_roots to init= (default /sbin/init). Every failure prints "initramfs: ..." on the
# console and exits: the kernel panics and panic=N resets the machine.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

msg() { echo "initramfs: $*"; }
die() {
  msg "$*"
  msg "cannot boot; block devices: $(cd /sys/class/block 2>/dev/null && echo *)"
  exit 1
}

mount -t devtmpfs devtmpfs /dev || die "cannot mount devtmpfs"
mount -t proc proc /proc || die "cannot mount /proc"
mount -t sysfs sysfs /sys || die "cannot mount /sys"

root=
fstype=auto
mode=ro
init=/sbin/init
wait_seconds=30
read -r cmdline </proc/cmdline
for arg in $cmdline; do
  case $arg in
  root=*) root=${arg#root=} ;;
  rootfstype=*) fstype=${arg#rootfstype=} ;;
  rw) mode=rw ;;
  ro) mode=ro ;;
  init=*) init=${arg#init=} ;;
  esac
done
[ -n "$root" ] || die "no root= on the kernel command line"

while read -r module; do
  insmod "/lib/modules/$module.ko" || die "insmod $module failed"
done </lib/modules/load-order

# resolve SPEC: the block device SPEC names, if it exists yet.
resolve() {
  case $1 in
  /dev/*) [ -b "$1" ] && echo "$1" ;;
  *=*) blkid -c /dev/null -o device -t "$1" 2>/dev/null | head -1 ;;
  esac
}
msg "modules loaded ($(tr '\n' ' ' </lib/modules/load-order)), waiting for root=$root"
deadline=$(($(cut -d. -f1 /proc/uptime) + wait_seconds))
until dev=$(resolve "$root") && [ -n "$dev" ]; do
  [ "$(cut -d. -f1 /proc/uptime)" -lt "$deadline" ] ||
    die "root device root=$root did not appear within $wait_seconds s"
  sleep 0.1
done

mkdir -p /newroot
mount -t "$fstype" -o "$mode" "$dev" /newroot || die "cannot mount $dev ($fstype, $mode)"
msg "root=$root is $dev, mounted $mode; switching to $init"
umount /proc /sys
# The real root keeps this devtmpfs (the console stays open on it).
mount --move /dev /newroot/dev || die "cannot move /dev to the new root"
exec switch_root /newroot "$init"
