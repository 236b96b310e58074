// otaclient: the OTA daemon of one ECU. Flags, config loading, wiring of the boot controller,
// fetcher, update engine and gRPC service, and a graceful stop on SIGTERM/SIGINT.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/config/ecu_info.h"
#include "common/config/proxy_info.h"
#include "common/crypto/grpc_tls.h"
#include "common/fs/fs.h"
#include "common/http/curl_fetcher.h"
#include "common/log/log.h"
#include "common/telemetry/log_uploader.h"
#include "common/telemetry/network_transport.h"
#include "common/telemetry/upload_endpoints.h"
#include "common/util/errors.h"
#include "common/util/memory.h"
#include "common/util/strings.h"
#include "otaclient/boot/boot_factory.h"
#include "otaclient/boot/dir_boot_controller.h"
#include "otaclient/ecu/ecu_tree.h"
#include "otaclient/metrics/progress_logger.h"
#include "otaclient/metrics/session_metrics.h"
#include "otaclient/service/client_handover.h"
#include "otaclient/service/download_proxy.h"
#include "otaclient/service/ota_client_service.h"
#include "otaclient/service/port_handover.h"
#include "otaclient/service/server.h"
#include "otaclient/service/version.h"
#include "otaclient/update/boot_confirmation.h"
#include "otaclient/update/client_update.h"
#include "otaclient/update/install_hooks.h"
#include "otaclient/update/update_engine.h"

namespace {

constexpr char kUsage[] = R"(Usage: otaclient [options]

The OTA update daemon of one ECU: serves OtaClientV2.OtaClientService on <ecu_info ip_addr>:<port>.

  --config-dir DIR          ecu_info.yaml and proxy_info.yaml (.yml read when there is no
                            .yaml) (default /boot/ota)
  --certs-dir DIR           CA groups <group>.<name>.pem that image signers must chain to
                            (default /opt/ota/client/certs); for OTA image v1, every self-signed
                            certificate (*.pem, *.crt) there is a root
  --release-key KEY         OTA image v1: the payload variant to install, dev or prd (default
                            dev, as the deployed client)
  --allow-unverified-image  DEVELOPMENT ONLY: accept images whose signer does not chain to an
                            installed CA
  --listen-port N           gRPC port (default 50051; 0: any free port, see --port-file)
  --port-file FILE          once listening, write the port to FILE ("<port>\n", atomically);
                            removed again when otaclient stops
  --boot-backend B          auto|dir|grub|cboot|jetson-uefi|rpi_boot; auto follows ecu_info's
                            `bootloader`, and without one detects (x86_64: grub; aarch64 with
                            tegra_chip_id: cboot; a Raspberry Pi 4 Model B: rpi_boot;
                            jetson-uefi is never guessed) (default auto)
  --dir-slots-root DIR      root of the directory backend's slots (slot_a/, slot_b/, boot/)
  --grub-boot-dir DIR       GRUB: mount point of the shared boot partition (default /boot)
  --grub-env FILE           GRUB: environment block (default <grub boot dir>/grub/grubenv)
  --grub-kernel-args ARGS   GRUB: kernel arguments of both slots' menu entries besides root= and
                            panic= (default: those of the running kernel)
  --grub-panic-seconds N    GRUB: panic=N, a panicking new kernel resets into the old slot
                            (default 5)
  --ca-bundle PEM           CA bundle for HTTPS downloads (default: system store)
  --download-parallel N     concurrent downloads (default 16)
  --max-download-rate RATE  cap on the update's download bandwidth in bytes/s, all parallel
                            downloads together; K, M, G suffixes (binary), 0 = unlimited
                            (default 0). (A download cut mid-file continues with a Range
                            request from the bytes already received, hash state kept, when the
                            server or otaproxy allows it; no flag)
  --update-nice N           nice value of the update's threads, 0..19: the update yields the
                            CPU and (at best-effort I/O level 7) the disk to the ECU's own work
                            and to the gRPC service; 0 runs it at the service's priority
                            (default 10)
  --no-reboot               stop after switching the boot slot instead of rebooting
  --standby-mode M          auto|in-place|rebuild: how the standby is written. auto (default):
                            in place (only what changed) when its file system is fit (ext4,
                            e2fsck -n clean; directory slots always) and it holds a record of
                            an earlier update (/.ota-meta), re-verifying every file when that
                            update was interrupted; else rebuilt. in-place: also without a
                            record (every file re-verified). rebuild: always cleaned/rewritten

Health-gated commit and install hooks (issue 16; durations in seconds):
  --health-check-command CMD  the first start in a new slot confirms it only once CMD (run with
                            /bin/sh -c) exits 0; until then Status says UPDATING /
                            FINALIZING_UPDATE and updates are refused; a failure or timeout
                            returns the ECU to the old slot (reboot), which reports FAILURE
                            "health check failed: <reason>" (default: none, confirm at once)
  --health-check-systemd-target UNIT  the same, healthy when `systemctl is-active UNIT` says
                            active ("failed" fails at once); with a command too, the unit first
  --health-check-timeout S  for the health check as a whole (default 300)
  --install-hooks-dir DIR   optional pre-install / post-install executables (root-owned, not
                            group/world-writable), run around the writing of the standby with
                            OTA_TARGET_ROOT, OTA_TARGET_VERSION, OTA_IMAGE_URL, OTA_ECU_ID,
                            OTA_ACTIVE_ROOT, OTA_HOOK; a non-zero exit fails the update before
                            the boot switch (default <config dir>/hooks)
  --install-hook-timeout S  per hook (default 600)

Mutual TLS of the gRPC service and of the calls to the secondaries (all three or none; none:
plain gRPC as the vehicles in the field expect; otaclient does not start when they are
incomplete, unreadable or do not fit together):
  --grpc-tls-cert PEM       this ECU's certificate (+ intermediates), used as server and as
                            client; it must name ecu_info ip_addr as an IP subjectAltName
  --grpc-tls-key PEM        its private key (unencrypted)
  --grpc-tls-ca PEM         the CA every peer's certificate must be signed by: clients without
                            such a certificate are refused, and so are secondaries

Multi-ECU (ecu_info `secondaries`; durations in seconds, decimals allowed):
  --secondary-timeout S     deadline of a forwarded Update/Abort/Rollback and of a Status poll
                            of a direct secondary (default 6, as the Python client)
  --poll-interval-active S  Status poll of the secondaries while any ECU of the tree is in an
                            update (default 1)
  --poll-interval-idle S    Status poll of the secondaries otherwise (default 10)
  --ecu-drop-timeout S      an ECU not heard from for this long is left out of Status ecu_v2
                            (listed in the v1 view as RECOVERABLE without status) (default: three
                            poll intervals, as the Python client: 3 s while an update runs, 30 s
                            otherwise)
  --secondary-grace-period S  before rebooting after its own update this ECU waits while a
                            direct secondary is still updating; one unreachable for this long
                            stops blocking (default 1200)

ClientUpdate (self-update from the otaclient package in the requested image; see README):
  --client-staging-dir DIR  where the verified new otaclient binary is staged (default
                            /run/otaclient/client)
  --client-update-timeout S the new otaclient must answer Status with its version within this,
                            else it is stopped and this one serves again (default 30)
  --dynamic-client          (set by otaclient for the client it starts) this process is the
                            result of a ClientUpdate: a further ClientUpdate is acknowledged
                            and ignored, as upstream
  --ready-fd N              once listening, write "<port>\n" to file descriptor N and close it
  --listen-lock-fd N        (set by otaclient for the client it starts) the old client's lock on
                            the listen address: this one joins the port and takes over the new
                            connections while the old one still serves (no gap in Status)
  --version                 print the otaclient version and exit

