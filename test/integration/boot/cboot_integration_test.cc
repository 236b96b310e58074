// The CBoot controller on real block devices: a GPT disk on a loop device with rootfs A (p1) and
// B (p2), each a real ext4 with /boot/extlinux/extlinux.conf, /etc/nv_tegra_release and
// /etc/nv_boot_control.conf; the fake nvbootctrl (test/lib/fake-nvbootctrl) and nv_update_engine
// (test/lib/fake-nv-update-engine) on PATH keep the boot loader's slot and firmware state in a
// file. A "reboot" unmounts everything, lets the fake decide like CBoot which slot comes up
// (`fake-boot`), mounts that slot as the running root and creates a new controller on it, which
// is what a restarted otaclient sees. Most tests run twice: unified A/B off (rootfs-only A/B,
// `-t rootfs`) and on (the bootloader chain carries the rootfs, no -t).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/sys/command.h"
#include "gtest/gtest.h"
#include "otaclient/boot/block_slot.h"
#include "otaclient/boot/cboot_boot_controller.h"
#include "test/lib/kill_at_step.h"
#include "test/lib/loop_disk.h"
#include "test/lib/text_files.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;
using ::ota::testing::ReadText;
using ::ota::testing::Sh;
using ::ota::testing::Trimmed;
using ::ota::testing::WriteText;

constexpr const char* kFake = OTA_SOURCE_DIR "/test/lib/fake-nvbootctrl";
constexpr const char* kFakeUpdateEngine = OTA_SOURCE_DIR "/test/lib/fake-nv-update-engine";
constexpr const char* kNvTegraRelease =
    "# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t186ref, EABI: aarch64, DATE: "
    "Mon Jul 26 19:36:31 UTC 2021\n";
constexpr const char* kTnspec = "2888-400-0004-M.0-1-2-jetson-xavier-rqx580-";
constexpr const char* kImageExtlinux =
    "TIMEOUT 30\nDEFAULT primary\n\nLABEL primary\n      LINUX /boot/Image\n"
    "      APPEND ${cbootargs} quiet root=/dev/mmcblk0p1 rw rootwait rootfstype=ext4\n";

// Runs `body` on a fresh controller in a child process that is killed with SIGKILL at `kill_at`.
void RunKilledAt(const CbootOptions& options, const std::string& kill_at,
                 const std::function<bool(BootController&)>& body) {
  ::ota::testing::RunKilledAt(options, kill_at, CreateCbootBootController, body);
}

// The unified A/B answer the fake gives: 70 rootfs-only A/B, 0 unified.
class CbootIntegrationTest : public ::testing::TestWithParam<int> {
 protected:
  bool Unified() const { return GetParam() == 0; }
  // An nvbootctrl call as the product makes it for the slot chain in use.
  std::string Nv(const std::string& call) const { return Unified() ? call : "-t rootfs " + call; }

  void SetUp() override {
    // Unique partition identities: tests run in parallel, and the config-override test finds
    // its partitions by PARTUUID/PARTLABEL among every block device of the host.
    std::random_device random;
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "%06x%06x", random() & 0xffffff, random() & 0xffffff);
    partuuid_a_ = std::string("6a1c0d2e-000a-4000-8000-") + suffix;
    partuuid_b_ = std::string("6a1c0d2e-000b-4000-8000-") + suffix;
    partlabel_b_ = std::string("APP_b_") + suffix;
    // Disk images in memory when possible: the many fsyncs stay cheap on a busy CI disk.
    const stdfs::path parent = stdfs::is_directory("/dev/shm") ? "/dev/shm" : "";
    auto tmp = fs::TempDir::Create("cboot-it", parent);
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    dir_ = tmp_->path();
    // The fake nvbootctrl on PATH, with its state and call log in the temp dir.
    stdfs::create_directories(dir_ / "bin");
    stdfs::create_symlink(kFake, dir_ / "bin" / "nvbootctrl");
    stdfs::create_symlink(kFakeUpdateEngine, dir_ / "bin" / "nv_update_engine");
    old_path_ = getenv("PATH") ? getenv("PATH") : "";
    ::setenv("PATH", ((dir_ / "bin").string() + ":" + old_path_).c_str(), 1);
    ::setenv("FAKE_NVBOOTCTRL_STATE", (dir_ / "nvbootctrl.state").c_str(), 1);
    ::setenv("FAKE_NVBOOTCTRL_LOG", (dir_ / "nvbootctrl.log").c_str(), 1);
    ::setenv("FAKE_NV_UPDATE_ENGINE_LOG", (dir_ / "nv_update_engine.log").c_str(), 1);
    ::unsetenv("FAKE_NVBOOTCTRL_FAIL");
    ::unsetenv("FAKE_NV_UPDATE_ENGINE_FAIL");
    FakeInit(0);

