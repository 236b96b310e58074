#!/usr/bin/env bash
# otaproxy end to end with real processes: nginx upstream (test/lib/nginx/nginx-harness.sh),
# otaproxy binaries, curl clients.
#   otaproxy_e2e.sh cache    cold cache: 8 concurrent clients × 200 files, every byte right and
#                            exactly one upstream GET per file; warm: zero upstream GETs;
#                            restarted otaproxy: still warm, leftover temp files removed
#   otaproxy_e2e.sh faults   500/503/404 passed through and not cached; unreachable upstream →
#                            502; corrupted bytes with file_sha256 → client gets an error, nothing
#                            cached; without file_sha256 → retry_caching repairs the entry; zstd
#                            blob verified through its uncompressed sha256; upstream dropped
#                            mid-body → every client of the download gets an error, no entry
#   otaproxy_e2e.sh chain    ECU otaproxy → main otaproxy (gateway: https) → nginx, cookie
#                            reaching nginx through both, cache of the main proxy shared,
#                            retry_caching passed up the chain
#   otaproxy_e2e.sh limits   soft limit evicts least recently used, hard limit (bytes and file
#                            system %) keeps proxying without caching; 405/400/431/429; purge
#   otaproxy_e2e.sh child    child ECU (upper_ota_proxy set, cache left at its default: on) →
#                            gateway (no upper proxy, no gateway key: https) → nginx: the child
#                            writes no cache file and relays over http with
#                            Ota-File-Cache-Control, the gateway caches, one upstream GET per
#                            blob; --upper-proxy makes a child of a file without upper proxy
#   otaproxy_e2e.sh broken-cache  a cache dir that cannot be created, a cache database that
#                            cannot be opened: otaproxy starts anyway, relays every request, and
#                            its log and /_otaproxy/stats say why (cache "failed", the path)
#   otaproxy_e2e.sh broken-config  an invalid proxy_info.yaml: otaproxy starts with the defaults
#                            (as the Python otaproxy and our otaclient do), caches, and logs the
#                            error naming the file
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scenario=${1:?usage: otaproxy_e2e.sh cache|faults|chain|limits|child|broken-cache}
OTAPROXY=$OTA_BIN_DIR/otaproxy/otaproxy

fail() {
  log "FAIL: $*"
  local f
  for f in "${E2E_WORK:-/nonexistent}"/proxy-*.log; do
    [[ -f "$f" ]] && { echo "--- last lines of $f" >&2; tail -30 "$f" >&2; }
  done
  exit 1
}

command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || { echo "SKIP: nginx not installed"; exit 77; }
for tool in curl jq sha256sum; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
[[ -x "$OTAPROXY" ]] || fail "missing binary $OTAPROXY (build first)"
E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/otaproxy-e2e.XXXXXX")
trap e2e_cleanup EXIT
log "work dir $E2E_WORK"
mkdir -p "$E2E_WORK/www"

# start_proxy NAME PROXY_INFO_YAML [otaproxy flags]: sets PORT_<NAME>, PID_<NAME>. Any free
# port (0), read from the port file otaproxy writes once it listens; a restart gets a new one.
start_proxy() {
  local name=$1 yaml=$2 pid
  shift 2
  mkdir -p "$E2E_WORK/$name/config"
  # A proxy_info file that does not enable the local otaproxy has none (as upstream reads it).
  printf 'enable_local_ota_proxy: true\n%s\n' "$yaml" >"$E2E_WORK/$name/config/proxy_info.yaml"
  rm -f "$E2E_WORK/$name/port"
  "$OTAPROXY" --config-dir "$E2E_WORK/$name/config" --listen-addr 127.0.0.1 --listen-port 0 \
    --port-file "$E2E_WORK/$name/port" --cache-dir "$E2E_WORK/$name/cache" \
    --disk-soft-percent 100 --disk-hard-percent 100 --log-level warning "$@" \
    >>"$E2E_WORK/proxy-$name.log" 2>&1 &
  pid=$!
  E2E_PIDS+=("$pid")
  printf -v "PID_$name" '%s' "$pid"
  wait_port_file 15 "otaproxy $name" "$E2E_WORK/$name/port" "$pid"
  printf -v "PORT_$name" '%s' "$PORT_FROM_FILE"
  curl -sf -o /dev/null "http://127.0.0.1:$PORT_FROM_FILE/_otaproxy/stats" ||
    fail "otaproxy $name does not answer on the port it reported ($PORT_FROM_FILE)"
}
port_of() { local v="PORT_$1"; echo "${!v}"; }
# stop_proxy NAME [SIGNAL]
stop_proxy() {
  local v="PID_$1" pid
  pid=${!v}
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=() p
  for p in "${E2E_PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  E2E_PIDS=("${kept[@]}")
}
stat_of() {  # stat_of NAME FIELD
  curl -sf "http://127.0.0.1:$(port_of "$1")/_otaproxy/stats" | jq -r ".$2"
}
# through NAME CURL_ARGS...: curl through otaproxy NAME (no retries, errors on HTTP >= 400).
through() {
  local name=$1
  shift
  curl -sS --no-progress-meter --fail -x "http://127.0.0.1:$(port_of "$name")" "$@"
}
# upstream_gets REGEX: GETs nginx answered whose request target matches REGEX.
upstream_gets() { grep -cE "req=\"GET [^ ]*$1 " "$NGINX_LOG" || true; }
sha_of() { sha256sum "$1" | cut -c1-64; }
cc_header() { echo "Ota-File-Cache-Control: $1"; }

