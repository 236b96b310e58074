// The log uploader with its real transports (gRPC PutLog/Check, HTTP POST) against a real
// logging server process, test/lib/logging_server/recording_logging_server, which appends every
// record it takes to a file: what the fleet's server receives, its types and levels, the
// endpoint quirk (gRPC on logging_server's host), the fallback to HTTP, a server that is down
// and comes up later (bounded queue, the newest kept), a server that refuses or is busy, and a
// stalled server that neither blocks the logger nor the shutdown.
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/config/proxy_info.h"
#include "common/fs/fs.h"
#include "common/telemetry/log_uploader.h"
#include "common/telemetry/network_transport.h"
#include "common/telemetry/upload_endpoints.h"
#include "common/util/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/lib/logging_server/recording_server.h"
#include "test/lib/ports/port_registry.h"

namespace ota::telemetry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

using ota::testing::PollUntil;
using ota::testing::RecordingServer;

constexpr const char* kAddress = RecordingServer::kAddress;
constexpr char kEcuId[] = "ecu-log";

// The message of an uploaded log line (the deployed client's JSON line).
std::string LineMessage(const nlohmann::json& record) {
  const nlohmann::json line =
      nlohmann::json::parse(record["message"].get<std::string>(), nullptr, false);
  if (!line.is_object()) return "<not a JSON line>";
  return line.value("message", "<no message>");
}

log::Record LogRecord(std::string_view text, log::Level level = log::Level::kInfo) {
  return log::Record{.type = log::RecordType::kLog,
                     .level = level,
                     .time = std::chrono::system_clock::now(),
                     .text = text,
                     .where = log::Where("/src/otaclient/update/x.cc", "Fn", 7)};
}

log::Record MetricsRecord(std::string_view json) {
  return log::Record{.type = log::RecordType::kMetrics,
                     .level = log::Level::kInfo,
                     .time = std::chrono::system_clock::now(),
                     .text = json,
                     .where = {}};
}

LogUploaderOptions FastOptions() {
  LogUploaderOptions options;
  options.probe_interval = milliseconds(20);
  options.min_backoff = milliseconds(10);
  options.max_backoff = milliseconds(50);
  return options;
}

class NetworkUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("network-upload-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_ = std::make_unique<fs::TempDir>(std::move(*dir));
  }

  // The endpoints as otaclient resolves them from proxy_info.
  static UploadEndpoints Endpoints(int http_port, std::optional<int> grpc_port) {
    config::ProxyInfo proxy;
    proxy.logging_server = StrCat("http://", kAddress, ":", http_port);
    // The host of logging_server_grpc plays no part (the deployed client's workaround): a
    // documentation address that nothing answers on.
    proxy.logging_server_grpc =
        grpc_port.has_value() ? std::optional<std::string>(StrCat("http://192.0.2.1:", *grpc_port))
                              : std::nullopt;
    absl::StatusOr<std::optional<UploadEndpoints>> endpoints =
        ResolveUploadEndpoints(proxy, kEcuId);
    EXPECT_TRUE(endpoints.ok() && endpoints->has_value());
    return endpoints.ok() && endpoints->has_value() ? **endpoints : UploadEndpoints{};
  }

  std::unique_ptr<fs::TempDir> temp_;
};

TEST_F(NetworkUploadTest, GrpcPutLogCarriesLinesAndMetricsWithTheirTypesAndLevels) {
  auto server = RecordingServer::Start(temp_->path(), {});
  ASSERT_NE(server, nullptr);
  const UploadEndpoints endpoints = Endpoints(server->http_port(), server->grpc_port());
  EXPECT_EQ(endpoints.grpc_target, StrCat(kAddress, ":", server->grpc_port()));
  LogUploader uploader(CreateNetworkConnector(endpoints, kEcuId), FastOptions());
  uploader.Consume(LogRecord("first line key=\"a \\\"quoted\\\" value\""));
  uploader.Consume(LogRecord("a warning", log::Level::kWarning));
  uploader.Consume(MetricsRecord(R"({"ecu_id":"ecu-log","downloaded_bytes":5})"));
  uploader.Consume(LogRecord("an error", log::Level::kError));
  ASSERT_TRUE(server->WaitReceived(4));
  const std::vector<nlohmann::json> got = server->Received();
  ASSERT_EQ(got.size(), 4u);
  for (const nlohmann::json& r : got) {
    EXPECT_EQ(r["transport"], "grpc");
    EXPECT_EQ(r["ecu_id"], kEcuId);
    EXPECT_EQ(r["timestamp"], 0);  // the server stamps the time, as for the deployed client
  }
  EXPECT_EQ(got[0]["log_type"], "LOG");
  EXPECT_EQ(got[0]["level"], 3);  // INFO
  EXPECT_EQ(LineMessage(got[0]), "first line key=\"a \\\"quoted\\\" value\"");
  const nlohmann::json line = nlohmann::json::parse(got[0]["message"].get<std::string>());
  EXPECT_EQ(line["level"], "INFO");
  EXPECT_EQ(line["logger"], "x");
  EXPECT_EQ(line["function"], "Fn");
  EXPECT_EQ(line["line"], 7);
  EXPECT_EQ(got[1]["level"], 4);  // WARN
  EXPECT_EQ(got[2]["log_type"], "METRICS");
  EXPECT_EQ(got[2]["message"], R"({"ecu_id":"ecu-log","downloaded_bytes":5})");  // as is
  EXPECT_EQ(got[3]["level"], 5);                                                 // ERROR
  EXPECT_EQ(LineMessage(got[3]), "an error");
  ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().delivered == 4; }));
  EXPECT_EQ(uploader.GetStats().transport, "grpc");
}

