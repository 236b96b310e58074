#!/usr/bin/env bash
# End to end with OTA images v1 (OCI layout, SQLite tables, bundles, slices, zstd), real
# processes: nginx (HTTPS, the cookie wall under /protected/), otaclient with directory slots,
# otactl. The v2 tree gets xattrs, an overlayfs whiteout and hard links on top of the usual
# nasty names, modes and owners.
#   update_v1_e2e.sh success   v1 → v2 from a v1 image behind the cookie wall: slot b equals the
#                              tree (paths, modes, owners, link targets, hard-link groups,
#                              xattrs, whiteouts, contents); each blob fetched at most once and
#                              only blobs of contents not already on the ECU; then the same
#                              daemon installs a legacy image from another URL (v2 → v1)
#   update_v1_e2e.sh failures  foreign root, missing intermediate, tampered index.json, tampered
#                              metadata blob, future iat, a payload for another architecture,
#                              no payload for (ECU, dev): each FAILURE RECOVERABLE before the
#                              standby is touched; a tampered resource blob: FAILURE, no switch;
#                              the prd-only image installs with --release-key prd
#   update_v1_e2e.sh resume    server down mid-download, then the next update succeeds without
#                              fetching again the blobs verified before
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scenario=${1:?usage: update_v1_e2e.sh success|failures|resume}
e2e_init
command -v getfattr >/dev/null || { echo "SKIP: getfattr (package attr) not installed"; exit 77; }
make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
# v2x: v2 plus what only v1 images carry.
cp -a "$E2E_WORK/rootfs/v2" "$E2E_WORK/rootfs/v2x"
x=$E2E_WORK/rootfs/v2x
setfattr -n user.ota.test -v 0x00ff01 "$x/bin/tool3" || fail "no user xattrs on this fs"
setfattr -n user.dir -v "a b" "$x/etc"
setfattr -n trusted.overlay.opaque -v y "$x/usr/share" 2>/dev/null || true
mknod "$x/usr/share/.wh.gone" c 0 0
chown 1000:1000 "$x/usr/share/.wh.gone"
ln "$x/bin/tool5" "$x/bin/tool5.hardlink"
printf 'tiny\n' >"$x/etc/tiny-inlined"
KNOBS=(--ecu-ids ecu1,ecu2,ecu3,ecu4,ecu5 --bundle-target 65536 --bundle-min-members 4
  --slice-threshold 1000000 --slice-size 400000)
build_image_v1 v2x v2x "${KNOBS[@]}"
grep -qE '[1-9][0-9]* bundles' "$E2E_WORK/build-v2x.log" || fail "no bundles: $(cat "$E2E_WORK/build-v2x.log")"
grep -qE '[1-9][0-9]* sliced' "$E2E_WORK/build-v2x.log" || fail "no slices: $(cat "$E2E_WORK/build-v2x.log")"
grep -qE '[1-9][0-9]* compressed' "$E2E_WORK/build-v2x.log" || fail "nothing compressed"
build_image v1 v1-legacy
start_nginx

tree_x() { TREE_XATTRS=1 tree_of "$1"; }
expected_tree_v2x=$(tree_x "$E2E_WORK/rootfs/v2x")
grep -q 'xattr:user.ota.test=0x00ff01' <<<"$expected_tree_v2x" || fail "tree_of misses xattrs"

