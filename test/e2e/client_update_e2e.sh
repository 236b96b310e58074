#!/usr/bin/env bash
# ClientUpdate end to end, real processes: a main and a secondary otaclient (127.0.0.1 and
# 127.0.0.2, directory slots), one nginx, otactl talking to the main only. The package is a
# second build of the same daemon with another version (otaclient_e2e_next: main.cc linked with
# a different version.cc), put into the image rootfs with `ota-image add-otaclient-package`.
#
#   client_update_e2e.sh switch   ClientUpdate to both through the main (legacy image): both
#                                 answer Status with the new otaclient_version (served by the
#                                 new process, the old one its supervisor); Status of the main,
#                                 polled without pause through the hand-over (new connections
#                                 and a kept channel), never fails and goes from the old
#                                 version to the new one once; a second
#                                 ClientUpdate is ignored by the new clients; the new clients
#                                 then update both ECUs to v2 (their "reboot" re-executes the
#                                 new client); when the new client ends the installed one
#                                 restarts in place and serves (v2, SUCCESS); SIGTERM to the
#                                 installed client stops the new one
#   client_update_e2e.sh broken   v1 image; a package that does not start (truncated binary):
#                                 refused by the self-check; one that prints its version but
#                                 exits instead of serving: rolled back by the old client (which
#                                 never stopped answering Status meanwhile); a
#                                 package only for arm64: refused. Each time FAILURE with the
#                                 reason while the old client keeps serving its own version.
#                                 Then a v1 image that carries the package ONLY as its otaclient
#                                 release-package artifact (`build --otaclient-release`, nothing
#                                 under the rootfs' /opt/ota/otaclient_release) switches main and
#                                 sub.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scenario=${1:?usage: client_update_e2e.sh switch|broken}
e2e_init
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
NEXT=$OTA_BIN_DIR/test/e2e/otaclient_e2e_next
[[ -x "$NEXT" ]] || fail "missing $NEXT (build the otaclient_e2e_next target)"
POLLER=$OTA_BIN_DIR/test/e2e/status_poller
[[ -x "$POLLER" ]] || fail "missing $POLLER (build the status_poller target)"
old_version=$("$OTACLIENT" --version)
new_version=$("$NEXT" --version)
[[ "$old_version" != "$new_version" ]] || fail "the two builds report the same version"
log "installed otaclient $old_version, package $new_version"

make_pki
make_rootfs v1 v1

ECUS=(main sub)
declare -A IP=([main]=127.0.0.1 [sub]=127.0.0.2)
declare -A CHILDREN=([main]="sub" [sub]="")
declare -A PORT PID
TREE_FLAGS=(--poll-interval-active 0.2 --poll-interval-idle 1 --secondary-timeout 2
  --ecu-drop-timeout 3 --secondary-grace-period 600 --client-update-timeout 20)
tree_ecu_flags() { echo --client-staging-dir; echo "$E2E_WORK/$1/client"; }
tree_setup v1 v1
ctl() { tree_ctl "$@"; }
own_field() { tree_own_field "$@"; }
version_is() { [[ "$(own_field "$1" '.otaclient_version // ""')" == "$2" ]]; }
status_of() { own_field "$1" '.ota_status // "INITIALIZED"'; }
finished() { [[ "$(status_of "$1")" == SUCCESS || "$(status_of "$1")" == FAILURE ]]; }

# package_image NAME FORMAT BINARY VERSION [ARCH]: image NAME (rootfs v1 + the package).
package_image() {
  local name=$1 format=$2 binary=$3 version=$4 arch=${5:-}
  cp -a "$E2E_WORK/rootfs/v1" "$E2E_WORK/rootfs/$name"
  "$OTA_IMAGE" add-otaclient-package --rootfs "$E2E_WORK/rootfs/$name" --binary "$binary" \
    --version "$version" ${arch:+--architecture "$arch"} >/dev/null ||
    fail "ota-image add-otaclient-package $name"
  if [[ $format == v1 ]]; then build_image_v1 "$name" "$name" --ecu-ids main,sub; else build_image "$name" "$name"; fi
}

# artifact_image NAME BINARY VERSION: v1 image NAME (rootfs v1 untouched) whose package is only
# in its otaclient release-package artifact.
artifact_image() {
  local name=$1 binary=$2 version=$3
  "$OTA_IMAGE" add-otaclient-package --release-dir "$E2E_WORK/release-$name" --binary "$binary" \
    --version "$version" >/dev/null || fail "ota-image add-otaclient-package --release-dir $name"
  build_image_v1 v1 "$name" --ecu-ids main,sub --otaclient-release "$E2E_WORK/release-$name"
  [[ ! -e "$E2E_WORK/rootfs/v1/opt/ota/otaclient_release" ]] || fail "rootfs v1 has a release"
  jq -e '.manifests[] | select(.artifactType == "application/vnd.tier4.otaclient.release-package.v1")' \
    "$E2E_WORK/www/$name/index.json" >/dev/null || fail "$name: no release-package entry"
}

