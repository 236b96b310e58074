#!/usr/bin/env bash
# run.sh [--quick] [--only 1,2,3,4,5,6,7,8] [--runs N]
#
# The benchmarks of the C++ otaclient, each against a reference tool measured in the same run
# on the same data (see test/bench/README.md for what every number means):
#   1  delta scan (reuse detection) over the bench tree  vs  find | xargs -P2 openssl dgst -sha256
#   2  cold full update by the real otaclient from nginx  vs  curl --parallel --parallel-max 16
#   3  peak RSS of otaclient during that update            vs  curl's peak RSS
#   4  metadata of a 300k-entry image: fetch, verify, parse, delta planning
#                                                          vs  the bare I/O floor (curl + openssl
#                                                              dgst of the same files + a find walk)
#   5  idle RSS of otaclient after an update of that 300k-entry image
#                                                      vs  its idle RSS before the update
#   6  in-place update, 1% of the 300k-entry image's files changed, the standby holding the
#      previous image: request → switch, and bytes written (/proc/<pid>/io write_bytes)
#                                                      vs  the same update rebuilding the standby
#                                                          (time) and the changed bytes (writes)
#   7  in-place update, 10% of a 20k-file image changed vs  the same update rebuilding the standby
#   8  in-place update, nothing changed (300k entries)  vs  the same update rebuilding the standby
# Results: a markdown table on stdout and in $OTA_BENCH_DIR/results.md.
#
# Environment:
#   OTA_BIN_DIR    build dir of a release-preset build (default: <repo>/build/release)
#   OTA_BENCH_DIR  cache of generated trees, images and PKI, and the results
#                  (default: /var/tmp/ota-bench; about 6 GB for the full run)
# Needs root (otaclient chowns slot files), nginx, curl, openssl, jq, hyperfine.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