# make_files DIR COUNT: mixed sizes (every 10th 256 KiB-1 MiB, the rest 1-64 KiB), random bytes.
make_files() {
  local dir=$1 count=$2 i size
  mkdir -p "$dir"
  for ((i = 0; i < count; i++)); do
    if ((i % 10 == 0)); then size=$((262144 + RANDOM * 24)); else size=$((1024 + RANDOM * 2)); fi
    head -c "$size" /dev/urandom >"$dir/f$i"
  done
}

# fetch_set PROXY CLIENT_DIR ORDER(fwd|rev) COUNT: one curl client fetching files f0..f<COUNT-1>
# of /set/ over keep-alive connections (4 at a time), then checks every byte.
fetch_set() {
  local name=$1 out=$E2E_WORK/clients/$2 order=$3 count=$4 i cfg
  rm -rf "$out"
  mkdir -p "$out"
  cfg=$out.curlrc
  : >"$cfg"
  for ((i = 0; i < count; i++)); do
    local n=$i
    [[ $order == rev ]] && n=$((count - 1 - i))
    printf 'url = "http://127.0.0.1:%s/set/f%s"\noutput = "%s/f%s"\n' "$HTTP_PORT" "$n" "$out" "$n" \
      >>"$cfg"
  done
  through "$name" --parallel --parallel-max 4 -K "$cfg" || return 1
  (cd "$E2E_WORK/www/set" && sha256sum f*) | (cd "$out" && sha256sum --quiet -c -) >/dev/null
}

# run_clients PROXY COUNT_CLIENTS FILES: that many clients at once, half in reverse order.
run_clients() {
  local name=$1 clients=$2 files=$3 c pids=() failed=0
  for ((c = 0; c < clients; c++)); do
    local order=fwd
    ((c % 2)) && order=rev
    fetch_set "$name" "c$c" "$order" "$files" &
    pids+=($!)
  done
  for c in "${pids[@]}"; do wait "$c" || failed=1; done
  ((failed == 0)) || fail "a client got wrong or missing bytes through $name"
}

PLAIN='gateway: false'