request_update() {  # request_update ECU VERSION URL COOKIES
  otactl "$1" update --ecu "$1" --version "$2" --url "$3" --cookies "$4"
}
assert_tree_on() {  # assert_tree_on ECU SLOT VERSION EXPECTED_TREE
  local ecu=$1 slot=$2 version=$3 expected=$4 slots=$E2E_WORK/$1/slots
  wait_until 180 "$ecu finishes" status_in "$ecu" SUCCESS FAILURE
  status_is "$ecu" SUCCESS || fail "$ecu: FAILURE: $(status_field "$ecu" '.failure_reason')"
  [[ "$(status_field "$ecu" '.firmware_version')" == "$version" ]] || fail "$ecu not on $version"
  [[ "$(cat "$slots/boot/booted")" == "$slot" ]] || fail "$ecu did not boot slot $slot"
  diff <(echo "$expected") <(tree_x "$slots/slot_$slot") >"$E2E_WORK/tree.diff" ||
    { head -40 "$E2E_WORK/tree.diff"; fail "slot $slot differs from the $version tree"; }
  for p in etc/hostname etc/hosts etc/resolv.conf; do
    cmp -s "$slots/slot_a/$p" "$slots/slot_b/$p" || fail "persistent $p not carried over"
  done
  [[ ! -e "$slots/slot_$slot/.ota-resources" && ! -e "$slots/slot_$slot/.ota-download" ]] ||
    fail "resources or download dir left on the new slot"
  log "$ecu: SUCCESS, slot $slot == $version tree ($(wc -l <<<"$expected") entries)"
}

case $scenario in
success)
  setup_ecu ecu1 v1 v1
  start_otaclient ecu1
  active_before=$(tree_x "$E2E_WORK/ecu1/slots/slot_a")
  url="https://127.0.0.1:$HTTPS_PORT/protected/v2x"
  out=$(request_update ecu1 v2 "$url" '{"ota-token": "secret"}') || fail "update rejected: $out"
  assert_tree_on ecu1 b v2 "$expected_tree_v2x"
  [[ "$(tree_x "$E2E_WORK/ecu1/slots/slot_a")" == "$active_before" ]] || fail "active slot changed"
  grep -q 'format=v1' "$E2E_WORK/otaclient-ecu1.log" || fail "not detected as v1"
  counts=$(v1_blob_counts protected/v2x)
  top=$(head -1 <<<"$counts" | awk '{print $1}')
  ((top == 1)) || fail "a blob was fetched more than once: $(head -3 <<<"$counts")"
  got=$(wc -l <<<"$counts")
  all=$(find "$E2E_WORK/www/v2x/blobs/sha256" -type f | wc -l)
  ((got < all)) || fail "fetched $got of $all blobs: the delta reused nothing"
  # A content the ECU already has (unchanged in v2; random, so a plain blob) is never fetched.
  sha=$(sha256sum <"$E2E_WORK/rootfs/v1/usr/lib/x86_64-linux-gnu/libsample1.so.1" | cut -c1-64)
  [[ -f "$E2E_WORK/www/v2x/blobs/sha256/$sha" ]] || fail "libsample1 is not a plain blob"
  if grep -q "$sha" <<<"$counts"; then fail "fetched $sha although the ECU has it"; fi
  log "fetched $got of $all blobs, each once; unchanged contents not fetched"

  # The same daemon, now on v2 (slot b), installs a legacy image from another URL.
  out=$(request_update ecu1 v1 "https://127.0.0.1:$HTTPS_PORT/v1-legacy" '{}') ||
    fail "legacy update rejected: $out"
  wait_until 180 "legacy update finishes" status_in ecu1 SUCCESS FAILURE
  expected_tree_v1=$(tree_x "$E2E_WORK/rootfs/v1")
  wait_until 60 "ecu1 back on slot a" bash -c "[[ \$(cat '$E2E_WORK/ecu1/slots/boot/booted') == a ]]"
  assert_tree_on ecu1 a v1 "$expected_tree_v1"
  grep -q 'format=legacy' "$E2E_WORK/otaclient-ecu1.log" || fail "not detected as legacy"
  ;;

