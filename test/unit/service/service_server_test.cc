// The OtaClientService served for real: gRPC server on 127.0.0.1 with a kernel-chosen port, the
// real update engine over a DirBootController on a temp root and the libcurl fetcher. Also
// reflection, health, and the otactl binary against it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/http/curl_fetcher.h"
#include "common/util/strings.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "otaclient/boot/dir_boot_controller.h"
#include "otaclient/service/ota_client_service.h"
#include "otaclient/service/server.h"
#include "otaclient/service/version.h"
#include "otaclient/update/boot_confirmation.h"
#include "otaclient/update/client_update.h"
#include "otaclient/update/update_engine.h"
#include "test/unit/service/test_support.h"

namespace ota::service {
namespace {

using testing::ClosedPort;
using testing::PhaseGate;
using testing::ProcessResult;
using testing::RunProcess;

constexpr char kOtactl[] = OTA_BINARY_DIR "/tools/otactl/otactl";

class ServiceServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("service-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_ = std::make_unique<fs::TempDir>(std::move(*dir));
    std::filesystem::create_directories(temp_->path() / "certs");

    boot::DirBootOptions boot_options;
    boot_options.root = temp_->path() / "slots";
    boot_options.reboot_hook = [] { return absl::OkStatus(); };
    auto boot = boot::DirBootController::Create(boot_options);
    ASSERT_TRUE(boot.ok()) << boot.status();
    auto state = (*boot)->ConfirmBoot();
    ASSERT_TRUE(state.ok()) << state.status();

    update::EngineOptions options;
    options.certs_dir = temp_->path() / "certs";
    // No CA is installed: these updates fail fetching the metadata, before any signature is
    // checked (without this, an empty CA store refuses every update first: E309).
    options.allow_unverified_dev = true;
    // The dir backend's rollback check reads a few files: refused synchronously however loaded
    // the machine is.
    options.rollback_check_wait = std::chrono::minutes(1);
    options.reboot_after_update = false;
    options.fetcher.max_attempts = 1;
    options.fetcher.connect_timeout_s = 2;
    options.test_phase_hook = [this](std::string_view phase) { gate_.OnPhase(phase); };
    engine_ = update::CreateUpdateEngine(
        options, std::move(*boot), *state,
        [](const http::FetcherConfig& config) { return http::CreateCurlFetcher(config); });

    ServiceConfig config;
    config.ecu_id = "main";
    config.available_ecu_ids = {"main", "sub1", "sub2"};
    config.secondary_ecu_ids = {"sub1"};
    config.otaclient_version = std::string(OtaClientVersion());
    service_ = std::make_unique<OtaClientServiceImpl>(*engine_, config);

    auto server = StartServer(*service_, ServerOptions{.listen_address = "127.0.0.1", .port = 0});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_.port, 0);
    target_ = StrCat("127.0.0.1:", server_.port);
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    channel_ = grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args);
    stub_ = OtaClientV2::OtaClientService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_.server) server_.server->Shutdown();
    // A session held in a phase must be let go before the engine joins it.
    gate_.Release();
    engine_.reset();
  }

  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return context;
  }

  OtaClientV2::StatusResponse GetStatus() {
    OtaClientV2::StatusResponse response;
    const grpc::Status rpc = stub_->Status(Context().get(), {}, &response);
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    return response;
  }

  OtaClientV2::UpdateResponse Update(const OtaClientV2::UpdateRequest& request,
                                     std::chrono::milliseconds* took = nullptr) {
    OtaClientV2::UpdateResponse response;
    const auto start = std::chrono::steady_clock::now();
    const grpc::Status rpc = stub_->Update(Context().get(), request, &response);
    if (took) {
      *took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
    }
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    return response;
  }

  static OtaClientV2::UpdateRequest OneEntry(const std::string& ecu_id, const std::string& url,
                                             const std::string& cookies = "") {
    OtaClientV2::UpdateRequest request;
    auto* entry = request.add_ecu();
    entry->set_ecu_id(ecu_id);
    entry->set_version("2.0.0");
    entry->set_url(url);
    entry->set_cookies(cookies);
    return request;
  }

  std::unique_ptr<fs::TempDir> temp_;
  PhaseGate gate_;
  std::unique_ptr<update::UpdateEngine> engine_;
  std::unique_ptr<OtaClientServiceImpl> service_;
  RunningServer server_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<OtaClientV2::OtaClientService::Stub> stub_;
};