case $scenario in
cache)
  make_files "$E2E_WORK/www/set" 200
  start_nginx
  start_proxy p "$PLAIN"
  log "cold cache: 8 clients x 200 files"
  run_clients p 8 200
  dupes=$(grep -oE 'req="GET /set/f[0-9]+ ' "$NGINX_LOG" | sort | uniq -c | awk '$1 != 1' | head)
  [[ -z "$dupes" ]] || fail "files fetched upstream more than once: $dupes"
  [[ $(upstream_gets "/set/f[0-9]+") == 200 ]] || fail "expected 200 upstream GETs, got $(upstream_gets "/set/f[0-9]+")"
  [[ $(stat_of p cache_entries) == 200 ]] || fail "expected 200 cache entries"
  log "cold: 1600 downloads correct, 200 upstream GETs (one per file); $(stat_of p flight_joins) joined a download in flight"

  log "warm cache: 8 clients again"
  run_clients p 8 200
  [[ $(upstream_gets "/set/f[0-9]+") == 200 ]] || fail "warm cache went upstream"
  log "warm: zero upstream GETs"

  log "restart otaproxy (SIGTERM), leftover temp file planted"
  stop_proxy p TERM
  head -c 1000 /dev/urandom >"$E2E_WORK/p/cache/tmp/tmp_999_0"
  start_proxy p "$PLAIN"
  [[ ! -e "$E2E_WORK/p/cache/tmp/tmp_999_0" ]] || fail "temp file survived the restart"
  [[ $(stat_of p cache_entries) == 200 ]] || fail "restarted proxy lost entries"
  run_clients p 2 200
  [[ $(upstream_gets "/set/f[0-9]+") == 200 ]] || fail "restarted proxy went upstream"
  [[ $(stat_of p cache_hits) == 400 ]] || fail "expected 400 hits after restart"

  log "crash (SIGKILL) once the batched index writes are in the database, then restart"
  wait_until 10 "index written" bash -c "[[ \$(curl -sf http://127.0.0.1:$PORT_p/_otaproxy/stats | jq .index_pending) == 0 ]]"
  stop_proxy p KILL
  start_proxy p "$PLAIN"
  [[ $(stat_of p cache_entries) == 200 ]] || fail "entries lost by a crash after the flush"
  run_clients p 1 200
  [[ $(upstream_gets "/set/f[0-9]+") == 200 ]] || fail "proxy restarted after a crash went upstream"
  log "restart: still warm, zero upstream GETs"
  ;;