  --log-level LEVEL         debug, info, warning or error (default info)
  -h, --help                this text
)";

struct Flags {
  std::filesystem::path config_dir = "/boot/ota";
  std::filesystem::path certs_dir = "/opt/ota/client/certs";
  bool allow_unverified_image = false;
  std::string release_key = "dev";
  int listen_port = ota::service::kDefaultPort;
  std::filesystem::path port_file;
  std::string boot_backend = "auto";
  std::filesystem::path dir_slots_root;
  std::filesystem::path grub_boot_dir = "/boot";
  std::filesystem::path grub_env;
  std::optional<std::string> grub_kernel_args;
  int grub_panic_seconds = 5;
  std::string ca_bundle;
  int download_parallel = 16;
  uint64_t max_download_rate = 0;  // bytes/s, 0 = unlimited
  int update_nice = 10;
  bool no_reboot = false;
  ota::update::StandbyModeSetting standby_mode = ota::update::StandbyModeSetting::kAuto;
  // Health-gated commit and install hooks (issue 16).
  ota::update::HealthCheckOptions health_check;
  std::optional<std::filesystem::path> install_hooks_dir;  // unset: <config_dir>/hooks
  std::chrono::milliseconds install_hook_timeout = ota::update::kDefaultInstallHookTimeout;
  ota::crypto::GrpcTlsFiles grpc_tls;  // all empty: plain gRPC
  ota::ecu::EcuTreeOptions tree;       // timing flags; ids and children come from ecu_info
  ota::log::Level log_level = ota::log::Level::kInfo;
  // ClientUpdate.
  std::filesystem::path client_staging_dir = "/run/otaclient/client";
  std::chrono::milliseconds client_update_timeout{30000};
  bool dynamic_client = false;
  int ready_fd = -1;
  int listen_lock_fd = -1;
};

// Exits 2 with a message for a bad command line.
[[noreturn]] void UsageError(const std::string& message) {
  std::cerr << "otaclient: " << message << "\n(see otaclient --help)\n";
  std::_Exit(2);
}

int ParseInt(const std::string& name, const std::string& text, int min, int max) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    UsageError(
        ota::StrCat(name, " expects an integer in [", min, ", ", max, "], got \"", text, "\""));
  }
  return value;
}

