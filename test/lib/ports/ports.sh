# shellcheck shell=bash
# Test ports for shell tests and scripts (source it; needs bash): the machine-wide registry whose
# protocol is documented in test/lib/ports/port_registry.h, through the ota-test-ports tool built
# from that same code. A daemon started once does not need it: --listen-port 0 and --port-file
# (lib.sh: wait_port_file).
#
#   port_claim VAR...     claims one port per VAR (all or none) and sets each VAR; 1 on failure
#   port_release PORT...  releases those claims
#   ports_release_all     releases every claim of the owner (for the EXIT trap)
#
# The owner of the claims is OTA_TEST_PORTS_OWNER, default this script ($$): claims live until
# released or until the owner is gone (then the next claimer takes them back).
# Environment: OTA_TEST_PORTS_TOOL (default $OTA_BIN_DIR/test/lib/ports/ota-test-ports, with
# OTA_BIN_DIR defaulting to <repo>/build/release); OTA_TEST_PORTS_DIR, OTA_TEST_PORTS_RANGE as in
# port_registry.h.

: "${OTA_TEST_PORTS_TOOL:=${OTA_BIN_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build/release}/test/lib/ports/ota-test-ports}"

port_claim() {
  local out var i=0
  local -a claimed
  [[ -x "$OTA_TEST_PORTS_TOOL" ]] || {
    echo "ports.sh: missing $OTA_TEST_PORTS_TOOL (build first)" >&2
    return 1
  }
  out=$("$OTA_TEST_PORTS_TOOL" claim --owner "${OTA_TEST_PORTS_OWNER:-$$}" --count $#) || return 1
  mapfile -t claimed <<<"$out"
  for var in "$@"; do printf -v "$var" '%s' "${claimed[i++]}"; done
}

port_release() {
  "$OTA_TEST_PORTS_TOOL" release --owner "${OTA_TEST_PORTS_OWNER:-$$}" "$@" >/dev/null
}

ports_release_all() {
  [[ -x "$OTA_TEST_PORTS_TOOL" ]] || return 0
  "$OTA_TEST_PORTS_TOOL" release --owner "${OTA_TEST_PORTS_OWNER:-$$}" --all >/dev/null
}
