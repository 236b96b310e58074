#!/usr/bin/env bash
# Status latency of a main ECU with 7 secondaries in two levels (8 otaclient processes on
# 127.0.0.1-127.0.0.8, directory slots), idle and during an update of all eight, next to a
# direct Status call on a single leaf ECU in the same run. Target: main p99 <= 5 ms.
# Then many callers at once (a fleet backend, operators and pollers): 1,000 calls with 128 in
# flight on the main ECU, idle and during the update. Targets: no call refused, p99 <= 5 ms idle
# and <= 10 ms updating.
#
#   main (.1) ─┬─ s1 (.2) ─┬─ s1a (.5)
#              │           └─ s1b (.6)
#              ├─ s2 (.3) ─┬─ s2a (.7)
#              │           └─ s2b (.8)
#              └─ s3 (.4)
#
# Usage (root; built tree with otaclient, otactl, ota-image, status_latency_bench):
#   sudo OTA_BIN_DIR=build/release test/bench/status_latency.sh [CALLS]
# OTA_BENCH_UPDATE_SECONDS (20): how long the calls go on during the update;
# OTA_BENCH_OTACLIENT_ARGS: more otaclient flags (e.g. "--update-nice 0" for a paired run).
set -euo pipefail
OTA_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
source "$OTA_SOURCE_DIR/test/e2e/lib.sh"
BENCH=$OTA_BIN_DIR/test/bench/status_latency_bench
CALLS=${1:-2000}
UPDATE_SECONDS=${OTA_BENCH_UPDATE_SECONDS:-20}

e2e_init
[[ -x "$BENCH" ]] || fail "missing $BENCH (build first)"

# The ECUs' slots live on a freshly made ext4 file system, as a standby partition does after the
# update formats it. On a long-used file system full of deleted inodes (a CI machine's /tmp), the
# tail is ext4's inode allocator: the kernel spends milliseconds per create() in
# find_inode_bit/recently_deleted (perf), on both cores, whoever's process it is; the main ECU
# and the single ECU then show the same stalls. OTA_BENCH_FRESH_FS=0 measures in $TMPDIR as is.
FRESH_FS=""
if [[ "${OTA_BENCH_FRESH_FS:-1}" == 1 ]]; then
  FRESH_FS=$(mktemp -d "${TMPDIR:-/tmp}/ota-bench-fs.XXXXXX")
  release_fresh_fs() {
    e2e_cleanup
    umount "$FRESH_FS/mnt" 2>/dev/null || umount -l "$FRESH_FS/mnt" 2>/dev/null || true
    rm -rf "$FRESH_FS"
  }
  trap release_fresh_fs EXIT
  truncate -s 4G "$FRESH_FS/slots.img"
  mkfs.ext4 -q -F "$FRESH_FS/slots.img" || fail "mkfs.ext4 of the slots file system"
  mkdir -p "$FRESH_FS/mnt"
  mount -o loop "$FRESH_FS/slots.img" "$FRESH_FS/mnt" || fail "mount of the slots file system"
fi
make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
build_image v2 v2
start_nginx

ECUS=(main s1 s2 s3 s1a s1b s2a s2b)
declare -A IP=([main]=127.0.0.1 [s1]=127.0.0.2 [s2]=127.0.0.3 [s3]=127.0.0.4 [s1a]=127.0.0.5
  [s1b]=127.0.0.6 [s2a]=127.0.0.7 [s2b]=127.0.0.8)
declare -A CHILDREN=([main]="s1 s2 s3" [s1]="s1a s1b" [s2]="s2a s2b" [s3]="" [s1a]="" [s1b]=""
  [s2a]="" [s2b]="")
declare -A PORT PID
read -r -a TREE_FLAGS <<<"--no-reboot ${OTA_BENCH_OTACLIENT_ARGS:-}"
if [[ -n "$FRESH_FS" ]]; then
  for ecu in "${ECUS[@]}"; do
    mkdir -p "$FRESH_FS/mnt/$ecu"
    ln -s "$FRESH_FS/mnt/$ecu" "$E2E_WORK/$ecu"
  done
fi
tree_setup v1 v1

main_json() { tree_ctl main status --json 2>/dev/null || true; }  # otactl exits 3 while updating
count_updating() { main_json | jq '[.ecu_v2[] | select(.ota_status == "UPDATING")] | length'; }
all_updating() { [[ "$(count_updating)" == 8 ]]; }

tree_start

# Both rows of a phase come from one interleaved run (main, s3, main, s3, ...): the main ECU and
# the direct single-ECU reference see the same load at the same moments.
bench() {
  "$BENCH" --target "main (8 ECUs, fan-out cache)=${IP[main]}:${PORT[main]}" \
    --target "single ECU s3 (direct)=${IP[s3]}:${PORT[s3]}" "$@"
}
results=()
while read -r line; do results+=("idle     $line"); done < <(bench --calls "$CALLS")
# 1,000 calls, 128 in flight at once; a refused call fails the benchmark.
concurrent() {  # $1: output file
  "$BENCH" --target "main, 128 callers at once=${IP[main]}:${PORT[main]}" --calls 1000 \
    --in-flight 128 >"$1" || fail "Status calls were refused: $(cat "$1")"
}
concurrent "$E2E_WORK/bench-concurrent.txt"
while read -r line; do results+=("idle     $line"); done <"$E2E_WORK/bench-concurrent.txt"

args=()
for ecu in "${ECUS[@]}"; do
  args+=(--ecu "$ecu" --version v2 --url "https://127.0.0.1:$HTTPS_PORT/slow/v2" --cookies '{}')
done
# The update is requested while the calls are already running, so the busy first seconds (metadata,
# preparing the standby, the delta hashing of eight ECUs on the same cores) are measured too.
bench --calls "$CALLS" --seconds "$UPDATE_SECONDS" >"$E2E_WORK/bench-updating.txt" &
bench_pid=$!
E2E_PIDS+=("$bench_pid")
tree_ctl main update "${args[@]}" --timeout 10 >/dev/null || fail "update not accepted"
wait_until 30 "all 8 UPDATING" all_updating
wait "$bench_pid" || fail "status_latency_bench failed during the update"
[[ "$(count_updating)" == 8 ]] || log "note: not every ECU was still updating at the end"
while read -r line; do results+=("updating $line"); done <"$E2E_WORK/bench-updating.txt"
concurrent "$E2E_WORK/bench-updating-concurrent.txt"
[[ "$(count_updating)" == 8 ]] || log "note: not every ECU was still updating after the 128-caller run"
while read -r line; do results+=("updating $line"); done <"$E2E_WORK/bench-updating-concurrent.txt"

echo
where="a fresh ext4"
[[ -n "$FRESH_FS" ]] || where="${TMPDIR:-/tmp} as it is"
echo "Status latency ($(nproc) cores, slots on $where; idle: $CALLS calls per target; updating: ${UPDATE_SECONDS} s" \
  "from the Update request on, at least $CALLS calls per target):"
printf '  %s\n' "${results[@]}"
