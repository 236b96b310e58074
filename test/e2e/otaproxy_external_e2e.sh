#!/usr/bin/env bash
# otaproxy's external caches end to end, real parts: nginx (HTTPS, cookie-protected image), a
# real otaclient (directory slots) updating v1 → v2 through its local otaproxy, and the cache
# holding the image's blobs in the offline-image layout (data/<sha256>, data/<sha256>.zst for
# the blobs the image has compressed).
#
#   otaproxy_external_e2e.sh usb   a real ext4 file system labelled ota_cache_src on a loop
#                                  device: otaproxy --mount-external-cache finds it (blkid),
#                                  mounts it read-only (ro,nosuid,nodev,noexec) at a test mount
#                                  point, the update makes ZERO blob GETs at nginx, stats count
#                                  external_hits, nothing is written to the stick, and it is
#                                  unmounted when otaproxy stops; then the unit's root helper
#                                  (--external-cache-helper mount/unmount) with the device
#                                  mounted elsewhere already: bind-mounted read-only, unmounted
#   otaproxy_external_e2e.sh nfs   a tmpfs mount standing in for the NFS share
#                                  (external_nfs_cache_mnt_point): ZERO blob GETs, stats count
#                                  external_nfs_hits; the same path as a plain directory (not a
#                                  mount point) is ignored with a warning
#
# Needs root and loop devices (usb) / mount (nfs): skipped (77) otherwise, saying why. Every
# mount and the loop device are undone in the EXIT trap, also on failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scenario=${1:?usage: otaproxy_external_e2e.sh usb|nfs}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (loop devices, mount)"; exit 77; }
for tool in jq losetup mkfs.ext4 blkid findmnt mountpoint sha256sum; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
if [[ $scenario == usb && ! -e /dev/loop-control ]]; then
  echo "SKIP: no loop device support (/dev/loop-control missing)"
  exit 77
fi
e2e_init
[[ -x "$OTAPROXY" ]] || fail "missing binary $OTAPROXY (build first)"

LOOP_DEV=
MOUNTS=()  # mount points this test mounted (or made otaproxy mount), unmounted in the trap
external_cleanup() {
  local pid m
  # Processes first (otaproxy holds the mount), then the mounts, then the loop device, then
  # the work dir (e2e_cleanup): never `rm -rf` across a mount.
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  E2E_PIDS=()
  for m in "${MOUNTS[@]}"; do
    while mountpoint -q "$m" 2>/dev/null; do umount "$m" 2>/dev/null || umount -l "$m" || break; done
  done
  if [[ -n "$LOOP_DEV" ]]; then losetup -d "$LOOP_DEV" 2>/dev/null || true; fi
  e2e_cleanup
}
trap external_cleanup EXIT

make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
build_image v2 v2 --compress
start_nginx
expected_tree_v2=$(tree_of "$E2E_WORK/rootfs/v2")

# offline_layout DEST IMAGE_DIR: the image's blobs as DEST/data/<sha256>[.zst] (the layout of
# the offline-image builder's output, which the USB and NFS caches hold).
offline_layout() {
  local dest=$1/data image=$2 f sha
  mkdir -p "$dest"
  if [[ -d "$image/data.zst" ]]; then
    find "$image/data.zst" -type f -name '*.zst' -exec cp {} "$dest/" \;
  fi
  while IFS= read -r -d '' f; do
    sha=$(sha256sum <"$f" | cut -c1-64)
    [[ -e "$dest/$sha" ]] || cp "$f" "$dest/$sha"
  done < <(find "$image/data" -type f -print0)
  # A stick made by the offline builder from another image may hold only the .zst form of a
  # file this image keeps uncompressed: otaproxy (ours and today's) answers the uncompressed
  # request with it and says so (file_compression_alg=zst), and otaclient must decode it. One
  # needed blob the image has uncompressed is kept on the stick as .zst only.
  local plain=()  # (no `| head`: under pipefail its early exit would kill comm with SIGPIPE)
  mapfile -t plain < <(comm -23 <(needed_digests) \
    <(find "$dest" -name '*.zst' -printf '%f\n' | sed 's/\.zst$//' | sort))
  sha=${plain[0]:-}
  [[ -n "$sha" ]] || fail "every needed blob is compressed in the image: the adopted .zst goes untested"
  zstd -q --rm "$dest/$sha" -o "$dest/$sha.zst"
  log "the cache holds only $sha.zst for a blob the image has uncompressed"
  chmod -R a+rX "$1"
}

