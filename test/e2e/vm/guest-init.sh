#!/bin/sh
# /sbin/init of the test guest (busybox sh as PID 1). It does what the guest's systemd would:
# mounts the kernel filesystems and the shared /boot partition, starts otaclient like
# deploy/otaclient.service (restart on failure), and serves the OTA images of the read-only data
# disk on the guest's own loopback with busybox httpd (the guest has no network). Then it runs the
# one request the harness put on the request disk through otactl and prints marker lines
# ("VMTEST ...") on the serial console for the harness to check. Never exits (PID 1).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

# The initramfs hands over its devtmpfs (moved onto /dev); mount one when booted without it (the
# rootfs's own /dev is empty).
[ -c /dev/null ] || mount -t devtmpfs devtmpfs /dev
# The serial port is the harness's channel, whatever console= the boot menu passes.
exec </dev/null >/dev/ttyS0 2>&1

marker() { echo "VMTEST $*"; }

# Like an init system: `reboot`/`poweroff` (and otaclient's reboot) signal PID 1.
trap 'marker reboot-requested; sync; reboot -f' TERM INT
trap 'marker poweroff-requested; sync; poweroff -f' USR2 USR1

shutdown_now() {  # shutdown_now REASON
  marker "poweroff $1"
  sync
  poweroff -f
  while :; do sleep 60; done
}

# OTA images leave /tmp out (the generator's ignore list): make the mount points we need.
mkdir -p /proc /sys /run /tmp /boot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -o remount,rw /
ip link set lo up

# Which partition we booted: the root mount's device number → its partition number.
root_majmin=$(awk '$5 == "/" { print $3; exit }' /proc/self/mountinfo)
root_partn=$(sed -n 's/^PARTN=//p' "/sys/dev/block/$root_majmin/uevent")
root_dev=$(sed -n 's/^DEVNAME=//p' "/sys/dev/block/$root_majmin/uevent")
# BIOS machine: A = p2, B = p3; UEFI machine (the ESP is p1, /boot p2): A = p3, B = p4.
slot_a_partn=2
[ -d /sys/firmware/efi ] && slot_a_partn=3
case $root_partn in
"$slot_a_partn") slot=a ;;
$((slot_a_partn + 1))) slot=b ;;
*) slot=unknown ;;
esac
marker "boot slot=$slot partn=$root_partn dev=$root_dev image=$(cat /etc/vm-image 2>/dev/null)" \
  "cmdline=$(cat /proc/cmdline)"

if [ -x /etc/vm/broken ]; then
  # The "broken" image: its init dies before otaclient could start (kernel panic → panic=N reset).
  marker "broken-init exiting"
  exit 1
fi

boot_dev=$(findfs LABEL=boot) || shutdown_now "no-boot-partition"
mount -o rw "$boot_dev" /boot || shutdown_now "cannot-mount-boot"
marker "grubenv $(grub-editenv /boot/grub/grubenv list 2>&1 | tr '\n' ' ')"

mkdir -p /srv/ota /run/vm-request
if ! data_dev=$(findfs LABEL=otadata) || ! mount -o ro "$data_dev" /srv/ota; then
  marker "no data disk"
fi
request=none
if req_dev=$(findfs LABEL=otareq) && mount -o ro "$req_dev" /run/vm-request; then
  request=$(cat /run/vm-request/request)
fi
httpd -p 127.0.0.1:8080 -h /srv/ota

# deploy/otaclient.service: ExecStart=... --config-dir /boot/ota --certs-dir /opt/ota/client/certs,
# Restart=on-failure, RestartSec=5. Extra platform flags (as the unit's comment says) come from
# /etc/vm/otaclient.args.
extra_args=$(cat /etc/vm/otaclient.args 2>/dev/null)
(
  while :; do
    # shellcheck disable=SC2086
    otaclient --config-dir /boot/ota --certs-dir /opt/ota/client/certs $extra_args
    rc=$?
    marker "otaclient-exited rc=$rc"
    [ "$rc" -eq 0 ] && break
    sleep 5
  done
) &

status_json() { otactl status --json 2>/dev/null | tr -d '\n'; }
otactl_answers() {
  otactl status --json >/dev/null 2>&1
  [ $? -ne 4 ]
}

deadline=$(($(cut -d. -f1 /proc/uptime) + 90))
until otactl_answers; do
  [ "$(cut -d. -f1 /proc/uptime)" -lt "$deadline" ] || shutdown_now "otaclient-never-answered"
  sleep 0.2
done
marker "otaclient-up"
marker "status $(status_json)"

# counters_of JSON: the update_status counters (files and bytes: *_num, *_size, *_bytes,
# *_errors), which move while an update makes progress; not the elapsed times, which move anyway.
counters_of() {
  echo "$1" | grep -oE '"[a-z_]+_(num|size|bytes|errors)": *"?[0-9]*' | sed 's/"//g; s/: */=/' |
    tr '\n' ' '
}

# watch_update SECONDS: prints the Status whenever it changes at all (state, phase or a progress
# counter), so that a working update keeps the console moving and a stuck one goes silent (the
# harness's watchdog), until the update ends or otaclient reboots us.
watch_update() {
  last=
  seen_running=
  end=$(($(cut -d. -f1 /proc/uptime) + $1))
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
    json=$(status_json)
    v2=${json#*\"ecu_v2\"}  # the v2 entries: their phase is the UpdatePhase
    phase=$(echo "$v2" | sed -n 's/.*"phase": *"\([A-Za-z_]*\)".*/\1/p' | head -1)
    state=$(echo "$v2" | sed -n 's/.*"ota_status": *"\([A-Za-z_]*\)".*/\1/p' | head -1)
    now="status=$state phase=$phase $(counters_of "$v2")"
    if [ "$now" != "$last" ]; then
      marker "progress $now"
      last=$now
    fi
    case $state in
    UPDATING | ROLLBACKING) seen_running=1 ;;
    FAILURE | ABORTED | ROLLBACK_FAILURE | SUCCESS)
      # Ended without a reboot (a failure, or a backend that does not reboot the machine).
      if [ -n "$seen_running" ] || [ "$state" != SUCCESS ]; then
        marker "status $json"
        return
      fi
      ;;
    esac
    sleep 0.3
  done
  marker "status $(status_json)"
  marker "update-timeout"
}

marker "request $request"
# shellcheck disable=SC2086 # "update VERSION IMAGE" → words
set -- $request
case $1 in
update) # update VERSION IMAGE_DIR
  out=$(otactl update --ecu vm --version "$2" --url "http://127.0.0.1:8080/$3" 2>&1)
  marker "update-answer rc=$? $(echo "$out" | tr '\n' ' ')"
  watch_update 400
  ;;
rollback)
  out=$(otactl rollback --ecu vm 2>&1)
  marker "rollback-answer rc=$? $(echo "$out" | tr '\n' ' ')"
  watch_update 120
  ;;
await-reboot)
  # Health-gated commit: the Status above was read while the check waited for this file; now
  # the check runs, and otaclient itself must reboot the machine. Each new Status is printed
  # (the poll may or may not catch the moment between the verdict and the reboot).
  touch /run/vm-health-go
  last=
  end=$(($(cut -d. -f1 /proc/uptime) + 120))
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
    json=$(status_json)
    if [ -n "$json" ] && [ "$json" != "$last" ]; then
      marker "status $json"
      last=$json
    fi
    sleep 0.3
  done
  shutdown_now "otaclient-did-not-reboot"
  ;;
esac
shutdown_now "done"
