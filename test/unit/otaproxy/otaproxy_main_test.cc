// The otaproxy binary as a process: --listen-port 0 takes any free port, which it reports in its
// "otaproxy ready" log line and, with --port-file, in a file written once it listens; it answers
// on that port; the file goes when it stops; a port file it cannot write stops it, naming it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "test/lib/loopback.h"
#include "test/lib/ports/port_file.h"
#include "test/unit/service/test_support.h"

namespace ota::proxy {
namespace {

using service::testing::ChildProcess;
using service::testing::ProcessResult;
using service::testing::RunProcess;

constexpr char kOtaproxy[] = OTA_BINARY_DIR "/otaproxy/otaproxy";

// The whole answer to GET /_otaproxy/stats on 127.0.0.1:port ("" when nothing answers).
std::string GetStats(int port) {
  absl::StatusOr<fs::UniqueFd> connected = ::ota::testing::ConnectLoopback(port);
  if (!connected.ok()) return "";
  fs::UniqueFd fd = *std::move(connected);
  timeval timeout{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string request =
      "GET /_otaproxy/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (!fs::WriteAll(fd.get(), request.data(), request.size(), "stats request").ok()) return "";
  std::string answer;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0) answer.append(buf, static_cast<size_t>(n));
  return answer;
}

class OtaproxyMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("otaproxy-main-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_ = std::make_unique<fs::TempDir>(std::move(*dir));
    std::filesystem::create_directories(temp_->path() / "config");
    ASSERT_TRUE(fs::WriteFileAtomic(temp_->path() / "config" / "proxy_info.yaml",
                                    "enable_local_ota_proxy: true\n")
                    .ok());
  }

  std::vector<std::string> Command(std::vector<std::string> extra) {
    std::vector<std::string> argv = {kOtaproxy,
                                     "--config-dir",
                                     (temp_->path() / "config").string(),
                                     "--cache-dir",
                                     (temp_->path() / "cache").string(),
                                     "--listen-addr",
                                     "127.0.0.1",
                                     "--disk-soft-percent",
                                     "100",
                                     "--disk-hard-percent",
                                     "100"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  std::unique_ptr<fs::TempDir> temp_;
};

TEST_F(OtaproxyMainTest, PortZeroIsReportedInTheLogAndInThePortFile) {
  const auto port_file = temp_->path() / "otaproxy.port";
  ChildProcess proxy;
  ASSERT_TRUE(proxy.Start(Command({"--listen-port", "0", "--port-file", port_file.string()})));
  const absl::StatusOr<int> port =
      ota::testing::WaitForPortFile(port_file, proxy.pid(), std::chrono::seconds(20));
  ASSERT_TRUE(port.ok()) << port.status() << proxy.Wait().err;

  // The file is written once the listener is bound: the port answers at once.
  const std::string stats = GetStats(*port);
  EXPECT_TRUE(stats.starts_with("HTTP/1.1 200")) << stats;
  EXPECT_NE(stats.find("\"requests\""), std::string::npos) << stats;

  ASSERT_EQ(::kill(proxy.pid(), SIGTERM), 0);
  const ProcessResult result = proxy.Wait();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  // The log line names the same port.
  EXPECT_NE(result.err.find("otaproxy ready"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(StrCat(" port=", *port, "\n")), std::string::npos) << result.err;
  // Stopped: the port file is gone with the listener.
  EXPECT_FALSE(std::filesystem::exists(port_file));
}

TEST_F(OtaproxyMainTest, AnUnwritablePortFileStopsItNamingTheFile) {
  const std::string port_file = (temp_->path() / "no-such-dir" / "otaproxy.port").string();
  const ProcessResult result =
      RunProcess(Command({"--listen-port", "0", "--port-file", port_file}));
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find(StrCat("cannot write the port file ", port_file, " error=")),
            std::string::npos)
      << result.err;
  EXPECT_EQ(result.err.find("otaproxy ready"), std::string::npos) << result.err;
}

TEST_F(OtaproxyMainTest, PortFlagErrorsExitTwo) {
  for (const std::vector<std::string>& flags :
       std::vector<std::vector<std::string>>{{"--port-file"},
                                             {"--port-file="},
                                             {"--listen-port", "70000"},
                                             {"--listen-port", "-1"}}) {
    const ProcessResult result = RunProcess(Command(flags));
    EXPECT_EQ(result.exit_code, 2) << flags[0] << ": " << result.err;
    EXPECT_NE(result.err.find("otaproxy: "), std::string::npos) << result.err;
  }
}

}  // namespace
}  // namespace ota::proxy