    auto disk = ota::testing::LoopDisk::Create(
        dir_, {{"APP", 16, partuuid_a_}, {partlabel_b_, 16, partuuid_b_}});
    if (!disk.ok() && absl::IsUnavailable(disk.status())) GTEST_SKIP() << disk.status().message();
    ASSERT_TRUE(disk.ok()) << disk.status();
    disk_ = std::move(*disk);
    // Factory content: both slots carry v1 with their own extlinux.conf and fstab.
    for (int slot : {0, 1}) {
      const stdfs::path stage = dir_ / ("stage" + std::to_string(slot));
      WriteJetsonFiles(stage);
      WriteText(stage / "boot/extlinux/extlinux.conf", kImageExtlinux);
      WriteText(stage / "boot/ota/ecu_info.yaml", "ecu_id: main\n");
      WriteText(stage / "etc/fstab", "/dev/root / ext4 defaults 0 1\n");
      WriteText(stage / "etc/os-release", "v1\n");
      Sh("mkfs.ext4 -q -F -L APP" + std::string(slot == 0 ? "" : "_b") + " -d '" + stage.string() +
         "' " + disk_->PartitionNode(slot + 1));
    }
  }

  void TearDown() override {
    controller_.reset();
    active_mount_.reset();
    if (tmp_) {
      (void)UnmountAllUnder(dir_);
      ::setenv("PATH", old_path_.c_str(), 1);
    }
    disk_.reset();
    emmc_.reset();
  }

  void FakeInit(int slot) {
    Sh("nvbootctrl fake-init " + std::to_string(slot) + " " + std::to_string(GetParam()));
  }
  int FakeGet(const std::string& key) { return std::stoi(Sh("nvbootctrl fake-get " + key)); }
  std::string FakeGetText(const std::string& key) {
    return Trimmed(Sh("nvbootctrl fake-get " + key));
  }
  std::string Calls() { return ReadText(dir_ / "nvbootctrl.log"); }
  std::string EngineCalls() { return ReadText(dir_ / "nv_update_engine.log"); }
  // The nvbootctrl calls of the product that change state, in order.
  std::string StateCalls() {
    std::string out;
    std::istringstream in(Calls());
    for (std::string line; std::getline(in, line);) {
      if (line.find("set-") != std::string::npos || line.find("mark-") != std::string::npos) {
        out += line + "\n";
      }
    }
    return out;
  }
  // The /etc files CBoot reads at startup.
  static void WriteJetsonFiles(const stdfs::path& root) {
    WriteText(root / "etc/nv_tegra_release", kNvTegraRelease);
    WriteText(root / "etc/nv_boot_control.conf",
              std::string("TNSPEC ") + kTnspec + "\nTEGRA_OTA_BOOT_DEVICE /dev/mmcblk0boot0\n");
  }
  std::string SlotDevice(int slot) { return disk_->PartitionNode(slot + 1); }
  stdfs::path ActiveRoot() { return dir_ / "active"; }

  CbootOptions Options() {
    CbootOptions options;
    options.active_root = ActiveRoot();
    options.mount_dir = dir_ / "mnt";
    if (emmc_) options.boot_devices = {emmc_->PartitionNode(1), emmc_->PartitionNode(2)};
    options.rootfs_devices = rootfs_override_;
    return options;
  }

  // Power-on: the fake boot loader picks the slot; we mount it as "/" and start "otaclient".
  absl::StatusOr<BootState> Boot() {
    controller_.reset();
    active_mount_.reset();
    auto mounted =
        MountedFileSystem::Mount(SlotDevice(FakeGet("current")), ActiveRoot(), StandbyMountSpec());
    if (!mounted.ok()) return mounted.status();
    active_mount_ = std::make_unique<MountedFileSystem>(std::move(*mounted));
    return Restart();
  }

  // otaclient restarted within the same boot.
  absl::StatusOr<BootState> Restart() {
    controller_.reset();
    auto controller = CreateCbootBootController(Options());
    if (!controller.ok()) return controller.status();
    controller_ = std::move(*controller);
    if (defer_confirmation_) controller_->DeferConfirmation();
    return controller_->ConfirmBoot();
  }

  // Reset: everything unmounted, the boot loader decides, then Boot().
  absl::StatusOr<BootState> Reboot(bool new_slot_fails = false) {
    controller_.reset();
    active_mount_.reset();
    (void)UnmountAllUnder(dir_);
    Sh(std::string("nvbootctrl fake-boot") + (new_slot_fails ? " --fail-new" : ""));
    return Boot();
  }

  // Writes a minimal "image" into the standby root (what the update engine would do).
  static void WriteImage(const stdfs::path& root, const std::string& version) {
    WriteJetsonFiles(root);
    WriteText(root / "boot/extlinux/extlinux.conf", kImageExtlinux);
    WriteText(root / "boot/Image", "kernel " + version + "\n");
    WriteText(root / "boot/ota/ecu_info.yaml", "ecu_id: from-the-image\n");
    WriteText(root / "etc/fstab", "/dev/root / ext4 defaults 0 1\n");
    WriteText(root / "etc/os-release", version + "\n");
  }

  // A BUP firmware package in the image: firmware_update.yaml requesting `requested`, a
  // manifest for `bsp` and board `board_rev`, and the payload "FAKE-BUP version=<fw> <quality>".
  struct Firmware {
    std::string fw = "R32.7.4";
    std::string quality = "good";
    std::string bsp = "r32.7.4";
    std::string board_rev = "M.0";
    bool corrupt_digest = false;
    std::string requested = "bl_only_payload";
  };
  static void WriteFirmware(const stdfs::path& root, const Firmware& f) {
    const std::string payload = "FAKE-BUP version=" + f.fw + " " + f.quality + "\n";
    WriteText(root / "opt/ota/firmware/bl_only_payload", payload);
    std::string digest =
        Trimmed(Sh("sha256sum '" + (root / "opt/ota/firmware/bl_only_payload").string() +
                   "' | cut -d' ' -f1"));
    if (f.corrupt_digest) digest[0] = digest[0] == '0' ? '1' : '0';
    WriteText(root / "opt/ota/firmware/firmware_update.yaml",
              "format_version: 1\nfirmware_list: [" + f.requested + "]\n");
    WriteText(root / "opt/ota/firmware/firmware_manifest.yaml",
              "format_version: 1\nhardware_type: nvidia_jetson\nhardware_series: XAVIER\n"
              "hardware_model: AGX\nfirmware_spec:\n  bsp_version: " +
                  f.bsp +
                  "\n  firmware_compat:\n    board_id: \"2888\"\n    board_sku: \"0004\"\n"
                  "    board_rev: " +
                  f.board_rev +
                  "\n    fab_id: \"400\"\n"
                  "    board_conf: jetson-xavier-rqx580\nfirmware_packages:\n"
                  "  - payload_name: bl_only_payload\n"
                  "    file_location: file:///opt/ota/firmware/bl_only_payload\n"
                  "    type: BUP\n    digest: sha256:" +
                  digest + "\n");
  }

  // PrepareStandby + image + CommitSwitch.
  void Update(const std::string& version) {
    std::vector<std::string_view> keep = {".ota-resources"};
    auto root = controller_->PrepareStandby(version, keep);
    ASSERT_TRUE(root.ok()) << root.status();
    WriteImage(*root, version);
    ASSERT_TRUE(controller_->CommitSwitch().ok());
  }

  // Reads a file of slot `slot` through a read-only mount.
  std::string ReadSlotFile(int slot, const std::string& path) {
    auto mounted = MountedFileSystem::Mount(SlotDevice(slot), dir_ / "peek", ReadOnlyMountSpec());
    EXPECT_TRUE(mounted.ok()) << mounted.status();
    if (!mounted.ok()) return {};
    std::string text = ReadText(dir_ / "peek" / path);
    EXPECT_TRUE(mounted->SyncAndUnmount().ok());
    return text;
  }

  std::unique_ptr<fs::TempDir> tmp_;
  stdfs::path dir_;
  std::string old_path_;
  std::unique_ptr<ota::testing::LoopDisk> disk_;
  std::unique_ptr<ota::testing::LoopDisk> emmc_;
  std::array<stdfs::path, 2> rootfs_override_;  // CbootOptions::rootfs_devices
  std::string partuuid_a_;
  std::string partuuid_b_;
  std::string partlabel_b_;
  std::unique_ptr<MountedFileSystem> active_mount_;
  std::unique_ptr<BootController> controller_;
  bool defer_confirmation_ = false;  // health-gated commit (otaclient --health-check-*)
};

