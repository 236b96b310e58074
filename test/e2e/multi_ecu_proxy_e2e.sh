#!/usr/bin/env bash
# Multi-ECU update through otaproxy, real processes: four otaclient daemons on 127.0.0.1-4 with
# directory slots, the main ECU's otaproxy (started the way deploy/otaproxy.service starts it:
# from the main's proxy_info.yaml, gateway: https to nginx with the test CA), one nginx.
#
#   main (127.0.0.1, otaproxy) ─┬─ sub1 (127.0.0.2) ── sub1a (127.0.0.4)
#                               └─ sub2 (127.0.0.3)
#
# The main downloads through its local otaproxy (enable_local_ota_proxy: true, chosen
# automatically); the secondaries have it as upper_ota_proxy. The image is zstd-compressed and
# served under /protected/ (cookie required), so cookies and file_compression_alg go through.
#
#   multi_ecu_proxy_e2e.sh tree    all four updated at once: all SUCCESS on v2, nginx served
#                                  every blob exactly once, the main purged its otaproxy's
#                                  cache after the fleet succeeded
#   multi_ecu_proxy_e2e.sh repair  sub2 updated (fills the cache), one cache entry corrupted on
#                                  disk, then sub1 updated: its hash mismatch is retried with
#                                  retry_caching, otaproxy refetches that one blob (nginx: 2
#                                  GETs for it, 1 for every other), the entry is repaired,
#                                  sub1 SUCCESS
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scenario=${1:?usage: multi_ecu_proxy_e2e.sh tree|repair}
e2e_init
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
[[ -x "$OTAPROXY" ]] || fail "missing binary $OTAPROXY (build first)"
make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
build_image v2 v2 --compress  # served as /protected/v2 too (the harness's cookie check)
start_nginx
expected_tree_v1=$(tree_of "$E2E_WORK/rootfs/v1")
expected_tree_v2=$(tree_of "$E2E_WORK/rootfs/v2")

ECUS=(main sub1 sub2 sub1a)
declare -A IP=([main]=127.0.0.1 [sub1]=127.0.0.2 [sub2]=127.0.0.3 [sub1a]=127.0.0.4)
declare -A CHILDREN=([main]="sub1 sub2" [sub1]="sub1a" [sub2]="" [sub1a]="")
declare -A PORT PID
TREE_FLAGS=(--poll-interval-active 0.2 --poll-interval-idle 1 --secondary-timeout 2
  --ecu-drop-timeout 3 --secondary-grace-period 600)
tree_setup v1 v1

# Named in every ECU's proxy_info.yaml before otaproxy starts: a registry claim.
port_claim proxy_port || fail "no test port for otaproxy"
# shellcheck disable=SC2154 # proxy_port: set by port_claim
cat >"$E2E_WORK/main/config/proxy_info.yaml" <<YML
enable_local_ota_proxy: true
gateway: true
enable_local_ota_proxy_cache: true
local_ota_proxy_listen_addr: "127.0.0.1"
local_ota_proxy_listen_port: $proxy_port
YML
for ecu in sub1 sub2 sub1a; do
  cat >"$E2E_WORK/$ecu/config/proxy_info.yaml" <<YML
enable_local_ota_proxy: false
gateway: false
enable_local_ota_proxy_cache: false
upper_ota_proxy: "http://127.0.0.1:$proxy_port"
YML
done
start_otaproxy main "$E2E_WORK/main/config" --ca-bundle "$CA_PEM"
tree_start
log "tree up, otaproxy on 127.0.0.1:$proxy_port"

url=https://127.0.0.1:$HTTPS_PORT/protected/v2
REQUEST_ID=e2e-proxy-$scenario-$$
# blob_counts: "count url" per blob URL nginx answered (data/ and data.zst/ of the image).
blob_counts() {
  { grep -oE "req=\"GET [^ ]*/protected/v2/data(\.zst)?/[^ ]*" "$NGINX_LOG" || true; } |
    sort | uniq -c | sort -rn
}
# Every ECU's downloads went through the proxy: nginx saw only the proxy's TLS requests.
assert_only_proxy_fetched() {
  grep -q "^port=$HTTP_PORT " "$NGINX_LOG" && fail "something fetched over plain http from nginx"
  grep -E 'req="GET [^ ]*/protected/' "$NGINX_LOG" | grep -vq 'status=200 ' &&
    fail "nginx answered an image request with an error (cookie lost?)"
  return 0
}
otaproxy_stat() { otaproxy_stats main | jq -r ".$1"; }

