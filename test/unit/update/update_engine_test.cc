// The whole engine: real DirBootController slots, real images built and signed by the image
// writer with the test PKI from deploy/gen-certs.sh, served by a real nginx, fetched by the real
// CurlFetcher. Sessions are held and observed through EngineOptions::test_phase_hook; nothing
// waits on time.
#include "otaclient/update/update_engine.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "common/http/curl_fetcher.h"
#include "common/image/legacy/writer.h"
#include "common/image/v1/writer.h"
#include "gmock/gmock.h"
#include "otaclient/boot/dir_boot_controller.h"
#include "otaclient/update/background_priority.h"
#include "otaclient/update/content_index.h"
#include "otaclient/update/install_hooks.h"
#include "otaclient/update/update_session.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/unit/crypto/test_pki.h"
#include "test/unit/update/tree_util.h"

namespace ota::update {
namespace {

using testing::Content;
using testing::ReadFile;
using testing::WriteFile;
namespace stdfs = std::filesystem;

// Records the phases a session passes through; can hold the session in one of them.
class PhaseWatcher {
 public:
  void OnPhase(std::string_view phase) {
    std::unique_lock<std::mutex> lock(mu_);
    seen_.emplace_back(phase);
    cv_.notify_all();
    if (phase == hold_at_) {
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !held_; });
    }
  }
  void HoldAt(std::string phase) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_at_ = std::move(phase);
  }
  // Waits (bounded, as a safety net only) until the session sits in the held phase.
  bool WaitHeld() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(120), [&] { return held_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_at_.clear();
    held_ = false;
    cv_.notify_all();
  }
  // Waits until `phase` has been entered `count` times in total.
  bool WaitFor(std::string_view phase, int count = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(300),
                        [&] { return std::count(seen_.begin(), seen_.end(), phase) >= count; });
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> seen_;
  std::string hold_at_;
  bool held_ = false;
};

// Answers every request with 404, without any network.
class NotFoundFetcher : public http::Fetcher {
 public:
  absl::StatusOr<std::string> Get(const std::string& url, const http::GetOptions&) override {
    return absl::NotFoundError(StrCat("HTTP 404 for ", url));
  }
  absl::Status DownloadAll(std::span<const http::DownloadJob>,
                           const std::function<bool(const http::DownloadResult&)>&,
                           const http::TransferObserver&, const http::CancelFlag&) override {
    return absl::InternalError("not expected");
  }
};

// The real fetcher for metadata; downloads block until the engine cancels them.
class BlockingDownloadFetcher : public http::Fetcher {
 public:
  BlockingDownloadFetcher(std::unique_ptr<http::Fetcher> real, std::promise<void>* started)
      : real_(std::move(real)), started_(started) {}
  absl::StatusOr<std::string> Get(const std::string& url, const http::GetOptions& o) override {
    return real_->Get(url, o);
  }
  absl::Status DownloadAll(std::span<const http::DownloadJob>,
                           const std::function<bool(const http::DownloadResult&)>&,
                           const http::TransferObserver&, const http::CancelFlag& cancel) override {
    started_->set_value();
    cancel.wait(false);
    return absl::CancelledError("download cancelled");
  }

 private:
  std::unique_ptr<http::Fetcher> real_;
  std::promise<void>* started_;
};

// The real directory controller, but PrepareStandby (the critical part of an update) waits at a
// gate until the test opens it, so an Abort() can arrive while it runs.
class GatedBoot : public boot::BootController {
 public:
  explicit GatedBoot(std::unique_ptr<boot::BootController> real) : real_(std::move(real)) {}
  absl::StatusOr<boot::BootState> ConfirmBoot() override { return real_->ConfirmBoot(); }
  std::filesystem::path ActiveRoot() const override { return real_->ActiveRoot(); }
  absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep) override {
    entered_.set_value();
    gate_.get_future().wait();
    real_->SetStandbyRelease(standby_release());  // the session set it on this wrapper
    return real_->PrepareStandby(version, keep);
  }
  absl::Status CommitSwitch() override { return real_->CommitSwitch(); }
  absl::Status OnUpdateFailed(boot::SlotStatus status) override {
    return real_->OnUpdateFailed(status);
  }
  absl::Status Reboot() override { return real_->Reboot(); }

  std::future<void> Entered() { return entered_.get_future(); }
  void Open() { gate_.set_value(); }

 private:
  std::unique_ptr<boot::BootController> real_;
  std::promise<void> entered_;
  std::promise<void> gate_;
};

// The real controller, recording at CommitSwitch how many of this process's fds point into the
// standby: a real backend unmounts the standby there, which fails (EBUSY) while any is open.
class FdAuditBoot : public boot::BootController {
 public:
  FdAuditBoot(std::unique_ptr<boot::BootController> real, stdfs::path standby,
              std::atomic<int>* open_at_commit)
      : real_(std::move(real)), standby_(std::move(standby)), open_at_commit_(open_at_commit) {}
  absl::StatusOr<boot::BootState> ConfirmBoot() override { return real_->ConfirmBoot(); }
  std::filesystem::path ActiveRoot() const override { return real_->ActiveRoot(); }
  absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep) override {
    real_->SetStandbyRelease(standby_release());  // the session set it on this wrapper
    return real_->PrepareStandby(version, keep);
  }
  absl::StatusOr<boot::PreparedStandby> PrepareStandbyInPlace(
      std::string_view version, std::span<const std::string_view> keep) override {
    real_->SetStandbyRelease(standby_release());
    return real_->PrepareStandbyInPlace(version, keep);
  }
  absl::Status CommitSwitch() override {
    int open = 0;
    const std::string prefix = standby_.string();
    for (const auto& fd : stdfs::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      const std::string target = stdfs::read_symlink(fd.path(), ec).string();
      if (!ec && (target == prefix || target.starts_with(prefix + "/"))) ++open;
    }
    open_at_commit_->store(open);
    return real_->CommitSwitch();
  }
  absl::Status OnUpdateFailed(boot::SlotStatus status) override {
    return real_->OnUpdateFailed(status);
  }
  absl::Status CheckRollbackPossible() override { return real_->CheckRollbackPossible(); }
  absl::Status CommitRollback() override { return real_->CommitRollback(); }
  absl::Status Reboot() override { return real_->Reboot(); }

 private:
  std::unique_ptr<boot::BootController> real_;
  stdfs::path standby_;
  std::atomic<int>* open_at_commit_;
};

// The real controller, but its rollback check (which may block on a real backend: CBoot runs
// nvbootctrl and mounts the other slot) waits at a gate until the test opens it.
class CheckGatedBoot : public boot::BootController {
 public:
  explicit CheckGatedBoot(std::unique_ptr<boot::BootController> real) : real_(std::move(real)) {}
  absl::StatusOr<boot::BootState> ConfirmBoot() override { return real_->ConfirmBoot(); }
  std::filesystem::path ActiveRoot() const override { return real_->ActiveRoot(); }
  absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep) override {
    real_->SetStandbyRelease(standby_release());  // the session set it on this wrapper
    return real_->PrepareStandby(version, keep);
  }
  absl::Status CommitSwitch() override { return real_->CommitSwitch(); }
  absl::Status OnUpdateFailed(boot::SlotStatus status) override {
    return real_->OnUpdateFailed(status);
  }
  absl::Status CheckRollbackPossible() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }
    return real_->CheckRollbackPossible();
  }
  absl::Status CommitRollback() override { return real_->CommitRollback(); }
  absl::Status Reboot() override { return real_->Reboot(); }

  void WaitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::unique_ptr<boot::BootController> real_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
};