TEST_P(CbootIntegrationTest, UpdateConfirmFailRetryRollback) {
  // First start on a factory machine.
  auto state = Boot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kInitialized);
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/slot_in_use"), "0");

  // --- update A→B, confirmed ---
  std::vector<std::string_view> keep = {".ota-resources"};
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(FakeGet("bootable1"), 0) << "standby must be unbootable while written";
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/slot_in_use"), "1");
  WriteImage(*root, "v2");
  ASSERT_TRUE(controller_->CommitSwitch().ok());
  EXPECT_EQ(FakeGet("active"), 1);
  // Unbootable first, the switch last; the bootloader follows the rootfs (or carries it).
  EXPECT_EQ(StateCalls(), Unified() ? "set-slot-as-unbootable 1\nset-active-boot-slot 1\n"
                                    : "-t rootfs set-slot-as-unbootable 1\n"
                                      "-t rootfs set-active-boot-slot 1\nset-active-boot-slot 1\n");
  EXPECT_EQ(EngineCalls(), "");  // no firmware in this image
  // /boot/ota comes from the running slot, not from the image.
  EXPECT_EQ(ReadSlotFile(1, "boot/ota/ecu_info.yaml"), "ecu_id: main\n");
  const std::string conf_b = ReadSlotFile(1, "boot/extlinux/extlinux.conf");
  EXPECT_NE(conf_b.find(std::string("root=PARTUUID=") + partuuid_b_ + " rw"), std::string::npos)
      << conf_b;
  EXPECT_EQ(conf_b.find("mmcblk0p1"), std::string::npos) << conf_b;
  EXPECT_EQ(ReadSlotFile(1, "boot/ota-status/status"), "UPDATING");
  EXPECT_EQ(ReadSlotFile(1, "boot/ota-status/version"), "v2");
  EXPECT_EQ(ReadSlotFile(1, "boot/ota-status/slot_in_use"), "1");
  // fstab: the root entry names the standby's own file system.
  EXPECT_NE(ReadSlotFile(1, "etc/fstab").find("UUID="), std::string::npos);

  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");
  EXPECT_EQ(FakeGet("successful1"), 1);
  EXPECT_EQ(EngineCalls(), "--verify\n");
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v2\n");
  state = Reboot();  // stays on B
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);

  // --- update B→A, the new slot never comes up: CBoot falls back to B ---
  Update("v3");
  state = Reboot(/*new_slot_fails=*/true);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_NE(state->failure_reason.find("did not boot"), std::string::npos) << state->failure_reason;
  EXPECT_NE(state->failure_reason.find("v3"), std::string::npos) << state->failure_reason;
  EXPECT_EQ(state->version, "v2");  // the running slot is untouched
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v2\n");
  // Reported again after a restart, and A is not a rollback target.
  state = Restart();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  absl::Status rollback = controller_->CheckRollbackPossible();
  EXPECT_EQ(rollback.code(), absl::StatusCode::kFailedPrecondition) << rollback;

  // --- update B→A again, works this time ---
  Update("v4");
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v4");
  EXPECT_NE(ReadText(ActiveRoot() / "boot/extlinux/extlinux.conf")
                .find(std::string("root=PARTUUID=") + partuuid_a_),
            std::string::npos);

  // --- rollback to B (v2) ---
  ASSERT_TRUE(controller_->CheckRollbackPossible().ok()) << controller_->CheckRollbackPossible();
  ASSERT_TRUE(controller_->CommitRollback().ok());
  EXPECT_EQ(FakeGet("active"), 1);
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");

  // --- rollback to A whose boot fails: ROLLBACK_FAILURE on B ---
  ASSERT_TRUE(controller_->CommitRollback().ok());
  state = Reboot(/*new_slot_fails=*/true);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kRollbackFailure);
  EXPECT_NE(state->failure_reason.find("rollback"), std::string::npos) << state->failure_reason;
  // CBoot gave up on A: it is no rollback target any more.
  rollback = controller_->CheckRollbackPossible();
  EXPECT_EQ(rollback.code(), absl::StatusCode::kFailedPrecondition) << rollback;
  EXPECT_NE(rollback.message().find("unbootable"), absl::string_view::npos) << rollback;
}

