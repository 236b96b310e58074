// otaproxy: the caching HTTP forward proxy of a vehicle's ECUs. Flags, proxy_info.yaml, wiring
// of cache store, upstream client and server, and a graceful stop on SIGTERM/SIGINT.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/proxy_info.h"
#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaproxy/cache/cache_store.h"
#include "otaproxy/external/external_cache.h"
#include "otaproxy/external/usb_cache_mount.h"
#include "otaproxy/server/proxy_server.h"
#include "otaproxy/upstream/upstream_client.h"

namespace {

constexpr char kUsage[] = R"(Usage: otaproxy [options]
       otaproxy --purge [--cache-dir DIR]
       otaproxy --external-cache-helper mount|unmount [--config-dir DIR] [USB cache options]

HTTP forward proxy with a shared disk cache for OTA downloads (GET, absolute-form URLs).
Listens on proxy_info.yaml's local_ota_proxy_listen_addr:local_ota_proxy_listen_port. With an
upper_ota_proxy (a child ECU) it relays everything there over http, passing
Ota-File-Cache-Control on, and caches nothing. Without one (the gateway) it fetches with https
(unless proxy_info.yaml says `gateway: false`: plain http, for test servers) and caches when
enable_local_ota_proxy_cache is true (the default); a cache that cannot be opened is logged and
otaproxy relays. Where it caches it also reads the external caches: a USB storage labelled
ota_cache_src mounted at the external cache mount point, and proxy_info.yaml's
external_nfs_cache_mnt_point when that is a mount point (see otaproxy/README.md).

  --config-dir DIR          proxy_info.yaml, else .yml (default /boot/ota; absent or invalid = defaults)
  --listen-addr ADDR        overrides local_ota_proxy_listen_addr
  --listen-port N           overrides local_ota_proxy_listen_port (0 = any free port)
  --port-file FILE          once listening, write the port to FILE ("<port>\n", atomically);
                            removed again when otaproxy stops
  --upper-proxy URL         overrides upper_ota_proxy ("" = none)
  --no-cache                relay only (overrides enable_local_ota_proxy_cache)
  --cache-dir DIR           cache location (default /ota-cache)
  --init-cache              empty the cache at start (e.g. after a successful fleet update)
  --no-external-cache       do not use the USB cache (also: environment
                            OTACLIENT_OTAPROXY_ENABLE_EXTERNAL_CACHE=false)
  --external-cache-mount-point DIR   where the USB cache is mounted (default
                            $OTACLIENT_EXTERNAL_CACHE_DEV_MOUNTPOINT, else
                            /run/otaclient/mnt/external_cache)
  --mount-external-cache    find the USB cache (blkid, label ota_cache_src) and mount it
                            read-only at the mount point while otaproxy runs (needs root)
  --external-cache-helper mount|unmount
                            for the systemd unit's root ExecStartPre=+/ExecStopPost=+: mount
                            the USB cache for the service (when caching is on) and exit,
                            leaving it mounted; or unmount it and exit. Never fails (exit 0)
                            except on bad arguments
  --force                   run even when proxy_info.yaml says enable_local_ota_proxy: false
                            (otherwise otaproxy exits 0 at once: nothing to serve)
  --purge                   empty the cache and exit (refused while an otaproxy uses it; a
                            running one is purged with: curl -X POST http://127.0.0.1:PORT/_otaproxy/purge)
  --cache-soft-limit SIZE   above this many cached bytes evict least recently used entries
                            (K/M/G suffixes; default 0 = no byte limit)
  --cache-hard-limit SIZE   never cache beyond this many bytes (default 0 = no byte limit)
  --disk-soft-percent N     evict while the cache's file system is N% full or more (default 75)
  --disk-hard-percent N     stop caching while it is N% full or more; still proxy (default 80)
  --ca-bundle PEM           CA bundle for HTTPS upstream (default: system store)
  --max-inflight N          requests handled at once; more get 429 (default 1024)
  --max-connections N       open client connections; more get 503 (default 4096)
  --header-limit BYTES      request line + headers; more get 431 (default 16384)
  --idle-timeout S          close a keep-alive connection idle this long (default 60)
  --send-timeout S          close a connection whose client stopped reading (default 60)
  --upstream-connect-timeout S   (default 10)
  --upstream-stall-timeout S     abort an upstream transfer without a byte for S (default 30)
  --flight-workers N        cache-filling downloads at once; more wait their turn (default 32)
  --io-threads N            threads serving client connections, however many there are
                            (default 0 = one per core)
  --log-level LEVEL         debug, info, warning or error (default info)
  -h, --help                this text
)";

struct Flags {
  std::filesystem::path config_dir = "/boot/ota";
  std::optional<std::string> listen_addr;
  std::optional<int> listen_port;
  std::filesystem::path port_file;
  std::optional<std::string> upper_proxy;
  bool no_cache = false;
  std::filesystem::path cache_dir = "/ota-cache";
  bool init_cache = false;
  bool no_external_cache = false;
  std::optional<std::filesystem::path> external_cache_mount_point;
  bool mount_external_cache = false;
  std::string external_cache_helper;  // "", "mount", "unmount"
  bool purge = false;
  bool force = false;
  ota::proxy::CacheLimits limits;
  std::string ca_bundle;
  ota::proxy::ServerOptions server;
  int connect_timeout_s = 10;
  int stall_timeout_s = 30;
  ota::log::Level log_level = ota::log::Level::kInfo;
};

[[noreturn]] void UsageError(const std::string& message) {
  std::cerr << "otaproxy: " << message << "\n(see otaproxy --help)\n";
  std::_Exit(2);
}

[[noreturn]] void Fatal(std::string_view what, const absl::Status& status) {
  ota::log::Error(what, {{"error", std::string(status.message())}});
  std::_Exit(1);  // threads may be running: no static destructors under them
}

int64_t ParseInt(const std::string& name, const std::string& text, int64_t min, int64_t max) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    UsageError(
        ota::StrCat(name, " expects an integer in [", min, ", ", max, "], got \"", text, "\""));
  }
  return value;
}