client_update() {  # client_update URL ECU...: ClientUpdate through the main
  local url=$1 ecu
  shift
  local -a args=()
  for ecu in "$@"; do
    args+=(--ecu "$ecu" --version x --url "$url" --cookies '{"ota-token": "secret"}')
  done
  ctl main client-update "${args[@]}" --request-id "e2e-cu-$$" --timeout 10
}

# expect_refused ECU CODE TEXT: FAILURE whose reason starts with CODE and holds TEXT, the old
# client still serving.
expect_refused() {
  local ecu=$1 code=$2 text=$3 reason
  wait_until 60 "$ecu finishes the client update" finished "$ecu"
  [[ "$(status_of "$ecu")" == FAILURE ]] || fail "$ecu: $(status_of "$ecu"), expected FAILURE"
  reason=$(own_field "$ecu" .failure_reason)
  [[ "$reason" == "$code: "*"$text"* ]] ||
    fail "$ecu: failure_reason \"$reason\" is not \"$code: ...$text...\""
  version_is "$ecu" "$old_version" || fail "$ecu no longer serves $old_version"
  log "$ecu refused as expected: $reason"
}

# poll_start ECU: Status of ECU polled without pause (status_poller) until poll_check.
poll_start() {
  POLL_STOP=$E2E_WORK/poll-$1.stop
  rm -f "$POLL_STOP"
  "$POLLER" "${IP[$1]}:${PORT[$1]}" "$1" "$POLL_STOP" >"$E2E_WORK/poll-$1.out" \
    2>"$E2E_WORK/poll-$1.err" &
  POLL_PID=$!
  E2E_PIDS+=("$POLL_PID")
}
# poll_check ECU VERSIONS: stops the poller; no call over a new connection may have failed;
# over the kept channel only with CANCELLED (1): gRPC core cancels a call that reaches the old
# server in the instant its Shutdown began, before the client has read its GOAWAY (no
# "connection refused" (UNAVAILABLE) anywhere: the new server listened before the old one
# stopped). The versions seen over new connections and over the kept channel each must be
# VERSIONS ("a,b": a, then b, never back).
poll_check() {
  local ecu=$1 want=$2 out
  touch "$POLL_STOP"
  wait "$POLL_PID" || fail "status_poller for $ecu failed"
  out=$(cat "$E2E_WORK/poll-$ecu.out")
  log "$ecu Status polled through the hand-over: $out"
  [[ -s "$E2E_WORK/poll-$ecu.err" ]] && log "$ecu: failed calls: $(head -5 "$E2E_WORK/poll-$ecu.err")"
  [[ "$out" =~ \ failures=0\ kept_failures=(1(,1)*)?\ versions=$want\ kept=$want$ ]] ||
    fail "$ecu: polled $out, expected failures=0, kept_failures only 1 (CANCELLED), versions $want over both"
}

start_nginx
https=https://127.0.0.1:$HTTPS_PORT

