#!/usr/bin/env bash
# otaproxy benchmarks, one command, each against nginx measured in the same run on the same data:
#   1. warm cache: 8 concurrent clients each fetch the whole file set (mixed sizes) through the
#      proxy; aggregate throughput, otaproxy vs nginx proxy_cache (target >= 1.0x)
#   2. cold cache: the same 8 clients on an empty cache; wall time, otaproxy vs nginx proxy_cache
#      with proxy_cache_lock on (target <= 1.0x); upstream GETs per unique file (target 1)
#   3. otaproxy peak RSS during the warm runs (target <= 32 MB), nginx's next to it
#
#   test/bench/otaproxy_bench.sh            1 GiB of files, 3 runs, medians
#   test/bench/otaproxy_bench.sh --quick    128 MiB, for a smoke run
#   test/bench/otaproxy_bench.sh --runs N
# OTA_BIN_DIR: build with otaproxy/otaproxy (default build/release). OTA_BENCH_DIR: where data
# and results live (default /var/tmp/ota-bench; results in otaproxy-results.md).
# Both proxies get the same origin (nginx, test/lib/nginx/nginx-harness.sh), the same clients
# (curl, 4 parallel keep-alive transfers each, bodies to /dev/null) and both caches sit on the
# same file system; nginx runs with one worker per core (master + 2 workers here).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${OTA_SOURCE_DIR:=$(cd "$here/../.." && pwd)}"
: "${OTA_BIN_DIR:=$OTA_SOURCE_DIR/build/release}"
: "${OTA_BENCH_DIR:=/var/tmp/ota-bench}"
source "$OTA_SOURCE_DIR/test/e2e/lib.sh"
OTAPROXY=$OTA_BIN_DIR/otaproxy/otaproxy

quick=0
runs=3
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --runs) runs=$2; shift ;;
    *) echo "usage: $0 [--quick] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x "$OTAPROXY" ]] || fail "missing $OTAPROXY (cmake --preset release && cmake --build build/release --target otaproxy)"
grep -q 'CMAKE_BUILD_TYPE:STRING=Debug' "$OTA_BIN_DIR/CMakeCache.txt" 2>/dev/null &&
  log "WARNING: $OTA_BIN_DIR is a debug build"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

clients=8
# Data: deterministic sizes, random bytes; ~1 GiB = 96 x 6 MiB + 1600 x 192 KiB avg + 6000 x 16 KiB avg.
if ((quick)); then label=quick; scale=8; else label=full; scale=1; fi
data=$OTA_BENCH_DIR/otaproxy-$label
if [[ ! -f $data/.stamp ]]; then
  log "generating $data"
  rm -rf "$data"
  mkdir -p "$data/www/mix"
  RANDOM=42
  i=0
  for ((n = 0; n < 96 / scale; n++)); do head -c $((6291456 + RANDOM)) /dev/urandom >"$data/www/mix/l$i"; i=$((i + 1)); done
  for ((n = 0; n < 1600 / scale; n++)); do head -c $((65536 + RANDOM * 8)) /dev/urandom >"$data/www/mix/m$i"; i=$((i + 1)); done
  for ((n = 0; n < 6000 / scale; n++)); do head -c $((1024 + RANDOM)) /dev/urandom >"$data/www/mix/s$i"; i=$((i + 1)); done
  touch "$data/.stamp"
fi
files=$(find "$data/www/mix" -type f | wc -l)
total_bytes=$(du -sb "$data/www/mix" | cut -f1)
log "data: $files files, $((total_bytes / 1048576)) MiB; $clients clients each fetch all of it"