// Seconds (decimals allowed) within [min_s, max_s] → milliseconds.
std::chrono::milliseconds ParseSeconds(const std::string& name, const std::string& text,
                                       double min_s, double max_s) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min_s ||
      value > max_s) {
    UsageError(
        ota::StrCat(name, " expects seconds in [", min_s, ", ", max_s, "], got \"", text, "\""));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(value * 1000));
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> inline_value;
    if (const size_t eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) UsageError(ota::StrCat(name, " needs a value"));
      return args[++i];
    };
    auto no_value = [&] {
      if (inline_value) UsageError(ota::StrCat(name, " takes no value"));
    };
    if (name == "-h" || name == "--help") {
      std::cout << kUsage << std::flush;
      std::_Exit(0);
    } else if (name == "--config-dir") {
      flags.config_dir = value();
    } else if (name == "--certs-dir") {
      flags.certs_dir = value();
    } else if (name == "--allow-unverified-image") {
      no_value();
      flags.allow_unverified_image = true;
    } else if (name == "--release-key") {
      flags.release_key = value();
      if (flags.release_key != "dev" && flags.release_key != "prd") {
        UsageError(
            ota::StrCat("release key ", flags.release_key, " unknown (expected dev or prd)"));
      }
    } else if (name == "--listen-port") {
      flags.listen_port = ParseInt(name, value(), 0, 65535);
    } else if (name == "--port-file") {
      flags.port_file = value();
      if (flags.port_file.empty()) UsageError("--port-file needs a path");
    } else if (name == "--boot-backend") {
      flags.boot_backend = value();
      if (flags.boot_backend != "dir" && flags.boot_backend != "auto" &&
          flags.boot_backend != "grub" && flags.boot_backend != "cboot" &&
          flags.boot_backend != "jetson-cboot" && flags.boot_backend != "jetson-uefi" &&
          flags.boot_backend != "rpi_boot") {
        UsageError(ota::StrCat("boot backend ", flags.boot_backend,
                               " unknown (expected auto, dir, grub, cboot, jetson-uefi or "
                               "rpi_boot)"));
      }
    } else if (name == "--dir-slots-root") {
      flags.dir_slots_root = value();
    } else if (name == "--grub-boot-dir") {
      flags.grub_boot_dir = value();
    } else if (name == "--grub-env") {
      flags.grub_env = value();
    } else if (name == "--grub-kernel-args") {
      flags.grub_kernel_args = value();
    } else if (name == "--grub-panic-seconds") {
      flags.grub_panic_seconds = ParseInt(name, value(), 1, 3600);
    } else if (name == "--ca-bundle") {
      flags.ca_bundle = value();
    } else if (name == "--download-parallel") {
      flags.download_parallel = ParseInt(name, value(), 1, 256);
    } else if (name == "--max-download-rate") {
      const std::string text = value();
      const std::optional<uint64_t> rate = ota::ParseByteSize(text);
      if (!rate) {
        UsageError(
            ota::StrCat(name, " expects bytes per second (K, M, G suffixes), got \"", text, "\""));
      }
      flags.max_download_rate = *rate;
    } else if (name == "--update-nice") {
      flags.update_nice = ParseInt(name, value(), 0, 19);
    } else if (name == "--no-reboot") {
      no_value();
      flags.no_reboot = true;
    } else if (name == "--standby-mode") {
      absl::StatusOr<ota::update::StandbyModeSetting> mode =
          ota::update::ParseStandbyModeSetting(value());
      if (!mode.ok()) UsageError(ota::StrCat("--standby-mode: ", mode.status().message()));
      flags.standby_mode = *mode;
    } else if (name == "--health-check-command") {
      flags.health_check.command = value();
      if (flags.health_check.command.empty()) UsageError(ota::StrCat(name, " needs a command"));
    } else if (name == "--health-check-systemd-target") {
      flags.health_check.systemd_unit = value();
      if (flags.health_check.systemd_unit.empty()) UsageError(ota::StrCat(name, " needs a unit"));
    } else if (name == "--health-check-timeout") {
      flags.health_check.timeout = ParseSeconds(name, value(), 0.1, 86400);
    } else if (name == "--install-hooks-dir") {
      flags.install_hooks_dir = value();
    } else if (name == "--install-hook-timeout") {
      flags.install_hook_timeout = ParseSeconds(name, value(), 0.1, 86400);
    } else if (name == ota::crypto::kGrpcTlsCertFlag) {
      flags.grpc_tls.cert = value();
      if (flags.grpc_tls.cert.empty()) UsageError(ota::StrCat(name, " needs a path"));
    } else if (name == ota::crypto::kGrpcTlsKeyFlag) {
      flags.grpc_tls.key = value();
      if (flags.grpc_tls.key.empty()) UsageError(ota::StrCat(name, " needs a path"));
    } else if (name == ota::crypto::kGrpcTlsCaFlag) {
      flags.grpc_tls.ca = value();
      if (flags.grpc_tls.ca.empty()) UsageError(ota::StrCat(name, " needs a path"));
    } else if (name == "--secondary-timeout") {
      flags.tree.forward_timeout = ParseSeconds(name, value(), 0.1, 600);
      flags.tree.status_timeout = flags.tree.forward_timeout;
    } else if (name == "--poll-interval-active") {
      flags.tree.poll_interval_active = ParseSeconds(name, value(), 0.05, 3600);
    } else if (name == "--poll-interval-idle") {
      flags.tree.poll_interval_idle = ParseSeconds(name, value(), 0.05, 3600);
    } else if (name == "--ecu-drop-timeout") {
      flags.tree.drop_after = ParseSeconds(name, value(), 0.1, 86400);
    } else if (name == "--secondary-grace-period") {
      flags.tree.unreachable_grace = ParseSeconds(name, value(), 0, 7 * 86400);
    } else if (name == "--version") {
      std::cout << ota::service::OtaClientVersion() << "\n" << std::flush;
      std::_Exit(0);
    } else if (name == "--client-staging-dir") {
      flags.client_staging_dir = value();
      if (flags.client_staging_dir.empty()) UsageError("--client-staging-dir needs a path");
    } else if (name == "--client-update-timeout") {
      flags.client_update_timeout = ParseSeconds(name, value(), 1, 3600);
    } else if (name == "--dynamic-client") {
      no_value();
      flags.dynamic_client = true;
    } else if (name == "--ready-fd") {
      flags.ready_fd = ParseInt(name, value(), 3, 1023);
    } else if (name == "--listen-lock-fd") {
      flags.listen_lock_fd = ParseInt(name, value(), 3, 1023);
    } else if (name == "--log-level") {
      const std::string level = value();
      if (!ota::log::ParseLevel(level, &flags.log_level)) {
        UsageError(ota::StrCat("--log-level: unknown level \"", level, "\""));
      }
    } else {
      UsageError(ota::StrCat("unknown option \"", args[i], "\""));
    }
  }
  return flags;
}

[[noreturn]] void Fatal(const std::string& what, const absl::Status& status) {
  ota::log::Error(what, {{"error", status.ToString()}});
  std::cerr << "otaclient: " << what << ": " << status.message() << "\n";
  std::_Exit(1);  // threads may be running: no static destructors under them
}

