// The otaclient binary as a process: starts from a config dir and a directory slot root, serves
// Status on the port it bound (--listen-port 0: reported in its log and --port-file), stops
// cleanly on SIGTERM; bad configs and flags exit non-zero with a message.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "grpcpp/grpcpp.h"
#include "proto/otaclient_v2.grpc.pb.h"
#include "test/lib/ports/port_file.h"
#include "test/unit/service/test_support.h"

namespace ota::service {
namespace {

using testing::ChildProcess;
using testing::ProcessResult;
using testing::RunProcess;

constexpr char kOtaclient[] = OTA_BINARY_DIR "/otaclient/otaclient";

class OtaclientMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("otaclient-main-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_ = std::make_unique<fs::TempDir>(std::move(*dir));
    config_dir_ = temp_->path() / "config";
    std::filesystem::create_directories(config_dir_);
  }

  void WriteConfig(const std::string& name, const std::string& content) {
    ASSERT_TRUE(fs::WriteFileAtomic(config_dir_ / name, content).ok());
  }

  std::vector<std::string> Command(std::vector<std::string> extra) {
    std::vector<std::string> argv = {kOtaclient, "--config-dir", config_dir_.string(),
                                     "--certs-dir", (temp_->path() / "certs").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  std::unique_ptr<fs::TempDir> temp_;
  std::filesystem::path config_dir_;
};

TEST_F(OtaclientMainTest, ServesStatusAndStopsOnSigterm) {
  WriteConfig("ecu_info.yml",
              "format_version: 1\necu_id: ecu-main\nip_addr: 127.0.0.1\n"
              "available_ecu_ids: [ecu-main, ecu-sub]\nbootloader: dir\n");
  WriteConfig("proxy_info.yml", "enable_local_ota_proxy: false\n");
  const auto port_file = temp_->path() / "otaclient.port";
  ChildProcess daemon;
  ASSERT_TRUE(daemon.Start(
      Command({"--dir-slots-root", (temp_->path() / "slots").string(), "--listen-port", "0",
               "--port-file", port_file.string(), "--no-reboot", "--allow-unverified-image"})));
  // Written once the listener is bound: no polling of the port itself.
  const absl::StatusOr<int> port =
      ota::testing::WaitForPortFile(port_file, daemon.pid(), std::chrono::seconds(20));
  ASSERT_TRUE(port.ok()) << port.status() << daemon.Wait().err;

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  auto channel = grpc::CreateCustomChannel(StrCat("127.0.0.1:", *port),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = OtaClientV2::OtaClientService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  OtaClientV2::StatusResponse status;
  const grpc::Status rpc = stub->Status(&context, {}, &status);
  ASSERT_TRUE(rpc.ok()) << rpc.error_message();
  ASSERT_EQ(status.ecu_v2_size(), 1);
  EXPECT_EQ(status.ecu_v2(0).ecu_id(), "ecu-main");
  EXPECT_EQ(status.ecu_v2(0).ota_status(), OtaClientV2::INITIALIZED);
  ASSERT_EQ(status.available_ecu_ids_size(), 2);
  EXPECT_EQ(status.available_ecu_ids(1), "ecu-sub");

  ASSERT_EQ(kill(daemon.pid(), SIGTERM), 0);
  const ProcessResult result = daemon.Wait();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("otaclient started"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("ecu_id=ecu-main"), std::string::npos) << result.err;
  // The log line reports the port too, in the file's words.
  EXPECT_NE(result.err.find(StrCat("listen=127.0.0.1:", *port, " port=", *port, " ")),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("--allow-unverified-image"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("stopped"), std::string::npos) << result.err;
  // The directory backend laid out its slots under the given root, nowhere else.
  EXPECT_TRUE(std::filesystem::is_directory(temp_->path() / "slots" / "slot_a"));
  // Stopped: the port file is gone with the listener.
  EXPECT_FALSE(std::filesystem::exists(port_file));
}

TEST_F(OtaclientMainTest, StartupErrorsExitOneWithTheReason) {
  struct Case {
    std::string ecu_info;
    std::vector<std::string> flags;
    std::string message_part;
  };
  const std::string slots = (temp_->path() / "slots").string();
  // GRUB pointed at a plain directory (never the host's /boot): refused, nothing written.
  const std::string no_boot = (temp_->path() / "no-boot").string();
  const std::string bad_port_file = (temp_->path() / "no-such-dir" / "otaclient.port").string();
  const Case cases[] = {
      {"ecu_id: [broken\n", {"--dir-slots-root", slots}, "ecu_info.yml"},
      {"ecu_id: e\nbootloader: grub\n",
       {"--dir-slots-root", slots, "--grub-boot-dir", no_boot},
       "cannot create the boot controller"},
      {"ecu_id: e\n",
       {"--dir-slots-root", slots, "--grub-boot-dir", no_boot, "--boot-backend", "grub"},
       "cannot create the boot controller"},
      {"ecu_id: e\nbootloader: dir\n", {}, "needs --dir-slots-root"},
      {"ecu_id: e\nip_addr: 192.0.2.1\nbootloader: dir\n",
       {"--dir-slots-root", slots, "--listen-port", "0"},
       "cannot listen for gRPC on 192.0.2.1:0"},
      // The port file cannot be written (its directory is missing): no daemon that nobody finds.
      {"ecu_id: e\nip_addr: 127.0.0.1\nbootloader: dir\n",
       {"--dir-slots-root", slots, "--listen-port", "0", "--port-file", bad_port_file},
       StrCat("otaclient: cannot write the port file ", bad_port_file, ": ")},
  };
  for (const Case& c : cases) {
    WriteConfig("ecu_info.yml", c.ecu_info);
    const ProcessResult result = RunProcess(Command(c.flags));
    EXPECT_EQ(result.exit_code, 1) << c.ecu_info << result.err;
    EXPECT_NE(result.err.find(c.message_part), std::string::npos)
        << "want: " << c.message_part << "\ngot: " << result.err;
  }
}

TEST_F(OtaclientMainTest, FlagErrorsExitTwoAndHelpExitsZero) {
  // (--listen-port 0 is valid: any free port, ServesStatusAndStopsOnSigterm runs with it.)
  const std::vector<std::vector<std::string>> bad = {
      {"--bogus"},
      {"--listen-port", "-1"},
      {"--listen-port", "70000"},
      {"--listen-port", "12x"},
      {"--port-file"},
      {"--port-file="},
      {"--download-parallel", "0"},
      {"--boot-backend", "uefi"},
      {"--log-level", "loud"},
      {"--no-reboot=yes"},
      {"--config-dir"},
  };
  for (const auto& flags : bad) {
    const ProcessResult result = RunProcess(Command(flags));
    EXPECT_EQ(result.exit_code, 2) << flags[0] << ": " << result.err;
    EXPECT_NE(result.err.find("otaclient: "), std::string::npos) << result.err;
  }
  const ProcessResult help = RunProcess({kOtaclient, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--dir-slots-root"), std::string::npos);
}

}  // namespace
}  // namespace ota::service