// The real controller behind a Jetson-UEFI-like BSP guard: it asks for the image's platform
// facts and accepts only `firmware_bsp`, recording what it was shown.
class BspGuardBoot : public boot::BootController {
 public:
  BspGuardBoot(std::unique_ptr<boot::BootController> real, std::string firmware_bsp)
      : real_(std::move(real)), firmware_bsp_(std::move(firmware_bsp)) {}
  absl::StatusOr<boot::BootState> ConfirmBoot() override { return real_->ConfirmBoot(); }
  std::filesystem::path ActiveRoot() const override { return real_->ActiveRoot(); }
  bool WantsImagePlatformInfo() const override { return true; }
  absl::Status CheckImageCompatible(const boot::ImagePlatformInfo& image) override {
    std::lock_guard<std::mutex> lock(mu_);
    shown_ = image.jetson_bsp_version.value_or("(none)");
    if (image.jetson_bsp_version && *image.jetson_bsp_version != firmware_bsp_) {
      return absl::FailedPreconditionError(StrCat("BSP compatibility: image ", shown_));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep) override {
    return real_->PrepareStandby(version, keep);
  }
  absl::Status CommitSwitch() override { return real_->CommitSwitch(); }
  absl::Status OnUpdateFailed(boot::SlotStatus status) override {
    return real_->OnUpdateFailed(status);
  }
  absl::Status Reboot() override { return real_->Reboot(); }
  std::string shown() {
    std::lock_guard<std::mutex> lock(mu_);
    return shown_;
  }

 private:
  std::unique_ptr<boot::BootController> real_;
  std::string firmware_bsp_;
  std::mutex mu_;
  std::string shown_;
};

using Clock = std::chrono::steady_clock;

// Polls `condition` until it holds or `limit` has passed; returns how long it took (or nullopt).
template <typename Condition>
std::optional<Clock::duration> PollUntil(Condition condition, Clock::duration limit) {
  const Clock::time_point start = Clock::now();
  while (!condition()) {
    if (Clock::now() - start > limit) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // poll interval, not a wait
  }
  return Clock::now() - start;
}

std::string Shell(const std::string& script) { return StrCat("set -euo pipefail; ", script); }

class UpdateEngineTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    slots_ = tmp() / "slots";
    stdfs::create_directories(slots_);
  }

  void TearDown() override {
    engine_.reset();  // joins the session before the dirs go away
    nginx_.reset();
  }

  // Runs a bash script (stdout discarded); fails the test on a non-zero exit.
  void Run(const std::string& script) {
    absl::Status st = ota::testing::RunQuietly({"bash", "-c", Shell(script)});
    ASSERT_TRUE(st.ok()) << st << "\n" << script;
  }

  // The updater's own record of what it wrote (/.ota-meta, update/slot_table.h) is no part of
  // the image: left out.
  std::string TreeManifest(const stdfs::path& root, const std::string& excluded = "") {
    const stdfs::path out = tmp() / "tree.txt";
    Run(StrCat("bash ", OTA_SOURCE_DIR, "/test/lib/tree-manifest.sh ", root.string(), " .ota-meta ",
               excluded, " > ", out.string()));
    return ReadFile(out);
  }

  // v1 on slot a (the running system) and a signed v2 image built from a changed copy; with
  // `big_random_bytes`, v2 also gets a new incompressible file of that size (a long download).
  void MakeSlotsAndImage(bool compress = true, size_t big_random_bytes = 0,
                         const std::vector<std::pair<std::string, std::string>>& extra_files = {}) {
    auto pki = ota::testing::CachedTestPki("engine-test");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::move(*pki);
    auto trees = CachedTrees();
    ASSERT_TRUE(trees.ok()) << trees.status();
    Run(StrCat("cp -a ", (*trees / "v1").string(), " ", (slots_ / "slot_a").string()));
    v2_ = *trees / "v2";  // read-only
    if (big_random_bytes > 0) {
      const stdfs::path copy = tmp() / "v2-big";
      Run(StrCat("cp -a ", v2_.string(), " ", copy.string(), " && head -c ", big_random_bytes,
                 " /dev/urandom > ", copy.string(), "/usr/share/big-random.bin"));
      v2_ = copy;
    }
    if (!extra_files.empty()) {
      const stdfs::path copy = tmp() / "v2-extra";
      Run(StrCat("cp -a ", v2_.string(), " ", copy.string()));
      for (const auto& [path, content] : extra_files) WriteFile(copy / path, content);
      v2_ = copy;
    }
    if (v1_inline_max_) {
      BuildV1Image(*v1_inline_max_);
    } else {
      BuildLegacyImage(compress);
    }
    // The running system has its own identity, which must survive the update.
    WriteFile(slots_ / "slot_a/etc/hostname", "ecu-real-name\n");
    WriteFile(slots_ / "slot_a/home/autoware/runtime-state", "state", 0600, 1000, 1000);
    auto nginx = ota::testing::NginxServer::Start(tmp() / "image");
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = std::move(*nginx);
  }

  void BuildLegacyImage(bool compress, const stdfs::path& rootfs = {},
                        const stdfs::path& out_dir = {}) {
    WriteFile(tmp() / "persistents.txt", "/etc/hostname\n/home/autoware\n/etc/not-there\n");
    image::BuildOptions options;
    options.rootfs = rootfs.empty() ? v2_ : rootfs;
    options.out_dir = out_dir.empty() ? tmp() / "image" : out_dir;
    options.key_pem = pki_.path("sign.key");
    options.cert_pem = pki_.path("sign.pem");
    options.persistents_file = tmp() / "persistents.txt";
    options.compress = compress;
    auto summary = image::BuildImage(options);
    ASSERT_TRUE(summary.ok()) << summary.status();
    summary_ = *summary;
  }

  // The same tree as an OTA image v1 (tools/ota-image build --format v1 uses this writer),
  // signed with the x5c chain signer + intermediate; contents of up to `inline_max` bytes are
  // inlined in its file table, the others are resource blobs (small thresholds: bundles and
  // compression happen).
  void BuildV1Image(uint64_t inline_max, const stdfs::path& rootfs = {},
                    const stdfs::path& out_dir = {}) {
    WriteFile(tmp() / "chain.pem", pki_.sign_pem + pki_.interm_pem);
    image::v1::V1BuildOptions options;
    options.rootfs = rootfs.empty() ? v2_ : rootfs;
    options.out_dir = out_dir.empty() ? tmp() / "image" : out_dir;
    options.key_pem = pki_.path("sign.key");
    options.cert_pem = tmp() / "chain.pem";
    options.persist_files = {"/etc/hostname", "/home/autoware", "/etc/not-there"};
    options.inline_max = inline_max;
    options.bundle_member_max = 4096;
    options.bundle_target = 64 << 10;
    options.bundle_min_members = 2;
    auto built = image::v1::BuildV1Image(options);
    ASSERT_TRUE(built.ok()) << built.status();
  }

  void StartEngine(std::function<void(EngineOptions&)> tweak = {}, FetcherFactory factory = {}) {
    boot::DirBootOptions boot_options;
    boot_options.root = slots_;
    boot_options.reboot_hook = [this] {
      reboots_.fetch_add(1);
      return absl::OkStatus();
    };
    auto dir_boot = boot::DirBootController::Create(std::move(boot_options));
    ASSERT_TRUE(dir_boot.ok()) << dir_boot.status();
    auto state = (*dir_boot)->ConfirmBoot();
    ASSERT_TRUE(state.ok()) << state.status();
    std::unique_ptr<boot::BootController> boot = std::make_unique<FdAuditBoot>(
        std::move(*dir_boot), slots_ / "slot_b", &standby_fds_at_commit_);
    if (bsp_guard_) {
      auto guarded = std::make_unique<BspGuardBoot>(std::move(boot), *bsp_guard_);
      bsp_guard_boot_ = guarded.get();
      boot = std::move(guarded);
    }
    if (gate_check_) {
      auto gated = std::make_unique<CheckGatedBoot>(std::move(boot));
      check_gated_boot_ = gated.get();
      boot = std::move(gated);
    }
    if (gate_boot_) {
      auto gated = std::make_unique<GatedBoot>(std::move(boot));
      gated_boot_ = gated.get();
      boot = std::move(gated);
    }
    EngineOptions options;
    options.certs_dir = pki_.dir.empty() ? tmp() / "no-certs" : pki_.certs_dir();
    // Without a PKI the test's update fails before any signature is checked; an empty CA store
    // would refuse it first (E309, NoCaInstalledRefusesTheImage).
    options.allow_unverified_dev = pki_.dir.empty();
    options.fetcher.max_parallel = 8;
    options.fetcher.backoff_initial_ms = 1;
    options.fetcher.backoff_max_ms = 2;
    options.fetcher.max_attempts = 2;
    options.test_phase_hook = [this](std::string_view phase) { watcher_.OnPhase(phase); };
    // The dir backend's rollback check reads a few files: its refusal is synchronous however
    // loaded the machine is (RollbackAcksPromptlyWhileTheBootCheckBlocks keeps the 300 ms).
    options.rollback_check_wait = std::chrono::minutes(1);
    if (tweak) tweak(options);
    if (!factory) {
      factory = [](const http::FetcherConfig& config) { return http::CreateCurlFetcher(config); };
    }
    engine_ = CreateUpdateEngine(std::move(options), std::move(boot), *state, std::move(factory));
  }

  // A new engine over the same slots, as after a "reboot" (the old one is joined first).
  void RestartEngine() {
    engine_.reset();
    watcher_.Clear();
    StartEngine();
  }

  // What every abort leaves behind: status ABORTED naming the interrupted phase, the active slot
  // byte-identical, the standby unbootable (ABORTED when it had been prepared, else untouched),
  // no boot switch; the engine is idle again.
  void ExpectAborted(const std::string& phase, const std::string& active_before,
                     bool standby_prepared) {
    // The hook runs right after the status turned ABORTED.
    ASSERT_TRUE(watcher_.WaitFor("Aborted"));
    StatusSnapshot s = engine_->Snapshot();
    EXPECT_EQ(s.status, OtaStatus::kAborted);
    EXPECT_EQ(s.failure_type, 0);
    EXPECT_EQ(s.failure_reason, StrCat("update to version v2 aborted by request during ", phase));
    EXPECT_EQ(watcher_.seen().back(), "Aborted");
    EXPECT_EQ(TreeManifest(slots_ / "slot_a"), active_before);
    if (standby_prepared) {
      EXPECT_EQ(BootFile("slot_b/status"), "ABORTED");
    } else {
      EXPECT_FALSE(stdfs::exists(slots_ / "boot/slot_b/status"));
    }
    EXPECT_FALSE(stdfs::exists(slots_ / "boot/next_boot"));
    EXPECT_EQ(BootFile("default"), "a");
    EXPECT_EQ(reboots_.load(), 0);
    absl::StatusOr<std::string> again = engine_->Abort();
    EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(again.status().message(), "Cannot abort: no active OTA update in progress");
  }

  // The next update after an abort runs to the end and yields exactly v2.
  void ExpectNextUpdateSucceeds() {
    watcher_.Release();
    const int committed_before = CountSeen("Committed");
    ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
    ASSERT_TRUE(watcher_.WaitFor("Committed", committed_before + 1));
    EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kUpdating);
    EXPECT_EQ(BootFile("next_boot"), "b");
    EXPECT_EQ(TreeManifest(slots_ / "slot_b", "etc/hostname home/autoware"),
              TreeManifest(v2_, "etc/hostname home/autoware"));
  }

  int CountSeen(std::string_view phase) {
    auto seen = watcher_.seen();
    return static_cast<int>(std::count(seen.begin(), seen.end(), phase));
  }

  // Holds the session in `phase`, aborts there and lets it go; the abort must finish quickly.
  void AbortWhileHeldIn(const std::string& phase) {
    watcher_.HoldAt(phase);
    ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
    ASSERT_TRUE(watcher_.WaitHeld());
    EXPECT_EQ(engine_->Abort().value_or("refused"), "Abort accepted, aborting update immediately");
    EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kAborting);
    // Idempotent while aborting.
    EXPECT_EQ(engine_->Abort().value_or("refused"), "Abort already in progress");
    absl::Status busy = engine_->StartUpdate(Request("v3"));
    EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition) << busy;
    watcher_.Release();
    ASSERT_TRUE(PollUntil([&] { return engine_->Snapshot().status == OtaStatus::kAborted; },
                          std::chrono::seconds(5)));
  }

  UpdateRequestParams Request(std::string version = "v2", const std::string& url_path = "/") {
    UpdateRequestParams r;
    r.version = std::move(version);
    r.url = nginx_ ? nginx_->HttpUrl(url_path) : "http://127.0.0.1:9/";
    r.cookies_json = R"({"CloudFront-Policy": "abc"})";
    r.release_name = "release-2";
    r.release_id = "2024.10";
    r.image_id = "img-\xc3\xa9";  // non-ASCII: \u00e9 in version_detail, as json.dumps writes it
    r.request_id = "req-1";
    return r;
  }

  // v1 and v2 rootfs trees from test/lib/make-rootfs.sh, made once and shared by every test
  // process (making them takes most of a minute on a busy machine). Keyed by the script's hash.
  static absl::StatusOr<stdfs::path> CachedTrees() {
    const std::string lib = StrCat(OTA_SOURCE_DIR, "/test/lib");
    OTA_ASSIGN_OR_RETURN(std::string script, fs::ReadFile(lib + "/make-rootfs.sh"));
    const stdfs::path base = stdfs::path(OTA_BINARY_DIR) / "test-update-trees";
    std::error_code ec;
    stdfs::create_directories(base, ec);
    const stdfs::path lock_path = base / "lock";
    fs::UniqueFd lock(::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    if (!lock.valid()) return ErrnoStatus(errno, StrCat("open ", lock_path.string()));
    while (::flock(lock.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return ErrnoStatus(errno, "flock");
    }
    const stdfs::path dir = base / crypto::ToHex(crypto::Sha256Of(script)).substr(0, 16);
    if (stdfs::exists(dir / "complete")) return dir;
    stdfs::remove_all(dir, ec);
    stdfs::create_directories(dir, ec);
    OTA_RETURN_IF_ERROR(ota::testing::RunQuietly(
        {"bash", "-c",
         Shell(StrCat("bash ", lib, "/make-rootfs.sh ", (dir / "v1").string(), " v1; bash ", lib,
                      "/make-rootfs.sh ", (dir / "v2").string(), " v2 ", (dir / "v1").string(),
                      "; head -c 200000 /dev/zero | tr '\\0' z > ", (dir / "v2").string(),
                      "/usr/share/doc/big-text.txt"))}));
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(dir / "complete", ""));
    return dir;
  }

  std::string BootFile(const std::string& name) { return ReadFile(slots_ / "boot" / name); }

  stdfs::path slots_, v2_;
  ota::testing::TestPki pki_;
  image::BuildSummary summary_;
  std::unique_ptr<ota::testing::NginxServer> nginx_;
  PhaseWatcher watcher_;
  bool gate_boot_ = false;
  GatedBoot* gated_boot_ = nullptr;
  bool gate_check_ = false;
  CheckGatedBoot* check_gated_boot_ = nullptr;
  // Set before MakeSlotsAndImage: the image is an OTA image v1 inlining contents up to this size.
  std::optional<uint64_t> v1_inline_max_;
  std::optional<std::string> bsp_guard_;  // the firmware BSP of a BspGuardBoot
  BspGuardBoot* bsp_guard_boot_ = nullptr;
  std::atomic<int> standby_fds_at_commit_{-1};
  std::atomic<int> reboots_{0};
  std::unique_ptr<UpdateEngine> engine_;
};