// "123", "64K", "10M", "2G" (binary units).
uint64_t ParseSize(const std::string& name, const std::string& text) {
  std::optional<uint64_t> value = ota::ParseByteSize(text);
  if (!value || *value > (uint64_t{1} << 50)) {
    UsageError(ota::StrCat(name, " expects a byte count (K, M, G suffixes) up to 2^50, got \"",
                           text, "\""));
  }
  return *value;
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
    if (name == "-h" || name == "--help") {
      std::cout << kUsage << std::flush;
      std::_Exit(0);
    } else if (name == "--config-dir") {
      flags.config_dir = value();
    } else if (name == "--listen-addr") {
      flags.listen_addr = value();
    } else if (name == "--listen-port") {
      flags.listen_port = static_cast<int>(ParseInt(name, value(), 0, 65535));
    } else if (name == "--port-file") {
      flags.port_file = value();
      if (flags.port_file.empty()) UsageError("--port-file needs a path");
    } else if (name == "--upper-proxy") {
      flags.upper_proxy = value();
    } else if (name == "--no-cache") {
      flags.no_cache = true;
    } else if (name == "--cache-dir") {
      flags.cache_dir = value();
    } else if (name == "--init-cache") {
      flags.init_cache = true;
    } else if (name == "--no-external-cache") {
      flags.no_external_cache = true;
    } else if (name == "--external-cache-mount-point") {
      const std::string path = value();
      if (path.empty()) UsageError("--external-cache-mount-point needs a path");
      flags.external_cache_mount_point = path;
    } else if (name == "--mount-external-cache") {
      flags.mount_external_cache = true;
    } else if (name == "--external-cache-helper") {
      flags.external_cache_helper = value();
      if (flags.external_cache_helper != "mount" && flags.external_cache_helper != "unmount") {
        UsageError("--external-cache-helper expects mount or unmount");
      }
    } else if (name == "--force") {
      flags.force = true;
    } else if (name == "--purge") {
      flags.purge = true;
    } else if (name == "--cache-soft-limit") {
      flags.limits.soft_limit_bytes = ParseSize(name, value());
    } else if (name == "--cache-hard-limit") {
      flags.limits.hard_limit_bytes = ParseSize(name, value());
    } else if (name == "--disk-soft-percent") {
      flags.limits.soft_percent = static_cast<int>(ParseInt(name, value(), 1, 100));
    } else if (name == "--disk-hard-percent") {
      flags.limits.hard_percent = static_cast<int>(ParseInt(name, value(), 1, 100));
    } else if (name == "--ca-bundle") {
      flags.ca_bundle = value();
    } else if (name == "--max-inflight") {
      flags.server.max_inflight_requests = static_cast<size_t>(ParseInt(name, value(), 1, 1 << 20));
    } else if (name == "--max-connections") {
      flags.server.max_connections = static_cast<size_t>(ParseInt(name, value(), 1, 1 << 20));
    } else if (name == "--header-limit") {
      flags.server.header_limit = static_cast<size_t>(ParseInt(name, value(), 256, 1 << 20));
    } else if (name == "--idle-timeout") {
      flags.server.idle_timeout_s = static_cast<int>(ParseInt(name, value(), 1, 86400));
    } else if (name == "--send-timeout") {
      flags.server.send_timeout_s = static_cast<int>(ParseInt(name, value(), 1, 86400));
    } else if (name == "--upstream-connect-timeout") {
      flags.connect_timeout_s = static_cast<int>(ParseInt(name, value(), 1, 3600));
    } else if (name == "--upstream-stall-timeout") {
      flags.stall_timeout_s = static_cast<int>(ParseInt(name, value(), 1, 3600));
    } else if (name == "--flight-workers") {
      flags.server.flight_workers = static_cast<size_t>(ParseInt(name, value(), 1, 4096));
    } else if (name == "--io-threads") {
      flags.server.io_threads = static_cast<size_t>(ParseInt(name, value(), 0, 256));
    } else if (name == "--log-level") {
      if (!ota::log::ParseLevel(value(), &flags.log_level)) {
        UsageError("--log-level expects debug, info, warning or error");
      }
    } else {
      UsageError(ota::StrCat("unknown argument \"", args[i], "\""));
    }
  }
  if (flags.limits.soft_percent > flags.limits.hard_percent) {
    UsageError("--disk-soft-percent must not exceed --disk-hard-percent");
  }
  if (flags.limits.hard_limit_bytes != 0 &&
      flags.limits.soft_limit_bytes > flags.limits.hard_limit_bytes) {
    UsageError("--cache-soft-limit must not exceed --cache-hard-limit");
  }
  if (!flags.external_cache_helper.empty() && (flags.purge || flags.mount_external_cache)) {
    UsageError("--external-cache-helper does not go with --purge or --mount-external-cache");
  }
  return flags;
}