// ecu_info's bootloader as the boot factory takes it: auto_detect (deprecated upstream) is what
// no `bootloader` key means too.
std::string BootloaderForFactory(const ota::config::EcuInfo& ecu_info) {
  return ecu_info.bootloader == "auto_detect" ? std::string() : ecu_info.bootloader;
}

// The boot backend: the flag wins, `auto` follows ecu_info's bootloader.
absl::StatusOr<std::unique_ptr<ota::boot::BootController>> CreateBootController(
    const Flags& flags, const ota::config::EcuInfo& ecu_info, char** argv, int argc) {
  ota::boot::BootFactoryOptions options;
  options.backend = flags.boot_backend;
  options.ecu_bootloader = BootloaderForFactory(ecu_info);
  options.dir.root = flags.dir_slots_root;
  // A "reboot" of the directory backend re-executes this daemon with the same arguments, but
  // for --ready-fd: that fd was used once (a client started by a ClientUpdate) and is closed.
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--ready-fd") {
      ++i;
      continue;
    }
    if (arg.starts_with("--ready-fd=")) continue;
    options.dir.reexec_argv.emplace_back(arg);
  }
  options.grub.boot_dir = flags.grub_boot_dir;
  options.grub.grubenv = flags.grub_env;
  options.grub.kernel_args = flags.grub_kernel_args;
  options.grub.panic_seconds = flags.grub_panic_seconds;
  options.grub.slot_override = {ecu_info.boot_slot_a, ecu_info.boot_slot_b};
  // Jetson and Pi: ecu_info's boot_slot_a/b name the rootfs of slot 0/1 (default: partitions
  // 1/2 (Jetson) or 2/3 (Pi) of the running rootfs's disk).
  options.cboot.rootfs_devices = {ecu_info.boot_slot_a, ecu_info.boot_slot_b};
  options.uefi.rootfs_devices = {ecu_info.boot_slot_a, ecu_info.boot_slot_b};
  options.rpi.rootfs_devices = {ecu_info.boot_slot_a, ecu_info.boot_slot_b};
  return ota::boot::CreateBootController(std::move(options));
}

// Write end of the self-pipe the stop-signal handler writes the signal number into.
int g_stop_pipe_write = -1;
int g_stop_pipe_read = -1;

void OnStopSignal(int signal_number) {
  const int saved_errno = errno;
  const char byte = static_cast<char>(signal_number);
  // Async-signal-safe; a full pipe means a stop is already pending.
  [[maybe_unused]] ssize_t ignored = write(g_stop_pipe_write, &byte, 1);
  errno = saved_errno;
}

bool InstallStopSignalHandlers() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  g_stop_pipe_read = fds[0];
  g_stop_pipe_write = fds[1];
  // The reading end blocks; only the handler's end must never block.
  const int flags = fcntl(g_stop_pipe_read, F_GETFL);
  if (flags < 0 || fcntl(g_stop_pipe_read, F_SETFL, flags & ~O_NONBLOCK) != 0) return false;
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(SIGTERM, &action, nullptr) == 0 && sigaction(SIGINT, &action, nullptr) == 0;
}

// What the self-pipe carries besides signal numbers: a staged ClientUpdate wants the hand-over.
constexpr char kHandOverWake = ota::service::WakeSource::kHandOverWake;

void WakeForHandOver() {
  const char byte = kHandOverWake;
  [[maybe_unused]] ssize_t ignored = write(g_stop_pipe_write, &byte, 1);
}

// Blocks until SIGTERM or SIGINT arrived (returns the signal number) or WakeForHandOver (0).
int WaitForStopSignal() {
  char byte = 0;
  while (read(g_stop_pipe_read, &byte, 1) != 1) {
    if (errno != EINTR) return SIGTERM;  // cannot happen with a valid pipe; stop anyway
  }
  return byte;
}

std::string_view OtaStatusName(ota::boot::SlotStatus status) {
  return ota::boot::SlotStatusName(status);
}

// How long the log upload may go on sending when otaclient stops, and before a reboot (the
// deployed client sleeps 6 s there). Neither waits when the logging server is not connected.
constexpr std::chrono::seconds kLogDrainAtStop{2};
constexpr std::chrono::seconds kLogFlushBeforeReboot{2};
// How often the progress of a running update is logged (as the deployed client).
constexpr std::chrono::seconds kProgressLogInterval{60};

// The fleet log upload from proxy_info's logging_server(_grpc); nullptr when it is off (null)
// or the endpoints do not resolve (logged; otaclient runs on without it).
std::unique_ptr<ota::telemetry::LogUploader> StartLogUpload(const ota::config::ProxyInfo& proxy,
                                                            const std::string& ecu_id) {
  auto endpoints = ota::telemetry::ResolveUploadEndpoints(proxy, ecu_id);
  if (!endpoints.ok()) {
    ota::log::Warning("log upload off: cannot resolve the logging server",
                      {{"error", std::string(endpoints.status().message())}});
    return nullptr;
  }
  if (!endpoints->has_value()) {
    ota::log::Info("log upload off (proxy_info logging_server: null)");
    return nullptr;
  }
  const ota::telemetry::UploadEndpoints resolved = **endpoints;
  ota::log::Info("log upload to the fleet logging server",
                 {{"http", resolved.http_url},
                  {"grpc", resolved.grpc_target.empty() ? "none" : resolved.grpc_target}});
  return std::make_unique<ota::telemetry::LogUploader>(
      ota::telemetry::CreateNetworkConnector(resolved, ecu_id));
}

