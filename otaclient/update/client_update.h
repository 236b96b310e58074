// ClientUpdate, the part that needs no process handling: finds the otaclient package for this
// client and CPU in the image a request names, verifies it through the image's own signature
// chain and stages it as an executable that has been seen to start.
//
// Verification chain (stricter than upstream, which fetches the release manifest unverified):
//   1. the image's metadata as for an update (image_reader.h OpenImage: legacy metadata.jwt or
//      v1 index.jwt, the certificate chain to an installed CA, every metadata file by its
//      signed digest);
//   2. `<rootfs>/opt/ota/otaclient_release/manifest.json` and the package file next to it must
//      be regular files of that signed file list / file table, and are fetched through the
//      image's content source, which checks each against its signed sha256;
//   3. the package's `size` and `checksum` in the manifest must be those of the signed file.
// A v1 image's otaclient release-package artifact (common/image/v1/release_package.h) comes
// first: index.json's entry (signed through index.jwt) → package manifest by digest and size →
// its config, the release's manifest.json, by digest and size → our package for this CPU → the
// layer whose digest is its checksum, whose annotations (version, type, architecture, size,
// checksum) agree with the manifest.json entry → that blob by digest and size. A broken or
// self-contradicting artifact is refused; one without a package for this client and CPU (e.g.
// only tier4's squashfs packages) falls back to the rootfs' release directory (which tier4's
// `add-otaclient-package-legacy-compat` writes too), as does an image without the artifact.
//
// Staging: `<staging_dir>/otaclient-<version>` (0755, fsynced), then run once as
// `<binary> --version`, which must exit 0 within self_check_timeout printing exactly the
// package's version: a binary that cannot start on this machine, or that is not the version the
// manifest claims, is refused before the running client gives up anything.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/http/fetcher.h"
#include "otaclient/update/update_engine.h"

namespace ota::update {

struct ClientUpdateOptions {
  std::filesystem::path certs_dir = "/opt/ota/client/certs";
  bool allow_unverified_dev = false;
  std::string ecu_id = "autoware";
  std::string release_key = "dev";
  http::FetcherConfig fetcher;  // cookies are filled in per request
  std::filesystem::path staging_dir = "/run/otaclient/client";
  std::string running_version;
  std::string machine;  // uname -m; empty: this machine's
  std::chrono::milliseconds self_check_timeout{10000};
};

struct StagedClient {
  std::filesystem::path binary;
  std::string version;
};

// nullopt: the image's package for this client and CPU is the version already running (nothing
// to do; upstream's E205 "same version", which it reports as SUCCESS too). Errors keep their
// kinds and say what and where: the image (as for an update), no or unusable package
// (kFailedPrecondition), a package that does not match its manifest entry or does not start
// (kInvalidArgument), a local failure writing the staging dir.
absl::StatusOr<std::optional<StagedClient>> PrepareClientUpdate(
    const UpdateRequestParams& request, const ClientUpdateOptions& options,
    const FetcherFactory& fetcher_factory, const http::CancelFlag& cancel);

// This ECU's ClientUpdate state, shared by the service (requests, Status) and the daemon (the
// process switch, otaclient/main.cc). One client update at a time, on its own thread:
//   Start → CLIENT_UPDATING while `prepare` runs (PrepareClientUpdate) →
//     nothing to do (same version): SUCCESS, as upstream;
//     a failure: FAILURE with the reason ("E<code>: ...: client update: <what>"), RECOVERABLE
//       or as the code says (upstream reports SUCCESS here on purpose; we do not hide it: the
//       old client keeps serving and an Update is accepted right away);
//     staged: `hand_over(staged)` is called (it only wakes the daemon) and the status stays
//       CLIENT_UPDATING until the daemon reports with HandOverDone: OK (the new client serves;
//       this process no longer answers) or the reason it was rolled back (FAILURE).
// The result is shown until the next Update is accepted (ForgetResult).
class ClientUpdater {
 public:
  using Prepare = std::function<absl::StatusOr<std::optional<StagedClient>>(
      const UpdateRequestParams& request, const http::CancelFlag& cancel)>;
  using HandOver = std::function<void(const StagedClient& staged)>;

  // `is_dynamic_client`: this process is itself a client started by a ClientUpdate; as upstream,
  // a ClientUpdate is then acknowledged and ignored (logged).
  ClientUpdater(Prepare prepare, HandOver hand_over, bool is_dynamic_client = false);
  ~ClientUpdater();  // cancels a running preparation and waits for it
  ClientUpdater(const ClientUpdater&) = delete;
  ClientUpdater& operator=(const ClientUpdater&) = delete;

  // kFailedPrecondition when one is already running; returns at once.
  absl::Status Start(const UpdateRequestParams& request);
  bool busy() const;
  // Puts the client update's state over the engine's: CLIENT_UPDATING while busy, the result
  // after it.
  void ApplyTo(StatusSnapshot* snapshot) const;
  void ForgetResult();
  void HandOverDone(const absl::Status& result);
  // Waits until a running preparation has ended (its state is then final until the daemon's
  // HandOverDone); returns at once when none runs.
  void WaitForPreparation();

 private:
  enum class State { kIdle, kPreparing, kHandingOver, kSameVersion, kFailed };
  void Run(const UpdateRequestParams& request);
  void Fail(const absl::Status& status);

  const Prepare prepare_;
  const HandOver hand_over_;
  const bool is_dynamic_client_;
  mutable std::mutex mu_;
  State state_ = State::kIdle;
  int failure_type_ = 0;
  std::string failure_reason_;
  http::CancelFlag cancel_{false};
  std::thread worker_;
};

}  // namespace ota::update
