#!/usr/bin/env bash
# Fetches (never installs) what the real-boot VM test (test/e2e/vm/) needs from Debian but must not
# put on the host: the cloud kernel and grub2-common (it holds grub-install; installing it would add
# kernel hooks to the host). Both are unpacked with `dpkg -x` into a cache dir the test reads. From
# the kernel it keeps vmlinuz and the modules the guest's initramfs loads: the guest's disks are
# virtio-blk, which this kernel builds as modules (virtio_blk, virtio_pci and what they depend on),
# listed in load order in kernel/modules/load-order. Idempotent: does nothing when the cache is
# complete and was made by this version of the script (the first line of the stamp).
#   deploy/fetch-vm-debs.sh [CACHE_DIR]     (default $OTA_VM_CACHE or /var/cache/ota-vm-debs)
set -euo pipefail

cache=${1:-${OTA_VM_CACHE:-/var/cache/ota-vm-debs}}
stamp=$cache/complete
# Bump when the cache's content changes; an older cache is then fetched again.
format="ota-vm-debs format 2 (vmlinuz, initramfs modules, grub2-common)"
# The modules the guest's initramfs needs for its disks; their dependencies are added.
wanted_modules=(virtio_pci virtio_blk)

if [[ -f "$stamp" && "$(head -1 "$stamp")" == "$format" && -f "$cache/kernel/vmlinuz" &&
  -s "$cache/kernel/modules/load-order" && -x "$cache/grub2-common/usr/sbin/grub-install" ]]; then
  echo "fetch-vm-debs: cache complete in $cache"
  exit 0
fi
[[ -f "$stamp" ]] && echo "fetch-vm-debs: cache in $cache is from an older version, fetching again"

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

# Keep only what the guest needs from the 100 MB kernel tree: vmlinuz, the initramfs's modules and
# the softdog module.
unpack "$kernel_pkg" "$cache/kernel-full"
rm -rf "$cache/kernel"
mkdir -p "$cache/kernel/modules"
cp "$cache/kernel-full"/boot/vmlinuz-* "$cache/kernel/vmlinuz"
find "$cache/kernel-full" -name 'softdog.ko*' -exec cp {} "$cache/kernel/" \;

# module_file NAME: the module's file in the unpacked package (the file name spells '-' as '_').
module_file() {
  find "$cache/kernel-full/lib/modules" \( -name "$1.ko*" -o -name "${1//_/-}.ko*" \) | head -1
}
# keep_module NAME: NAME.ko (uncompressed: busybox insmod reads no .xz/.zst) after its
# dependencies (the depends= of its .modinfo section; the package ships no modules.dep).
keep_module() {
  local name=$1 file dep
  [[ -f "$cache/kernel/modules/$name.ko" ]] && return 0
  file=$(module_file "$name")
  if [[ -z "$file" ]]; then
    echo "fetch-vm-debs: module $name not in $kernel_pkg (built in?)" >&2
    exit 1
  fi
  case $file in
  *.ko) cp "$file" "$cache/kernel/modules/$name.ko.tmp" ;;
  *.ko.xz) xz -dc "$file" >"$cache/kernel/modules/$name.ko.tmp" ;;
  *.ko.zst) zstd -qdc "$file" >"$cache/kernel/modules/$name.ko.tmp" ;;
  *) echo "fetch-vm-debs: unknown module format $file" >&2 && exit 1 ;;
  esac
  for dep in $(objcopy -O binary -j .modinfo "$cache/kernel/modules/$name.ko.tmp" /dev/stdout |
    tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '); do
    keep_module "$dep"
  done
  mv "$cache/kernel/modules/$name.ko.tmp" "$cache/kernel/modules/$name.ko"
  echo "$name" >>"$cache/kernel/modules/load-order"
}
for module in "${wanted_modules[@]}"; do keep_module "$module"; done
echo "$kernel_pkg" >"$cache/kernel/package"
rm -rf "$cache/kernel-full"
rm -f "$cache/debs"/*.deb

echo "$format" >"$stamp"
echo "fetch-vm-debs: $kernel_pkg ($(tr '\n' ' ' <"$cache/kernel/modules/load-order")) and" \
  "grub2-common unpacked into $cache"