// Health-gated commit: the new slot is not marked successful until its check passed; a rejected
// one hands the boot back to the old slot through nvbootctrl, and the old slot reports why.
TEST_P(CbootIntegrationTest, HealthGatedConfirmationAndRejection) {
  ASSERT_TRUE(Boot().ok());
  std::vector<std::string_view> keep = {".ota-resources"};
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  ASSERT_TRUE(controller_->CommitSwitch().ok());
  defer_confirmation_ = true;
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kUpdating);
  EXPECT_TRUE(state->confirmation_pending);
  ASSERT_TRUE(controller_->RejectNewSlot("command 'check' exit 1").ok());
  EXPECT_EQ(FakeGet("active"), 0);
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/status"), "FAILURE");
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_FALSE(state->confirmation_pending);
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(state->failure_reason, "health check failed: command 'check' exit 1");
  // A retry whose check passes is confirmed.
  root = controller_->PrepareStandby("v2-retry", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2-retry");
  ASSERT_TRUE(controller_->CommitSwitch().ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_TRUE(state->confirmation_pending);
  auto confirmed = controller_->CompleteConfirmation();
  ASSERT_TRUE(confirmed.ok()) << confirmed.status();
  EXPECT_EQ(confirmed->status, SlotStatus::kSuccess);
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/status"), "SUCCESS");
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
}

TEST_P(CbootIntegrationTest, FailedUpdateLeavesStandbyUnbootableAndActiveUntouched) {
  ASSERT_TRUE(Boot().ok());
  std::vector<std::string_view> keep;
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  stdfs::remove(*root / "boot/extlinux/extlinux.conf");  // a broken image
  absl::Status commit = controller_->CommitSwitch();
  EXPECT_EQ(commit.code(), absl::StatusCode::kInvalidArgument) << commit;
  EXPECT_NE(commit.message().find("extlinux.conf"), absl::string_view::npos) << commit;
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
  EXPECT_EQ(FakeGet("bootable1"), 0);
  EXPECT_EQ(FakeGet("active"), 0);
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_NE(state->failure_reason.find("v2"), std::string::npos) << state->failure_reason;
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
}

// Issue 18: PrepareStandbyInPlace on CBoot marks the standby unbootable like PrepareStandby but
// keeps an e2fsck-clean ext4's contents (what the earlier attempt wrote there), mounted rw.
TEST_P(CbootIntegrationTest, InPlacePreparationKeepsTheStandbysContents) {
  ASSERT_TRUE(Boot().ok());
  std::vector<std::string_view> keep;
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());

  auto kept = controller_->PrepareStandbyInPlace("v3", keep);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->contents_kept) << kept->reason;
  EXPECT_EQ(ReadText(kept->root / "etc/os-release"), "v2\n");
  EXPECT_EQ(FakeGet("bootable1"), 0);
  EXPECT_EQ(FakeGet("active"), 0);
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
}

