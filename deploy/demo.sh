#!/usr/bin/env bash
# The demo: a real single-ECU update, end to end, on this machine.
#   1. installs dependencies and builds (release)
#   2. makes a test PKI, sample rootfs trees v1 and v2, and signed OTA images of both
#   3. serves them with nginx over HTTPS on 127.0.0.1 (cookie-protected location)
#   4. starts otaclient on directory slots running v1, asks it (otactl) to update to v2,
#      shows live progress, lets it "reboot" into the new slot and prints the result.
# Everything lives in a temp dir removed at the end (DEMO_KEEP=1 keeps it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash deploy/install-deps.sh
echo "== building (release)"
cmake --preset release >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null

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
else
  printf '\033[1;31m%s\033[0m (version %s)\n' "$status" "$version"
  exit 1
fi