// A server whose gRPC Check does not answer OK (an old one): HTTP POST /<ecu_id>, the record as
// the body; the log type is lost over HTTP, as with the deployed client.
TEST_F(NetworkUploadTest, HttpPostWhenCheckFails) {
  auto server = RecordingServer::Start(temp_->path(), {"--no-check"});
  ASSERT_NE(server, nullptr);
  LogUploader uploader(
      CreateNetworkConnector(Endpoints(server->http_port(), server->grpc_port()), kEcuId),
      FastOptions());
  for (int i = 0; i < 20; ++i) uploader.Consume(LogRecord(StrCat("line ", i)));
  uploader.Consume(MetricsRecord(R"({"k":1})"));
  ASSERT_TRUE(server->WaitReceived(21));
  const std::vector<nlohmann::json> got = server->Received();
  ASSERT_EQ(got.size(), 21u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(got[i]["transport"], "http");
    EXPECT_EQ(got[i]["ecu_id"], kEcuId);
    EXPECT_EQ(LineMessage(got[i]), StrCat("line ", i));
  }
  EXPECT_EQ(got[20]["message"], R"({"k":1})");
  EXPECT_EQ(uploader.GetStats().transport, "http");
}

TEST_F(NetworkUploadTest, HttpOnlyWhenLoggingServerGrpcIsNull) {
  auto server = RecordingServer::Start(temp_->path(), {});
  ASSERT_NE(server, nullptr);
  LogUploader uploader(CreateNetworkConnector(Endpoints(server->http_port(), std::nullopt), kEcuId),
                       FastOptions());
  uploader.Consume(LogRecord("over http"));
  ASSERT_TRUE(server->WaitReceived(1));
  EXPECT_EQ(server->Received()[0]["transport"], "http");
  EXPECT_EQ(LineMessage(server->Received()[0]), "over http");
}

// Nothing listens yet: logging goes on, the queue keeps the newest records within its bound;
// once the server comes up (on the ports proxy_info names) they are delivered, oldest first.
TEST_F(NetworkUploadTest, AServerThatComesUpLaterGetsTheNewestRecords) {
  absl::StatusOr<std::vector<ota::testing::PortClaim>> ports = ota::testing::ClaimPorts(2);
  ASSERT_TRUE(ports.ok()) << ports.status();
  const int grpc_port = (*ports)[0].port();
  const int http_port = (*ports)[1].port();
  LogUploaderOptions options = FastOptions();
  options.max_records = 20;
  LogUploader uploader(CreateNetworkConnector(Endpoints(http_port, grpc_port), kEcuId), options);
  for (int i = 0; i < 50; ++i) uploader.Consume(LogRecord(StrCat("line ", i)));
  LogUploader::Stats stats = uploader.GetStats();
  EXPECT_FALSE(stats.connected);
  EXPECT_EQ(stats.queued, 20u);
  EXPECT_EQ(stats.dropped, 30u);

  auto server = RecordingServer::Start(temp_->path(), {}, grpc_port, http_port);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->WaitReceived(20));
  const std::vector<nlohmann::json> got = server->Received();
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(LineMessage(got[i]), StrCat("line ", 30 + i));
    EXPECT_EQ(got[i]["transport"], "grpc");
  }
  EXPECT_EQ(uploader.GetStats().dropped, 30u);
}

// The server restarts: records logged while it was gone are sent once it is back.
TEST_F(NetworkUploadTest, UploadResumesAfterTheServerRestarts) {
  absl::StatusOr<std::vector<ota::testing::PortClaim>> ports = ota::testing::ClaimPorts(2);
  ASSERT_TRUE(ports.ok()) << ports.status();
  const int grpc_port = (*ports)[0].port();
  const int http_port = (*ports)[1].port();
  auto server = RecordingServer::Start(temp_->path(), {}, grpc_port, http_port);
  ASSERT_NE(server, nullptr);
  LogUploader uploader(CreateNetworkConnector(Endpoints(http_port, grpc_port), kEcuId),
                       FastOptions());
  uploader.Consume(LogRecord("before"));
  ASSERT_TRUE(server->WaitReceived(1));
  server.reset();  // SIGKILL
  uploader.Consume(LogRecord("while down"));
  ASSERT_TRUE(PollUntil([&] { return !uploader.GetStats().connected; }));
  server = RecordingServer::Start(temp_->path(), {}, grpc_port, http_port);
  ASSERT_NE(server, nullptr);
  uploader.Consume(LogRecord("after"));
  ASSERT_TRUE(server->WaitReceived(3));
  std::vector<std::string> messages;
  for (const nlohmann::json& r : server->Received()) messages.push_back(LineMessage(r));
  EXPECT_EQ(messages, (std::vector<std::string>{"before", "while down", "after"}));
}