case $scenario in
switch)
  package_image cu legacy "$NEXT" "$new_version"
  tree_start
  for ecu in main sub; do version_is "$ecu" "$old_version" || fail "$ecu is not $old_version"; done
  poll_start main
  out=$(client_update "$https/protected/cu" main sub) || fail "ClientUpdate not accepted: $out"
  log "ClientUpdate answered: $(echo "$out" | tr '\n' ' ')"
  wait_until 60 "sub serves $new_version" version_is sub "$new_version"
  wait_until 60 "main serves $new_version" version_is main "$new_version"
  # Both servers shared the port for a moment; then the old one (the supervisor) leaves it.
  only_child_listens() {
    local listeners
    listeners=$(ss -Hltnp "sport = :${PORT[main]}" | grep -o 'pid=[0-9]*' | sort -u)
    [[ -n "$listeners" ]] && ! grep -qx "pid=${PID[main]}" <<<"$listeners"
  }
  wait_until 30 "main's old server leaves the port" only_child_listens
  poll_check main "$old_version,$new_version"
  # The main's view of the secondary comes from the new processes too (after their first poll).
  main_sees_sub_new() {
    local json
    json=$(ctl main status --json 2>/dev/null) || true
    [[ "$(jq -r '.ecu_v2[]? | select(.ecu_id == "sub") | .otaclient_version' <<<"$json")" == \
      "$new_version" ]]
  }
  wait_until 20 "main reports sub's new otaclient_version" main_sees_sub_new
  for ecu in main sub; do
    grep -q "the new otaclient serves" "$E2E_WORK/otaclient-$ecu.log" ||
      fail "$ecu: no hand-over logged"
    # Served by a child of the original process, which is still there as its supervisor.
    child=$(pgrep -P "${PID[$ecu]}" -f otaclient-"$new_version") ||
      fail "$ecu: the new otaclient is not a child of the old one"
    [[ -x "$E2E_WORK/$ecu/client/otaclient-$new_version" ]] || fail "$ecu: nothing staged"
    [[ "$(status_of "$ecu")" != FAILURE ]] || fail "$ecu: FAILURE after the switch"
    log "$ecu: $new_version serves as pid $child under ${PID[$ecu]}"
  done
  # A second ClientUpdate to the new clients is acknowledged and ignored (as upstream).
  out=$(client_update "$https/protected/cu" main sub) || fail "second ClientUpdate: $out"
  grep -q "client update ignored" "$E2E_WORK/otaclient-main.log" || fail "main did not ignore it"
  # The new clients update the ECUs (and come back after their "reboot", a re-exec).
  make_rootfs v2 v2 v1
  build_image v2 v2
  expected_tree_v1=$(tree_of "$E2E_WORK/rootfs/v1")
  expected_tree_v2=$(tree_of "$E2E_WORK/rootfs/v2")
  out=$(tree_request_update v2 "$https/protected/v2" "e2e-up-$$" main sub) ||
    fail "Update not accepted by the new clients: $out"
  for ecu in sub main; do
    tree_assert_v2_on_b "$ecu"
    version_is "$ecu" "$new_version" || fail "$ecu: not $new_version after its update"
  done
  # When the new client ends, the installed one restarts in place (fresh: it reads the boot
  # state the update changed) and serves again.
  sub_child=$(pgrep -P "${PID[sub]}" -f "otaclient-$new_version") || fail "sub: no new client"
  kill -TERM "$sub_child"
  wait_until 30 "sub's installed otaclient serves again" version_is sub "$old_version"
  [[ "$(own_field sub .firmware_version)" == v2 && "$(status_of sub)" == SUCCESS ]] ||
    fail "sub after the restart: $(status_of sub) $(own_field sub .firmware_version)"
  grep -q "this one restarts and takes over again" "$E2E_WORK/otaclient-sub.log" ||
    fail "sub: no restart logged"
  kill -0 "${PID[sub]}" || fail "sub's installed otaclient is gone"
  # Stopping the installed client stops the new one too.
  main_child=$(pgrep -P "${PID[main]}" -f "otaclient-$new_version") || fail "main: no new client"
  kill -TERM "${PID[main]}"
  wait "${PID[main]}" 2>/dev/null || true
  ! kill -0 "$main_child" 2>/dev/null || fail "main's new otaclient outlived its supervisor"
  log "switch: main and sub served $new_version and updated; the installed clients came back"
  ;;

broken)
  # 1. Truncated: the manifest matches the file, but it cannot run.
  head -c 4096 "$NEXT" >"$E2E_WORK/truncated"
  package_image cu_trunc v1 "$E2E_WORK/truncated" "$new_version"
  # 2. Starts for --version, then exits instead of serving.
  # shellcheck disable=SC2016 # $1 belongs to the generated script
  printf '#!/bin/sh\n[ "$1" = --version ] && { echo "%s"; exit 0; }\nexit 3\n' "$new_version" \
    >"$E2E_WORK/quitter"
  chmod 0755 "$E2E_WORK/quitter"
  package_image cu_quit v1 "$E2E_WORK/quitter" "$new_version"
  # 3. Our package, but only for another CPU.
  other=arm64
  [[ "$(uname -m)" == aarch64 ]] && other=x86_64
  package_image cu_arch v1 "$NEXT" "$new_version" "$other"
  # 4. A good one: after all that, both switch, the package taken from the v1 artifact.
  artifact_image cu_v1 "$NEXT" "$new_version"
  tree_start

  out=$(client_update "$https/protected/cu_trunc" main sub) || fail "not accepted: $out"
  expect_refused main E203 "is not a working otaclient"
  expect_refused sub E203 "is not a working otaclient"

  poll_start sub
  out=$(client_update "$https/protected/cu_quit" sub) || fail "not accepted: $out"
  expect_refused sub E200 "ended before serving (exit 3)"
  poll_check sub "$old_version"

  out=$(client_update "$https/protected/cu_arch" main) || fail "not accepted: $out"
  expect_refused main E203 "only for: $other"
  out=$(client_update "$https/protected/cu_v1" main sub) || fail "not accepted: $out"
  wait_until 60 "sub serves $new_version" version_is sub "$new_version"
  wait_until 60 "main serves $new_version" version_is main "$new_version"
  for ecu in main sub; do
    grep -q "package taken from the image's otaclient release-package artifact" \
      "$E2E_WORK/otaclient-$ecu.log" || fail "$ecu: the package did not come from the artifact"
  done
  log "broken: every bad package refused, the old clients kept serving; then a v1 artifact switch"
  ;;
*) fail "unknown scenario $scenario" ;;
esac
