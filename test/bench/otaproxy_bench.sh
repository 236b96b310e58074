#!/usr/bin/env bash
# otaproxy benchmarks, one command, each against nginx proxy_cache (proxy_cache_lock on) measured
# in the same run on the same data by the same clients. Three data sets / client mixes:
#   ota    7,696 files / ~979 MiB (96 x 6 MiB, 1,600 x 64-320 KiB, 6,000 x 1-33 KiB);
#          8 curl clients, 4 keep-alive transfers each, every client fetching the whole set
#   odd    5,000 files of 64 B-1 MiB (log-uniform sizes, odd names: spaces, % + : , ' & ; # ?,
#          non-ASCII, in odd directories) plus four of 50, 64, 80 and 100 MiB; same 8 x 4 clients
#   scale  the ota files, 64 curl clients x 1 keep-alive transfer each (a large vehicle, or a
#          depot updating several vehicles through one proxy), every client fetching the whole
#          set, each starting at a different place in it
# For each set and run: the proxy on an empty cache (cold: wall time, upstream GETs per unique
# file), then again (warm: aggregate throughput = clients x set bytes / wall time), peak RSS of
# each phase, and for every client its own time (fair share: slowest / fastest client).
# Targets: warm throughput >= 1.0x nginx, cold wall time <= 1.0x nginx, 1 upstream GET per file,
# peak RSS <= 32 MB, no failed transfer (a failed client fails the script), scale: slowest client
# within 2x of the fastest.
#
#   test/bench/otaproxy_bench.sh                   all three sets, 3 runs each, medians
#   test/bench/otaproxy_bench.sh --set odd,scale   a subset
#   test/bench/otaproxy_bench.sh --quick           1/8 of the data, for a smoke run
#   test/bench/otaproxy_bench.sh --runs N
# OTA_BIN_DIR: build with otaproxy/otaproxy (default build/release). OTA_BENCH_DIR: where data
# and results live (default /var/tmp/ota-bench; results in otaproxy-results.md, the load average
# before and after each set next to its table).
# Both proxies get the same origin (nginx, test/lib/nginx/nginx-harness.sh, one process), the
# same clients (curl, bodies to /dev/null), both caches sit on the same file system, `sync` runs
# before every timed phase; nginx runs with one worker per core (master + 2 workers here).
# The caches live on a freshly made ext4 (mkfs defaults, as an ECU's cache partition; needs
# root): on a long-used file system without a journal (this project's VMs) every file a cold
# cache creates right after the last run's cache was deleted costs up to milliseconds in ext4's
# inode allocator (find_inode_bit/recently_deleted, perf), for either proxy, by how the deleted
# inodes happen to lie: cold times then measure the file system's history. OTA_BENCH_FRESH_FS=0
# puts the caches under $OTA_BENCH_DIR as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${OTA_SOURCE_DIR:=$(cd "$here/../.." && pwd)}"
: "${OTA_BIN_DIR:=$OTA_SOURCE_DIR/build/release}"
: "${OTA_BENCH_DIR:=/var/tmp/ota-bench}"
source "$OTA_SOURCE_DIR/test/e2e/lib.sh"
OTAPROXY=$OTA_BIN_DIR/otaproxy/otaproxy

quick=0
runs=3
sets=ota,odd,scale
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --runs) runs=$2; shift ;;
    --set) sets=$2; shift ;;
    *) echo "usage: $0 [--quick] [--runs N] [--set ota,odd,scale]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x "$OTAPROXY" ]] || fail "missing $OTAPROXY (cmake --preset release && cmake --build build/release --target otaproxy)"
grep -q 'CMAKE_BUILD_TYPE:STRING=Debug' "$OTA_BIN_DIR/CMakeCache.txt" 2>/dev/null &&
  log "WARNING: $OTA_BIN_DIR is a debug build"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ((quick)); then label=quick; scale=8; else label=full; scale=1; fi

