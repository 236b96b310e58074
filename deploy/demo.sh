#!/usr/bin/env bash
# The demo: a real single-ECU update, end to end, on this machine.
#   1. installs dependencies and builds (release)
#   2. makes a test PKI, sample rootfs trees v1 and v2, and signed OTA images of both
#   3. serves them with nginx over HTTPS on 127.0.0.1 (cookie-protected location)
#   4. starts the ECU's local otaproxy the way deploy/otaproxy.service does (from the ECU's
#      proxy_info.yaml: enable_local_ota_proxy, gateway → HTTPS to the server; its port, like
#      nginx's and otaclient's, is claimed in the test-port registry, test/lib/ports/ports.sh)
#   5. starts otaclient on directory slots running v1, asks it (otactl) to update to v2,
#      shows live progress, lets it "reboot" into the new slot and prints the result and what
#      went through otaproxy (its stats: misses, upstream fetches, the purge after success).
# Everything lives in a temp dir removed at the end (DEMO_KEEP=1 keeps it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash deploy/install-deps.sh
echo "== building (release)"
cmake --preset release >/dev/null
cmake --build build/release -j"$(nproc)" --target otaclient otactl ota-image otaproxy ota-test-ports \
  >/dev/null

export OTA_SOURCE_DIR=$root OTA_BIN_DIR=$root/build/release
E2E_KEEP=${DEMO_KEEP:-0}
# shellcheck source=../test/e2e/lib.sh
source test/e2e/lib.sh
e2e_init

log "making a test PKI (root CA → intermediate → signing cert)"
make_pki
log "making sample rootfs v1 and v2 (v2: ~15% of files changed, some moved, some new)"
make_rootfs v1 v1
make_rootfs v2 v2 v1
log "building signed OTA images (v2 zstd-compressed)"
build_image v1 v1
build_image v2 v2 --compress
start_nginx
log "nginx serving the images on https://127.0.0.1:$HTTPS_PORT (cookie-protected /protected/)"

setup_ecu autoware v1 v1
port_claim proxy_port || fail "no test port for otaproxy"
# shellcheck disable=SC2154 # proxy_port: set by port_claim
cat >"$E2E_WORK/autoware/config/proxy_info.yaml" <<YML
enable_local_ota_proxy: true
gateway: true
enable_local_ota_proxy_cache: true
local_ota_proxy_listen_addr: "127.0.0.1"
local_ota_proxy_listen_port: $proxy_port
YML
start_otaproxy autoware "$E2E_WORK/autoware/config" --ca-bundle "$CA_PEM"
log "otaproxy up on 127.0.0.1:$proxy_port (cache $E2E_WORK/autoware-cache), stats:"
otaproxy_stats autoware
start_otaclient autoware
log "otaclient up on 127.0.0.1:$OTA_PORT_autoware, running slot a"
otactl autoware status

url="https://127.0.0.1:$HTTPS_PORT/protected/v2"
log "requesting the update to v2 from $url"
otactl autoware update --ecu autoware --version v2 --url "$url" --cookies '{"ota-token": "secret"}'

log "live progress (the ECU reboots — restarts on the other slot — when done)"
otactl autoware status --watch --interval 0.5 || true
wait_until 120 "the ECU to come back after its reboot" status_in autoware SUCCESS FAILURE
otactl autoware status
grep -h "download proxy chosen" "$E2E_WORK/otaclient-autoware.log" | tail -1
grep -h "otaproxy cache" "$E2E_WORK/otaclient-autoware.log" | tail -1 || true
stats=$(otaproxy_stats autoware)
log "otaproxy stats after the update: $stats"

status=$(ota_status autoware)
version=$(status_field autoware '.firmware_version // ""')
fetched=$(blob_gets v2)
total=$(grep -c . "$E2E_WORK/www/v2/regulars.txt")
echo
if [[ $status == SUCCESS && $version == v2 ]]; then
  printf '\033[1;32mSUCCESS\033[0m: now running %s on slot %s\n' "$version" \
    "$(cat "$E2E_WORK/autoware/slots/boot/booted")"
  printf '%s of %s files had to be downloaded (%s); the rest was reused from the old slot\n' \
    "$fetched" "$total" "nginx access log"
  printf 'all through otaproxy: %s requests, %s cache misses, %s upstream fetches, %s entries' \
    "$(jq -r .requests <<<"$stats")" "$(jq -r .cache_misses <<<"$stats")" \
    "$(jq -r .upstream_fetches <<<"$stats")" "$(jq -r .committed <<<"$stats")"
  printf ' cached, then purged after the successful update (%s left)\n' \
    "$(jq -r .cache_entries <<<"$stats")"
else
  printf '\033[1;31m%s\033[0m (version %s)\n' "$status" "$version"
  exit 1
fi