case $scenario in
tree)
  out=$(tree_request_update v2 "$url" "$REQUEST_ID" main sub1 sub2 sub1a) ||
    fail "update not accepted: $out"
  for ecu in sub1a sub2 sub1 main; do tree_assert_v2_on_b "$ecu"; done
  grep -q 'local otaproxy is listening' "$E2E_WORK/otaclient-main.log" ||
    fail "the main did not choose its local otaproxy"
  for ecu in sub1 sub2 sub1a; do
    grep -q "proxy=http://127.0.0.1:$proxy_port" "$E2E_WORK/otaclient-$ecu.log" ||
      fail "$ecu did not download through the main's otaproxy"
  done
  assert_only_proxy_fetched
  counts=$(blob_counts)
  unique=$(wc -l <<<"$counts")
  if [[ -z "$counts" ]] || ((unique < 10)); then fail "too few blob GETs at nginx: $counts"; fi
  top=$(head -1 <<<"$counts" | awk '{print $1}')
  ((top == 1)) || fail "a blob was fetched more than once from nginx: $(head -3 <<<"$counts")"
  grep -q 'data.zst/' <<<"$counts" || fail "no zstd blob was fetched"
  log "nginx served each of $unique blobs exactly once for four ECUs"
  # The main purges its otaproxy's cache once every ECU succeeded (before its own reboot).
  grep -q 'otaproxy cache purged' "$E2E_WORK/otaclient-main.log" ||
    fail "the main did not purge its otaproxy's cache"
  entries=$(otaproxy_stat cache_entries)
  [[ "$entries" == 0 ]] || fail "otaproxy still holds $entries entries after the purge"
  log "otaproxy stats: $(otaproxy_stats main | tr -d '\n')"
  ;;

repair)
  out=$(tree_request_update v2 "$url" "$REQUEST_ID" sub2) || fail "update not accepted: $out"
  tree_assert_v2_on_b sub2
  first=$(blob_counts)
  # Corrupt one uncompressed cache entry in place (same size, first byte flipped).
  # -quit, not `| head -1`: under pipefail, find's SIGPIPE would end the test silently.
  victim=$(find "$E2E_WORK/main-cache/data" -type f -regextype egrep \
    -regex '.*/[0-9a-f]{64}' -size +0 -print -quit)
  [[ -n "$victim" ]] || fail "no uncompressed entry in the otaproxy cache"
  sha=$(basename "$victim")
  byte=$(od -An -tu1 -N1 "$victim" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "\\$(printf '%03o' $(((byte + 1) % 256)))" |
    dd of="$victim" bs=1 count=1 conv=notrunc status=none
  [[ "$(sha256sum <"$victim" | cut -c1-64)" != "$sha" ]] || fail "corruption did not change $victim"
  out=$(tree_request_update v2 "$url" "$REQUEST_ID-2" sub1) || fail "update not accepted: $out"
  tree_assert_v2_on_b sub1
  [[ "$(sha256sum <"$victim" | cut -c1-64)" == "$sha" ]] || fail "cache entry $sha not repaired"
  counts=$(blob_counts)
  twice=$(awk '$1 == 2' <<<"$counts" | wc -l)
  more=$(awk '$1 > 2' <<<"$counts" | wc -l)
  [[ "$twice" == 1 && "$more" == 0 ]] ||
    fail "want exactly one blob fetched twice, got: $(head -3 <<<"$counts")"
  [[ "$(wc -l <<<"$counts")" == "$(wc -l <<<"$first")" ]] || fail "sub1 fetched new blobs"
  log "corrupt entry $sha repaired through retry_caching; sub1 SUCCESS"
  ;;

*) fail "unknown scenario $scenario" ;;
esac
