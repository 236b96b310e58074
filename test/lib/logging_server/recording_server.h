// A recording_logging_server process for tests (the fleet's logging server stand-in, see
// recording_logging_server.cc): started on 127.0.0.8 with port 0 (or given ports) and port
// files, killed (SIGKILL, by PID) when destroyed; Received() reads what it took so far.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "nlohmann/json.hpp"
#include "test/lib/ports/port_file.h"
#include "test/unit/service/test_support.h"

namespace ota::testing {

// Polls `condition` until it holds (bounded: a safety net, not a wait).
template <typename Condition>
inline bool PollUntil(Condition condition,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(30000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // poll interval
  }
  return true;
}

// A recording_logging_server process.
class RecordingServer {
 public:
  static constexpr char kBinary[] =
      OTA_BINARY_DIR "/test/lib/logging_server/recording_logging_server";
  // Its loopback address in the tests.
  static constexpr char kAddress[] = "127.0.0.8";

  // `extra`: more flags (--no-check, --delay-ms N, ...). Ports 0 unless given.
  static std::unique_ptr<RecordingServer> Start(const std::filesystem::path& dir,
                                                std::vector<std::string> extra, int grpc_port = 0,
                                                int http_port = 0) {
    auto server = std::unique_ptr<RecordingServer>(new RecordingServer());
    server->out_ = dir / "received.jsonl";
    const auto grpc_file = dir / StrCat("grpc.port.", server->Serial());
    const auto http_file = dir / StrCat("http.port.", server->Serial());
    std::vector<std::string> argv = {kBinary,
                                     "--address",
                                     kAddress,
                                     "--grpc-port",
                                     StrCat(grpc_port),
                                     "--http-port",
                                     StrCat(http_port),
                                     "--grpc-port-file",
                                     grpc_file.string(),
                                     "--http-port-file",
                                     http_file.string(),
                                     "--out",
                                     server->out_.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (!server->process_.Start(argv)) return nullptr;
    absl::StatusOr<int> grpc =
        ota::testing::WaitForPortFile(grpc_file, server->process_.pid(), std::chrono::seconds(20));
    absl::StatusOr<int> http =
        ota::testing::WaitForPortFile(http_file, server->process_.pid(), std::chrono::seconds(20));
    if (!grpc.ok() || !http.ok()) return nullptr;
    server->grpc_port_ = *grpc;
    server->http_port_ = *http;
    return server;
  }

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }

  // Every record it took so far, one JSON object each.
  std::vector<nlohmann::json> Received() const {
    std::vector<nlohmann::json> out;
    const absl::StatusOr<std::string> text = fs::ReadFile(out_);
    if (!text.ok()) return out;
    for (std::string_view rest = *text; !rest.empty();) {
      const size_t end = rest.find('\n');
      if (end == std::string_view::npos) break;  // a line still being written
      out.push_back(nlohmann::json::parse(rest.substr(0, end), nullptr, false));
      rest.remove_prefix(end + 1);
    }
    return out;
  }
  bool WaitReceived(size_t n) const {
    return PollUntil([&] { return Received().size() >= n; });
  }

 private:
  RecordingServer() = default;
  int Serial() {
    static int serial = 0;
    return ++serial;
  }
  service::testing::ChildProcess process_;
  std::filesystem::path out_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

}  // namespace ota::testing
