#include "otaclient/update/client_update.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/image/client_package.h"
#include "common/image/image_reader.h"
#include "common/image/v1/reader.h"
#include "common/image/v1/release_package.h"
#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/update/verified_image.h"

namespace ota::update {
namespace {

std::optional<uint32_t> FindRegular(const image::Manifest& manifest, std::string_view path) {
  for (uint32_t i = 0; i < manifest.regulars.size(); ++i) {
    if (manifest.Str(manifest.regulars[i].path) == path) return i;
  }
  return std::nullopt;
}

// Makes the content of regular `entry` appear verified as <dir>/<sha256hex>; returns its path.
absl::StatusOr<std::filesystem::path> FetchRegular(http::Fetcher& fetcher, image::Image& img,
                                                   uint32_t entry_index,
                                                   const std::filesystem::path& dir,
                                                   const http::CancelFlag& cancel) {
  const image::RegularEntry& entry = img.manifest.regulars[entry_index];
  const std::filesystem::path target = dir / "content" / crypto::ToHex(entry.sha256);
  std::error_code ec;
  std::filesystem::create_directories(target.parent_path(), ec);
  if (ec)
    return absl::InternalError(StrCat("mkdir ", target.parent_path().string(), ": ", ec.message()));
  if (std::filesystem::exists(target, ec)) return target;
  if (entry.has_inline) {
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(target, img.manifest.Str(entry.inline_content)));
    return target;
  }
  image::ContentRequest request;
  request.sha256 = entry.sha256;
  if (entry.has_size) request.size = entry.size;
  request.entry = entry_index;
  image::ContentFetchEnv env;
  env.fetcher = &fetcher;
  env.resources_dir = target.parent_path();
  env.work_dir = dir / "work";
  env.cancel = &cancel;
  const absl::Status fetched =
      img.source->Fetch(img.manifest, std::span<const image::ContentRequest>(&request, 1), env);
  if (!fetched.ok()) {
    return WithContext(fetched, StrCat("fetching the image's ", img.manifest.Str(entry.path)));
  }
  if (cancel.load()) return absl::CancelledError("client update cancelled");
  return target;
}

std::string MachineName() {
  struct utsname u {};
  if (::uname(&u) != 0) return "";
  return u.machine;
}

// Moves `from` (in the same file system) to `to` as an executable (0755), durably.
absl::Status InstallExecutable(const std::filesystem::path& from, const std::filesystem::path& to) {
  {
    fs::UniqueFd fd(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", from.string()));
    if (::fchmod(fd.get(), 0755) != 0) return ErrnoStatus(errno, StrCat("chmod ", from.string()));
    if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, StrCat("fsync ", from.string()));
  }
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("rename ", from.string(), " to ", to.string()));
  }
  return fs::SyncDir(to.parent_path());
}

// The package of a v1 image's otaclient release-package artifact: the entry of its config (the
// release's manifest.json) chosen for this client and CPU, and the layer that carries it.
struct ArtifactChoice {
  image::ClientPackage package;
  image::v1::Descriptor layer;
};

// index.json's package descriptor (signed through index.jwt) → package manifest (digest and size)
// → its config, manifest.json (digest and size) → our entry → the layer whose digest is the
// entry's checksum and whose annotations agree with the entry. nullopt with `*none` set when the
// artifact holds no package this client can run (the rootfs may still have one); an error when
// the artifact is broken or disagrees with itself.
absl::StatusOr<std::optional<ArtifactChoice>> ChooseFromArtifact(http::Fetcher& fetcher,
                                                                 const image::Image& img,
                                                                 const std::string& machine,
                                                                 std::string* none) {
  OTA_ASSIGN_OR_RETURN(
      image::v1::LoadedReleasePackage loaded,
      image::v1::LoadReleasePackage(fetcher, img.base_url, *img.otaclient_package));
  absl::StatusOr<image::ClientPackage> package =
      image::SelectClientPackage(loaded.release, machine);
  if (!package.ok()) {
    *none = std::string(package.status().message());
    return std::optional<ArtifactChoice>();
  }
  absl::StatusOr<const image::v1::ReleasePackageLayer*> layer =
      image::v1::FindPackageLayer(loaded.manifest, *package);
  if (!layer.ok()) {
    return absl::InvalidArgumentError(
        StrCat("the image's otaclient release-package artifact: ", layer.status().message()));
  }
  return std::optional<ArtifactChoice>(ArtifactChoice{*std::move(package), (*layer)->blob});
}

