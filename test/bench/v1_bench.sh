#!/usr/bin/env bash
# v1_bench.sh [--quick] [--runs N]: OTA image v1 against the legacy format, same trees, same run.
#
#   A  metadata phase at scale: metadata_bench (fetch + verify + table load + content index +
#      delta planning, every active file hashed) of a v1 image of the 280k-file "tiny" tree
#      (--quick: 28k) and of the legacy image of the same tree. Targets (v1): <= 3 s, <= 100 MB.
#   B  a 10%-changed update: the "mixed" tree (100k files, 1.15 GB; --quick: 10k, 115 MB) on
#      slot a, an image of the same tree with every 10th file rewritten (same size, new bytes);
#      otaclient (directory slots, --no-reboot) from `otactl update` until boot/next_boot is
#      written, the legacy image and v1 images alternately, fresh slots each run. v1 images:
#      tier4's builder defaults (bundles of 32 MiB) and bundles of 1 MiB (--bundle-target).
#      Target: v1 within 1.1x the legacy time. Bundles are fetched whole: with 10% of the small
#      files changed at random, every 32 MiB bundle holds a changed member and is downloaded.
# Data is cached in $OTA_BENCH_DIR (default /var/tmp/ota-bench-v1). Prints one line per result.
set -euo pipefail
quick=0
n_runs=3
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --runs) n_runs=$2; shift ;;
    *) echo "usage: v1_bench.sh [--quick] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done
BENCH_DIR=${OTA_BENCH_DIR:-/var/tmp/ota-bench-v1}
mkdir -p "$BENCH_DIR/tmp"
export TMPDIR=$BENCH_DIR/tmp
source "$(dirname "$0")/../e2e/lib.sh"
BENCH_BIN=$OTA_BIN_DIR/test/bench
e2e_init
if ((quick)); then
  tiny_args=(--files 28000 --dirs 1500 --symlinks 500) mixed_args=(--files 10000 --bytes 115000000)
else
  tiny_args=(--files 280000 --dirs 15000 --symlinks 5000) mixed_args=(--files 100000 --bytes 1150000000)
fi
tag=$( ((quick)) && echo quick || echo full)
bash "$OTA_SOURCE_DIR/deploy/gen-certs.sh" "$BENCH_DIR/pki" >/dev/null
ln -s "$BENCH_DIR/pki" "$E2E_WORK/pki"
cat "$BENCH_DIR/pki/sign.pem" "$BENCH_DIR/pki/interm.pem" >"$BENCH_DIR/pki/chain.pem"