// Every file of a status dir, name and content, for before/after comparisons.
std::string DirSnapshot(const stdfs::path& dir) {
  std::string out;
  std::vector<stdfs::path> files;
  for (const auto& entry : stdfs::directory_iterator(dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const stdfs::path& file : files) {
    out += file.filename().string() + "=" + ReadText(file) + "\n";
  }
  return out;
}

// Regression (issue 11 §2b): the status files and boot files were written into the freshly
// written standby by path, following symlinks that came with the new image. On a Jetson the
// active root is "/", so an image whose /boot (or /boot/ota-status) is an absolute symlink made
// the standby's UPDATING status land on the running slot. Here the active root is a mount in the
// temp dir, so the image's links point at its absolute path, as they would at "/" on the ECU.
TEST_P(CbootIntegrationTest, ImageSymlinksNeverLeadStandbyWritesOntoTheActiveSlot) {
  ASSERT_TRUE(Boot().ok());
  const stdfs::path active_status = ActiveRoot() / "boot/ota-status";
  std::vector<std::string_view> keep;

  // An absolute /boot symlink: refused (CBoot reads /boot/extlinux from the slot itself), and
  // nothing of the standby reaches the active slot.
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  stdfs::remove_all(*root / "boot");
  stdfs::create_directory_symlink(ActiveRoot() / "boot", *root / "boot");
  std::string before = DirSnapshot(active_status);
  absl::Status commit = controller_->CommitSwitch();
  EXPECT_EQ(DirSnapshot(active_status), before);
  EXPECT_EQ(ReadText(active_status / "status"), "INITIALIZED");
  EXPECT_FALSE(commit.ok());
  EXPECT_EQ(FakeGet("active"), 0);
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());

  // An absolute /boot/ota-status symlink: ours win, in a real directory of the standby.
  root = controller_->PrepareStandby("v3", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v3");
  stdfs::remove_all(*root / "boot/ota-status");
  stdfs::create_directory_symlink(active_status, *root / "boot/ota-status");
  before = DirSnapshot(active_status);
  commit = controller_->CommitSwitch();
  EXPECT_EQ(DirSnapshot(active_status), before);
  ASSERT_TRUE(commit.ok()) << commit;
  EXPECT_EQ(ReadSlotFile(1, "boot/ota-status/status"), "UPDATING");
  EXPECT_EQ(ReadSlotFile(1, "boot/ota-status/version"), "v3");
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v3");
}

TEST_P(CbootIntegrationTest, StandbyWithoutFileSystemIsFormatted) {
  Sh("dd if=/dev/zero of=" + SlotDevice(1) + " bs=1M count=2 conv=fsync status=none");
  ASSERT_TRUE(Boot().ok());
  Update("v2");
  const std::string uuid = Trimmed(Sh("blkid -p -s UUID -o value " + SlotDevice(1)));
  ASSERT_FALSE(uuid.empty());
  const std::string fstab = ReadSlotFile(1, "etc/fstab");
  EXPECT_NE(fstab.find("UUID=" + uuid), std::string::npos) << fstab;
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");
}

// The Python otaclient wrote B and switched (its files have no trailing newline); our first
// start on B must finalise that update like its own.
TEST_P(CbootIntegrationTest, FinalizesAnUpdateWrittenByThePythonClient) {
  for (int slot : {0, 1}) {
    const stdfs::path stage = dir_ / ("py-stage" + std::to_string(slot));
    WriteJetsonFiles(stage);
    WriteText(stage / "boot/extlinux/extlinux.conf", kImageExtlinux);
    WriteText(stage / "etc/os-release", slot == 0 ? "py-1\n" : "py-2\n");
    WriteText(stage / "boot/ota-status/status", slot == 0 ? "SUCCESS" : "UPDATING");
    WriteText(stage / "boot/ota-status/version", slot == 0 ? "py-1" : "py-2");
    WriteText(stage / "boot/ota-status/slot_in_use", "1");
    Sh("mkfs.ext4 -q -F -d '" + stage.string() + "' " + SlotDevice(slot));
  }
  Sh("nvbootctrl " + Nv("set-active-boot-slot 1") + " && nvbootctrl fake-boot");
  auto state = Boot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "py-2");
  EXPECT_EQ(FakeGet("successful1"), 1);
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/status"), "SUCCESS");
  // And the Python client's slot A is a rollback target.
  EXPECT_TRUE(controller_->CheckRollbackPossible().ok()) << controller_->CheckRollbackPossible();
}