TEST_F(ServiceServerTest, StatusListsAvailableEcusAndBothViewsOfThisEcu) {
  const OtaClientV2::StatusResponse status = GetStatus();
  ASSERT_EQ(status.available_ecu_ids_size(), 3);
  EXPECT_EQ(status.available_ecu_ids(0), "main");
  EXPECT_EQ(status.available_ecu_ids(1), "sub1");
  EXPECT_EQ(status.available_ecu_ids(2), "sub2");
  ASSERT_EQ(status.ecu_v2_size(), 1);
  const auto& v2 = status.ecu_v2(0);
  EXPECT_EQ(v2.ecu_id(), "main");
  EXPECT_EQ(v2.ota_status(), OtaClientV2::INITIALIZED);
  EXPECT_EQ(v2.otaclient_version(), std::string(OtaClientVersion()));
  EXPECT_FALSE(v2.otaclient_version().empty());
  EXPECT_FALSE(v2.has_update_status());
  ASSERT_TRUE(v2.has_failure_type());
  EXPECT_EQ(v2.failure_type(), OtaClientV2::NO_FAILURE);
  ASSERT_EQ(status.ecu_size(), 1);
  EXPECT_EQ(status.ecu(0).ecu_id(), "main");
  EXPECT_EQ(status.ecu(0).result(), OtaClientV2::NO_FAILURE);
  EXPECT_EQ(status.ecu(0).status().status(), OtaClientV2::INITIALIZED);
  EXPECT_TRUE(status.ecu(0).status().has_progress());
  // failure_type and failure_reason are on every entry, as upstream fills them.
  ASSERT_TRUE(status.ecu_v2(0).has_failure_type());
  EXPECT_EQ(status.ecu_v2(0).failure_type(), OtaClientV2::NO_FAILURE);
  ASSERT_TRUE(status.ecu_v2(0).has_failure_reason());
  EXPECT_EQ(status.ecu_v2(0).failure_reason(), "");
  EXPECT_FALSE(status.ecu_v2(0).has_update_status());
}

TEST_F(ServiceServerTest, BadUrlOrCookiesAreRecoverableAndChangeNothing) {
  struct Case {
    std::string url, cookies, message_part;
  };
  const Case cases[] = {
      {"ftp://127.0.0.1/img", "", "http:// or https://"},
      {"not a url", "", "http:// or https://"},
      {"http:///img", "", "no host"},
      {"http://127.0.0.1/img", "{not json", "cookies"},
      {"http://127.0.0.1/img", "[\"a\"]", "cookies"},
  };
  for (const Case& c : cases) {
    std::chrono::milliseconds took{};
    const auto response = Update(OneEntry("main", c.url, c.cookies), &took);
    ASSERT_EQ(response.ecu_size(), 1) << c.url;
    EXPECT_EQ(response.ecu(0).ecu_id(), "main");
    EXPECT_EQ(response.ecu(0).result(), OtaClientV2::RECOVERABLE) << c.url << " " << c.cookies;
    EXPECT_NE(response.ecu(0).message().find(c.message_part), std::string::npos)
        << response.ecu(0).message();
    EXPECT_LT(took.count(), 1000);
  }
  EXPECT_EQ(GetStatus().ecu_v2(0).ota_status(), OtaClientV2::INITIALIZED);
}

TEST_F(ServiceServerTest, StatusIsNeverRefusedWhileManyCallsAreInFlight) {
  // 128 callers with one call in flight each, 1,024 calls in all: far more than the synchronous
  // server's thread cap (16), which used to answer the surplus RESOURCE_EXHAUSTED.
  constexpr int kCallers = 128;
  constexpr int kCallsEach = 8;
  std::atomic<int> failures{0};
  std::atomic<int> wrong{0};
  std::string first_error;
  std::mutex first_error_mu;
  std::vector<std::thread> callers;
  callers.reserve(kCallers);
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < kCallsEach; ++i) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        OtaClientV2::StatusResponse response;
        const grpc::Status rpc = stub_->Status(&context, {}, &response);
        if (!rpc.ok()) {
          failures++;
          std::lock_guard lock(first_error_mu);
          if (first_error.empty()) first_error = rpc.error_message();
        } else if (response.ecu_v2_size() != 1 || response.ecu_v2(0).ecu_id() != "main") {
          wrong++;
        }
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0) << "first error: " << first_error;
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(ServiceServerTest, OversizedRequestsAreRefusedWholeAndChangeNothing) {
  const auto call_update = [&](const OtaClientV2::UpdateRequest& request) {
    OtaClientV2::UpdateResponse response;
    const grpc::Status rpc = stub_->Update(Context().get(), request, &response);
    EXPECT_EQ(response.ecu_size(), 0) << "a refused request has no per-ECU answers";
    return rpc;
  };
  // A field over its limit: the call fails, naming the field, its size and the limit.
  OtaClientV2::UpdateRequest long_url =
      OneEntry("main", "http://127.0.0.1/" + std::string(100 * 1024, 'a'));
  grpc::Status rpc = call_update(long_url);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(rpc.error_message(),
            "UpdateRequest: ecu[0].url is 102417 bytes; at most 8192 are accepted");

  OtaClientV2::UpdateRequest long_version = OneEntry("main", "http://127.0.0.1/img");
  long_version.mutable_ecu(0)->set_version(std::string(4096, 'v'));
  rpc = call_update(long_version);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(rpc.error_message(), ::testing::HasSubstr("ecu[0].version is 4096 bytes"));

  OtaClientV2::UpdateRequest many;
  for (int i = 0; i < 300; ++i) *many.add_ecu() = OneEntry(StrCat("ecu", i), "http://x/").ecu(0);
  rpc = call_update(many);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(rpc.error_message(), "UpdateRequest: 300 ECU entries; at most 256 are accepted");

  // A message over 1 MiB is not even read: gRPC refuses it.
  rpc = call_update(OneEntry("main", "http://127.0.0.1/" + std::string(3 << 20, 'a')));
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << rpc.error_message();

  OtaClientV2::AbortRequest abort;
  abort.add_ecu()->set_ecu_id(std::string(1000, 'e'));
  OtaClientV2::AbortResponse abort_response;
  rpc = stub_->Abort(Context().get(), abort, &abort_response);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(rpc.error_message(),
            "AbortRequest: ecu[0].ecu_id is 1000 bytes; at most 256 are accepted");

  OtaClientV2::RollbackRequest rollback;
  rollback.set_request_id(std::string(300, 'r'));
  rollback.add_ecu()->set_ecu_id("main");
  OtaClientV2::RollbackResponse rollback_response;
  rpc = stub_->Rollback(Context().get(), rollback, &rollback_response);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(rpc.error_message(), ::testing::HasSubstr("request_id is 300 bytes"));

  // At the limits a request reaches the engine, which judges the content (not an http URL).
  OtaClientV2::UpdateRequest at_limit = OneEntry("main", "ftp://h/" + std::string(8192 - 8, 'a'));
  at_limit.mutable_ecu(0)->set_version(std::string(1024, 'v'));
  const auto judged = Update(at_limit);
  ASSERT_EQ(judged.ecu_size(), 1);
  EXPECT_EQ(judged.ecu(0).result(), OtaClientV2::RECOVERABLE);
  EXPECT_THAT(judged.ecu(0).message(), ::testing::HasSubstr("http:// or https://"));
  EXPECT_EQ(GetStatus().ecu_v2(0).ota_status(), OtaClientV2::INITIALIZED);
}