faults)
  printf 'good content\n' >"$E2E_WORK/www/good.txt"
  start_nginx
  start_proxy p "$PLAIN"
  base=http://127.0.0.1:$HTTP_PORT

  for code in 500 503 404; do
    status=$(curl -s -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$PORT_p" "$base/status/$code/x")
    [[ $status == "$code" ]] || fail "upstream $code came back as $status"
    curl -s -o /dev/null -x "http://127.0.0.1:$PORT_p" "$base/status/$code/x"
    [[ $(upstream_gets "/status/$code/x") == 2 ]] || fail "$code response was cached"
  done
  log "500/503/404 passed through, not cached"

  port_claim closed || fail "no test port"  # claimed, never bound: connections are refused
  # shellcheck disable=SC2154 # closed: set by port_claim
  body=$(curl -s -w ' %{http_code}' -x "http://127.0.0.1:$PORT_p" "http://127.0.0.1:$closed/x")
  [[ $body == *" 502" && $body == *"127.0.0.1:$closed"* ]] || fail "unreachable upstream: '$body'"
  log "unreachable upstream: 502 naming it"

  # Corrupted bytes, file_sha256 given: the client must not get a complete 200.
  printf 'the real content\n' >"$E2E_WORK/real.txt"
  want=$(sha_of "$E2E_WORK/real.txt")
  printf 'tampered content\n' >"$E2E_WORK/www/blob"
  if through p -H "$(cc_header "file_sha256=$want")" -o "$E2E_WORK/got" "$base/blob" 2>/dev/null; then
    fail "corrupted bytes were delivered as a complete response"
  fi
  [[ ! -e "$E2E_WORK/p/cache/data/$want" ]] || fail "corrupted bytes became a cache entry"
  [[ $(stat_of p verify_failures) == 1 ]] || fail "verify failure not counted"
  cp "$E2E_WORK/real.txt" "$E2E_WORK/www/blob"
  through p -H "$(cc_header "file_sha256=$want")" -o "$E2E_WORK/got" "$base/blob"
  cmp -s "$E2E_WORK/got" "$E2E_WORK/real.txt" || fail "repaired upstream not served"
  [[ -e "$E2E_WORK/p/cache/data/$want" ]] || fail "verified content not cached"
  through p -H "$(cc_header "file_sha256=$want")" -D "$E2E_WORK/h" -o "$E2E_WORK/got" "$base/blob"
  grep -qi "^Ota-File-Cache-Control: file_sha256=$want" "$E2E_WORK/h" || fail "no sha256 echo"
  [[ $(upstream_gets "/blob") == 2 ]] || fail "expected 2 upstream GETs of /blob"
  log "corrupted bytes with file_sha256: client error, nothing cached; fixed upstream cached"

  # Without file_sha256 the proxy cannot tell; the client's retry_caching repairs the entry.
  printf 'tampered again\n' >"$E2E_WORK/www/plain"
  through p -o "$E2E_WORK/got" "$base/plain"
  printf 'the real plain\n' >"$E2E_WORK/www/plain"
  through p -o "$E2E_WORK/got" "$base/plain"
  [[ "$(cat "$E2E_WORK/got")" == "tampered again" ]] || fail "entry should still be the cached one"
  through p -H "$(cc_header retry_caching)" -o "$E2E_WORK/got" "$base/plain"
  [[ "$(cat "$E2E_WORK/got")" == "the real plain" ]] || fail "retry_caching did not refetch"
  through p -o "$E2E_WORK/got" "$base/plain"
  [[ "$(cat "$E2E_WORK/got")" == "the real plain" ]] || fail "retry_caching did not repair the entry"
  [[ $(upstream_gets "/plain") == 2 ]] || fail "expected 2 upstream GETs of /plain"
  log "corrupted bytes without file_sha256: retry_caching repaired the entry"

  # zstd blob: verified through its uncompressed sha256, echoed with its alg.
  head -c 200000 /dev/zero >"$E2E_WORK/zero"
  zsha=$(sha_of "$E2E_WORK/zero")
  zstd -q -f "$E2E_WORK/zero" -o "$E2E_WORK/www/zero.zst"
  through p -H "$(cc_header "file_sha256=$zsha,file_compression_alg=zst")" -D "$E2E_WORK/h" \
    -o "$E2E_WORK/got" "$base/zero.zst"
  cmp -s "$E2E_WORK/got" "$E2E_WORK/www/zero.zst" || fail "zst blob bytes differ"
  grep -qi "file_compression_alg=zst" "$E2E_WORK/h" || fail "alg not echoed"
  [[ -e "$E2E_WORK/p/cache/data/$zsha.zst" ]] || fail "verified zst blob not cached"
  head -c 1000 /dev/urandom >"$E2E_WORK/www/notzero.zst"
  if through p -H "$(cc_header "file_sha256=$(sha_of "$E2E_WORK/www/notzero.zst"),file_compression_alg=zst")" \
    -o /dev/null "$base/notzero.zst" 2>/dev/null; then
    fail "a blob that is not zstd passed verification"
  fi
  log "zstd: verified by the uncompressed sha256; garbage rejected"

  # Upstream dies mid-body (nginx /slow/ sends 128 KiB/s): both the client that started the
  # download and one that joined it get an error; no entry, no temp file left.
  head -c 4194304 /dev/urandom >"$E2E_WORK/www/big"
  bsha=$(sha_of "$E2E_WORK/www/big")
  through p -H "$(cc_header "file_sha256=$bsha")" -o "$E2E_WORK/big1" "$base/slow/big" \
    2>/dev/null &
  c1=$!
  wait_until 20 "first client receiving" test -s "$E2E_WORK/big1"
  through p -H "$(cc_header "file_sha256=$bsha")" -o "$E2E_WORK/big2" "$base/slow/big" \
    2>/dev/null &
  c2=$!
  wait_until 20 "joined client receiving" test -s "$E2E_WORK/big2"
  stop_nginx
  wait "$c1" && fail "first client got a complete response from a dropped upstream"
  wait "$c2" && fail "joined client got a complete response from a dropped upstream"
  (($(stat -c %s "$E2E_WORK/big1") < 4194304)) || fail "client 1 has all bytes?"
  [[ ! -e "$E2E_WORK/p/cache/data/$bsha" ]] || fail "truncated download became an entry"
  wait_until 10 "temp file removed" bash -c "[[ -z \"\$(ls -A '$E2E_WORK/p/cache/tmp')\" ]]"
  start_nginx  # new ports: the same content under a new URL, same sha256 key
  through p -H "$(cc_header "file_sha256=$bsha")" -o "$E2E_WORK/big3" \
    "http://127.0.0.1:$HTTP_PORT/big"
  cmp -s "$E2E_WORK/big3" "$E2E_WORK/www/big" || fail "refetch after the drop is wrong"
  [[ -e "$E2E_WORK/p/cache/data/$bsha" ]] || fail "refetched blob not cached"
  log "upstream dropped mid-body: both clients failed, nothing cached, refetch fine"
  ;;

chain)
  mkdir -p "$E2E_WORK/www/set"
  make_files "$E2E_WORK/www/set" 5
  start_nginx
  # main ECU: gateway (https to the server), caches; sub ECU: chains to main, no cache.
  start_proxy main 'gateway: true' --ca-bundle "$CA_PEM"
  start_proxy ecu "upper_ota_proxy: \"http://127.0.0.1:$PORT_main\"
