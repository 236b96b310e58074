// The single-ECU update: one session at a time, run on its own thread, driven by the explicit
// state machine in update_session.h. The gRPC service talks only to this class.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/http/fetcher.h"
#include "otaclient/boot/boot_controller.h"
#include "otaclient/update/status_snapshot.h"

namespace ota::update {

struct UpdateRequestParams {
  std::string version;
  std::string url;           // image base URL, http(s)
  std::string cookies_json;  // "" or a JSON object
  std::string release_name, release_id, image_id;
  std::string request_id;
};

class UpdateEngine {
 public:
  virtual ~UpdateEngine() = default;
  // Validates and starts an update in the background; returns within milliseconds.
  // kFailedPrecondition when busy (nothing changes), kInvalidArgument for a bad request
  // (nothing changes either: a bad request never disturbs a running update).
  virtual absl::Status StartUpdate(const UpdateRequestParams& request) = 0;
  virtual StatusSnapshot Snapshot() const = 0;

  // Stops the running update (wire Abort). OK when the update was stopped (status ABORTED,
  // standby left unbootable, the next StartUpdate works) or, during the critical part of
  // preparing the standby, when the abort was queued and will run as soon as that part ends.
  // kFailedPrecondition with a reason when nothing is running or the boot switch is already
  // committed (too late to abort).
  virtual absl::Status Abort() { return absl::UnimplementedError("abort is not implemented"); }

  // Switches back to the other slot when it holds the previous good image (wire Rollback), with
  // the same try-once-then-confirm mechanism as an update. kFailedPrecondition with a reason when
  // not possible (update running, other slot not SUCCESS, backend without rollback).
  virtual absl::Status StartRollback() {
    return absl::UnimplementedError("rollback is not implemented");
  }
};

struct EngineOptions {
  std::filesystem::path certs_dir = "/opt/ota/client/certs";
  bool allow_unverified_dev = false;  // no CA installed → accept any signer (loudly logged)
  // Proxy, CA bundle, parallelism, retries. Cookies are filled in per request.
  http::FetcherConfig fetcher;
  bool reboot_after_update = true;  // false: stop after CommitSwitch (tests, manual reboot)
  // Optional: called on the session thread after CommitSwitch and before Reboot(), e.g. to wait
  // until child ECUs have finished their own updates (the main ECU reboots last).
  std::function<void()> before_reboot;
  // TEST ONLY, never set in production: called on the session thread right after each phase
  // transition the session makes (names from update_session.h: "ProcessingMetadata", ...,
  // "Committed", "Failed"). It may block to hold the session in that phase.
  std::function<void(std::string_view phase)> test_phase_hook;
};

using FetcherFactory =
    std::function<std::unique_ptr<http::Fetcher>(const http::FetcherConfig& config)>;

// The engine owns the boot controller; ConfirmBoot() has already been called by the caller and
// its result is passed in as the initial state.
std::unique_ptr<UpdateEngine> CreateUpdateEngine(EngineOptions options,
                                                 std::unique_ptr<boot::BootController> boot,
                                                 const boot::BootState& initial_state,
                                                 FetcherFactory fetcher_factory);

}  // namespace ota::update