// The artifact layer downloaded into `dir`, checked against its digest and size.
absl::StatusOr<std::filesystem::path> FetchLayer(http::Fetcher& fetcher, const image::Image& img,
                                                 const ArtifactChoice& choice,
                                                 const std::filesystem::path& dir,
                                                 const http::CancelFlag& cancel) {
  http::DownloadJob job;
  job.url = image::v1::BlobUrl(img.base_url, choice.layer.hex());
  job.dest = dir / StrCat("package-", choice.layer.hex());
  job.sha256 = choice.layer.digest;
  job.size = choice.layer.size;
  absl::Status job_status = absl::InternalError("download not reported");
  const absl::Status run = fetcher.DownloadAll(
      std::span(&job, 1),
      [&](const http::DownloadResult& r) {
        job_status = r.status;
        return true;
      },
      http::TransferObserver{}, cancel);
  const std::string what =
      StrCat("otaclient package ", choice.package.filename, " (", job.url, ")");
  OTA_RETURN_IF_ERROR(WithContext(run, what));
  OTA_RETURN_IF_ERROR(WithContext(job_status, what));
  if (cancel.load()) return absl::CancelledError("client update cancelled");
  return job.dest;
}

// `file` (in the staging dir's file system), whose sha256 has been verified, installed as
// <staging>/otaclient-<version> after its size is checked, then run once with --version.
absl::StatusOr<StagedClient> StageAndProbe(const image::ClientPackage& package,
                                           const std::filesystem::path& file,
                                           const std::string& where,
                                           const ClientUpdateOptions& options) {
  std::error_code ec;
  const uint64_t fetched_size = std::filesystem::file_size(file, ec);
  if (ec || fetched_size != package.size) {
    return absl::InvalidArgumentError(StrCat("otaclient package ", where, ": ",
                                             ec ? ec.message() : StrCat(fetched_size, " bytes"),
                                             ", the release manifest says ", package.size));
  }
  StagedClient staged;
  staged.version = package.version;
  staged.binary = options.staging_dir / StrCat("otaclient-", package.version);
  OTA_RETURN_IF_ERROR(InstallExecutable(file, staged.binary));

  // It must start here and be what the manifest says.
  absl::StatusOr<sys::CommandResult> probe =
      sys::RunProgram({staged.binary.string(), "--version"}, options.self_check_timeout);
  const std::string probe_what =
      StrCat("otaclient package ", package.version, " (", staged.binary.string(), " --version)");
  if (!probe.ok()) {
    ::unlink(staged.binary.c_str());
    return absl::InvalidArgumentError(
        StrCat(probe_what, " is not a working otaclient: ", probe.status().message()));
  }
  std::string printed = probe->out;
  while (!printed.empty() && (printed.back() == '\n' || printed.back() == '\r')) printed.pop_back();
  if (probe->exit_code != 0 || printed != package.version) {
    ::unlink(staged.binary.c_str());
    return absl::InvalidArgumentError(
        StrCat(probe_what, " is not a working otaclient: exit ", probe->exit_code,
               probe->exit_code > 128 ? StrCat(" (killed by signal ", probe->exit_code - 128, ")")
                                      : std::string(),
               ", printed \"", printed.substr(0, 200), "\", expected \"", package.version, "\"",
               probe->err.empty() ? "" : StrCat(", stderr: ", probe->err.substr(0, 200))));
  }
  log::Info("client update: package verified and staged", {{"version", package.version},
                                                           {"binary", staged.binary.string()},
                                                           {"size", StrCat(package.size)},
                                                           {"sha256", package.checksum_hex}});
  return staged;
}

}  // namespace