once() {  # once DIR COMMAND...: runs COMMAND unless DIR exists (DIR.partial while it runs)
  local dir=$1
  shift
  [[ -d $dir ]] && return 0
  rm -rf "$dir.partial"
  "$@" "$dir.partial" >/dev/null || fail "making $dir"
  mv "$dir.partial" "$dir"
}
gen() {  # gen KIND VARIANT ARGS... OUT
  "$BENCH_BIN/bench_tree_gen" --kind "$1" --variant "$2" "${@:3:$#-3}" --out "${!#}"
}
legacy_image() { "$OTA_IMAGE" build --rootfs "$1" --key "$BENCH_DIR/pki/sign.key" --cert "$BENCH_DIR/pki/sign.pem" --out "$2"; }
v1_image() {  # v1_image ROOTFS [knobs...] OUT
  "$OTA_IMAGE" build --format v1 --rootfs "$1" --key "$BENCH_DIR/pki/sign.key" \
    --cert "$BENCH_DIR/pki/chain.pem" "${@:2:$#-2}" --out "${!#}"
}
changed_tree() {  # changed_tree FROM OUT: every 10th regular file gets new bytes, same size
  cp -a "$1" "$2"
  local f n=0
  while IFS= read -r -d '' f; do
    n=$((n + 1))
    ((n % 10 == 0)) || continue
    head -c "$(stat -c %s "$f")" /dev/urandom >"$f"
  done < <(find "$2" -type f -print0 | sort -z)
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- data
tiny=$BENCH_DIR/tiny-$tag mixed=$BENCH_DIR/mixed-$tag
once "$tiny" gen tiny 0 "${tiny_args[@]}"
once "$tiny-changed" gen tiny 1 "${tiny_args[@]}"
mkdir -p "$BENCH_DIR/www"
once "$BENCH_DIR/www/tiny-$tag-legacy" legacy_image "$tiny"
once "$BENCH_DIR/www/tiny-$tag-v1" v1_image "$tiny"
once "$mixed" gen mixed 0 "${mixed_args[@]}"
once "$mixed-10pct" changed_tree "$mixed"
once "$BENCH_DIR/www/mixed-$tag-legacy" legacy_image "$mixed-10pct"
once "$BENCH_DIR/www/mixed-$tag-v1" v1_image "$mixed-10pct"
v1_small_bundles() { v1_image "$1" --bundle-target 1048576 "$2"; }
once "$BENCH_DIR/www/mixed-$tag-v1b1m" v1_small_bundles "$mixed-10pct"
OTA_TEST_PORTS_OWNER=$$ "$HARNESS" start "$E2E_WORK/nginx" "$BENCH_DIR/www" >/dev/null || fail "nginx"
source "$E2E_WORK/nginx/ports.env"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- A: metadata phase
for format in legacy v1; do
  : >"$E2E_WORK/meta-$format.jsonl"
  for ((i = 0; i <= n_runs; i++)); do  # run 0: warm-up
    out=$("$BENCH_BIN/metadata_bench" --url "http://127.0.0.1:$HTTP_PORT/tiny-$tag-$format" \
      --certs "$BENCH_DIR/pki/certs" --active "$tiny-changed" --standby-parent "$E2E_WORK" \
      2>>"$E2E_WORK/meta.log") || fail "metadata_bench $format: $(tail -3 "$E2E_WORK/meta.log")"
    ((i == 0)) || echo "$out" >>"$E2E_WORK/meta-$format.jsonl"
  done
  j=$E2E_WORK/meta-$format.jsonl
  echo "A $format: total $(jq -r .total_seconds "$j" | median) s (runs: $(jq -r .total_seconds "$j" | paste -sd' ')), load $(jq -r .load_seconds "$j" | median) s (fetch $(jq -r .fetch_seconds "$j" | median) s), index $(jq -r .index_seconds "$j" | median) s, delta $(jq -r .delta_seconds "$j" | median) s, peak RSS $(jq -r .peak_rss_kib "$j" | sort -n | tail -1) KiB, entries $(jq -r .entries "$j" | head -1), cpu $(jq -r .total_cpu_seconds "$j" | median) s"
done

# --- B: 10%-changed update
run_update() {  # run_update IMAGE: prints seconds from the request to boot/next_boot
  local image=$1 format=${1%%b1m} name=ecu-$1 slots
  rm -rf "${E2E_WORK:?}/$name"
  slots=$E2E_WORK/$name/slots
  mkdir -p "$slots/boot/slot_a" "$E2E_WORK/$name/config"
  # The active slot is only read by an update: a hard-linked copy is as good as a real one.
  cp -al "$mixed" "$slots/slot_a"
  printf v1 >"$slots/boot/slot_a/version"
  printf 'format_version: 1\necu_id: "autoware"\nip_addr: "127.0.0.1"\nbootloader: dir\n' \
    >"$E2E_WORK/$name/config/ecu_info.yml"
  printf 'enable_local_ota_proxy: false\n' >"$E2E_WORK/$name/config/proxy_info.yml"
  start_otaclient "$name" --no-reboot
  local t0 t1 pid_var="OTA_PID_${name//[^A-Za-z0-9_]/_}"
  t0=$EPOCHREALTIME
  "$OTACTL" update --target "127.0.0.1:$(cat "$E2E_WORK/$name/otaclient.port")" --ecu autoware \
    --version v2 --url "http://127.0.0.1:$HTTP_PORT/mixed-$tag-$image" --cookies '' >/dev/null ||
    fail "update $format rejected"
  until [[ -e $slots/boot/next_boot ]]; do
    kill -0 "${!pid_var}" 2>/dev/null || fail "otaclient died ($format)"
    sleep 0.01
  done
  t1=$EPOCHREALTIME
  # CPU seconds of otaclient (all threads, user + system): less at the mercy of other load.
  local cpu
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/${!pid_var}/stat")
  kill "${!pid_var}"
  wait "${!pid_var}" 2>/dev/null || true
  grep -q "format=$format" "$E2E_WORK/otaclient-$name.log" || fail "not read as $format"
  grep -o 'v1 contents fetched.*' "$E2E_WORK/otaclient-$name.log" >>"$E2E_WORK/fetched.log" || true
  [[ -n ${expected_tree:-} ]] || expected_tree=$(tree_of "$mixed-10pct")
  [[ "$(tree_of "$slots/slot_b")" == "$expected_tree" ]] || fail "$format: slot b != the tree"
  rm -rf "${E2E_WORK:?}/$name" "$E2E_WORK/otaclient-$name.log"
  ports_release_all >/dev/null 2>&1 || true
  awk -v a="$t0" -v b="$t1" -v c="$cpu" 'BEGIN { printf "%.2f %s\n", b - a, c }'
}
: >"$E2E_WORK/upd-legacy" && : >"$E2E_WORK/upd-v1" && : >"$E2E_WORK/upd-v1b1m"
run_update legacy >/dev/null  # warm-up (page cache)
for ((i = 1; i <= n_runs; i++)); do
  for image in legacy v1 v1b1m; do run_update "$image" >>"$E2E_WORK/upd-$image"; done
done
l=$(cut -d' ' -f1 "$E2E_WORK/upd-legacy" | median)
lc=$(cut -d' ' -f2 "$E2E_WORK/upd-legacy" | median)
for image in v1 v1b1m; do
  v=$(cut -d' ' -f1 "$E2E_WORK/upd-$image" | median)
  vc=$(cut -d' ' -f2 "$E2E_WORK/upd-$image" | median)
  echo "B 10%-changed update (wall s, CPU s of otaclient): legacy $l / $lc ($(cut -d' ' -f1 "$E2E_WORK/upd-legacy" | paste -sd' ')), $image $v / $vc ($(cut -d' ' -f1 "$E2E_WORK/upd-$image" | paste -sd' ')); ratio wall $(awk -v a="$v" -v b="$l" 'BEGIN { printf "%.2f", a / b }'), CPU $(awk -v a="$vc" -v b="$lc" 'BEGIN { printf "%.2f", a / b }')"
done
echo "B network: legacy $(du -sb "$BENCH_DIR/www/mixed-$tag-legacy/data" | cut -f1) B image data; v1 fetch summaries: $(sort -u "$E2E_WORK/fetched.log" | tr '\n' ';')"
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
