// ClientUpdater (otaclient/update/client_update.h): the ClientUpdate state this ECU reports, with
// the preparation step injected (the real one is covered by test/e2e/client_update_e2e.sh).
#include <gtest/gtest.h>

#include <future>
#include <optional>

#include "otaclient/update/client_update.h"

namespace ota::update {
namespace {

UpdateRequestParams Request() {
  UpdateRequestParams r;
  r.version = "x";
  r.url = "http://127.0.0.1/image";
  r.request_id = "test";
  return r;
}

StatusSnapshot Overlaid(const ClientUpdater& updater) {
  StatusSnapshot s;
  s.status = OtaStatus::kSuccess;
  updater.ApplyTo(&s);
  return s;
}

TEST(ClientUpdaterTest, ClientUpdatingWhilePreparingThenHandOver) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<StagedClient> handed;
  ClientUpdater updater(
      [released](const UpdateRequestParams&,
                 const http::CancelFlag&) -> absl::StatusOr<std::optional<StagedClient>> {
        released.wait();
        return std::optional<StagedClient>(StagedClient{"/run/x/otaclient-2", "2"});
      },
      [&handed](const StagedClient& staged) { handed.set_value(staged); });
  ASSERT_TRUE(updater.Start(Request()).ok());
  EXPECT_TRUE(updater.busy());
  EXPECT_EQ(Overlaid(updater).status, OtaStatus::kClientUpdating);
  const absl::Status again = updater.Start(Request());
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  release.set_value();
  EXPECT_EQ(handed.get_future().get().version, "2");
  updater.WaitForPreparation();
  // Until the daemon reports, it is still CLIENT_UPDATING.
  EXPECT_TRUE(updater.busy());
  EXPECT_EQ(Overlaid(updater).status, OtaStatus::kClientUpdating);
  updater.HandOverDone(absl::OkStatus());
  EXPECT_FALSE(updater.busy());
  EXPECT_EQ(Overlaid(updater).status, OtaStatus::kSuccess);  // the engine's, untouched
}

TEST(ClientUpdaterTest, FailureIsReportedWithCodeUntilForgotten) {
  ClientUpdater updater(
      [](const UpdateRequestParams&,
         const http::CancelFlag&) -> absl::StatusOr<std::optional<StagedClient>> {
        return absl::FailedPreconditionError("the image has no otaclient-cpp package");
      },
      [](const StagedClient&) { FAIL() << "nothing to hand over"; });
  ASSERT_TRUE(updater.Start(Request()).ok());
  updater.WaitForPreparation();
  EXPECT_FALSE(updater.busy());
  const StatusSnapshot s = Overlaid(updater);
  EXPECT_EQ(s.status, OtaStatus::kFailure);
  EXPECT_EQ(s.failure_type, 1);
  EXPECT_NE(s.failure_reason.find("client update: the image has no otaclient-cpp package"),
            std::string::npos)
      << s.failure_reason;
  EXPECT_EQ(s.failure_reason.rfind("E203: ", 0), 0u) << s.failure_reason;
  updater.ForgetResult();
  EXPECT_EQ(Overlaid(updater).status, OtaStatus::kSuccess);
}

TEST(ClientUpdaterTest, HandOverFailureIsReported) {
  ClientUpdater updater(
      [](const UpdateRequestParams&,
         const http::CancelFlag&) -> absl::StatusOr<std::optional<StagedClient>> {
        return std::optional<StagedClient>(StagedClient{"/x", "2"});
      },
      [](const StagedClient&) {});
  ASSERT_TRUE(updater.Start(Request()).ok());
  updater.WaitForPreparation();
  updater.HandOverDone(absl::UnavailableError("ended before serving (exit 3)"));
  const StatusSnapshot s = Overlaid(updater);
  EXPECT_EQ(s.status, OtaStatus::kFailure);
  EXPECT_NE(s.failure_reason.find("ended before serving (exit 3)"), std::string::npos);
  EXPECT_EQ(s.failure_reason.rfind("E200: ", 0), 0u) << s.failure_reason;
  EXPECT_EQ(s.failure_type, 1);
  // A new client update may start at once.
  EXPECT_TRUE(updater.Start(Request()).ok());
  updater.WaitForPreparation();
}

TEST(ClientUpdaterTest, SameVersionIsSuccessAsUpstream) {
  ClientUpdater updater(
      [](const UpdateRequestParams&, const http::CancelFlag&)
          -> absl::StatusOr<std::optional<StagedClient>> { return std::optional<StagedClient>(); },
      [](const StagedClient&) { FAIL() << "nothing to hand over"; });
  ASSERT_TRUE(updater.Start(Request()).ok());
  updater.WaitForPreparation();
  StatusSnapshot s;
  s.status = OtaStatus::kFailure;
  s.failure_reason = "an older update";
  updater.ApplyTo(&s);
  EXPECT_EQ(s.status, OtaStatus::kSuccess);
  EXPECT_EQ(s.failure_reason, "");
}

TEST(ClientUpdaterTest, TheDynamicClientIgnoresClientUpdate) {
  bool prepared = false;
  ClientUpdater updater(
      [&prepared](const UpdateRequestParams&,
                  const http::CancelFlag&) -> absl::StatusOr<std::optional<StagedClient>> {
        prepared = true;
        return std::optional<StagedClient>();
      },
      [](const StagedClient&) {}, /*is_dynamic_client=*/true);
  EXPECT_TRUE(updater.Start(Request()).ok());
  updater.WaitForPreparation();
  EXPECT_FALSE(prepared);
  EXPECT_FALSE(updater.busy());
  EXPECT_EQ(Overlaid(updater).status, OtaStatus::kSuccess);
}

TEST(ClientUpdaterTest, DestructionCancelsARunningPreparation) {
  std::promise<void> started;
  {
    ClientUpdater updater(
        [&started](const UpdateRequestParams&,
                   const http::CancelFlag& cancel) -> absl::StatusOr<std::optional<StagedClient>> {
          started.set_value();
          while (!cancel.load()) std::this_thread::yield();
          return absl::CancelledError("cancelled");
        },
        [](const StagedClient&) {});
    ASSERT_TRUE(updater.Start(Request()).ok());
    started.get_future().wait();
  }  // returns only because the cancel flag was set
}

}  // namespace
}  // namespace ota::update
