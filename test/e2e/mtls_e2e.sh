#!/usr/bin/env bash
# Mutual TLS end to end (issue 17), real processes: a main and a secondary otaclient with
# directory slots, each started with --grpc-tls-cert/--grpc-tls-key/--grpc-tls-ca: its own
# certificate of a throw-away CA (test/lib/make-grpc-tls-pki.sh), naming its address as an IP
# subjectAltName. The main polls and updates the secondary over mutual TLS too.
#
#   main (127.0.0.11) ── sub (127.0.0.12)          stray (127.0.0.13, holding sub's certificate)
#
#   - otactl with an operator's client certificate of the CA: Status lists both ECUs
#   - refused: a plain-text client (otactl without TLS); a TLS client without a certificate, and
#     one with a certificate of another CA (curl speaking gRPC, with the same request that
#     succeeds with the operator's certificate); otactl holding a certificate of another CA
#     (its bundle trusts both CAs, so only the daemon can refuse it); an ECU whose certificate
#     does not name the address it is dialled at (stray)
#   - an update of both ECUs through the main over mutual TLS: SUCCESS, v2 on slot b on both,
#     the main's Status (polling the secondary over TLS) lists both on v2
set -euo pipefail
source "$(dirname "$0")/lib.sh"

e2e_init
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
curl -V | grep -qw HTTP2 || { echo "SKIP: curl without HTTP/2"; exit 77; }
make_pki
make_rootfs v1 v1
make_rootfs v2 v2 v1
build_image v2 v2
start_nginx
expected_tree_v1=$(tree_of "$E2E_WORK/rootfs/v1")
expected_tree_v2=$(tree_of "$E2E_WORK/rootfs/v2")

TLS=$E2E_WORK/tls
bash "$OTA_SOURCE_DIR/test/lib/make-grpc-tls-pki.sh" "$TLS" main=127.0.0.11 sub=127.0.0.12 ||
  fail "make-grpc-tls-pki.sh"

ECUS=(main sub)
declare -A IP=([main]=127.0.0.11 [sub]=127.0.0.12)
declare -A CHILDREN=([main]="sub" [sub]="")
declare -A PORT PID
TREE_FLAGS=(--poll-interval-active 0.2 --poll-interval-idle 1 --secondary-timeout 2
  --ecu-drop-timeout 3 --secondary-grace-period 600)
tree_ecu_flags() {  # each ECU serves and calls with its own certificate
  printf '%s\n' --grpc-tls-cert "$TLS/$1.pem" --grpc-tls-key "$TLS/$1.key" --grpc-tls-ca "$TLS/ca.pem"
}
OPERATOR_TLS=(--grpc-tls-cert "$TLS/operator.pem" --grpc-tls-key "$TLS/operator.key"
  --grpc-tls-ca "$TLS/ca.pem")
TREE_CTL_FLAGS=("${OPERATOR_TLS[@]}")

tree_setup v1 v1
tree_start  # waits until the main's Status (asked with the operator's certificate) lists both
log "tree up over mutual TLS: ${ECUS[*]}"
for ecu in "${ECUS[@]}"; do
  grep -q "grpc_tls=mutual" "$E2E_WORK/otaclient-$ecu.log" || fail "$ecu does not log grpc_tls=mutual"
done

# --- who is refused ---
main_target=${IP[main]}:${PORT[main]}
# Plain text, as every client before issue 17.
set +e
out=$("$OTACTL" status --target "$main_target" --timeout 3 2>&1)
code=$?
set -e
[[ $code -eq 4 ]] || fail "a plain-text client got exit code $code (want 4, refused): $out"
# The main says why (gRPC logs the failed handshake before it closes the connection).
main_log_says() { grep -q "$1" "$E2E_WORK/otaclient-main.log"; }
wait_until 5 "the main logs the plain-text handshake" main_log_says "wrong version number"
log "plain-text otactl refused: $out"

# gRPC by hand: the Status request (an empty message, 5 framing bytes) over HTTP/2 + TLS.
printf '\0\0\0\0\0' >"$E2E_WORK/status.grpc"
grpc_status_by_curl() {  # grpc_status_by_curl HOST:PORT [curl TLS options]: headers + trailers
  local target=$1
  shift
  curl -sS --http2 --max-time 5 -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary @"$E2E_WORK/status.grpc" -D - -o /dev/null "$@" \
    "https://$target/OtaClientV2.OtaClientService/Status" 2>&1
}
# The positive control: the same request with the operator's certificate is answered.
out=$(grpc_status_by_curl "$main_target" --cacert "$TLS/ca.pem" --cert "$TLS/operator.pem" \
  --key "$TLS/operator.key") || fail "curl with the operator's certificate failed: $out"