# --- data (deterministic names and sizes, random bytes), generated once under $OTA_BENCH_DIR
# make_ota_set DIR: ~1 GiB = 96 x 6 MiB + 1600 x 192 KiB avg + 6000 x 16 KiB avg.
make_ota_set() {
  local dir=$1 i=0 n
  RANDOM=42
  for ((n = 0; n < 96 / scale; n++)); do head -c $((6291456 + RANDOM)) /dev/urandom >"$dir/l$i"; i=$((i + 1)); done
  for ((n = 0; n < 1600 / scale; n++)); do head -c $((65536 + RANDOM * 8)) /dev/urandom >"$dir/m$i"; i=$((i + 1)); done
  for ((n = 0; n < 6000 / scale; n++)); do head -c $((1024 + RANDOM)) /dev/urandom >"$dir/s$i"; i=$((i + 1)); done
}
# make_odd_set DIR: 5000 files, sizes log-uniform in [64 B, 1 MiB], names with characters a URL
# must escape, in seven directories; four large files of 50, 64, 80, 100 MiB.
make_odd_set() {
  local dir=$1 size name
  LC_ALL=C awk -v count=$((5000 / scale)) 'BEGIN {
    srand(42)
    split("plain|with space|ü-dir|a+b|x%y|deep/er/path|comma,dir", dirs, "|")
    split(" space.bin|+plus|%25pct|colon:x|comma,|'\''quote'\''|(paren)|&amp=x|~tilde|@at!|$dollar;|ünïcödé|日本語|#hash|?query|[br]|a b  c|.dot.|UPPER|eq=ual", odd, "|")
    for (i = 0; i < count; i++) {
      size = int(exp(log(64) + rand() * (log(1048576) - log(64))))
      printf "%d\t%s/%04d%s\n", size, dirs[i % 7 + 1], i, odd[i % 20 + 1]
    }
  }' | while IFS=$'\t' read -r size name; do
    mkdir -p "$dir/$(dirname "$name")"
    head -c "$size" /dev/urandom >"$dir/$name"
  done
  for size in 50 64 80 100; do
    mkdir -p "$dir/large"
    head -c $((size * 1048576 / scale)) /dev/urandom >"$dir/large/big $size MiB.img"
  done
}
# data_dir SET: generated on first use (the stamp names how).
data_dir() {
  local kind=$1 dir
  dir=$OTA_BENCH_DIR/otaproxy-$kind-$label
  if [[ ! -f $dir/.stamp ]]; then
    log "generating $dir"
    rm -rf "$dir"
    mkdir -p "$dir/www/mix"
    "make_${kind}_set" "$dir/www/mix"
    echo "$kind scale=1/$scale v2" >"$dir/.stamp"
  fi
  echo "$dir"
}

mkdir -p "$OTA_BENCH_DIR/tmp"
E2E_WORK=$(mktemp -d "$OTA_BENCH_DIR/tmp/ota-e2e.XXXXXX")
NGX_CACHE_PID=
FRESH_FS=
cleanup() {
  if [[ -n "$NGX_CACHE_PID" ]]; then kill "$NGX_CACHE_PID" 2>/dev/null || true; wait "$NGX_CACHE_PID" 2>/dev/null || true; fi
  e2e_cleanup
  if [[ -n "$FRESH_FS" ]]; then
    umount "$FRESH_FS/mnt" 2>/dev/null || umount -l "$FRESH_FS/mnt" 2>/dev/null || true
    rm -rf "$FRESH_FS"
  fi
}
trap cleanup EXIT
CACHE_ROOT=$E2E_WORK
cache_fs="$OTA_BENCH_DIR as it is"
if [[ "${OTA_BENCH_FRESH_FS:-1}" == 1 ]]; then
  [[ $(id -u) -eq 0 ]] || fail "the fresh cache file system needs root (or OTA_BENCH_FRESH_FS=0)"
  FRESH_FS=$(mktemp -d "$OTA_BENCH_DIR/tmp/ota-bench-fs.XXXXXX")
  truncate -s 16G "$FRESH_FS/caches.img"
  mkfs.ext4 -q -F "$FRESH_FS/caches.img" || fail "mkfs.ext4 of the cache file system"
  mkdir -p "$FRESH_FS/mnt"
  mount -o loop "$FRESH_FS/caches.img" "$FRESH_FS/mnt" || fail "mount of the cache file system"
  CACHE_ROOT=$FRESH_FS/mnt
  cache_fs="a fresh ext4 (mkfs.ext4 defaults, loop file under $OTA_BENCH_DIR)"