# Content the update fetches: distinct non-empty digests of v2 absent from v1 (the v1 slot).
needed_digests() {
  local empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  comm -23 <(cut -d, -f5 "$E2E_WORK/www/v2/regulars.txt" | grep -v "$empty" | sort -u) \
    <(cut -d, -f5 "$E2E_WORK/rootfs/v1.regulars" | sort -u)
}

# The ECU: its otaclient downloads through its local otaproxy (enable_local_ota_proxy), which
# is the gateway (https to nginx). PROXY_YAML_EXTRA: more proxy_info.yaml lines.
setup_ecu ecu1 v1 v1
port_claim proxy_port || fail "no test port for otaproxy"
write_proxy_info() {
  # shellcheck disable=SC2154 # proxy_port: set by port_claim
  cat >"$E2E_WORK/ecu1/config/proxy_info.yaml" <<YML
enable_local_ota_proxy: true
local_ota_proxy_listen_addr: "127.0.0.1"
local_ota_proxy_listen_port: $proxy_port
${PROXY_YAML_EXTRA:-}
YML
}

# SUCCESS on v2 (after the re-exec that stands for the reboot), or FAILURE.
update_ended() {
  status_is ecu1 FAILURE ||
    { status_is ecu1 SUCCESS && [[ "$(status_field ecu1 .firmware_version)" == v2 ]]; }
}
# run_update: v1 → v2 through the local otaproxy; SUCCESS on slot b with the v2 tree.
run_update() {
  local slots=$E2E_WORK/ecu1/slots
  start_otaclient ecu1
  otactl ecu1 update --ecu ecu1 --version v2 --url "https://127.0.0.1:$HTTPS_PORT/protected/v2" \
    --cookies '{"ota-token": "secret"}' >/dev/null || fail "update not accepted"
  wait_until 180 "ecu1 finishes" update_ended
  status_is ecu1 SUCCESS || fail "ecu1: FAILURE: $(status_field ecu1 '.failure_reason // ""')"
  [[ "$(cat "$slots/boot/booted")" == b ]] || fail "ecu1 did not boot slot b"
  diff <(echo "$expected_tree_v2") <(tree_of "$slots/slot_b") >"$E2E_WORK/tree.diff" ||
    { head -20 "$E2E_WORK/tree.diff"; fail "slot b differs from the v2 tree"; }
  grep -q 'local otaproxy is listening' "$E2E_WORK/otaclient-ecu1.log" ||
    fail "otaclient did not download through its local otaproxy"
}
stat_of() { otaproxy_stats ecu1 | jq -r ".$1"; }
stop_proxy_pid() {  # SIGTERM (otaproxy unmounts what it mounted), reaped, off the PID list
  local pid=$1 kept=() p
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${E2E_PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  E2E_PIDS=("${kept[@]}")
}

# The v1 slot's digests, for needed_downloads (the v1 image is not built: hash the tree).
while IFS= read -r -d '' f; do
  printf 'x,x,x,x,%s\n' "$(sha256sum <"$f" | cut -c1-64)"
done < <(find "$E2E_WORK/rootfs/v1" -type f -print0) >"$E2E_WORK/rootfs/v1.regulars"
want=$(needed_digests | wc -l)
((want > 5)) || fail "the v2 image changes too few files ($want) for a meaningful test"
# Some of them are compressed in the image: the .zst form is served too.
want_zst=$(comm -12 <(needed_digests) \
  <(find "$E2E_WORK/www/v2/data.zst" -name '*.zst' -printf '%f\n' | sed 's/\.zst$//' | sort))
want_zst=$(grep -c . <<<"$want_zst" || true)
((want_zst > 0)) || fail "no compressed blob among the downloads: the .zst form would go untested"
log "the update needs $want blobs, $want_zst of them compressed (.zst)"

case $scenario in
usb)
  # No other device may carry the label: otaproxy would take the first one.
  others=$(blkid -o device -t LABEL=ota_cache_src || true)
  [[ -z "$others" ]] || fail "a device labelled ota_cache_src exists already ($others): cannot test"
  offline_layout "$E2E_WORK/stick" "$E2E_WORK/www/v2"
  zst_blobs=$(find "$E2E_WORK/stick/data" -name '*.zst' | wc -l)
  ((zst_blobs > 0)) || fail "the image has no compressed blob: the .zst form would go untested"
  truncate -s 64M "$E2E_WORK/stick.img"
  mkfs.ext4 -q -L ota_cache_src -d "$E2E_WORK/stick" "$E2E_WORK/stick.img"
  LOOP_DEV=$(losetup --find --show "$E2E_WORK/stick.img") ||
    { echo "SKIP: no free loop device"; exit 77; }
  log "USB stand-in: $LOOP_DEV (ext4, label ota_cache_src, $(find "$E2E_WORK/stick/data" -type f | wc -l) blobs, $zst_blobs .zst)"
  MNT=$E2E_WORK/run/otaclient/mnt/external_cache
  MOUNTS+=("$MNT")
  write_proxy_info
  image_sum=$(sha256sum <"$E2E_WORK/stick.img")
  start_otaproxy ecu1 "$E2E_WORK/ecu1/config" --ca-bundle "$CA_PEM" --mount-external-cache \
    --external-cache-mount-point "$MNT"
  proxy_pid=${E2E_PIDS[-1]}
  mountpoint -q "$MNT" || fail "otaproxy did not mount the USB cache at $MNT"
  [[ "$(findmnt -no SOURCE "$MNT")" == "$LOOP_DEV" ]] || fail "$MNT is not $LOOP_DEV"
  opts=$(findmnt -no OPTIONS "$MNT")
  for o in ro nosuid nodev noexec; do
    [[ ",$opts," == *",$o,"* ]] || fail "USB cache mounted without $o: $opts"
  done
  [[ $(stat_of usb_cache) == true ]] || fail "otaproxy does not use the USB cache"
  run_update
  gets=$(blob_gets v2)
  [[ $gets == 0 ]] || fail "$gets blob GETs reached nginx despite the USB cache"
  hits=$(stat_of external_hits)
  ((hits == want)) || fail "external_hits $hits, expected one per downloaded blob ($want)"
  [[ $(stat_of cache_hits) == 0 ]] || fail "local cache hits: the USB cache was not first"
  log "update through otaproxy: 0 blob GETs at nginx, $hits blobs from the USB cache"
  grep -q "USB cache mounted read-only.*$LOOP_DEV" "$E2E_WORK/otaproxy-ecu1.log" ||
    fail "otaproxy's log does not name the device it mounted"
  stop_proxy_pid "$proxy_pid"
  ! mountpoint -q "$MNT" || fail "the USB cache is still mounted after otaproxy stopped"
  # Nothing was written to the stick: the image file is byte for byte what mkfs made.
  [[ "$(sha256sum <"$E2E_WORK/stick.img")" == "$image_sum" ]] || fail "the USB stick was written"
  log "otaproxy stopped: USB cache unmounted, the stick unchanged"

  # The unit's way: a root helper mounts for the service and unmounts after it. The device is
  # mounted elsewhere already (an automounter): bound read-only instead of mounted twice.
  PRE=$E2E_WORK/automount
  MOUNTS+=("$PRE")
  mkdir -p "$PRE"
  mount -o ro "$LOOP_DEV" "$PRE"
  "$OTAPROXY" --external-cache-helper mount --config-dir "$E2E_WORK/ecu1/config" \
    --external-cache-mount-point "$MNT" >>"$E2E_WORK/otaproxy-helper.log" 2>&1 ||
    fail "helper mount failed: $(tail -3 "$E2E_WORK/otaproxy-helper.log")"
  mountpoint -q "$MNT" || fail "helper did not mount $MNT: $(tail -3 "$E2E_WORK/otaproxy-helper.log")"
  opts=$(findmnt -no OPTIONS "$MNT")
  [[ ",$opts," == *",ro,"* && ",$opts," == *",noexec,"* ]] || fail "bind mount not ro/noexec: $opts"
  grep -q "bind of $PRE" "$E2E_WORK/otaproxy-helper.log" || fail "helper did not bind-mount"
  [[ -e "$MNT/data" ]] || fail "bind mount shows no data/"
  "$OTAPROXY" --external-cache-helper unmount --external-cache-mount-point "$MNT" \
    >>"$E2E_WORK/otaproxy-helper.log" 2>&1 || fail "helper unmount failed"
  ! mountpoint -q "$MNT" || fail "helper did not unmount $MNT"
  # Switched off by the environment: the helper mounts nothing.
  OTACLIENT_OTAPROXY_ENABLE_EXTERNAL_CACHE=false "$OTAPROXY" --external-cache-helper mount \
    --config-dir "$E2E_WORK/ecu1/config" --external-cache-mount-point "$MNT" \
    >>"$E2E_WORK/otaproxy-helper.log" 2>&1 || fail "helper failed when switched off"
  ! mountpoint -q "$MNT" || fail "helper mounted although switched off"
  umount "$PRE"
  log "helper: bind-mounted read-only when mounted elsewhere, unmounted; off by environment"
  ;;

