#!/usr/bin/env bash
# The Debian packages (deploy/packaging.cmake): cpack builds otaclient, otaproxy, otactl and
# ota-image .debs from the build tree; each has the expected name, architecture, dependencies and
# files, and the packaged systemd units differ from deploy/'s only in the binary path. Then the
# packages are installed with `dpkg -i` into a throwaway root: an overlay whose lower layer is this
# machine's / (read-only; its dpkg database decides whether the Depends are satisfied, so a
# missing or misnamed library package fails the install) and whose upper layer is a tmpfs we
# mount and drop. systemd is not PID 1 here, so instead of `systemctl start` the test verifies the
# installed units with systemd-analyze and runs each unit's own ExecStart command line from the
# installed files in that root (otaclient answers Status, otaproxy its stats), then removes and
# purges the packages and checks that nothing is left.
set -euo pipefail
OTA_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
source "$OTA_SOURCE_DIR/test/e2e/lib.sh"

for tool in cpack dpkg dpkg-deb chroot systemd-analyze curl jq; do
  command -v "$tool" >/dev/null || fail "missing $tool"
done
e2e_init
ROOT=$E2E_WORK/root      # the throwaway root (overlay mount point)
LAYERS=$E2E_WORK/layers  # tmpfs: overlay upper + work dirs
DEBS=$E2E_WORK/debs
CHROOT_PIDS=()

release_root() {
  local pid
  for pid in "${CHROOT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${CHROOT_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  mountpoint -q "$ROOT/proc" && umount "$ROOT/proc"
  mountpoint -q "$ROOT" && umount "$ROOT"
  mountpoint -q "$LAYERS" && umount "$LAYERS"
  e2e_cleanup
}
trap release_root EXIT

# --- build the packages from this build tree ---
log "cpack -G DEB"
cpack -G DEB --config "$OTA_BIN_DIR/CPackConfig.cmake" -B "$DEBS" >"$E2E_WORK/cpack.log" 2>&1 ||
  { cat "$E2E_WORK/cpack.log" >&2; fail "cpack failed"; }
VERSION=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$OTA_BIN_DIR/CPackConfig.cmake")
[[ -n "$VERSION" ]] || fail "no CPACK_PACKAGE_VERSION in CPackConfig.cmake"
ARCH=$(dpkg --print-architecture)
declare -A DEB
for pkg in otaclient otaproxy otactl ota-image; do
  DEB[$pkg]=$DEBS/${pkg}_${VERSION}_${ARCH}.deb
  [[ -f "${DEB[$pkg]}" ]] || fail "cpack made no ${DEB[$pkg]##*/} (made: $(ls "$DEBS"))"
  [[ "$(dpkg-deb -f "${DEB[$pkg]}" Package)" == "$pkg" ]] || fail "$pkg: wrong Package field"
  [[ "$(dpkg-deb -f "${DEB[$pkg]}" Architecture)" == "$ARCH" ]] || fail "$pkg: wrong Architecture"
  [[ "$(dpkg-deb -f "${DEB[$pkg]}" Version)" == "$VERSION" ]] || fail "$pkg: wrong Version"
done