fi
log "caches on $cache_fs"
# The origin serves www-root/<set>/ → each data set's files.
mkdir -p "$E2E_WORK/www-root"
OTA_TEST_PORTS_OWNER=$$ "$HARNESS" start "$E2E_WORK/nginx" "$E2E_WORK/www-root" >/dev/null ||
  fail "origin nginx did not start"
# shellcheck disable=SC1091 # written by the harness
source "$E2E_WORK/nginx/ports.env"
ORIGIN_LOG=$E2E_WORK/nginx/access.log

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# write_clients KIND CLIENTS: one curl config per client, every file of the set, URL-escaped;
# with 8 clients half go in reverse order, with more each starts at its own offset.
write_clients() {
  local kind=$1 n=$2
  local dir=$E2E_WORK/clients-$kind-$n
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$E2E_WORK/www-root/$kind/" && find . -type f | LC_ALL=C sort | sed 's|^\./||') |
    LC_ALL=C awk -v port="$HTTP_PORT" -v kind="$kind" -v n="$n" -v out="$dir" '
      BEGIN { for (i = 0; i < 256; i++) ord[sprintf("%c", i)] = i }
      function esc(s,   r, i, ch) {
        r = ""
        for (i = 1; i <= length(s); i++) {
          ch = substr(s, i, 1)
          if (ch ~ /[A-Za-z0-9._~\/-]/) r = r ch; else r = r sprintf("%%%02X", ord[ch])
        }
        return r
      }
      { url[NR - 1] = sprintf("url = \"http://127.0.0.1:%s/%s/%s\"\noutput = \"/dev/null\"\n", port, kind, esc($0)) }
      END {
        for (c = 0; c < n; c++) {
          file = out "/c" c ".curlrc"
          for (k = 0; k < NR; k++) {
            if (n <= 8) j = (c % 2) ? NR - 1 - k : k; else j = (k + int(c * NR / n)) % NR
            printf "%s", url[j] > file
          }
          close(file)
        }
      }'
}

