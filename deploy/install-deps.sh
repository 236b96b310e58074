#!/usr/bin/env bash
# Installs every Debian 12 package needed to build, test, benchmark and demo otaclient/otaproxy.
# Idempotent: skips apt entirely when everything is already present.
set -euo pipefail

packages=(
  # toolchain
  build-essential dpkg-dev g++ cmake ninja-build pkg-config clang clang-format clang-tidy libclang-rt-14-dev
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcurl4-openssl-dev libssl-dev libyaml-cpp-dev libabsl-dev libgtest-dev libgmock-dev
  libsqlite3-dev libzstd-dev nlohmann-json3-dev
  # tools used by tests, demo and benchmarks
  nginx openssl curl jq zstd hyperfine time procps e2fsprogs util-linux fdisk gdisk
  # getfattr/setfattr: the OTA image v1 tests put xattrs into trees and compare them
  attr
  # otaproxy's HTTP server (Boost.Beast/Asio, header-only)
  libboost-dev libboost-system-dev
  # boot-loader tests and the real-boot VM test (grub-editenv, i386-pc modules, qemu under TCG)
  grub-common grub-pc-bin qemu-system-x86 busybox-static cpio
  # its UEFI run (OVMF, x86_64-efi GRUB, the ESP) and the FAT partitions of the Jetson/Pi tests
  ovmf grub-efi-amd64-bin dosfstools mtools
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# nginx from Debian starts a system instance on install; our tests run their own instances.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx || true
fi
echo "install-deps: all dependencies present"