// How each transport is chosen: gRPC, or HTTP when Check fails (--no-check).
struct TransportCase {
  std::string name;
  std::vector<std::string> flags;
};
const std::vector<TransportCase> kTransports = {{"grpc", {}}, {"http", {"--no-check"}}};

std::vector<std::string> With(std::vector<std::string> flags,
                              const std::vector<std::string>& more) {
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

// NOT_ALLOWED_ECU_ID / HTTP 400 is final (not retried); SERVER_QUEUE_FULL / HTTP 503 is retried
// until taken.
TEST_F(NetworkUploadTest, RefusedRecordsAreDroppedAndBusyOnesRetried) {
  for (const TransportCase& transport : kTransports) {
    SCOPED_TRACE(transport.name);
    const auto refused_dir = temp_->path() / (transport.name + "-refused");
    std::filesystem::create_directories(refused_dir);
    {
      auto server = RecordingServer::Start(
          refused_dir, With(transport.flags, {"--allowed-ecu", "someone-else"}));
      ASSERT_NE(server, nullptr);
      LogUploader uploader(
          CreateNetworkConnector(Endpoints(server->http_port(), server->grpc_port()), kEcuId),
          FastOptions());
      uploader.Consume(LogRecord("refused"));
      ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().rejected == 1; }));
      EXPECT_EQ(uploader.GetStats().transport, transport.name);
      EXPECT_EQ(uploader.GetStats().queued, 0u);
      EXPECT_TRUE(server->Received().empty());
    }
    const auto busy_dir = temp_->path() / (transport.name + "-busy");
    std::filesystem::create_directories(busy_dir);
    auto server = RecordingServer::Start(busy_dir, With(transport.flags, {"--busy-first", "3"}));
    ASSERT_NE(server, nullptr);
    LogUploaderOptions options = FastOptions();
    options.batch = 1;
    LogUploader uploader(
        CreateNetworkConnector(Endpoints(server->http_port(), server->grpc_port()), kEcuId),
        options);
    uploader.Consume(LogRecord("a"));
    uploader.Consume(LogRecord("b"));
    ASSERT_TRUE(server->WaitReceived(2));
    const std::vector<nlohmann::json> got = server->Received();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(LineMessage(got[0]), "a");
    EXPECT_EQ(LineMessage(got[1]), "b");
    EXPECT_EQ(got[0]["transport"], transport.name);
  }
}

// A server that accepts connections but never answers a record in time: logging stays a queue
// operation; a call ends at its 3 s deadline, is not sent again, and ends the turn (the rest of
// the batch stays queued); Stop is bounded.
TEST_F(NetworkUploadTest, AStalledServerBlocksNeitherTheLoggerNorTheStop) {
  for (const TransportCase& transport : kTransports) {
    SCOPED_TRACE(transport.name);
    const auto dir = temp_->path() / transport.name;
    std::filesystem::create_directories(dir);
    auto server = RecordingServer::Start(dir, With(transport.flags, {"--delay-ms", "60000"}));
    ASSERT_NE(server, nullptr);
    LogUploaderOptions options = FastOptions();
    options.max_records = 100;
    LogUploader uploader(
        CreateNetworkConnector(Endpoints(server->http_port(), server->grpc_port()), kEcuId),
        options);
    ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().connected; }));
    EXPECT_EQ(uploader.GetStats().transport, transport.name);
    uploader.Consume(LogRecord("stuck"));
    const auto start = Clock::now();
    for (int i = 0; i < 5000; ++i) uploader.Consume(LogRecord(StrCat("line ", i)));
    EXPECT_LT(Clock::now() - start, seconds(5));  // queueing only; a call would take 3 s each
    EXPECT_EQ(uploader.GetStats().queued, 100u);
    // The first record runs into its deadline: unconfirmed, not sent again; still connected.
    ASSERT_TRUE(PollUntil([&] { return uploader.GetStats().unconfirmed >= 1; }));
    // Applied per record, not once per batch (8 deadlines, 24 s): each call is 3 s apart.
    LogUploader::Stats stats = uploader.GetStats();
    EXPECT_LT(stats.unconfirmed, options.batch);
    EXPECT_EQ(stats.delivered, 0u);
    EXPECT_TRUE(stats.connected);
    const auto stop_start = Clock::now();
    uploader.Stop(milliseconds(200));
    EXPECT_LT(Clock::now() - stop_start, seconds(5));
    EXPECT_FALSE(uploader.GetStats().connected);
  }
}

}  // namespace
}  // namespace ota::telemetry