# Depends: from dpkg-shlibdeps (the libraries really linked) plus the tools each daemon runs.
depends_has() {  # depends_has PKG DEP: DEP is one of PKG's Depends (by package name)
  local names
  names=$(dpkg-deb -f "${DEB[$1]}" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//')
  grep -qx -- "$2" <<<"$names" ||
    fail "$1 does not depend on $2: $(dpkg-deb -f "${DEB[$1]}" Depends)"
}
for dep in libgrpc++1.51 libprotobuf32 libcurl4 libssl3 libzstd1 libsqlite3-0 e2fsprogs mount; do
  depends_has otaclient "$dep"
done
for dep in libcurl4 libssl3 libsqlite3-0 util-linux; do depends_has otaproxy "$dep"; done
depends_has otactl libgrpc++1.51
depends_has ota-image libssl3

# Files: exactly what each package should hold (directories aside).
files_of() { dpkg-deb -c "${DEB[$1]}" | awk '$1 !~ /^d/ {print $6}' | sort; }
expect_files() {  # expect_files PKG FILE...
  local pkg=$1 want got
  shift
  want=$(printf '%s\n' "$@" | sort)
  got=$(files_of "$pkg")
  [[ "$got" == "$want" ]] || fail "$pkg holds"$'\n'"$got"$'\n'"expected"$'\n'"$want"
}
expect_files otaclient ./usr/bin/otaclient ./usr/lib/systemd/system/otaclient.service \
  ./usr/share/doc/otaclient/copyright ./usr/share/doc/otaclient/examples/ecu_info.yaml \
  ./usr/share/doc/otaclient/examples/proxy_info.yaml
expect_files otaproxy ./usr/bin/otaproxy ./usr/lib/systemd/system/otaproxy.service \
  ./usr/share/doc/otaproxy/copyright ./usr/share/doc/otaproxy/examples/proxy_info.yaml
expect_files otactl ./usr/bin/otactl ./usr/share/doc/otactl/copyright
expect_files ota-image ./usr/bin/ota-image ./usr/share/doc/ota-image/copyright
[[ "$(dpkg-deb -c "${DEB[otaclient]}")" == *" ./opt/ota/client/certs/"* ]] ||
  fail "otaclient does not create /opt/ota/client/certs"

# --- install into a throwaway root ---
mkdir -p "$ROOT" "$LAYERS"
mount -t tmpfs -o size=512m tmpfs "$LAYERS"
mkdir -p "$LAYERS/upper" "$LAYERS/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$LAYERS/upper,workdir=$LAYERS/work" "$ROOT"
mount -t proc proc "$ROOT/proc"
for pkg in otaclient otaproxy otactl ota-image; do
  [[ ! -e "$ROOT/usr/bin/$pkg" ]] || fail "/usr/bin/$pkg exists before the install"
done
mkdir -p "$ROOT/debs"
cp "${DEB[@]}" "$ROOT/debs/"
log "dpkg -i (dependencies checked against this machine's dpkg database)"
chroot "$ROOT" dpkg -i /debs/otaclient_"$VERSION"_"$ARCH".deb /debs/otaproxy_"$VERSION"_"$ARCH".deb \
  /debs/otactl_"$VERSION"_"$ARCH".deb /debs/ota-image_"$VERSION"_"$ARCH".deb \
  >"$E2E_WORK/dpkg-install.log" 2>&1 || { cat "$E2E_WORK/dpkg-install.log" >&2; fail "dpkg -i"; }
for pkg in otaclient otaproxy otactl ota-image; do
  [[ "$(chroot "$ROOT" dpkg-query -W -f '${Status}' "$pkg")" == "install ok installed" ]] ||
    fail "$pkg is not 'install ok installed'"
  chroot "$ROOT" "/usr/bin/$pkg" --help >"$E2E_WORK/$pkg-help.txt" 2>&1 ||
    fail "$pkg --help failed: $(head -5 "$E2E_WORK/$pkg-help.txt")"
  grep -qiE "^usage" "$E2E_WORK/$pkg-help.txt" || fail "$pkg --help prints no usage"
done

# The packaged units: deploy/'s text with the packaged binary path, and valid for systemd.
for unit in otaclient otaproxy; do
  diff <(sed 's#/usr/local/bin/#/usr/bin/#g' "$OTA_SOURCE_DIR/deploy/$unit.service") \
    "$ROOT/usr/lib/systemd/system/$unit.service" ||
    fail "packaged $unit.service differs from deploy/$unit.service beyond the binary path"
done
chroot "$ROOT" systemd-analyze verify /usr/lib/systemd/system/otaclient.service \
  /usr/lib/systemd/system/otaproxy.service >"$E2E_WORK/verify.log" 2>&1 ||
  { cat "$E2E_WORK/verify.log" >&2; fail "systemd-analyze verify of the installed units"; }

# --- each unit's ExecStart, run from the installed files (what `systemctl start` would run) ---
exec_start() { sed -n 's/^ExecStart=//p' "$ROOT/usr/lib/systemd/system/$1.service"; }
wait_chroot_port_file() {  # wait_chroot_port_file WHAT FILE PID
  wait_port_file 30 "$1" "$2" "$3"
}
# otaclient: no /boot/ota/ecu_info.yaml in the root → the documented defaults (ecu_id
# "autoware" on 127.0.0.1); directory slots because this root has no A/B partitions.
read -r -a CLIENT_CMD <<<"$(exec_start otaclient)"
[[ "${CLIENT_CMD[0]}" == /usr/bin/otaclient ]] || fail "otaclient ExecStart runs ${CLIENT_CMD[0]}"
mkdir -p "$ROOT/var/tmp/ota-slots/slot_a" "$ROOT/var/tmp/ota-slots/boot/slot_a"
printf 'packaged' >"$ROOT/var/tmp/ota-slots/boot/slot_a/version"
chroot "$ROOT" "${CLIENT_CMD[@]}" --boot-backend dir --dir-slots-root /var/tmp/ota-slots \
  --listen-port 0 --port-file /run/otaclient-test.port >"$E2E_WORK/otaclient-packaged.log" 2>&1 &
CHROOT_PIDS+=($!)
wait_chroot_port_file "packaged otaclient" "$ROOT/run/otaclient-test.port" "${CHROOT_PIDS[-1]}"
STATUS=$(chroot "$ROOT" otactl status --target "127.0.0.1:$PORT_FROM_FILE" --json) ||
  fail "otactl status against the packaged otaclient"
[[ "$(jq -r '.ecu_v2[0].ecu_id' <<<"$STATUS")" == autoware ]] || fail "status: $STATUS"
[[ "$(jq -r '.ecu_v2[0].otaclient_version' <<<"$STATUS")" == "$VERSION" ]] ||
  fail "packaged otaclient reports otaclient_version $(jq -r '.ecu_v2[0].otaclient_version' <<<"$STATUS"), not $VERSION"
[[ "$(jq -r '.ecu_v2[0].firmware_version' <<<"$STATUS")" == packaged ]] || fail "status: $STATUS"

# otaproxy (without the root-only USB helper of ExecStartPre=+): serves its stats.
read -r -a PROXY_CMD <<<"$(exec_start otaproxy)"
[[ "${PROXY_CMD[0]}" == /usr/bin/otaproxy ]] || fail "otaproxy ExecStart runs ${PROXY_CMD[0]}"
chroot "$ROOT" "${PROXY_CMD[@]}" --listen-addr 127.0.0.1 --listen-port 0 --no-external-cache \
  --port-file /run/otaproxy-test.port >"$E2E_WORK/otaproxy-packaged.log" 2>&1 &
CHROOT_PIDS+=($!)
wait_chroot_port_file "packaged otaproxy" "$ROOT/run/otaproxy-test.port" "${CHROOT_PIDS[-1]}"
curl -fsS "http://127.0.0.1:$PORT_FROM_FILE/_otaproxy/stats" | jq -e '.cache' >/dev/null ||
  fail "packaged otaproxy serves no stats"

for pid in "${CHROOT_PIDS[@]}"; do kill "$pid"; done
for pid in "${CHROOT_PIDS[@]}"; do wait "$pid" || true; done
CHROOT_PIDS=()

# --- remove and purge: nothing of ours is left ---
chroot "$ROOT" dpkg --purge otaclient otaproxy otactl ota-image >"$E2E_WORK/dpkg-purge.log" 2>&1 ||
  { cat "$E2E_WORK/dpkg-purge.log" >&2; fail "dpkg --purge"; }
for path in /usr/bin/otaclient /usr/bin/otaproxy /usr/bin/otactl /usr/bin/ota-image \
  /usr/lib/systemd/system/otaclient.service /usr/lib/systemd/system/otaproxy.service \
  /usr/share/doc/otaclient /usr/share/doc/otaproxy; do
  [[ ! -e "$ROOT$path" ]] || fail "$path is still there after dpkg --purge"
done
for pkg in otaclient otaproxy otactl ota-image; do
  [[ "$(chroot "$ROOT" dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null || true)" != *installed* ]] ||
    fail "$pkg still installed after purge"
done
log "PASS: 4 packages built, installed, run and purged"
