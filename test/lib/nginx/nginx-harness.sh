#!/usr/bin/env bash
# A throw-away nginx for tests and demos: everything (config, certificates, logs, pid, temp
# files) lives in one directory, it listens on 127.0.0.1 only and runs as a single process
# (master_process off) so one PID is all there is to stop.
#
#   nginx-harness.sh start DIR [ROOT]   start in the background, wait until it accepts
#                                       connections; prints (and writes DIR/ports.env):
#                                       HTTP_PORT= HTTPS_PORT= PROXY_PORT= CA_PEM= NGINX_PID=
#                                       The ports are claims from the test-port registry
#                                       (test/lib/ports/ports.sh) owned by OTA_TEST_PORTS_OWNER,
#                                       default the caller ($PPID)
#   nginx-harness.sh stop DIR           stop the nginx started in DIR (by its recorded PID) and
#                                       release its port claims
#   nginx-harness.sh prepare DIR ROOT HTTP_PORT HTTPS_PORT PROXY_PORT
#                                       only write certificates and config (used by the C++
#                                       fixture test/lib/nginx/nginx_fixture.h, which runs
#                                       nginx itself as its child)
#
# ROOT (default DIR/www) is served on:
#   http://127.0.0.1:HTTP_PORT/ and https://127.0.0.1:HTTPS_PORT/ (certificate for 127.0.0.1
#   and localhost, signed by a CA made here: DIR/ca.pem; DIR/wrong-ca.pem is an unrelated CA)
#   /protected/...  the same files, 403 unless the request has the cookie ota-token=secret
#   /slow/...       the same files, sent at 128 KiB/s
#   /cdn-hit/...    the same files with `X-Cache: Hit from cloudfront` (a CDN cache hit)
#   /redirect/X     302 to /X on the same server; /to-http/X: 302 to http://127.0.0.1:HTTP_PORT/X
#   /status/<code>/... answers <code> for 400 401 403 404 408 429 500 502 503 (429 and 503
#                   carry Retry-After: 1)
# PROXY_PORT is a forward proxy for absolute-form requests to http://127.0.0.1:<port>/ only.
# DIR/access.log has one line per request:
#   port=P conn=N creq=N status=S bytes=B cc="<Ota-File-Cache-Control>" req="<request line>"
set -euo pipefail
# shellcheck source=../ports/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ports/ports.sh"

die() {
  echo "nginx-harness: $*" >&2
  exit 1
}

nginx_bin() {
  if [[ -n "${NGINX:-}" ]]; then
    echo "$NGINX"
    return
  fi
  local candidate
  for candidate in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx /usr/local/sbin/nginx; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then
      echo "$candidate"
      return
    fi
  done
  die "nginx not found (set NGINX=/path/to/nginx)"
}

make_certs() {
  local dir=$1
  local certs=$dir/certs
  mkdir -p "$certs"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$certs/ca.key" -out "$dir/ca.pem" -days 3650 \
    -subj "/CN=ota test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -x509 "${ec[@]}" -keyout "$certs/wrong-ca.key" -out "$dir/wrong-ca.pem" \
    -days 3650 -subj "/CN=ota unrelated CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new "${ec[@]}" -keyout "$certs/server.key" -out "$certs/server.csr" \
    -subj "/CN=127.0.0.1" 2>/dev/null
  cat >"$certs/server.ext" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
  openssl x509 -req -in "$certs/server.csr" -CA "$dir/ca.pem" -CAkey "$certs/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$certs/server.ext" \
    -out "$certs/server.pem" 2>/dev/null
}