// What this ECU's otaproxy does, by today's Python otaproxy's rules.
struct Plan {
  std::string upper;  // the upper otaproxy ("" = none: this is the gateway)
  // Cache locally and read the external caches: `enable_cache = enable_local_ota_proxy_cache
  // and upper_ota_proxy is None` (a child ECU relays to its parent, which caches).
  bool cache = false;
  // Fetch with https: the gateway does (upstream: `enable_https = gateway`, which is "no upper
  // proxy"). Ours keeps one way out: a file that says `gateway: false` and names no upper proxy
  // (the deprecated key; test servers speak plain http).
  bool https = false;
};

// proxy_info as the Python otaproxy reads it: a file that is missing or invalid means the
// defaults (local otaproxy on 0.0.0.0:8082, caching, no upper proxy), with the error logged.
// otaclient falls back the same way and then downloads through this proxy, so exiting here would
// leave the ECU unable to update.
ota::config::ProxyInfo LoadProxyInfoOrDefaults(const Flags& flags) {
  absl::StatusOr<ota::config::ProxyInfo> info = ota::config::LoadProxyInfo(flags.config_dir);
  if (info.ok()) return *std::move(info);
  ota::log::Error(
      "proxy_info is invalid: using the defaults as the Python otaproxy does (local otaproxy "
      "on 0.0.0.0:8082, caching, no upper proxy)",
      {{"error", std::string(info.status().message())}});
  return ota::config::ProxyInfo{};
}

