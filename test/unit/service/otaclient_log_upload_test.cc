// The otaclient binary's fleet log upload (issue 13 §8): with proxy_info's logging_server and
// logging_server_grpc pointing at a real logging server process (the recording stand-in on
// 127.0.0.8), an update uploads its log lines and exactly one metrics record in the deployed
// client's format; with the server down or stalled, the same update succeeds and otaclient still
// stops promptly.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/image/legacy/writer.h"
#include "common/util/strings.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "proto/otaclient_v2.grpc.pb.h"
#include "test/lib/logging_server/recording_server.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/lib/ports/port_file.h"
#include "test/unit/crypto/test_pki.h"
#include "test/unit/metrics/deployed_metrics_fields.h"
#include "test/unit/service/test_support.h"

namespace ota::service {
namespace {

using ota::testing::PollUntil;
using ota::testing::RecordingServer;
using testing::ChildProcess;
using testing::ClosedPort;
using testing::ProcessResult;

constexpr char kOtaclient[] = OTA_BINARY_DIR "/otaclient/otaclient";
constexpr char kOtaproxy[] = OTA_BINARY_DIR "/otaproxy/otaproxy";

using ::ota::testing::kDeployedMetricsFields;

// The keys of a JSON object in the order they appear in its text (nlohmann sorts them).
std::vector<std::string> KeysInTextOrder(const std::string& text) {
  std::vector<std::string> keys;
  nlohmann::json::parser_callback_t collect = [&](int depth, nlohmann::json::parse_event_t event,
                                                  nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key) {
      keys.push_back(parsed.get<std::string>());
    }
    return true;
  };
  const nlohmann::json parsed = nlohmann::json::parse(text, collect, false);
  if (parsed.is_discarded()) keys.push_back("<not JSON>");
  return keys;
}

class OtaclientLogUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("otaclient-log-upload-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_ = std::make_unique<fs::TempDir>(std::move(*dir));
    config_dir_ = temp_->path() / "config";
    std::filesystem::create_directories(config_dir_);
    // The image: a tiny v2 rootfs, signed, served by nginx.
    auto pki = ota::testing::CachedTestPki("otaclient-log-upload-test");
    ASSERT_TRUE(pki.ok()) << pki.status();
    const std::filesystem::path rootfs = temp_->path() / "rootfs";
    std::filesystem::create_directories(rootfs / "etc");
    std::filesystem::create_directories(rootfs / "usr" / "bin");
    ASSERT_TRUE(fs::WriteFileAtomic(rootfs / "etc" / "os-release", "v2\n").ok());
    ASSERT_TRUE(fs::WriteFileAtomic(rootfs / "usr" / "bin" / "tool", "#!/bin/sh\n", 0755).ok());
    std::filesystem::create_symlink("tool", rootfs / "usr" / "bin" / "tool-link");
    image::BuildOptions build;
    build.rootfs = rootfs;
    build.out_dir = temp_->path() / "image";
    build.key_pem = pki->path("sign.key");
    build.cert_pem = pki->path("sign.pem");
    auto built = image::BuildImage(build);
    ASSERT_TRUE(built.ok()) << built.status();
    auto nginx = ota::testing::NginxServer::Start(temp_->path() / "image");
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = std::move(*nginx);
    ASSERT_TRUE(fs::WriteFileAtomic(config_dir_ / "ecu_info.yml",
                                    "format_version: 1\necu_id: ecu-main\nip_addr: 127.0.0.1\n"
                                    "available_ecu_ids: [ecu-main]\nbootloader: dir\n")
                    .ok());
  }

  // `local_proxy`: the lines about the local otaproxy (default: none).
  void WriteProxyInfo(const std::string& logging_server, const std::string& logging_server_grpc,
                      const std::string& local_proxy = "enable_local_ota_proxy: false\n") {
    ASSERT_TRUE(fs::WriteFileAtomic(config_dir_ / "proxy_info.yml",
                                    StrCat(local_proxy, "logging_server: ", logging_server, "\n",
                                           "logging_server_grpc: ", logging_server_grpc, "\n"))
                    .ok());
  }

