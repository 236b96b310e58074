#!/usr/bin/env bash
# Makes a test PKI for signing OTA images (development and tests only; never ship these keys):
#
#   OUTDIR/root.key    root.pem     self-signed root CA (EC P-256)
#   OUTDIR/interm.key  interm.pem   intermediate CA, signed by the root
#   OUTDIR/sign.key    sign.pem     image signing key + cert, signed by the intermediate
#   OUTDIR/certs/1.root.pem, OUTDIR/certs/1.interm.pem
#                                   one CA group laid out as otaclient's certs dir expects
#
# Usage: gen-certs.sh [--expired] [--days N] OUTDIR
#   --expired  the signing cert (sign.pem) is already expired (valid 2020-01-01 .. 2021-01-01);
#              the CAs are valid from now on as usual. For tests of expiry handling.
#   --days N   validity of the certs in days (default 3650).
#
# Idempotent: when OUTDIR already holds a complete set of the requested kind, nothing changes.
# Otherwise a fresh set is made in a temp dir and moved into place.
set -euo pipefail

usage() {
  echo "usage: $0 [--expired] [--days N] OUTDIR" >&2
  exit 2
}

expired=0
days=3650
outdir=""
while (($#)); do
  case "$1" in
    --expired) expired=1 ;;
    --days)
      (($# >= 2)) || usage
      days="$2"
      shift
      ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
      [[ -z "$outdir" ]] || usage
      outdir="$1"
      ;;
  esac
  shift
done
[[ -n "$outdir" ]] || usage
[[ "$days" =~ ^[1-9][0-9]*$ ]] || {
  echo "gen-certs: --days wants a positive integer, got '$days'" >&2
  exit 2
}

outputs=(root.key root.pem interm.key interm.pem sign.key sign.pem certs/1.root.pem
  certs/1.interm.pem)

# True when OUTDIR already holds a complete, consistent set of the requested kind.
already_done() {
  local f
  for f in "${outputs[@]}"; do
    [[ -s "$outdir/$f" ]] || return 1
  done
  # The chain must verify (ignoring time), and the leaf must be expired exactly when asked.
  openssl verify -no_check_time -CAfile "$outdir/root.pem" -untrusted "$outdir/interm.pem" \
    "$outdir/sign.pem" >/dev/null 2>&1 || return 1
  if openssl x509 -in "$outdir/sign.pem" -noout -checkend 0 >/dev/null 2>&1; then
    ((expired == 0))
  else
    ((expired == 1))
  fi
}

if already_done; then
  echo "gen-certs: $outdir already holds the certificates"
  exit 0
fi

mkdir -p "$outdir"
work="$(mktemp -d "$outdir/.gen-certs.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cat >"$work/ext.cnf" <<'EOF'
[root_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[interm_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[signer]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve \
    -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# Every cert is issued with `openssl ca`: unlike `openssl x509 -req` in OpenSSL 3.0 it can set
# notBefore, so certs start a day in the past (tolerates clock skew) or, with --expired, lie
# entirely in the past.
mkdir -p "$work/ca/newcerts"
: >"$work/ca/index.txt"
openssl rand -hex 8 >"$work/ca/serial"
cat >"$work/ca.cnf" <<CA_CONFIG
[ca]
default_ca = test_ca
[test_ca]
dir = $work/ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
preserve = yes
[any_policy]
countryName = optional
organizationName = optional
commonName = supplied
CA_CONFIG

start="$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)"
end="$(date -u -d "$days days" +%Y%m%d%H%M%SZ)"

# issue NAME EXTENSIONS START END [ISSUER]: NAME.csr → NAME.pem; no ISSUER = self-signed.
issue() {
  local name="$1" ext="$2" from="$3" to="$4" issuer="${5:-}"
  local signer=(-selfsign -keyfile "$work/$name.key")
  [[ -z "$issuer" ]] || signer=(-cert "$work/$issuer.pem" -keyfile "$work/$issuer.key")
  openssl ca -batch -notext -config "$work/ca.cnf" "${signer[@]}" -startdate "$from" \
    -enddate "$to" -extfile "$work/ext.cnf" -extensions "$ext" -in "$work/$name.csr" \
    -out "$work/$name.pem" 2>/dev/null
}

declare -A subjects=(
  [root]="/C=JP/O=OTA Test/CN=OTA Test Root CA"
  [interm]="/C=JP/O=OTA Test/CN=OTA Test Intermediate CA"
  [sign]="/C=JP/O=OTA Test/CN=OTA Test Image Signer"
)
for name in root interm sign; do
  new_key "$work/$name.key"
  openssl req -new -sha256 -key "$work/$name.key" -subj "${subjects[$name]}" -out "$work/$name.csr"
done

issue root root_ca "$start" "$end"
issue interm interm_ca "$start" "$end" root
if ((expired)); then
  issue sign signer 20200101000000Z 20210101000000Z interm
else
  issue sign signer "$start" "$end" interm
fi

openssl verify -no_check_time -CAfile "$work/root.pem" -untrusted "$work/interm.pem" \
  "$work/sign.pem" >/dev/null

mkdir -p "$work/certs"
cp "$work/root.pem" "$work/certs/1.root.pem"
cp "$work/interm.pem" "$work/certs/1.interm.pem"

mkdir -p "$outdir/certs"
for f in "${outputs[@]}"; do
  mv -f "$work/$f" "$outdir/$f"
done
echo "gen-certs: wrote test CA, intermediate and signing cert to $outdir"
