#!/usr/bin/env bash
# Byte-range resume end to end (issue 16 item 4): the server dies halfway through a 300 MB blob
# and the update still completes, with the blob crossing the wire about once.
#   resume_e2e.sh direct  otaclient → nginx
#   resume_e2e.sh proxy   otaclient → otaproxy (caching gateway) → nginx; the partial download is
#                         not cached, the resumed request is relayed with Range
#   resume_e2e.sh rate    otaclient --max-download-rate 2M reaches the update's downloads: the
#                         v2 delta (~28 MiB, a 24 MiB file among it) takes its ~14 s, from the
#                         metrics record's downloaded_bytes and whole-second phase timestamps
#                         (the ±10 % measurement is the unit test RateCapTest)
# Deterministic, no timing guesses: nginx #1 sends the first 150 MiB of every response at full
# speed and then 1 MiB/s (limit_rate_after), so the transfer sits in its second half for minutes;
# the test waits until otaclient's own counter (downloaded_bytes) is past 150 MiB, starts nginx #2
# (same port, SO_REUSEPORT, no rate limit; its pid file exists once it listens), kills nginx #1 by
# its PID mid-body (SIGKILL), and the client's retry lands on #2. Bytes of the blob on the wire =
# the resumed request's Range start (what the client had) + the 206's $body_bytes_sent (nginx #1
# logs nothing for the request it was killed in); they must be ≤ 1.05 × the blob.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scenario=${1:?usage: resume_e2e.sh direct|proxy|rate}
e2e_init
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || { echo "SKIP: no nginx"; exit 77; }
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
BIG_SIZE=$((300 << 20))
[[ $scenario == rate ]] && BIG_SIZE=$((24 << 20))
HALF=$((150 << 20))
head -c "$BIG_SIZE" /dev/urandom >"$E2E_WORK/rootfs/v2/big.bin"
big_sha=$(sha256sum "$E2E_WORK/rootfs/v2/big.bin" | cut -d' ' -f1)
build_image v1 v1
build_image v2 v2
cmp -s "$E2E_WORK/www/v2/data/big.bin" "$E2E_WORK/rootfs/v2/big.bin" || fail "no data/big.bin in v2"
expected_tree_v2=$(tree_of "$E2E_WORK/rootfs/v2")
# Read by start_otaclient (lib.sh): plain http here, but otaclient takes some bundle.
# shellcheck disable=SC2034
CA_PEM=/etc/ssl/certs/ca-certificates.crt

port_claim WWW_PORT || fail "no test port for nginx"
# nginx_conf N EXTRA: config of instance N (its own pid file, logs and temp dirs).
nginx_conf() {
  local n=$1 extra=$2 dir=$E2E_WORK/nginx$1
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
pid "$dir/nginx.pid";
error_log "$dir/error.log" warn;
events { worker_connections 256; }
http {
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 60s;
  client_body_temp_path "$dir/tmp/client_body";
  proxy_temp_path "$dir/tmp/proxy";
  fastcgi_temp_path "$dir/tmp/fastcgi";
  uwsgi_temp_path "$dir/tmp/uwsgi";
  scgi_temp_path "$dir/tmp/scgi";
  log_format resume 'status=\$status bytes=\$body_bytes_sent range="\$http_range" req="\$request"';
  access_log "$dir/access.log" resume;
  server {
    listen 127.0.0.1:$WWW_PORT reuseport;
    root "$E2E_WORK/www";
    $extra
  }
}
CONF
}
# start_nginx_n N: runs instance N, waits until its pid file says it listens; sets NGINX_PID_N.
start_nginx_n() {
  local n=$1 dir=$E2E_WORK/nginx$1 pid
  "$NGINX_BIN" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" </dev/null \
    >"$dir/nginx.out" 2>&1 &
  pid=$!
  E2E_PIDS+=("$pid")
  printf -v "NGINX_PID_$n" '%s' "$pid"
  wait_until 10 "nginx #$n listening" nginx_listening "$dir" "$pid"
}
nginx_listening() {  # the pid file is written after the listening sockets are open
  [[ -s "$1/nginx.pid" ]] && return 0
  kill -0 "$2" 2>/dev/null || { cat "$1/error.log" "$1/nginx.out" >&2; fail "nginx exited"; }
  return 1
}
if [[ $scenario == rate ]]; then nginx_conf 1 ""; else nginx_conf 1 "limit_rate_after $HALF; limit_rate 1m;"; fi
nginx_conf 2 ""
start_nginx_n 1
url=http://127.0.0.1:$WWW_PORT/v2

setup_ecu ecu1 v1 v1
case $scenario in
direct) ;;
rate)
  RATE=$((2 << 20))
  start_otaclient ecu1 --max-download-rate 2M
  out=$(otactl ecu1 update --ecu ecu1 --version v2 --url "$url" --cookies '{}') ||
    fail "update not accepted: $out"
  wait_until 300 "ecu1 reports SUCCESS after its reboot" status_is ecu1 SUCCESS
  cmp -s "$E2E_WORK/rootfs/v2/big.bin" "$E2E_WORK/ecu1/slots/slot_b/big.bin" ||
    fail "big.bin on slot b differs"
  metrics=$(sed -n 's/^.*INFO metrics //p' "$E2E_WORK/otaclient-ecu1.log" | tail -1)
  [[ -n $metrics ]] || fail "no metrics record in the otaclient log"
  read -r bytes start end < <(jq -r \
    '"\(.downloaded_bytes) \(.download_start_timestamp) \(.apply_update_start_timestamp)"' \
    <<<"$metrics")
  seconds=$((end - start))  # whole seconds: ±1
  ((bytes >= BIG_SIZE)) || fail "downloaded only $bytes bytes"
  # At 2 MiB/s the download cannot be shorter than bytes/rate (less the bucket's 0.5 s, less the
  # timestamps' rounding) nor, on an idle loopback, much longer.
  min=$((bytes / RATE - 2))
  max=$((bytes * 3 / RATE / 2 + 2))
  ((seconds >= min && seconds <= max)) ||
    fail "downloading $bytes bytes at a 2 MiB/s cap took ${seconds}s (expected $min..$max)"
  log "PASS resume_e2e rate: $bytes bytes in ${seconds}s at a cap of $RATE B/s"
  exit 0
  ;;