TEST_F(UpdateEngineTest, FullUpdateReusesLocalContentAndBootsTheNewSlot) {
  MakeSlotsAndImage();
  const std::string active_before = TreeManifest(slots_ / "slot_a");
  StartEngine();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));

  EXPECT_EQ(watcher_.seen(),
            (std::vector<std::string>{"ProcessingMetadata", "PreparingStandby", "CalculatingDelta",
                                      "Downloading", "Applying", "Persistents", "PostUpdate",
                                      "CommittingSwitch", "Rebooting", "Committed"}));
  EXPECT_EQ(reboots_.load(), 1);
  // CommitSwitch may unmount the standby: the session holds nothing open in it by then.
  EXPECT_EQ(standby_fds_at_commit_.load(), 0);
  EXPECT_EQ(BootFile("next_boot"), "b");
  EXPECT_EQ(BootFile("slot_b/status"), "UPDATING");
  EXPECT_EQ(BootFile("slot_b/version"), "v2");

  // The standby is exactly v2, except the persistent files, which come from the running slot.
  EXPECT_EQ(TreeManifest(slots_ / "slot_b", "etc/hostname home/autoware"),
            TreeManifest(v2_, "etc/hostname home/autoware"));
  EXPECT_EQ(ReadFile(slots_ / "slot_b/etc/hostname"), "ecu-real-name\n");
  EXPECT_EQ(ReadFile(slots_ / "slot_b/home/autoware/runtime-state"), "state");
  EXPECT_FALSE(stdfs::exists(slots_ / "slot_b/.ota-resources"));
  EXPECT_FALSE(stdfs::exists(slots_ / "slot_b/etc/not-there"));
  // The active slot was never written.
  EXPECT_EQ(TreeManifest(slots_ / "slot_a"), active_before);

  StatusSnapshot s = engine_->Snapshot();
  EXPECT_EQ(s.status, OtaStatus::kUpdating);  // until the reboot confirms it
  EXPECT_EQ(s.progress.phase, UpdatePhase::kFinalizingUpdate);
  EXPECT_EQ(s.progress.v1_phase, V1Phase::kPostProcessing);
  EXPECT_EQ(s.progress.update_firmware_version, "v2");
  // Until the new slot runs, the release fields are the running image's (none here).
  EXPECT_EQ(s.release_name, "");
  EXPECT_EQ(s.release_id, "");
  EXPECT_EQ(s.image_id, "");
  // The requested release is recorded with the new slot, in the Python client's format.
  EXPECT_EQ(BootFile("slot_b/version_detail"),
            R"({"release_name": "release-2", "release_id": "2024.10", "image_id": "img-\u00e9"})");
  EXPECT_EQ(s.progress.total_files_num, summary_.regulars);
  EXPECT_EQ(s.progress.total_files_size, summary_.total_regular_size);
  EXPECT_EQ(s.progress.processed_files_num, summary_.regulars);
  EXPECT_EQ(s.progress.processed_files_size, summary_.total_regular_size);
  EXPECT_EQ(s.progress.files_copy + s.progress.files_link + s.progress.files_download,
            summary_.regulars);
  EXPECT_EQ(s.progress.files_link, 3u);  // busybox group of 3 (2 links) + twin pair (1 link)
  EXPECT_GT(s.progress.files_copy, 0u);  // reused from slot a
  EXPECT_GT(s.progress.total_download_files_num, 0u);
  EXPECT_LT(s.progress.total_download_files_num, summary_.regulars / 2);
  EXPECT_EQ(s.progress.downloaded_files_num, s.progress.total_download_files_num);
  EXPECT_EQ(s.progress.downloaded_files_size, s.progress.total_download_files_size);
  EXPECT_GT(s.progress.downloaded_bytes, 0u);
  EXPECT_LT(s.progress.downloaded_bytes, s.progress.downloaded_files_size);  // zstd blob
  EXPECT_GT(s.progress.update_start_timestamp, 0u);

  // Only the missing contents went over the network, compressed ones as zstd blobs.
  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(ota::testing::EntriesFor(*log, "/data/").size() +
                ota::testing::EntriesFor(*log, "/data.zst/").size(),
            s.progress.total_download_files_num);
  // big-text.txt is new in v2 and compressible; other blobs may have been reused locally.
  EXPECT_GE(ota::testing::EntriesFor(*log, "/data.zst/").size(), 1u);
  EXPECT_LE(ota::testing::EntriesFor(*log, "/data.zst/").size(), summary_.compressed_files);

  // A second request now is refused: the standby is armed for the next boot.
  absl::Status busy = engine_->StartUpdate(Request("v3"));
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(busy.message(), "update already in progress (version v2, phase Committed)");

  // "Reboot": a new controller on the same root boots slot b and confirms it.
  engine_.reset();
  boot::DirBootOptions boot_options;
  boot_options.root = slots_;
  auto boot = boot::DirBootController::Create(std::move(boot_options));
  ASSERT_TRUE(boot.ok());
  auto state = (*boot)->ConfirmBoot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, boot::SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");
  EXPECT_EQ(state->release, (boot::ReleaseInfo{"release-2", "2024.10", "img-\xc3\xa9"}));
  EXPECT_EQ((*boot)->ActiveRoot(), slots_ / "slot_b");
  // An engine started there reports them for the running slot.
  boot.value().reset();
  StartEngine();
  const StatusSnapshot after = engine_->Snapshot();
  EXPECT_EQ(after.status, OtaStatus::kSuccess);
  EXPECT_EQ(after.firmware_version, "v2");
  EXPECT_EQ(after.release_name, "release-2");
  EXPECT_EQ(after.release_id, "2024.10");
  EXPECT_EQ(after.image_id, "img-\xc3\xa9");
}

// An update without all three release fields leaves no version_detail (upstream writes it only
// when all are set), and removes a stale one the standby slot had from an earlier image.
TEST_F(UpdateEngineTest, IncompleteReleaseFieldsRecordNoVersionDetail) {
  MakeSlotsAndImage(/*compress=*/false);
  WriteFile(slots_ / "boot/slot_b/version_detail",
            R"({"release_name": "old", "release_id": "old", "image_id": "old"})");
  StartEngine();
  UpdateRequestParams request = Request();
  request.image_id.clear();
  ASSERT_TRUE(engine_->StartUpdate(request).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/slot_b/version_detail"));
  RestartEngine();
  EXPECT_EQ(engine_->Snapshot().firmware_version, "v2");
  EXPECT_EQ(engine_->Snapshot().release_name, "");
}

// Waiting for the secondaries before the reboot is upstream's FINALIZING_UPDATE phase.
TEST_F(UpdateEngineTest, TheWaitBeforeTheRebootIsFinalizingUpdate) {
  MakeSlotsAndImage(/*compress=*/false);
  std::optional<StatusSnapshot> seen_in_wait;
  StartEngine(
      [&](EngineOptions& o) { o.before_reboot = [&] { seen_in_wait = engine_->Snapshot(); }; });
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  ASSERT_TRUE(seen_in_wait.has_value());
  EXPECT_EQ(seen_in_wait->status, OtaStatus::kUpdating);
  EXPECT_EQ(seen_in_wait->progress.phase, UpdatePhase::kFinalizingUpdate);
  EXPECT_EQ(BootFile("next_boot"), "b");  // the switch was committed before the wait
}

// What EngineOptions::on_session_start / on_session_end saw.
struct SessionRecord {
  std::mutex mu;
  std::vector<std::string> starts;  // request ids
  std::vector<SessionEnd> ends;
  std::vector<int> reboots_at_end;  // reboots already done when the end was reported
  void Observe(EngineOptions& options, std::atomic<int>* reboots) {
    options.on_session_start = [this](const UpdateRequestParams& request) {
      std::lock_guard<std::mutex> lock(mu);
      starts.push_back(request.request_id);
    };
    options.on_session_end = [this, reboots](const SessionEnd& end) {
      std::lock_guard<std::mutex> lock(mu);
      ends.push_back(end);
      reboots_at_end.push_back(reboots->load());
    };
  }
};

// The fleet metrics record is fed from here: one end per session, reported before the reboot,
// with the first entry of each wire phase (unix seconds, in order) and the image's shape.
TEST_F(UpdateEngineTest, SessionObserversGetOneEndBeforeTheRebootWithPhaseTimes) {
  MakeSlotsAndImage();
  SessionRecord record;
  const uint64_t before = static_cast<uint64_t>(std::time(nullptr));
  StartEngine([&](EngineOptions& o) { record.Observe(o, &reboots_); });
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  const uint64_t after = static_cast<uint64_t>(std::time(nullptr));

  std::lock_guard<std::mutex> lock(record.mu);
  EXPECT_EQ(record.starts, std::vector<std::string>{"req-1"});
  ASSERT_EQ(record.ends.size(), 1u);
  const SessionEnd& end = record.ends[0];
  EXPECT_EQ(record.reboots_at_end[0], 0);  // reported before Reboot()
  EXPECT_EQ(reboots_.load(), 1);
  EXPECT_TRUE(end.committed);
  EXPECT_TRUE(end.rebooting);
  EXPECT_EQ(end.request.request_id, "req-1");
  EXPECT_EQ(end.request.version, "v2");
  EXPECT_EQ(end.status.status, OtaStatus::kUpdating);
  const Progress& p = end.status.progress;
  uint64_t previous = before;
  for (size_t phase = 0; phase < kUpdatePhaseCount; ++phase) {
    SCOPED_TRACE(phase);
    EXPECT_GE(p.phase_start_timestamps.at(phase), previous);
    EXPECT_LE(p.phase_start_timestamps.at(phase), after);
    previous = p.phase_start_timestamps.at(phase);
  }
  EXPECT_EQ(p.phase_start_timestamps.at(0), p.update_start_timestamp);
  EXPECT_GE(p.reboot_start_timestamp, previous);
  EXPECT_LE(p.reboot_start_timestamp, after);
  EXPECT_EQ(p.total_files_num, summary_.regulars);
  EXPECT_EQ(p.total_directories_num, summary_.dirs);
  EXPECT_EQ(p.total_symlinks_num, summary_.symlinks);
  EXPECT_EQ(p.image_format, OtaImageFormat::kLegacy);
  EXPECT_GT(p.downloaded_bytes, 0u);
  EXPECT_EQ(p.downloaded_files_num, p.total_download_files_num);
}

TEST_F(UpdateEngineTest, SessionObserversSeeFailuresAbortsAndCommitsWithoutReboot) {
  MakeSlotsAndImage();
  SessionRecord record;
  StartEngine([&](EngineOptions& o) {
    record.Observe(o, &reboots_);
    o.reboot_after_update = false;
  });
  // A failure: the image is not there.
  UpdateRequestParams missing = Request();
  missing.url = nginx_->HttpUrl("/no-such-image/");
  missing.request_id = "req-missing";
  ASSERT_TRUE(engine_->StartUpdate(missing).ok());
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  // An abort, held in Downloading.
  AbortWhileHeldIn("Downloading");
  ASSERT_TRUE(watcher_.WaitFor("Aborted"));
  // A committed update without a reboot: reported on entering Committed.
  const int committed_before = CountSeen("Committed");
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed", committed_before + 1));
  std::lock_guard<std::mutex> lock(record.mu);
  EXPECT_EQ(record.starts, (std::vector<std::string>{"req-missing", "req-1", "req-1"}));
  ASSERT_EQ(record.ends.size(), 3u);
  const SessionEnd& failed = record.ends[0];
  EXPECT_FALSE(failed.committed);
  EXPECT_FALSE(failed.rebooting);
  EXPECT_EQ(failed.status.status, OtaStatus::kFailure);
  EXPECT_EQ(failed.status.failure_type, 1);
  EXPECT_THAT(failed.status.failure_reason, ::testing::HasSubstr("no-such-image"));
  EXPECT_GT(failed.status.progress.phase_start_timestamps.at(1), 0u);  // metadata was reached
  EXPECT_EQ(failed.status.progress.phase_start_timestamps.at(2), 0u);  // delta was not
  EXPECT_EQ(failed.status.progress.image_format, OtaImageFormat::kUnknown);
  const SessionEnd& aborted = record.ends[1];
  EXPECT_FALSE(aborted.committed);
  EXPECT_EQ(aborted.status.status, OtaStatus::kAborted);
  EXPECT_GT(aborted.status.progress.phase_start_timestamps.at(3), 0u);  // downloading
  EXPECT_EQ(aborted.status.progress.phase_start_timestamps.at(4), 0u);
  const SessionEnd& committed = record.ends[2];
  EXPECT_TRUE(committed.committed);
  EXPECT_FALSE(committed.rebooting);
  EXPECT_EQ(committed.status.progress.reboot_start_timestamp, 0u);
  EXPECT_GT(committed.status.progress.phase_start_timestamps.at(6), 0u);  // finalizing
}

// The real fetcher; records the priority of the threads that fetch and that take the results.
class PriorityRecordingFetcher : public http::Fetcher {
 public:
  PriorityRecordingFetcher(std::unique_ptr<http::Fetcher> real, std::mutex* mu,
                           std::vector<ThreadPriority>* seen)
      : real_(std::move(real)), mu_(mu), seen_(seen) {}
  absl::StatusOr<std::string> Get(const std::string& url, const http::GetOptions& o) override {
    Record();
    return real_->Get(url, o);
  }
  absl::Status DownloadAll(std::span<const http::DownloadJob> jobs,
                           const std::function<bool(const http::DownloadResult&)>& on_result,
                           const http::TransferObserver& observer,
                           const http::CancelFlag& cancel) override {
    Record();
    return real_->DownloadAll(
        jobs,
        [&](const http::DownloadResult& result) {
          Record();
          return on_result(result);
        },
        observer, cancel);
  }

 private:
  void Record() {
    auto priority = ThisThreadPriority();
    ASSERT_TRUE(priority.ok()) << priority.status();
    std::lock_guard<std::mutex> lock(*mu_);
    seen_->push_back(*priority);
  }
  std::unique_ptr<http::Fetcher> real_;
  std::mutex* mu_;
  std::vector<ThreadPriority>* seen_;
};

TEST_F(UpdateEngineTest, TheUpdateRunsAtTheBackgroundPriorityAndTheServiceDoesNot) {
  MakeSlotsAndImage();
  auto service = ThisThreadPriority();
  ASSERT_TRUE(service.ok()) << service.status();
  const int nice = std::max(13, service->nice);
  std::mutex mu;
  std::vector<ThreadPriority> seen;
  StartEngine(
      [&](EngineOptions& options) {
        options.worker_nice = nice;
        options.test_phase_hook = [&](std::string_view phase) {
          auto priority = ThisThreadPriority();
          ASSERT_TRUE(priority.ok()) << priority.status();
          {
            std::lock_guard<std::mutex> lock(mu);
            seen.push_back(*priority);
          }
          watcher_.OnPhase(phase);
        };
      },
      [&](const http::FetcherConfig& config) {
        return std::make_unique<PriorityRecordingFetcher>(http::CreateCurlFetcher(config), &mu,
                                                          &seen);
      });
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  engine_.reset();  // joins the session

  // Every phase, every fetch and every download result ran niced, at the lowest best-effort
  // I/O level; the thread that called StartUpdate (a gRPC thread in the service) did not change.
  ASSERT_GE(seen.size(), 9u + 4u);  // nine phases, four list files at least
  for (const ThreadPriority& priority : seen) {
    EXPECT_EQ(priority.nice, nice);
    EXPECT_EQ(priority.io_class, 2);
    EXPECT_EQ(priority.io_level, kBackgroundIoLevel);
  }
  auto after = ThisThreadPriority();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->nice, service->nice);
  EXPECT_EQ(after->io_class, service->io_class);
}