gateway: false
enable_local_ota_proxy_cache: false"
  # otaclient asks for http://<server>:<https port>/...; the gateway proxy speaks TLS upstream.
  url=http://127.0.0.1:$HTTPS_PORT/protected/set/f1
  sha=$(sha_of "$E2E_WORK/www/set/f1")
  status=$(curl -s -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$PORT_ecu" "$url")
  [[ $status == 403 ]] || fail "without the cookie nginx must answer 403 through the chain (got $status)"
  through ecu -b "ota-token=secret" -H "$(cc_header "file_sha256=$sha")" -D "$E2E_WORK/h" \
    -o "$E2E_WORK/got" "$url"
  cmp -s "$E2E_WORK/got" "$E2E_WORK/www/set/f1" || fail "bytes through the chain differ"
  grep -qi "^Ota-File-Cache-Control: file_sha256=$sha" "$E2E_WORK/h" || fail "no echo through the chain"
  grep -qE "port=$HTTPS_PORT .*status=200 .*req=\"GET /protected/set/f1 " "$NGINX_LOG" ||
    fail "nginx did not serve the file over HTTPS with the cookie"
  [[ -e "$E2E_WORK/main/cache/data/$sha" ]] || fail "main proxy did not cache by sha256"
  # A second ECU behind the same main proxy: served from main's cache.
  start_proxy ecu2 "upper_ota_proxy: \"http://127.0.0.1:$PORT_main\"
enable_local_ota_proxy_cache: false"
  through ecu2 -b "ota-token=secret" -H "$(cc_header "file_sha256=$sha")" -o "$E2E_WORK/got2" "$url"
  cmp -s "$E2E_WORK/got2" "$E2E_WORK/www/set/f1" || fail "second ECU got different bytes"
  [[ $(upstream_gets "/protected/set/f1") == 2 ]] || fail "expected 403 + one 200 upstream only"
  [[ $(stat_of main cache_hits) == 1 ]] || fail "main proxy cache not used by the second ECU"
  # retry_caching travels up the chain and makes the main proxy refetch.
  through ecu -b "ota-token=secret" -H "$(cc_header "retry_caching,file_sha256=$sha")" \
    -o "$E2E_WORK/got" "$url"
  cmp -s "$E2E_WORK/got" "$E2E_WORK/www/set/f1" || fail "retry through the chain differs"
  [[ $(upstream_gets "/protected/set/f1") == 3 ]] || fail "retry_caching did not reach the main proxy"
  log "chain: cookie reached nginx over HTTPS through two proxies, cache shared, retry passed up"
  ;;

limits)
  make_files "$E2E_WORK/www/set" 0
  for i in 0 1 2 3 4 5 6 7; do head -c 262144 /dev/urandom >"$E2E_WORK/www/set/f$i"; done
  head -c 3145728 /dev/urandom >"$E2E_WORK/www/huge"
  head -c 4194304 /dev/urandom >"$E2E_WORK/www/big"
  start_nginx
  base=http://127.0.0.1:$HTTP_PORT
  start_proxy p "$PLAIN" --cache-soft-limit 1M --cache-hard-limit 2M
  for i in 0 1 2 3; do through p -o /dev/null "$base/set/f$i"; done
  through p -o /dev/null "$base/set/f0"  # f0 becomes the most recently used
  for i in 4 5 6; do through p -o /dev/null "$base/set/f$i"; done
  bytes=$(stat_of p cache_bytes)
  ((bytes <= 1048576)) || fail "cache holds $bytes bytes, over the 1 MiB soft limit"
  [[ $(stat_of p evictions) == 3 ]] || fail "expected 3 evictions, got $(stat_of p evictions)"
  through p -o /dev/null "$base/set/f0"
  [[ $(upstream_gets "/set/f0") == 1 ]] || fail "recently used f0 was evicted"
  through p -o /dev/null "$base/set/f1"
  [[ $(upstream_gets "/set/f1") == 2 ]] || fail "least recently used f1 was not evicted"
  log "soft limit: LRU eviction keeps the cache at $(stat_of p cache_bytes) bytes"
  through p -o "$E2E_WORK/got" "$base/huge"
  through p -o "$E2E_WORK/got" "$base/huge"
  cmp -s "$E2E_WORK/got" "$E2E_WORK/www/huge" || fail "huge file bytes differ"
  [[ $(upstream_gets "/huge") == 2 ]] || fail "file over the hard limit was cached"
  log "hard limit (bytes): a 3 MiB file is proxied, not cached"
  stop_proxy p

  # File system at/over the hard percentage: relay only (any real fs is ≥ 1% used).
  start_proxy full "$PLAIN" --disk-soft-percent 1 --disk-hard-percent 1
  through full -D "$E2E_WORK/h" -o "$E2E_WORK/got" "$base/set/f7"
  through full -o "$E2E_WORK/got" "$base/set/f7"
  cmp -s "$E2E_WORK/got" "$E2E_WORK/www/set/f7" || fail "relayed bytes differ"
  grep -qi "^X-Otaproxy-Cache: relay" "$E2E_WORK/h" || fail "not relayed above the hard limit"
  [[ $(upstream_gets "/set/f7") == 2 && -z "$(ls -A "$E2E_WORK/full/cache/data")" ]] ||
    fail "cached above the file-system hard limit"
  log "hard limit (file system %): proxying continues without caching"
  stop_proxy full

  start_proxy s "$PLAIN" --max-inflight 1 --header-limit 1024 --idle-timeout 1
  # An idle connection (nothing sent) is closed by the proxy after the idle timeout.
  exec 3<>"/dev/tcp/127.0.0.1/$PORT_s"
  t0=$SECONDS
  timeout 20 cat <&3 >/dev/null || fail "idle connection not closed by the proxy"
  exec 3<&-
  ((SECONDS - t0 <= 5)) || fail "idle connection closed only after $((SECONDS - t0)) s"
  code() { curl -s -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$PORT_s" "$@"; }
  [[ $(code -X POST "$base/set/f1") == 405 ]] || fail "POST not 405"
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_s/set/f1") == 400 ]] ||
    fail "origin-form not 400"
  [[ $(code -H "X-Big: $(head -c 2000 /dev/zero | tr '\0' a)" "$base/set/f1") == 431 ]] ||
    fail "oversized header not 431"
  [[ $(code -H "Ota-File-Cache-Control: file_sha256=xyz" "$base/set/f1") == 400 ]] ||
    fail "bad Ota-File-Cache-Control not 400"
  curl -s -o /dev/null -x "http://127.0.0.1:$PORT_s" "$base/slow/big" &
  slow=$!
  wait_until 10 "slow download in flight" bash -c "[[ \$(curl -sf http://127.0.0.1:$PORT_s/_otaproxy/stats | jq .inflight) == 1 ]]"
  [[ $(code "$base/set/f2") == 429 ]] || fail "second request in flight not 429"
  [[ $(stat_of s rejected_busy) == 1 ]] || fail "429 not counted"
  kill "$slow"
  wait "$slow" 2>/dev/null || true
  wait_until 10 "slow request ended" bash -c "[[ \$(curl -sf http://127.0.0.1:$PORT_s/_otaproxy/stats | jq .inflight) == 0 ]]"
  log "405, 400, 431, 429, idle timeout as documented"

  # Purge: admin endpoint of a running proxy, and the offline command.
  through s -o /dev/null "$base/set/f3"
  [[ $(curl -sf -X POST "http://127.0.0.1:$PORT_s/_otaproxy/purge" | jq .purged) -ge 1 ]] ||
    fail "purge endpoint purged nothing"
  [[ $(stat_of s cache_entries) == 0 ]] || fail "entries left after purge"
  "$OTAPROXY" --purge --cache-dir "$E2E_WORK/s/cache" >/dev/null 2>&1 &&
    fail "offline purge ran while the proxy holds the cache"
  stop_proxy s
  "$OTAPROXY" --purge --cache-dir "$E2E_WORK/p/cache" | grep -q "purged" || fail "offline purge"
  [[ -z "$(ls -A "$E2E_WORK/p/cache/data")" ]] || fail "offline purge left files"
  log "purge: endpoint and --purge"
  ;;
child)
  make_files "$E2E_WORK/www/set" 5
  start_nginx
  # The gateway: no upper proxy and no gateway key, so https to the server (upstream's rule).
  start_proxy main '' --ca-bundle "$CA_PEM"
  # The child: only upper_ota_proxy; enable_local_ota_proxy_cache is left at its default (true).
  start_proxy child "upper_ota_proxy: \"http://127.0.0.1:$PORT_main\""
  [[ $(stat_of child cache) == off && $(stat_of main cache) == on ]] ||
    fail "cache states: child $(stat_of child cache), main $(stat_of main cache)"
  for round in 1 2; do
    for i in 0 1 2 3 4; do
      sha=$(sha_of "$E2E_WORK/www/set/f$i")
      # The client names the server's https port with http:// (clients force http through a
      # proxy); only the gateway turns it into https.
      through child -H "$(cc_header "file_sha256=$sha")" -D "$E2E_WORK/h" -o "$E2E_WORK/got" \
        "http://127.0.0.1:$HTTPS_PORT/set/f$i"
      cmp -s "$E2E_WORK/got" "$E2E_WORK/www/set/f$i" || fail "round $round: f$i bytes differ"
      grep -qi "^Ota-File-Cache-Control: file_sha256=$sha" "$E2E_WORK/h" ||
        fail "round $round: no echo through the child"
      # The child passed the header up: the gateway keyed its entry by the sha256.
      [[ -e "$E2E_WORK/main/cache/data/$sha" ]] || fail "gateway did not cache f$i by sha256"
    done
  done
  [[ ! -e "$E2E_WORK/child/cache" || -z "$(find "$E2E_WORK/child/cache" -type f)" ]] ||
    fail "the child ECU wrote cache files: $(find "$E2E_WORK/child/cache" -type f | head -3)"
  for i in 0 1 2 3 4; do
    [[ $(upstream_gets "/set/f$i") == 1 ]] || fail "f$i: $(upstream_gets "/set/f$i") upstream GETs"
  done
  grep -q "^port=$HTTP_PORT " "$NGINX_LOG" && fail "something reached nginx over plain http"
  # The gateway does not pass Ota-File-Cache-Control to the server (nginx logs "-" for none).
  leaked=$({ grep -E 'req="GET /set/' "$NGINX_LOG" || true; } | { grep -v 'cc="-"' || true; })
  [[ -z $leaked ]] || fail "Ota-File-Cache-Control reached the server: $(head -1 <<<"$leaked")"
  [[ $(stat_of child relayed) == 10 && $(stat_of child cache_hits) == 0 ]] ||
    fail "child: relayed $(stat_of child relayed), hits $(stat_of child cache_hits)"
  [[ $(stat_of main cache_hits) == 5 ]] || fail "gateway hits: $(stat_of main cache_hits)"
  log "child: no cache file, relayed over http with the header; gateway cached; 1 GET per blob"
  # --upper-proxy overrides the file (no upper proxy there): a child too.
  start_proxy child2 '' --upper-proxy "http://127.0.0.1:$PORT_main"
  [[ $(stat_of child2 cache) == off ]] || fail "--upper-proxy child caches"
  through child2 -o "$E2E_WORK/got" "http://127.0.0.1:$HTTPS_PORT/set/f0"
  cmp -s "$E2E_WORK/got" "$E2E_WORK/www/set/f0" || fail "child2: bytes differ"
  [[ ! -e "$E2E_WORK/child2/cache" || -z "$(find "$E2E_WORK/child2/cache" -type f)" ]] ||
    fail "the --upper-proxy child wrote cache files"
  log "child: --upper-proxy makes a relaying child as well"
  ;;