absl::StatusOr<std::optional<StagedClient>> PrepareClientUpdate(
    const UpdateRequestParams& request, const ClientUpdateOptions& options,
    const FetcherFactory& fetcher_factory, const http::CancelFlag& cancel) {
  OTA_RETURN_IF_ERROR(ValidateUpdateRequest(request));
  OTA_ASSIGN_OR_RETURN(auto cookies, http::ParseCookiesJson(request.cookies_json));
  http::FetcherConfig fetcher_config = options.fetcher;
  fetcher_config.cookies = std::move(cookies);
  fetcher_config.cancel = &cancel;
  std::unique_ptr<http::Fetcher> fetcher = fetcher_factory(fetcher_config);
  if (fetcher == nullptr) return absl::InternalError("fetcher factory returned no fetcher");
  const std::string machine = options.machine.empty() ? MachineName() : options.machine;

  const ImageTrust trust{options.certs_dir, options.allow_unverified_dev, options.ecu_id,
                         options.release_key, machine};
  OTA_ASSIGN_OR_RETURN(image::Image img,
                       OpenVerifiedImage(*fetcher, request.url, trust, "client update"));
  std::error_code ec;
  std::filesystem::create_directories(options.staging_dir, ec);
  if (ec) {
    return absl::InternalError(StrCat("mkdir ", options.staging_dir.string(), ": ", ec.message()));
  }
  OTA_ASSIGN_OR_RETURN(fs::TempDir work, fs::TempDir::Create(".download", options.staging_dir));

  // v1: the otaclient release-package artifact first; without one for us, the rootfs' release.
  std::string artifact_none;
  if (img.otaclient_package.has_value()) {
    OTA_ASSIGN_OR_RETURN(std::optional<ArtifactChoice> choice,
                         ChooseFromArtifact(*fetcher, img, machine, &artifact_none));
    if (choice.has_value()) {
      if (choice->package.version == options.running_version) {
        log::Info("client update: the image's otaclient is the one running, nothing to do",
                  {{"version", choice->package.version}, {"url", request.url}});
        return std::optional<StagedClient>();
      }
      OTA_ASSIGN_OR_RETURN(const std::filesystem::path file,
                           FetchLayer(*fetcher, img, *choice, work.path(), cancel));
      log::Info("client update: package taken from the image's otaclient release-package artifact",
                {{"version", choice->package.version}, {"layer", choice->layer.hex()}});
      OTA_ASSIGN_OR_RETURN(StagedClient staged,
                           StageAndProbe(choice->package, file,
                                         StrCat(choice->package.filename, " (artifact layer ",
                                                choice->layer.hex(), ")"),
                                         options));
      return std::optional<StagedClient>(std::move(staged));
    }
    log::Info(
        "client update: the image's otaclient release-package artifact has no package "
        "for this client; looking in its rootfs",
        {{"reason", artifact_none}});
  }

  const std::string manifest_path = StrCat(image::kClientReleaseDir, "/manifest.json");
  const std::optional<uint32_t> manifest_entry = FindRegular(img.manifest, manifest_path);
  if (!manifest_entry.has_value()) {
    if (!artifact_none.empty()) {
      return absl::FailedPreconditionError(
          StrCat("the image at ", request.url, " has no usable otaclient package: its release-",
                 "package artifact: ", artifact_none, "; its rootfs: no ", manifest_path));
    }
    return absl::FailedPreconditionError(StrCat("the image at ", request.url,
                                                " carries no otaclient release (no ", manifest_path,
                                                " in its signed file list)"));
  }
  const image::RegularEntry& manifest_file = img.manifest.regulars[*manifest_entry];
  if (manifest_file.has_size && manifest_file.size > image::kMaxClientManifestBytes) {
    return absl::InvalidArgumentError(
        StrCat("the image's ", manifest_path, " is ", manifest_file.size, " bytes: too large"));
  }

  OTA_ASSIGN_OR_RETURN(const std::filesystem::path manifest_copy,
                       FetchRegular(*fetcher, img, *manifest_entry, work.path(), cancel));
  OTA_ASSIGN_OR_RETURN(const std::string manifest_text, fs::ReadFile(manifest_copy));
  absl::StatusOr<image::ClientReleaseManifest> manifest =
      image::ParseClientReleaseManifest(manifest_text);
  if (!manifest.ok()) return WithContext(manifest.status(), StrCat("the image's ", manifest_path));
  OTA_ASSIGN_OR_RETURN(const image::ClientPackage package,
                       image::SelectClientPackage(*manifest, machine));
  if (package.version == options.running_version) {
    log::Info("client update: the image's otaclient is the one running, nothing to do",
              {{"version", package.version}, {"url", request.url}});
    return std::optional<StagedClient>();
  }

  const std::string package_path = StrCat(image::kClientReleaseDir, "/", package.filename);
  const std::optional<uint32_t> package_entry = FindRegular(img.manifest, package_path);
  if (!package_entry.has_value()) {
    return absl::InvalidArgumentError(StrCat("the otaclient release names ", package.filename,
                                             " but the image's signed file list has no ",
                                             package_path));
  }
  const image::RegularEntry& package_file = img.manifest.regulars[*package_entry];
  if (package_file.sha256 != image::PackageDigest(package)) {
    return absl::InvalidArgumentError(
        StrCat("otaclient package ", package_path, ": checksum sha256:", package.checksum_hex,
               " in the release manifest, but the image signs sha256:",
               crypto::ToHex(package_file.sha256)));
  }
  if (package_file.has_size && package_file.size != package.size) {
    return absl::InvalidArgumentError(StrCat("otaclient package ", package_path, ": size ",
                                             package.size, " in the release manifest, but ",
                                             package_file.size, " in the image"));
  }
  OTA_ASSIGN_OR_RETURN(const std::filesystem::path package_copy,
                       FetchRegular(*fetcher, img, *package_entry, work.path(), cancel));
  // The content source verified the sha256; the size is the manifest's promise too.
  OTA_ASSIGN_OR_RETURN(StagedClient staged,
                       StageAndProbe(package, package_copy, package_path, options));
  return std::optional<StagedClient>(std::move(staged));
}