TEST_F(ServiceServerTest, OtherEcusAreUnknownWithoutSecondaries) {
  // This service has no EcuTree with children: every other id is answered "unknown" (the prefix
  // a parent ECU uses to tell such answers from real ones, otaclient/ecu/fanout.h).
  OtaClientV2::UpdateRequest request;
  for (const char* id : {"nope", "sub1", "sub2"}) {
    auto* entry = request.add_ecu();
    entry->set_ecu_id(id);
    entry->set_version("2");
    entry->set_url("http://127.0.0.1/img");
  }
  const auto response = Update(request);
  ASSERT_EQ(response.ecu_size(), 3);
  for (int i : {0, 1, 2}) {
    EXPECT_EQ(response.ecu(i).ecu_id(), request.ecu(i).ecu_id());
    EXPECT_EQ(response.ecu(i).result(), OtaClientV2::RECOVERABLE);
    EXPECT_EQ(response.ecu(i).message(),
              StrCat("unknown ECU id \"", response.ecu(i).ecu_id(),
                     "\": neither main nor any ECU reported by its secondaries"));
  }
  // Nothing was addressed to this ECU: it did not start anything.
  EXPECT_EQ(GetStatus().ecu_v2(0).ota_status(), OtaClientV2::INITIALIZED);
}

TEST_F(ServiceServerTest, AcceptedUpdateShowsProgressIsBusyThenFailsRecoverably) {
  ClosedPort dead_server;
  ASSERT_GT(dead_server.port(), 0);
  const std::string url = StrCat("http://127.0.0.1:", dead_server.port(), "/image");
  gate_.HoldIn("ProcessingMetadata");

  // Own entry answered first, the other ECU after it.
  OtaClientV2::UpdateRequest request = OneEntry("sub1", "http://127.0.0.1/x");
  *request.add_ecu() = OneEntry("main", url).ecu(0);
  std::chrono::milliseconds took{};
  const auto accepted = Update(request, &took);
  ASSERT_EQ(accepted.ecu_size(), 2);
  EXPECT_EQ(accepted.ecu(0).ecu_id(), "main");
  EXPECT_EQ(accepted.ecu(0).result(), OtaClientV2::NO_FAILURE) << accepted.ecu(0).message();
  EXPECT_EQ(accepted.ecu(1).ecu_id(), "sub1");
  EXPECT_LT(took.count(), 1000);

  ASSERT_TRUE(gate_.WaitFor("ProcessingMetadata"));
  const auto updating = GetStatus();
  const auto& v2 = updating.ecu_v2(0);
  EXPECT_EQ(v2.ota_status(), OtaClientV2::UPDATING);
  ASSERT_TRUE(v2.has_update_status());
  EXPECT_EQ(v2.update_status().phase(), OtaClientV2::PROCESSING_METADATA);
  EXPECT_EQ(v2.update_status().update_firmware_version(), "2.0.0");
  EXPECT_GT(v2.update_status().update_start_timestamp(), 1600000000u);
  EXPECT_EQ(updating.ecu(0).status().status(), OtaClientV2::UPDATING);
  EXPECT_EQ(updating.ecu(0).status().progress().phase(), OtaClientV2::METADATA);

  // A second request while busy is rejected and disturbs nothing.
  const auto busy = Update(OneEntry("main", url));
  ASSERT_EQ(busy.ecu_size(), 1);
  EXPECT_EQ(busy.ecu(0).result(), OtaClientV2::RECOVERABLE);
  EXPECT_FALSE(busy.ecu(0).message().empty());
  EXPECT_EQ(GetStatus().ecu_v2(0).ota_status(), OtaClientV2::UPDATING);

  gate_.Release();
  ASSERT_TRUE(gate_.WaitFor("Failed"));
  const auto failed = GetStatus();
  const auto& f2 = failed.ecu_v2(0);
  EXPECT_EQ(f2.ota_status(), OtaClientV2::FAILURE);
  ASSERT_TRUE(f2.has_failure_type());
  EXPECT_EQ(f2.failure_type(), OtaClientV2::RECOVERABLE);
  // Nothing listens: the metadata cannot be fetched, upstream's E101.
  EXPECT_TRUE(f2.failure_reason().starts_with(
      "E101: failed to download OTA meta due to network unstable, please check the network "
      "connection: "))
      << f2.failure_reason();
  EXPECT_NE(f2.failure_reason().find(url), std::string::npos) << f2.failure_reason();
  EXPECT_FALSE(f2.has_update_status());
  EXPECT_EQ(failed.ecu(0).status().status(), OtaClientV2::FAILURE);
  EXPECT_EQ(failed.ecu(0).status().failure(), OtaClientV2::RECOVERABLE);
  EXPECT_EQ(failed.ecu(0).status().failure_reason(), f2.failure_reason());
}

