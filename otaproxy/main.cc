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
#include "common/util/strings.h"
#include "otaproxy/cache/cache_store.h"
#include "otaproxy/server/proxy_server.h"
#include "otaproxy/upstream/upstream_client.h"

namespace {

constexpr char kUsage[] = R"(Usage: otaproxy [options]
       otaproxy --purge [--cache-dir DIR]

HTTP forward proxy with a shared disk cache for OTA downloads (GET, absolute-form URLs).
Listens on proxy_info.yaml's local_ota_proxy_listen_addr:local_ota_proxy_listen_port, fetches
through upper_ota_proxy when set, with https when `gateway: true` and no upper proxy, and caches
when enable_local_ota_proxy_cache is true.

  --config-dir DIR          proxy_info.yaml, else .yml (default /boot/ota; absent = defaults)
  --listen-addr ADDR        overrides local_ota_proxy_listen_addr
  --listen-port N           overrides local_ota_proxy_listen_port (0 = any free port)
  --port-file FILE          once listening, write the port to FILE ("<port>\n", atomically);
                            removed again when otaproxy stops
  --upper-proxy URL         overrides upper_ota_proxy ("" = none)
  --no-cache                relay only (overrides enable_local_ota_proxy_cache)
  --cache-dir DIR           cache location (default /ota-cache)
  --init-cache              empty the cache at start (e.g. after a successful fleet update)
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
  std::string digits = text;
  uint64_t unit = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'K':
      case 'k':
        unit = 1ull << 10;
        break;
      case 'M':
      case 'm':
        unit = 1ull << 20;
        break;
      case 'G':
      case 'g':
        unit = 1ull << 30;
        break;
      default:
        break;
    }
    if (unit != 1) digits.pop_back();
  }
  const int64_t value = ParseInt(name, digits, 0, (int64_t{1} << 50));
  return static_cast<uint64_t>(value) * unit;
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
  return flags;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  // A few threads allocate (I/O loops, the upstream thread, the index writer): glibc's default
  // of 8 arenas per core would mostly hold free memory; two keep the resident set small.
  mallopt(M_ARENA_MAX, 2);  // NOLINT(concurrency-mt-unsafe): before any thread starts
  ota::log::SetMinLevel(flags.log_level);
  ota::log::SetTag("otaproxy");

  if (flags.purge) {
    auto store =
        ota::proxy::CacheStore::Open(flags.cache_dir, {.soft_percent = 100, .hard_percent = 100});
    if (!store.ok()) Fatal("cannot purge the cache", store.status());
    const size_t purged = (*store)->Purge();
    std::cout << "purged " << purged << " entries from " << flags.cache_dir.string() << "\n";
    return 0;
  }

  absl::StatusOr<ota::config::ProxyInfo> info = ota::config::LoadProxyInfo(flags.config_dir);
  if (!info.ok()) Fatal("cannot load proxy_info", info.status());
  if (!info->enable_local_ota_proxy && !flags.force) {
    ota::log::Info("enable_local_ota_proxy is false in proxy_info: not starting",
                   {{"proxy_info", info->source.string()}});
    return 0;
  }
  const std::string upper = flags.upper_proxy.value_or(info->upper_ota_proxy);

  ota::proxy::ServerOptions server = flags.server;
  server.listen_addr = flags.listen_addr.value_or(info->local_ota_proxy_listen_addr);
  server.listen_port =
      static_cast<uint16_t>(flags.listen_port.value_or(info->local_ota_proxy_listen_port));
  // The gateway ECU talks TLS to the server; behind an upper otaproxy the upper one does.
  server.upstream_https = info->gateway && upper.empty();
  server.forward_cache_control = !upper.empty();

  ota::proxy::UpstreamConfig upstream;
  upstream.proxy = upper;
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
  if (info->enable_local_ota_proxy_cache && !flags.no_cache) {
    auto opened = ota::proxy::CacheStore::Open(flags.cache_dir, flags.limits);
    if (!opened.ok()) Fatal("cannot open the cache", opened.status());
    store = *std::move(opened);
    if (flags.init_cache) {
      ota::log::Info("cache emptied (--init-cache)", {{"entries", std::to_string(store->Purge())}});
    }
  }
  auto proxy = ota::proxy::ProxyServer::Start(server, std::move(store), upstream);
  if (!proxy.ok()) Fatal("cannot start otaproxy", proxy.status());
  // The bound port for whoever started us (--listen-port 0): a file that appears only complete.
  if (!flags.port_file.empty()) {
    const absl::Status written =
        ota::fs::WriteFileAtomic(flags.port_file, ota::StrCat((*proxy)->port(), "\n"));
    if (!written.ok()) {
      (*proxy)->Stop();
      Fatal(ota::StrCat("cannot write the port file ", flags.port_file.string()), written);
    }
  }
  ota::log::Info("otaproxy ready",
                 {{"proxy_info", info->source.empty() ? "defaults" : info->source.string()},
                  {"port", std::to_string((*proxy)->port())}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  ota::log::Info("stopping", {{"signal", std::to_string(signal_number)}});
  (*proxy)->Stop();
  if (!flags.port_file.empty()) ::unlink(flags.port_file.c_str());  // no longer listening
  return 0;
}
