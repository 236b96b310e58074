#!/usr/bin/env bash
# In-place standby update, crash safety end to end (issue 18): a real otaclient daemon (directory
# slots) updated over gRPC from a real nginx is SIGKILLed at a named step of writing the standby
# in place (OTA_TEST_KILL_AT_STEP, the process kills itself there: no timing involved).
#   1. v1 → v2 (slot b rebuilt, no record there yet), reboot into b; v2 → v3 (slot a rebuilt),
#      reboot into a. Now slot b holds a complete record of v2.
#   2. For each step in KILL_STEPS, alternating the target (v2 ↔ v3 on the current standby):
#      the update goes in place and the daemon dies at the step (its exit is waited for: SIGKILL);
#      the standby is not bootable (no one-shot armed, status UPDATING, record "writing", the
#      running slot and its default unchanged); the daemon is started again and reports the
#      interruption; the same update again goes in place re-verifying every file (the record says
#      "writing") and, after its reboot, the new slot runs exactly the image's tree.
# Everything is waited on through the daemon's exit, its port file and its Status answers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KILL_STEPS=(standby:decided inplace:removed)
e2e_init
make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
# v3: v2 with changed, removed, added and re-typed entries, a new mode and owner.
cp -a "$E2E_WORK/rootfs/v2" "$E2E_WORK/rootfs/v3"
(
  cd "$E2E_WORK/rootfs/v3"
  printf 'changed in v3\n' >usr/share/doc/readme3.txt
  rm usr/share/doc/readme4.txt
  rm bin/tool1 && mkdir bin/tool1 && printf 'inside a new dir\n' >bin/tool1/inner
  rm bin/tool2 && ln -s tool3 bin/tool2
  chmod 700 bin/tool4 && chown 1000:1000 etc/hosts
  printf 'new in v3\n' >usr/share/doc/new-in-v3.txt
)
build_image v2 v2
build_image v3 v3
start_nginx
declare -A expected_tree=([v2]="$(tree_of "$E2E_WORK/rootfs/v2")" [v3]="$(tree_of "$E2E_WORK/rootfs/v3")")
setup_ecu ecu1 v1 v1
SLOTS=$E2E_WORK/ecu1/slots
LOG=$E2E_WORK/otaclient-ecu1.log

booted() { cat "$SLOTS/boot/booted"; }
other_slot() { [[ $(booted) == a ]] && echo b || echo a; }
decisions() { grep -c 'standby write mode decided' "$LOG" || true; }
last_decision() { grep 'standby write mode decided' "$LOG" | tail -1; }
running_version_is() { [[ "$(status_field ecu1 '.firmware_version // ""')" == "$1" ]]; }

# update_to VERSION: requests the update; returns once the daemon runs the new slot and
# reports SUCCESS with that version (the directory backend's reboot re-executes the daemon).
update_to() {
  local version=$1 out
  out=$(otactl ecu1 update --ecu ecu1 --version "$version" \
    --url "https://127.0.0.1:$HTTPS_PORT/$version" --cookies '{}') ||
    fail "update to $version not accepted: $out"
  wait_until 120 "ecu1 runs $version with SUCCESS" eval 'status_is ecu1 SUCCESS && running_version_is '"$version"
}

# expect_slot_tree SLOT VERSION
expect_slot_tree() {
  diff <(echo "${expected_tree[$2]}") <(tree_of "$SLOTS/slot_$1") >"$E2E_WORK/tree.diff" ||
    { head -20 "$E2E_WORK/tree.diff"; fail "slot $1 differs from the $2 tree"; }
}

start_otaclient ecu1
update_to v2
[[ $(booted) == b ]] || fail "v2 did not boot slot b"
[[ $(last_decision) == *"mode=rebuild"* ]] || fail "first update not a rebuild: $(last_decision)"
update_to v3
[[ $(booted) == a ]] || fail "v3 did not boot slot a"
expect_slot_tree a v3
[[ $(cat "$SLOTS/slot_b/.ota-meta/state") == complete ]] || fail "slot b holds no complete record"

target=v3  # slot b holds v2: real changes to make (then slot a, holding v3, goes to v2)
for step in "${KILL_STEPS[@]}"; do
  running=$(booted)
  standby=$(other_slot)
  log "--- kill at $step: slot $running runs, slot $standby updated in place to $target"
  # Restarted with the kill switch: the same flags as before, plus the environment variable.
  # shellcheck disable=SC2154 # OTA_PID_ecu1: set by start_otaclient (lib.sh)
  kill -TERM "$OTA_PID_ecu1"
  wait "$OTA_PID_ecu1" || true
  OTA_TEST_KILL_AT_STEP=$step start_otaclient ecu1
  before=$(decisions)
  out=$(otactl ecu1 update --ecu ecu1 --version "$target" \
    --url "https://127.0.0.1:$HTTPS_PORT/$target" --cookies '{}') ||
    fail "update to $target not accepted: $out"
  rc=0
  wait "$OTA_PID_ecu1" || rc=$?
  ((rc == 128 + 9)) || fail "otaclient exited with $rc, not SIGKILL, at $step"
  grep -q "OTA_TEST_KILL_AT_STEP: killing this process step=$step" "$LOG" ||
    fail "otaclient did not die at $step"
  (($(decisions) == before + 1)) || fail "no decision logged before $step"
  [[ $(last_decision) == *"mode=in-place"*"standby holds a complete earlier update"* ]] ||
    fail "the killed update was not in place trusting the record: $(last_decision)"
  # Never bootable: nothing armed, the standby UPDATING, its record "writing", we stay here.
  [[ ! -e $SLOTS/boot/next_boot ]] || fail "a boot switch is armed after a kill at $step"
  [[ $(cat "$SLOTS/boot/slot_$standby/status") == UPDATING ]] ||
    fail "standby status $(cat "$SLOTS/boot/slot_$standby/status") after a kill at $step"
  [[ $(cat "$SLOTS/boot/default") == "$running" ]] || fail "default moved off slot $running"
  [[ $(cat "$SLOTS/slot_$standby/.ota-meta/state") == writing ]] ||
    fail "standby record $(cat "$SLOTS/slot_$standby/.ota-meta/state") after a kill at $step"

  # Started again (without the kill switch): still on the same slot, the interruption reported.
  start_otaclient ecu1
  wait_until 30 "ecu1 reports the interrupted update" status_is ecu1 FAILURE
  [[ $(booted) == "$running" ]] || fail "the restart did not stay on slot $running"
  before=$(decisions)
  update_to "$target"
  (($(decisions) == before + 1)) || fail "not one decision for the repeated update"
  [[ $(last_decision) == *"mode=in-place"*"every file re-verified"*"slot_table=writing"* ]] ||
    fail "the repeated update did not re-verify in place: $(last_decision)"
  [[ $(booted) == "$standby" ]] || fail "the repeated update did not boot slot $standby"
  expect_slot_tree "$standby" "$target"
  [[ $(cat "$SLOTS/slot_$standby/.ota-meta/state") == complete ]] ||
    fail "record of slot $standby not complete after the repair"
  [[ ! -e $SLOTS/slot_$standby/.ota-resources ]] || fail "resources left on slot $standby"
  log "kill at $step: standby never bootable; repaired in place (re-verified) to $target"
  [[ $target == v2 ]] && target=v3 || target=v2
done
log "PASS in_place_kill_e2e (${KILL_STEPS[*]})"