// ClientUpdate beside the real engine, through a second server whose service has a
// ClientUpdater (its preparation injected and held): CLIENT_UPDATING, Update and a second
// ClientUpdate refused, Abort answered as upstream, the failure reported until an Update is
// accepted; a ClientUpdate while an update runs is refused.
TEST_F(ServiceServerTest, ClientUpdateStateBesideTheEngine) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  update::ClientUpdater updater(
      [released](const update::UpdateRequestParams&,
                 const http::CancelFlag&) -> absl::StatusOr<std::optional<update::StagedClient>> {
        released.wait();
        return absl::FailedPreconditionError("the image has no otaclient-cpp package");
      },
      [](const update::StagedClient&) {});
  ServiceConfig config;
  config.ecu_id = "main";
  config.otaclient_version = "1";
  OtaClientServiceImpl service(*engine_, config, nullptr, &updater);
  auto server = StartServer(service, ServerOptions{.listen_address = "127.0.0.1", .port = 0});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = OtaClientV2::OtaClientService::NewStub(
      grpc::CreateChannel(StrCat("127.0.0.1:", server->port), grpc::InsecureChannelCredentials()));
  auto status = [&] {
    OtaClientV2::StatusResponse response;
    EXPECT_TRUE(stub->Status(Context().get(), {}, &response).ok());
    return response.ecu_v2(0);
  };
  auto client_update = [&] {
    OtaClientV2::UpdateResponse response;
    EXPECT_TRUE(
        stub->ClientUpdate(Context().get(), OneEntry("main", "http://127.0.0.1/c"), &response)
            .ok());
    EXPECT_EQ(response.ecu_size(), 1);
    return response.ecu(0);
  };

  const auto accepted = client_update();
  EXPECT_EQ(accepted.result(), OtaClientV2::NO_FAILURE) << accepted.message();
  EXPECT_EQ(accepted.message(), "");
  EXPECT_EQ(status().ota_status(), OtaClientV2::CLIENT_UPDATING);
  const auto again = client_update();
  EXPECT_EQ(again.result(), OtaClientV2::RECOVERABLE);
  EXPECT_THAT(again.message(), ::testing::HasSubstr("already in progress"));

  OtaClientV2::UpdateResponse update;
  ASSERT_TRUE(stub->Update(Context().get(), OneEntry("main", "http://127.0.0.1/x"), &update).ok());
  EXPECT_EQ(update.ecu(0).result(), OtaClientV2::RECOVERABLE);
  EXPECT_THAT(update.ecu(0).message(), ::testing::HasSubstr("client update (ClientUpdate)"));
  OtaClientV2::AbortRequest abort;
  abort.add_ecu()->set_ecu_id("main");
  OtaClientV2::AbortResponse abort_response;
  ASSERT_TRUE(stub->Abort(Context().get(), abort, &abort_response).ok());
  EXPECT_EQ(abort_response.ecu(0).result(), OtaClientV2::ABORT_FAILURE);
  // A rollback reboots: not under a client update either.
  OtaClientV2::RollbackRequest rollback;
  rollback.add_ecu()->set_ecu_id("main");
  OtaClientV2::RollbackResponse rollback_response;
  ASSERT_TRUE(stub->Rollback(Context().get(), rollback, &rollback_response).ok());
  EXPECT_EQ(rollback_response.ecu(0).result(), OtaClientV2::RECOVERABLE);
  EXPECT_EQ(rollback_response.ecu(0).message(),
            "ECU main: a client update (ClientUpdate) is in progress");
  EXPECT_EQ(status().ota_status(), OtaClientV2::CLIENT_UPDATING);

  release.set_value();
  updater.WaitForPreparation();
  const auto failed = status();
  EXPECT_EQ(failed.ota_status(), OtaClientV2::FAILURE);
  EXPECT_EQ(failed.failure_type(), OtaClientV2::RECOVERABLE);
  EXPECT_THAT(failed.failure_reason(), ::testing::StartsWith("E203: "));
  EXPECT_THAT(failed.failure_reason(),
              ::testing::HasSubstr("client update: the image has no otaclient-cpp package"));

  // An accepted Update replaces the result; a ClientUpdate while it runs is refused.
  ClosedPort dead_server;
  gate_.HoldIn("ProcessingMetadata");
  ASSERT_TRUE(stub->Update(Context().get(),
                           OneEntry("main", StrCat("http://127.0.0.1:", dead_server.port(), "/i")),
                           &update)
                  .ok());
  EXPECT_EQ(update.ecu(0).result(), OtaClientV2::NO_FAILURE) << update.ecu(0).message();
  ASSERT_TRUE(gate_.WaitFor("ProcessingMetadata"));
  EXPECT_EQ(status().ota_status(), OtaClientV2::UPDATING);
  const auto busy = client_update();
  EXPECT_EQ(busy.result(), OtaClientV2::RECOVERABLE);
  EXPECT_THAT(busy.message(), ::testing::HasSubstr("is busy"));
  gate_.Release();
  ASSERT_TRUE(gate_.WaitFor("Failed"));
  EXPECT_THAT(status().failure_reason(), ::testing::Not(::testing::HasSubstr("client update")));
  server->server->Shutdown();
}