  // Starts otaclient (no reboot), requests the update to v2 and waits until the session reported
  // its end (its metrics line); then stops otaclient with SIGTERM. The session's outcome is
  // checked by the caller from the returned stderr and the slot files.
  // With `reboot`, the directory backend's reboot re-executes otaclient: `before_stop` is called
  // once the session ended and the re-exec began, and must wait for the new process.
  ProcessResult UpdateAndStop(std::chrono::milliseconds* stop_took, bool reboot = false,
                              const std::function<void()>& before_stop = {}) {
    const auto port_file = temp_->path() / "otaclient.port";
    ChildProcess daemon;
    std::vector<std::string> argv = {kOtaclient,
                                     "--config-dir",
                                     config_dir_.string(),
                                     "--certs-dir",
                                     (temp_->path() / "certs").string(),
                                     "--dir-slots-root",
                                     slots().string(),
                                     "--listen-port",
                                     "0",
                                     "--port-file",
                                     port_file.string(),
                                     "--allow-unverified-image",
                                     "--update-nice",
                                     "0"};
    if (!reboot) argv.push_back("--no-reboot");
    EXPECT_TRUE(daemon.Start(argv));
    const absl::StatusOr<int> port =
        ota::testing::WaitForPortFile(port_file, daemon.pid(), std::chrono::seconds(20));
    EXPECT_TRUE(port.ok()) << port.status();
    if (!port.ok()) return daemon.Wait();

    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    auto stub = OtaClientV2::OtaClientService::NewStub(grpc::CreateCustomChannel(
        StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials(), args));
    OtaClientV2::UpdateRequest request;
    request.set_request_id("req-log-upload");
    OtaClientV2::UpdateRequestEcu* ecu = request.add_ecu();
    ecu->set_ecu_id("ecu-main");
    ecu->set_version("v2");
    ecu->set_url(nginx_->HttpUrl("/"));
    ecu->set_cookies("{}");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    OtaClientV2::UpdateResponse response;
    const grpc::Status rpc = stub->Update(&context, request, &response);
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    EXPECT_EQ(response.ecu_size(), 1);
    if (response.ecu_size() == 1) {
      EXPECT_EQ(response.ecu(0).result(), OtaClientV2::NO_FAILURE) << response.ecu(0).message();
    }
    // The session's end: its metrics line (bounded: a safety net).
    EXPECT_TRUE(daemon.WaitForStderr("INFO metrics {", std::chrono::seconds(120)));
    if (reboot) {
      EXPECT_TRUE(daemon.WaitForStderr("reboot: re-executing otaclient", std::chrono::seconds(60)));
    }
    if (before_stop) before_stop();
    const auto stop_start = std::chrono::steady_clock::now();
    EXPECT_EQ(kill(daemon.pid(), SIGTERM), 0);
    ProcessResult result = daemon.Wait(std::chrono::seconds(60));
    *stop_took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - stop_start);
    return result;
  }

  std::filesystem::path slots() const { return temp_->path() / "slots"; }

  // The update succeeded: the switch to slot b is armed.
  void ExpectSwitchedToSlotB(const ProcessResult& result) {
    EXPECT_EQ(result.exit_code, 0) << result.err;
    auto next_boot = fs::ReadFile(slots() / "boot" / "next_boot");
    ASSERT_TRUE(next_boot.ok()) << next_boot.status() << result.err;
    EXPECT_EQ(*next_boot, "b");
    EXPECT_EQ(result.err.find("update failed"), std::string::npos) << result.err;
  }

  // The JSON of the "metrics {...}" line on stderr.
  static std::string MetricsLine(const std::string& err) {
    const std::string marker = "INFO metrics ";
    const size_t at = err.find(marker);
    if (at == std::string::npos) return "";
    const size_t start = at + marker.size();
    return err.substr(start, err.find('\n', start) - start);
  }

  std::unique_ptr<fs::TempDir> temp_;
  std::filesystem::path config_dir_;
  std::unique_ptr<ota::testing::NginxServer> nginx_;
};

