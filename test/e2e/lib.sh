# Shared helpers for the end-to-end tests and the demo (source it; needs bash).
# Everything lives under $E2E_WORK, removed by e2e_cleanup (installed as an EXIT trap by
# e2e_init); processes are stopped by the PIDs we recorded when we started them.
# Ports: a daemon started once listens on port 0 and reports its port in a --port-file; a port
# that must be known in advance (a config names it) or kept across a restart or re-exec is a
# claim from the test-port registry (test/lib/ports/ports.sh: port_claim), released by
# e2e_cleanup. Nothing picks ports at random.
#
# Environment: OTA_BIN_DIR (build dir with otaclient/, tools/), OTA_SOURCE_DIR (repo root).

: "${OTA_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${OTA_BIN_DIR:=$OTA_SOURCE_DIR/build/release}"
OTACLIENT=$OTA_BIN_DIR/otaclient/otaclient
OTACTL=$OTA_BIN_DIR/tools/otactl/otactl
OTA_IMAGE=$OTA_BIN_DIR/tools/ota-image/ota-image
HARNESS=$OTA_SOURCE_DIR/test/lib/nginx/nginx-harness.sh
# shellcheck source=../lib/ports/ports.sh
source "$OTA_SOURCE_DIR/test/lib/ports/ports.sh"

E2E_PIDS=()

log() { printf '\033[1m[e2e %(%H:%M:%S)T]\033[0m %s\n' -1 "$*" >&2; }
fail() {
  log "FAIL: $*"
  if [[ -n "${E2E_WORK:-}" ]]; then
    for f in "$E2E_WORK"/otaclient*.log "$E2E_WORK"/otaproxy*.log; do
      [[ -f "$f" ]] && { echo "--- last lines of $f" >&2; tail -40 "$f" >&2; }
    done
  fi
  exit 1
}

e2e_cleanup() {
  local pid
  for pid in "${E2E_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${E2E_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [[ -d "${E2E_WORK:-}/nginx" ]] && "$HARNESS" stop "$E2E_WORK/nginx" >/dev/null 2>&1 || true
  ports_release_all || true
  if [[ -n "${E2E_WORK:-}" && "${E2E_KEEP:-0}" != 1 ]]; then rm -rf "$E2E_WORK"; fi
}

e2e_init() {
  [[ $(id -u) -eq 0 ]] || { echo "SKIP: end-to-end tests need root (chown of slot files)"; exit 77; }
  for b in "$OTACLIENT" "$OTACTL" "$OTA_IMAGE"; do
    [[ -x "$b" ]] || fail "missing binary $b (build first)"
  done
  E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/ota-e2e.XXXXXX")
  trap e2e_cleanup EXIT
  log "work dir $E2E_WORK"
}

# make_pki: signing certs + the CA group otaclient trusts ($E2E_WORK/pki/certs).
make_pki() { bash "$OTA_SOURCE_DIR/deploy/gen-certs.sh" "$E2E_WORK/pki" >/dev/null; }

# make_rootfs NAME VERSION [BASE_NAME]: sample trees under $E2E_WORK/rootfs/.
make_rootfs() {
  mkdir -p "$E2E_WORK/rootfs"
  if [[ -n "${3:-}" ]]; then
    bash "$OTA_SOURCE_DIR/test/lib/make-rootfs.sh" "$E2E_WORK/rootfs/$1" "$2" "$E2E_WORK/rootfs/$3"
  else
    bash "$OTA_SOURCE_DIR/test/lib/make-rootfs.sh" "$E2E_WORK/rootfs/$1" "$2"
  fi
}

# build_image ROOTFS_NAME IMAGE_NAME [extra ota-image args]: image under $E2E_WORK/www/.
build_image() {
  local rootfs=$1 image=$2
  shift 2
  mkdir -p "$E2E_WORK/www"
  "$OTA_IMAGE" build --rootfs "$E2E_WORK/rootfs/$rootfs" --out "$E2E_WORK/www/$image" \
    --key "$E2E_WORK/pki/sign.key" --cert "$E2E_WORK/pki/sign.pem" "$@" >/dev/null ||
    fail "ota-image build $image"
}