mkdir -p "$OTA_BENCH_DIR/tmp"
E2E_WORK=$(mktemp -d "$OTA_BENCH_DIR/tmp/ota-e2e.XXXXXX")
NGX_CACHE_PID=
cleanup() {
  if [[ -n "$NGX_CACHE_PID" ]]; then kill "$NGX_CACHE_PID" 2>/dev/null || true; wait "$NGX_CACHE_PID" 2>/dev/null || true; fi
  e2e_cleanup
}
trap cleanup EXIT
ln -s "$data/www/mix" "$E2E_WORK/www" 2>/dev/null || true
mkdir -p "$E2E_WORK/www-root"
ln -s "$data/www/mix" "$E2E_WORK/www-root/mix"
OTA_TEST_PORTS_OWNER=$$ "$HARNESS" start "$E2E_WORK/nginx" "$E2E_WORK/www-root" >/dev/null ||
  fail "origin nginx did not start"
source "$E2E_WORK/nginx/ports.env"
ORIGIN_LOG=$E2E_WORK/nginx/access.log

# One curl config per client: every file, half the clients in reverse order.
mkdir -p "$E2E_WORK/clients"
mapfile -t names < <(cd "$data/www/mix" && ls)
for ((c = 0; c < clients; c++)); do
  if ((c % 2)); then printf '%s\n' "${names[@]}" | tac; else printf '%s\n' "${names[@]}"; fi |
    awk -v port="$HTTP_PORT" '{printf "url = \"http://127.0.0.1:%s/mix/%s\"\noutput = \"/dev/null\"\n", port, $1}' \
      >"$E2E_WORK/clients/c$c.curlrc"
done

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# run_clients PROXY_PORT → prints wall seconds; fails if any transfer failed.
run_clients() {
  local port=$1 c pids=() failed=0 start end
  start=$(date +%s.%N)
  for ((c = 0; c < clients; c++)); do
    curl -sS --no-progress-meter --fail -x "http://127.0.0.1:$port" --parallel --parallel-max 4 \
      -K "$E2E_WORK/clients/c$c.curlrc" &
    pids+=($!)
  done
  for c in "${pids[@]}"; do wait "$c" || failed=1; done
  end=$(date +%s.%N)
  ((failed == 0)) || fail "a client failed through port $port"
  calc "$end - $start"
}

origin_gets() { grep -c 'req="GET /mix/' "$ORIGIN_LOG" || true; }

# --- otaproxy (any free port, read from its port file; a new one each start)
OURS_PORT=
OURS_PID=
start_ours() {  # fresh empty cache each time
  rm -rf "$E2E_WORK/ours/cache" "$E2E_WORK/ours/port"
  mkdir -p "$E2E_WORK/ours/config"
  printf 'enable_local_ota_proxy: true\ngateway: false\n' >"$E2E_WORK/ours/config/proxy_info.yaml"
  "$OTAPROXY" --config-dir "$E2E_WORK/ours/config" --listen-addr 127.0.0.1 --listen-port 0 \
    --port-file "$E2E_WORK/ours/port" --cache-dir "$E2E_WORK/ours/cache" \
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
  local dir=$E2E_WORK/ngx
  rm -rf "$dir"
  mkdir -p "$dir/cache" "$dir/tmp"
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
  proxy_temp_path "$dir/tmp";
  proxy_cache_path "$dir/cache" levels=1:2 keys_zone=ota:64m max_size=100g inactive=1d use_temp_path=off;
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
hwm_kib() { local p sum=0 v; for p in "$@"; do v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); sum=$((sum + v)); done; echo "$sum"; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -a cold_ours warm_ours cold_ngx warm_ngx rss_ours rss_ngx gets_ours gets_ngx
for ((r = 1; r <= runs; r++)); do
  log "run $r/$runs: otaproxy cold"
  start_ours
  before=$(origin_gets)
  cold_ours+=("$(run_clients "$OURS_PORT")")
  gets_ours+=("$(( $(origin_gets) - before ))")
  reset_hwm "$OURS_PID"
  log "run $r/$runs: otaproxy warm"
  before=$(origin_gets)
  warm_ours+=("$(run_clients "$OURS_PORT")")
  (( $(origin_gets) == before )) || fail "otaproxy warm run went upstream"
  rss_ours+=("$(hwm_kib "$OURS_PID")")
  stop_ours

  log "run $r/$runs: nginx proxy_cache cold"
  start_nginx_cache
  before=$(origin_gets)
  cold_ngx+=("$(run_clients "$NGX_PORT")")
  gets_ngx+=("$(( $(origin_gets) - before ))")
  mapfile -t npids < <(nginx_pids)
  reset_hwm "${npids[@]}"
  log "run $r/$runs: nginx proxy_cache warm"
  before=$(origin_gets)
  warm_ngx+=("$(run_clients "$NGX_PORT")")
  (( $(origin_gets) == before )) || log "note: nginx warm run went upstream"
  rss_ngx+=("$(hwm_kib "${npids[@]}")")
  stop_nginx_cache
done

agg_mib=$((clients * total_bytes / 1048576))
m_cold_ours=$(printf '%s\n' "${cold_ours[@]}" | median)
m_cold_ngx=$(printf '%s\n' "${cold_ngx[@]}" | median)
m_warm_ours=$(printf '%s\n' "${warm_ours[@]}" | median)
m_warm_ngx=$(printf '%s\n' "${warm_ngx[@]}" | median)
m_rss_ours=$(printf '%s\n' "${rss_ours[@]}" | median)
m_rss_ngx=$(printf '%s\n' "${rss_ngx[@]}" | median)
tp_ours=$(calc "$agg_mib / $m_warm_ours")
tp_ngx=$(calc "$agg_mib / $m_warm_ngx")
max_gets_ours=$(printf '%s\n' "${gets_ours[@]}" | sort -n | tail -1)
max_gets_ngx=$(printf '%s\n' "${gets_ngx[@]}" | sort -n | tail -1)
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }

results=$OTA_BENCH_DIR/otaproxy-results.md
{
  echo "otaproxy benchmarks ($label: $files files, $((total_bytes / 1048576)) MiB, $clients clients, medians of $runs; $(date -u +%F), commit $(git -C "$OTA_SOURCE_DIR" rev-parse --short HEAD 2>/dev/null || echo ?))"
  echo
  echo "| benchmark | otaproxy | nginx, same run | ratio | target | result |"
  echo "|---|---|---|---|---|---|"
  printf '| warm cache, aggregate throughput (%d x %d MiB) | %.0f MiB/s | %.0f MiB/s proxy_cache | %.2fx | >= 1.0x | %s |\n' \
    "$clients" "$((total_bytes / 1048576))" "$tp_ours" "$tp_ngx" "$(calc "$tp_ours / $tp_ngx")" \
    "$(verdict "$tp_ours >= $tp_ngx")"
  printf '| cold cache, wall time | %.2f s | %.2f s proxy_cache_lock on | %.2fx | <= 1.0x | %s |\n' \
    "$m_cold_ours" "$m_cold_ngx" "$(calc "$m_cold_ours / $m_cold_ngx")" \
    "$(verdict "$m_cold_ours <= $m_cold_ngx")"
  printf '| cold cache, upstream GETs / unique file (worst run) | %s / %s | %s / %s | | = 1 | %s |\n' \
    "$max_gets_ours" "$files" "$max_gets_ngx" "$files" "$(verdict "$max_gets_ours == $files")"
  printf '| peak RSS during the warm run | %.1f MiB | %.1f MiB (master + workers) | | <= 32 MB | %s |\n' \
    "$(calc "$m_rss_ours / 1024")" "$(calc "$m_rss_ngx / 1024")" \
    "$(verdict "$m_rss_ours * 1024 <= 32000000")"
  echo
  echo "raw: cold_ours=(${cold_ours[*]}) cold_nginx=(${cold_ngx[*]}) warm_ours=(${warm_ours[*]}) warm_nginx=(${warm_ngx[*]}) rss_kib_ours=(${rss_ours[*]}) rss_kib_nginx=(${rss_ngx[*]}) gets_ours=(${gets_ours[*]}) gets_nginx=(${gets_ngx[*]})"
} | tee "$results"