TEST_F(OtaclientLogUploadTest, AnUpdateUploadsItsLogAndOneMetricsRecord) {
  const auto server_dir = temp_->path() / "server";
  std::filesystem::create_directories(server_dir);
  auto server = RecordingServer::Start(server_dir, {});
  ASSERT_NE(server, nullptr);
  WriteProxyInfo(StrCat("http://", RecordingServer::kAddress, ":", server->http_port()),
                 StrCat("http://", RecordingServer::kAddress, ":", server->grpc_port()));
  std::chrono::milliseconds stop_took{};
  const ProcessResult result = UpdateAndStop(&stop_took);
  ExpectSwitchedToSlotB(result);

  // Everything otaclient logged before its stop reaches the server (it drains at the stop).
  auto metrics_received = [&] {
    for (const nlohmann::json& r : server->Received()) {
      if (r["log_type"] == "METRICS") return true;
    }
    return false;
  };
  ASSERT_TRUE(PollUntil(metrics_received)) << result.err;
  std::vector<nlohmann::json> metrics;
  std::vector<std::string> lines;
  for (const nlohmann::json& r : server->Received()) {
    EXPECT_EQ(r["transport"], "grpc");
    EXPECT_EQ(r["ecu_id"], "ecu-main");
    if (r["log_type"] == "METRICS") {
      metrics.push_back(r);
    } else {
      const nlohmann::json line =
          nlohmann::json::parse(r["message"].get<std::string>(), nullptr, false);
      ASSERT_TRUE(line.is_object()) << r["message"];
      lines.push_back(line["message"].get<std::string>());
    }
  }
  ASSERT_EQ(metrics.size(), 1u);
  auto has_line = [&](std::string_view prefix) {
    for (const std::string& l : lines) {
      if (l.starts_with(prefix)) return true;
    }
    return false;
  };
  EXPECT_TRUE(has_line("update session session_id="));
  EXPECT_TRUE(has_line("image verified"));

  // The record: the deployed client's fields in its order, the same JSON as on stderr.
  const std::string text = metrics[0]["message"].get<std::string>();
  EXPECT_EQ(text, MetricsLine(result.err));
  EXPECT_EQ(KeysInTextOrder(text), kDeployedMetricsFields);
  const nlohmann::json m = nlohmann::json::parse(text);
  EXPECT_EQ(m["ecu_id"], "ecu-main");
  EXPECT_EQ(m["request_id"], "req-log-upload");
  EXPECT_EQ(m["target_firmware_version"], "v2");
  EXPECT_TRUE(m["session_id"].get<std::string>().find("-v2-") != std::string::npos)
      << m["session_id"];
  EXPECT_EQ(m["failure_type"], "");
  EXPECT_EQ(m["failed_status"], "");
  EXPECT_EQ(m["ota_image_format"], "legacy");
  EXPECT_EQ(m["bootloader_type"], "dir");
  EXPECT_EQ(m["use_inplace_mode"], false);
  EXPECT_EQ(m["enable_local_ota_proxy_cache"], true);
  EXPECT_EQ(m["ota_image_total_regulars_num"], 2);
  EXPECT_EQ(m["ota_image_total_symlinks_num"], 1);
  EXPECT_GE(m["ota_image_total_directories_num"].get<int>(), 3);
  EXPECT_GT(m["downloaded_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(m["reboot_start_timestamp"], 0);  // --no-reboot
  uint64_t previous = 0;
  for (size_t i = 0; i < 7; ++i) {
    SCOPED_TRACE(kDeployedMetricsFields[i]);
    const uint64_t at = m[kDeployedMetricsFields[i]].get<uint64_t>();
    EXPECT_GE(at, previous);
    EXPECT_GT(at, 1600000000u);
    previous = at;
  }
}

// The reboot follows the session's end at once (here: the directory backend re-executes
// otaclient); the record still reaches the server, because otaclient waits (at most 2 s) for the
// upload queue before it reboots.
TEST_F(OtaclientLogUploadTest, TheMetricsRecordIsDeliveredBeforeTheReboot) {
  const auto server_dir = temp_->path() / "server";
  std::filesystem::create_directories(server_dir);
  auto server = RecordingServer::Start(server_dir, {});
  ASSERT_NE(server, nullptr);
  WriteProxyInfo(StrCat("http://", RecordingServer::kAddress, ":", server->http_port()),
                 StrCat("http://", RecordingServer::kAddress, ":", server->grpc_port()));
  auto count = [&](std::string_view log_type, std::string_view prefix) {
    size_t n = 0;
    for (const nlohmann::json& r : server->Received()) {
      if (r["log_type"] != log_type) continue;
      if (log_type == "METRICS") {
        ++n;
        continue;
      }
      const nlohmann::json line =
          nlohmann::json::parse(r["message"].get<std::string>(), nullptr, false);
      if (line.is_object() && line["message"].get<std::string>().starts_with(prefix)) ++n;
    }
    return n;
  };
  std::vector<nlohmann::json> at_reexec;
  std::chrono::milliseconds stop_took{};
  const ProcessResult result = UpdateAndStop(&stop_took, /*reboot=*/true, [&] {
    // What the server had when the old process image was replaced.
    at_reexec = server->Received();
    // The re-executed otaclient is up (and uploading) before it is stopped.
    EXPECT_TRUE(PollUntil([&] { return count("LOG", "otaclient started") == 2; }));
  });
  EXPECT_EQ(result.exit_code, 0) << result.err;
  size_t metrics_at_reexec = 0;
  for (const nlohmann::json& r : at_reexec) metrics_at_reexec += r["log_type"] == "METRICS";
  EXPECT_EQ(metrics_at_reexec, 1u) << result.err;
  ASSERT_EQ(count("METRICS", ""), 1u);  // one session, one record, also after the restart
  nlohmann::json m;
  for (const nlohmann::json& r : server->Received()) {
    if (r["log_type"] == "METRICS") m = nlohmann::json::parse(r["message"].get<std::string>());
  }
  EXPECT_GE(m["reboot_start_timestamp"].get<uint64_t>(),
            m["finalizing_update_start_timestamp"].get<uint64_t>());
  EXPECT_GT(m["finalizing_update_start_timestamp"].get<uint64_t>(), 1600000000u);
  EXPECT_EQ(m["failed_status"], "");
}

// With a local otaproxy, the record carries its counters over the session: the image came
// through it (requests), from upstream (no local cache hits on a first download).
TEST_F(OtaclientLogUploadTest, TheRecordCountsTheLocalOtaproxysRequests) {
  const auto proxy_config = temp_->path() / "otaproxy-config";
  std::filesystem::create_directories(proxy_config);
  // gateway: false, or it would fetch the test's http image over https.
  ASSERT_TRUE(
      fs::WriteFileAtomic(proxy_config / "proxy_info.yml",
                          "enable_local_ota_proxy: true\ngateway: false\nlogging_server: null\n")
          .ok());
  const auto proxy_port_file = temp_->path() / "otaproxy.port";
  ChildProcess otaproxy;
  ASSERT_TRUE(otaproxy.Start({kOtaproxy, "--config-dir", proxy_config.string(), "--cache-dir",
                              (temp_->path() / "cache").string(), "--listen-addr", "127.0.0.1",
                              "--disk-soft-percent", "100", "--disk-hard-percent", "100",
                              "--listen-port", "0", "--port-file", proxy_port_file.string()}));
  const absl::StatusOr<int> proxy_port =
      ota::testing::WaitForPortFile(proxy_port_file, otaproxy.pid(), std::chrono::seconds(20));
  ASSERT_TRUE(proxy_port.ok()) << proxy_port.status();

  const auto server_dir = temp_->path() / "server";
  std::filesystem::create_directories(server_dir);
  auto server = RecordingServer::Start(server_dir, {});
  ASSERT_NE(server, nullptr);
  WriteProxyInfo(StrCat("http://", RecordingServer::kAddress, ":", server->http_port()),
                 StrCat("http://", RecordingServer::kAddress, ":", server->grpc_port()),
                 StrCat("enable_local_ota_proxy: true\nlocal_ota_proxy_listen_addr: 127.0.0.1\n",
                        "local_ota_proxy_listen_port: ", *proxy_port, "\n"));
  std::chrono::milliseconds stop_took{};
  const ProcessResult result = UpdateAndStop(&stop_took);
  ExpectSwitchedToSlotB(result);
  const nlohmann::json m = nlohmann::json::parse(MetricsLine(result.err), nullptr, false);
  ASSERT_TRUE(m.is_object()) << result.err;
  // The metadata, the file lists and the blobs: several requests, none a local hit.
  EXPECT_GE(m["cache_total_requests"].get<uint64_t>(), 3u) << m.dump();
  EXPECT_EQ(m["cache_local_hits"], 0) << m.dump();
  EXPECT_EQ(m["enable_local_ota_proxy_cache"], true);
}

// Nothing listens at the logging server's ports: the update is not held up, and otaclient stops
// at once (nothing to drain to).
TEST_F(OtaclientLogUploadTest, AnUpdateSucceedsWhileTheLoggingServerIsDown) {
  const ClosedPort http, grpc;
  ASSERT_GT(http.port(), 0);
  ASSERT_GT(grpc.port(), 0);
  WriteProxyInfo(StrCat("http://127.0.0.1:", http.port()),
                 StrCat("http://127.0.0.1:", grpc.port()));
  std::chrono::milliseconds stop_took{};
  const ProcessResult result = UpdateAndStop(&stop_took);
  ExpectSwitchedToSlotB(result);
  EXPECT_NE(result.err.find("log upload: the logging server does not answer"), std::string::npos)
      << result.err;
  EXPECT_FALSE(MetricsLine(result.err).empty());
  EXPECT_LT(stop_took, std::chrono::seconds(10)) << result.err;
}

// A server that takes connections and answers Check but never answers a PutLog in time: the
// update goes on unhindered and the stop is bounded by the 2 s drain.
TEST_F(OtaclientLogUploadTest, AnUpdateSucceedsWhileTheLoggingServerStalls) {
  const auto server_dir = temp_->path() / "server";
  std::filesystem::create_directories(server_dir);
  auto server = RecordingServer::Start(server_dir, {"--delay-ms", "600000"});
  ASSERT_NE(server, nullptr);
  WriteProxyInfo(StrCat("http://", RecordingServer::kAddress, ":", server->http_port()),
                 StrCat("http://", RecordingServer::kAddress, ":", server->grpc_port()));
  std::chrono::milliseconds stop_took{};
  const ProcessResult result = UpdateAndStop(&stop_took);
  ExpectSwitchedToSlotB(result);
  EXPECT_NE(result.err.find("log upload: connected transport=grpc"), std::string::npos)
      << result.err;
  EXPECT_FALSE(MetricsLine(result.err).empty());
  EXPECT_LT(stop_took, std::chrono::seconds(10)) << result.err;
  EXPECT_TRUE(server->Received().empty());
}

// logging_server: null turns the upload off.
TEST_F(OtaclientLogUploadTest, NullTurnsTheUploadOff) {
  WriteProxyInfo("null", "null");
  std::chrono::milliseconds stop_took{};
  const ProcessResult result = UpdateAndStop(&stop_took);
  ExpectSwitchedToSlotB(result);
  EXPECT_NE(result.err.find("log upload off (proxy_info logging_server: null)"), std::string::npos)
      << result.err;
  EXPECT_EQ(result.err.find("log upload: "), std::string::npos) << result.err;
}

}  // namespace
}  // namespace ota::service