TEST_P(CbootIntegrationTest, SlotDevicesFromConfigByPartuuidAndPartlabel) {
  rootfs_override_ = {std::string("PARTUUID=") + partuuid_a_, "PARTLABEL=" + partlabel_b_};
  auto state = Boot();
  ASSERT_TRUE(state.ok()) << state.status();
  Update("v2");
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  // A spec that matches nothing, or is not a spec at all, is an error naming it.
  rootfs_override_ = {std::string("PARTUUID=") + partuuid_a_,
                      "PARTUUID=00000000-dead-4000-8000-000000000000"};
  state = Restart();
  EXPECT_EQ(state.status().code(), absl::StatusCode::kNotFound) << state.status();
  EXPECT_NE(state.status().message().find("dead"), absl::string_view::npos) << state.status();
  rootfs_override_ = {"APP", "APP_b"};
  state = Restart();
  EXPECT_EQ(state.status().code(), absl::StatusCode::kInvalidArgument) << state.status();
}

TEST_P(CbootIntegrationTest, NvbootctrlFailureAtTheSwitchIsReported) {
  ASSERT_TRUE(Boot().ok());
  std::vector<std::string_view> keep;
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  ::setenv("FAKE_NVBOOTCTRL_FAIL", "set-active-boot-slot", 1);
  absl::Status commit = controller_->CommitSwitch();
  ::unsetenv("FAKE_NVBOOTCTRL_FAIL");
  EXPECT_FALSE(commit.ok());
  EXPECT_NE(commit.message().find("set-active-boot-slot 1"), absl::string_view::npos) << commit;
  EXPECT_EQ(FakeGet("active"), 0);
  EXPECT_EQ(FakeGet("bootable1"), 0);
}

TEST_P(CbootIntegrationTest, RefusesWhenNvbootctrlDisagreesWithTheMountedRoot) {
  FakeInit(0);
  // Mount B as the "running" root while nvbootctrl says slot 0.
  auto mounted = MountedFileSystem::Mount(SlotDevice(1), ActiveRoot(), StandbyMountSpec());
  ASSERT_TRUE(mounted.ok()) << mounted.status();
  active_mount_ = std::make_unique<MountedFileSystem>(std::move(*mounted));
  auto controller = CreateCbootBootController(Options());
  ASSERT_TRUE(controller.ok());
  auto state = (*controller)->ConfirmBoot();
  EXPECT_EQ(state.status().code(), absl::StatusCode::kFailedPrecondition) << state.status();
  EXPECT_NE(state.status().message().find("slot 0"), absl::string_view::npos) << state.status();
}

TEST_P(CbootIntegrationTest, ExternalRootfsMirrorsBootToEmmc) {
  // A second disk stands in for the eMMC holding /boot of each slot.
  auto emmc = ota::testing::LoopDisk::Create(
      dir_ / "emmc", {{"boot_a", 16, "6a1c0d2e-0000-4000-8000-0000000000e1"},
                      {"boot_b", 16, "6a1c0d2e-0000-4000-8000-0000000000e2"}});
  ASSERT_TRUE(emmc.ok()) << emmc.status();
  emmc_ = std::move(*emmc);
  const stdfs::path stage = dir_ / "emmc-stage";
  WriteText(stage / "boot/stale-file", "old\n");
  Sh("mkfs.ext4 -q -F -d '" + stage.string() + "' " + emmc_->PartitionNode(2));
  Sh("mkfs.ext4 -q -F " + emmc_->PartitionNode(1));

  ASSERT_TRUE(Boot().ok());
  Update("v2");
  auto mounted =
      MountedFileSystem::Mount(emmc_->PartitionNode(2), dir_ / "emmc-peek", ReadOnlyMountSpec());
  ASSERT_TRUE(mounted.ok()) << mounted.status();
  const stdfs::path peek = dir_ / "emmc-peek" / "boot";
  EXPECT_FALSE(stdfs::exists(peek / "stale-file"));
  EXPECT_EQ(ReadText(peek / "Image"), "kernel v2\n");
  EXPECT_NE(
      ReadText(peek / "extlinux/extlinux.conf").find(std::string("root=PARTUUID=") + partuuid_b_),
      std::string::npos);
  EXPECT_EQ(ReadText(peek / "ota-status/status"), "UPDATING");
  ASSERT_TRUE(mounted->SyncAndUnmount().ok());
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
}

