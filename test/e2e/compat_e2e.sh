#!/usr/bin/env bash
# End to end, real processes: compatibility with machines configured and left behind by the
# Python otaclient (issue 13).
#
#   compat_e2e.sh config    otaclient under the restart policy of deploy/otaclient.service (a
#                           supervisor loop doing what systemd's Restart=/RestartSec= would) with
#                           a broken ecu_info.yaml: it stays up (started once, never restarted),
#                           answers Status, and answers Update UNRECOVERABLE naming file, line and
#                           field; then with `bootloader: jetson-uefi` on a machine that is no
#                           Jetson (the backend cannot start): Status FAILURE UNRECOVERABLE
#                           "E302: ...", Update refused.
#   compat_e2e.sh takeover  configs and per-slot state files exactly as the Python client leaves
#                           them after its own update (directory backend; slot a running v1 with
#                           its version_detail, slot b marked FAILURE by its pre-update, the
#                           deployed ecu_info.yaml / proxy_info.yaml with their upstream-only
#                           keys): our otaclient starts on them without a hand edit, Status shows
#                           v1 and its release fields; the next update (with new release fields)
#                           succeeds, keeps reporting v1's release while it runs, and after the
#                           "reboot" reports v2 with the new ones, read back from version_detail
#                           written in the Python client's format.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scenario=${1:?usage: compat_e2e.sh config|takeover}
e2e_init
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
make_pki

UNIT=$OTA_SOURCE_DIR/deploy/otaclient.service

# supervise NAME FLAGS...: runs otaclient NAME like its systemd unit would (Restart= and
# RestartSec= read from deploy/otaclient.service): every start's PID is appended to
# $E2E_WORK/NAME/starts. Sets SUPERVISOR_PID.
supervise() {
  local name=$1 dir=$E2E_WORK/$1 restart restart_sec
  shift
  restart=$(sed -n 's/^Restart=//p' "$UNIT")
  restart_sec=$(sed -n 's/^RestartSec=//p' "$UNIT")
  [[ "$restart" =~ ^(always|on-failure)$ && "$restart_sec" =~ ^[0-9]+$ ]] ||
    fail "unexpected restart policy in $UNIT: Restart=$restart RestartSec=$restart_sec"
  : >"$dir/starts"
  (
    child=
    trap '[[ -n "$child" ]] && kill "$child" 2>/dev/null; wait; exit 0' TERM
    while :; do
      "$OTACLIENT" "$@" >>"$E2E_WORK/otaclient-$name.log" 2>&1 &
      child=$!
      echo "$child" >>"$dir/starts"
      code=0
      wait "$child" || code=$?
      [[ $restart == always || $code -ne 0 ]] || break
      sleep "$restart_sec"  # the unit's RestartSec, not a synchronisation
    done
  ) &
  SUPERVISOR_PID=$!
  E2E_PIDS+=("$SUPERVISOR_PID")
}

# ctl_at PORT SUBCOMMAND ARGS...
ctl_at() {
  local port=$1 sub=$2
  shift 2
  "$OTACTL" "$sub" --target "127.0.0.1:$port" "$@"
}

case $scenario in
config)
  dir=$E2E_WORK/broken
  mkdir -p "$dir/config" "$dir/slots"
  # Line 4 is wrong: upstream would have run on its defaults and refused every Update.
  cat >"$dir/config/ecu_info.yaml" <<'YML'
format_version: 1
ecu_id: "main"
secondaries:
  - {ecu_id: "sub", ip_addr: "10.0.0.2", port: "fifty"}