ClientUpdater::ClientUpdater(Prepare prepare, HandOver hand_over, bool is_dynamic_client)
    : prepare_(std::move(prepare)),
      hand_over_(std::move(hand_over)),
      is_dynamic_client_(is_dynamic_client) {}

ClientUpdater::~ClientUpdater() {
  cancel_ = true;
  if (worker_.joinable()) worker_.join();
}

absl::Status ClientUpdater::Start(const UpdateRequestParams& request) {
  if (is_dynamic_client_) {
    log::Warning("client update ignored: this otaclient is itself the result of a client update",
                 {{"request_id", request.request_id}, {"version", request.version}});
    return absl::OkStatus();
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kPreparing || state_ == State::kHandingOver) {
    return absl::FailedPreconditionError("a client update is already in progress");
  }
  if (worker_.joinable()) worker_.join();  // finished: its thread ends at once
  state_ = State::kPreparing;
  failure_type_ = 0;
  failure_reason_.clear();
  cancel_ = false;
  worker_ = std::thread([this, request] { Run(request); });
  log::Info("client update accepted", {{"request_id", request.request_id}, {"url", request.url}});
  return absl::OkStatus();
}

void ClientUpdater::Run(const UpdateRequestParams& request) {
  absl::StatusOr<std::optional<StagedClient>> staged = prepare_(request, cancel_);
  if (!staged.ok()) {
    Fail(staged.status());
    return;
  }
  if (!staged->has_value()) {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kSameVersion;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kHandingOver;
  }
  log::Info("client update: handing over to the new otaclient",
            {{"version", (*staged)->version}, {"binary", (*staged)->binary.string()}});
  hand_over_(**staged);
}

void ClientUpdater::Fail(const absl::Status& status) {
  // A package this client cannot use is an image problem (E203); the image's own failures keep
  // the codes an update would report (network, certificates, ...).
  absl::Status marked = status;
  if (status.code() == absl::StatusCode::kFailedPrecondition ||
      status.code() == absl::StatusCode::kInvalidArgument) {
    marked = WithOtaErrorCode(status, OtaErrorCode::kOtaImageInvalid);
  }
  const OtaFailure failure =
      DescribeOtaFailure(OtaStage::kMetadata, WithContext(marked, "client update"));
  log::Error("client update failed; this otaclient keeps serving", {{"reason", failure.reason}});
  std::lock_guard<std::mutex> lock(mu_);
  state_ = State::kFailed;
  failure_type_ = static_cast<int>(failure.kind);
  failure_reason_ = failure.reason;
}

bool ClientUpdater::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_ == State::kPreparing || state_ == State::kHandingOver;
}

void ClientUpdater::ApplyTo(StatusSnapshot* snapshot) const {
  std::lock_guard<std::mutex> lock(mu_);
  switch (state_) {
    case State::kIdle:
      return;
    case State::kPreparing:
    case State::kHandingOver:
      snapshot->status = OtaStatus::kClientUpdating;
      snapshot->failure_type = 0;
      snapshot->failure_reason.clear();
      return;
    case State::kSameVersion:
      snapshot->status = OtaStatus::kSuccess;
      snapshot->failure_type = 0;
      snapshot->failure_reason.clear();
      return;
    case State::kFailed:
      snapshot->status = OtaStatus::kFailure;
      snapshot->failure_type = failure_type_;
      snapshot->failure_reason = failure_reason_;
      return;
  }
}

void ClientUpdater::ForgetResult() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kSameVersion || state_ == State::kFailed) state_ = State::kIdle;
}

void ClientUpdater::WaitForPreparation() {
  std::thread worker;
  {
    std::lock_guard<std::mutex> lock(mu_);
    worker.swap(worker_);
  }
  if (worker.joinable()) worker.join();
}

void ClientUpdater::HandOverDone(const absl::Status& result) {
  if (!result.ok()) {
    // The new client did not come up: this one serves on; nothing was lost (E200).
    Fail(WithOtaErrorCode(result, OtaErrorCode::kRecoverable));
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  state_ = State::kIdle;
}

}  // namespace ota::update
