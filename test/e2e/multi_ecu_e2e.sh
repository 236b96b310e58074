#!/usr/bin/env bash
# Multi-ECU end to end, real processes: four otaclient daemons on 127.0.0.1-127.0.0.4 with
# directory slots, one nginx, otactl talking to the main ECU only.
#
#   main (127.0.0.1) ─┬─ sub1 (127.0.0.2) ── sub1a (127.0.0.4)
#                     └─ sub2 (127.0.0.3)
#
#   multi_ecu_e2e.sh tree   update all four through the main: all SUCCESS with the v2 tree on
#                           their new slot, every ECU seen progressing in the main's Status, the
#                           main switched (re-executed on its new slot) last, request_id logged
#                           by every ECU
#   multi_ecu_e2e.sh kill   sub2 killed (SIGKILL) mid-update: Status and Update on the main stay
#                           fast, sub2 is reported (dropped from ecu_v2, RECOVERABLE in the v1
#                           view and in Update answers), restarted and re-requested: everyone ends
#                           SUCCESS
#   multi_ecu_e2e.sh abort  an Abort to the main naming only sub2, mid-download: as the Python
#                           client does it, every ECU of the tree is aborted (the main itself and
#                           sub1a below sub1 too), each answering for itself; all ABORTED with
#                           active slots intact; an Abort of the idle tree is ABORT_FAILURE from
#                           every ECU; a new Update of all four succeeds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scenario=${1:?usage: multi_ecu_e2e.sh tree|kill|abort}
e2e_init
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
build_image v2 v2
start_nginx
expected_tree_v1=$(tree_of "$E2E_WORK/rootfs/v1")
expected_tree_v2=$(tree_of "$E2E_WORK/rootfs/v2")

ECUS=(main sub1 sub2 sub1a)
declare -A IP=([main]=127.0.0.1 [sub1]=127.0.0.2 [sub2]=127.0.0.3 [sub1a]=127.0.0.4)
declare -A CHILDREN=([main]="sub1 sub2" [sub1]="sub1a" [sub2]="" [sub1a]="")
declare -A PORT PID
# Fast polls and short timeouts keep the test short; the defaults are 1 s / 10 s / 5 s / 30 s.
TREE_FLAGS=(--poll-interval-active 0.2 --poll-interval-idle 1 --secondary-timeout 2
  --ecu-drop-timeout 3 --secondary-grace-period 600)

tree_setup v1 v1

# Short names for the lib.sh tree helpers used throughout.
ctl() { tree_ctl "$@"; }
own_field() { tree_own_field "$@"; }
own_status_is() { tree_own_status_is "$@"; }
own_phase_is() {
  [[ "$(own_field "$1" '.update_status.phase // "INITIALIZING"')" == "$2" ]]
}
start_tree() {
  tree_start
  log "tree up: ${ECUS[*]}"
}
request_update() {  # request_update URL ECU... (v2, through the main)
  local url=$1
  shift
  tree_request_update v2 "$url" "$REQUEST_ID" "$@"
}

# Samples the main's Status into $E2E_WORK/samples.jsonl every 0.1 s until stopped.
start_sampler() {
  (while [[ ! -e "$E2E_WORK/stop-sampler" ]]; do
    ctl main status --json 2>/dev/null | jq -c . >>"$E2E_WORK/samples.jsonl" || true
    sleep 0.1
  done) &
  SAMPLER_PID=$!
  E2E_PIDS+=($!)
}
stop_sampler() {
  touch "$E2E_WORK/stop-sampler"
  wait "$SAMPLER_PID" 2>/dev/null || true
}

main_all_v2() {
  local json
  json=$(ctl main status --json 2>/dev/null) || true
  jq -e '[.ecu_v2[] | select(.ota_status == "SUCCESS" and
    .firmware_version == "v2")] | length == 4' <<<"$json" >/dev/null
}
not_updating() { ! tree_own_status_is "$1" UPDATING; }

mtime_ns() { date -r "$1" +%s%N; }

https=https://127.0.0.1:$HTTPS_PORT
REQUEST_ID=e2e-$scenario-$$

case $scenario in
tree)
  start_tree
  start_sampler
  out=$(request_update "$https/slow/v2" main sub1 sub2 sub1a) || fail "update not accepted: $out"
  log "update answered: $(echo "$out" | tr '\n' ' ')"
  for ecu in sub1a sub2 sub1 main; do tree_assert_v2_on_b "$ecu"; done
  wait_until 30 "main reports all four SUCCESS on v2" main_all_v2
  stop_sampler
  # Every ECU was seen by the main in a real, polled update phase (not only the instant
  # UPDATING mark the main sets when a child acknowledges).
  for ecu in "${ECUS[@]}"; do
    seen=$(jq -r --arg id "$ecu" '.ecu_v2[]? | select(.ecu_id == $id and
             .ota_status == "UPDATING" and (.update_status.phase // "INITIALIZING") !=
             "INITIALIZING") | .update_status.phase' "$E2E_WORK/samples.jsonl" | sort -u |
             tr '\n' ' ')
    [[ -n "$seen" ]] || fail "main's Status never showed $ecu progressing"
    log "main saw $ecu in: $seen"
  done
  # The main switched last: its re-exec on the new slot (boot/booted rewritten) came after
  # every other ECU's.
  main_switch=$(mtime_ns "$E2E_WORK/main/slots/boot/booted")
  for ecu in sub1 sub2 sub1a; do
    t=$(mtime_ns "$E2E_WORK/$ecu/slots/boot/booted")
    ((t < main_switch)) || fail "$ecu switched after the main"
  done
  grep -q "secondaries done" "$E2E_WORK/otaclient-main.log" || fail "main did not wait"
  grep -q "secondaries done" "$E2E_WORK/otaclient-sub1.log" || fail "sub1 did not wait"
  for ecu in "${ECUS[@]}"; do
    grep -q "$REQUEST_ID" "$E2E_WORK/otaclient-$ecu.log" || fail "$ecu did not log the request_id"
  done
  log "tree: all four SUCCESS on v2, main switched last"
  ;;