Plan PlanFor(const Flags& flags, const ota::config::ProxyInfo& info) {
  Plan plan;
  plan.upper = flags.upper_proxy.value_or(info.upper_ota_proxy);
  plan.cache = info.enable_local_ota_proxy_cache && plan.upper.empty() && !flags.no_cache;
  const bool gateway_key_false = !info.gateway && info.upper_ota_proxy.empty();
  plan.https = plan.upper.empty() && !gateway_key_false;
  return plan;
}

std::filesystem::path ExternalMountPoint(const Flags& flags) {
  if (flags.external_cache_mount_point) return *flags.external_cache_mount_point;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts
  const char* env = std::getenv(std::string(ota::proxy::kExternalCacheMountPointEnv).c_str());
  if (env != nullptr && *env != '\0') return env;
  return std::string(ota::proxy::kDefaultExternalCacheMountPoint);
}

bool UsbCacheEnabled(const Flags& flags) {
  if (flags.no_external_cache) return false;
  std::string warning;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts
  const char* env = std::getenv(std::string(ota::proxy::kExternalCacheEnableEnv).c_str());
  const bool enabled = ota::proxy::ExternalCacheEnabledByEnv(env, &warning);
  if (!warning.empty()) ota::log::Warning(warning);
  return enabled;
}

// Finds the USB cache and mounts it; nullopt when no device carries the label, or when
// something is mounted at the mount point already (then that is used as it is).
absl::StatusOr<std::optional<ota::proxy::UsbCacheMount>> MountUsbCacheIfPresent(
    const std::filesystem::path& mount_point) {
  OTA_ASSIGN_OR_RETURN(bool mounted, ota::proxy::IsMountPoint(mount_point));
  if (mounted) {
    ota::log::Info("the USB cache mount point is mounted already: using it as it is",
                   {{"mount_point", mount_point.string()}});
    return std::nullopt;
  }
  OTA_ASSIGN_OR_RETURN(std::optional<std::string> device, ota::proxy::FindUsbCacheDevice());
  if (!device.has_value()) {
    ota::log::Info("no USB cache: no block device labelled ota_cache_src");
    return std::nullopt;
  }
  OTA_ASSIGN_OR_RETURN(ota::proxy::UsbCacheMount mount,
                       ota::proxy::MountUsbCache(*device, mount_point));
  return std::optional<ota::proxy::UsbCacheMount>(std::move(mount));
}

// --external-cache-helper: the unit's root helper. Never fails: otaproxy runs without a USB
// cache rather than not at all.
int RunExternalCacheHelper(const Flags& flags) {
  const std::filesystem::path mount_point = ExternalMountPoint(flags);
  if (flags.external_cache_helper == "unmount") {
    if (absl::Status status = ota::proxy::UnmountUsbCache(mount_point); !status.ok()) {
      ota::log::Warning("cannot unmount the USB cache", {{"mount_point", mount_point.string()},
                                                         {"error", std::string(status.message())}});
    }
    return 0;
  }
  const ota::config::ProxyInfo info = LoadProxyInfoOrDefaults(flags);
  if (!info.enable_local_ota_proxy && !flags.force) {
    ota::log::Info("USB cache not mounted: enable_local_ota_proxy is false");
    return 0;
  }
  if (!PlanFor(flags, info).cache) {
    ota::log::Info(
        "USB cache not mounted: this otaproxy does not cache (child ECU, or "
        "enable_local_ota_proxy_cache false)");
    return 0;
  }
  if (!UsbCacheEnabled(flags)) {
    ota::log::Info("USB cache not mounted: switched off");
    return 0;
  }
  absl::StatusOr<std::optional<ota::proxy::UsbCacheMount>> mounted =
      MountUsbCacheIfPresent(mount_point);
  if (!mounted.ok()) {
    ota::log::Warning("cannot mount the USB cache: otaproxy runs without it",
                      {{"mount_point", mount_point.string()},
                       {"error", std::string(mounted.status().message())}});
  } else if (std::optional<ota::proxy::UsbCacheMount>& mount = *mounted; mount.has_value()) {
    mount->Release();  // for the service, unmounted by `--external-cache-helper unmount`
  }
  return 0;
}

