#!/usr/bin/env bash
# Fetches (never installs) what the real-boot VM test (test/e2e/vm/) needs from Debian but must not
# put on the host: the cloud kernel (NVMe + ext4 built in, so no initramfs) and grub2-common (it
# holds grub-install; installing it would add kernel hooks to the host). Both are unpacked with
# `dpkg -x` into a cache dir the test reads. Idempotent: does nothing when the cache is complete.
#   deploy/fetch-vm-debs.sh [CACHE_DIR]     (default $OTA_VM_CACHE or /var/cache/ota-vm-debs)
set -euo pipefail

cache=${1:-${OTA_VM_CACHE:-/var/cache/ota-vm-debs}}
stamp=$cache/complete

if [[ -f "$stamp" && -f "$cache/kernel/vmlinuz" && -x "$cache/grub2-common/usr/sbin/grub-install" ]]; then
  echo "fetch-vm-debs: cache complete in $cache"
  exit 0
fi

# The versioned package the cloud meta-package currently points at.
resolve_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -1
}
kernel_pkg=$(resolve_kernel)
if [[ -z "$kernel_pkg" ]]; then  # package lists not fetched yet on this machine
  apt-get update -qq || true
  kernel_pkg=$(resolve_kernel)
fi
if [[ -z "$kernel_pkg" ]]; then
  echo "fetch-vm-debs: cannot resolve linux-image-cloud-amd64 (run apt-get update?)" >&2
  exit 1
fi

mkdir -p "$cache/debs"
rm -f "$stamp"
(cd "$cache/debs" && apt-get download -q "$kernel_pkg" grub2-common)

unpack() {  # unpack PACKAGE DIR
  local deb
  deb=$(find "$cache/debs" -name "$1_*.deb" | sort | tail -1)
  rm -rf "$2.tmp"
  dpkg -x "$deb" "$2.tmp"
  rm -rf "$2"
  mv "$2.tmp" "$2"
}

unpack grub2-common "$cache/grub2-common"

# Keep only what the guest needs from the 100 MB kernel tree: vmlinuz and the softdog module.
unpack "$kernel_pkg" "$cache/kernel-full"
mkdir -p "$cache/kernel"
cp "$cache/kernel-full"/boot/vmlinuz-* "$cache/kernel/vmlinuz"
find "$cache/kernel-full" -name 'softdog.ko*' -exec cp {} "$cache/kernel/" \;
echo "$kernel_pkg" >"$cache/kernel/package"
rm -rf "$cache/kernel-full"
rm -f "$cache/debs"/*.deb

touch "$stamp"
echo "fetch-vm-debs: $kernel_pkg and grub2-common unpacked into $cache"