quick=0
only=1,2,3,4,5,6,7,8
runs=""
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --only)
      (($# >= 2)) || usage
      only=$2
      shift
      ;;
    --runs)
      if (($# < 2)) || [[ ! $2 =~ ^[1-9][0-9]?$ ]]; then usage; fi
      runs=$2
      shift
      ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
  shift
done
[[ $only =~ ^[1-8](,[1-8])*$ ]] || usage
wanted() { [[ ",$only," == *",$1,"* ]]; }

BENCH_DIR=${OTA_BENCH_DIR:-/var/tmp/ota-bench}
mkdir -p "$BENCH_DIR/tmp" "$BENCH_DIR/trees" "$BENCH_DIR/www"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
# Every big temporary (curl output, slots, standby dirs) lives on the cache's file system.
export TMPDIR=$BENCH_DIR/tmp

source "$(dirname "$0")/../e2e/lib.sh"
BENCH_BIN=$OTA_BIN_DIR/test/bench
TREE_GEN=$BENCH_BIN/bench_tree_gen
DELTA_BENCH=$BENCH_BIN/delta_scan_bench
METADATA_BENCH=$BENCH_BIN/metadata_bench
# Gives the in-place benchmarks' slot a the record an update leaves (OTA_SLOT_RECORD_TOOL: another
# build's, e.g. when OTA_BIN_DIR is a build without it).
SLOT_RECORD_TOOL=${OTA_SLOT_RECORD_TOOL:-$BENCH_BIN/slot_record_tool}
# Bump when bench_tree_gen's output changes, so cached trees and images are rebuilt.
GEN_FORMAT=1

for tool in hyperfine jq curl openssl nginx /usr/bin/time; do
  command -v "$tool" >/dev/null || {
    echo "run.sh: $tool is needed" >&2
    exit 1
  }
done
for b in "$TREE_GEN" "$DELTA_BENCH" "$METADATA_BENCH"; do
  [[ -x $b ]] || {
    echo "run.sh: missing $b; build the release preset first:" >&2
    echo "  cmake --preset release && cmake --build build/release" >&2
    exit 1
  }
done
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$OTA_BIN_DIR/CMakeCache.txt" 2>/dev/null || true)
[[ $build_type == Rel* ]] ||
  log "WARNING: $OTA_BIN_DIR is a '${build_type:-unknown}' build; benchmark a release-preset build"

e2e_init # work dir $E2E_WORK under $TMPDIR, removed (processes stopped by PID) on exit
# Benchmarks 6-8 put the standby slot on an ext4 loop device of their own (to count the bytes
# written to it): on exit, our processes are stopped first, then those mounts and loop devices
# go, then the rest as e2e_cleanup does it.
BENCH_MOUNTS=()
BENCH_LOOPS=()
bench_cleanup() {
  local pid m l
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for m in "${BENCH_MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
  for l in "${BENCH_LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  e2e_cleanup
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

if ((quick)); then
  mode=quick
  mixed_args=(--files 10000 --bytes 115000000)
  tiny_args=(--files 28000 --dirs 1500 --symlinks 500)
  small_args=(--files 5000 --dirs 250 --symlinks 100)
  n_runs=${runs:-3}
else
  mode=full
  mixed_args=(--files 100000 --bytes 1150000000)
  tiny_args=(--files 280000 --dirs 15000 --symlinks 5000)
  small_args=(--files 20000 --dirs 1000 --symlinks 300)
  n_runs=${runs:-5}
fi
# Full updates are long: fewer repetitions.
n_update_runs=$((n_runs > 3 ? 3 : n_runs))

# ---------------------------------------------------------------------------------------------
# Small helpers
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
fmt() { awk -v x="$1" -v p="${2:-2}" 'BEGIN { printf "%.*f", p, x }'; }
# median / spread of the numbers on stdin, one per line
median() {
  sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f–%.2f", lo, hi }'; }
maximum() { sort -g | tail -1; }
thousands() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }
mb() { fmt "$(calc "$1 / 1e6")" "${2:-0}"; }
verdict() { # verdict CONDITION_EXPR → PASS or MISS
  if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi
}
# hyperfine_median NAME COMMAND [hyperfine options]: runs it (1 warm-up + n_runs), prints the
# median seconds; the spread goes to $E2E_WORK/NAME.spread.
hyperfine_median() {
  local name=$1 cmd=$2
  shift 2
  hyperfine --style basic --export-json "$E2E_WORK/$name.json" "$@" "$cmd" >&2
  jq -r '.results[0].times[]' "$E2E_WORK/$name.json" | spread >"$E2E_WORK/$name.spread"
  jq -r '.results[0].median' "$E2E_WORK/$name.json"
}
# tree_totals DIR → "FILES BYTES" of the regular files below DIR (not counting the updater's
# record /.ota-meta of a written slot)
tree_totals() {
  find "$1" -path "$1/.ota-meta" -prune -o -type f -printf '%s\n' |
    awk '{ n++; b += $1 } END { printf "%d %d\n", n, b }'
}

# cached NAME STAMP BUILD_FUNCTION...: runs the build unless $BENCH_DIR/NAME.stamp says STAMP.
cached() {
  local name=$1 stamp=$2
  shift 2
  if [[ -e $BENCH_DIR/$name && "$(cat "$BENCH_DIR/$name.stamp" 2>/dev/null)" == "$stamp" ]]; then
    return 0
  fi
  log "generating $name (cached for later runs)"
  rm -rf "${BENCH_DIR:?}/$name" "$BENCH_DIR/$name.stamp"
  "$@"
  printf '%s' "$stamp" >"$BENCH_DIR/$name.stamp"
}

gen_tree() { # gen_tree NAME KIND VARIANT ARGS...
  local name=$1 kind=$2 variant=$3
  shift 3
  "$TREE_GEN" --out "$BENCH_DIR/$name" --kind "$kind" --variant "$variant" "$@" >/dev/null
}
build_bench_image() { # build_bench_image IMAGE_NAME TREE_NAME
  "$OTA_IMAGE" build --rootfs "$BENCH_DIR/$2" --out "$BENCH_DIR/$1" \
    --key "$BENCH_DIR/pki/sign.key" --cert "$BENCH_DIR/pki/sign.pem" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Data: PKI, trees, images (cached under $BENCH_DIR)
bash "$OTA_SOURCE_DIR/deploy/gen-certs.sh" "$BENCH_DIR/pki" >/dev/null
ln -s "$BENCH_DIR/pki" "$E2E_WORK/pki" # where lib.sh's start_otaclient looks for the CA group

image_stamp() { # the tree's stamp + the signer + the ota-image binary that built it
  printf '%s sign=%s ota-image=%s' "$(cat "$BENCH_DIR/trees/$1.stamp")" \
    "$(sha256sum <"$BENCH_DIR/pki/sign.pem" | cut -c1-16)" "$(sha256sum <"$OTA_IMAGE" | cut -c1-16)"
}

mixed=mixed-$mode
tiny=tiny-$mode
if wanted 1 || wanted 2 || wanted 3; then
  cached "trees/$mixed" "gen=$GEN_FORMAT mixed ${mixed_args[*]} variant=0" \
    gen_tree "trees/$mixed" mixed 0 "${mixed_args[@]}"
fi
if wanted 2 || wanted 3; then
  cached "www/$mixed" "$(image_stamp "$mixed")" build_bench_image "www/$mixed" "trees/$mixed"
fi
if wanted 4 || wanted 5 || wanted 6 || wanted 8; then
  cached "trees/$tiny" "gen=$GEN_FORMAT tiny ${tiny_args[*]} variant=0" \
    gen_tree "trees/$tiny" tiny 0 "${tiny_args[@]}"
  # Same paths and sizes, other content: the active slot of the metadata benchmark.
  cached "trees/$tiny-changed" "gen=$GEN_FORMAT tiny ${tiny_args[*]} variant=1" \
    gen_tree "trees/$tiny-changed" tiny 1 "${tiny_args[@]}"
  cached "www/$tiny" "$(image_stamp "$tiny")" build_bench_image "www/$tiny" "trees/$tiny"
fi
# mix_tree OUT BASE OTHER EVERY: BASE with every EVERY-th regular file (sorted by path) replaced
# by OTHER's file of the same path (same size, other content); the changed paths go to OUT.list.
mix_tree() {
  local out=$BENCH_DIR/$1 base=$BENCH_DIR/$2 other=$BENCH_DIR/$3
  cp -a "$base" "$out"
  (cd "$base" && find . -type f -printf '%P\n' | LC_ALL=C sort | awk -v n="$4" 'NR % n == 0') \
    >"$out.list"
  local f
  while IFS= read -r f; do cat "$other/$f" >"$out/$f"; done <"$out.list"
}
if wanted 6; then
  cached "trees/$tiny-1pct" "$(cat "$BENCH_DIR/trees/$tiny.stamp") 1pct" \
    mix_tree "trees/$tiny-1pct" "trees/$tiny" "trees/$tiny-changed" 100
  cached "www/$tiny-1pct" "$(image_stamp "$tiny-1pct")" build_bench_image "www/$tiny-1pct" \
    "trees/$tiny-1pct"
fi
small=small-$mode
if wanted 7; then
  cached "trees/$small" "gen=$GEN_FORMAT tiny ${small_args[*]} variant=0" \
    gen_tree "trees/$small" tiny 0 "${small_args[@]}"
  cached "trees/$small-other" "gen=$GEN_FORMAT tiny ${small_args[*]} variant=1" \
    gen_tree "trees/$small-other" tiny 1 "${small_args[@]}"
  cached "www/$small" "$(image_stamp "$small")" build_bench_image "www/$small" "trees/$small"
  cached "trees/$small-10pct" "$(cat "$BENCH_DIR/trees/$small.stamp") 10pct" \
    mix_tree "trees/$small-10pct" "trees/$small" "trees/$small-other" 10
  cached "www/$small-10pct" "$(image_stamp "$small-10pct")" build_bench_image \
    "www/$small-10pct" "trees/$small-10pct"
fi

if wanted 1 || wanted 2 || wanted 3; then
  mixed_totals=$(tree_totals "$BENCH_DIR/trees/$mixed") # "FILES BYTES"
fi
if wanted 2 || wanted 3 || wanted 4 || wanted 5 || wanted 6 || wanted 7 || wanted 8; then
  OTA_TEST_PORTS_OWNER=$$ "$HARNESS" start "$E2E_WORK/nginx" "$BENCH_DIR/www" >/dev/null ||
    fail "nginx did not start"
  # shellcheck disable=SC1091 # written by the harness: HTTP_PORT, CA_PEM, ...
  source "$E2E_WORK/nginx/ports.env"
fi

# ---------------------------------------------------------------------------------------------
# Result rows
rows=()
details=()
row() { # row NUM BENCHMARK OURS REFERENCE RATIO TARGET RESULT
  rows+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |")
}
detail() { details+=("- $*"); }

# ---------------------------------------------------------------------------------------------
# 1. Delta scan
bench_delta_scan() {
  local tree=$BENCH_DIR/trees/$mixed files bytes
  read -r files bytes <<<"$mixed_totals"
  log "1. delta scan over $tree ($files files, $(mb "$bytes") MB)"

  local ref_s
  ref_s=$(hyperfine_median delta-ref \
    "find '$tree' -type f -print0 | xargs -0 -P2 openssl dgst -sha256 >/dev/null" \
    --warmup 1 --runs "$n_runs" --prepare sync)

  local digests out i count
  for digests in unmatched real; do
    : >"$E2E_WORK/delta-$digests.jsonl"
    # One untimed warm-up run, like hyperfine's, then the timed runs. With real digests the
    # setup of every run reads the whole tree (to hash it) right before the timed part, so the
    # cache is warm without one; those runs copy the whole tree, so there are fewer of them.
    local first=0 count=$n_runs
    if [[ $digests == real ]]; then
      first=1
      count=$n_update_runs
    fi
    for ((i = first; i <= count; i++)); do
      sync
      out=$("$DELTA_BENCH" --active "$tree" --standby-parent "$E2E_WORK" --digests "$digests" \
        2>>"$E2E_WORK/delta-$digests.log") || fail "delta_scan_bench --digests $digests failed"
      ((i == 0)) && continue
      echo "$out" >>"$E2E_WORK/delta-$digests.jsonl"
      log "   ours ($digests digests) run $i: $(jq -r .seconds <<<"$out") s"
    done
  done

  local j=$E2E_WORK/delta-unmatched.jsonl
  local ours_s hashed_files hashed_bytes threads
  ours_s=$(jq -r .seconds "$j" | median)
  hashed_files=$(jq -r .files_hashed "$j" | maximum)
  hashed_bytes=$(jq -r .bytes_hashed "$j" | maximum)
  threads=$(jq -r .hash_threads "$j" | head -1)
  ((hashed_files == files && hashed_bytes == bytes)) ||
    fail "delta scan hashed $hashed_files files / $hashed_bytes bytes, the tree has $files / $bytes"
  local ours_tp ref_tp ratio
  ours_tp=$(calc "$hashed_bytes / $ours_s / 1e6")
  ref_tp=$(calc "$bytes / $ref_s / 1e6")
  ratio=$(calc "$ours_tp / $ref_tp")
  row 1 "Delta scan, digests matching nothing: every file hashed, none copied ($(thousands "$files") files, $(mb "$bytes") MB)" \
    "$(fmt "$ours_s") s = $(fmt "$ours_tp" 0) MB/s ($threads hash threads)" \
    "$(fmt "$ref_s") s = $(fmt "$ref_tp" 0) MB/s (\`find -type f -print0 \\| xargs -0 -P2 openssl dgst -sha256\`)" \
    "$(fmt "$ratio") × throughput" "≥ 0.8×" "$(verdict "$ratio >= 0.8")"
  detail "1: ours $(jq -r .seconds "$j" | spread) s over $n_runs runs (ContentIndex::Build + PlanDelta, timed inside delta_scan_bench; the manifest is built from the tree before timing), CPU (user + system, all threads) median $(fmt "$(jq -r .cpu_seconds "$j" | median)") s; reference $(cat "$E2E_WORK/delta-ref.spread") s (hyperfine, $n_runs runs)."

  j=$E2E_WORK/delta-real.jsonl
  local real_s reused
  real_s=$(jq -r .seconds "$j" | median)
  reused=$(jq -r .reused "$j" | maximum)
  ((reused == files)) || fail "delta scan with real digests reused $reused of $files files"
  row 1b "Delta scan, real digests: every file hashed and copied into the standby's resources dir (informational)" \
    "$(fmt "$real_s") s = $(fmt "$(calc "$bytes / $real_s / 1e6")" 0) MB/s" \
    "same reference: $(fmt "$ref_s") s (hashing only)" \
    "$(fmt "$(calc "$ref_s / $real_s")") × throughput" "—" "INFO"
  detail "1b: $(jq -r .seconds "$j" | spread) s over $(wc -l <"$j") runs (no separate warm-up: each run's untimed setup hashes the whole tree); includes writing $(mb "$bytes") MB of copies (files up to 1 MiB are written from the buffer that was hashed; larger ones are read a second time, hashing exactly what is written)."
}

# ---------------------------------------------------------------------------------------------
# 2 + 3. Cold full update and peak RSS
# curl config: one url/output pair per regular file of the tree.
write_curl_config() { # write_curl_config TREE URL_BASE OUT_DIR CONFIG
  local tree=$1 base=$2 out=$3
  (cd "$tree" && find . -type f -printf '%P\n' | LC_ALL=C sort) |
    awk -v base="$base" -v out="$out" '{ printf "url = \"%s/%s\"\noutput = \"%s/%s\"\n", base, $0, out, $0 }' >"$4"
}

# One otaclient update from an empty active slot; appends "SECONDS VMHWM_KIB" to $E2E_WORK/update.runs
# (when $2 is "timed").
run_otaclient_update() { # run_otaclient_update RUN_NAME timed|warmup
  local ecu=bench slots=$E2E_WORK/bench/slots
  rm -rf "${E2E_WORK:?}/bench" "$E2E_WORK/rootfs/empty"
  mkdir -p "$E2E_WORK/rootfs/empty"
  setup_ecu "$ecu" empty v0
  start_otaclient "$ecu" --no-reboot --log-level warning
  # shellcheck disable=SC2154 # OTA_PID_bench and OTA_PORT_bench are set by start_otaclient
  local pid=$OTA_PID_bench port=$OTA_PORT_bench
  local url="http://127.0.0.1:$HTTP_PORT/$mixed"
  sync

  # A pipe nobody writes to: `read -t` on it is a fork-free 5 ms sleep, so polling costs
  # almost no CPU (the machine has few cores) yet sees the commit within 5 ms.
  local tick status_now="" iter=0 t0 t1
  exec {tick}<> <(:)
  t0=$EPOCHREALTIME
  "$OTACTL" update --target "127.0.0.1:$port" --ecu "$ecu" --version v1 --url "$url" \
    --cookies '{}' >"$E2E_WORK/otactl-update.out" 2>&1 ||
    fail "$1: otactl update failed: $(cat "$E2E_WORK/otactl-update.out")"
  local deadline=$((SECONDS + 1800))
  until [[ -e $slots/boot/next_boot ]]; do
    read -r -t 0.005 -u "$tick" _ || true
    if ((++iter % 100 == 0)); then
      [[ -d /proc/$pid ]] || fail "$1: otaclient exited during the update"
      if [[ -e $slots/boot/slot_b/status ]]; then
        read -r status_now <"$slots/boot/slot_b/status" || true
        [[ $status_now != FAILURE ]] ||
          fail "$1: update failed: $(cat "$slots/boot/slot_b/failure_reason" 2>/dev/null)"
      fi
      ((SECONDS < deadline)) || fail "$1: no commit after 30 min"
    fi
  done
  t1=$EPOCHREALTIME
  exec {tick}<&-
  local hwm
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")

  [[ "$(cat "$slots/boot/next_boot")" == b ]] || fail "$1: next_boot is not b"
  [[ ! -e $slots/slot_b/.ota-resources ]] || fail "$1: resources dir left on the standby"
  local got
  got=$(tree_totals "$slots/slot_b")
  [[ $got == "$mixed_totals" ]] ||
    fail "$1: the standby holds $got (files bytes), the tree $mixed_totals"

  kill "$pid"
  wait "$pid" 2>/dev/null || true
  local kept=() p
  for p in "${E2E_PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  E2E_PIDS=("${kept[@]}")
  rm -rf "${E2E_WORK:?}/bench"

  local seconds
  seconds=$(calc "$t1 - $t0")
  log "   ours $1: $(fmt "$seconds") s, VmHWM $((hwm / 1024)) MiB"
  [[ $2 == timed ]] && echo "$seconds $hwm" >>"$E2E_WORK/update.runs"
  return 0
}

bench_full_update() {
  local tree=$BENCH_DIR/trees/$mixed files bytes
  read -r files bytes <<<"$mixed_totals"
  log "2. cold full update of $files files, $(mb "$bytes") MB over http://127.0.0.1:$HTTP_PORT"

  local out=$E2E_WORK/curl-out cfg=$E2E_WORK/curl.cfg
  write_curl_config "$tree" "http://127.0.0.1:$HTTP_PORT/$mixed/data" "$out" "$cfg"
  local curl_cmd="curl --parallel --parallel-max 16 --create-dirs --fail --silent --show-error --config '$cfg'"
  # Warm-up run, under /usr/bin/time for curl's peak RSS; then check what curl fetched.
  rm -rf "$out"
  sync
  /usr/bin/time -f '%M' -o "$E2E_WORK/curl.maxrss" bash -c "$curl_cmd" 2>"$E2E_WORK/curl.err" ||
    fail "curl failed: $(tail -5 "$E2E_WORK/curl.err")"
  [[ "$(tree_totals "$out")" == "$files $bytes" ]] || fail "curl fetched $(tree_totals "$out")"
  local curl_rss_kib
  curl_rss_kib=$(tail -1 "$E2E_WORK/curl.maxrss")

  local ref_s ref_sync_s
  ref_s=$(hyperfine_median update-ref "$curl_cmd" --runs "$n_update_runs" \
    --prepare "rm -rf '$out' && sync")
  ref_sync_s=$(hyperfine_median update-ref-sync "$curl_cmd && sync -f '$E2E_WORK'" \
    --runs "$n_update_runs" --prepare "rm -rf '$out' && sync")
  rm -rf "$out"

  : >"$E2E_WORK/update.runs"
  run_otaclient_update warm-up warmup
  local i
  for ((i = 1; i <= n_update_runs; i++)); do run_otaclient_update "run $i" timed; done

  local ours_s ratio hwm_max
  ours_s=$(cut -d' ' -f1 "$E2E_WORK/update.runs" | median)
  hwm_max=$(cut -d' ' -f2 "$E2E_WORK/update.runs" | maximum)
  ratio=$(calc "$ours_s / $ref_s")
  if wanted 2; then
    row 2 "Cold full update, empty active slot, plain HTTP on loopback ($(thousands "$files") files, $(mb "$bytes") MB): Update request → standby committed" \
      "$(fmt "$ours_s") s (otaclient, 16 parallel)" \
      "$(fmt "$ref_s") s (\`curl --parallel --parallel-max 16\`)" \
      "$(fmt "$ratio") × time" "≤ 1.3×" "$(verdict "$ratio <= 1.3")"
    row 2b "Same, reference made as durable as ours (otaclient ends with syncfs of the standby; informational)" \
      "$(fmt "$ours_s") s" "$(fmt "$ref_sync_s") s (curl, then \`sync -f\`)" \
      "$(fmt "$(calc "$ours_s / $ref_sync_s")") × time" "—" "INFO"
    detail "2: ours $(cut -d' ' -f1 "$E2E_WORK/update.runs" | spread) s over $n_update_runs runs (after one untimed warm-up run; each run: fresh slots, otaclient started, \`otactl update\`, then R/boot/next_boot polled every 5 ms; includes metadata, download with sha256 verification, apply and syncfs); curl $(cat "$E2E_WORK/update-ref.spread") s, curl + sync $(cat "$E2E_WORK/update-ref-sync.spread") s (hyperfine, $n_update_runs runs after one warm-up). Every run's standby and curl's output were checked to hold exactly the tree's files and bytes."
  fi
  if wanted 3; then
    local rss_mb
    rss_mb=$(calc "$hwm_max / 1024")
    row 3 "Peak RSS of otaclient during that update ($(thousands "$files") files)" \
      "$(fmt "$rss_mb" 1) MiB (VmHWM, max of $n_update_runs runs)" \
      "$(fmt "$(calc "$curl_rss_kib / 1024")" 1) MiB (curl, max RSS)" \
      "$(fmt "$(calc "$hwm_max / $curl_rss_kib")") ×" "≤ 100 MB" "$(verdict "$hwm_max * 1024 <= 100e6")"
    detail "3: VmHWM per run: $(cut -d' ' -f2 "$E2E_WORK/update.runs" | awk '{ printf "%s%.1f", sep, $1 / 1024; sep = ", " }') MiB, read from /proc/<pid>/status right after the commit (the process keeps running until we stop it)."
  fi
}

# ---------------------------------------------------------------------------------------------
# 4. Metadata at fleet scale
bench_metadata() {
  local image=$BENCH_DIR/www/$tiny active=$BENCH_DIR/trees/$tiny-changed
  local url="http://127.0.0.1:$HTTP_PORT/$tiny"
  # What an ECU fetches before any file: metadata.jwt, then the certificate and list files its
  # payload names.
  local payload lists certificate
  payload=$(metadata_payload "$image/metadata.jwt")
  mapfile -t lists < <(jq -r '.[] | to_entries[] | select(.key | IN("directory", "symboliclink", "regular", "persistent")) | .value' <<<"$payload")
  certificate=$(jq -r '.[] | to_entries[] | select(.key == "certificate") | .value' <<<"$payload")
  if ((${#lists[@]} != 4)) || [[ -z $certificate ]]; then
    fail "unexpected metadata.jwt payload in $image: $payload"
  fi
  local names=(metadata.jwt "$certificate" "${lists[@]}")
  log "4. metadata of $url ($(cd "$image" && cat "${lists[@]}" | grep -c .) list entries), active tree $active"
  local fetched=$E2E_WORK/metadata-floor urls=() n
  for n in "${names[@]}"; do urls+=("$url/$n"); done
  local floor_cmd="rm -rf '$fetched' && curl --fail --silent --show-error --create-dirs --output-dir '$fetched' --remote-name-all ${urls[*]} && openssl dgst -sha256 '$fetched'/* >/dev/null && find '$active' >/dev/null"
  local ref_s
  ref_s=$(hyperfine_median metadata-ref "$floor_cmd" --warmup 1 --runs "$n_runs")
  # What hashing every file of the active tree costs with benchmark 1's reference tool: the
  # floor of our delta step, which must hash them all.
  local hash_floor_s
  hash_floor_s=$(hyperfine_median metadata-hash-floor \
    "find '$active' -type f -print0 | xargs -0 -P2 openssl dgst -sha256 >/dev/null" \
    --warmup 1 --runs "$n_update_runs")

  local variant tree i out count
  for variant in changed identical; do
    tree=$active
    local first=0 count=$n_runs
    if [[ $variant == identical ]]; then
      # Copies every file (slow): one run, after reading the tree once to warm the cache.
      tree=$BENCH_DIR/trees/$tiny
      first=1
      count=1
      find "$tree" -type f -print0 | xargs -0 cat >/dev/null
    fi
    : >"$E2E_WORK/metadata-$variant.jsonl"
    for ((i = first; i <= count; i++)); do
      sync
      out=$("$METADATA_BENCH" --url "$url" --certs "$BENCH_DIR/pki/certs" --active "$tree" \
        --standby-parent "$E2E_WORK" 2>>"$E2E_WORK/metadata-$variant.log") ||
        fail "metadata_bench ($variant) failed: $(tail -3 "$E2E_WORK/metadata-$variant.log")"
      ((i == 0)) && continue
      echo "$out" >>"$E2E_WORK/metadata-$variant.jsonl"
      log "   ours ($variant active tree) run $i: $(jq -r .total_seconds <<<"$out") s, $(($(jq -r .peak_rss_kib <<<"$out") / 1024)) MiB"
    done
  done

  local j=$E2E_WORK/metadata-changed.jsonl
  local entries total rss_kib hashed reused
  entries=$(jq -r .entries "$j" | head -1)
  total=$(jq -r .total_seconds "$j" | median)
  rss_kib=$(jq -r .peak_rss_kib "$j" | maximum)
  hashed=$(jq -r .files_hashed "$j" | maximum)
  reused=$(jq -r .reused "$j" | maximum)
  step() { jq -r ".$1" "$j" | median; }
  local ok
  ok=$(verdict "$total <= 3 && $rss_kib * 1024 <= 100e6")
  row 4 "Metadata at fleet scale: $(thousands "$entries") list entries; fetch + verify + parse + delta planning against an active tree of the same shape (same paths and sizes, other content: every file hashed, none reusable)" \
    "$(fmt "$total") s, $(fmt "$(calc "$rss_kib / 1024")" 1) MiB peak RSS" \
    "$(fmt "$ref_s") s: bare I/O floor (curl of metadata.jwt + certificate + 4 list files, \`openssl dgst -sha256\` of them, \`find\` walk of the active tree)" \
    "$(fmt "$(calc "$total / $ref_s")") × time" "≤ 3 s and ≤ 100 MB" "$ok"
  detail "4: medians of $n_runs runs (after one warm-up): CA store $(fmt "$(step ca_seconds)" 3) s, metadata fetch $(fmt "$(step fetch_seconds)" 3) s ($(jq -r .requests "$j" | head -1) requests, $(mb "$(jq -r .metadata_bytes "$j" | head -1)" 1) MB), verify + parse $(fmt "$(step verify_parse_seconds)" 3) s, content index $(fmt "$(step index_seconds)" 3) s, delta planning $(fmt "$(step delta_seconds)" 3) s ($hashed files hashed, $reused reused; CPU, user + system of all threads: $(fmt "$(step delta_cpu_seconds)" 3) s; whole run $(fmt "$(step total_cpu_seconds)" 3) s); total $(jq -r .total_seconds "$j" | spread) s; peak RSS per run $(jq -r .peak_rss_kib "$j" | awk '{ printf "%s%.1f", sep, $1 / 1024; sep = ", " }') MiB. Reference $(cat "$E2E_WORK/metadata-ref.spread") s (hyperfine). The floor hashes no file of the active tree; ours hashes all $hashed of them (they have needed sizes)."

  local delta_s
  delta_s=$(step delta_seconds)
  row 4a "Delta planning step of row 4 alone vs hashing the same active tree with benchmark 1's reference tool (informational)" \
    "$(fmt "$delta_s") s ($(thousands "$hashed") files hashed)" \
    "$(fmt "$hash_floor_s") s (\`find -type f -print0 \\| xargs -0 -P2 openssl dgst -sha256\`)" \
    "$(fmt "$(calc "$delta_s / $hash_floor_s")") × time" "—" "INFO"
  detail "4a: reference $(cat "$E2E_WORK/metadata-hash-floor.spread") s (hyperfine, $n_update_runs runs after one warm-up)."

  j=$E2E_WORK/metadata-identical.jsonl
  row 4b "Same image, active tree identical to it: every content found and copied into the resources dir (informational)" \
    "$(fmt "$(jq -r .total_seconds "$j" | median)") s, $(fmt "$(calc "$(jq -r .peak_rss_kib "$j" | maximum) / 1024")" 1) MiB" \
    "same floor: $(fmt "$ref_s") s" \
    "$(fmt "$(calc "$(jq -r .total_seconds "$j" | median) / $ref_s")") × time" "—" "INFO"
  detail "4b: delta planning $(fmt "$(jq -r .delta_seconds "$j" | median)" 3) s of it, $(jq -r .reused "$j" | maximum) contents reused; one run, after a \`cat\` of the whole tree to warm the cache."
  row 4c "Python otaclient, published figures (NOT measured here): metadata processing of ~300k-entry Autoware images" \
    "—" "22 s (real OTA, 2025-07) – 40 s (offline OTA, 2025-12); delta calculation 124–210 s" \
    "—" "—" "context"
  detail "4c: source: /work/shared/reference/upstream-2026.md §4 (PR #604 and #719 metrics; those images list 294,680 regular files, 23.6 GB)."
}

# ---------------------------------------------------------------------------------------------
# 5. Memory given back after an update at fleet scale (issue 17): the daemon idles for weeks
# between updates and must not keep the high-water mark of a 300k-entry session.
bench_idle_rss() {
  local ecu=big dir=$E2E_WORK/big
  local url="http://127.0.0.1:$HTTP_PORT/$tiny"
  log "5. idle RSS after an update of $url"
  local i
  : >"$E2E_WORK/idle-rss.runs"
  for ((i = 1; i <= n_update_runs; i++)); do
    rm -rf "${dir:?}"
    mkdir -p "$dir/slots/boot/slot_a" "$dir/config"
    # The active slot holds the same tree (hard-linked: it is only read), so every content is
    # reused and the session still walks, plans and writes all 300k entries.
    cp -al "$BENCH_DIR/trees/$tiny" "$dir/slots/slot_a"
    printf v1 >"$dir/slots/boot/slot_a/version"
    printf 'format_version: 1\necu_id: "%s"\nip_addr: "127.0.0.1"\nbootloader: dir\n' "$ecu" \
      >"$dir/config/ecu_info.yaml"
    printf 'enable_local_ota_proxy: false\n' >"$dir/config/proxy_info.yaml"
    : >"$E2E_WORK/otaclient-$ecu.log"
    start_otaclient "$ecu" --no-reboot
    # shellcheck disable=SC2154 # set by start_otaclient
    local pid=$OTA_PID_big port=$OTA_PORT_big
    local before
    before=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    "$OTACTL" update --target "127.0.0.1:$port" --ecu "$ecu" --version v2 --url "$url" \
      --cookies '{}' >"$E2E_WORK/otactl-update.out" 2>&1 ||
      fail "5: otactl update failed: $(cat "$E2E_WORK/otactl-update.out")"
    # The session's worker logs this line after it has handed its memory back.
    local tick deadline=$((SECONDS + 1800))
    exec {tick}<> <(:)
    until grep -q "update session ended, memory released" "$E2E_WORK/otaclient-$ecu.log"; do
      read -r -t 0.1 -u "$tick" _ || true
      [[ -d /proc/$pid ]] || fail "5: otaclient exited during the update"
      ((SECONDS < deadline)) || fail "5: the session did not end within 30 min"
    done
    exec {tick}<&-
    [[ "$(cat "$dir/slots/boot/next_boot" 2>/dev/null)" == b ]] ||
      fail "5: the update did not switch to b: $(tail -3 "$E2E_WORK/otaclient-$ecu.log")"
    local after hwm
    after=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local kept=() p
    for p in "${E2E_PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
    E2E_PIDS=("${kept[@]}")
    rm -rf "${dir:?}"
    log "   run $i: idle RSS before $((before / 1024)) MiB, peak $((hwm / 1024)) MiB, idle after $((after / 1024)) MiB"
    echo "$before $hwm $after" >>"$E2E_WORK/idle-rss.runs"
  done
  local before hwm after
  before=$(cut -d' ' -f1 "$E2E_WORK/idle-rss.runs" | median)
  hwm=$(cut -d' ' -f2 "$E2E_WORK/idle-rss.runs" | maximum)
  after=$(cut -d' ' -f3 "$E2E_WORK/idle-rss.runs" | maximum)
  row 5 "Idle RSS of otaclient after an update of the $(thousands "$(image_entries "$BENCH_DIR/www/$tiny")")-entry image of row 4 (active slot identical: every entry planned and written)" \
    "$(fmt "$(calc "$after / 1024")" 1) MiB (worst of $n_update_runs runs; peak during the session $(fmt "$(calc "$hwm / 1024")" 1) MiB)" \
    "$(fmt "$(calc "$before / 1024")" 1) MiB (the same daemon idle before the update)" \
    "$(fmt "$(calc "$after / $before")") ×" "≤ 40 MiB" "$(verdict "$after <= 40 * 1024")"
  detail "5: per run (idle before / peak / idle after, MiB): $(awk '{ printf "%s%.1f / %.1f / %.1f", sep, $1 / 1024, $2 / 1024, $3 / 1024; sep = "; " }' "$E2E_WORK/idle-rss.runs"). Idle after = VmRSS once the worker has logged that the session ended and its memory was released (malloc_trim)."
}

# ---------------------------------------------------------------------------------------------
# 6, 7, 8. In-place standby updates (issue 18)
stop_otaclient() { # stop_otaclient PID
  kill "$1"
  wait "$1" 2>/dev/null || true
  local kept=() p
  for p in "${E2E_PIDS[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
  E2E_PIDS=("${kept[@]}")
}

# inplace_update ECU IMAGE LOOP: one update of the running otaclient ECU to www/IMAGE; prints
# "SECONDS WRITE_BYTES DEVICE_BYTES": Update request → R/boot/next_boot written, the growth of
# the daemon's /proc/<pid>/io write_bytes over that time (everything it made the kernel write,
# image metadata included), and the bytes written to the standby's loop device LOOP
# (/sys/block/<loop>/stat, after a sync; ext4 metadata and journal included).
inplace_update() {
  local ecu=$1 image=$2 loop=${3#/dev/} slots=$E2E_WORK/$1/slots s0 s1
  local pid_var="OTA_PID_$1" port_var="OTA_PORT_$1"
  local pid=${!pid_var} port=${!port_var}
  local w0 w1 t0 t1 tick iter=0 deadline=$((SECONDS + 1800))
  sync
  w0=$(awk '/^write_bytes:/ { print $2 }' "/proc/$pid/io")
  s0=$(awk '{ print $7 }' "/sys/block/$loop/stat")
  exec {tick}<> <(:)
  t0=$EPOCHREALTIME
  "$OTACTL" update --target "127.0.0.1:$port" --ecu "$ecu" --version "$image" \
    --url "http://127.0.0.1:$HTTP_PORT/$image" --cookies '{}' >"$E2E_WORK/otactl-update.out" 2>&1 ||
    fail "otactl update to $image failed: $(cat "$E2E_WORK/otactl-update.out")"
  until [[ -e $slots/boot/next_boot ]]; do
    read -r -t 0.005 -u "$tick" _ || true
    if ((++iter % 100 == 0)); then
      [[ -d /proc/$pid ]] || fail "otaclient exited during the update to $image"
      [[ "$(cat "$slots/boot/slot_b/status" 2>/dev/null)" != FAILURE ]] ||
        fail "update to $image failed: $(cat "$slots/boot/slot_b/failure_reason" 2>/dev/null)"
      ((SECONDS < deadline)) || fail "no commit of $image after 30 min"
    fi
  done
  t1=$EPOCHREALTIME
  exec {tick}<&-
  w1=$(awk '/^write_bytes:/ { print $2 }' "/proc/$pid/io")
  sync
  s1=$(awk '{ print $7 }' "/sys/block/$loop/stat")
  echo "$(calc "$t1 - $t0") $((w1 - w0)) $(((s1 - s0) * 512))"
}

# record_active_slot SLOT_DIR IMAGE: slot a as an update leaves it, with its record of IMAGE
# (/.ota-meta: the slot table of its files and state "complete"), which a delta reads instead of
# walking the slot. Written only into slot a's own (copied) directories; the hard-linked files are
# only observed.
record_active_slot() {
  "$SLOT_RECORD_TOOL" --url "http://127.0.0.1:$HTTP_PORT/$2" --certs "$BENCH_DIR/pki/certs" \
    --slot "$1" >"$E2E_WORK/slot-record.out" 2>&1 ||
    fail "recording slot a ($2) failed: $(tail -3 "$E2E_WORK/slot-record.out")"
}

# inplace_run BASE TARGET MODE: slot a (the running system) holds trees/BASE; slot b is first
# updated to www/BASE (untimed; a standby without a record is rebuilt, and then holds BASE and
# its record, as after any update), the switch is dropped (otaclient restarted on slot a), then
# the timed update to www/TARGET with --standby-mode MODE. Appends "SECONDS WRITE_BYTES MODE" to
# $E2E_WORK/inplace-<TARGET>-<MODE>.runs after checking the standby holds TARGET's files.
inplace_run() {
  local base=$1 target=$2 mode=$3 ecu=inplace dir=$E2E_WORK/inplace
  rm -rf "$dir"
  mkdir -p "$dir/slots/boot/slot_a" "$dir/slots/slot_b" "$dir/config"
  cp -al "$BENCH_DIR/trees/$base" "$dir/slots/slot_a" # only read: hard links will do
  record_active_slot "$dir/slots/slot_a" "$base"
  # The standby on an ext4 loop device of its own, sized for the tree (inodes included).
  local entries bytes img=$E2E_WORK/inplace-standby.img loop
  read -r entries bytes < <(tree_totals "$BENCH_DIR/trees/$target")
  rm -f "$img"
  truncate -s $((entries * 8192 + bytes * 3 + 512 * 1024 * 1024)) "$img"
  mkfs.ext4 -q -F -N $((entries * 2 + 10000)) "$img"
  loop=$(losetup --find --show "$img") || fail "losetup $img failed"
  BENCH_LOOPS+=("$loop")
  mount "$loop" "$dir/slots/slot_b" || fail "mount $loop failed"
  BENCH_MOUNTS+=("$dir/slots/slot_b")
  printf v1 >"$dir/slots/boot/slot_a/version"
  printf 'format_version: 1\necu_id: "%s"\nip_addr: "127.0.0.1"\nbootloader: dir\n' "$ecu" \
    >"$dir/config/ecu_info.yaml"
  printf 'enable_local_ota_proxy: false\n' >"$dir/config/proxy_info.yaml"
  : >"$E2E_WORK/otaclient-$ecu.log"
  start_otaclient "$ecu" --no-reboot --standby-mode "$mode"
  inplace_update "$ecu" "$base" "$loop" >/dev/null
  # shellcheck disable=SC2154 # set by start_otaclient
  stop_otaclient "$OTA_PID_inplace"
  # The switch is dropped; slot b's status goes too: restarted on slot a, otaclient would record
  # b as FAILURE ("did not boot"), and the timed update's failure check would see that until the
  # update marks b UPDATING.
  rm "$dir/slots/boot/next_boot" "$dir/slots/boot/slot_b/status"
  : >"$E2E_WORK/otaclient-$ecu.log"
  start_otaclient "$ecu" --no-reboot --standby-mode "$mode"
  local out
  out=$(inplace_update "$ecu" "$target" "$loop")
  local decided
  decided=$(grep -o 'standby write mode decided mode=[a-z-]*' "$E2E_WORK/otaclient-$ecu.log" |
    tail -1 | sed 's/.*mode=//')
  local want=in-place
  [[ $mode == rebuild ]] && want=rebuild
  [[ $decided == "$want" ]] || fail "$target ($mode): the standby was written '$decided', not $want"
  grep -o 'rehashed=[0-9]*' "$E2E_WORK/otaclient-$ecu.log" | tail -1 | sed 's/rehashed=//' \
    >"$E2E_WORK/inplace-rehashed" || echo 0 >"$E2E_WORK/inplace-rehashed"
  local got want_totals
  got=$(tree_totals "$dir/slots/slot_b")
  want_totals=$(tree_totals "$BENCH_DIR/trees/$target")
  [[ $got == "$want_totals" ]] || fail "$target ($mode): the standby holds $got, the tree $want_totals"
  stop_otaclient "$OTA_PID_inplace"
  umount "$dir/slots/slot_b"
  losetup -d "$loop"
  BENCH_MOUNTS=()
  BENCH_LOOPS=()
  rm -rf "${dir:?}" "$img"
  local s w d
  read -r s w d <<<"$out"
  log "   $target ($mode): $(fmt "$s") s, $(mb "$w" 1) MB written by otaclient, $(mb "$d" 1) MB to the standby device"
  echo "$out" >>"$E2E_WORK/inplace-$target-$mode.runs"
}

inplace_median() { cut -d' ' -f"$2" "$E2E_WORK/inplace-$1.runs" | median; }

bench_inplace_1pct() {
  local target=$tiny-1pct i changed_bytes changed_files
  changed_files=$(wc -l <"$BENCH_DIR/trees/$target.list")
  # A changed file costs at least one 4 KiB block however small it is, so the changed bytes are
  # counted in blocks too (the bench's tiny files are ~135 bytes).
  local changed_pages
  read -r changed_bytes changed_pages < <(cd "$BENCH_DIR/trees/$target" &&
    tr '\n' '\0' <"../$target.list" | xargs -0 stat -c %s |
    awk '{ b += $1; p += int(($1 + 4095) / 4096) * 4096 } END { print b + 0, p + 0 }')
  log "6. in-place update of $target ($changed_files files, $(mb "$changed_bytes" 1) MB changed)"
  : >"$E2E_WORK/inplace-$target-auto.runs"
  : >"$E2E_WORK/inplace-$target-rebuild.runs"
  for ((i = 1; i <= n_update_runs; i++)); do
    inplace_run "$tiny" "$target" auto
    inplace_run "$tiny" "$target" rebuild
  done
  local ours_s ref_s written device
  ours_s=$(inplace_median "$target-auto" 1)
  ref_s=$(inplace_median "$target-rebuild" 1)
  written=$(inplace_median "$target-auto" 2)
  device=$(inplace_median "$target-auto" 3)
  row 6 "In-place update, 1% of the files changed ($(thousands "$changed_files") of $(thousands "$(image_entries "$BENCH_DIR/www/$target")") entries), standby holding the previous image: request → switch" \
    "$(fmt "$ours_s") s (in place)" "$(fmt "$ref_s") s (same update, \`--standby-mode rebuild\`)" \
    "$(fmt "$(calc "$ours_s / $ref_s")") × time" "≤ 3 s" "$(verdict "$ours_s <= 3")"
  row 6b "Same: bytes written to the standby's block device (/sys/block/<loop>/stat, ext4 metadata and journal included)" \
    "$(mb "$device" 1) MB ($(mb "$written" 1) MB written by otaclient in all, /proc/<pid>/io)" \
    "$(mb "$changed_pages" 1) MB changed, in 4 KiB blocks ($(mb "$changed_bytes" 2) MB of content)" \
    "$(fmt "$(calc "$device / ($changed_pages > 0 ? $changed_pages : 1)")") ×" "≤ 1.2×" \
    "$(verdict "$device <= 1.2 * $changed_pages")"
  detail "6: in place $(cut -d' ' -f1 "$E2E_WORK/inplace-$target-auto.runs" | spread) s, rebuild $(cut -d' ' -f1 "$E2E_WORK/inplace-$target-rebuild.runs" | spread) s over $n_update_runs runs each; each run: slot a = the previous tree, slot b updated to the previous image first (untimed), otaclient restarted on slot a, \`sync\`, then the timed update (Update request → R/boot/next_boot). The standby is an ext4 loop device of its own (mounted at slot_b), so 6b counts exactly what reached it, including the slot's record (/.ota-meta: its state; the slot table is kept while at least 90% of its entries still match, else rewritten whole, ~100 bytes per regular file), directory blocks, inode tables and the journal; /proc/<pid>/io write_bytes (also the image metadata the daemon stores, and its log) is shown beside it. The standby was checked to hold exactly the target tree's files and bytes."
}

bench_inplace_10pct() {
  local target=$small-10pct i
  log "7. in-place update of $target ($(wc -l <"$BENCH_DIR/trees/$target.list") files changed)"
  : >"$E2E_WORK/inplace-$target-auto.runs"
  : >"$E2E_WORK/inplace-$target-rebuild.runs"
  for ((i = 1; i <= n_update_runs; i++)); do
    inplace_run "$small" "$target" auto
    inplace_run "$small" "$target" rebuild
  done
  local ours_s ref_s ratio
  ours_s=$(inplace_median "$target-auto" 1)
  ref_s=$(inplace_median "$target-rebuild" 1)
  ratio=$(calc "$ours_s / $ref_s")
  row 7 "In-place update, 10% of a $(thousands "$(tree_totals "$BENCH_DIR/trees/$target" | cut -d' ' -f1)")-file image changed: request → switch" \
    "$(fmt "$ours_s") s (in place)" "$(fmt "$ref_s") s (\`--standby-mode rebuild\`)" \
    "$(fmt "$ratio") × time" "≤ 0.5×" "$(verdict "$ratio <= 0.5")"
  detail "7: in place $(cut -d' ' -f1 "$E2E_WORK/inplace-$target-auto.runs" | spread) s, rebuild $(cut -d' ' -f1 "$E2E_WORK/inplace-$target-rebuild.runs" | spread) s over $n_update_runs runs each (set-up as in 6)."
}

bench_inplace_nothing() {
  local i
  log "8. in-place update of $tiny onto a standby already holding it"
  : >"$E2E_WORK/inplace-$tiny-auto.runs"
  : >"$E2E_WORK/inplace-$tiny-rebuild.runs"
  for ((i = 1; i <= n_update_runs; i++)); do
    inplace_run "$tiny" "$tiny" auto
    inplace_run "$tiny" "$tiny" rebuild
  done
  local ours_s ref_s
  ours_s=$(inplace_median "$tiny-auto" 1)
  ref_s=$(inplace_median "$tiny-rebuild" 1)
  row 8 "In-place update, nothing changed ($(thousands "$(image_entries "$BENCH_DIR/www/$tiny")") entries): request → switch" \
    "$(fmt "$ours_s") s (in place; $(cat "$E2E_WORK/inplace-rehashed") files rehashed in the last run)" \
    "$(fmt "$ref_s") s (\`--standby-mode rebuild\`)" \
    "$(fmt "$(calc "$ours_s / $ref_s")") × time" "≤ 1 s + hashing" "$(verdict "$ours_s <= 1")"
  detail "8: in place $(cut -d' ' -f1 "$E2E_WORK/inplace-$tiny-auto.runs" | spread) s, rebuild $(cut -d' ' -f1 "$E2E_WORK/inplace-$tiny-rebuild.runs" | spread) s over $n_update_runs runs each (set-up as in 6; the target is the image the standby already holds). Includes fetching and verifying the image's metadata."
}

# The number of list entries (directories, symlinks, regular and persistent files) of a legacy image.
image_entries() { # image_entries IMAGE_DIR
  local lists
  mapfile -t lists < <(metadata_payload "$1/metadata.jwt" | jq -r '.[] | to_entries[] | select(.key | IN("directory", "symboliclink", "regular", "persistent")) | .value')
  (cd "$1" && cat "${lists[@]}" | grep -c .)
}

# The decoded payload (second segment) of a metadata.jwt.
metadata_payload() {
  local seg
  seg=$(cut -d. -f2 <"$1" | tr '_-' '/+')
  while ((${#seg} % 4)); do seg+="="; done
  base64 -d <<<"$seg" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# Developer A/B mode for the in-place benchmarks (not part of the results table):
#   OTA_BENCH_AB="BENCH OTACLIENT_A OTACLIENT_B" run.sh [--runs N]
# BENCH is 6 or 8. One standby is set up (untimed) and then updated in place N times by each
# binary, interleaved A B A B ..., so both see the same machine load. Per timed update:
# "LABEL SECONDS WRITE_BYTES DEVICE_BYTES" on stdout; each daemon log goes to
# $BENCH_DIR/ab/<BENCH>-<LABEL>-<round>.log (OTA_BENCH_AB_WRAPPER, when set, is run as otaclient
# with OTA_REAL_OTACLIENT naming the binary, e.g. to timestamp the log).
inplace_ab() {
  local bench=$1 bin_a=$2 bin_b=$3 ecu=inplace dir=$E2E_WORK/inplace base target
  base=$tiny
  target=$tiny
  [[ $bench == 6 ]] && target=$tiny-1pct
  local out_dir=$BENCH_DIR/ab
  mkdir -p "$out_dir"
  rm -rf "$dir"
  mkdir -p "$dir/slots/boot/slot_a" "$dir/slots/slot_b" "$dir/config"
  cp -al "$BENCH_DIR/trees/$base" "$dir/slots/slot_a"
  record_active_slot "$dir/slots/slot_a" "$base"
  local entries bytes img=$E2E_WORK/inplace-standby.img loop
  read -r entries bytes < <(tree_totals "$BENCH_DIR/trees/$target")
  rm -f "$img"
  truncate -s $((entries * 8192 + bytes * 3 + 512 * 1024 * 1024)) "$img"
  mkfs.ext4 -q -F -N $((entries * 2 + 10000)) "$img"
  loop=$(losetup --find --show "$img") || fail "losetup $img failed"
  BENCH_LOOPS+=("$loop")
  mount "$loop" "$dir/slots/slot_b" || fail "mount $loop failed"
  BENCH_MOUNTS+=("$dir/slots/slot_b")
  printf v1 >"$dir/slots/boot/slot_a/version"
  printf 'format_version: 1\necu_id: "%s"\nip_addr: "127.0.0.1"\nbootloader: dir\n' "$ecu" \
    >"$dir/config/ecu_info.yaml"
  printf 'enable_local_ota_proxy: false\n' >"$dir/config/proxy_info.yaml"
  local real_otaclient=$OTACLIENT
  # One update by BIN to IMAGE; "timed" ones print their figures.
  ab_one() {
    local bin=$1 image=$2 label=$3 round=$4 out
    export OTA_REAL_OTACLIENT=$bin
    # Forget the previous switch (as a reboot into a that never tried b would not be seen as a
    # failed boot of b, which would make inplace_update stop at the FAILURE status).
    rm -f "$dir/slots/boot/next_boot" "$dir/slots/boot/slot_b/status"
    : >"$E2E_WORK/otaclient-$ecu.log"
    OTACLIENT=${OTA_BENCH_AB_WRAPPER:-$bin}
    start_otaclient "$ecu" --no-reboot --standby-mode auto
    out=$(inplace_update "$ecu" "$image" "$loop")
    stop_otaclient "$OTA_PID_inplace"
    if [[ -n $label ]]; then
      cp "$E2E_WORK/otaclient-$ecu.log" "$out_dir/$bench-$label-$round.log"
      echo "$label $out"
    fi
  }
  ab_one "$bin_a" "$base" "" 0 # untimed: the standby gets base (a rebuild: no record yet)
  local i
  for ((i = 1; i <= n_runs; i++)); do
    for label in A B; do
      local bin=$bin_a
      [[ $label == B ]] && bin=$bin_b
      [[ $bench == 6 ]] && ab_one "$bin" "$base" "" 0 # untimed: back to base, in place
      ab_one "$bin" "$target" "$label" "$i"
    done
  done
  OTACLIENT=$real_otaclient
}
if [[ -n ${OTA_BENCH_AB:-} ]]; then
  read -r ab_bench ab_a ab_b <<<"$OTA_BENCH_AB"
  inplace_ab "$ab_bench" "$ab_a" "$ab_b"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
SECONDS=0
wanted 1 && bench_delta_scan
if wanted 2 || wanted 3; then bench_full_update; fi
wanted 4 && bench_metadata
wanted 5 && bench_idle_rss
wanted 6 && bench_inplace_1pct
wanted 7 && bench_inplace_10pct
wanted 8 && bench_inplace_nothing

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
commit=$(git -C "$OTA_SOURCE_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$OTA_SOURCE_DIR" status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true)
{
  echo "## otaclient benchmarks ($mode mode)"
  echo
  echo "$started, commit $commit$( ((dirty > 0)) && echo " (+ $dirty uncommitted changes in the work tree)"), $(nproc) × $cpu, $(awk '/MemTotal/ { printf "%.0f GB RAM", $2 / 1e6 }' /proc/meminfo), load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg); took ${SECONDS} s."
  echo "Binaries: $OTA_BIN_DIR (${build_type:-unknown build type}). Data: $BENCH_DIR."
  echo "Caches: warm page cache on both sides (each side gets one untimed warm-up run right before its timed runs, except 1b and 4b: see their notes), and \`sync\` before every timed run so that write-back from an earlier run does not land in a later one. Medians; spreads below. The machine may be shared: compare ratios rather than absolute times."
  ((quick)) && echo "**Quick mode: sizes ~10× smaller than the targets are stated for; PASS/MISS is indicative only.**"
  echo
  echo "| # | benchmark | ours (median) | reference, same run (median) | ratio | target | result |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  printf '%s\n' "${details[@]}"
} >"$BENCH_DIR/results.md"
cat "$BENCH_DIR/results.md"