TEST_F(UpdateEngineTest, BusyWhileRunningAndMetadataFailureTouchesNoSlot) {
  WriteFile(slots_ / "slot_b/marker", "standby content before");
  StartEngine({}, [](const http::FetcherConfig&) { return std::make_unique<NotFoundFetcher>(); });
  watcher_.HoldAt("ProcessingMetadata");
  ASSERT_TRUE(engine_->StartUpdate(Request("v1")).ok());
  ASSERT_TRUE(watcher_.WaitHeld());

  StatusSnapshot during = engine_->Snapshot();
  EXPECT_EQ(during.status, OtaStatus::kUpdating);
  EXPECT_EQ(during.progress.phase, UpdatePhase::kProcessingMetadata);
  EXPECT_EQ(during.progress.v1_phase, V1Phase::kMetadata);
  absl::Status busy = engine_->StartUpdate(Request("v9"));
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(busy.message(), "update already in progress (version v1, phase ProcessingMetadata)");
  // Bad requests while busy are rejected as busy, and change nothing either.
  UpdateRequestParams bad = Request("v9");
  bad.cookies_json = "{not json";
  EXPECT_EQ(engine_->StartUpdate(bad).code(), absl::StatusCode::kFailedPrecondition);
  StatusSnapshot still = engine_->Snapshot();
  EXPECT_EQ(still.status, OtaStatus::kUpdating);
  EXPECT_EQ(still.progress.update_firmware_version, "v1");

  watcher_.Release();
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  StatusSnapshot failed = engine_->Snapshot();
  EXPECT_EQ(failed.status, OtaStatus::kFailure);
  EXPECT_EQ(failed.failure_type, 1);  // 404: recoverable
  EXPECT_TRUE(failed.failure_reason.starts_with(
      "E203: failed to complete OTA as OTA image is broken: loading image metadata from "))
      << failed.failure_reason;
  EXPECT_NE(failed.failure_reason.find("metadata.jwt"), std::string::npos) << failed.failure_reason;
  EXPECT_EQ(failed.progress.phase, UpdatePhase::kProcessingMetadata);
  // PrepareStandby never ran: no status for slot b, its content untouched.
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/slot_b/status"));
  EXPECT_EQ(ReadFile(slots_ / "slot_b/marker"), "standby content before");

  // The next request starts at once.
  ASSERT_TRUE(engine_->StartUpdate(Request("v2")).ok());
  ASSERT_TRUE(watcher_.WaitFor("Failed", 2));
  EXPECT_EQ(engine_->Snapshot().progress.update_firmware_version, "v2");
}

TEST_F(UpdateEngineTest, InvalidRequestsAreRejectedWithoutChangingAnything) {
  StartEngine({}, [](const http::FetcherConfig&) { return std::make_unique<NotFoundFetcher>(); });
  struct Case {
    std::string version, url, cookies, expect_in_message;
  };
  const std::vector<Case> cases = {
      {"", "http://h/", "", "version"},          {"v2", "ftp://h/image", "", "scheme"},
      {"v2", "file:///srv/image", "", "scheme"}, {"v2", "http://", "", "no host"},
      {"v2", "https:///path", "", "no host"},    {"v2", "http://h/a b", "", "whitespace"},
      {"v2", "HTTP//h", "", "scheme"},           {"v2", "http://h/", "{not json", "cookies"},
      {"v2", "http://h/", "[]", "cookies"},      {"v2", "http://h/", R"({"a": 1})", "cookies"},
  };
  for (const Case& c : cases) {
    UpdateRequestParams r;
    r.version = c.version;
    r.url = c.url;
    r.cookies_json = c.cookies;
    absl::Status st = engine_->StartUpdate(r);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.url << " " << c.cookies;
    EXPECT_NE(st.message().find(c.expect_in_message), std::string::npos) << st;
    StatusSnapshot s = engine_->Snapshot();
    EXPECT_EQ(s.status, OtaStatus::kInitialized);
    EXPECT_TRUE(s.progress.update_firmware_version.empty());
  }
  EXPECT_TRUE(watcher_.seen().empty());
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/slot_b/status"));
}

TEST_F(UpdateEngineTest, NoCaInstalledRefusesTheImage) {
  MakeSlotsAndImage(/*compress=*/false);
  WriteFile(slots_ / "slot_b/marker", "untouched");
  StartEngine([this](EngineOptions& o) { o.certs_dir = tmp() / "empty-certs"; });
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  StatusSnapshot s = engine_->Snapshot();
  EXPECT_EQ(s.status, OtaStatus::kFailure);
  EXPECT_EQ(s.failure_type, 2);  // E309, as upstream
  EXPECT_TRUE(s.failure_reason.starts_with(
      "E309: unrecoverable OTA error, please contact technical support: certificate "
      "verification failed for OTA metadata.jwt: no CA certificates installed in "))
      << s.failure_reason;
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/slot_b/status"));
  EXPECT_EQ(ReadFile(slots_ / "slot_b/marker"), "untouched");
}

TEST_F(UpdateEngineTest, FailedDownloadKeepsResourcesAndTheRetryResumes) {
  MakeSlotsAndImage(/*compress=*/false);
  // One file the delta cannot find locally disappears from the server.
  const stdfs::path victim = tmp() / "image/data/usr/share/new-in-v2/file7.bin";
  ASSERT_TRUE(stdfs::exists(victim));
  stdfs::rename(victim, tmp() / "hidden.bin");
  StartEngine();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  StatusSnapshot first = engine_->Snapshot();
  EXPECT_EQ(first.status, OtaStatus::kFailure);
  EXPECT_EQ(first.failure_type, 1);
  EXPECT_TRUE(first.failure_reason.starts_with("E203: ")) << first.failure_reason;  // HTTP 404
  EXPECT_NE(first.failure_reason.find("file7.bin"), std::string::npos) << first.failure_reason;
  EXPECT_EQ(first.progress.phase, UpdatePhase::kDownloadingOtaFiles);
  EXPECT_EQ(BootFile("slot_b/status"), "FAILURE");
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/next_boot"));
  EXPECT_EQ(BootFile("default"), "a");
  EXPECT_FALSE(stdfs::is_empty(slots_ / "slot_b/.ota-resources"));

  stdfs::rename(tmp() / "hidden.bin", victim);
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  StatusSnapshot second = engine_->Snapshot();
  EXPECT_EQ(second.failure_type, 0);
  EXPECT_TRUE(second.failure_reason.empty());
  // Everything fetched or copied the first time was reused from the resources dir.
  EXPECT_LT(second.progress.total_download_files_num, first.progress.total_download_files_num);
  EXPECT_GE(second.progress.total_download_files_num, 1u);
  EXPECT_EQ(TreeManifest(slots_ / "slot_b", "etc/hostname home/autoware"),
            TreeManifest(v2_, "etc/hostname home/autoware"));
}

// Persistent files are best effort, as upstream: a fifo where a persistent directory should be
// is skipped with a warning, and the update goes on (the image's own copy stays).
TEST_F(UpdateEngineTest, SpecialPersistentFileIsSkippedAndTheUpdateGoesOn) {
  MakeSlotsAndImage(/*compress=*/false);
  stdfs::remove_all(slots_ / "slot_a/home/autoware");
  ASSERT_EQ(::mkfifo((slots_ / "slot_a/home/autoware").c_str(), 0600), 0);
  StartEngine();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_EQ(CountSeen("Failed"), 0);
  EXPECT_EQ(BootFile("next_boot"), "b");
  EXPECT_TRUE(stdfs::is_directory(slots_ / "slot_b/home/autoware"));
  EXPECT_EQ(ReadFile(slots_ / "slot_b/etc/hostname"), "ecu-real-name\n");
}

TEST_F(UpdateEngineTest, ShutdownDuringDownloadCancelsAndMarksTheStandbyFailed) {
  MakeSlotsAndImage(/*compress=*/false);
  std::promise<void> download_started;
  StartEngine({}, [&download_started](const http::FetcherConfig& config) {
    return std::make_unique<BlockingDownloadFetcher>(http::CreateCurlFetcher(config),
                                                     &download_started);
  });
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  download_started.get_future().wait();
  engine_.reset();  // cancels, joins
  EXPECT_EQ(watcher_.seen().back(), "Failed");
  EXPECT_EQ(BootFile("slot_b/status"), "FAILURE");
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/next_boot"));
  EXPECT_EQ(reboots_.load(), 0);
}