// Health-gated commit (boot_confirmation.h) seen through the service: while the new slot's
// check runs, and after it failed (the slot rejected, the reboot back to the old slot pending),
// ClientUpdate and Update are refused with the reason; no client update is started.
TEST_F(ServiceServerTest, ClientUpdateAndUpdateAreRefusedWhileTheNewSlotIsCheckedOrRejected) {
  const std::filesystem::path root = temp_->path() / "gated";
  std::filesystem::create_directories(root / "boot/slot_a");
  ASSERT_TRUE(fs::WriteFileAtomic(root / "boot/slot_a/version", "v1").ok());
  std::atomic<int> reboots{0};
  auto controller = [&] {
    boot::DirBootOptions options;
    options.root = root;
    options.reboot_hook = [&reboots] {
      reboots.fetch_add(1);  // the machine would go down now; here it serves on
      return absl::OkStatus();
    };
    auto created = boot::DirBootController::Create(std::move(options));
    EXPECT_TRUE(created.ok()) << created.status();
    return std::move(*created);
  };
  {
    auto old = controller();
    ASSERT_TRUE(old->ConfirmBoot().ok());
    constexpr std::string_view kKeep[] = {"/.ota-resources"};
    ASSERT_TRUE(old->PrepareStandby("v2", kKeep).ok());
    ASSERT_TRUE(old->CommitSwitch().ok());
  }
  auto fresh = controller();
  fresh->DeferConfirmation();
  auto pending = fresh->ConfirmBoot();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_TRUE(pending->confirmation_pending);
  const std::filesystem::path gate = temp_->path() / "gate";
  ASSERT_EQ(::mkfifo(gate.c_str(), 0600), 0);
  update::HealthCheckOptions check;
  check.command = StrCat("read answer < ", gate.string(), "; echo \"app $answer\" >&2; exit 1");
  update::BootConfirmationEngine engine(
      std::move(fresh), *pending, check, /*reboot_on_failure=*/true,
      [](std::unique_ptr<boot::BootController> confirmed, const boot::BootState& state) {
        return update::CreateUpdateEngine(update::EngineOptions{}, std::move(confirmed), state,
                                          nullptr);
      });
  std::atomic<int> prepared{0};
  update::ClientUpdater updater(
      [&prepared](const update::UpdateRequestParams&,
                  const http::CancelFlag&) -> absl::StatusOr<std::optional<update::StagedClient>> {
        prepared.fetch_add(1);
        return std::optional<update::StagedClient>();
      },
      [](const update::StagedClient&) {});
  ServiceConfig config;
  config.ecu_id = "main";
  config.otaclient_version = "1";
  OtaClientServiceImpl service(engine, config, nullptr, &updater);
  auto server = StartServer(service, ServerOptions{.listen_address = "127.0.0.1", .port = 0});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = OtaClientV2::OtaClientService::NewStub(
      grpc::CreateChannel(StrCat("127.0.0.1:", server->port), grpc::InsecureChannelCredentials()));
  auto call = [&](bool client_update) {
    OtaClientV2::UpdateResponse response;
    const auto request = OneEntry("main", "http://127.0.0.1/c");
    EXPECT_TRUE((client_update ? stub->ClientUpdate(Context().get(), request, &response)
                               : stub->Update(Context().get(), request, &response))
                    .ok());
    EXPECT_EQ(response.ecu_size(), 1);
    return response.ecu_size() == 1 ? response.ecu(0) : OtaClientV2::UpdateResponseEcu();
  };
  engine.Start();

  // The check waits on the fifo: no verdict yet.
  const auto checking = call(/*client_update=*/true);
  EXPECT_EQ(checking.result(), OtaClientV2::RECOVERABLE);
  EXPECT_EQ(checking.message(),
            "ECU main is busy: the new slot is being confirmed: its health check is running");
  EXPECT_EQ(call(/*client_update=*/false).message(),
            "the new slot is being confirmed: its health check is running");

  {
    std::ofstream to_check(gate);  // opens once the command reads
    to_check << "down\n";
  }
  engine.WaitUntilDone();
  ASSERT_EQ(reboots.load(), 1);
  const std::string reason = StrCat(
      "the new slot failed its health check; the ECU returns to the old slot: "
      "health check failed: command '",
      check.command, "' exit 1: app down");
  const auto rejected = call(/*client_update=*/true);
  EXPECT_EQ(rejected.result(), OtaClientV2::RECOVERABLE);
  EXPECT_EQ(rejected.message(), StrCat("ECU main is busy: ", reason));
  const auto update = call(/*client_update=*/false);
  EXPECT_EQ(update.result(), OtaClientV2::RECOVERABLE);
  EXPECT_EQ(update.message(), reason);
  EXPECT_EQ(prepared.load(), 0);
  OtaClientV2::StatusResponse status;
  ASSERT_TRUE(stub->Status(Context().get(), {}, &status).ok());
  EXPECT_EQ(status.ecu_v2(0).ota_status(), OtaClientV2::FAILURE);
  server->server->Shutdown();
}