# build_image_v1 ROOTFS_NAME IMAGE_NAME [extra ota-image args]: an OTA image v1 under $E2E_WORK/www/,
# signed by pki/sign.key with the x5c chain sign.pem + interm.pem (the root, 1.root.pem in
# pki/certs, is the v1 trust anchor), persist_files as the legacy images' defaults.
build_image_v1() {
  local rootfs=$1 image=$2
  shift 2
  mkdir -p "$E2E_WORK/www"
  cat "$E2E_WORK/pki/sign.pem" "$E2E_WORK/pki/interm.pem" >"$E2E_WORK/pki/chain.pem"
  printf '%s\n' /etc/hosts /etc/hostname /etc/resolv.conf /etc/netplan >"$E2E_WORK/persist.txt"
  "$OTA_IMAGE" build --format v1 --rootfs "$E2E_WORK/rootfs/$rootfs" --out "$E2E_WORK/www/$image" \
    --key "$E2E_WORK/pki/sign.key" --cert "$E2E_WORK/pki/chain.pem" \
    --persistents "$E2E_WORK/persist.txt" "$@" >"$E2E_WORK/build-$image.log" ||
    fail "ota-image build --format v1 $image: $(cat "$E2E_WORK/build-$image.log")"
}

# start_nginx: serves $E2E_WORK/www; sets HTTP_PORT HTTPS_PORT PROXY_PORT CA_PEM NGINX_PID.
start_nginx() {
  OTA_TEST_PORTS_OWNER=$$ "$HARNESS" start "$E2E_WORK/nginx" "$E2E_WORK/www" >/dev/null ||
    fail "nginx did not start"
  # shellcheck disable=SC1091
  source "$E2E_WORK/nginx/ports.env"
  NGINX_LOG=$E2E_WORK/nginx/access.log
}
stop_nginx() { "$HARNESS" stop "$E2E_WORK/nginx" >/dev/null 2>&1 || true; }

# wait_port_file SECONDS WHAT FILE PID: waits until FILE (a daemon's --port-file) holds its port;
# fails at once if PID exits first. Sets PORT_FROM_FILE.
wait_port_file() {
  local limit=$1 what=$2 file=$3 pid=$4
  wait_until "$limit" "$what writes $file" port_file_written "$file" "$pid" "$what"
  PORT_FROM_FILE=$(<"$file")
}
port_file_written() {
  [[ -s "$1" ]] && return 0
  kill -0 "$2" 2>/dev/null || fail "$3 exited before it listened"
  return 1
}

# setup_ecu NAME ROOTFS_NAME VERSION: directory slots with slot a = a copy of the rootfs,
# configs in $E2E_WORK/NAME/config.
setup_ecu() {
  local name=$1 rootfs=$2 version=$3 dir=$E2E_WORK/$1
  mkdir -p "$dir/slots/boot/slot_a" "$dir/config"
  cp -a "$E2E_WORK/rootfs/$rootfs" "$dir/slots/slot_a"
  printf '%s' "$version" >"$dir/slots/boot/slot_a/version"
  cat >"$dir/config/ecu_info.yaml" <<YML
format_version: 1
ecu_id: "$name"
ip_addr: "127.0.0.1"
bootloader: dir
YML
  cat >"$dir/config/proxy_info.yaml" <<YML
enable_local_ota_proxy: false
YML
}

