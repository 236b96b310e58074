#!/usr/bin/env bash
# Status p99 with 128 calls in flight against one idle otaclient (directory slots) — issue 17's
# "1,000 calls with 128 in flight, 0 failures, p99 <= 5 ms idle". ROUNDS rounds of 1,000 calls per
# variant, the variants interleaved so that they see the same machine: one connection (the
# target's configuration), four connections, and the load generator pinned to CPU 1 with
# otaclient free on both cores. Prints the p99 and p50 medians per variant and the rounds that had
# failures. (During an update: test/bench/status_latency.sh.)
#
# Usage (built tree with otaclient and status_latency_bench):
#   OTA_BIN_DIR=build/release ROUNDS=30 test/bench/status_p99.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=${OTA_BIN_DIR:-$root/build/release}
OTACLIENT=$BIN_DIR/otaclient/otaclient
BENCH=$BIN_DIR/test/bench/status_latency_bench
ROUNDS=${ROUNDS:-30}
ADDR=${OTA_BENCH_ADDR:-127.0.0.21}
for f in "$OTACLIENT" "$BENCH"; do [[ -x $f ]] || { echo "missing $f (build first)" >&2; exit 1; }; done
work=$(mktemp -d /tmp/status-p99.XXXXXX)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
ecu=$work/ecu
mkdir -p "$ecu/slots/slot_a" "$ecu/slots/boot/slot_a" "$ecu/config"
echo v1 >"$ecu/slots/boot/slot_a/version"
printf 'format_version: 1\necu_id: "main"\nip_addr: "%s"\nbootloader: dir\n' "$ADDR" \
  >"$ecu/config/ecu_info.yaml"
printf 'enable_local_ota_proxy: false\n' >"$ecu/config/proxy_info.yaml"
"$OTACLIENT" --config-dir "$ecu/config" --certs-dir "$work" --allow-unverified-image \
  --boot-backend dir --dir-slots-root "$ecu/slots" --listen-port 0 --port-file "$ecu/port" \
  >"$ecu/log" 2>&1 &
pid=$!
# The port file appears once otaclient listens (written atomically); a dead otaclient ends the wait.
until [[ -s "$ecu/port" ]]; do
  kill -0 "$pid" 2>/dev/null || { cat "$ecu/log" >&2; echo "otaclient exited" >&2; exit 1; }
  read -r -t 0.05 <> <(:) || true
done
target="main=$ADDR:$(cat "$ecu/port")"
echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%F %T UTC'), $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
  echo "one $("$BENCH" --target "$target" --calls 1000 --in-flight 128)"
  echo "ch4 $("$BENCH" --target "$target" --calls 1000 --in-flight 128 --channels 4)"
  echo "pin $(taskset -c 1 "$BENCH" --target "$target" --calls 1000 --in-flight 128)"
done >"$work/rounds"
for variant in one ch4 pin; do
  for field in p99 p50; do
    grep "^$variant " "$work/rounds" | sed "s/.*${field}_us=\([0-9]*\).*/\1/" | sort -n |
      awk -v v="$variant" -v f="$field" '{ a[NR] = $1 }
        END { printf "%s %s median of %d rounds: %.2f ms (%.2f-%.2f)\n", v, f, NR,
              a[int((NR + 1) / 2)] / 1000, a[1] / 1000, a[NR] / 1000 }'
  done
done
echo "rounds with failures: $(grep -c 'failures=[1-9]' "$work/rounds" || true) of $((3 * ROUNDS))"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
