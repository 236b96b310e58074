#!/usr/bin/env bash
# make-rootfs.sh OUT_DIR VERSION [BASE_DIR]
# Generates a small but nasty sample rootfs for demos and end-to-end tests.
#   without BASE_DIR: a fresh tree (v1): passwd/group, setuid/sticky modes, odd owners, nasty
#     names (' , space % + : \ non-ASCII), relative/absolute/dangling symlinks, hard-link groups,
#     empty files, a few hundred files of mixed sizes.
#   with BASE_DIR: a copy of BASE_DIR with ~15% of the regular files changed, some added, some
#     removed and some moved to new paths (content reuse across paths), version bumped.
# Content is random but the structure is deterministic. Must run as root (chown).
set -euo pipefail

out=$1
version=$2
base=${3:-}

rand_file() {  # rand_file PATH SIZE
  head -c "$2" /dev/urandom >"$1"
}

if [[ -e "$out" ]]; then
  echo "make-rootfs: $out already exists" >&2
  exit 1
fi

if [[ -n "$base" ]]; then
  cp -a "$base" "$out"
  mapfile -d '' files < <(cd "$out" && find . -path ./etc -prune -o -type f -links 1 -print0 | sort -z)
  n=${#files[@]}
  # Change every 7th file (~14%), move every 31st, remove every 43rd.
  for ((i = 0; i < n; i++)); do
    f=$out/${files[i]#./}
    [[ -f "$f" ]] || continue
    if ((i % 43 == 5)); then
      rm -f "$f"
    elif ((i % 31 == 3)); then
      mkdir -p "$out/opt/moved"
      mv "$f" "$out/opt/moved/$(basename "$f").moved"
    elif ((i % 7 == 0)); then
      size=$(stat -c %s "$f")
      rand_file "$f" $((size + 17))
    fi
  done
  for i in 3 6 9 12; do printf 'changed in %s\n' "$version" >>"$out/usr/share/doc/manual$i.txt"; done
  mkdir -p "$out/usr/share/new-in-$version"
  for i in $(seq 1 20); do rand_file "$out/usr/share/new-in-$version/file$i.bin" $((i * 1500)); done
  printf '%s\n' "$version" >"$out/etc/os-version"
  exit 0
fi

mkdir -p "$out"
cd "$out"
mkdir -p etc bin sbin usr/bin usr/lib/x86_64-linux-gnu usr/share/doc var/tmp var/log opt/app home/autoware boot
chmod 0755 etc bin sbin usr usr/bin usr/lib usr/share var opt
chmod 1777 var/tmp
chmod 0750 var/log

cat >etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
autoware:x:1000:1000:Autoware:/home/autoware:/bin/sh
ota-svc:x:1234:1234::/nonexistent:/usr/sbin/nologin
P
cat >etc/group <<'G'
root:x:0:
daemon:x:1:
autoware:x:1000:
ota-svc:x:1234:
G
printf 'ecu-sample\n' >etc/hostname
printf '127.0.0.1 localhost\n' >etc/hosts
printf 'nameserver 127.0.0.53\n' >etc/resolv.conf
mkdir -p etc/netplan
printf 'network: {version: 2}\n' >etc/netplan/01.yaml
printf '# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=0000 / ext4 defaults 0 1\n' >etc/fstab
printf '%s\n' "$version" >etc/os-version

# Binaries: setuid, setgid, plain.
rand_file usr/bin/sudo-like 40000 && chmod 4755 usr/bin/sudo-like
rand_file usr/bin/wall-like 12000 && chown 0:1234 usr/bin/wall-like && chmod 2755 usr/bin/wall-like
for i in $(seq 1 60); do rand_file "bin/tool$i" $((i * 997 % 50000 + 100)); chmod 0755 "bin/tool$i"; done
# Libraries: a few bigger files.
for i in $(seq 1 12); do rand_file "usr/lib/x86_64-linux-gnu/libsample$i.so.1" $((i * 180000)); done
# Docs: many small files, some duplicated content at different paths.
for i in $(seq 1 250); do printf 'doc %d\n%s\n' "$((i % 40))" "$(head -c $((i * 13 % 900 + 1)) /dev/zero | tr '\0' 'x')" >"usr/share/doc/readme$i.txt"; done
# Compressible files >= 16 KiB (the image builder zstd-compresses these with --compress).
for i in $(seq 1 15); do
  for j in $(seq 1 $((i * 150))); do printf 'config line %d of file %d: key=value\n' "$j" "$i"; done \
    >"usr/share/doc/manual$i.txt"
done
# Owned by a non-root user.
for i in $(seq 1 40); do rand_file "home/autoware/data$i.bin" $((i * 2048)); done
chown -R 1000:1000 home/autoware
chmod 0700 home/autoware
# Empty files.
: >opt/app/empty1
: >opt/app/empty2
: >"opt/app/empty with space"
# Nasty names.
printf 'quote\n' >"opt/app/it's"
printf 'comma\n' >"opt/app/a,b,c"
printf 'colon\n' >"opt/app/a:b:c"
printf 'pct\n' >"opt/app/100%"
printf 'plus\n' >"opt/app/c++"
printf 'bslash\n' >'opt/app/back\slash'
printf 'utf8\n' >"opt/app/größe-ファイル"
printf 'sep\n' >"opt/app/tricky',' name"
printf 'endq\n' >"opt/app/ends-with-quote'"
mkdir -p "opt/app/dir with 'quotes', commas"
printf 'inside\n' >"opt/app/dir with 'quotes', commas/file"
# Symlinks: relative, absolute, dangling, to a dir, nasty target.
ln -s ../lib/x86_64-linux-gnu/libsample1.so.1 usr/bin/lib-link
ln -s /etc/hostname etc/hostname-abs
ln -s /does/not/exist opt/app/dangling
ln -s usr/share bin/share-dir
ln -s "it's" "opt/app/link-to-quote"
# Hard-link groups (same content, nlink 3 and 2).
rand_file usr/bin/busybox-like 70000 && chmod 0755 usr/bin/busybox-like
ln usr/bin/busybox-like bin/sh-like
ln usr/bin/busybox-like sbin/init-like
printf 'twin\n' >opt/app/twin-a && ln opt/app/twin-a opt/app/twin-b
# Kernel-ish files under /boot.
rand_file boot/vmlinuz-6.1.0-sample 300000
rand_file boot/initrd.img-6.1.0-sample 200000