TEST_F(UpdateEngineTest, InitialStateComesFromTheBootController) {
  // A fallback detected at boot is reported as a recoverable failure with its reason.
  WriteFile(slots_ / "boot/slot_b/status", "UPDATING");
  WriteFile(slots_ / "boot/slot_b/switch_committed", "");
  WriteFile(slots_ / "boot/slot_a/version", "v1");
  StartEngine({}, [](const http::FetcherConfig&) { return std::make_unique<NotFoundFetcher>(); });
  StatusSnapshot s = engine_->Snapshot();
  EXPECT_EQ(s.status, OtaStatus::kFailure);
  EXPECT_EQ(s.failure_type, 1);
  EXPECT_EQ(s.failure_reason, "new slot b did not boot; running a");
  EXPECT_EQ(s.firmware_version, "v1");
}

// The Jetson UEFI BSP guard's seam: the image's own /etc/nv_tegra_release (a signed, zstd
// compressed content) reaches the backend before the standby is touched; a refusal is a
// RECOVERABLE failure with both slots untouched, a match lets the update run.
TEST_F(UpdateEngineTest, ImagePlatformCheckRunsBeforeTheStandbyIsTouched) {
  MakeSlotsAndImage(/*compress=*/true, 0,
                    {{"etc/nv_tegra_release",
                      "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: "
                      "aarch64, DATE: Thu Apr 25 03:14:05 UTC 2024\n"}});
  WriteFile(slots_ / "slot_b/marker", "standby content before");
  bsp_guard_ = "R35.4.1";
  StartEngine();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  StatusSnapshot failed = engine_->Snapshot();
  EXPECT_EQ(failed.status, OtaStatus::kFailure);
  EXPECT_EQ(failed.failure_type, 1);  // recoverable
  EXPECT_NE(failed.failure_reason.find("BSP compatibility: image R36.3.0"), std::string::npos)
      << failed.failure_reason;
  EXPECT_EQ(bsp_guard_boot_->shown(), "R36.3.0");
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/slot_b/status"));
  EXPECT_EQ(ReadFile(slots_ / "slot_b/marker"), "standby content before");

  // The same image on a machine whose firmware matches: the update runs to the switch.
  engine_.reset();
  watcher_.Clear();
  bsp_guard_ = "R36.3.0";
  StartEngine();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_EQ(BootFile("next_boot"), "b");
}

// Issue 12: the same guard for an OTA image v1, whose /etc/nv_tegra_release is inlined in the
// file table (param true) or a resource blob fetched through the v1 content source (false):
// another BSP is refused before anything is written, with the reason; the firmware's own BSP
// lets the update run to the switch.
class UpdateEngineV1BspGuardTest : public UpdateEngineTest,
                                   public ::testing::WithParamInterface<bool> {};

TEST_P(UpdateEngineV1BspGuardTest, ImagePlatformCheckRunsBeforeTheStandbyIsTouched) {
  const std::string release =
      "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, DATE: Thu "
      "Apr 25 03:14:05 UTC 2024\n";
  v1_inline_max_ = GetParam() ? release.size() : 64;
  ASSERT_GT(release.size(), 64u);  // so the blob variant really is one
  MakeSlotsAndImage(/*compress=*/true, 0, {{"etc/nv_tegra_release", release}});
  WriteFile(slots_ / "slot_b/marker", "standby content before");
  bsp_guard_ = "R35.4.1";
  StartEngine();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  StatusSnapshot failed = engine_->Snapshot();
  EXPECT_EQ(failed.status, OtaStatus::kFailure);
  EXPECT_EQ(failed.failure_type, 1);  // recoverable
  EXPECT_NE(failed.failure_reason.find("BSP compatibility: image R36.3.0"), std::string::npos)
      << failed.failure_reason;
  EXPECT_EQ(bsp_guard_boot_->shown(), "R36.3.0");
  EXPECT_EQ(CountSeen("PreparingStandby"), 0);
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/slot_b/status"));
  EXPECT_EQ(ReadFile(slots_ / "slot_b/marker"), "standby content before");

  engine_.reset();
  watcher_.Clear();
  bsp_guard_ = "R36.3.0";
  StartEngine();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_EQ(bsp_guard_boot_->shown(), "R36.3.0");
  EXPECT_EQ(BootFile("next_boot"), "b");
  EXPECT_EQ(ReadFile(slots_ / "slot_b/etc/nv_tegra_release"), release);
}

INSTANTIATE_TEST_SUITE_P(InlineOrBlob, UpdateEngineV1BspGuardTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Inline" : "Blob"; });

TEST_F(UpdateEngineTest, AbortWithNothingRunningIsRefused) {
  StartEngine({}, [](const http::FetcherConfig&) { return std::make_unique<NotFoundFetcher>(); });
  absl::StatusOr<std::string> idle = engine_->Abort();
  EXPECT_EQ(idle.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(idle.status().message(), "Cannot abort: no active OTA update in progress");
  // After a failed update nothing runs either.
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  EXPECT_EQ(engine_->Abort().status().message(), "Cannot abort: no active OTA update in progress");
  EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kFailure);
}

TEST_F(UpdateEngineTest, AbortDuringMetadataTouchesNoSlot) {
  MakeSlotsAndImage(/*compress=*/false);
  const std::string active_before = TreeManifest(slots_ / "slot_a");
  WriteFile(slots_ / "slot_b/marker", "standby content before");
  StartEngine();
  AbortWhileHeldIn("ProcessingMetadata");
  ExpectAborted("ProcessingMetadata", active_before, /*standby_prepared=*/false);
  EXPECT_EQ(ReadFile(slots_ / "slot_b/marker"), "standby content before");
  EXPECT_EQ(CountSeen("PreparingStandby"), 0);
  ExpectNextUpdateSucceeds();
}

TEST_F(UpdateEngineTest, AbortDuringStandbyPreparationIsQueuedUntilItEnds) {
  MakeSlotsAndImage(/*compress=*/false);
  const std::string active_before = TreeManifest(slots_ / "slot_a");
  gate_boot_ = true;
  StartEngine();
  std::future<void> entered = gated_boot_->Entered();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  entered.wait();  // the session is inside PrepareStandby now
  EXPECT_EQ(engine_->Abort().value_or("refused"),
            "Abort queued, will proceed after critical zone exits");
  // As upstream: UPDATING until the critical zone is left.
  EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kUpdating);
  EXPECT_EQ(engine_->Abort().value_or("refused"), "Abort already in progress");
  // Queued, not executed: the critical part has not even marked the standby yet.
  EXPECT_FALSE(stdfs::exists(slots_ / "boot/slot_b/status"));
  EXPECT_EQ(CountSeen("Aborted"), 0);
  gated_boot_->Open();
  ASSERT_TRUE(watcher_.WaitFor("Aborted"));
  // PrepareStandby ran to its end, then the queued abort fired before the delta started.
  EXPECT_EQ(CountSeen("CalculatingDelta"), 0);
  ExpectAborted("PreparingStandby", active_before, /*standby_prepared=*/true);
  EXPECT_EQ(BootFile("slot_b/version"), "v2");
  gate_boot_ = false;  // the gated controller is spent; a plain one from here on
  RestartEngine();
  ExpectNextUpdateSucceeds();
}

TEST_F(UpdateEngineTest, AbortDuringDeltaMarksTheStandbyAborted) {
  MakeSlotsAndImage(/*compress=*/false);
  const std::string active_before = TreeManifest(slots_ / "slot_a");
  StartEngine();
  AbortWhileHeldIn("CalculatingDelta");
  ExpectAborted("CalculatingDelta", active_before, /*standby_prepared=*/true);
  EXPECT_EQ(CountSeen("Downloading"), 0);
  ExpectNextUpdateSucceeds();
}

TEST_F(UpdateEngineTest, AbortMidDownloadStopsPromptlyAndTheNextUpdateResumes) {
  // A 4 MiB file at nginx's /slow/ rate (128 KiB/s per connection) takes ~30 s: the abort lands
  // in the middle of its transfer, while other files are in flight or done.
  MakeSlotsAndImage(/*compress=*/false, /*big_random_bytes=*/4 << 20);
  const std::string active_before = TreeManifest(slots_ / "slot_a");
  StartEngine();
  UpdateRequestParams slow = Request();
  slow.url = nginx_->HttpUrl("/slow/");
  ASSERT_TRUE(engine_->StartUpdate(slow).ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        StatusSnapshot s = engine_->Snapshot();
        return s.progress.phase == UpdatePhase::kDownloadingOtaFiles &&
               s.progress.downloaded_files_num > 0 && s.progress.downloaded_bytes > (512u << 10);
      },
      std::chrono::seconds(120)))
      << "the download never got going";
  const StatusSnapshot before_abort = engine_->Snapshot();
  EXPECT_LT(before_abort.progress.downloaded_files_size,
            before_abort.progress.total_download_files_size);

  const Clock::time_point asked = Clock::now();
  ASSERT_TRUE(engine_->Abort().ok());
  const Clock::duration abort_call = Clock::now() - asked;
  EXPECT_LT(abort_call, std::chrono::milliseconds(100));
  auto stopped = PollUntil([&] { return engine_->Snapshot().status == OtaStatus::kAborted; },
                           std::chrono::seconds(5));
  ASSERT_TRUE(stopped.has_value()) << "the session did not stop within 5 s";
  EXPECT_LT(abort_call + *stopped, std::chrono::milliseconds(1000))
      << "stopping took "
      << std::chrono::duration_cast<std::chrono::milliseconds>(abort_call + *stopped).count()
      << " ms";
  ExpectAborted("Downloading", active_before, /*standby_prepared=*/true);
  const StatusSnapshot aborted = engine_->Snapshot();
  EXPECT_EQ(aborted.progress.phase, UpdatePhase::kDownloadingOtaFiles);  // where it stopped

  // Verified downloads stay for the resume; the half-transferred file left nothing behind.
  const stdfs::path resources = slots_ / "slot_b/.ota-resources";
  size_t kept = 0;
  for (const auto& entry : stdfs::directory_iterator(resources)) {
    EXPECT_EQ(entry.path().filename().string().find("ota-partial"), std::string::npos)
        << entry.path();
    ++kept;
  }
  EXPECT_GT(kept, 0u);
  EXPECT_FALSE(stdfs::exists(
      resources / crypto::ToHex(crypto::Sha256Of(ReadFile(v2_ / "usr/share/big-random.bin")))));

  ExpectNextUpdateSucceeds();  // at full speed
  const StatusSnapshot resumed = engine_->Snapshot();
  EXPECT_LT(resumed.progress.total_download_files_num,
            before_abort.progress.total_download_files_num);
  EXPECT_GE(resumed.progress.total_download_files_num, 1u);
}

TEST_F(UpdateEngineTest, AbortDuringApplyMarksTheStandbyAborted) {
  MakeSlotsAndImage(/*compress=*/false);
  const std::string active_before = TreeManifest(slots_ / "slot_a");
  StartEngine();
  AbortWhileHeldIn("Applying");
  ExpectAborted("Applying", active_before, /*standby_prepared=*/true);
  EXPECT_EQ(CountSeen("Persistents"), 0);
  ExpectNextUpdateSucceeds();
}

// Upstream's final phase starts once the image is applied: from the persistent files on, an
// abort is refused and the update goes on to its switch.
TEST_F(UpdateEngineTest, AbortInTheFinalPhaseIsRefused) {
  MakeSlotsAndImage(/*compress=*/false);
  StartEngine();
  for (const char* phase : {"Persistents", "PostUpdate", "CommittingSwitch", "Rebooting"}) {
    SCOPED_TRACE(phase);
    watcher_.HoldAt(phase);
    if (std::string_view(phase) == "Persistents") {
      ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
    }
    ASSERT_TRUE(watcher_.WaitHeld());
    absl::StatusOr<std::string> refused = engine_->Abort();
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(refused.status().message(), "Cannot abort: update is in FINAL_PHASE");
    EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kUpdating);
    watcher_.Release();
  }
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_EQ(engine_->Abort().status().message(), "Cannot abort: update is in FINAL_PHASE");
  EXPECT_EQ(CountSeen("Aborted"), 0);
  EXPECT_EQ(reboots_.load(), 1);
  EXPECT_EQ(BootFile("next_boot"), "b");
  EXPECT_EQ(BootFile("slot_b/status"), "UPDATING");
}

