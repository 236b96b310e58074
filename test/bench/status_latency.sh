#!/usr/bin/env bash
# Status latency of a main ECU with 7 secondaries in two levels (8 otaclient processes on
# 127.0.0.1-127.0.0.8, directory slots), idle and during an update of all eight, next to a
# direct Status call on a single leaf ECU in the same run. Target: main p99 <= 5 ms.
#
#   main (.1) ─┬─ s1 (.2) ─┬─ s1a (.5)
#              │           └─ s1b (.6)
#              ├─ s2 (.3) ─┬─ s2a (.7)
#              │           └─ s2b (.8)
#              └─ s3 (.4)
#
# Usage (root; built tree with otaclient, otactl, ota-image, status_latency_bench):
#   sudo OTA_BIN_DIR=build/release test/bench/status_latency.sh [CALLS]
set -euo pipefail
OTA_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
source "$OTA_SOURCE_DIR/test/e2e/lib.sh"
BENCH=$OTA_BIN_DIR/test/bench/status_latency_bench
CALLS=${1:-2000}

e2e_init
[[ -x "$BENCH" ]] || fail "missing $BENCH (build first)"
make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
build_image v2 v2
start_nginx

ECUS=(main s1 s2 s3 s1a s1b s2a s2b)
declare -A IP=([main]=127.0.0.1 [s1]=127.0.0.2 [s2]=127.0.0.3 [s3]=127.0.0.4 [s1a]=127.0.0.5
  [s1b]=127.0.0.6 [s2a]=127.0.0.7 [s2b]=127.0.0.8)
declare -A CHILDREN=([main]="s1 s2 s3" [s1]="s1a s1b" [s2]="s2a s2b")
declare -A PORT
for ecu in "${ECUS[@]}"; do PORT[$ecu]=$(free_port); done
for ecu in "${ECUS[@]}"; do
  setup_ecu "$ecu" v1 v1
  {
    echo "format_version: 1"
    echo "ecu_id: \"$ecu\""
    echo "ip_addr: \"${IP[$ecu]}\""
    echo "bootloader: dir"
    [[ $ecu == main ]] && echo "available_ecu_ids: [$(IFS=,; echo "${ECUS[*]}")]"
    if [[ -n "${CHILDREN[$ecu]:-}" ]]; then
      echo "secondaries:"
      for child in ${CHILDREN[$ecu]}; do
        echo "  - {ecu_id: \"$child\", ip_addr: \"${IP[$child]}\", port: ${PORT[$child]}}"
      done
    fi
  } >"$E2E_WORK/$ecu/config/ecu_info.yml"
done

ctl() {
  local ecu=$1 sub=$2
  shift 2
  "$OTACTL" "$sub" --target "${IP[$ecu]}:${PORT[$ecu]}" "$@"
}
ctl_ok() { ctl "$1" status --json >/dev/null 2>&1 || [[ $? -ne 4 ]]; }
main_json() { ctl main status --json 2>/dev/null || true; }  # otactl exits 3 while updating
count_v2() { main_json | jq '.ecu_v2 | length'; }
count_updating() { main_json | jq '[.ecu_v2[] | select(.ota_status == "UPDATING")] | length'; }
all_seen() { [[ "$(count_v2)" == 8 ]]; }
all_updating() { [[ "$(count_updating)" == 8 ]]; }

for ecu in s1a s1b s2a s2b s3 s1 s2 main; do
  "$OTACLIENT" --config-dir "$E2E_WORK/$ecu/config" --certs-dir "$E2E_WORK/pki/certs" \
    --boot-backend dir --dir-slots-root "$E2E_WORK/$ecu/slots" --listen-port "${PORT[$ecu]}" \
    --ca-bundle "$CA_PEM" --no-reboot >>"$E2E_WORK/otaclient-$ecu.log" 2>&1 &
  E2E_PIDS+=($!)
  wait_until 30 "otaclient $ecu answers" ctl_ok "$ecu"
done
wait_until 30 "main lists all 8 ECUs" all_seen

bench() { "$BENCH" --target "${IP[$1]}:${PORT[$1]}" --calls "$CALLS" --label "$2"; }
results=()
results+=("$(bench main "idle     main (8 ECUs, fan-out cache)")")
results+=("$(bench s3 "idle     single ECU s3 (direct)")")

args=()
for ecu in "${ECUS[@]}"; do
  args+=(--ecu "$ecu" --version v2 --url "https://127.0.0.1:$HTTPS_PORT/slow/v2" --cookies '{}')
done
ctl main update "${args[@]}" --timeout 10 >/dev/null || fail "update not accepted"
wait_until 30 "all 8 UPDATING" all_updating
results+=("$(bench main "updating main (8 ECUs, fan-out cache)")")
results+=("$(bench s3 "updating single ECU s3 (direct)")")
[[ "$(count_updating)" == 8 ]] || log "note: not every ECU was still updating at the end"

echo
echo "Status latency, $CALLS sequential calls each ($(nproc) cores):"
printf '  %s\n' "${results[@]}"