write_config() {
  local dir=$1 root=$2 http_port=$3 https_port=$4 proxy_port=$5
  mkdir -p "$dir/tmp"
  cat >"$dir/locations.conf" <<EOF
root "$root";
location / {
}
location /protected/ {
  if (\$ota_token_ok = 0) {
    return 403;
  }
  alias "$root/";
}
location /slow/ {
  limit_rate 128k;
  alias "$root/";
}
location /cdn-hit/ {
  add_header X-Cache "Hit from cloudfront";
  alias "$root/";
}
location /redirect/ {
  rewrite ^/redirect/(.*)\$ /\$1 redirect;
}
location /to-http/ {
  rewrite ^/to-http/(.*)\$ http://127.0.0.1:$http_port/\$1 redirect;
}
location /status/400/ { return 400; }
location /status/401/ { return 401; }
location /status/403/ { return 403; }
location /status/404/ { return 404; }
location /status/408/ { return 408; }
location /status/429/ {
  add_header Retry-After 1 always;
  return 429;
}
location /status/500/ { return 500; }
location /status/502/ { return 502; }
location /status/503/ {
  add_header Retry-After 1 always;
  return 503;
}
EOF
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
pid "$dir/nginx.pid";
error_log "$dir/error.log" warn;
events {
  worker_connections 1024;
}
http {
  default_type application/octet-stream;
  sendfile on;
  server_tokens off;
  keepalive_timeout 60s;
  keepalive_requests 100000;
  client_body_temp_path "$dir/tmp/client_body";
  proxy_temp_path "$dir/tmp/proxy";
  fastcgi_temp_path "$dir/tmp/fastcgi";
  uwsgi_temp_path "$dir/tmp/uwsgi";
  scgi_temp_path "$dir/tmp/scgi";
  log_format ota 'port=\$server_port conn=\$connection creq=\$connection_requests status=\$status bytes=\$body_bytes_sent cc="\$http_ota_file_cache_control" req="\$request"';
  access_log "$dir/access.log" ota;
  # \$cookie_ota_token would look for a cookie named ota_token; ours has a hyphen.
  map \$http_cookie \$ota_token_ok {
    default 0;
    "~(^|;)\\s*ota-token=secret\\s*(;|\$)" 1;
  }
  server {
    listen 127.0.0.1:$http_port;
    include "$dir/locations.conf";
  }
  server {
    listen 127.0.0.1:$https_port ssl;
    ssl_certificate "$dir/certs/server.pem";
    ssl_certificate_key "$dir/certs/server.key";
    include "$dir/locations.conf";
  }
  server {
    listen 127.0.0.1:$proxy_port;
    location / {
      # A forward proxy for tests: only literal 127.0.0.1 targets, so no resolver is needed.
      if (\$http_host !~ "^127\\.0\\.0\\.1:[0-9]+\$") {
        return 403;
      }
      proxy_pass http://\$http_host\$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  cat >"$dir/ports.env" <<EOF
HTTP_PORT=$http_port
HTTPS_PORT=$https_port
PROXY_PORT=$proxy_port
CA_PEM=$dir/ca.pem
EOF
}

cmd_prepare() {
  [[ $# -eq 5 ]] || die "usage: prepare DIR ROOT HTTP_PORT HTTPS_PORT PROXY_PORT"
  local dir root
  mkdir -p "$1" "$2"
  dir=$(cd "$1" && pwd)
  root=$(cd "$2" && pwd)
  [[ -f "$dir/ca.pem" ]] || make_certs "$dir"
  write_config "$dir" "$root" "$3" "$4" "$5"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True while PID is a live (not zombie) process.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

cmd_start() {
  [[ $# -ge 1 && $# -le 2 ]] || die "usage: start DIR [ROOT]"
  mkdir -p "$1"
  local dir
  dir=$(cd "$1" && pwd)
  local root=${2:-$dir/www}
  local nginx
  nginx=$(nginx_bin)
  if [[ -f "$dir/harness.pid" ]] && alive "$(cat "$dir/harness.pid")"; then
    die "nginx already running for $dir (pid $(cat "$dir/harness.pid"))"
  fi
  local http https proxy pid ready i
  OTA_TEST_PORTS_OWNER=${OTA_TEST_PORTS_OWNER:-$PPID}
  port_claim http https proxy || die "no test ports for nginx"
  echo "$OTA_TEST_PORTS_OWNER" >"$dir/ports.owner"
  cmd_prepare "$dir" "$root" "$http" "$https" "$proxy"
  : >"$dir/error.log"
  "$nginx" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" </dev/null \
    >"$dir/nginx.out" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/harness.pid"
  # Readiness: every port accepts a connection, polled for at most 10 s.
  ready=0
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || break
    if port_in_use "$http" && port_in_use "$https" && port_in_use "$proxy"; then
      ready=1
      break
    fi
    sleep 0.05
  done
  if [[ $ready == 1 ]] && alive "$pid"; then
    echo "NGINX_PID=$pid" >>"$dir/ports.env"
    cat "$dir/ports.env"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/harness.pid"
  port_release "$http" "$https" "$proxy" || true
  cat "$dir/error.log" "$dir/nginx.out" >&2 2>/dev/null || true
  die "nginx did not start in $dir (ports $http $https $proxy)"
}

cmd_stop() {
  [[ $# -eq 1 ]] || die "usage: stop DIR"
  local dir=$1 pid i
  [[ -f "$dir/harness.pid" ]] || return 0
  pid=$(cat "$dir/harness.pid")
  # Only ever signal the nginx we started for this directory, even if the PID was reused.
  if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(cd "$dir" && pwd)/nginx.conf"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.05
    done
    if alive "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/harness.pid"
  release_ports "$dir"
}

# Releases the port claims of `start` (their owner is recorded in DIR/ports.owner).
release_ports() {
  local dir=$1 HTTP_PORT HTTPS_PORT PROXY_PORT
  [[ -f "$dir/ports.owner" && -f "$dir/ports.env" ]] || return 0
  # shellcheck disable=SC1091
  source "$dir/ports.env"
  OTA_TEST_PORTS_OWNER=$(cat "$dir/ports.owner") port_release "$HTTP_PORT" "$HTTPS_PORT" \
    "$PROXY_PORT" 2>/dev/null || true
  rm -f "$dir/ports.owner"
}

main() {
  [[ $# -ge 1 ]] || die "usage: $0 start DIR [ROOT] | stop DIR | prepare DIR ROOT HTTP HTTPS PROXY"
  local cmd=$1
  shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    prepare) cmd_prepare "$@" ;;
    *) die "unknown command '$cmd' (start, stop, prepare)" ;;
  esac
}

main "$@"