TEST_F(UpdateEngineTest, RollbackReturnsToThePreviousSlotAfterAnUpdate) {
  MakeSlotsAndImage(/*compress=*/false);
  WriteFile(slots_ / "boot/slot_a/version", "v1");
  const std::string v1_tree = TreeManifest(slots_ / "slot_a");
  StartEngine();
  // Nothing to roll back to on a fresh system (slot b never held an image).
  absl::Status fresh = engine_->StartRollback();
  EXPECT_EQ(fresh.code(), absl::StatusCode::kFailedPrecondition) << fresh;
  EXPECT_NE(fresh.message().find("slot b has status (none)"), std::string::npos) << fresh;
  EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kInitialized);

  // Refused while an update runs.
  watcher_.HoldAt("Downloading");
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitHeld());
  absl::Status busy = engine_->StartRollback();
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(busy.message(),
            "cannot roll back: an update is in progress (version v2, phase Downloading)");
  watcher_.Release();
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_EQ(engine_->StartRollback().code(), absl::StatusCode::kFailedPrecondition);

  // Boots v2 on slot b and confirms it; the new engine's session observers see no rollback.
  engine_.reset();
  watcher_.Clear();
  SessionRecord record;
  StartEngine([&](EngineOptions& o) { record.Observe(o, &reboots_); });
  StatusSnapshot on_v2 = engine_->Snapshot();
  EXPECT_EQ(on_v2.status, OtaStatus::kSuccess);
  EXPECT_EQ(on_v2.firmware_version, "v2");
  EXPECT_EQ(BootFile("slot_a/status"), "SUCCESS");  // the slot we came from: the rollback target

  ASSERT_TRUE(engine_->StartRollback().ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kRollbacking);
  EXPECT_EQ(reboots_.load(), 2);
  EXPECT_EQ(BootFile("next_boot"), "a");
  EXPECT_EQ(BootFile("slot_a/status"), "ROLLBACKING");
  EXPECT_EQ(BootFile("default"), "b");  // until slot a confirms
  EXPECT_EQ(engine_->Abort().status().message(), "Cannot abort: no active OTA update in progress");
  EXPECT_EQ(engine_->StartUpdate(Request("v3")).code(), absl::StatusCode::kFailedPrecondition);
  {
    std::lock_guard<std::mutex> lock(record.mu);
    EXPECT_TRUE(record.starts.empty());
    EXPECT_TRUE(record.ends.empty());
  }

  RestartEngine();  // boots slot a once and confirms it
  StatusSnapshot back = engine_->Snapshot();
  EXPECT_EQ(back.status, OtaStatus::kSuccess);
  EXPECT_EQ(back.firmware_version, "v1");
  EXPECT_EQ(BootFile("default"), "a");
  EXPECT_EQ(BootFile("slot_a/status"), "SUCCESS");
  EXPECT_EQ(TreeManifest(slots_ / "slot_a"), v1_tree);
}

// Regression (issue 11 §2a): the engine keeps the time spent in each phase in a table that was
// sized up to Failed, but leaves Aborted and RollingBack too (they come after Failed in the
// enum): leaving them wrote past the table into the members behind it. With
// _GLIBCXX_ASSERTIONS (every build) such an index aborts the process.
TEST_F(UpdateEngineTest, LeavingEveryRestingPhaseKeepsThePhaseTimes) {
  MakeSlotsAndImage(/*compress=*/false);
  StartEngine();
  AbortWhileHeldIn("Downloading");
  ASSERT_TRUE(watcher_.WaitFor("Aborted"));
  // Leaves Aborted.
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  const StatusSnapshot done = engine_->Snapshot();
  EXPECT_GT(done.progress.total_elapsed_ms, 0u);
  EXPECT_LE(done.progress.delta_elapsed_ms + done.progress.download_elapsed_ms +
                done.progress.apply_elapsed_ms,
            done.progress.total_elapsed_ms);
  RestartEngine();  // on v2; slot a holds v1
  watcher_.Clear();
  // Leaves RollingBack (to Rebooting).
  ASSERT_TRUE(engine_->StartRollback().ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  const StatusSnapshot rolled = engine_->Snapshot();
  EXPECT_EQ(rolled.status, OtaStatus::kRollbacking);
  // A rollback is no update: no update timer runs, none was frozen by a stray write.
  EXPECT_EQ(rolled.progress.total_elapsed_ms, 0u);
  EXPECT_EQ(rolled.progress.delta_elapsed_ms, 0u);
}

// Regression (issue 11 §2d): StartRollback ran the boot controller's CheckRollbackPossible (CBoot:
// nvbootctrl plus mounting the standby) on the gRPC handler's thread under control_mu_, so a
// blocking check held the Rollback call (and every later Update) for as long as it took.
TEST_F(UpdateEngineTest, RollbackAcksPromptlyWhileTheBootCheckBlocks) {
  gate_check_ = true;
  StartEngine([](EngineOptions& o) { o.rollback_check_wait = EngineOptions{}.rollback_check_wait; },
              [](const http::FetcherConfig&) { return std::make_unique<NotFoundFetcher>(); });
  const Clock::time_point asked = Clock::now();
  auto answer = std::async(std::launch::async, [&] { return engine_->StartRollback(); });
  if (answer.wait_for(std::chrono::seconds(1)) != std::future_status::ready) {
    check_gated_boot_->Open();  // let the blocked call end before failing
    answer.wait();
    FAIL() << "Rollback waited for the boot controller's check";
  }
  ASSERT_TRUE(answer.get().ok());
  EXPECT_LT(Clock::now() - asked, std::chrono::seconds(1));
  check_gated_boot_->WaitEntered();  // the check runs, on the rollback thread
  EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kRollbacking);
  absl::Status busy = engine_->StartUpdate(Request());
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition) << busy;
  EXPECT_NE(busy.message().find("a rollback is in progress"), absl::string_view::npos) << busy;
  EXPECT_EQ(engine_->Abort().status().message(), "Cannot abort: no active OTA update in progress");
  EXPECT_EQ(engine_->StartRollback().code(), absl::StatusCode::kFailedPrecondition);
  // The check refuses (slot b never held an image): the rollback's result in Status.
  check_gated_boot_->Open();
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  StatusSnapshot refused = engine_->Snapshot();
  EXPECT_EQ(refused.status, OtaStatus::kRollbackFailure);
  EXPECT_EQ(refused.failure_type, static_cast<int>(FailureKind::kRecoverable));
  EXPECT_NE(refused.failure_reason.find("cannot roll back: rollback not possible: slot b"),
            std::string::npos)
      << refused.failure_reason;
  // A check that answers at once still refuses synchronously, and nothing changes.
  absl::Status again = engine_->StartRollback();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_NE(again.message().find("slot b has status (none)"), absl::string_view::npos) << again;
  EXPECT_EQ(engine_->Snapshot().status, OtaStatus::kRollbackFailure);
  EXPECT_EQ(engine_->Snapshot().failure_reason, refused.failure_reason);
}

TEST_F(UpdateEngineTest, RollbackFailureIsReportedAndRollbackWithoutRebootStopsAtTheSwitch) {
  MakeSlotsAndImage(/*compress=*/false);
  StartEngine();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  engine_.reset();
  watcher_.Clear();
  int before_reboot_calls = 0;
  StartEngine([&](EngineOptions& o) {
    o.reboot_after_update = false;
    o.before_reboot = [&] { ++before_reboot_calls; };
  });
  // The boot switch cannot be written (a directory sits where it goes): ROLLBACK_FAILURE with
  // the reason, nothing armed, and the rollback can be asked for again.
  stdfs::create_directories(slots_ / "boot/next_boot/in-the-way");
  ASSERT_TRUE(engine_->StartRollback().ok());
  ASSERT_TRUE(watcher_.WaitFor("Failed"));
  StatusSnapshot failed = engine_->Snapshot();
  EXPECT_EQ(failed.status, OtaStatus::kRollbackFailure);
  EXPECT_NE(failed.failure_reason.find("rollback failed: "), std::string::npos)
      << failed.failure_reason;
  EXPECT_NE(failed.failure_reason.find("next_boot"), std::string::npos) << failed.failure_reason;
  EXPECT_EQ(BootFile("slot_a/status"), "SUCCESS");
  EXPECT_EQ(BootFile("default"), "b");
  stdfs::remove_all(slots_ / "boot/next_boot");
  watcher_.Clear();

  ASSERT_TRUE(engine_->StartRollback().ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_EQ(watcher_.seen(), std::vector<std::string>{"Committed"});
  EXPECT_EQ(before_reboot_calls, 0);
  EXPECT_EQ(reboots_.load(), 1);  // only the update's
  EXPECT_EQ(BootFile("next_boot"), "a");
}

// Issue 18: in-place standby updates on the directory backend, for both image formats (param:
// OTA image v1). The first update rebuilds slot b and leaves its record (/.ota-meta state
// "complete"); slot b is made the standby again (the switch is dropped, as if it never booted)
// and the next update to v3 writes it in place: files equal to the target are left untouched
// (same inode, same ctime), changed ones replaced, type changes (file <-> dir <-> symlink)
// handled, entries not in the image removed, a file changed behind the record's back (same size,
// new content) rewritten, modes/owners fixed, a hard-link group that grew rewritten; the tree is
// exactly v3 afterwards. A third update of the same image changes nothing.
class UpdateEngineInPlaceTest : public UpdateEngineTest,
                                public ::testing::WithParamInterface<bool> {
 protected:
  // v3: v2 with every kind of change an in-place update must handle, as an image under /v3/.
  void MakeV3Image(bool v1) {
    v3_ = tmp() / "v3";
    Run(StrCat(
        "cp -a ", v2_.string(), " ", v3_.string(), " && cd ", v3_.string(),
        " && printf 'changed readme3\\n' > usr/share/doc/readme3.txt"
        " && rm usr/share/doc/readme4.txt"
        " && rm bin/tool1 && mkdir bin/tool1 && printf 'inside a new dir\\n' > bin/tool1/inner"
        " && rm -r usr/share/new-in-v2 && printf 'was a directory\\n' > usr/share/new-in-v2"
        " && rm bin/tool2 && ln -s tool3 bin/tool2"
        " && rm bin/share-dir && printf 'was a symlink\\n' > bin/share-dir"
        " && chmod 700 bin/tool4 && chown 1000:1000 etc/hosts"
        " && ln opt/app/twin-a opt/app/twin-c"));
    if (v1) {
      BuildV1Image(64, v3_, tmp() / "image/v3");
    } else {
      BuildLegacyImage(/*compress=*/true, v3_, tmp() / "image/v3");
    }
  }

  // Drops the armed switch and stops the engine: slot a runs, slot b (written) is the standby
  // again; nothing runs until the test starts an engine (in this process or a forked one).
  void StopOnSlotA() {
    stdfs::remove(slots_ / "boot/next_boot");
    engine_.reset();  // joins the session; no engine threads across a fork()
    watcher_.Clear();
  }
  // StopOnSlotA, then a new engine (with `tweak`).
  void BackToSlotA(std::function<void(EngineOptions&)> tweak = {}) {
    StopOnSlotA();
    StartEngine(std::move(tweak));
  }

  StatusSnapshot UpdateTo(const std::string& version, const std::string& url_path) {
    const int committed_before = CountSeen("Committed");
    EXPECT_TRUE(engine_->StartUpdate(Request(version, url_path)).ok());
    EXPECT_TRUE(watcher_.WaitFor("Committed", committed_before + 1));
    return engine_->Snapshot();
  }

  struct stat Stat(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat((slots_ / "slot_b" / rel).c_str(), &st), 0) << rel;
    return st;
  }

  stdfs::path v3_;
};

