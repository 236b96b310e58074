#!/usr/bin/env bash
# x5c_pki.sh OUTDIR: certificates for the OTA image v1 chain-policy table (signing_test.cc),
# made with the openssl CLI and a minimal config, so each carries exactly the extensions named.
#   root      basicConstraints critical CA:TRUE        (self-signed)
#   interm    basicConstraints critical CA:TRUE        (by root)
#   leaf      no extensions                            (by interm)
#   leafca    basicConstraints critical CA:TRUE        (by interm; a leaf may say CA)
#   short     like interm, valid 1 day; shortleaf by it
#   rootnc    basicConstraints CA:TRUE, NOT critical   (self-signed); intnc (critical) by it,
#             leafnc by intnc
#   nobc      no basicConstraints                      (by root); leafnobc by it
#   rootpl0   basicConstraints critical CA:TRUE,pathlen:0; intpl by it; leafpl by intpl
#   other     another intermediate by root (not the leaf's issuer)
set -euo pipefail
out=${1:?usage: x5c_pki.sh OUTDIR}
mkdir -p "$out"
cd "$out"
cat >ext.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
[ca_nc]
basicConstraints = CA:TRUE
[ca_pl0]
basicConstraints = critical,CA:TRUE,pathlen:0
[none]
subjectKeyIdentifier = none
CNF
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }
selfsigned() {  # selfsigned NAME SECTION
  key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=x5c test $1" -days 3650 -config ext.cnf \
    -extensions "$2" -out "$1.pem"
}
issue() {  # issue NAME SECTION ISSUER [DAYS]
  key "$1"
  openssl req -new -key "$1.key" -subj "/CN=x5c test $1" -config ext.cnf -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days "${4:-3650}" -extfile ext.cnf -extensions "$2" -out "$1.pem" 2>/dev/null
  rm "$1.csr"
}
selfsigned root ca
issue interm ca root
issue leaf none interm
issue leafca ca interm
issue short ca root 1
issue shortleaf none short
issue other ca root
selfsigned rootnc ca_nc
issue intnc ca rootnc
issue leafnc none intnc
issue nobc none root
issue leafnobc none nobc
selfsigned rootpl0 ca_pl0
issue intpl ca rootpl0
issue leafpl none intpl