nfs)
  # A tmpfs mount stands in for the NFS share: what otaproxy needs is a mount point with the
  # layout; it never writes to it.
  NFS=$E2E_WORK/nfs
  MOUNTS+=("$NFS")
  mkdir -p "$NFS"
  mount -t tmpfs -o size=64m,mode=0755 tmpfs "$NFS"
  offline_layout "$NFS" "$E2E_WORK/www/v2"
  before=$(cd "$NFS" && find . -type f -print0 | xargs -0 sha256sum | sort)
  PROXY_YAML_EXTRA="external_nfs_cache_mnt_point: \"$NFS\""
  write_proxy_info
  start_otaproxy ecu1 "$E2E_WORK/ecu1/config" --ca-bundle "$CA_PEM"
  proxy_pid=${E2E_PIDS[-1]}
  [[ $(stat_of nfs_cache) == true ]] || fail "otaproxy does not use the NFS cache"
  run_update
  gets=$(blob_gets v2)
  [[ $gets == 0 ]] || fail "$gets blob GETs reached nginx despite the NFS cache"
  hits=$(stat_of external_nfs_hits)
  ((hits == want)) || fail "external_nfs_hits $hits, expected one per downloaded blob ($want)"
  [[ "$(cd "$NFS" && find . -type f -print0 | xargs -0 sha256sum | sort)" == "$before" ]] ||
    fail "the NFS cache was written to"
  log "update through otaproxy: 0 blob GETs at nginx, $hits blobs from the NFS cache"

  # The same content in a plain directory (not a mount point): ignored, with a warning.
  stop_proxy_pid "$proxy_pid"
  PLAIN_DIR=$E2E_WORK/not-mounted
  offline_layout "$PLAIN_DIR" "$E2E_WORK/www/v2"
  PROXY_YAML_EXTRA="external_nfs_cache_mnt_point: \"$PLAIN_DIR\""
  write_proxy_info
  start_otaproxy ecu1 "$E2E_WORK/ecu1/config" --ca-bundle "$CA_PEM"
  [[ $(stat_of nfs_cache) == false ]] || fail "a directory that is no mount point was used"
  grep -q "external_nfs_cache_mnt_point is not a mount point: NFS cache ignored" \
    "$E2E_WORK/otaproxy-ecu1.log" || fail "no warning for the unmounted NFS path"
  # A blob whose path needs no URL encoding.
  blob=$(find "$E2E_WORK/www/v2/data" -type f -size +0 -regextype egrep \
    -regex "$E2E_WORK/www/v2/data/[A-Za-z0-9._/-]+" -print -quit)
  [[ -n "$blob" ]] || fail "no plainly named blob in the image"
  sha=$(sha256sum <"$blob" | cut -c1-64)
  rel=${blob#"$E2E_WORK/www/v2/"}
  curl -sf -x "http://127.0.0.1:$proxy_port" -b "ota-token=secret" \
    -H "Ota-File-Cache-Control: file_sha256=$sha" -o "$E2E_WORK/got" \
    "http://127.0.0.1:$HTTPS_PORT/protected/v2/$rel" || fail "fetch through otaproxy failed"
  cmp -s "$E2E_WORK/got" "$blob" || fail "fetched bytes differ"
  [[ $(stat_of external_nfs_hits) == 0 && $(blob_gets v2) == 1 ]] ||
    fail "the unmounted path was read (nfs hits $(stat_of external_nfs_hits), GETs $(blob_gets v2))"
  log "not a mount point: ignored with a warning, the blob came from upstream"
  ;;

*) fail "unknown scenario $scenario" ;;
esac
log "PASS otaproxy external $scenario"