TEST_P(UpdateEngineInPlaceTest, TheStandbyIsWrittenInPlaceWhenItHoldsAnEarlierUpdate) {
  v1_inline_max_ = GetParam() ? std::optional<uint64_t>(64) : std::nullopt;
  MakeSlotsAndImage();
  MakeV3Image(GetParam());
  StartEngine();
  StatusSnapshot first = UpdateTo("v2", "/");
  EXPECT_FALSE(first.progress.in_place);  // slot b never held an update: rebuilt
  EXPECT_EQ(ReadFile(slots_ / "slot_b/.ota-meta/state"), "complete\n");

  BackToSlotA();
  // The standby changes behind its record's back (it ran as the active slot meanwhile): a stray
  // tree and file, and a file rewritten with other bytes of the same size.
  Run(StrCat(
      "cd ", (slots_ / "slot_b").string(),
      " && mkdir -p stray/deeper && echo junk > stray/deeper/junk"
      " && echo junk > usr/share/doc/stray.txt"
      " && tr a-z A-Z < usr/share/doc/manual2.txt > /dev/shm/m2.$$"
      " && cat /dev/shm/m2.$$ > usr/share/doc/manual2.txt && rm /dev/shm/m2.$$"
      // same content, owner and mode changed: fixed up without a rewrite
      " && chmod 0600 usr/share/doc/readme1.txt && chown 4321:4321 usr/share/doc/readme1.txt"));
  const struct stat fixed_before = Stat("usr/share/doc/readme1.txt");
  const struct stat untouched_before = Stat("usr/share/doc/manual1.txt");
  const struct stat group_before = Stat("bin/sh-like");

  StatusSnapshot second = UpdateTo("v3", "/v3/");
  EXPECT_TRUE(second.progress.in_place);
  EXPECT_EQ(second.failure_reason, "");
  EXPECT_EQ(TreeManifest(slots_ / "slot_b", "etc/hostname home/autoware"),
            TreeManifest(v3_, "etc/hostname home/autoware"));
  EXPECT_EQ(ReadFile(slots_ / "slot_b/etc/hostname"), "ecu-real-name\n");
  EXPECT_EQ(ReadFile(slots_ / "slot_b/.ota-meta/state"), "complete\n");
  EXPECT_FALSE(stdfs::exists(slots_ / "slot_b/stray"));
  EXPECT_FALSE(stdfs::exists(slots_ / "slot_b/.ota-resources"));
  // Left untouched: same inode, no metadata change; the unchanged hard-link group too.
  const struct stat untouched_after = Stat("usr/share/doc/manual1.txt");
  EXPECT_EQ(untouched_after.st_ino, untouched_before.st_ino);
  EXPECT_EQ(untouched_after.st_ctim.tv_sec, untouched_before.st_ctim.tv_sec);
  EXPECT_EQ(untouched_after.st_ctim.tv_nsec, untouched_before.st_ctim.tv_nsec);
  EXPECT_EQ(Stat("bin/sh-like").st_ino, group_before.st_ino);
  const struct stat fixed_after = Stat("usr/share/doc/readme1.txt");
  struct stat fixed_want {};
  ASSERT_EQ(::lstat((v3_ / "usr/share/doc/readme1.txt").c_str(), &fixed_want), 0);
  EXPECT_EQ(fixed_after.st_ino, fixed_before.st_ino);  // kept, only its owner and mode set
  EXPECT_EQ(fixed_after.st_mode, fixed_want.st_mode);
  EXPECT_EQ(fixed_after.st_uid, fixed_want.st_uid);
  EXPECT_EQ(fixed_after.st_gid, fixed_want.st_gid);
  // Only what changed was written: the 5 changed files (readme3, tool1/inner, new-in-v2,
  // share-dir, manual2), the twin group's first file, and the image's files under the persistent
  // paths (CopyPersistents replaced them with the running slot's after the first update, so they
  // differ from the image now, as after every update).
  uint64_t under_persistents = 1;  // etc/hostname
  for (const auto& e : stdfs::recursive_directory_iterator(v3_ / "home/autoware")) {
    if (e.is_regular_file() && !e.is_symlink()) ++under_persistents;
  }
  const uint64_t written = second.progress.files_copy + second.progress.files_download;
  EXPECT_GE(written, 6u);
  EXPECT_LE(written, 6u + under_persistents) << "of " << second.progress.total_files_num;

  // Nothing changed: the same image again writes no image file (persistent files aside).
  BackToSlotA();
  const struct stat readme_before = Stat("usr/share/doc/readme3.txt");
  StatusSnapshot third = UpdateTo("v3", "/v3/");
  EXPECT_TRUE(third.progress.in_place);
  EXPECT_EQ(TreeManifest(slots_ / "slot_b", "etc/hostname home/autoware"),
            TreeManifest(v3_, "etc/hostname home/autoware"));
  EXPECT_EQ(Stat("usr/share/doc/readme3.txt").st_ino, readme_before.st_ino);
  EXPECT_LE(third.progress.files_copy + third.progress.files_download, under_persistents);
}

// --standby-mode rebuild: a standby holding a complete earlier update is still rebuilt.
TEST_P(UpdateEngineInPlaceTest, ForcedRebuildIgnoresTheRecord) {
  v1_inline_max_ = GetParam() ? std::optional<uint64_t>(64) : std::nullopt;
  MakeSlotsAndImage();
  StartEngine();
  UpdateTo("v2", "/");
  BackToSlotA([](EngineOptions& o) { o.standby_mode = StandbyModeSetting::kRebuild; });
  const struct stat before = Stat("usr/share/doc/manual1.txt");
  StatusSnapshot again = UpdateTo("v2", "/");
  EXPECT_FALSE(again.progress.in_place);
  EXPECT_NE(Stat("usr/share/doc/manual1.txt").st_ino, before.st_ino);  // written anew
  EXPECT_EQ(TreeManifest(slots_ / "slot_b", "etc/hostname home/autoware"),
            TreeManifest(v2_, "etc/hostname home/autoware"));
  EXPECT_EQ(ReadFile(slots_ / "slot_b/.ota-meta/state"), "complete\n");
}

// Crash safety: the process is SIGKILLed (a forked child running the engine kills itself at a
// named step of writing the standby in place, EngineOptions::test_step_hook — no timing
// involved) at every step in turn. Each time the standby is left unbootable (no boot switch,
// status UPDATING), and the next update, in place again (re-verifying every file, since the
// record says "writing", except after the record was completed), yields exactly the image.
// Targets alternate between v3 and v2, so every round has real changes to make.
class UpdateEngineInPlaceCrashTest : public UpdateEngineInPlaceTest {};

TEST_F(UpdateEngineInPlaceCrashTest, KilledAtAnyStepTheNextUpdateRepairsTheStandbyInPlace) {
  MakeSlotsAndImage(/*compress=*/false);
  MakeV3Image(/*v1=*/false);
  StartEngine();
  UpdateTo("v2", "/");
  StopOnSlotA();

  const std::string steps[] = {"standby:decided", "inplace:removed", "apply:symlinks",
                               "apply:regulars",  "post:synced",     "post:recorded"};
  bool to_v3 = true;
  for (const std::string& step : steps) {
    SCOPED_TRACE(step);
    const std::string version = to_v3 ? "v3" : "v2";
    const std::string url_path = to_v3 ? "/v3/" : "/";
    const stdfs::path want = to_v3 ? v3_ : v2_;
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      StartEngine([&step](EngineOptions& o) {
        o.test_step_hook = [&step](std::string_view at) {
          if (at == step) ::kill(::getpid(), SIGKILL);
        };
      });
      if (engine_ != nullptr && engine_->StartUpdate(Request(version, url_path)).ok()) {
        watcher_.WaitFor("Committed");
      }
      ::_exit(3);  // the step was never reached
    }
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << wstatus;
    // Never bootable: no switch armed, the standby is UPDATING.
    EXPECT_FALSE(stdfs::exists(slots_ / "boot/next_boot"));
    EXPECT_EQ(BootFile("default"), "a");
    EXPECT_EQ(BootFile("slot_b/status"), "UPDATING");
    EXPECT_EQ(ReadFile(slots_ / "slot_b/.ota-meta/state"),
              step == "post:recorded" ? "complete\n" : "writing\n");

    StartEngine();
    StatusSnapshot repaired = UpdateTo(version, url_path);
    EXPECT_TRUE(repaired.progress.in_place);
    EXPECT_EQ(repaired.failure_reason, "");
    EXPECT_EQ(TreeManifest(slots_ / "slot_b", "etc/hostname home/autoware"),
              TreeManifest(want, "etc/hostname home/autoware"));
    EXPECT_EQ(ReadFile(slots_ / "slot_b/etc/hostname"), "ecu-real-name\n");
    EXPECT_EQ(ReadFile(slots_ / "slot_b/.ota-meta/state"), "complete\n");
    EXPECT_FALSE(stdfs::exists(slots_ / "slot_b/.ota-resources"));
    StopOnSlotA();
    to_v3 = !to_v3;
  }
}

INSTANTIATE_TEST_SUITE_P(LegacyOrV1, UpdateEngineInPlaceTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "V1" : "Legacy";
                         });
// --- Install hooks (install_hooks.h): real scripts in a hooks dir -----------------------------

class InstallHookTest : public UpdateEngineTest {
 protected:
  stdfs::path Hooks() { return tmp() / "hooks"; }
  void WriteHook(std::string_view name, const std::string& body, mode_t mode = 0755) {
    stdfs::create_directories(Hooks());
    stdfs::permissions(Hooks(), stdfs::perms(0755));
    WriteFile(Hooks() / std::string(name), "#!/bin/bash\n" + body, mode);
    // WriteFile's mode passes the umask: set it exactly.
    stdfs::permissions(Hooks() / std::string(name), stdfs::perms(mode));
  }
  void StartWithHooks(std::chrono::milliseconds timeout = kDefaultInstallHookTimeout) {
    StartEngine([&](EngineOptions& o) {
      o.install_hooks_dir = Hooks();
      o.install_hook_timeout = timeout;
      o.ecu_id = "autoware";
    });
  }
  // The update failed before the boot switch with `reason` (after "E200: <description>: "), the
  // standby unbootable, nothing armed.
  void ExpectFailedBeforeTheSwitch(const std::string& reason) {
    ASSERT_TRUE(watcher_.WaitFor("Failed"));
    const StatusSnapshot s = engine_->Snapshot();
    EXPECT_EQ(s.status, OtaStatus::kFailure);
    EXPECT_EQ(s.failure_type, 1);  // RECOVERABLE
    EXPECT_EQ(s.failure_reason,
              StrCat("E200: ", OtaErrorDescription(OtaErrorCode::kRecoverable), ": ", reason));
    EXPECT_EQ(BootFile("slot_b/status"), "FAILURE");
    EXPECT_FALSE(stdfs::exists(slots_ / "boot/next_boot"));
    EXPECT_EQ(BootFile("default"), "a");
    EXPECT_EQ(CountSeen("CommittingSwitch"), 0);
    EXPECT_EQ(reboots_.load(), 0);
  }
};