TEST_F(ServiceServerTest, IdleAbortAndRollbackAreRefusedPerEcuAndClientUpdateUnsupported) {
  // Nothing runs: the engine refuses both (or answers "not implemented" while the engine part
  // is missing); either way a per-ECU failure naming this ECU, never an RPC error.
  OtaClientV2::RollbackRequest rollback;
  rollback.add_ecu()->set_ecu_id("main");
  rollback.add_ecu()->set_ecu_id("sub1");
  OtaClientV2::RollbackResponse rollback_response;
  ASSERT_TRUE(stub_->Rollback(Context().get(), rollback, &rollback_response).ok());
  ASSERT_EQ(rollback_response.ecu_size(), 2);
  EXPECT_EQ(rollback_response.ecu(0).ecu_id(), "main");
  EXPECT_NE(rollback_response.ecu(0).result(), OtaClientV2::NO_FAILURE);
  EXPECT_TRUE(rollback_response.ecu(0).message().starts_with("ECU main: "))
      << rollback_response.ecu(0).message();
  EXPECT_EQ(rollback_response.ecu(1).ecu_id(), "sub1");
  EXPECT_EQ(rollback_response.ecu(1).result(), OtaClientV2::RECOVERABLE);

  // Abort reaches this ECU whatever the request lists (nothing, another ECU), as upstream, and
  // answers once with upstream's words.
  for (const std::vector<std::string>& listed :
       {std::vector<std::string>{"main"}, std::vector<std::string>{},
        std::vector<std::string>{"sub1", "sub2"}}) {
    OtaClientV2::AbortRequest abort;
    for (const std::string& id : listed) abort.add_ecu()->set_ecu_id(id);
    OtaClientV2::AbortResponse abort_response;
    ASSERT_TRUE(stub_->Abort(Context().get(), abort, &abort_response).ok());
    ASSERT_EQ(abort_response.ecu_size(), 1) << listed.size();
    EXPECT_EQ(abort_response.ecu(0).ecu_id(), "main");
    EXPECT_EQ(abort_response.ecu(0).result(), OtaClientV2::ABORT_FAILURE);
    EXPECT_EQ(abort_response.ecu(0).message(), "Cannot abort: no active OTA update in progress");
  }

  OtaClientV2::UpdateResponse client_update;
  ASSERT_TRUE(
      stub_->ClientUpdate(Context().get(), OneEntry("main", "http://127.0.0.1/c"), &client_update)
          .ok());
  ASSERT_EQ(client_update.ecu_size(), 1);
  EXPECT_EQ(client_update.ecu(0).result(), OtaClientV2::RECOVERABLE);
  EXPECT_EQ(client_update.ecu(0).message(), "ClientUpdate is not supported yet");
  EXPECT_EQ(GetStatus().ecu_v2(0).ota_status(), OtaClientV2::INITIALIZED);
}

// ecu_info missing or invalid (ServiceConfig::ecu_info_error): Status as usual; Update,
// ClientUpdate and Rollback answered UNRECOVERABLE for every entry with the error, nothing
// started; Abort still handled.
TEST_F(ServiceServerTest, UnusableEcuInfoRefusesUpdatesWithTheErrorAndServesStatus) {
  ServiceConfig config;
  config.ecu_id = "autoware";
  config.otaclient_version = "9.9.9";
  config.ecu_info_error = absl::InvalidArgumentError(
      "/boot/ota/ecu_info.yaml:3: field \"secondaries[0].port\": expected an integer 1-65535");
  OtaClientServiceImpl refusing(*engine_, config);
  auto server = StartServer(refusing, ServerOptions{.listen_address = "127.0.0.1", .port = 0});
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  auto stub = OtaClientV2::OtaClientService::NewStub(grpc::CreateCustomChannel(
      StrCat("127.0.0.1:", server->port), grpc::InsecureChannelCredentials(), args));

  OtaClientV2::UpdateRequest request = OneEntry("autoware", "http://127.0.0.1/x");
  *request.add_ecu() = OneEntry("sub1", "http://127.0.0.1/x").ecu(0);
  const std::string expected_message =
      "ECU autoware refuses Update: ecu_info is unusable (/boot/ota/ecu_info.yaml:3: field "
      "\"secondaries[0].port\": expected an integer 1-65535); fix it and restart otaclient";
  OtaClientV2::UpdateResponse update;
  ASSERT_TRUE(stub->Update(Context().get(), request, &update).ok());
  ASSERT_EQ(update.ecu_size(), 2);
  for (int i : {0, 1}) {
    EXPECT_EQ(update.ecu(i).ecu_id(), request.ecu(i).ecu_id());
    EXPECT_EQ(update.ecu(i).result(), OtaClientV2::UNRECOVERABLE);
    EXPECT_EQ(update.ecu(i).message(), expected_message);
  }
  OtaClientV2::UpdateResponse client_update;
  ASSERT_TRUE(stub->ClientUpdate(Context().get(), request, &client_update).ok());
  ASSERT_EQ(client_update.ecu_size(), 2);
  EXPECT_EQ(client_update.ecu(0).result(), OtaClientV2::UNRECOVERABLE);
  EXPECT_NE(client_update.ecu(0).message().find("refuses ClientUpdate: ecu_info is unusable"),
            std::string::npos);
  OtaClientV2::RollbackRequest rollback;
  rollback.add_ecu()->set_ecu_id("autoware");
  OtaClientV2::RollbackResponse rollback_response;
  ASSERT_TRUE(stub->Rollback(Context().get(), rollback, &rollback_response).ok());
  ASSERT_EQ(rollback_response.ecu_size(), 1);
  EXPECT_EQ(rollback_response.ecu(0).result(), OtaClientV2::UNRECOVERABLE);

  OtaClientV2::StatusResponse status;
  ASSERT_TRUE(stub->Status(Context().get(), {}, &status).ok());
  ASSERT_EQ(status.ecu_v2_size(), 1);
  EXPECT_EQ(status.ecu_v2(0).ecu_id(), "autoware");
  EXPECT_EQ(status.ecu_v2(0).ota_status(), OtaClientV2::INITIALIZED);  // nothing started
  ASSERT_EQ(status.available_ecu_ids_size(), 1);
  EXPECT_EQ(status.available_ecu_ids(0), "autoware");

  OtaClientV2::AbortRequest abort;
  OtaClientV2::AbortResponse abort_response;
  ASSERT_TRUE(stub->Abort(Context().get(), abort, &abort_response).ok());
  ASSERT_EQ(abort_response.ecu_size(), 1);
  EXPECT_EQ(abort_response.ecu(0).message(), "Cannot abort: no active OTA update in progress");
  server->server->Shutdown();
}