failures)
  https=https://127.0.0.1:$HTTPS_PORT
  setup_ecu ecu2 v1 v1
  start_otaclient ecu2
  slots=$E2E_WORK/ecu2/slots
  expect_refusal() {  # expect_refusal WHAT URL REASON_REGEX [standby_may_be_prepared]
    local what=$1 url=$2 reason=$3 prepared=${4:-no} before type msg
    before=$(tree_x "$slots/slot_a")
    request_update ecu2 v2 "$url" '{}' >/dev/null || fail "$what: update not accepted"
    wait_until 120 "$what → FAILURE" status_is ecu2 FAILURE
    type=$(status_field ecu2 '.failure_type')
    msg=$(status_field ecu2 '.failure_reason')
    [[ "$type" == RECOVERABLE ]] || fail "$what: failure type $type, want RECOVERABLE ($msg)"
    [[ "$msg" =~ $reason ]] || fail "$what: reason '$msg' does not match /$reason/"
    [[ "$(tree_x "$slots/slot_a")" == "$before" ]] || fail "$what: active slot changed"
    [[ ! -e "$slots/boot/next_boot" ]] || fail "$what: a boot switch was committed"
    if [[ $prepared == no ]]; then
      [[ ! -e "$slots/boot/slot_b/status" && -z "$(ls -A "$slots/slot_b" 2>/dev/null)" ]] ||
        fail "$what: the standby was touched before the refusal"
    fi
    log "$what: FAILURE RECOVERABLE: $msg"
  }
  bash "$OTA_SOURCE_DIR/deploy/gen-certs.sh" "$E2E_WORK/pki-other" >/dev/null
  cat "$E2E_WORK/pki-other/sign.pem" "$E2E_WORK/pki-other/interm.pem" >"$E2E_WORK/other-chain.pem"
  "$OTA_IMAGE" build --format v1 --rootfs "$x" --out "$E2E_WORK/www/foreign" --ecu-ids ecu2 \
    --key "$E2E_WORK/pki-other/sign.key" --cert "$E2E_WORK/other-chain.pem" >/dev/null
  expect_refusal "foreign root" "$https/foreign" 'not trusted by any root'
  "$OTA_IMAGE" build --format v1 --rootfs "$x" --out "$E2E_WORK/www/no-interm" --ecu-ids ecu2 \
    --key "$E2E_WORK/pki/sign.key" --cert "$E2E_WORK/pki/sign.pem" >/dev/null
  expect_refusal "missing intermediate" "$https/no-interm" 'issuer certificate'
  cp -a "$E2E_WORK/www/v2x" "$E2E_WORK/www/bad-index"
  sed -i 's/"ecu2"/"ecuX"/' "$E2E_WORK/www/bad-index/index.json"
  expect_refusal "tampered index.json" "$https/bad-index" 'index.json.*sha256 mismatch'
  cp -a "$E2E_WORK/www/v2x" "$E2E_WORK/www/bad-blob"
  ft=$(jq -r '.file_table.digest' "$E2E_WORK/www/bad-blob/blobs/sha256/$(jq -r \
    '.config.digest' "$E2E_WORK/www/bad-blob/blobs/sha256/$(jq -r \
    '.manifests[] | select(.annotations["vnd.tier4.pilot-auto.platform.ecu"] == "ecu2") | .digest' \
    "$E2E_WORK/www/bad-blob/index.json" | cut -c8-)" | cut -c8-)" | cut -c8-)
  printf 'X' | dd of="$E2E_WORK/www/bad-blob/blobs/sha256/$ft" bs=1 seek=100 conv=notrunc status=none
  expect_refusal "tampered file table" "$https/bad-blob" 'file table.*sha256 mismatch'
  build_image_v1 v2x future --ecu-ids ecu2 --iat $(($(date +%s) + 3600))
  expect_refusal "future iat" "$https/future" 'issued in the future'
  # A payload for another CPU, or none for (ecu2, dev): refused before the standby is touched.
  other_arch=aarch64
  [[ $(uname -m) == aarch64 ]] && other_arch=x86_64
  build_image_v1 v2x other-arch --ecu-ids ecu2 --architecture "$other_arch"
  expect_refusal "another architecture" "$https/other-arch" "is for $other_arch"
  build_image_v1 v2x prd-only --ecu-ids ecu2,ecu4 --release-key prd
  expect_refusal "only a prd payload" "$https/prd-only" 'no image for ECU "ecu2"'
  # A resource blob tampered with: found while downloading, after the standby was prepared.
  cp -a "$E2E_WORK/www/v2x" "$E2E_WORK/www/bad-resource"
  # A content new in v2 (random, so stored as a plain blob): the ECU must download it.
  sha=$(sha256sum <"$x/usr/share/new-in-v2/file20.bin" | cut -c1-64)
  victim=$E2E_WORK/www/bad-resource/blobs/sha256/$sha
  [[ -f "$victim" ]] || fail "new-in-v2/file20.bin is not a plain blob of the image"
  printf 'garbage' | dd of="$victim" bs=1 seek=10 conv=notrunc status=none
  expect_refusal "tampered resource blob" "$https/bad-resource" 'sha256 mismatch' prepared
  # The prd-only image installs on an ECU whose daemon runs with --release-key prd.
  setup_ecu ecu4 v1 v1
  start_otaclient ecu4 --release-key prd
  request_update ecu4 v2 "$https/prd-only" '{}' >/dev/null || fail "prd update not accepted"
  assert_tree_on ecu4 b v2 "$expected_tree_v2x"
  ;;