# start_otaclient NAME [extra flags]: sets OTA_PORT_<NAME> and records the PID. The port is a
# registry claim: the directory backend's "reboot" re-executes the daemon with the same flags, and
# it must come back where the test talks to it.
start_otaclient() {
  local name=$1 dir=$E2E_WORK/$1 port pid
  shift
  port_claim port || fail "no test port for otaclient $name"
  rm -f "$dir/otaclient.port"
  "$OTACLIENT" --config-dir "$dir/config" --certs-dir "$E2E_WORK/pki/certs" \
    --boot-backend dir --dir-slots-root "$dir/slots" --listen-port "$port" \
    --port-file "$dir/otaclient.port" --ca-bundle "$CA_PEM" "$@" \
    >>"$E2E_WORK/otaclient-$name.log" 2>&1 &
  pid=$!
  E2E_PIDS+=("$pid")
  printf -v "OTA_PORT_${name//[^A-Za-z0-9_]/_}" '%s' "$port"
  printf -v "OTA_PID_${name//[^A-Za-z0-9_]/_}" '%s' "$pid"
  wait_port_file 30 "otaclient $name" "$dir/otaclient.port" "$pid"
  [[ $PORT_FROM_FILE == "$port" ]] || fail "otaclient $name listens on $PORT_FROM_FILE, not $port"
}

otactl() {  # otactl NAME SUBCOMMAND ARGS...
  local name=$1 var="OTA_PORT_${1//[^A-Za-z0-9_]/_}"
  shift
  local sub=$1
  shift
  "$OTACTL" "$sub" --target "127.0.0.1:${!var}" "$@"
}

# status_field NAME JQ: a field of NAME's own ecu_v2 entry. (otactl's exit code tells the
# overall state — 1 for FAILURE — so it is not an error here.)
status_field() {
  local json
  json=$(otactl "$1" status --json 2>/dev/null) || true
  jq -r --arg id "$1" <<<"$json" \
    "(.ecu_v2 // [])[] | select(.ecu_id == \$id) | $2"
}
ota_status() { status_field "$1" '.ota_status // "INITIALIZED"'; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND (every 0.2 s) until it succeeds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for: $what"
    sleep 0.2
  done
}
status_is() { [[ "$(ota_status "$1")" == "$2" ]]; }
status_in() {
  local s
  s=$(ota_status "$1")
  shift
  local want
  for want in "$@"; do [[ "$s" == "$want" ]] && return 0; done
  return 1
}

# tree_of DIR: the comparable manifest of a tree (persistent files excluded: they come from
# the active slot, not from the image; so is the updater's record of a written slot, /.ota-meta).
tree_of() {
  bash "$OTA_SOURCE_DIR/test/lib/tree-manifest.sh" "$1" etc/hosts etc/hostname etc/resolv.conf \
    etc/netplan .ota-resources .ota-meta
}

# blob_gets IMAGE: number of GET requests nginx saw for the image's blobs (data/ and data.zst/).
blob_gets() {
  grep -cE "req=\"GET [^ ]*/$1/data(\.zst)?/" "$NGINX_LOG" || true
}

# v1_blob_counts IMAGE: "count url" per blob URL of an OTA image v1 nginx answered with 200.
v1_blob_counts() {
  { grep -E "status=200 " "$NGINX_LOG" | grep -oE "req=\"GET [^ ]*/$1/blobs/sha256/[0-9a-f]{64}" ||
    true; } | sort | uniq -c | sort -rn
}

# --- Multi-ECU trees (multi_ecu_proxy_e2e.sh; the same shape as multi_ecu_e2e.sh) ---
# The caller declares ECUS=(main ...) (main first), associative arrays IP, CHILDREN (space
# separated direct children), PORT and PID, and may set TREE_FLAGS (extra otaclient flags),
# define tree_ecu_flags ECU (prints flags for that ECU only, one per line), set TREE_CTL_FLAGS
# (extra otactl flags, e.g. mutual TLS) and
# expected_tree_v1/expected_tree_v2 (tree_of output) for tree_assert_v2_on_b.