// kill -9 of otaclient after every step of the update: the boot loader must never be pointed
// at a half-written slot, and the machine must be able to update afterwards.
TEST_P(CbootIntegrationTest, KilledAtEveryStepNeverBootsAHalfWrittenSlot) {
  const std::vector<std::string> steps = {"prepare:1", "prepare:2", "prepare:3",
                                          "commit:1",  "commit:2",  "commit:3",
                                          "commit:4",  "commit:5",  "commit:6"};
  for (const std::string& kill_at : steps) {
    SCOPED_TRACE(kill_at);
    FakeInit(0);
    auto state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_EQ(state->active_slot, "0");
    controller_.reset();

    const std::string version = "v-" + kill_at;
    RunKilledAt(Options(), kill_at, [&version](BootController& c) {
      std::vector<std::string_view> keep;
      if (!c.ConfirmBoot().ok()) return false;
      auto root = c.PrepareStandby(version, keep);
      if (!root.ok()) return false;
      WriteImage(*root, version);
      WriteFirmware(*root, Firmware{});  // the BUP step is one of the steps killed
      return c.CommitSwitch().ok();
    });

    state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    if (state->active_slot == "1") {
      // Only after the very last step; and then the slot is complete.
      EXPECT_EQ(kill_at, "commit:6");
      EXPECT_EQ(state->status, SlotStatus::kSuccess);
      EXPECT_EQ(FakeGetText("bl_fw1"), "R32.7.4");
      EXPECT_EQ(state->version, "v-" + kill_at);
      EXPECT_NE(ReadText(ActiveRoot() / "boot/extlinux/extlinux.conf")
                    .find(std::string("root=PARTUUID=") + partuuid_b_),
                std::string::npos);
      continue;
    }
    EXPECT_NE(kill_at, "commit:6");
    // Killed before the switch: still on A; an update had started, so FAILURE is reported
    // (except when killed before anything was recorded).
    if (kill_at != "prepare:1") {
      EXPECT_EQ(state->status, SlotStatus::kFailure);
    }
    EXPECT_EQ(FakeGet("bootable1"), 0);
    EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
    // Recoverable: a fresh update goes through.
    Update("v-retry");
    state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->active_slot, "1");
    EXPECT_EQ(state->status, SlotStatus::kSuccess);
    EXPECT_EQ(state->version, "v-retry");
    // Back to A for the next round: the factory slot A is still good.
    ASSERT_TRUE(controller_->CommitRollback().ok());
  }
}

TEST_P(CbootIntegrationTest, KilledWhileConfirmingOrRollingBack) {
  ASSERT_TRUE(Boot().ok());
  Update("v2");
  // The first start on B dies between mark-boot-successful and writing SUCCESS.
  controller_.reset();
  active_mount_.reset();
  (void)UnmountAllUnder(dir_);
  Sh("nvbootctrl fake-boot");
  auto mounted = MountedFileSystem::Mount(SlotDevice(1), ActiveRoot(), StandbyMountSpec());
  ASSERT_TRUE(mounted.ok()) << mounted.status();
  active_mount_ = std::make_unique<MountedFileSystem>(std::move(*mounted));
  RunKilledAt(Options(), "confirm:1", [](BootController& c) { return c.ConfirmBoot().ok(); });
  EXPECT_EQ(FakeGet("successful1"), 1);
  auto state = Restart();  // otaclient restarted by systemd, same boot
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");

  // Rollback to A interrupted before the switch: still on B, A stays a rollback target.
  for (const std::string kill_at : {"rollback:1", "rollback:2"}) {
    SCOPED_TRACE(kill_at);
    controller_.reset();
    RunKilledAt(Options(), kill_at,
                [](BootController& c) { return c.ConfirmBoot().ok() && c.CommitRollback().ok(); });
    state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->active_slot, "1");
    EXPECT_EQ(state->status,
              kill_at == "rollback:1" ? SlotStatus::kFailure : SlotStatus::kRollbackFailure);
    EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v2\n");
    ASSERT_TRUE(controller_->CheckRollbackPossible().ok()) << controller_->CheckRollbackPossible();
  }
  // Killed right after the switch: the rollback happens.
  controller_.reset();
  RunKilledAt(Options(), "rollback:3",
              [](BootController& c) { return c.ConfirmBoot().ok() && c.CommitRollback().ok(); });
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
}

// --- BUP firmware (nv_update_engine) ---

TEST_P(CbootIntegrationTest, BupFirmwareGoesToTheStandbyBootloaderBeforeTheSwitch) {
  ASSERT_TRUE(Boot().ok());
  std::vector<std::string_view> keep;
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  WriteFirmware(*root, Firmware{});
  ASSERT_TRUE(controller_->CommitSwitch().ok());
  // Upstream's argv: --no-reboot only with rootfs-only A/B; the payload is our verified copy.
  const std::string engine = EngineCalls();
  EXPECT_EQ(engine.rfind(Unified() ? "-i bl-only --payload " : "-i bl --payload ", 0), 0u)
      << engine;
  EXPECT_EQ(engine.find("/opt/ota/firmware/"), std::string::npos) << engine;
  EXPECT_EQ(engine.find("--no-reboot") != std::string::npos, !Unified()) << engine;
  EXPECT_EQ(FakeGetText("bl_fw1"), "R32.7.4");
  EXPECT_EQ(FakeGetText("bl_fw0"), "R32.6.1");  // the running bootloader slot untouched
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(FakeGet("bl_current"), 1);
}

TEST_P(CbootIntegrationTest, BadBupIsReportedAfterTheReboot) {
  ASSERT_TRUE(Boot().ok());
  std::vector<std::string_view> keep;
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  Firmware bad;
  bad.quality = "bad";
  WriteFirmware(*root, bad);
  ASSERT_TRUE(controller_->CommitSwitch().ok());
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  if (Unified()) {
    // The whole chain fell back: the old slot reports the failed update.
    EXPECT_EQ(state->active_slot, "0");
    EXPECT_NE(state->failure_reason.find("did not complete"), std::string::npos)
        << state->failure_reason;
  } else {
    // The new rootfs runs on the old bootloader: nv_update_engine --verify says so.
    EXPECT_EQ(state->active_slot, "1");
    EXPECT_EQ(FakeGet("bl_current"), 0);
    EXPECT_NE(state->failure_reason.find("bootloader"), std::string::npos) << state->failure_reason;
  }
}

