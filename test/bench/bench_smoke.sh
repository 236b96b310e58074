#!/usr/bin/env bash
# bench_smoke.sh DELTA_SCAN_BENCH: runs the delta scan benchmark binary on a 200-file temp tree
# (plus an empty file, a symlink and a skipped top-level dir) and checks what it reports:
#   unmatched digests → all 200 non-empty files hashed, their exact byte total, nothing reused;
#   real digests      → every file reused, one resources file per content, nothing missing.
set -euo pipefail
bench=${1:?usage: bench_smoke.sh DELTA_SCAN_BENCH}
work=$(mktemp -d "${TMPDIR:-/tmp}/ota-bench-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

tree=$work/tree
mkdir -p "$tree/a/b" "$tree/c" "$tree/proc"
# 200 files of distinct sizes (37..7400 bytes) and distinct content, written by one awk process.
expected_bytes=$(awk -v tree="$tree" 'BEGIN {
  for (i = 1; i <= 200; i++) {
    dir = tree "/a"
    if (i % 3 == 0) dir = tree "/a/b"
    if (i % 5 == 0) dir = tree "/c"
    size = i * 37
    path = dir "/f" i
    printf "%-" size "s", "file " i >path
    close(path)
    total += size
  }
  print total
}')
: >"$tree/c/empty"
ln -s ../a/f1 "$tree/c/link"
echo "not scanned" >"$tree/proc/ignored"

check() {  # check JSON FIELD WANT
  local got
  got=$(jq -r ".$2" <<<"$1")
  [[ "$got" == "$3" ]] || { echo "FAIL: $2 = $got, want $3 in: $1" >&2; exit 1; }
}

out=$("$bench" --active "$tree" --standby-parent "$work")
echo "unmatched: $out"
check "$out" manifest_files 201
check "$out" empty_files 1
check "$out" files_hashed 200
check "$out" bytes_hashed "$expected_bytes"
check "$out" reused 0
check "$out" missing 200

out=$("$bench" --active "$tree" --standby-parent "$work" --digests real --hash-threads 2)
echo "real: $out"
check "$out" files_hashed 200
check "$out" reused 200
check "$out" resources_files 200
check "$out" missing 0
# The standby temp dirs are removed by the binary itself.
leftover=$(find "$work" -maxdepth 1 -name 'delta-scan-standby*' | wc -l)
[[ $leftover == 0 ]] || { echo "FAIL: $leftover standby temp dirs left behind" >&2; exit 1; }
echo "bench_smoke: OK"