TEST_F(InstallHookTest, HooksRunAroundTheWriteWithTheTargetInTheirEnvironment) {
  MakeSlotsAndImage(/*compress=*/false);
  const stdfs::path out = tmp() / "hook-out";
  stdfs::create_directories(out);
  // pre-install: the standby is mounted and still empty; post-install: everything is written,
  // and what it adds to the target stays there.
  // Only the variables otaclient sets: the hook also inherits the service's environment, and
  // the one this test runs in may hold other OTA_* variables (CI's OTA_FUZZ_SECONDS).
  const std::string dump_env =
      "env | grep -E '^OTA_(HOOK|TARGET_ROOT|ACTIVE_ROOT|TARGET_VERSION|IMAGE_URL|ECU_ID)=' | sort "
      "> ";
  WriteHook(kPreInstallHook,
            StrCat(dump_env, (out / "pre.env").string(), "\n", "ls -A \"$OTA_TARGET_ROOT\" > ",
                   (out / "pre.ls").string(), "\n", "echo pre says hello; echo pre warns >&2\n"));
  WriteHook(kPostInstallHook,
            StrCat(dump_env, (out / "post.env").string(), "\n",
                   "cat \"$OTA_TARGET_ROOT/etc/hostname\" > ", (out / "post.hostname").string(),
                   "\n", "echo configured > \"$OTA_TARGET_ROOT/etc/post-install-was-here\"\n"));
  StartWithHooks();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ASSERT_TRUE(watcher_.WaitFor("Committed"));
  EXPECT_EQ(CountSeen("Failed"), 0);
  const std::string url = nginx_->HttpUrl("/");
  auto expected_env = [&](std::string_view hook) {
    return StrCat("OTA_ACTIVE_ROOT=", (slots_ / "slot_a").string(), "\nOTA_ECU_ID=autoware\n",
                  "OTA_HOOK=", hook, "\nOTA_IMAGE_URL=", url,
                  "\nOTA_TARGET_ROOT=", (slots_ / "slot_b").string(), "\nOTA_TARGET_VERSION=v2\n");
  };
  EXPECT_EQ(ReadFile(out / "pre.env"), expected_env("pre-install"));
  EXPECT_EQ(ReadFile(out / "post.env"), expected_env("post-install"));
  // Only what the updater keeps for itself (the resources dirs) may exist before the write.
  std::istringstream listing(ReadFile(out / "pre.ls"));
  for (std::string entry; std::getline(listing, entry);) {
    EXPECT_TRUE(entry.starts_with(".ota-")) << entry;
  }
  EXPECT_EQ(ReadFile(out / "post.hostname"), "ecu-real-name\n");  // persistents came first
  EXPECT_EQ(ReadFile(slots_ / "slot_b/etc/post-install-was-here"), "configured\n");
  EXPECT_EQ(BootFile("next_boot"), "b");
}

TEST_F(InstallHookTest, FailingPreInstallFailsTheUpdateBeforeAnythingIsWritten) {
  MakeSlotsAndImage(/*compress=*/false);
  WriteHook(kPreInstallHook, "echo checking >&2\necho 'not enough space for maps' >&2\nexit 3\n");
  StartWithHooks();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ExpectFailedBeforeTheSwitch("pre-install hook failed: exit 3: not enough space for maps");
  EXPECT_EQ(CountSeen("CalculatingDelta"), 0);
  EXPECT_FALSE(stdfs::exists(slots_ / "slot_b/etc"));
}

TEST_F(InstallHookTest, FailingPostInstallFailsTheUpdateBeforeTheSwitch) {
  MakeSlotsAndImage(/*compress=*/false);
  WriteHook(kPostInstallHook, "exit 1\n");  // nothing on stderr
  StartWithHooks();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ExpectFailedBeforeTheSwitch("post-install hook failed: exit 1");
  EXPECT_EQ(CountSeen("PostUpdate"), 1);
}

TEST_F(InstallHookTest, AHookThatHangsIsKilledAtItsTimeout) {
  MakeSlotsAndImage(/*compress=*/false);
  const stdfs::path hook = Hooks() / std::string(kPreInstallHook);
  WriteHook(kPreInstallHook, "exec sleep 600\n");
  StartWithHooks(std::chrono::milliseconds(500));
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ExpectFailedBeforeTheSwitch(
      StrCat("pre-install hook failed: ", hook.string(),
             ": no result within 500 ms (timeout); its process group was killed"));
}

TEST_F(InstallHookTest, AnUntrustedHookIsRefusedAndNotRun) {
  MakeSlotsAndImage(/*compress=*/false);
  const stdfs::path marker = tmp() / "hook-ran";
  const stdfs::path hook = Hooks() / std::string(kPreInstallHook);
  WriteHook(kPreInstallHook, StrCat("touch ", marker.string(), "\n"), 0757);
  StartWithHooks();
  ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
  ExpectFailedBeforeTheSwitch(StrCat("pre-install hook refused: hook ", hook.string(),
                                     " is group- or world-writable (mode 0757)"));
  EXPECT_FALSE(stdfs::exists(marker));

  // The next update is refused with "pre-install hook refused: <why>", the hook not run.
  int failures = 1;
  auto expect_refused = [&](const std::string& why) {
    ASSERT_TRUE(engine_->StartUpdate(Request()).ok());
    ASSERT_TRUE(watcher_.WaitFor("Failed", ++failures));
    EXPECT_EQ(engine_->Snapshot().failure_reason,
              StrCat("E200: ", OtaErrorDescription(OtaErrorCode::kRecoverable),
                     ": pre-install hook refused: ", why));
    EXPECT_FALSE(stdfs::exists(marker));
  };

  // A writable hooks dir (anyone could swap the hook) is refused the same way.
  stdfs::permissions(hook, stdfs::perms(0755));
  stdfs::permissions(Hooks(), stdfs::perms(0775));
  expect_refused(
      StrCat("hooks directory ", Hooks().string(), " is group- or world-writable (mode 0775)"));

  // Not root's.
  stdfs::permissions(Hooks(), stdfs::perms(0755));
  ASSERT_EQ(::chown(hook.c_str(), 1000, 1000), 0);
  expect_refused(StrCat("hook ", hook.string(), " is owned by uid 1000, not root"));
  ASSERT_EQ(::chown(hook.c_str(), 0, 0), 0);

  // Not executable.
  stdfs::permissions(hook, stdfs::perms(0644));
  expect_refused(StrCat(hook.string(), " is not executable"));
}

TEST(SessionPhaseTest, TransitionTable) {
  using P = SessionPhase;
  const std::vector<P> happy = {P::kIdle,
                                P::kValidatingRequest,
                                P::kProcessingMetadata,
                                P::kPreparingStandby,
                                P::kCalculatingDelta,
                                P::kDownloading,
                                P::kApplying,
                                P::kPersistents,
                                P::kPostUpdate,
                                P::kCommittingSwitch,
                                P::kRebooting,
                                P::kCommitted};
  for (size_t i = 0; i + 1 < happy.size(); ++i) {
    EXPECT_TRUE(TransitionAllowed(happy[i], happy[i + 1])) << SessionPhaseName(happy[i]);
    // The only way back: a rejected request returns to where it came from.
    EXPECT_EQ(TransitionAllowed(happy[i + 1], happy[i]), i == 0) << SessionPhaseName(happy[i + 1]);
  }
  for (P p : {P::kProcessingMetadata, P::kPreparingStandby, P::kCalculatingDelta, P::kDownloading,
              P::kApplying, P::kPersistents, P::kPostUpdate, P::kCommittingSwitch}) {
    EXPECT_TRUE(TransitionAllowed(p, P::kFailed)) << SessionPhaseName(p);
    EXPECT_TRUE(IsBusy(p));
  }
  EXPECT_FALSE(TransitionAllowed(P::kRebooting, P::kFailed));
  EXPECT_FALSE(TransitionAllowed(P::kCommitted, P::kFailed));
  EXPECT_FALSE(TransitionAllowed(P::kCommitted, P::kValidatingRequest));
  EXPECT_TRUE(TransitionAllowed(P::kFailed, P::kValidatingRequest));
  EXPECT_FALSE(TransitionAllowed(P::kIdle, P::kDownloading));
  EXPECT_FALSE(IsBusy(P::kIdle));
  EXPECT_FALSE(IsBusy(P::kFailed));
  EXPECT_TRUE(IsBusy(P::kCommitted));
  // Abort: from every phase up to Applying, never in the final phase (upstream's FINAL_PHASE).
  for (P p : {P::kValidatingRequest, P::kProcessingMetadata, P::kPreparingStandby,
              P::kCalculatingDelta, P::kDownloading, P::kApplying}) {
    EXPECT_TRUE(TransitionAllowed(p, P::kAborted)) << SessionPhaseName(p);
    EXPECT_FALSE(IsFinalPhase(p)) << SessionPhaseName(p);
  }
  for (P p : {P::kIdle, P::kFailed, P::kPersistents, P::kPostUpdate, P::kCommittingSwitch,
              P::kRebooting, P::kCommitted, P::kRollingBack}) {
    EXPECT_FALSE(TransitionAllowed(p, P::kAborted)) << SessionPhaseName(p);
  }
  for (P p :
       {P::kPersistents, P::kPostUpdate, P::kCommittingSwitch, P::kRebooting, P::kCommitted}) {
    EXPECT_TRUE(IsFinalPhase(p)) << SessionPhaseName(p);
  }
  // The point of no return is a phase of its own: no way around it to the reboot.
  EXPECT_FALSE(TransitionAllowed(P::kPostUpdate, P::kRebooting));
  EXPECT_FALSE(TransitionAllowed(P::kPostUpdate, P::kCommitted));
  EXPECT_TRUE(IsBusy(P::kCommittingSwitch));
  // Every phase has a name, and the sentinel is no phase.
  for (size_t i = 0; i < kSessionPhaseCount; ++i) {
    EXPECT_NE(SessionPhaseName(static_cast<P>(i)), "Unknown") << i;
    EXPECT_FALSE(TransitionAllowed(static_cast<P>(i), P::kCount)) << i;
    EXPECT_FALSE(TransitionAllowed(P::kCount, static_cast<P>(i))) << i;
  }
  EXPECT_FALSE(IsBusy(P::kAborted));
  EXPECT_TRUE(TransitionAllowed(P::kAborted, P::kValidatingRequest));
  // Rollback: only from rest, through the check, only forward to the switch.
  for (P p : {P::kIdle, P::kFailed, P::kAborted}) {
    EXPECT_TRUE(TransitionAllowed(p, P::kCheckingRollback)) << SessionPhaseName(p);
    EXPECT_TRUE(TransitionAllowed(P::kCheckingRollback, p)) << SessionPhaseName(p);
    EXPECT_FALSE(TransitionAllowed(p, P::kRollingBack)) << SessionPhaseName(p);
  }
  EXPECT_TRUE(TransitionAllowed(P::kCheckingRollback, P::kRollingBack));
  EXPECT_TRUE(IsBusy(P::kCheckingRollback));
  for (P p : {P::kDownloading, P::kCommitted, P::kValidatingRequest}) {
    EXPECT_FALSE(TransitionAllowed(p, P::kRollingBack)) << SessionPhaseName(p);
  }
  EXPECT_TRUE(IsBusy(P::kRollingBack));
  EXPECT_TRUE(TransitionAllowed(P::kRollingBack, P::kRebooting));
  EXPECT_EQ(SessionPhaseName(P::kAborted), "Aborted");
  EXPECT_EQ(SessionPhaseName(P::kRollingBack), "RollingBack");
}

// A 300k-entry image's in-memory model and content index stay well inside the memory budget.
TEST(UpdateMemoryTest, ThreeHundredThousandEntriesFitTheBudget) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's shadow memory and quarantine inflate RSS";
#endif
  struct rusage before {};
  ::getrusage(RUSAGE_SELF, &before);
  image::Manifest m;
  constexpr uint32_t kEntries = 300000;
  m.regulars.reserve(kEntries);
  for (uint32_t i = 0; i < kEntries; ++i) {
    image::RegularEntry e;
    e.mode = 0644;
    std::string path = StrCat("/usr/share/package-", i / 100, "/some/deeper/dir/file-", i, ".dat");
    e.path = m.Intern(path);
    std::string seed = StrCat("content-", i % 250000);  // some shared contents
    e.sha256 = crypto::Sha256Of(seed);
    e.size = 1000 + i % 250000;
    e.has_size = true;
    m.regulars.push_back(e);
  }
  auto index = ContentIndex::Build(m);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->size(), 250000u);
  struct rusage after {};
  ::getrusage(RUSAGE_SELF, &after);
  const long grown_kb = after.ru_maxrss - before.ru_maxrss;
  EXPECT_LT(grown_kb, 100 * 1024) << "peak RSS grew by " << grown_kb << " KiB";
}

}  // namespace
}  // namespace ota::update
