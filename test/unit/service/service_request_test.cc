// How the service turns an UpdateRequest into the engine's request: field mapping, request ids,
// duplicate entries and the failure-type mapping, observed through a recording engine (the real
// engine is exercised in service_server_test.cc).
#include <gtest/gtest.h>

#include <cstdint>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "grpcpp/server_context.h"
#include "otaclient/service/ota_client_service.h"

namespace ota::service {
namespace {

class RecordingEngine : public update::UpdateEngine {
 public:
  absl::Status StartUpdate(const update::UpdateRequestParams& request) override {
    requests.push_back(request);
    return next_result;
  }
  update::StatusSnapshot Snapshot() const override { return {}; }

  std::vector<update::UpdateRequestParams> requests;
  absl::Status next_result;
};

ServiceConfig Config() {
  ServiceConfig config;
  config.ecu_id = "main";
  config.secondary_ecu_ids = {"sub1"};
  config.otaclient_version = "9.9.9";
  return config;
}

OtaClientV2::UpdateResponse CallUpdate(OtaClientServiceImpl& service,
                                       const OtaClientV2::UpdateRequest& request) {
  grpc::ServerContext context;
  OtaClientV2::UpdateResponse response;
  EXPECT_TRUE(service.Update(&context, &request, &response).ok());
  return response;
}

TEST(ServiceRequestTest, GeneratedRequestIdsAreUnixSecondsDashEightHexAndDiffer) {
  std::set<std::string> ids;
  const int64_t before = std::time(nullptr);
  for (int i = 0; i < 100; ++i) {
    const std::string id = GenerateRequestId();
    const size_t dash = id.find('-');
    ASSERT_NE(dash, std::string::npos) << id;
    const std::string seconds = id.substr(0, dash);
    const std::string random = id.substr(dash + 1);
    ASSERT_FALSE(seconds.empty()) << id;
    EXPECT_EQ(seconds.find_first_not_of("0123456789"), std::string::npos) << id;
    const int64_t at = std::stoll(seconds);
    EXPECT_GE(at, before) << id;
    EXPECT_LE(at, static_cast<int64_t>(std::time(nullptr))) << id;
    ASSERT_EQ(random.size(), 8u) << id;
    EXPECT_EQ(random.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ids.insert(id);
  }
  // 100 draws of 32 random bits: a repeat is a broken generator, not bad luck.
  EXPECT_EQ(ids.size(), 100u);
}

TEST(ServiceRequestTest, EveryEntryFieldReachesTheEngine) {
  RecordingEngine engine;
  OtaClientServiceImpl service(engine, Config());
  OtaClientV2::UpdateRequest request;
  request.set_request_id("req-42");
  auto* entry = request.add_ecu();
  entry->set_ecu_id("main");
  entry->set_version("v2");
  entry->set_url("https://server/img");
  entry->set_cookies("{\"a\":\"b\"}");
  entry->set_release_name("rn");
  entry->set_release_id("ri");
  entry->set_image_id("ii");
  const auto response = CallUpdate(service, request);
  ASSERT_EQ(engine.requests.size(), 1u);
  const update::UpdateRequestParams& p = engine.requests[0];
  EXPECT_EQ(p.version, "v2");
  EXPECT_EQ(p.url, "https://server/img");
  EXPECT_EQ(p.cookies_json, "{\"a\":\"b\"}");
  EXPECT_EQ(p.release_name, "rn");
  EXPECT_EQ(p.release_id, "ri");
  EXPECT_EQ(p.image_id, "ii");
  EXPECT_EQ(p.request_id, "req-42");
  ASSERT_EQ(response.ecu_size(), 1);
  EXPECT_EQ(response.ecu(0).result(), OtaClientV2::NO_FAILURE);
  EXPECT_EQ(response.ecu(0).message(), "");
}

TEST(ServiceRequestTest, EmptyRequestIdIsGenerated) {
  RecordingEngine engine;
  OtaClientServiceImpl service(engine, Config());
  OtaClientV2::UpdateRequest request;
  request.add_ecu()->set_ecu_id("main");
  CallUpdate(service, request);
  CallUpdate(service, request);
  ASSERT_EQ(engine.requests.size(), 2u);
  // "<unix seconds>-<8 hex>", as the Python client generates them.
  const std::string& id = engine.requests[0].request_id;
  ASSERT_GE(id.size(), 10u) << id;
  EXPECT_EQ(id[id.size() - 9], '-') << id;
  EXPECT_NE(engine.requests[0].request_id, engine.requests[1].request_id);
}

TEST(ServiceRequestTest, EngineErrorsMapToFailureTypesWithTheirMessage) {
  struct Case {
    absl::Status status;
    OtaClientV2::FailureType want;
  };
  const Case cases[] = {
      {absl::FailedPreconditionError("busy: an update to v1 is running"), OtaClientV2::RECOVERABLE},
      {absl::InvalidArgumentError("url 'x': scheme must be http:// or https://"),
       OtaClientV2::RECOVERABLE},
      {absl::InternalError("cannot create worker thread"), OtaClientV2::UNRECOVERABLE},
      {absl::ResourceExhaustedError("disk full"), OtaClientV2::UNRECOVERABLE},
  };
  for (const Case& c : cases) {
    RecordingEngine engine;
    engine.next_result = c.status;
    OtaClientServiceImpl service(engine, Config());
    OtaClientV2::UpdateRequest request;
    request.add_ecu()->set_ecu_id("main");
    const auto response = CallUpdate(service, request);
    ASSERT_EQ(response.ecu_size(), 1);
    EXPECT_EQ(response.ecu(0).result(), c.want) << c.status;
    EXPECT_EQ(response.ecu(0).message(), std::string(c.status.message()));
  }
}

TEST(ServiceRequestTest, DuplicateOwnEntryIsRejectedAndOnlyTheFirstStarts) {
  RecordingEngine engine;
  OtaClientServiceImpl service(engine, Config());
  OtaClientV2::UpdateRequest request;
  request.add_ecu()->set_ecu_id("sub1");
  request.add_ecu()->set_ecu_id("main");
  request.add_ecu()->set_ecu_id("main");
  const auto response = CallUpdate(service, request);
  ASSERT_EQ(engine.requests.size(), 1u);
  ASSERT_EQ(response.ecu_size(), 3);
  EXPECT_EQ(response.ecu(0).ecu_id(), "main");
  EXPECT_EQ(response.ecu(0).result(), OtaClientV2::NO_FAILURE);
  EXPECT_EQ(response.ecu(1).ecu_id(), "main");
  EXPECT_EQ(response.ecu(1).result(), OtaClientV2::RECOVERABLE);
  EXPECT_NE(response.ecu(1).message().find("duplicate"), std::string::npos);
  EXPECT_EQ(response.ecu(2).ecu_id(), "sub1");
  EXPECT_TRUE(response.ecu(2).message().starts_with("unknown ECU id")) << response.ecu(2).message();
}

TEST(ServiceRequestTest, EmptyAvailableEcuIdsDefaultToOwnId) {
  RecordingEngine engine;
  OtaClientServiceImpl service(engine, Config());
  OtaClientV2::StatusResponse response;
  service.AnswerStatus(&response);
  ASSERT_EQ(response.available_ecu_ids_size(), 1);
  EXPECT_EQ(response.available_ecu_ids(0), "main");
  EXPECT_EQ(response.ecu_v2(0).otaclient_version(), "9.9.9");
}

}  // namespace
}  // namespace ota::service