kill)
  start_tree
  out=$(request_update "$https/slow/v2" main sub1 sub2 sub1a) || fail "update not accepted: $out"
  wait_until 30 "sub2 downloading" own_phase_is sub2 DOWNLOADING_OTA_FILES
  kill -KILL "${PID[sub2]}"
  wait "${PID[sub2]}" 2>/dev/null || true
  log "sub2 killed mid-download"
  # Status on the main stays fast while a child is dead.
  for _ in $(seq 1 10); do
    start=$(date +%s%N)
    ctl main status --json --timeout 2 >/dev/null || [[ $? -ne 4 ]] || fail "main Status failed"
    ms=$((($(date +%s%N) - start) / 1000000))
    ((ms < 1000)) || fail "main Status took $ms ms with a dead secondary"
  done
  # Reported: out of ecu_v2 after the drop timeout, RECOVERABLE in the v1 view.
  dropped() {  # (otactl exits 3 while updating: not an error here)
    local json
    json=$(ctl main status --json 2>/dev/null) || true
    jq -e '([.ecu_v2[].ecu_id] | index("sub2") == null) and
      ([.ecu[] | select(.ecu_id == "sub2" and .result == "RECOVERABLE")] | length == 1)' \
      <<<"$json" >/dev/null
  }
  wait_until 15 "main reports sub2 as lost" dropped
  # Update through the main answers fast, naming the dead child.
  start=$(date +%s%N)
  out=$(request_update "$https/v2" sub2) && fail "update of a dead ECU accepted: $out"
  ms=$((($(date +%s%N) - start) / 1000000))
  ((ms < 4000)) || fail "Update with a dead secondary took $ms ms"
  grep -q "secondary sub2" <<<"$out" || fail "no message naming sub2: $out"
  log "dead sub2: Update answered in $ms ms: $(echo "$out" | tr '\n' ' ')"
  # Restart it; it comes back on its old slot, then a new request completes it.
  tree_start_ecu sub2
  wait_until 20 "main sees sub2 again" tree_main_sees_all
  wait_until 60 "sub2 idle again" not_updating sub2
  out=$(request_update "$https/v2" sub2) || fail "re-request not accepted: $out"
  for ecu in sub1a sub1 sub2 main; do tree_assert_v2_on_b "$ecu"; done
  log "kill: sub2 reported while dead, completed after restart; all four SUCCESS"
  ;;

abort)
  start_tree
  out=$(request_update "$https/slow/v2" main sub1 sub2 sub1a) || fail "update not accepted: $out"
  for ecu in "${ECUS[@]}"; do
    wait_until 60 "$ecu downloading" own_phase_is "$ecu" DOWNLOADING_OTA_FILES
  done
  # Names only sub2: the list is ignored, as upstream; the whole tree aborts.
  out=$(ctl main abort --ecu sub2 --request-id "$REQUEST_ID-abort" 2>&1) || fail "abort: $out"
  log "abort answered: $(echo "$out" | tr '\n' ' ')"
  for ecu in "${ECUS[@]}"; do
    grep -qE "^$ecu +ABORT_NO_FAILURE +Abort accepted, aborting update immediately" <<<"$out" ||
      fail "no accepted abort answer from $ecu: $out"
  done
  ((n = $(grep -c "ABORT" <<<"$out"), n == 4)) || fail "expected 4 answers, got $n: $out"
  for ecu in "${ECUS[@]}"; do
    wait_until 30 "$ecu ABORTED" own_status_is "$ecu" ABORTED
    [[ "$(tree_of "$E2E_WORK/$ecu/slots/slot_a")" == "$expected_tree_v1" ]] ||
      fail "$ecu: active slot changed by the abort"
    [[ "$(cat "$E2E_WORK/$ecu/slots/boot/booted")" == a ]] || fail "$ecu switched slots"
    [[ "$(cat "$E2E_WORK/$ecu/slots/boot/slot_b/status")" == ABORTED ]] ||
      fail "$ecu: standby not ABORTED"
    kill -0 "${PID[$ecu]}" 2>/dev/null || fail "$ecu: otaclient exited; an abort must not kill it"
  done
  # Nothing runs any more: every ECU says so, in upstream's words.
  if out=$(ctl main abort 2>&1); then fail "abort of an idle tree succeeded: $out"; fi
  for ecu in "${ECUS[@]}"; do
    grep -qE "^$ecu +ABORT_FAILURE +Cannot abort: no active OTA update in progress" <<<"$out" ||
      fail "no idle answer from $ecu: $out"
  done
  out=$(request_update "$https/v2" main sub1 sub2 sub1a) ||
    fail "new update after abort not accepted: $out"
  for ecu in sub1a sub2 sub1 main; do tree_assert_v2_on_b "$ecu"; done
  log "abort: the whole tree ABORTED with active slots intact, then updated to v2"
  ;;

*) fail "unknown scenario $scenario" ;;
esac
