// Size limits on requests (otaclient/service/request_limits.h): every field at its limit is
// accepted, one byte over is refused with a message naming the field, its size and the limit.
#include "otaclient/service/request_limits.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace ota::service {
namespace {

OtaClientV2::UpdateRequest OneUpdate() {
  OtaClientV2::UpdateRequest request;
  request.set_request_id("r");
  auto* entry = request.add_ecu();
  entry->set_ecu_id("main");
  entry->set_version("1");
  entry->set_url("http://h/");
  return request;
}

TEST(RequestLimitsTest, EachUpdateFieldAtItsLimitPassesAndOneByteMoreIsNamed) {
  const RequestLimits limits;
  struct Case {
    const char* field;
    size_t limit;
    std::function<void(OtaClientV2::UpdateRequest&, const std::string&)> set;
  };
  const Case cases[] = {
      {"request_id", limits.max_id_bytes, [](auto& r, const auto& v) { r.set_request_id(v); }},
      {"ecu[0].ecu_id", limits.max_id_bytes,
       [](auto& r, const auto& v) { r.mutable_ecu(0)->set_ecu_id(v); }},
      {"ecu[0].url", limits.max_url_bytes,
       [](auto& r, const auto& v) { r.mutable_ecu(0)->set_url(v); }},
      {"ecu[0].cookies", limits.max_cookies_bytes,
       [](auto& r, const auto& v) { r.mutable_ecu(0)->set_cookies(v); }},
      {"ecu[0].version", limits.max_field_bytes,
       [](auto& r, const auto& v) { r.mutable_ecu(0)->set_version(v); }},
      {"ecu[0].release_name", limits.max_field_bytes,
       [](auto& r, const auto& v) { r.mutable_ecu(0)->set_release_name(v); }},
      {"ecu[0].release_id", limits.max_field_bytes,
       [](auto& r, const auto& v) { r.mutable_ecu(0)->set_release_id(v); }},
      {"ecu[0].image_id", limits.max_field_bytes,
       [](auto& r, const auto& v) { r.mutable_ecu(0)->set_image_id(v); }},
  };
  for (const Case& c : cases) {
    OtaClientV2::UpdateRequest request = OneUpdate();
    c.set(request, std::string(c.limit, 'x'));
    EXPECT_TRUE(CheckUpdateRequest(request, limits).ok()) << c.field;
    c.set(request, std::string(c.limit + 1, 'x'));
    const absl::Status refused = CheckUpdateRequest(request, limits);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(refused.message(), std::string("UpdateRequest: ") + c.field + " is " +
                                     std::to_string(c.limit + 1) + " bytes; at most " +
                                     std::to_string(c.limit) + " are accepted");
  }
}

TEST(RequestLimitsTest, TheOffendingEntryIsNamedByIndex) {
  OtaClientV2::UpdateRequest request = OneUpdate();
  *request.add_ecu() = request.ecu(0);
  request.mutable_ecu(1)->set_url(std::string(9000, 'u'));
  EXPECT_EQ(CheckUpdateRequest(request).message(),
            "UpdateRequest: ecu[1].url is 9000 bytes; at most 8192 are accepted");
}

TEST(RequestLimitsTest, EntryCountsForEveryRequestKind) {
  RequestLimits limits;
  limits.max_entries = 3;
  OtaClientV2::UpdateRequest update;
  OtaClientV2::AbortRequest abort;
  OtaClientV2::RollbackRequest rollback;
  for (int i = 0; i < 3; ++i) {
    update.add_ecu()->set_ecu_id("e");
    abort.add_ecu()->set_ecu_id("e");
    rollback.add_ecu()->set_ecu_id("e");
  }
  EXPECT_TRUE(CheckUpdateRequest(update, limits).ok());
  EXPECT_TRUE(CheckAbortRequest(abort, limits).ok());
  EXPECT_TRUE(CheckRollbackRequest(rollback, limits).ok());
  update.add_ecu();
  abort.add_ecu();
  rollback.add_ecu();
  EXPECT_EQ(CheckUpdateRequest(update, limits).message(),
            "UpdateRequest: 4 ECU entries; at most 3 are accepted");
  EXPECT_EQ(CheckAbortRequest(abort, limits).message(),
            "AbortRequest: 4 ECU entries; at most 3 are accepted");
  EXPECT_EQ(CheckRollbackRequest(rollback, limits).message(),
            "RollbackRequest: 4 ECU entries; at most 3 are accepted");
}

TEST(RequestLimitsTest, EmptyRequestsAndBinaryBytesAreNotThisCheckConcern) {
  // Content (NUL bytes, no entries) is judged later by the service and the engine.
  EXPECT_TRUE(CheckUpdateRequest({}).ok());
  OtaClientV2::UpdateRequest request = OneUpdate();
  request.mutable_ecu(0)->set_url(std::string("http://h/\0x", 11));
  EXPECT_TRUE(CheckUpdateRequest(request).ok());
}

}  // namespace
}  // namespace ota::service