broken-cache)
  printf 'relayed content\n' >"$E2E_WORK/www/blob"
  sha=$(sha_of "$E2E_WORK/www/blob")
  start_nginx
  base=http://127.0.0.1:$HTTP_PORT
  # 1. The cache directory cannot be created (a file is in the way).
  printf 'not a directory\n' >"$E2E_WORK/in-the-way"
  start_proxy nodir "$PLAIN" --cache-dir "$E2E_WORK/in-the-way/cache"
  # 2. The cache database cannot be opened nor re-created (a non-empty directory in its place).
  mkdir -p "$E2E_WORK/nodb/cache/index.db/x"
  start_proxy nodb "$PLAIN"
  for name in nodir nodb; do
    for round in 1 2; do
      through "$name" -H "$(cc_header "file_sha256=$sha")" -D "$E2E_WORK/h" -o "$E2E_WORK/got" \
        "$base/blob"
      cmp -s "$E2E_WORK/got" "$E2E_WORK/www/blob" || fail "$name: relayed bytes differ"
      grep -qi "^X-Otaproxy-Cache: relay" "$E2E_WORK/h" || fail "$name: not relayed"
    done
    [[ $(stat_of "$name" cache) == failed ]] || fail "$name: stats cache is $(stat_of "$name" cache)"
    [[ $(stat_of "$name" relayed) == 2 ]] || fail "$name: relayed $(stat_of "$name" relayed)"
    grep -q "cannot open the cache: relaying without caching" "$E2E_WORK/proxy-$name.log" ||
      fail "$name: no error logged"
  done
  [[ $(stat_of nodir cache_error) == *"$E2E_WORK/in-the-way/cache"* ]] ||
    fail "nodir: cache_error does not name the path: $(stat_of nodir cache_error)"
  [[ $(stat_of nodb cache_error) == *"$E2E_WORK/nodb/cache"*index.db* ]] ||
    fail "nodb: cache_error does not name the database: $(stat_of nodb cache_error)"
  grep -q "$E2E_WORK/in-the-way/cache" "$E2E_WORK/proxy-nodir.log" || fail "nodir: log lacks the path"
  [[ $(upstream_gets "/blob") == 4 ]] || fail "expected 4 relayed GETs, got $(upstream_gets "/blob")"
  log "broken cache dir / database: otaproxy relays, log and stats say why"
  ;;