// Waits for one completion-queue event and checks it is `tag` and succeeded.
bool Await(grpc::CompletionQueue& cq, intptr_t tag) {
  void* got = nullptr;
  bool ok = false;
  return cq.Next(&got, &ok) && ok && got == reinterpret_cast<void*>(tag);
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

TEST_F(ServiceServerTest, ReflectionListsTheOtaClientService) {
  // grpc.reflection.v1alpha ServerReflectionRequest{list_services (7): "*"}, encoded by hand
  // since Debian ships no reflection client headers.
  google::protobuf::UnknownFieldSet request;
  request.AddLengthDelimited(7, "*");
  std::string request_bytes;
  ASSERT_TRUE(request.SerializeToString(&request_bytes));

  grpc::GenericStub stub(channel_);
  grpc::CompletionQueue cq;
  auto context = Context();
  auto call = stub.PrepareCall(
      context.get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(Await(cq, 1));
  call->Write(ToBuffer(request_bytes), reinterpret_cast<void*>(2));
  ASSERT_TRUE(Await(cq, 2));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(Await(cq, 3));
  call->WritesDone(reinterpret_cast<void*>(4));
  ASSERT_TRUE(Await(cq, 4));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(Await(cq, 5));
  EXPECT_TRUE(status.ok()) << status.error_message();

  // ServerReflectionResponse.list_services_response (6) → ListServiceResponse.service (1) →
  // ServiceResponse.name (1).
  google::protobuf::UnknownFieldSet parsed;
  ASSERT_TRUE(parsed.ParseFromString(FromBuffer(response)));
  std::vector<std::string> names;
  for (int i = 0; i < parsed.field_count(); ++i) {
    if (parsed.field(i).number() != 6) continue;
    google::protobuf::UnknownFieldSet list;
    ASSERT_TRUE(list.ParseFromString(parsed.field(i).length_delimited()));
    for (int j = 0; j < list.field_count(); ++j) {
      google::protobuf::UnknownFieldSet service;
      ASSERT_TRUE(service.ParseFromString(list.field(j).length_delimited()));
      ASSERT_GE(service.field_count(), 1);
      names.push_back(service.field(0).length_delimited());
    }
  }
  EXPECT_THAT(names, ::testing::Contains("OtaClientV2.OtaClientService"));
  cq.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (cq.Next(&ignored_tag, &ignored_ok)) {
  }
}

// grpc.health.v1.Health/Check for `service`; returns HealthCheckResponse.status (1 = SERVING).
int HealthStatus(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                 grpc::Status* rpc_status) {
  google::protobuf::UnknownFieldSet request;
  if (!service.empty()) request.AddLengthDelimited(1, service);
  std::string bytes;
  request.SerializeToString(&bytes);
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", ToBuffer(bytes), &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  call->Finish(&response, rpc_status, reinterpret_cast<void*>(1));
  EXPECT_TRUE(Await(cq, 1));
  cq.Shutdown();
  if (!rpc_status->ok()) return -1;
  google::protobuf::UnknownFieldSet parsed;
  if (!parsed.ParseFromString(FromBuffer(response))) return -2;
  for (int i = 0; i < parsed.field_count(); ++i) {
    if (parsed.field(i).number() == 1) return static_cast<int>(parsed.field(i).varint());
  }
  return 0;  // proto3 default: UNKNOWN
}

TEST_F(ServiceServerTest, HealthServiceAnswersServing) {
  grpc::Status rpc;
  EXPECT_EQ(HealthStatus(channel_, "", &rpc), 1) << rpc.error_message();
  EXPECT_EQ(HealthStatus(channel_, "OtaClientV2.OtaClientService", &rpc), 1) << rpc.error_message();
  EXPECT_EQ(HealthStatus(channel_, "no.such.Service", &rpc), -1);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServiceServerTest, OtactlStatusJsonIsTheStatusResponse) {
  const ProcessResult result =
      RunProcess({kOtactl, "status", "--json", "--target", target_, "--timeout", "5"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  OtaClientV2::StatusResponse parsed;
  const auto status = google::protobuf::util::JsonStringToMessage(result.out, &parsed);
  ASSERT_TRUE(status.ok()) << status.ToString() << "\n" << result.out;
  EXPECT_NE(result.out.find("\"available_ecu_ids\""), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("\"ota_status\": \"INITIALIZED\""), std::string::npos) << result.out;
  ASSERT_EQ(parsed.available_ecu_ids_size(), 3);
  ASSERT_EQ(parsed.ecu_v2_size(), 1);
  EXPECT_EQ(parsed.ecu_v2(0).ecu_id(), "main");
  EXPECT_EQ(parsed.ecu_v2(0).otaclient_version(), std::string(OtaClientVersion()));
  ASSERT_EQ(parsed.ecu_size(), 1);
}

TEST_F(ServiceServerTest, OtactlStatusTableAndUpdateExitCodes) {
  ProcessResult table = RunProcess({kOtactl, "status", "--target", target_});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("main"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("INITIALIZED"), std::string::npos) << table.out;

  // Rejected by the daemon (unknown ECU) → 1 with the daemon's message.
  ProcessResult rejected = RunProcess({kOtactl, "update", "--target", target_, "--ecu", "ghost",
                                       "--version", "1", "--url", "http://127.0.0.1/x"});
  EXPECT_EQ(rejected.exit_code, 1) << rejected.err;
  EXPECT_NE(rejected.out.find("unknown ECU id"), std::string::npos) << rejected.out;

  // Bad command line → 2, nothing sent.
  ProcessResult usage = RunProcess(
      {kOtactl, "update", "--target", target_, "--ecu", "main", "--url", "http://127.0.0.1/x"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("missing version"), std::string::npos) << usage.err;

  ProcessResult abort = RunProcess({kOtactl, "abort", "--target", target_, "--ecu", "main"});
  EXPECT_EQ(abort.exit_code, 1);
  // Nothing runs: refused by the engine, as this ECU's per-ECU answer.
  EXPECT_NE(abort.out.find("main  ABORT_FAILURE  Cannot abort: no active OTA update in progress"),
            std::string::npos)
      << abort.out;
}

TEST_F(ServiceServerTest, OtactlStatusExitsThreeWhileUpdating) {
  ClosedPort dead_server;
  gate_.HoldIn("ProcessingMetadata");
  const ProcessResult update = RunProcess(
      {kOtactl, "update", "--target", target_, "--ecu", "main", "--version", "9", "--url",
       StrCat("http://127.0.0.1:", dead_server.port(), "/img"), "--request-id", "r-1"});
  ASSERT_EQ(update.exit_code, 0) << update.out << update.err;
  EXPECT_NE(update.out.find("NO_FAILURE"), std::string::npos) << update.out;
  ASSERT_TRUE(gate_.WaitFor("ProcessingMetadata"));
  const ProcessResult status = RunProcess({kOtactl, "status", "--target", target_});
  EXPECT_EQ(status.exit_code, 3) << status.out << status.err;
  EXPECT_NE(status.out.find("PROCESSING_METADATA"), std::string::npos) << status.out;
  gate_.Release();
  ASSERT_TRUE(gate_.WaitFor("Failed"));
  const ProcessResult failed = RunProcess({kOtactl, "status", "--target", target_});
  EXPECT_EQ(failed.exit_code, 1) << failed.out << failed.err;
  EXPECT_NE(failed.out.find("FAILURE"), std::string::npos) << failed.out;
}

TEST(ServiceOtactlTest, DaemonDownExitsFour) {
  ClosedPort nobody;
  const std::string target = StrCat("127.0.0.1:", nobody.port());
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{kOtactl, "status", "--target", target},
        std::vector<std::string>{kOtactl, "status", "--json", "--watch", "--target", target},
        std::vector<std::string>{kOtactl, "update", "--target", target, "--ecu", "main",
                                 "--version", "1", "--url", "http://127.0.0.1/x"},
        std::vector<std::string>{kOtactl, "rollback", "--target", target}}) {
    const ProcessResult result = RunProcess(command);
    EXPECT_EQ(result.exit_code, 4) << command[1] << ": " << result.err;
    EXPECT_NE(result.err.find(StrCat("cannot reach otaclient at ", target, ": ")),
              std::string::npos)
        << result.err;
    EXPECT_TRUE(result.out.empty()) << result.out;
  }
}

TEST(ServiceOtactlTest, UsageErrorsExitTwoAndHelpExitsZero) {
  EXPECT_EQ(RunProcess({kOtactl}).exit_code, 2);
  EXPECT_EQ(RunProcess({kOtactl, "frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunProcess({kOtactl, "status", "--interval", "0", "--watch"}).exit_code, 2);
  EXPECT_EQ(RunProcess({kOtactl, "status", "--bogus"}).exit_code, 2);
  EXPECT_EQ(RunProcess({kOtactl, "abort", "--ecu"}).exit_code, 2);
  for (const char* command : {"status", "update", "abort", "rollback"}) {
    const ProcessResult help = RunProcess({kOtactl, command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_NE(help.out.find(StrCat("otactl ", command)), std::string::npos) << help.out;
  }
}

}  // namespace
}  // namespace ota::service