resume)
  https=https://127.0.0.1:$HTTPS_PORT
  setup_ecu ecu3 v1 v1
  start_otaclient ecu3
  request_update ecu3 v2 "$https/slow/v2x" '{}' >/dev/null || fail "slow update not accepted"
  downloads_started() {
    local n
    n=$(status_field ecu3 '.update_status.downloaded_files_num // 0')
    [[ ${n:-0} -gt 3 ]]
  }
  wait_until 120 "downloads under way" downloads_started
  stop_nginx
  wait_until 120 "server down → FAILURE" status_is ecu3 FAILURE
  first=$(v1_blob_counts slow/v2x)
  start_nginx
  : >"$NGINX_LOG"
  request_update ecu3 v2 "https://127.0.0.1:$HTTPS_PORT/v2x" '{}' >/dev/null ||
    fail "update after the failure not accepted"
  assert_tree_on ecu3 b v2 "$expected_tree_v2x"
  second=$(v1_blob_counts v2x)
  # Resource blobs only: the metadata blobs (manifests, configs, tables) are fetched by every
  # attempt.
  www=$E2E_WORK/www/v2x
  {
    jq -r '.manifests[].digest' "$www/index.json"
    for m in $(jq -r '.manifests[] | select(.annotations["vnd.tier4.pilot-auto.platform.ecu"])
                 | .digest' "$www/index.json"); do
      c=$(jq -r '.config.digest' "$www/blobs/sha256/${m#sha256:}")
      echo "$c"
      jq -r '.file_table.digest, (.sys_config.digest // empty)' "$www/blobs/sha256/${c#sha256:}"
    done
  } | sed 's/^sha256://' | sort -u >"$E2E_WORK/metadata-blobs"
  blobs_of() { awk '{print $NF}' | sed 's#.*/##' | grep -v -x -F -f "$E2E_WORK/metadata-blobs" || true; }
  first_blobs=$(blobs_of <<<"$first" | sort -u)
  second_blobs=$(blobs_of <<<"$second" | sort -u)
  n_first=$(grep -c . <<<"$first_blobs" || true)
  n_second=$(grep -c . <<<"$second_blobs" || true)
  again=$(comm -12 <(echo "$first_blobs") <(echo "$second_blobs") | grep -c . || true)
  # A blob nginx finished sending may still have been in flight on the ECU when the first attempt
  # failed (the fetcher drops its other transfers then): at most --download-parallel (16) of them.
  ((again <= 16 && again < n_first)) ||
    fail "resume: $again of the $n_first resource blobs of the first attempt were fetched again"
  union=$((n_first + n_second - again))
  resumed=$(grep -o 'delta: done.*resumed=[0-9]*' "$E2E_WORK/otaclient-ecu3.log" | tail -1 |
    grep -o 'resumed=[0-9]*' || true)
  intermediates=$(grep -o 'intermediates_resumed=[0-9]*' "$E2E_WORK/otaclient-ecu3.log" | tail -1 || true)
  log "resume: first attempt $n_first resource blobs, second $n_second, $again of them again; $((union - n_second)) verified before were kept ($resumed contents, $intermediates)"
  ;;
*) fail "unknown scenario $scenario" ;;
esac
log "PASS $scenario"