YML
  port_claim port || fail "no test port"
  supervise broken --config-dir "$dir/config" --certs-dir "$E2E_WORK/pki/certs" \
    --boot-backend dir --dir-slots-root "$dir/slots" --listen-port "$port" \
    --port-file "$dir/otaclient.port"
  # A daemon that exits at its start never writes its port file: this would time out.
  wait_port_file 30 "otaclient (broken ecu_info)" "$dir/otaclient.port" "$SUPERVISOR_PID"
  json=$(ctl_at "$port" status --json) || true
  [[ "$(jq -r '.ecu_v2[0].ecu_id' <<<"$json")" == autoware ]] ||
    fail "Status does not answer with the default ecu_id: $json"
  [[ "$(jq -r '.available_ecu_ids | join(",")' <<<"$json")" == autoware ]] ||
    fail "available_ecu_ids: $json"
  if out=$(ctl_at "$port" update --ecu main --version v2 --url http://127.0.0.1:9/v2 \
    --cookies '{}' 2>&1); then
    fail "Update accepted with a broken ecu_info: $out"
  fi
  [[ "$out" =~ UNRECOVERABLE ]] || fail "Update not UNRECOVERABLE: $out"
  [[ "$out" == *"$dir/config/ecu_info.yaml:4: field \"secondaries[0].port\""* ]] ||
    fail "Update answer does not name file, line and field: $out"
  # Still the first process: no restart happened.
  mapfile -t starts <"$dir/starts"
  ((${#starts[@]} == 1)) || fail "otaclient was started ${#starts[@]} times: ${starts[*]}"
  kill -0 "${starts[0]}" 2>/dev/null || fail "otaclient ${starts[0]} is gone"
  json=$(ctl_at "$port" status --json) || true
  [[ "$(jq -r '.ecu_v2[0].ecu_id' <<<"$json")" == autoware ]] || fail "Status stopped answering"
  log "broken ecu_info: serving Status, Update UNRECOVERABLE naming the field, started once"
  kill "$SUPERVISOR_PID"
  wait "$SUPERVISOR_PID" 2>/dev/null || true

  # A bootloader whose backend cannot start here (this machine is no Jetson).
  dir=$E2E_WORK/uefi
  mkdir -p "$dir/config" "$dir/slots"
  cat >"$dir/config/ecu_info.yaml" <<'YML'
format_version: 1
ecu_id: "autoware"
ip_addr: "127.0.0.1"
bootloader: "jetson-uefi"
YML
  port_claim port || fail "no test port"
  supervise uefi --config-dir "$dir/config" --certs-dir "$E2E_WORK/pki/certs" \
    --dir-slots-root "$dir/slots" --listen-port "$port" --port-file "$dir/otaclient.port"
  wait_port_file 30 "otaclient (jetson-uefi)" "$dir/otaclient.port" "$SUPERVISOR_PID"
  json=$(ctl_at "$port" status --json) || true
  [[ "$(jq -r '.ecu_v2[0].ota_status' <<<"$json")" == FAILURE ]] || fail "status: $json"
  [[ "$(jq -r '.ecu_v2[0].failure_type' <<<"$json")" == UNRECOVERABLE ]] || fail "type: $json"
  reason=$(jq -r '.ecu_v2[0].failure_reason' <<<"$json")
  [[ "$reason" == "E302: unrecoverable OTA error, please contact technical support: boot controller startup failed: jetson-uefi: "* ]] ||
    fail "reason: $reason"
  if out=$(ctl_at "$port" update --ecu autoware --version v2 --url http://127.0.0.1:9/v2 \
    --cookies '{}' 2>&1); then
    fail "Update accepted without a working boot backend: $out"
  fi
  [[ "$out" =~ UNRECOVERABLE.*this\ ECU\ cannot\ update:\ E302 ]] || fail "Update answer: $out"
  mapfile -t starts <"$dir/starts"
  ((${#starts[@]} == 1)) || fail "otaclient was started ${#starts[@]} times"
  log "jetson-uefi: serving, Status FAILURE E302, Update refused, started once"
  ;;

takeover)
  make_rootfs v1 v1
  make_rootfs v2 v2 v1
  build_image v2 v2 --compress
  start_nginx
  expected_tree_v2=$(tree_of "$E2E_WORK/rootfs/v2")
  dir=$E2E_WORK/autoware
  slots=$dir/slots
  mkdir -p "$dir/config" "$slots/boot/slot_a" "$slots/boot/slot_b"
  cp -a "$E2E_WORK/rootfs/v1" "$slots/slot_a"
  cp -a "$E2E_WORK/rootfs/v1" "$slots/slot_b"
  echo "an older image" >"$slots/slot_b/etc/old-image-marker"
  port_claim port closed_proxy_port || fail "no test ports"
  # The configs as deployed for the Python client: only the .yaml spelling, its keys (some we
  # do not use), a bootloader the test overrides with --boot-backend dir, and a local otaproxy
  # that is not running (downloads then go direct).
  cat >"$dir/config/ecu_info.yaml" <<YML
format_version: 1
ecu_id: "autoware"
ip_addr: "127.0.0.1"
bootloader: "grub"
available_ecu_ids:
  - "autoware"
YML
  cat >"$dir/config/proxy_info.yaml" <<YML
enable_local_ota_proxy: true
gateway: true
enable_local_ota_proxy_cache: true
local_ota_proxy_listen_addr: "127.0.0.1"
local_ota_proxy_listen_port: $closed_proxy_port
logging_server: "http://127.0.0.1:8083"
logging_server_grpc: "http://127.0.0.1:8084"
# A key of a newer Python client: warned, ignored.
key_of_a_newer_client: 1
YML
  # The per-slot state after the Python client updated slot b → slot a: written as it writes
  # them (no trailing newline, json.dumps with its default separators and ASCII escapes).
  printf 'SUCCESS' >"$slots/boot/slot_a/status"
  printf 'v1' >"$slots/boot/slot_a/version"
  printf 'a' >"$slots/boot/slot_a/slot_in_use"
  printf '%s' '{"release_name": "Release 1 \u00e9", "release_id": "rel-0001", "image_id": "img-v1"}' \
    >"$slots/boot/slot_a/version_detail"
  printf 'FAILURE' >"$slots/boot/slot_b/status"
  printf 'v0' >"$slots/boot/slot_b/version"
  printf 'a' >"$slots/boot/slot_b/slot_in_use"
  state_before=$(cd "$slots/boot" && find . -type f | sort | xargs md5sum)

  "$OTACLIENT" --config-dir "$dir/config" --certs-dir "$E2E_WORK/pki/certs" \
    --boot-backend dir --dir-slots-root "$slots" --listen-port "$port" \
    --port-file "$dir/otaclient.port" --ca-bundle "$CA_PEM" >>"$E2E_WORK/otaclient-autoware.log" 2>&1 &
  E2E_PIDS+=($!)
  wait_port_file 30 "otaclient autoware" "$dir/otaclient.port" "$!"
  own() { # own JQ: a field of autoware's ecu_v2 entry
    local json
    json=$(ctl_at "$port" status --json 2>/dev/null) || true
    jq -r '(.ecu_v2 // [])[] | select(.ecu_id == "autoware") | '"$1" <<<"$json"
  }
  [[ "$(own .ota_status)" == SUCCESS ]] || fail "status after takeover: $(own .)"
  [[ "$(own .firmware_version)" == v1 ]] || fail "firmware_version: $(own .)"
  [[ "$(own .release_name)" == "Release 1 é" ]] || fail "release_name: $(own .)"
  [[ "$(own .release_id)" == rel-0001 && "$(own .image_id)" == img-v1 ]] ||
    fail "release fields: $(own .)"
  [[ "$(own '.failure_type // "NO_FAILURE"')" == NO_FAILURE && "$(own '.failure_reason // ""')" == "" ]] ||
    fail "a failure is reported after takeover: $(own .)"
  grep -qF 'key_of_a_newer_client\": unknown key, ignored' "$E2E_WORK/otaclient-autoware.log" ||
    fail "the keys we do not use were not logged"
  # The fleet log upload is on, to the Python client's logging server addresses.
  grep -q "log upload to the fleet logging server http=http://127.0.0.1:8083/autoware grpc=127.0.0.1:8084" \
    "$E2E_WORK/otaclient-autoware.log" || fail "the log upload does not use logging_server*"
  grep -q "config: reading ecu_info file=$dir/config/ecu_info.yaml" "$E2E_WORK/otaclient-autoware.log" ||
    fail "the ecu_info file used was not logged"
  # Starting changed none of the Python client's state files (the boot default is ours).
  [[ "$(cd "$slots/boot" && find . -type f ! -name default ! -name booted | sort | xargs md5sum)" == \
    "$state_before" ]] || fail "starting rewrote the Python client's state files"
  log "takeover: SUCCESS on v1 with its release fields, nothing edited by hand"

  # /slow/: nginx rate-limits the downloads, so the update stays UPDATING for a while.
  out=$(ctl_at "$port" update --ecu autoware --version v2 \
    --url "https://127.0.0.1:$HTTPS_PORT/slow/v2" --cookies '{}' \
    --release-name "Release 2" --release-id rel-0002 --image-id img-v2) ||
    fail "update rejected: $out"
  # While it runs, the release fields stay the running image's (as upstream).
  wait_until 30 "autoware downloading" \
    eval '[[ "$(own '"'"'.update_status.phase // ""'"'"')" == DOWNLOADING_OTA_FILES ]]'
  [[ "$(own .release_name)" == "Release 1 é" && "$(own .release_id)" == rel-0001 ]] ||
    fail "release fields during the update: $(own .)"
  wait_until 120 "autoware SUCCESS on v2" eval '[[ "$(own .firmware_version)" == v2 && "$(own .ota_status)" == SUCCESS ]]'
  [[ "$(own .release_name)" == "Release 2" && "$(own .release_id)" == rel-0002 &&
    "$(own .image_id)" == img-v2 ]] || fail "release fields after the update: $(own .)"
  [[ "$(cat "$slots/boot/booted")" == b ]] || fail "did not boot slot b"
  [[ "$(cat "$slots/boot/slot_b/version_detail")" == \
    '{"release_name": "Release 2", "release_id": "rel-0002", "image_id": "img-v2"}' ]] ||
    fail "version_detail not in the Python client's format: $(cat "$slots/boot/slot_b/version_detail")"
  diff <(echo "$expected_tree_v2") <(tree_of "$slots/slot_b") >"$E2E_WORK/tree.diff" ||
    { head -20 "$E2E_WORK/tree.diff"; fail "slot b differs from the v2 tree"; }
  for p in etc/hostname etc/hosts etc/resolv.conf; do
    cmp -s "$slots/slot_a/$p" "$slots/slot_b/$p" || fail "persistent $p not carried over"
  done
  grep -q "download proxy chosen proxy=direct" "$E2E_WORK/otaclient-autoware.log" ||
    fail "the local otaproxy that is not running was not bypassed"
  log "takeover: the next update succeeded; v2 with its release fields after the reboot"
  ;;

*) fail "unknown scenario $scenario" ;;
esac
log "PASS $scenario"
