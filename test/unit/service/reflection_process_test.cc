// Two real otaclient processes (a main ECU on 127.0.0.1 with one secondary on 127.0.0.2), talked
// to the way grpcurl does it: service list and descriptors from the server's reflection service,
// requests and answers as DynamicMessages over a GenericStub — this test links no generated code
// of our proto.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/grpcpp.h"
#include "test/lib/grpc_reflection_db.h"
#include "test/lib/ports/port_file.h"
#include "test/unit/service/test_support.h"

namespace ota::service {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::DynamicMessageFactory;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;
using testing::ChildProcess;
using Clock = std::chrono::steady_clock;

constexpr char kOtaclient[] = OTA_BINARY_DIR "/otaclient/otaclient";

std::shared_ptr<grpc::Channel> Channel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

class ReflectionProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("reflection-process-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_ = std::make_unique<fs::TempDir>(std::move(*dir));
    // Both on any free port; the secondary first, so the main's ecu_info can name its port.
    StartEcu("sub", "127.0.0.2", "", &sub_, &sub_port_);
    if (HasFatalFailure()) return;
    StartEcu("main", "127.0.0.1",
             StrCat("available_ecu_ids: [main, sub]\nsecondaries:\n  - {ecu_id: sub, ip_addr: "
                    "127.0.0.2, port: ",
                    sub_port_, "}\n"),
             &main_, &main_port_);
  }

  // Starts otaclient `id` on `ip`, port 0; sets *port from its port file.
  void StartEcu(const std::string& id, const std::string& ip, const std::string& extra,
                ChildProcess* process, int* port) {
    const auto config = temp_->path() / id / "config";
    std::filesystem::create_directories(config);
    ASSERT_TRUE(fs::WriteFileAtomic(config / "ecu_info.yaml",
                                    StrCat("format_version: 1\necu_id: ", id, "\nip_addr: ", ip,
                                           "\nbootloader: dir\n", extra))
                    .ok());
    ASSERT_TRUE(
        fs::WriteFileAtomic(config / "proxy_info.yaml", "enable_local_ota_proxy: false\n").ok());
    const auto port_file = temp_->path() / id / "otaclient.port";
    ASSERT_TRUE(
        process->Start({kOtaclient, "--config-dir", config.string(), "--certs-dir",
                        (temp_->path() / "certs").string(), "--dir-slots-root",
                        (temp_->path() / id / "slots").string(), "--listen-port", "0",
                        "--port-file", port_file.string(), "--no-reboot", "--poll-interval-idle",
                        "0.1", "--ecu-drop-timeout", "0.5", "--secondary-timeout", "1"}));
    const absl::StatusOr<int> bound =
        ota::testing::WaitForPortFile(port_file, process->pid(), std::chrono::seconds(20));
    ASSERT_TRUE(bound.ok()) << id << ": " << bound.status() << process->Wait().err;
    *port = *bound;
  }

  std::unique_ptr<fs::TempDir> temp_;
  int main_port_ = 0, sub_port_ = 0;
  ChildProcess main_, sub_;
};

TEST_F(ReflectionProcessTest, ListsTheServiceAndCallsStatusWithDescriptorsFromTheServer) {
  auto channel = Channel(StrCat("127.0.0.1:", main_port_));
  testlib::ReflectionDescriptorDatabase db(channel);
  std::vector<std::string> services;
  ASSERT_TRUE(Eventually([&] { return db.ListServices(&services); }, std::chrono::seconds(20)));
  EXPECT_NE(std::find(services.begin(), services.end(), "OtaClientV2.OtaClientService"),
            services.end())
      << ::testing::PrintToString(services);

  DescriptorPool pool(&db);
  const MethodDescriptor* method = pool.FindMethodByName("OtaClientV2.OtaClientService.Status");
  ASSERT_NE(method, nullptr);
  EXPECT_EQ(method->input_type()->full_name(), "OtaClientV2.StatusRequest");
  DynamicMessageFactory factory(&pool);
  std::unique_ptr<Message> request(factory.GetPrototype(method->input_type())->New());
  std::string request_bytes;
  ASSERT_TRUE(request->SerializeToString(&request_bytes));

  // ecu_v2[].ecu_id of a Status answer, read through reflection only.
  auto status_ids = [&](std::vector<std::string>* ids, std::vector<std::string>* available) {
    std::string reply;
    const grpc::Status rpc = testlib::GenericUnary(channel, "/OtaClientV2.OtaClientService/Status",
                                                   request_bytes, &reply);
    if (!rpc.ok()) return false;
    std::unique_ptr<Message> response(factory.GetPrototype(method->output_type())->New());
    if (!response->ParseFromString(reply)) return false;
    const Descriptor* type = response->GetDescriptor();
    const auto* reflection = response->GetReflection();
    const auto* ecu_v2 = type->FindFieldByName("ecu_v2");
    const auto* available_ids = type->FindFieldByName("available_ecu_ids");
    if (ecu_v2 == nullptr || available_ids == nullptr) return false;
    ids->clear();
    available->clear();
    for (int i = 0; i < reflection->FieldSize(*response, ecu_v2); ++i) {
      const Message& entry = reflection->GetRepeatedMessage(*response, ecu_v2, i);
      const auto* id_field = entry.GetDescriptor()->FindFieldByName("ecu_id");
      ids->push_back(entry.GetReflection()->GetString(entry, id_field));
    }
    for (int i = 0; i < reflection->FieldSize(*response, available_ids); ++i) {
      available->push_back(reflection->GetRepeatedString(*response, available_ids, i));
    }
    return true;
  };

  // The secondary's entry arrives through the main's poller.
  std::vector<std::string> ids, available;
  EXPECT_TRUE(Eventually(
      [&] {
        return status_ids(&ids, &available) && ids == std::vector<std::string>{"main", "sub"};
      },
      std::chrono::seconds(20)))
      << ::testing::PrintToString(ids);
  EXPECT_EQ(available, (std::vector<std::string>{"main", "sub"}));

  // Secondary gone: dropped from ecu_v2 after --ecu-drop-timeout, still in available_ecu_ids.
  ASSERT_EQ(kill(sub_.pid(), SIGKILL), 0);
  EXPECT_TRUE(Eventually(
      [&] { return status_ids(&ids, &available) && ids == std::vector<std::string>{"main"}; },
      std::chrono::seconds(10)))
      << ::testing::PrintToString(ids);
  EXPECT_EQ(available, (std::vector<std::string>{"main", "sub"}));
}

}  // namespace
}  // namespace ota::service