# run_clients PORT KIND CLIENTS PARALLEL TIMES_FILE → prints wall seconds; writes one line per
# client (its own seconds) to TIMES_FILE; fails if any transfer failed.
run_clients() {
  local port=$1 kind=$2 n=$3 par=$4 times=$5 c pids=() failed=0 start end
  local dir=$E2E_WORK/clients-$kind-$n
  rm -rf "$dir/t"
  mkdir -p "$dir/t"
  sync
  start=$(date +%s.%N)
  for ((c = 0; c < n; c++)); do
    if ((par > 1)); then
      /usr/bin/time -f '%e %U %S' -o "$dir/t/c$c" curl -sS --no-progress-meter --fail \
        -x "http://127.0.0.1:$port" --parallel --parallel-max "$par" -K "$dir/c$c.curlrc" &
    else
      /usr/bin/time -f '%e %U %S' -o "$dir/t/c$c" curl -sS --no-progress-meter --fail \
        -x "http://127.0.0.1:$port" -K "$dir/c$c.curlrc" &
    fi
    pids+=($!)
  done
  for c in "${pids[@]}"; do wait "$c" || failed=1; done
  end=$(date +%s.%N)
  ((failed == 0)) || fail "a client failed through port $port"
  cat "$dir"/t/c* >"$times"
  calc "$end - $start"
}
# From a times file (per client: wall user sys seconds): slowest / fastest client, clients' CPU.
fairness() { sort -g "$1" | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f", hi / lo}'; }
clients_cpu() { awk '{t += $2 + $3} END {printf "%.2f", t}' "$1"; }

origin_gets() { grep -c 'req="GET /' "$ORIGIN_LOG" || true; }

# --- otaproxy (any free port, read from its port file; a new one each start)
OURS_PORT=
OURS_PID=
start_ours() {  # fresh empty cache each time
  rm -rf "$CACHE_ROOT/ours-cache" "$E2E_WORK/ours/port"
  mkdir -p "$E2E_WORK/ours/config"
  printf 'enable_local_ota_proxy: true\ngateway: false\n' >"$E2E_WORK/ours/config/proxy_info.yaml"
  "$OTAPROXY" --config-dir "$E2E_WORK/ours/config" --listen-addr 127.0.0.1 --listen-port 0 \
    --port-file "$E2E_WORK/ours/port" --cache-dir "$CACHE_ROOT/ours-cache" \
    --disk-soft-percent 95 --disk-hard-percent 98 --log-level warning >>"$E2E_WORK/ours.log" 2>&1 &
  OURS_PID=$!
  E2E_PIDS+=("$OURS_PID")
  wait_port_file 60 "otaproxy" "$E2E_WORK/ours/port" "$OURS_PID"
  OURS_PORT=$PORT_FROM_FILE
}
stop_ours() { kill "$OURS_PID"; wait "$OURS_PID" 2>/dev/null || true; }

# --- nginx proxy_cache (master + one worker per core), forward proxy for absolute-form GETs; its
# port is in its config, so a test-port registry claim (released by e2e_cleanup)
port_claim NGX_PORT || fail "no test port for nginx proxy_cache"
start_nginx_cache() {
  local dir=$E2E_WORK/ngx cache=$CACHE_ROOT/ngx-cache
  rm -rf "$dir" "$cache"
  mkdir -p "$dir" "$cache/cache" "$cache/tmp"
  local user_line=""
  # Workers would otherwise drop to "nobody" and lose access to the 0700 work dir.
  [[ $(id -u) -eq 0 ]] && user_line="user root;"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
$user_line
worker_processes auto;
pid "$dir/nginx.pid";
error_log "$dir/error.log" warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  proxy_temp_path "$cache/tmp";
  proxy_cache_path "$cache/cache" levels=1:2 keys_zone=ota:64m max_size=100g inactive=1d use_temp_path=off;
  upstream origin { server 127.0.0.1:$HTTP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache ota;
      proxy_cache_key \$request_uri;
      proxy_cache_valid 200 1d;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 600s;
      proxy_cache_lock_age 600s;
      proxy_buffering on;
    }
  }
}
CONF
  "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" </dev/null >"$dir/out" 2>&1 &
  NGX_CACHE_PID=$!
  wait_until 15 "nginx proxy_cache listens" bash -c "(exec 3<>/dev/tcp/127.0.0.1/$NGX_PORT) 2>/dev/null"
}
stop_nginx_cache() { kill "$NGX_CACHE_PID"; wait "$NGX_CACHE_PID" 2>/dev/null || true; NGX_CACHE_PID=; }
nginx_pids() { echo "$NGX_CACHE_PID"; pgrep -P "$NGX_CACHE_PID" || true; }
reset_hwm() { local p; for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }
# CPU seconds (user + system, all threads) the processes used so far.
cpu_s() { local p t=0 v; for p in "$@"; do v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0); t=$((t + v)); done; calc "$t / $(getconf CLK_TCK)"; }
hwm_kib() { local p sum=0 v; for p in "$@"; do v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); sum=$((sum + v)); done; echo "$sum"; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
med() { printf '%s\n' "$@" | median; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }

results=$OTA_BENCH_DIR/otaproxy-results.md
: >"$results"
commit=$(git -C "$OTA_SOURCE_DIR" rev-parse --short HEAD 2>/dev/null || echo ?)
git -C "$OTA_SOURCE_DIR" diff --quiet HEAD -- otaproxy 2>/dev/null || commit="$commit+local changes"