grep -qi '^grpc-status: 0' <<<"$out" || fail "curl with the operator's certificate: $out"
# No client certificate at all.
if out=$(grpc_status_by_curl "$main_target" --cacert "$TLS/ca.pem"); then
  fail "a TLS client without a certificate was answered: $out"
fi
grep -qi '^grpc-status' <<<"$out" && fail "a client without a certificate got a gRPC answer: $out"
wait_until 5 "the main logs the missing client certificate" main_log_says \
  "peer did not return a certificate"
log "TLS client without a certificate refused: $(tail -1 <<<"$out")"
# A certificate of another CA (the client itself trusts the right CA).
if out=$(grpc_status_by_curl "$main_target" --cacert "$TLS/ca.pem" --cert "$TLS/intruder.pem" \
  --key "$TLS/intruder.key"); then
  fail "a client with a certificate of another CA was answered: $out"
fi
grep -qi '^grpc-status' <<<"$out" && fail "a client of another CA got a gRPC answer: $out"
wait_until 5 "the main logs the foreign client certificate" main_log_says \
  "certificate verify failed"
log "TLS client with a certificate of another CA refused: $(tail -1 <<<"$out")"
# otactl with that certificate, its CA bundle trusting both CAs: only the daemon can say no.
cat "$TLS/ca.pem" "$TLS/other-ca.pem" >"$TLS/both-cas.pem"
set +e
out=$("$OTACTL" status --target "$main_target" --timeout 3 --grpc-tls-cert "$TLS/intruder.pem" \
  --grpc-tls-key "$TLS/intruder.key" --grpc-tls-ca "$TLS/both-cas.pem" 2>&1)
code=$?
set -e
[[ $code -eq 4 ]] || fail "otactl with a certificate of another CA got exit code $code: $out"
log "otactl with a certificate of another CA refused: $out"

# An ECU whose (valid) certificate names another address: the client's name check refuses it.
setup_ecu stray v1 v1
sed -i 's/^ip_addr: .*/ip_addr: "127.0.0.13"/' "$E2E_WORK/stray/config/ecu_info.yaml"
start_otaclient stray --grpc-tls-cert "$TLS/sub.pem" --grpc-tls-key "$TLS/sub.key" \
  --grpc-tls-ca "$TLS/ca.pem"
# shellcheck disable=SC2154 # OTA_PORT_stray: set by start_otaclient (printf -v)
stray_target=127.0.0.13:$OTA_PORT_stray
# It serves (curl without the name check, with the operator's certificate, is answered) ...
out=$(grpc_status_by_curl "$stray_target" --insecure --cert "$TLS/operator.pem" \
  --key "$TLS/operator.key") || fail "stray does not serve: $out"
grep -qi '^grpc-status: 0' <<<"$out" || fail "stray does not answer Status: $out"
# ... but a client that checks names does not talk to it.
set +e
out=$("$OTACTL" status --target "$stray_target" --timeout 3 "${OPERATOR_TLS[@]}" 2>&1)
code=$?
set -e
[[ $code -eq 4 ]] || fail "otactl accepted sub's certificate at 127.0.0.13 (exit $code): $out"
log "a certificate for another address refused: $out"

# --- an update through the main, main → sub over mutual TLS ---
out=$(tree_request_update v2 "https://127.0.0.1:$HTTPS_PORT/v2" "e2e-mtls-$$" main sub) ||
  fail "update not accepted: $out"
log "update answered: $(tr '\n' ' ' <<<"$out")"
for ecu in sub main; do tree_assert_v2_on_b "$ecu"; done
main_all_v2() {
  local json
  json=$(tree_ctl main status --json 2>/dev/null) || true
  jq -e '[.ecu_v2[] | select(.ota_status == "SUCCESS" and .firmware_version == "v2")] |
    length == 2' <<<"$json" >/dev/null
}
wait_until 30 "main reports both SUCCESS on v2" main_all_v2
grep -q "e2e-mtls-$$" "$E2E_WORK/otaclient-sub.log" || fail "sub did not get the request"
log "mtls: plain, certificate-less, foreign and misnamed peers refused; update over mTLS done"
