#!/usr/bin/env bash
# The one test command: installs dependencies, checks formatting, smoke-runs every libFuzzer
# target, builds (warnings are errors), runs clang-tidy (.clang-tidy) over the product code, every
# test in test/ with ctest, then the multi-threaded tests under ThreadSanitizer.
#   deploy/run-tests.sh            everything
#   OTA_SKIP_FUZZ=1 ...            skip the clang/libFuzzer smoke run
#   OTA_FUZZ_SECONDS=N             seconds per fuzz target (default 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Each phase's wall time, printed at the end (also when a phase fails) so CI time can be tracked.
phase_times=()
phase_name=""
phase_start=$SECONDS
phase() {
  [[ -n $phase_name ]] && phase_times+=("$(printf '%5d s  %s' $((SECONDS - phase_start)) "$phase_name")")
  phase_name=$1
  phase_start=$SECONDS
  [[ -n $phase_name ]] && echo "== $phase_name"
  return 0
}
print_phase_times() {
  phase ""
  echo "== phase times (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
  printf '%s\n' "${phase_times[@]}"
}
trap print_phase_times EXIT

phase "dependencies"

bash deploy/install-deps.sh
# The real-boot VM test needs a kernel and grub-install: fetched from Debian and unpacked, never
# installed.
bash deploy/fetch-vm-debs.sh

phase "clang-format check"
mapfile -t sources < <(git ls-files -- '*.cc' '*.h' 2>/dev/null || true)
if ((${#sources[@]} == 0)); then
  mapfile -t sources < <(find common otaclient otaproxy tools test -name '*.cc' -o -name '*.h')
fi
clang-format --dry-run --Werror "${sources[@]}"

jobs=$(nproc)

if [[ "${OTA_SKIP_FUZZ:-0}" != 1 ]]; then
  phase "libFuzzer smoke run"
  cmake --preset fuzz >/dev/null
  cmake --build build/fuzz -j"$jobs" --target fuzz_all
  # One target per core at a time: each run is bounded by -max_total_time, so the smoke run takes
  # (targets / cores) x OTA_FUZZ_SECONDS.
  fuzz_one() {
    local bin=$1 name work
    name=$(basename "$bin")
    work=$(mktemp -d)
    cp -r "test/fuzz/corpus/$name"/. "$work"/ 2>/dev/null || true
    # libFuzzer's own RSS watchdog hangs in some containers: let ASan enforce the limit instead,
    # and never let one target run away.
    if ASAN_OPTIONS=hard_rss_limit_mb=2048 timeout $((OTA_FUZZ_SECONDS + 60)) \
      "$bin" -max_total_time="$OTA_FUZZ_SECONDS" -rss_limit_mb=0 -print_final_stats=0 \
      "$work" 2>"$work.log"; then
      echo "-- $name (${OTA_FUZZ_SECONDS}s): ok"
      rm -rf "$work" "$work.log"
    else
      tail -50 "$work.log"
      echo "fuzz target $name failed (corpus and log: $work, $work.log)"
      return 1
    fi
  }
  export -f fuzz_one
  export OTA_FUZZ_SECONDS=${OTA_FUZZ_SECONDS:-5}
  printf '%s\n' build/fuzz/test/fuzz/*_fuzz | xargs -P "$jobs" -I{} bash -c 'fuzz_one "$1"' _ {} || {
    echo "libFuzzer smoke run failed"
    exit 1
  }
fi

phase "build (release, -Werror)"
cmake --preset release >/dev/null
cmake --build build/release -j"$jobs"

# The curated checks of .clang-tidy over the product code (warnings are errors), on the release
# build's compile commands (its generated gRPC headers included).
phase "clang-tidy"
mapfile -t product < <(git ls-files -- 'common/*.cc' 'otaclient/*.cc' 'otaproxy/*.cc' 'tools/*.cc' 2>/dev/null ||
  find common otaclient otaproxy tools -name '*.cc')
run-clang-tidy -quiet -p build/release -j "$jobs" -extra-arg=-Wno-unknown-warning-option \
  "${product[@]}" >build/release/clang-tidy.log 2>&1 || {
  grep -E '(error|warning):' build/release/clang-tidy.log | sort -u | head -50
  echo "clang-tidy found problems (whole log: build/release/clang-tidy.log)"
  exit 1
}

phase "tests"
# Two tests per core: most tests spend their time waiting for daemons, servers and disks (at one
# per core ctest kept the 2-core CI machine about half busy); the two real-boot VM tests start
# first (COST) and each keeps one core busy.
ctest --preset release -j"$((jobs * 2))" --timeout 900

# The multi-threaded tests again under ThreadSanitizer (only those binaries are built; the
# suppressions in test/tsan.supp cover races inside Debian's uninstrumented gRPC/abseil only).
# The fuzz and tsan presets keep line tables only (-gline-tables-only / -g1): enough for
# symbolized reports, and a good part of their build time is full debug info otherwise.
phase "ThreadSanitizer"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j"$jobs"
ctest --preset tsan -j"$jobs" --timeout 900