# bench_set NAME KIND CLIENTS PARALLEL
bench_set() {
  local name=$1 kind=$2 clients=$3 par=$4 dir files total_bytes r before load_before t
  dir=$(data_dir "$kind")
  ln -sfn "$dir/www/mix" "$E2E_WORK/www-root/$kind"
  files=$(find "$dir/www/mix" -type f | wc -l)
  total_bytes=$(du -sb "$dir/www/mix" | cut -f1)
  write_clients "$kind" "$clients"
  log "set $name: $files files, $((total_bytes / 1048576)) MiB; $clients clients x $par transfers, each fetching all of it"
  load_before=$(loadavg)
  local -a cold_ours=() warm_ours=() cold_ngx=() warm_ngx=() rssc_ours=() rssw_ours=() rssc_ngx=() \
    rssw_ngx=() gets_ours=() gets_ngx=() fair_ours=() fair_ngx=() npids=() cpuc_ours=() \
    cpuw_ours=() cpuc_ngx=() cpuw_ngx=() ccpu_ours=() ccpu_ngx=() cpu0
  for ((r = 1; r <= runs; r++)); do
    log "$name run $r/$runs: otaproxy cold (load $(loadavg))"
    start_ours
    reset_hwm "$OURS_PID"
    before=$(origin_gets)
    cpu0=$(cpu_s "$OURS_PID")
    cold_ours+=("$(run_clients "$OURS_PORT" "$kind" "$clients" "$par" "$E2E_WORK/times")")
    cpuc_ours+=("$(calc "$(cpu_s "$OURS_PID") - $cpu0")")
    gets_ours+=("$(($(origin_gets) - before))")
    rssc_ours+=("$(hwm_kib "$OURS_PID")")
    reset_hwm "$OURS_PID"
    log "$name run $r/$runs: otaproxy warm"
    before=$(origin_gets)
    cpu0=$(cpu_s "$OURS_PID")
    warm_ours+=("$(run_clients "$OURS_PORT" "$kind" "$clients" "$par" "$E2E_WORK/times")")
    cpuw_ours+=("$(calc "$(cpu_s "$OURS_PID") - $cpu0")")
    (($(origin_gets) == before)) || fail "otaproxy warm run went upstream"
    rssw_ours+=("$(hwm_kib "$OURS_PID")")
    fair_ours+=("$(fairness "$E2E_WORK/times")")
    ccpu_ours+=("$(clients_cpu "$E2E_WORK/times")")
    stop_ours

    log "$name run $r/$runs: nginx proxy_cache cold (load $(loadavg))"
    start_nginx_cache
    mapfile -t npids < <(nginx_pids)
    reset_hwm "${npids[@]}"
    before=$(origin_gets)
    cpu0=$(cpu_s "${npids[@]}")
    cold_ngx+=("$(run_clients "$NGX_PORT" "$kind" "$clients" "$par" "$E2E_WORK/times")")
    cpuc_ngx+=("$(calc "$(cpu_s "${npids[@]}") - $cpu0")")
    gets_ngx+=("$(($(origin_gets) - before))")
    rssc_ngx+=("$(hwm_kib "${npids[@]}")")
    reset_hwm "${npids[@]}"
    log "$name run $r/$runs: nginx proxy_cache warm"
    before=$(origin_gets)
    cpu0=$(cpu_s "${npids[@]}")
    warm_ngx+=("$(run_clients "$NGX_PORT" "$kind" "$clients" "$par" "$E2E_WORK/times")")
    cpuw_ngx+=("$(calc "$(cpu_s "${npids[@]}") - $cpu0")")
    (($(origin_gets) == before)) || log "note: nginx warm run went upstream"
    rssw_ngx+=("$(hwm_kib "${npids[@]}")")
    fair_ngx+=("$(fairness "$E2E_WORK/times")")
    ccpu_ngx+=("$(clients_cpu "$E2E_WORK/times")")
    stop_nginx_cache
  done

  local agg_mib m_cold_ours m_cold_ngx m_warm_ours m_warm_ngx tp_ours tp_ngx max_gets_ours \
    max_gets_ngx rss_ours rss_ngx f_ours f_ngx
  agg_mib=$(calc "$clients * $total_bytes / 1048576")
  m_cold_ours=$(med "${cold_ours[@]}")
  m_cold_ngx=$(med "${cold_ngx[@]}")
  m_warm_ours=$(med "${warm_ours[@]}")
  m_warm_ngx=$(med "${warm_ngx[@]}")
  tp_ours=$(calc "$agg_mib / $m_warm_ours")
  tp_ngx=$(calc "$agg_mib / $m_warm_ngx")
  max_gets_ours=$(printf '%s\n' "${gets_ours[@]}" | sort -n | tail -1)
  max_gets_ngx=$(printf '%s\n' "${gets_ngx[@]}" | sort -n | tail -1)
  # RSS: the highest of all runs and both phases.
  rss_ours=$(printf '%s\n' "${rssc_ours[@]}" "${rssw_ours[@]}" | sort -n | tail -1)
  rss_ngx=$(printf '%s\n' "${rssc_ngx[@]}" "${rssw_ngx[@]}" | sort -n | tail -1)
  f_ours=$(printf '%s\n' "${fair_ours[@]}" | sort -g | tail -1)
  f_ngx=$(printf '%s\n' "${fair_ngx[@]}" | sort -g | tail -1)
  {
    echo "### $name: $files files, $((total_bytes / 1048576)) MiB, $clients clients x $par keep-alive transfers ($label, medians of $runs; $(date -u +%F), commit $commit)"
    echo
    echo "| benchmark | otaproxy | nginx proxy_cache, same run | ratio | target | result |"
    echo "|---|---|---|---|---|---|"
    printf '| warm cache, aggregate throughput (%d x %d MiB) | %.0f MiB/s | %.0f MiB/s | %.2fx | >= 1.0x | %s |\n' \
      "$clients" "$((total_bytes / 1048576))" "$tp_ours" "$tp_ngx" "$(calc "$tp_ours / $tp_ngx")" \
      "$(verdict "$tp_ours >= $tp_ngx")"
    printf '| cold cache, wall time | %.2f s | %.2f s | %.2fx | <= 1.0x | %s |\n' \
      "$m_cold_ours" "$m_cold_ngx" "$(calc "$m_cold_ours / $m_cold_ngx")" \
      "$(verdict "$m_cold_ours <= $m_cold_ngx")"
    printf '| cold cache, upstream GETs / unique file (worst run) | %s / %s | %s / %s | | = 1 | %s |\n' \
      "$max_gets_ours" "$files" "$max_gets_ngx" "$files" "$(verdict "$max_gets_ours == $files")"
    printf '| peak RSS, cold or warm (worst run) | %.1f MiB | %.1f MiB (master + workers) | | <= 32 MB | %s |\n' \
      "$(calc "$rss_ours / 1024")" "$(calc "$rss_ngx / 1024")" \
      "$(verdict "$rss_ours * 1024 <= 32000000")"
    printf '| warm, slowest / fastest client (worst run) | %.2f | %.2f | | <= 2 | %s |\n' \
      "$f_ours" "$f_ngx" "$(verdict "$f_ours <= 2")"
    printf '| proxy CPU seconds (user + sys), warm / cold | %.1f / %.1f s | %.1f / %.1f s | %.2fx / %.2fx | | |\n' \
      "$(med "${cpuw_ours[@]}")" "$(med "${cpuc_ours[@]}")" "$(med "${cpuw_ngx[@]}")" "$(med "${cpuc_ngx[@]}")" \
      "$(calc "$(med "${cpuw_ours[@]}") / $(med "${cpuw_ngx[@]}")")" "$(calc "$(med "${cpuc_ours[@]}") / $(med "${cpuc_ngx[@]}")")"
    printf '| curl clients CPU seconds, warm | %.1f s | %.1f s | %.2fx | | |\n' \
      "$(med "${ccpu_ours[@]}")" "$(med "${ccpu_ngx[@]}")" "$(calc "$(med "${ccpu_ours[@]}") / $(med "${ccpu_ngx[@]}")")"
    echo
    echo "load average before: $load_before, after: $(loadavg); caches on $cache_fs"
    echo
    echo "raw: cold_ours=(${cold_ours[*]}) cold_nginx=(${cold_ngx[*]}) warm_ours=(${warm_ours[*]}) warm_nginx=(${warm_ngx[*]}) rss_kib_cold_ours=(${rssc_ours[*]}) rss_kib_warm_ours=(${rssw_ours[*]}) rss_kib_cold_nginx=(${rssc_ngx[*]}) rss_kib_warm_nginx=(${rssw_ngx[*]}) gets_ours=(${gets_ours[*]}) gets_nginx=(${gets_ngx[*]}) fair_ours=(${fair_ours[*]}) fair_nginx=(${fair_ngx[*]}) cpu_cold_ours=(${cpuc_ours[*]}) cpu_warm_ours=(${cpuw_ours[*]}) cpu_cold_nginx=(${cpuc_ngx[*]}) cpu_warm_nginx=(${cpuw_ngx[*]}) clients_cpu_warm_ours=(${ccpu_ours[*]}) clients_cpu_warm_nginx=(${ccpu_ngx[*]})"
    echo
  } | tee -a "$results"
}

for set in ${sets//,/ }; do
  case $set in
    ota) bench_set ota ota 8 4 ;;
    odd) bench_set odd odd 8 4 ;;
    scale) bench_set scale ota 64 1 ;;
    *) fail "unknown set '$set' (ota, odd, scale)" ;;
  esac
done
log "results in $results"