TEST_P(CbootIntegrationTest, FirmwareRequestThatAppliesNothingFailsBeforeTheSwitch) {
  struct Case {
    std::string name;
    Firmware firmware;
    std::string expect;
  };
  Firmware mismatch;
  mismatch.corrupt_digest = true;
  Firmware other_board;
  other_board.board_rev = "L.0";
  Firmware uefi_package;
  uefi_package.bsp = "r35.4.1";
  Firmware not_requested;
  not_requested.requested = "something_else";
  const Case cases[] = {{"digest mismatch", mismatch, "none of its BUP payloads"},
                        {"other board", other_board, "not for this board"},
                        {"UEFI package", uefi_package, "R35.4.1"},
                        {"nothing requested of it", not_requested, "none of its BUP payloads"}};
  ASSERT_TRUE(Boot().ok());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string_view> keep;
    auto root = controller_->PrepareStandby("v2", keep);
    ASSERT_TRUE(root.ok()) << root.status();
    WriteImage(*root, "v2");
    WriteFirmware(*root, c.firmware);
    absl::Status commit = controller_->CommitSwitch();
    EXPECT_EQ(commit.code(), absl::StatusCode::kFailedPrecondition) << commit;
    EXPECT_NE(commit.message().find(c.expect), absl::string_view::npos) << commit;
    EXPECT_EQ(FakeGet("active"), 0);
    EXPECT_EQ(FakeGet("bootable1"), 0);
    EXPECT_EQ(FakeGetText("bl_fw1"), "R32.6.1");
    ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
  }
  EXPECT_EQ(EngineCalls(), "");
}

TEST_P(CbootIntegrationTest, NvUpdateEngineFailureFailsTheUpdate) {
  ASSERT_TRUE(Boot().ok());
  std::vector<std::string_view> keep;
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  WriteFirmware(*root, Firmware{});
  ::setenv("FAKE_NV_UPDATE_ENGINE_FAIL", "install", 1);
  absl::Status commit = controller_->CommitSwitch();
  ::unsetenv("FAKE_NV_UPDATE_ENGINE_FAIL");
  EXPECT_FALSE(commit.ok());
  EXPECT_NE(commit.message().find("nv_update_engine"), absl::string_view::npos) << commit;
  EXPECT_EQ(FakeGet("active"), 0);
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
}

TEST_P(CbootIntegrationTest, NoTnspecSkipsTheFirmware) {
  ASSERT_TRUE(Boot().ok());
  WriteText(ActiveRoot() / "etc/nv_boot_control.conf", "TEGRA_CHIPID 0x19\n");
  ASSERT_TRUE(Restart().ok());
  std::vector<std::string_view> keep;
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  WriteImage(*root, "v2");
  WriteFirmware(*root, Firmware{});
  ASSERT_TRUE(controller_->CommitSwitch().ok());
  EXPECT_EQ(EngineCalls(), "");
  EXPECT_EQ(FakeGet("active"), 1);
}

TEST_P(CbootIntegrationTest, RefusesAUefiBspAndAMissingReleaseFile) {
  ASSERT_TRUE(Boot().ok());
  WriteText(ActiveRoot() / "etc/nv_tegra_release",
            "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n");
  auto state = Restart();
  EXPECT_EQ(state.status().code(), absl::StatusCode::kFailedPrecondition) << state.status();
  EXPECT_NE(state.status().message().find("jetson-uefi"), absl::string_view::npos)
      << state.status();
  stdfs::remove(ActiveRoot() / "etc/nv_tegra_release");
  state = Restart();
  EXPECT_FALSE(state.ok());
  EXPECT_NE(state.status().message().find("nv_tegra_release"), absl::string_view::npos)
      << state.status();
}

// Below R32.6.1 there is no unified A/B: nvbootctrl is not even asked.
TEST_P(CbootIntegrationTest, OldBspIsRootfsOnlyWithoutAsking) {
  ASSERT_TRUE(Boot().ok());
  WriteText(ActiveRoot() / "etc/nv_tegra_release",
            "# R32 (release), REVISION: 5.2, GCID: 1, BOARD: t186ref, EABI: aarch64\n");
  stdfs::remove(dir_ / "nvbootctrl.log");
  auto state = Restart();
  if (Unified()) {
    // The fake refuses -t rootfs while unified A/B is on: the product used it, as it must here.
    EXPECT_FALSE(state.ok());
  } else {
    ASSERT_TRUE(state.ok()) << state.status();
  }
  EXPECT_EQ(Calls().find("is-unified-enabled"), std::string::npos) << Calls();
}

INSTANTIATE_TEST_SUITE_P(UnifiedAb, CbootIntegrationTest, ::testing::Values(70, 0),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == 0 ? std::string("UnifiedOn")
                                                  : std::string("UnifiedOff");
                         });

}  // namespace
}  // namespace ota::boot