broken-config)
  printf 'cached content\n' >"$E2E_WORK/www/blob"
  sha=$(sha_of "$E2E_WORK/www/blob")
  start_nginx
  base=http://127.0.0.1:$HTTP_PORT
  # An invalid port rejects the whole file. With the defaults otaproxy is the gateway, which
  # fetches with https: its client asks for http://127.0.0.1:HTTPS_PORT/blob, as a gateway's
  # clients do, and otaproxy fetches it over TLS.
  start_proxy badcfg "local_ota_proxy_listen_port: not-a-port" --ca-bundle "$CA_PEM"
  grep -q "proxy_info is invalid: using the defaults" "$E2E_WORK/proxy-badcfg.log" ||
    fail "no error logged for the invalid proxy_info"
  grep -q "$E2E_WORK/badcfg/config/proxy_info.yaml" "$E2E_WORK/proxy-badcfg.log" ||
    fail "the error does not name the file: $(cat "$E2E_WORK/proxy-badcfg.log")"
  [[ $(stat_of badcfg cache) == on ]] || fail "the defaults cache, stats say $(stat_of badcfg cache)"
  through badcfg -H "$(cc_header "file_sha256=$sha")" -o "$E2E_WORK/got" "http://127.0.0.1:$HTTPS_PORT/blob"
  cmp -s "$E2E_WORK/got" "$E2E_WORK/www/blob" || fail "bytes through the defaults differ"
  through badcfg -H "$(cc_header "file_sha256=$sha")" -D "$E2E_WORK/h" -o "$E2E_WORK/got" \
    "http://127.0.0.1:$HTTPS_PORT/blob"
  grep -qi "^X-Otaproxy-Cache: hit" "$E2E_WORK/h" || fail "second request not a cache hit: $(cat "$E2E_WORK/h")"
  [[ $(upstream_gets "/blob") == 1 ]] || fail "expected 1 upstream GET, got $(upstream_gets "/blob")"
  log "invalid proxy_info: otaproxy runs with the defaults, caches, and logs the error"
  ;;

*) fail "unknown scenario $scenario" ;;
esac
log "PASS otaproxy $scenario"
