#!/bin/sh
# Stand-in for `udevadm info --query=path --name=DEV`, the one question grub-probe (run by
# grub-install) asks udev: the device's sysfs path. udev is not installed on the test hosts.
name=
prev=
for arg; do
  case $arg in
  --name=*) name=${arg#--name=} ;;
  esac
  case $prev in
  --name | -n) name=$arg ;;
  esac
  prev=$arg
done
[ -n "$name" ] || exit 1
path=$(readlink -f "/sys/class/block/$(basename "$name")") || exit 1
echo "${path#/sys}"