# tree_setup ROOTFS VERSION: ports, slots and ecu_info.yaml for every ECU in ECUS. The ports are
# registry claims: a parent's ecu_info names its children's, and an ECU comes back on its port
# after its "reboot" (re-exec) or a restart.
tree_setup() {
  local ecu child
  for ecu in "${ECUS[@]}"; do
    port_claim "PORT[$ecu]" || fail "no test port for $ecu"
  done
  for ecu in "${ECUS[@]}"; do
    setup_ecu "$ecu" "$1" "$2"
    {
      echo "format_version: 1"
      echo "ecu_id: \"$ecu\""
      echo "ip_addr: \"${IP[$ecu]}\""
      echo "bootloader: dir"
      [[ $ecu == "${ECUS[0]}" ]] && echo "available_ecu_ids: [$(IFS=,; echo "${ECUS[*]}")]"
      if [[ -n "${CHILDREN[$ecu]}" ]]; then
        echo "secondaries:"
        # shellcheck disable=SC2153 # PORT: the caller's array, filled by port_claim above
        for child in ${CHILDREN[$ecu]}; do
          echo "  - {ecu_id: \"$child\", ip_addr: \"${IP[$child]}\", port: ${PORT[$child]}}"
        done
      fi
    } >"$E2E_WORK/$ecu/config/ecu_info.yaml"
  done
}
tree_ctl() {  # tree_ctl ECU SUBCOMMAND ARGS...: otactl against that ECU's own address
  local ecu=$1 sub=$2
  shift 2
  "$OTACTL" "$sub" --target "${IP[$ecu]}:${PORT[$ecu]}" "${TREE_CTL_FLAGS[@]}" "$@"
}
tree_start_ecu() {  # tree_start_ecu ECU: the daemon on its own address, PID recorded
  local ecu=$1 dir=$E2E_WORK/$1
  local -a own=()
  if declare -F tree_ecu_flags >/dev/null; then mapfile -t own < <(tree_ecu_flags "$ecu"); fi
  rm -f "$dir/otaclient.port"
  "$OTACLIENT" --config-dir "$dir/config" --certs-dir "$E2E_WORK/pki/certs" \
    --boot-backend dir --dir-slots-root "$dir/slots" --listen-port "${PORT[$ecu]}" \
    --port-file "$dir/otaclient.port" --ca-bundle "$CA_PEM" "${TREE_FLAGS[@]}" "${own[@]}" \
    >>"$E2E_WORK/otaclient-$ecu.log" 2>&1 &
  PID[$ecu]=$!
  E2E_PIDS+=($!)
  wait_port_file 30 "otaclient $ecu" "$dir/otaclient.port" "${PID[$ecu]}"
}
tree_own_field() {  # tree_own_field ECU JQ: a field of ECU's own ecu_v2 entry, asked directly
  local json
  json=$(tree_ctl "$1" status --json 2>/dev/null) || true
  jq -r --arg id "$1" "(.ecu_v2 // [])[] | select(.ecu_id == \$id) | $2" <<<"$json"
}
tree_own_status_is() { [[ "$(tree_own_field "$1" '.ota_status // "INITIALIZED"')" == "$2" ]]; }
tree_own_status_in() {  # tree_own_status_in ECU STATUS...
  local s want
  s=$(tree_own_field "$1" '.ota_status // "INITIALIZED"')
  shift
  for want in "$@"; do [[ "$s" == "$want" ]] && return 0; done
  return 1
}
tree_main_sees_all() {  # the main's ecu_v2 lists every ECU
  local json
  json=$(tree_ctl "${ECUS[0]}" status --json 2>/dev/null) || true
  [[ "$(jq -r '[(.ecu_v2 // [])[].ecu_id] | sort | join(" ")' <<<"$json" 2>/dev/null)" == \
    "$(printf '%s\n' "${ECUS[@]}" | sort | paste -sd' ')" ]]
}
tree_start() {  # leaves first (ECUS reversed), so the first polls find everyone
  local i
  for ((i = ${#ECUS[@]} - 1; i >= 0; i--)); do tree_start_ecu "${ECUS[i]}"; done
  wait_until 20 "main's Status lists every ECU" tree_main_sees_all
}
# tree_request_update VERSION URL REQUEST_ID ECU...: one Update through the main (cookie
# ota-token=secret, which the nginx harness wants under /protected/).
tree_request_update() {
  local version=$1 url=$2 request_id=$3 ecu
  shift 3
  local -a args=()
  for ecu in "$@"; do
    args+=(--ecu "$ecu" --version "$version" --url "$url" --cookies '{"ota-token": "secret"}')
  done
  tree_ctl "${ECUS[0]}" update "${args[@]}" --request-id "$request_id" --timeout 10
}
tree_assert_v2_on_b() {  # tree_assert_v2_on_b ECU: SUCCESS after its "reboot", slot b == v2
  local ecu=$1 slots=$E2E_WORK/$1/slots
  wait_until 180 "$ecu finishes" tree_own_status_in "$ecu" SUCCESS FAILURE
  tree_own_status_is "$ecu" SUCCESS ||
    fail "$ecu: FAILURE: $(tree_own_field "$ecu" '.failure_reason // ""')"
  [[ "$(tree_own_field "$ecu" .firmware_version)" == v2 ]] || fail "$ecu firmware_version is not v2"
  [[ "$(cat "$slots/boot/booted")" == b ]] || fail "$ecu did not boot slot b"
  diff <(echo "$expected_tree_v2") <(tree_of "$slots/slot_b") >"$E2E_WORK/tree.diff" ||
    { head -20 "$E2E_WORK/tree.diff"; fail "$ecu: slot b differs from the v2 tree"; }
  [[ "$(tree_of "$slots/slot_a")" == "$expected_tree_v1" ]] || fail "$ecu: slot a changed"
}

# --- otaproxy (demo.sh, multi_ecu_proxy_e2e.sh) ---
OTAPROXY=$OTA_BIN_DIR/otaproxy/otaproxy
# start_otaproxy NAME CONFIG_DIR [flags]: otaproxy as deploy/otaproxy.service runs it (listen
# address/port from CONFIG_DIR/proxy_info.yaml: a registry claim, as the ECUs' configs name it),
# cache in $E2E_WORK/NAME-cache; sets OTAPROXY_PORT_<NAME>, records the PID. Disk-percent limits
# off: the test machine's disk fill level must not decide what is cached.
start_otaproxy() {
  local name=$1 config=$2 port pid
  shift 2
  [[ -x "$OTAPROXY" ]] || fail "missing binary $OTAPROXY (build first)"
  port=$(sed -n 's/^local_ota_proxy_listen_port: *\([0-9]*\).*/\1/p' "$config/proxy_info.yaml")
  [[ -n "$port" ]] || fail "$config/proxy_info.yaml has no local_ota_proxy_listen_port"
  rm -f "$E2E_WORK/otaproxy-$name.port"
  "$OTAPROXY" --config-dir "$config" --cache-dir "$E2E_WORK/$name-cache" \
    --disk-soft-percent 100 --disk-hard-percent 100 --port-file "$E2E_WORK/otaproxy-$name.port" \
    "$@" >>"$E2E_WORK/otaproxy-$name.log" 2>&1 &
  pid=$!
  E2E_PIDS+=("$pid")
  printf -v "OTAPROXY_PORT_$name" '%s' "$port"
  wait_port_file 15 "otaproxy $name" "$E2E_WORK/otaproxy-$name.port" "$pid"
  [[ $PORT_FROM_FILE == "$port" ]] || fail "otaproxy $name listens on $PORT_FROM_FILE, not $port"
}
otaproxy_stats() {  # otaproxy_stats NAME: its /_otaproxy/stats JSON
  local v="OTAPROXY_PORT_$1"
  curl -sf --max-time 5 "http://127.0.0.1:${!v}/_otaproxy/stats"
}