// The external caches for a caching otaproxy: the USB cache when mounted at the mount point
// (mounted here first with --mount-external-cache; `usb_mount` then owns it), the NFS cache
// when external_nfs_cache_mnt_point is a mount point. Problems are logged; never fatal.
void OpenExternalCaches(const Flags& flags, const ota::config::ProxyInfo& info,
                        ota::proxy::ServerOptions& server,
                        std::optional<ota::proxy::UsbCacheMount>& usb_mount) {
  if (UsbCacheEnabled(flags)) {
    const std::filesystem::path mount_point = ExternalMountPoint(flags);
    if (flags.mount_external_cache) {
      absl::StatusOr<std::optional<ota::proxy::UsbCacheMount>> mounted =
          MountUsbCacheIfPresent(mount_point);
      if (mounted.ok()) {
        usb_mount = *std::move(mounted);
      } else {
        ota::log::Warning("cannot mount the USB cache: going on without it",
                          {{"mount_point", mount_point.string()},
                           {"error", std::string(mounted.status().message())}});
      }
    }
    absl::StatusOr<bool> is_mount = ota::proxy::IsMountPoint(mount_point);
    if (!is_mount.ok()) {
      ota::log::Warning("USB cache not used: cannot read the mount table",
                        {{"error", std::string(is_mount.status().message())}});
    } else if (!*is_mount) {
      ota::log::Info("no USB cache mounted", {{"mount_point", mount_point.string()}});
    } else if (auto cache = ota::proxy::ExternalCache::Open("usb", mount_point); cache.ok()) {
      server.usb_cache = *std::move(cache);
      ota::log::Info("USB cache in use (read-only)", {{"mount_point", mount_point.string()}});
    } else {
      ota::log::Warning("USB cache mounted but not usable: going on without it",
                        {{"error", std::string(cache.status().message())}});
    }
  }
  if (info.external_nfs_cache_mnt_point.has_value()) {
    const std::filesystem::path nfs = *info.external_nfs_cache_mnt_point;
    absl::StatusOr<bool> is_mount = ota::proxy::IsMountPoint(nfs);
    if (!is_mount.ok() || !*is_mount) {
      ota::log::Warning(
          "external_nfs_cache_mnt_point is not a mount point: NFS cache ignored",
          {{"path", nfs.string()},
           {"reason", is_mount.ok() ? "not mounted" : std::string(is_mount.status().message())}});
    } else if (auto cache = ota::proxy::ExternalCache::Open("nfs", nfs); cache.ok()) {
      server.nfs_cache = *std::move(cache);
      ota::log::Info("NFS cache in use (read-only)", {{"path", nfs.string()}});
    } else {
      ota::log::Warning("NFS cache ignored", {{"error", std::string(cache.status().message())}});
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  // A few threads allocate (I/O loops, the upstream thread, the index writer): glibc's default
  // of 8 arenas per core would mostly hold free memory; two keep the resident set small.
  mallopt(M_ARENA_MAX, 2);  // NOLINT(concurrency-mt-unsafe): before any thread starts
  ota::log::SetMinLevel(flags.log_level);
  ota::log::SetTag("otaproxy");

  if (!flags.external_cache_helper.empty()) return RunExternalCacheHelper(flags);

  if (flags.purge) {
    auto store =
        ota::proxy::CacheStore::Open(flags.cache_dir, {.soft_percent = 100, .hard_percent = 100});
    if (!store.ok()) Fatal("cannot purge the cache", store.status());
    const size_t purged = (*store)->Purge();
    std::cout << "purged " << purged << " entries from " << flags.cache_dir.string() << "\n";
    return 0;
  }

  const ota::config::ProxyInfo info = LoadProxyInfoOrDefaults(flags);
  if (!info.enable_local_ota_proxy && !flags.force) {
    ota::log::Info("enable_local_ota_proxy is false in proxy_info: not starting",
                   {{"proxy_info", info.source.string()}});
    return 0;
  }
  const Plan plan = PlanFor(flags, info);
  if (!plan.upper.empty() && info.enable_local_ota_proxy_cache && !flags.no_cache) {
    ota::log::Info("child ECU: relaying to the upper otaproxy, which caches; no cache here",
                   {{"upper_ota_proxy", plan.upper}});
  }

  ota::proxy::ServerOptions server = flags.server;
  server.listen_addr = flags.listen_addr.value_or(info.local_ota_proxy_listen_addr);
  server.listen_port =
      static_cast<uint16_t>(flags.listen_port.value_or(info.local_ota_proxy_listen_port));
  // The gateway ECU talks TLS to the server; behind an upper otaproxy the upper one does, and
  // gets the client's Ota-File-Cache-Control.
  server.upstream_https = plan.https;
  server.forward_cache_control = !plan.upper.empty();

  ota::proxy::UpstreamConfig upstream;
  upstream.proxy = plan.upper;
  upstream.ca_bundle = flags.ca_bundle;
  upstream.connect_timeout_s = flags.connect_timeout_s;
  upstream.low_speed_timeout_s = flags.stall_timeout_s;

  // A client that goes away must never kill the proxy: no write of ours delivers SIGPIPE
  // (otaproxy/server/client_socket.h), and the process ignores it for any library that might.
  signal(SIGPIPE, SIG_IGN);
  // Stop signals are taken by sigwait below, so block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<ota::proxy::CacheStore> store;
  std::optional<ota::proxy::UsbCacheMount> usb_mount;  // with --mount-external-cache
  if (plan.cache) {
    auto opened = ota::proxy::CacheStore::Open(flags.cache_dir, flags.limits);
    if (opened.ok()) {
      store = *std::move(opened);
      if (flags.init_cache) {
        ota::log::Info("cache emptied (--init-cache)",
                       {{"entries", std::to_string(store->Purge())}});
      }
    } else {
      // Today's otaproxy keeps running too (an in-memory index when only its database fails);
      // ours relays without caching: nothing is written to a directory that misbehaves.
      server.cache_error = ota::StrCat(flags.cache_dir.string(), ": ", opened.status().message());
      ota::log::Error("cannot open the cache: relaying without caching",
                      {{"cache_dir", flags.cache_dir.string()},
                       {"error", std::string(opened.status().message())}});
    }
    OpenExternalCaches(flags, info, server, usb_mount);
  }
  // Our own references to the external caches go, so only the server holds their directories
  // open: the USB cache can be unmounted once the server is gone.
  auto proxy = ota::proxy::ProxyServer::Start(server, std::move(store), upstream);
  server.usb_cache.reset();
  server.nfs_cache.reset();
  if (!proxy.ok()) {
    usb_mount.reset();  // Fatal skips destructors
    Fatal("cannot start otaproxy", proxy.status());
  }

  // The bound port for whoever started us (--listen-port 0): a file that appears only complete.
  if (!flags.port_file.empty()) {
    const absl::Status written =
        ota::fs::WriteFileAtomic(flags.port_file, ota::StrCat((*proxy)->port(), "\n"));
    if (!written.ok()) {
      (*proxy)->Stop();
      proxy->reset();
      usb_mount.reset();  // Fatal skips destructors
      Fatal(ota::StrCat("cannot write the port file ", flags.port_file.string()), written);
    }
  }
  ota::log::Info("otaproxy ready",
                 {{"proxy_info", info.source.empty() ? "defaults" : info.source.string()},
                  {"port", std::to_string((*proxy)->port())}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  ota::log::Info("stopping", {{"signal", std::to_string(signal_number)}});
  (*proxy)->Stop();
  if (!flags.port_file.empty()) ::unlink(flags.port_file.c_str());  // no longer listening
  proxy->reset();     // closes the external caches' directories
  usb_mount.reset();  // then the USB cache can be unmounted
  return 0;
}