proxy)
  port_claim proxy_port || fail "no test port for otaproxy"
  mkdir -p "$E2E_WORK/proxy/config"
  # gateway: false and no upper proxy: plain http upstream (the test server), caching on.
  # shellcheck disable=SC2154 # proxy_port: set by port_claim
  cat >"$E2E_WORK/proxy/config/proxy_info.yaml" <<YML
enable_local_ota_proxy: true
gateway: false
enable_local_ota_proxy_cache: true
local_ota_proxy_listen_addr: "127.0.0.1"
local_ota_proxy_listen_port: $proxy_port
YML
  start_otaproxy main "$E2E_WORK/proxy/config"
  cat >"$E2E_WORK/ecu1/config/proxy_info.yaml" <<YML
enable_local_ota_proxy: false
upper_ota_proxy: "http://127.0.0.1:$proxy_port"
YML
  ;;
*) fail "unknown scenario $scenario" ;;
esac
start_otaclient ecu1

downloaded_bytes() { status_field ecu1 '(.update_status.downloaded_bytes // 0) | tonumber'; }
past_half() { (($(downloaded_bytes) > HALF)); }

out=$(otactl ecu1 update --ecu ecu1 --version v2 --url "$url" --cookies '{}') ||
  fail "update not accepted: $out"
wait_until 300 "otaclient past 150 MiB of the big blob" past_half
log "otaclient has $(downloaded_bytes) bytes; nginx #1 is in the slow half: replacing it"
start_nginx_n 2
kill -KILL "$NGINX_PID_1"
wait "$NGINX_PID_1" 2>/dev/null || true
log "nginx #1 (pid $NGINX_PID_1) killed mid-transfer; nginx #2 (pid $NGINX_PID_2) serves"

wait_until 300 "ecu1 reports SUCCESS after its reboot" status_is ecu1 SUCCESS
[[ "$(cat "$E2E_WORK/ecu1/slots/boot/booted")" == b ]] || fail "ecu1 did not boot slot b"
diff <(echo "$expected_tree_v2") <(tree_of "$E2E_WORK/ecu1/slots/slot_b") >"$E2E_WORK/tree.diff" ||
  { head -20 "$E2E_WORK/tree.diff"; fail "slot b differs from the v2 tree"; }
cmp -s "$E2E_WORK/rootfs/v2/big.bin" "$E2E_WORK/ecu1/slots/slot_b/big.bin" ||
  fail "big.bin on slot b differs"

# The blob's requests at nginx #2: exactly one, a 206 from where the client stopped.
big_lines=$(grep -F "/v2/data/big.bin " "$E2E_WORK/nginx2/access.log" || true)
[[ $(grep -c . <<<"$big_lines") == 1 ]] || fail "nginx #2 saw not exactly one blob request: $big_lines"
[[ $big_lines =~ status=206\ bytes=([0-9]+)\ range=\"bytes=([0-9]+)-\" ]] ||
  fail "the blob was not resumed with a Range: $big_lines"
resumed_bytes=${BASH_REMATCH[1]}
range_start=${BASH_REMATCH[2]}
((range_start > HALF)) || fail "resumed from $range_start, before the half"
((range_start + resumed_bytes == BIG_SIZE)) ||
  fail "Range start $range_start + 206 body $resumed_bytes != $BIG_SIZE"
# nginx #1 logged no line for the blob (killed inside the request); every blob byte on the wire:
total=$((range_start + resumed_bytes))
earlier=$({ grep -F "/v2/data/big.bin " "$E2E_WORK/nginx1/access.log" || true; } |
  sed -n 's/.* bytes=\([0-9]*\) .*/\1/p' | awk '{s += $1} END {print s + 0}')
total=$((total + earlier))
((total * 100 <= BIG_SIZE * 105)) || fail "$total bytes for a $BIG_SIZE-byte blob (> 1.05x)"
grep -q "resume_from=$range_start" "$E2E_WORK/otaclient-ecu1.log" ||
  fail "otaclient did not log its resume from $range_start"
log "blob of $BIG_SIZE bytes: cut at $range_start, resumed with a 206 of $resumed_bytes bytes;" \
  "$total bytes on the wire ($((total * 1000 / BIG_SIZE)) per mille)"

if [[ $scenario == proxy ]]; then
  # The proxy's download of the blob broke (no entry); the resumed request was relayed with its
  # Range and not cached: a partial body is never an entry.
  [[ ! -e "$E2E_WORK/main-cache/data/$big_sha" ]] || fail "otaproxy cached the blob from a partial body"
  stats=$(otaproxy_stats main)
  (($(jq -r .relayed <<<"$stats") >= 1)) || fail "otaproxy relayed nothing: $stats"
  log "otaproxy: no entry for the blob, resumed request relayed ($stats)"
fi
log "PASS resume_e2e $scenario"