// The local otaproxy's cache counters for the metrics record (nullopt: no local otaproxy, or it
// does not answer within a second).
std::optional<ota::metrics::CacheCounters> ReadLocalOtaProxyCounters(
    const ota::config::ProxyInfo& proxy) {
  if (!proxy.enable_local_ota_proxy) return std::nullopt;
  absl::StatusOr<std::string> stats = ota::service::LocalOtaProxyAdmin(
      proxy, "GET", "/_otaproxy/stats", std::chrono::milliseconds(1000));
  if (!stats.ok()) return std::nullopt;
  return ota::metrics::CacheCountersFromStatsJson(*stats);
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  ota::log::SetMinLevel(flags.log_level);
  // Asked for TLS but cannot have it: never fall back to plain gRPC.
  const absl::StatusOr<std::optional<ota::crypto::GrpcTlsIdentity>> grpc_tls =
      ota::crypto::LoadGrpcTls(flags.grpc_tls, ota::crypto::TlsUse::kClientAndServer);
  if (!grpc_tls.ok()) Fatal("cannot set up gRPC TLS", grpc_tls.status());
  // Weeks of idling between updates: what a burst of requests or an update allocated goes back.
  ota::TuneAllocatorForDaemon(/*max_arenas=*/4);

  // SIGTERM/SIGINT only write to a pipe; the main thread waits on it and shuts down outside
  // signal context. A handler (not a blocked mask + sigwait) keeps the signal mask that child
  // processes and a re-exec inherit untouched.
  if (!InstallStopSignalHandlers()) {
    std::cerr << "otaclient: cannot install signal handlers\n";
    return 1;
  }

  // A missing or invalid config never stops the daemon (a restart loop would leave the ECU
  // unreachable): as the Python client does, it runs on the defaults. Without a usable ecu_info
  // every Update is refused with the error; an invalid proxy_info is only logged.
  absl::StatusOr<ota::config::EcuInfo> loaded_ecu_info = ota::config::LoadEcuInfo(flags.config_dir);
  const absl::Status ecu_info_error = loaded_ecu_info.status();
  const ota::config::EcuInfo ecu_info =
      loaded_ecu_info.ok() ? *std::move(loaded_ecu_info) : ota::config::EcuInfo{};
  if (!ecu_info_error.ok()) {
    ota::log::Error(
        "ecu_info is unusable: running on the defaults (ecu_id autoware, 127.0.0.1, no "
        "secondaries); every Update is refused until it is fixed and otaclient restarted",
        {{"error", std::string(ecu_info_error.message())}});
  }
  absl::StatusOr<ota::config::ProxyInfo> loaded_proxy_info =
      ota::config::LoadProxyInfo(flags.config_dir);
  if (!loaded_proxy_info.ok()) {
    ota::log::Error(
        "proxy_info is invalid: using the defaults as the Python client does (local otaproxy "
        "on 0.0.0.0:8082, no upper proxy)",
        {{"error", std::string(loaded_proxy_info.status().message())}});
    loaded_proxy_info = ota::config::ProxyInfo{};
  }
  const ota::config::ProxyInfo& proxy_info = *loaded_proxy_info;
  ota::log::SetTag(ecu_info.ecu_id);
  // From here on every log line is also uploaded (never waiting for the server).
  std::unique_ptr<ota::telemetry::LogUploader> uploader =
      StartLogUpload(proxy_info, ecu_info.ecu_id);
  ota::log::ScopedSink upload_sink(uploader.get());

  if (flags.allow_unverified_image) {
    ota::log::Warning(
        "!!! --allow-unverified-image: images signed by ANY key are accepted when no CA chain "
        "verifies. Development only, never on a vehicle !!!",
        {{"certs_dir", flags.certs_dir.string()}});
  }

  // Without a usable boot controller (a backend this build lacks, an undetected platform, an
  // unreadable boot state) the daemon still serves: Status says why, updates are refused.
  // The reason is upstream's: E301 for no backend, E302 for a backend that cannot start.
  std::string cannot_update;
  std::unique_ptr<ota::boot::BootController> boot;
  ota::boot::BootState boot_state;
  if (auto backend = ota::boot::ResolveBootBackend(
          flags.boot_backend, BootloaderForFactory(ecu_info), ota::boot::ProbePlatform());
      !backend.ok()) {
    cannot_update = ota::DescribeOtaFailure(
                        ota::OtaStage::kBootStartup,
                        ota::WithOtaErrorCode(backend.status(),
                                              ota::OtaErrorCode::kBootControlPlatformUnsupported))
                        .reason;
  } else if (auto created = CreateBootController(flags, ecu_info, argv, argc); !created.ok()) {
    cannot_update = ota::DescribeOtaFailure(ota::OtaStage::kBootStartup, created.status()).reason;
  } else {
    // Health-gated commit: a freshly switched-to slot is confirmed only after the check
    // (BootConfirmationEngine below).
    if (flags.health_check.configured()) (*created)->DeferConfirmation();
    if (auto confirmed = (*created)->ConfirmBoot(); !confirmed.ok()) {
      cannot_update =
          ota::DescribeOtaFailure(ota::OtaStage::kBootStartup, confirmed.status()).reason;
    } else {
      boot = *std::move(created);
      boot_state = *std::move(confirmed);
    }
  }
  if (!cannot_update.empty()) {
    ota::log::Error("this ECU cannot update; serving Status, refusing updates",
                    {{"reason", cannot_update}});
  }

  // The tree below this ECU: forwarding, the status poller and the reboot-last wait.
  ota::ecu::EcuTreeOptions tree_options = flags.tree;
  tree_options.self_ecu_id = ecu_info.ecu_id;
  tree_options.children = ecu_info.secondaries;
  ota::ecu::EcuTree tree(tree_options, [credentials = ota::crypto::GrpcChannelCredentials(
                                            *grpc_tls)](const ota::config::SecondaryEcu& child) {
    return ota::ecu::CreateGrpcSecondaryTransportWith(child, credentials);
  });

  ota::update::EngineOptions engine_options;
  // The main ECU reboots last: after its own switch it waits for its direct children.
  // Set while the session waits there: a stop then must not let it go on to reboot.
  std::atomic<bool> waiting_for_secondaries{false};
  // The others in the fleet, for the otaproxy purge below.
  std::vector<std::string> other_ecu_ids;
  for (const std::string& id : ecu_info.available_ecu_ids) {
    if (id != ecu_info.ecu_id) other_ecu_ids.push_back(id);
  }
  engine_options.before_reboot = [&tree, &waiting_for_secondaries, &proxy_info, &other_ecu_ids] {
    waiting_for_secondaries = true;
    tree.WaitForChildren();
    waiting_for_secondaries = false;
    // Everyone finished: empty the local otaproxy's cache if the fleet succeeded
    // (download_proxy.h).
    OtaClientV2::StatusResponse children;
    tree.AppendChildrenStatus(&children);
    ota::service::PurgeLocalOtaProxyAfterFleetUpdate(proxy_info, children, other_ecu_ids);
  };
  // One metrics record per update session, to the log (and so to the upload) at its end.
  const absl::StatusOr<std::string> backend = ota::boot::ResolveBootBackend(
      flags.boot_backend, BootloaderForFactory(ecu_info), ota::boot::ProbePlatform());
  ota::metrics::SessionMetricsRecorder session_metrics(
      {.ecu_id = ecu_info.ecu_id,
       .otaclient_version = std::string(ota::service::OtaClientVersion()),
       .bootloader_type =
           std::string(ota::metrics::UpstreamBootloaderType(backend.ok() ? *backend : "")),
       .enable_local_ota_proxy_cache = proxy_info.enable_local_ota_proxy_cache},
      [&proxy_info] { return ReadLocalOtaProxyCounters(proxy_info); });
  engine_options.on_session_start = [&session_metrics](const ota::update::UpdateRequestParams& r) {
    session_metrics.OnSessionStart(r);
  };
  engine_options.on_session_end = [&session_metrics,
                                   &uploader](const ota::update::SessionEnd& end) {
    session_metrics.OnSessionEnd(end);
    // The reboot ends this process: give the upload a moment to send what is queued.
    if (end.rebooting && uploader != nullptr) uploader->Flush(kLogFlushBeforeReboot);
  };
  engine_options.certs_dir = flags.certs_dir;
  engine_options.allow_unverified_dev = flags.allow_unverified_image;
  engine_options.ecu_id = ecu_info.ecu_id;  // OTA image v1 payload choice
  engine_options.release_key = flags.release_key;
  engine_options.fetcher.ca_bundle = flags.ca_bundle;
  engine_options.fetcher.max_parallel = flags.download_parallel;
  engine_options.fetcher.max_download_rate = flags.max_download_rate;
  engine_options.reboot_after_update = !flags.no_reboot;
  engine_options.worker_nice = flags.update_nice;
  engine_options.standby_mode = flags.standby_mode;
  // TEST ONLY (crash-safety tests): OTA_TEST_KILL_AT_STEP=<step> makes the process SIGKILL
  // itself at that named step of writing the standby (EngineOptions::test_step_hook).
  if (const char* kill_at = std::getenv("OTA_TEST_KILL_AT_STEP"); kill_at != nullptr) {
    engine_options.test_step_hook = [step = std::string(kill_at)](std::string_view at) {
      if (at == step) {
        ota::log::Warning("OTA_TEST_KILL_AT_STEP: killing this process", {{"step", step}});
        ::kill(::getpid(), SIGKILL);
      }
    };
  }
  // The proxy is chosen per update, so an otaproxy started after us is used (see
  // download_proxy.h: a local proxy that is enabled but not listening falls back to
  // upper_ota_proxy, else direct).
  const ota::config::ProxyInfo proxy = proxy_info;
  auto fetcher_factory = [proxy](const ota::http::FetcherConfig& config) {
    ota::http::FetcherConfig with_proxy = config;
    const ota::service::DownloadProxyChoice choice =
        ota::service::ChooseDownloadProxy(proxy, [](const std::string& host, int port) {
          return ota::service::TcpPortAccepts(host, port, std::chrono::milliseconds(300));
        });
    with_proxy.proxy = choice.proxy;
    // Cache hints only make sense for an otaproxy.
    with_proxy.send_cache_control = !choice.proxy.empty();
    ota::log::Info(
        "download proxy chosen",
        {{"proxy", choice.proxy.empty() ? "direct" : choice.proxy}, {"reason", choice.reason}});
    return ota::http::CreateCurlFetcher(with_proxy);
  };
  const ota::update::FetcherFactory client_fetcher_factory = fetcher_factory;
  engine_options.install_hooks_dir = flags.install_hooks_dir.value_or(flags.config_dir / "hooks");
  engine_options.install_hook_timeout = flags.install_hook_timeout;
  std::unique_ptr<ota::update::UpdateEngine> engine;
  ota::update::BootConfirmationEngine* confirming = nullptr;  // health check of a new slot
  if (boot == nullptr) {
    engine = ota::update::CreateUnavailableUpdateEngine(cannot_update);
  } else if (boot_state.confirmation_pending) {
    auto gated = std::make_unique<ota::update::BootConfirmationEngine>(
        std::move(boot), boot_state, flags.health_check, !flags.no_reboot,
        [engine_options, fetcher_factory](std::unique_ptr<ota::boot::BootController> confirmed,
                                          const ota::boot::BootState& state) {
          return ota::update::CreateUpdateEngine(engine_options, std::move(confirmed), state,
                                                 fetcher_factory);
        });
    confirming = gated.get();
    engine = std::move(gated);
  } else {
    engine = ota::update::CreateUpdateEngine(engine_options, std::move(boot), boot_state,
                                             std::move(fetcher_factory));
  }
  // The deployed client's "ongoing OTA" line: the progress every 60 s while an update runs.
  std::optional<ota::metrics::ProgressLogger> progress_log;
  progress_log.emplace([&engine] { return engine->Snapshot(); }, kProgressLogInterval);

  ota::service::ServiceConfig service_config;
  service_config.ecu_id = ecu_info.ecu_id;
  service_config.available_ecu_ids = ecu_info.available_ecu_ids;
  for (const auto& secondary : ecu_info.secondaries) {
    service_config.secondary_ecu_ids.push_back(secondary.ecu_id);
  }
  service_config.otaclient_version = std::string(ota::service::OtaClientVersion());
  service_config.ecu_info_error = ecu_info_error;
  tree.Start([&engine] {
    const ota::update::OtaStatus status = engine->Snapshot().status;
    return status == ota::update::OtaStatus::kUpdating ||
           status == ota::update::OtaStatus::kAborting ||
           status == ota::update::OtaStatus::kRollbacking;
  });
  // ClientUpdate: verified and staged on the updater's thread, handed over on the main thread.
  ota::update::ClientUpdateOptions client_update_options;
  client_update_options.certs_dir = flags.certs_dir;
  client_update_options.allow_unverified_dev = flags.allow_unverified_image;
  client_update_options.ecu_id = ecu_info.ecu_id;
  client_update_options.release_key = flags.release_key;
  client_update_options.fetcher = engine_options.fetcher;
  client_update_options.staging_dir = flags.client_staging_dir;
  client_update_options.running_version = std::string(ota::service::OtaClientVersion());
  std::mutex staged_mu;
  std::optional<ota::update::StagedClient> staged_client;
  ota::update::ClientUpdater client_updater(
      [&client_update_options, &client_fetcher_factory](
          const ota::update::UpdateRequestParams& request, const ota::http::CancelFlag& cancel) {
        return ota::update::PrepareClientUpdate(request, client_update_options,
                                                client_fetcher_factory, cancel);
      },
      [&staged_mu, &staged_client](const ota::update::StagedClient& staged) {
        {
          const std::lock_guard<std::mutex> lock(staged_mu);
          staged_client = staged;
        }
        WakeForHandOver();
      },
      flags.dynamic_client);
  ota::service::OtaClientServiceImpl service(*engine, service_config, &tree, &client_updater);

  ota::service::ServerOptions server_options;
  server_options.listen_address = ecu_info.ip_addr;
  server_options.port = flags.listen_port;
  server_options.credentials = ota::crypto::GrpcServerCredentials(*grpc_tls);
  // The port is shared only with the client a ClientUpdate starts (port_handover.h): this
  // process holds the listen lock (taken before listening on a fixed port; for port 0, on the
  // port the kernel chose), the new client inherits it.
  server_options.share_port = true;
  std::optional<ota::service::PortLock> port_lock;
  const bool taking_over = flags.listen_lock_fd >= 0;
  if (taking_over) {
    if (flags.listen_port == 0) UsageError("--listen-lock-fd needs a --listen-port");
    auto adopted = ota::service::PortLock::Adopt(
        flags.listen_lock_fd, ota::service::JoinHostPort(ecu_info.ip_addr, flags.listen_port));
    if (!adopted.ok()) Fatal("cannot take over the listen address", adopted.status());
    port_lock = std::move(*adopted);
  } else if (flags.listen_port != 0) {
    auto acquired = ota::service::PortLock::Acquire(
        ota::service::JoinHostPort(ecu_info.ip_addr, flags.listen_port));
    if (!acquired.ok()) Fatal("cannot listen", acquired.status());
    port_lock = std::move(*acquired);
  }
  auto server = ota::service::StartServer(service, server_options);
  if (!server.ok()) Fatal("cannot start the gRPC server", server.status());
  if (!port_lock.has_value()) {
    auto acquired = ota::service::PortLock::Acquire(server->address);
    if (!acquired.ok()) Fatal("cannot listen", acquired.status());
    port_lock = std::move(*acquired);
  }
  // A client this one starts for a ClientUpdate gets the new connections as soon as it listens.
  if (absl::Status steered = ota::service::SteerNewConnectionsToSuccessor(server->port);
      !steered.ok()) {
    Fatal("cannot prepare the listen port for a client update", steered);
  }
  // The bound port for whoever started us (--listen-port 0): a file that appears only complete.
  if (!flags.port_file.empty()) {
    const absl::Status written =
        ota::fs::WriteFileAtomic(flags.port_file, ota::StrCat(server->port, "\n"));
    if (!written.ok()) {
      server->server->Shutdown(std::chrono::system_clock::now());
      Fatal(ota::StrCat("cannot write the port file ", flags.port_file.string()), written);
    }
  }

  // Whoever started us (the client that handed over to us) learns that we listen.
  // Only a pipe: never write into (and close) whatever else that fd number may be.
  struct stat ready_stat {};
  if (flags.ready_fd >= 0 &&
      (::fstat(flags.ready_fd, &ready_stat) != 0 || !S_ISFIFO(ready_stat.st_mode))) {
    ota::log::Warning("--ready-fd is not a pipe: not used", {{"fd", ota::StrCat(flags.ready_fd)}});
  } else if (flags.ready_fd >= 0) {
    const std::string port_line = ota::StrCat(server->port, "\n");
    [[maybe_unused]] const absl::Status told =
        ota::fs::WriteAll(flags.ready_fd, port_line.data(), port_line.size(), "the ready fd");
    ::close(flags.ready_fd);
  }

  ota::log::Info(
      "otaclient started",
      {{"ecu_id", ecu_info.ecu_id},
       {"otaclient_version", ota::service::OtaClientVersion()},
       {"listen", server->address},
       {"port", std::to_string(server->port)},
       {"grpc_tls", grpc_tls->has_value() ? "mutual" : "off"},
       {"dynamic_client", flags.dynamic_client ? "yes" : "no"},
       {"active_slot", boot_state.active_slot},
       {"firmware_version", boot_state.version},
       {"secondaries", std::to_string(ecu_info.secondaries.size())},
       {"status", cannot_update.empty() ? OtaStatusName(boot_state.status) : "FAILURE"},
       {"failure_reason", cannot_update.empty() ? boot_state.failure_reason : cannot_update},
       {"ecu_info", ecu_info.source.empty() ? "defaults" : ecu_info.source.string()},
       {"proxy_info", proxy_info.source.empty() ? "defaults" : proxy_info.source.string()}});

  // Status answers from here on: the health check of a new slot may ask otaclient itself.
  if (confirming != nullptr) confirming->Start();

  // Serve until stopped. A staged ClientUpdate hands over here: this process stops serving,
  // starts the new client as its child and stays only as its supervisor; when the new client
  // does not come up, this one serves again (client_handover.h); when it ends later, this one
  // restarts in place.
  server_options.port = server->port;
  const std::vector<std::string> own_argv(argv, argv + argc);
  int signal_number = 0;
  bool serving = true;
  auto stop_serving = [&server, &serving] {
    server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
    server->server->Wait();
    server->server.reset();  // the listening socket is closed: the port is free
    serving = false;
  };
  auto serve_again = [&] {
    auto restarted = ota::service::StartServer(service, server_options);
    if (!restarted.ok()) Fatal("cannot start the gRPC server again", restarted.status());
    if (absl::Status steered = ota::service::SteerNewConnectionsToSuccessor(restarted->port);
        !steered.ok()) {
      Fatal("cannot prepare the listen port for a client update", steered);
    }
    server = std::move(restarted);
    serving = true;
    ota::log::Info("otaclient serves again",
                   {{"listen", server->address}, {"version", ota::service::OtaClientVersion()}});
  };
  const ota::service::WakeSource wake{g_stop_pipe_read, WaitForStopSignal};
  while (signal_number == 0) {
    const int woken = WaitForStopSignal();
    if (woken != kHandOverWake) {
      signal_number = woken;
      break;
    }
    std::optional<ota::update::StagedClient> staged;
    {
      const std::lock_guard<std::mutex> lock(staged_mu);
      staged.swap(staged_client);
    }
    if (!staged.has_value()) continue;
    ota::log::Info("client update: starting the new otaclient beside this one",
                   {{"version", staged->version}});
    ota::service::HandOverOptions hand_over;
    hand_over.argv =
        ota::service::NewClientArgv(own_argv, staged->binary.string(), server_options.port);
    hand_over.status_target = ota::service::JoinHostPort(ecu_info.ip_addr, server_options.port);
    hand_over.credentials = ota::crypto::GrpcChannelCredentials(*grpc_tls);
    hand_over.ecu_id = ecu_info.ecu_id;
    hand_over.expected_version = staged->version;
    hand_over.ready_timeout = flags.client_update_timeout;
    hand_over.lock_fd = port_lock->fd();
    const ota::service::HandOverEnd end = ota::service::HandOverToNewClient(
        hand_over, wake, [&client_updater, &stop_serving](const absl::Status& taken) {
          // The new client serves (new connections already go to it): this server stops, its
          // calls in flight finish first. Else this one simply serves on.
          if (taken.ok()) stop_serving();
          client_updater.HandOverDone(taken);
        });
    switch (end.kind) {
      case ota::service::HandOverEnd::Kind::kNotTakenOver:
        break;  // still serving
      case ota::service::HandOverEnd::Kind::kStopRequested:
        signal_number = end.signal_number;
        break;
      case ota::service::HandOverEnd::Kind::kClientEnded: {
        // As upstream (systemd then restarts the installed client): this one starts afresh, so
        // that it reads the boot state the new client may have changed (an update committed).
        ota::log::Warning("the new otaclient ended; this one restarts and takes over again",
                          {{"ended", end.ended}});
        if (uploader != nullptr) uploader->Flush(kLogFlushBeforeReboot);
        const absl::Status restarted =
            ota::service::ExecSelf(ota::service::RestartArgv(own_argv, server_options.port));
        ota::log::Error("cannot restart otaclient; serving on as it is",
                        {{"error", std::string(restarted.message())}});
        serve_again();
        break;
      }
    }
  }
  ota::log::Info("stopping", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});
  // First of all: no reboot from now on, wherever the session is (waiting for secondaries,
  // purging the otaproxy cache, about to call Reboot()), and a running update is cancelled.
  engine->RequestStop();
  // In-flight RPCs get a moment to finish; the engine's destructor then cancels a running
  // update (its standby stays unbootable, the active slot untouched).
  if (serving) stop_serving();
  if (!flags.port_file.empty()) ::unlink(flags.port_file.c_str());  // no longer listening
  if (confirming != nullptr && confirming->checking()) {
    // Nothing was decided or written: the next start runs the health check again. Its command
    // may run for a long while; its process group dies with the service's cgroup.
    ota::log::Info("stopped during the health check of the new slot; it runs again next start");
    if (uploader != nullptr) uploader->Stop(kLogDrainAtStop);
    std::_Exit(0);
  }
  if (waiting_for_secondaries) {
    // The switch is committed and durable; nothing is being written. Releasing the wait would
    // make the session reboot (the engine never interrupts after the commit), so stop here: the
    // new slot boots on the next start.
    ota::log::Info("stopped while waiting for secondaries; the committed slot boots next time");
    if (uploader != nullptr) uploader->Stop(kLogDrainAtStop);
    std::_Exit(0);
  }
  tree.Stop();
  progress_log.reset();  // it reads the engine
  engine.reset();
  ota::log::Info("stopped");
  if (uploader != nullptr) uploader->Stop(kLogDrainAtStop);
  return 0;
}
