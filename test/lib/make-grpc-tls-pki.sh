#!/usr/bin/env bash
# A throw-away PKI for the gRPC mutual-TLS tests (tests only; never ship these keys). EC P-256,
# valid for two days from now.
#
#   make-grpc-tls-pki.sh OUTDIR NAME=IP[,IP...] ...
#
#   OUTDIR/ca.pem, ca.key                the CA every ECU and otactl trusts (--grpc-tls-ca)
#   OUTDIR/NAME.pem, NAME.key            per NAME: an ECU's certificate, signed by the CA,
#                                        extendedKeyUsage serverAuth + clientAuth, the IPs as
#                                        IP subjectAltNames (what otaclient dials and serves)
#   OUTDIR/operator.pem, operator.key    a client-only certificate (clientAuth) signed by the CA,
#                                        no subjectAltName: what otactl on a workstation holds
#   OUTDIR/other-ca.pem, other-ca.key    an unrelated CA
#   OUTDIR/intruder.pem, intruder.key    serverAuth + clientAuth, IP 127.0.0.1, signed by other-ca
#   OUTDIR/encrypted.key                 operator.key encrypted with the passphrase "secret"
set -euo pipefail

usage() {
  echo "usage: $0 OUTDIR NAME=IP[,IP...] ..." >&2
  exit 2
}
(($# >= 1)) || usage
outdir=$1
shift
mkdir -p "$outdir"
cd "$outdir"

cat >ext.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ecu]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = ${ENV::SAN}
[operator]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
CNF

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}
# new_ca NAME SUBJECT
new_ca() {
  new_key "$1.key"
  SAN=IP:127.0.0.1 openssl req -x509 -new -sha256 -key "$1.key" -subj "$2" -days 2 \
    -config ext.cnf -extensions ca -out "$1.pem" 2>/dev/null
}
# new_leaf NAME SUBJECT EXTENSIONS CA SAN
new_leaf() {
  new_key "$1.key"
  SAN=$5 openssl req -new -sha256 -key "$1.key" -subj "$2" -config ext.cnf -out "$1.csr" 2>/dev/null
  SAN=$5 openssl x509 -req -sha256 -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile ext.cnf -extensions "$3" \
    -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}

new_ca ca "/O=OTA Test/CN=OTA gRPC Test CA"
new_ca other-ca "/O=Someone Else/CN=Other CA"
for spec in "$@"; do
  [[ $spec == *=* ]] || usage
  name=${spec%%=*}
  ips=${spec#*=}
  san=IP:${ips//,/,IP:}
  new_leaf "$name" "/O=OTA Test/CN=$name" ecu ca "$san"
done
new_leaf operator "/O=OTA Test/CN=operator" operator ca IP:127.0.0.1
new_leaf intruder "/O=Someone Else/CN=intruder" ecu other-ca IP:127.0.0.1
openssl pkey -in operator.key -aes256 -passout pass:secret -out encrypted.key
rm -f ext.cnf
