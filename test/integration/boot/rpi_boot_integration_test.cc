// The Raspberry Pi (tryboot) controller on real block devices: a GPT disk on a loop device with
// the FAT system-boot partition (p1; an ext4 stand-in on kernels without vfat), slot_a (p2) and
// slot_b (p3), each a real ext4 labelled with its slot id. The new image carries its own
// /usr/sbin/flash-kernel (a shell script run by a static busybox inside the chroot, like the
// real one it writes vmlinuz/initrd.img onto /boot/firmware). `reboot` is test/lib/fake-reboot
// on PATH (it records its argv). A "reboot" here emulates the Pi firmware: after
// `reboot "0 tryboot"` it boots what tryboot.txt names once, otherwise what config.txt names
// (a slot is recognised by the root=LABEL= of the cmdline file its config uses; a config whose
// kernel is missing falls back to config.txt, as a failed tryboot does).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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
#include "otaclient/boot/rpi_boot_controller.h"
#include "test/lib/kill_at_step.h"
#include "test/lib/loop_disk.h"
#include "test/lib/text_files.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;
using ::ota::testing::ReadText;
using ::ota::testing::Sh;
using ::ota::testing::WriteText;

constexpr const char* kFakeReboot = OTA_SOURCE_DIR "/test/lib/fake-reboot";
constexpr const char* kModel = "Raspberry Pi 4 Model B Rev 1.4";
constexpr const char* kFlashKernel =
    "#!/bin/sh\n"
    "[ \"$FK_FORCE\" = yes ] || { echo 'FK_FORCE is not yes' >&2; exit 3; }\n"
    "[ -z \"$FAKE_REBOOT_LOG\" ] || { echo 'environment not cleared' >&2; exit 6; }\n"
    "[ -e /proc/self/status ] || { echo 'no /proc' >&2; exit 5; }\n"
    "[ -d /tmp ] || { echo 'no /tmp' >&2; exit 8; }\n"
    "[ ! -e /etc/fail-flash-kernel ] || { echo 'flash-kernel: failing on demand' >&2; exit 4; "
    "}\n"
    "/bin/busybox cp /boot/vmlinuz-img /boot/firmware/vmlinuz || exit 7\n"
    "/bin/busybox cp /boot/initrd-img /boot/firmware/initrd.img || exit 7\n"
    "/bin/busybox cp /boot/vmlinuz-img /boot/firmware/overlays.bak || exit 7\n";

std::string SlotName(int slot) { return slot == 0 ? "slot_a" : "slot_b"; }

std::string ConfigTxt(const std::string& slot, const std::string& cmdline_slot = "") {
  const std::string c = cmdline_slot.empty() ? slot : cmdline_slot;
  return "[all]\nkernel=vmlinuz_" + slot + "\ninitramfs initrd.img_" + slot +
         " followkernel\ncmdline=cmdline.txt_" + c + "\n[pi4]\narm_boost=1\n";
}

class RpiBootIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "%06x%06x", random() & 0xffffff, random() & 0xffffff);
    suffix_ = suffix;
    const stdfs::path parent = stdfs::is_directory("/dev/shm") ? "/dev/shm" : "";
    auto tmp = fs::TempDir::Create("rpi-it", parent);
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    dir_ = tmp_->path();
    stdfs::create_directories(dir_ / "bin");
    stdfs::create_symlink(kFakeReboot, dir_ / "bin" / "reboot");
    old_path_ = getenv("PATH") ? getenv("PATH") : "";
    ::setenv("PATH", ((dir_ / "bin").string() + ":" + old_path_).c_str(), 1);
    ::setenv("FAKE_REBOOT_LOG", RebootLog().c_str(), 1);
    ::unsetenv("FAKE_REBOOT_FAIL");
    // Never the host's reboot: the product runs `reboot` from PATH.
    ASSERT_EQ(Sh("command -v reboot"), (dir_ / "bin" / "reboot").string() + "\n");
    WriteText(dir_ / "model", std::string(kModel) + std::string(1, '\0'));

    auto disk =
        ota::testing::LoopDisk::Create(dir_ / "disk", {{"system-boot", 8, Uuid("0b"), "0700"},
                                                       {"slot_a", 32, Uuid("0a")},
                                                       {"slot_b", 32, Uuid("0c")}});
    if (!disk.ok() && absl::IsUnavailable(disk.status())) GTEST_SKIP() << disk.status().message();
    ASSERT_TRUE(disk.ok()) << disk.status();
    disk_ = std::move(*disk);
    for (int slot : {0, 1}) {
      const stdfs::path stage = dir_ / ("stage" + std::to_string(slot));
      WriteImage(stage, slot == 0 ? "v1" : "old-b");
      WriteText(stage / "boot/ota/ecu_info.yaml", "ecu_id: main\nbootloader: rpi_boot\n");
      ASSERT_TRUE(
          disk_->FormatExt4(slot + 2, Uuid(slot == 0 ? "a1" : "b1"), SlotName(slot), stage).ok());
    }
    ASSERT_TRUE(disk_->FormatFat(1, "system-boot").ok());
    ASSERT_TRUE(WithSystemBoot([](const stdfs::path& boot) {
      for (int slot : {0, 1}) {
        const std::string name = SlotName(slot);
        WriteText(boot / ("config.txt_" + name), ConfigTxt(name));
        WriteText(boot / ("cmdline.txt_" + name),
                  "console=serial0,115200 root=LABEL=" + name + " rootfstype=ext4 rootwait\n");
      }
      WriteText(boot / "config.txt", ConfigTxt("slot_a"));
      WriteText(boot / "vmlinuz_slot_a", "kernel v1\n");
      WriteText(boot / "initrd.img_slot_a", "initrd v1\n");
    }));
  }

  void TearDown() override {
    controller_.reset();
    active_mount_.reset();
    if (tmp_) {
      (void)UnmountAllUnder(dir_);
      ::setenv("PATH", old_path_.c_str(), 1);
      ::unsetenv("FAKE_REBOOT_LOG");
    }
    disk_.reset();
  }

  std::string Uuid(const std::string& tag) const {
    return "5e2c0d2e-00" + tag + "-4000-8000-" + suffix_;
  }
  stdfs::path RebootLog() const { return dir_ / "reboot.log"; }
  stdfs::path ActiveRoot() const { return dir_ / "active"; }

  // A root file system image of `version` with its own flash-kernel.
  static void WriteImage(const stdfs::path& root, const std::string& version) {
    WriteText(root / "etc/os-release", version + "\n");
    WriteText(root / "etc/fstab",
              "LABEL=writable\t/\text4\tdiscard,errors=remount-ro\t0\t1\n"
              "LABEL=system-boot\t/boot/firmware\tvfat\tdefaults\t0\t1\n");
    WriteText(root / "boot/vmlinuz-img", "kernel " + version + "\n");
    WriteText(root / "boot/initrd-img", "initrd " + version + "\n");
    // Like a real OTA image: no /tmp (the generator leaves it out), no /proc.
    for (const char* d : {"boot/firmware", "sys", "bin", "usr/sbin"}) {
      stdfs::create_directories(root / d);
    }
    std::error_code ec;
    stdfs::copy_file("/bin/busybox", root / "bin/busybox", stdfs::copy_options::overwrite_existing,
                     ec);
    ASSERT_FALSE(ec) << ec.message();
    stdfs::remove(root / "bin/sh", ec);
    stdfs::create_symlink("busybox", root / "bin/sh");
    WriteText(root / "usr/sbin/flash-kernel", kFlashKernel);
    stdfs::permissions(root / "usr/sbin/flash-kernel", stdfs::perms::owner_all);
  }

  bool WithSystemBoot(const std::function<void(const stdfs::path&)>& body) {
    auto mounted = MountedFileSystem::Mount(disk_->PartitionNode(1), dir_ / "sb-peek",
                                            FatMountSpec(ota::testing::LoopDisk::FatStandInType()));
    EXPECT_TRUE(mounted.ok()) << mounted.status();
    if (!mounted.ok()) return false;
    body(mounted->target());
    EXPECT_TRUE(mounted->SyncAndUnmount().ok());
    return true;
  }
  std::string BootFile(const std::string& name) {
    std::string text;
    WithSystemBoot([&](const stdfs::path& boot) { text = ReadText(boot / name); });
    return text;
  }
  bool BootFileExists(const std::string& name) {
    bool exists = false;
    WithSystemBoot([&](const stdfs::path& boot) { exists = stdfs::exists(boot / name); });
    return exists;
  }

  RpiBootOptions Options() {
    RpiBootOptions options;
    options.active_root = ActiveRoot();
    options.mount_dir = dir_ / "mnt";
    options.device_tree_model = dir_ / "model";
    options.system_boot_fs_type = ota::testing::LoopDisk::FatStandInType();
    return options;
  }

  // The Pi firmware: which slot `config` (a file on system-boot) starts; -1 when it cannot.
  int SlotBootedBy(const stdfs::path& boot, const std::string& config) {
    std::istringstream in(ReadText(boot / config));
    std::string kernel, cmdline = "cmdline.txt";
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("kernel=", 0) == 0) kernel = line.substr(7);
      if (line.rfind("cmdline=", 0) == 0) cmdline = line.substr(8);
    }
    if (kernel.empty() || !stdfs::exists(boot / kernel)) return -1;
    const std::string args = ReadText(boot / cmdline);
    if (args.find("root=LABEL=slot_a ") != std::string::npos) return 0;
    if (args.find("root=LABEL=slot_b ") != std::string::npos) return 1;
    return -1;
  }

  // Power on: the firmware reads tryboot.txt once when the last reboot asked for it (and it
  // starts something), else config.txt; then the slot's rootfs is mounted as the running root.
  absl::StatusOr<BootState> PowerOn(bool tryboot) {
    controller_.reset();
    active_mount_.reset();
    (void)UnmountAllUnder(dir_);
    int slot = -1;
    WithSystemBoot([&](const stdfs::path& boot) {
      if (tryboot && stdfs::exists(boot / "tryboot.txt")) slot = SlotBootedBy(boot, "tryboot.txt");
      if (slot < 0) slot = SlotBootedBy(boot, "config.txt");
    });
    if (slot < 0) return absl::InternalError("the emulated firmware boots nothing");
    booted_ = slot;
    auto mounted =
        MountedFileSystem::Mount(disk_->PartitionNode(slot + 2), ActiveRoot(), StandbyMountSpec());
    if (!mounted.ok()) return mounted.status();
    active_mount_ = std::make_unique<MountedFileSystem>(std::move(*mounted));
    return Restart();
  }

  absl::StatusOr<BootState> Restart() {
    controller_.reset();
    auto controller = CreateRpiBootController(Options());
    if (!controller.ok()) return controller.status();
    controller_ = std::move(*controller);
    if (defer_confirmation_) controller_->DeferConfirmation();
    return controller_->ConfirmBoot();
  }

  // controller_->Reboot() (the fake reboot records how), then the firmware boots accordingly.
  absl::StatusOr<BootState> Reboot() {
    stdfs::remove(RebootLog());
    if (absl::Status s = controller_->Reboot(); !s.ok()) return s;
    const std::string log = ReadText(RebootLog());
    last_reboot_ = log;
    return PowerOn(log == "argc=1|0 tryboot\n");
  }

  absl::Status Update(const std::string& version, bool fail_flash_kernel = false,
                      const std::function<void(const stdfs::path&)>& tamper = {}) {
    std::vector<std::string_view> keep = {".ota-resources"};
    auto root = controller_->PrepareStandby(version, keep);
    if (!root.ok()) return root.status();
    WriteImage(*root, version);
    if (fail_flash_kernel) WriteText(*root / "etc/fail-flash-kernel", "");
    if (tamper) tamper(*root);
    return controller_->CommitSwitch();
  }

  std::string ReadSlotFile(int slot, const std::string& path) {
    auto mounted = MountedFileSystem::Mount(disk_->PartitionNode(slot + 2), dir_ / "peek",
                                            ReadOnlyMountSpec());
    EXPECT_TRUE(mounted.ok()) << mounted.status();
    if (!mounted.ok()) return {};
    std::string text = ReadText(dir_ / "peek" / path);
    EXPECT_TRUE(mounted->SyncAndUnmount().ok());
    return text;
  }
  std::string Label(int slot) {
    std::string out = Sh("blkid -o value -s LABEL " + disk_->PartitionNode(slot + 2));
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  std::unique_ptr<fs::TempDir> tmp_;
  stdfs::path dir_;
  std::string suffix_;
  std::string old_path_;
  std::unique_ptr<ota::testing::LoopDisk> disk_;
  std::unique_ptr<MountedFileSystem> active_mount_;
  std::unique_ptr<BootController> controller_;
  int booted_ = -1;
  std::string last_reboot_;
  bool defer_confirmation_ = false;  // health-gated commit (otaclient --health-check-*)
};

TEST_F(RpiBootIntegrationTest, UpdateTrybootConfirmAndBack) {
  auto state = PowerOn(false);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_a");
  EXPECT_EQ(state->status, SlotStatus::kInitialized);
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/slot_in_use"), "slot_a");

  ASSERT_TRUE(Update("v2").ok());
  // Armed for one tryboot only: config.txt still boots slot_a.
  EXPECT_EQ(BootFile("tryboot.txt"), ConfigTxt("slot_b"));
  EXPECT_EQ(BootFile("config.txt"), ConfigTxt("slot_a"));
  EXPECT_EQ(BootFile("vmlinuz_slot_b"), "kernel v2\n");
  EXPECT_EQ(BootFile("initrd.img_slot_b"), "initrd v2\n");
  EXPECT_EQ(BootFile("vmlinuz_slot_a"), "kernel v1\n");
  EXPECT_FALSE(BootFileExists("vmlinuz"));
  EXPECT_EQ(Label(1), "slot_b");
  EXPECT_EQ(ReadSlotFile(1, "etc/fstab"),
            "LABEL=slot_b\t/\text4\tdiscard,errors=remount-ro\t0\t1\n"
            "LABEL=system-boot\t/boot/firmware\tvfat\tdefaults\t0\t1\n");
  EXPECT_EQ(ReadSlotFile(1, "boot/ota/ecu_info.yaml"), "ecu_id: main\nbootloader: rpi_boot\n");
  EXPECT_EQ(ReadSlotFile(1, "boot/ota-status/status"), "UPDATING");
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/slot_in_use"), "slot_b");

  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(last_reboot_, "argc=1|0 tryboot\n");  // one argument with a space
  EXPECT_EQ(state->active_slot, "slot_b");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");
  EXPECT_EQ(BootFile("config.txt"), ConfigTxt("slot_b"));
  EXPECT_EQ(BootFile("tryboot.txt"), ConfigTxt("slot_b"));
  EXPECT_FALSE(BootFileExists("overlays.bak"));
  // Confirmed: a plain reboot stays on slot_b, and says so.
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(last_reboot_, "argc=0\n");
  EXPECT_EQ(state->active_slot, "slot_b");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);

  // And back to slot_a.
  ASSERT_TRUE(Update("v3").ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_a");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v3");
  EXPECT_EQ(BootFile("vmlinuz_slot_a"), "kernel v3\n");
  EXPECT_EQ(BootFile("config.txt"), ConfigTxt("slot_a"));
}

TEST_F(RpiBootIntegrationTest, NewSlotThatNeverComesUpFallsBack) {
  ASSERT_TRUE(PowerOn(false).ok());
  ASSERT_TRUE(Update("v2").ok());
  ASSERT_TRUE(controller_->Reboot().ok());
  // The tryboot of slot_b hangs; the watchdog's reset boots config.txt.
  auto state = PowerOn(false);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_a");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_NE(state->failure_reason.find("slot_b"), std::string::npos) << state->failure_reason;
  EXPECT_EQ(state->version, "");  // slot_a was never updated
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
  // Recoverable: a retry goes through.
  ASSERT_TRUE(Update("v2-retry").ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_b");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2-retry");
}

// Health-gated commit: the tried slot is not made the default until its check passed; a rejected
// one is left by a plain reboot (no tryboot), and the old slot reports the check's reason.
TEST_F(RpiBootIntegrationTest, HealthGatedConfirmationAndRejection) {
  ASSERT_TRUE(PowerOn(false).ok());
  ASSERT_TRUE(Update("v2").ok());
  defer_confirmation_ = true;
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_b");
  EXPECT_EQ(state->status, SlotStatus::kUpdating);
  EXPECT_TRUE(state->confirmation_pending);
  EXPECT_EQ(BootFile("config.txt"), ConfigTxt("slot_a"));  // not confirmed
  ASSERT_TRUE(controller_->RejectNewSlot("unit app.target failed").ok());
  EXPECT_EQ(BootFile("config.txt"), ConfigTxt("slot_a"));
  EXPECT_EQ(BootFile("tryboot.txt"), ConfigTxt("slot_a"));
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/status"), "FAILURE");
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(last_reboot_, "argc=0\n");  // a plain reboot
  EXPECT_EQ(state->active_slot, "slot_a");
  EXPECT_FALSE(state->confirmation_pending);
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(state->failure_reason, "health check failed: unit app.target failed");
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
  // A retry whose check passes is confirmed as without a check.
  ASSERT_TRUE(Update("v2-retry").ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_b");
  EXPECT_TRUE(state->confirmation_pending);
  auto confirmed = controller_->CompleteConfirmation();
  ASSERT_TRUE(confirmed.ok()) << confirmed.status();
  EXPECT_EQ(confirmed->status, SlotStatus::kSuccess);
  EXPECT_EQ(confirmed->version, "v2-retry");
  EXPECT_EQ(BootFile("config.txt"), ConfigTxt("slot_b"));
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_b");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
}

TEST_F(RpiBootIntegrationTest, RollbackToThePreviousSlot) {
  ASSERT_TRUE(PowerOn(false).ok());
  // slot_b has no kernel yet: not a rollback target.
  EXPECT_FALSE(controller_->CheckRollbackPossible().ok());
  ASSERT_TRUE(Update("v2").ok());
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->active_slot, "slot_b");
  ASSERT_TRUE(controller_->CheckRollbackPossible().ok()) << controller_->CheckRollbackPossible();
  ASSERT_TRUE(controller_->CommitRollback().ok());
  EXPECT_EQ(BootFile("tryboot.txt"), ConfigTxt("slot_a"));
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(last_reboot_, "argc=1|0 tryboot\n");
  EXPECT_EQ(state->active_slot, "slot_a");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "");  // slot_a was never updated
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
  EXPECT_EQ(BootFile("config.txt"), ConfigTxt("slot_a"));
}

TEST_F(RpiBootIntegrationTest, ConfigThatBootsTheWrongRootfsIsRefusedAtTheSwitch) {
  ASSERT_TRUE(WithSystemBoot([](const stdfs::path& boot) {
    WriteText(boot / "config.txt_slot_b", ConfigTxt("slot_b", "slot_a"));
  }));
  ASSERT_TRUE(PowerOn(false).ok());
  absl::Status switched = Update("v2");
  ASSERT_FALSE(switched.ok());
  EXPECT_NE(switched.message().find("root=LABEL=slot_a"), std::string::npos) << switched;
  EXPECT_EQ(BootFile("tryboot.txt"), ConfigTxt("slot_a"));
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(last_reboot_, "argc=0\n");
  EXPECT_EQ(state->active_slot, "slot_a");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
}

TEST_F(RpiBootIntegrationTest, FlashKernelFailureFailsBeforeTheSwitch) {
  ASSERT_TRUE(PowerOn(false).ok());
  absl::Status switched = Update("v2", /*fail_flash_kernel=*/true);
  ASSERT_FALSE(switched.ok());
  EXPECT_NE(switched.message().find("flash-kernel"), std::string::npos) << switched;
  EXPECT_EQ(BootFile("tryboot.txt"), ConfigTxt("slot_a"));
  EXPECT_FALSE(BootFileExists("vmlinuz_slot_b"));
  // Nothing left mounted inside the standby (the binds were undone).
  EXPECT_EQ(Sh("grep -c '" + dir_.string() + "/mnt' /proc/self/mountinfo || true"), "1\n");
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
  auto state = Restart();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kFailure);
}

TEST_F(RpiBootIntegrationTest, ImageWhoseBindTargetIsASymlinkIsRefused) {
  ASSERT_TRUE(PowerOn(false).ok());
  // /sys -> / would bind the host's /sys over the image's root directory.
  absl::Status switched = Update("v2", false, [](const stdfs::path& root) {
    stdfs::remove_all(root / "sys");
    stdfs::create_symlink("/", root / "sys");
  });
  ASSERT_FALSE(switched.ok());
  EXPECT_NE(switched.message().find("/sys"), std::string::npos) << switched;
  EXPECT_EQ(BootFile("tryboot.txt"), ConfigTxt("slot_a"));
  EXPECT_EQ(Sh("grep -c '" + dir_.string() + "/mnt' /proc/self/mountinfo || true"), "1\n");
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
}

TEST_F(RpiBootIntegrationTest, RefusesAMachineThatIsNotAPi) {
  WriteText(dir_ / "model", "NVIDIA Jetson AGX Orin");
  auto state = PowerOn(false);
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.status().message().find("not a Raspberry Pi"), std::string::npos)
      << state.status();
}

TEST_F(RpiBootIntegrationTest, FinalizesAnUpdateWrittenByThePythonClient) {
  // The Python client updated slot_a → slot_b and ran `reboot "0 tryboot"`.
  for (int slot : {0, 1}) {
    const stdfs::path stage = dir_ / ("py-stage" + std::to_string(slot));
    WriteImage(stage, slot == 0 ? "py-1" : "py-2");
    WriteText(stage / "boot/ota/ecu_info.yaml", "ecu_id: main\n");
    WriteText(stage / "boot/ota-status/status", slot == 0 ? "FAILURE" : "UPDATING");
    WriteText(stage / "boot/ota-status/version", slot == 0 ? "py-1" : "py-2");
    WriteText(stage / "boot/ota-status/slot_in_use", "slot_b");
    if (slot == 1) {
      WriteText(stage / "boot/ota-status/version_detail",
                R"({"release_name": "rel-2", "release_id": "2026.07", "image_id": "img-2"})");
    }
    ASSERT_TRUE(
        disk_->FormatExt4(slot + 2, Uuid(slot == 0 ? "a1" : "b1"), SlotName(slot), stage).ok());
  }
  ASSERT_TRUE(WithSystemBoot([](const stdfs::path& boot) {
    WriteText(boot / "tryboot.txt", ConfigTxt("slot_b"));
    WriteText(boot / "vmlinuz_slot_b", "kernel py-2\n");
    WriteText(boot / "initrd.img_slot_b", "initrd py-2\n");
    WriteText(boot / "._ota_switch_boot_finalized", "");
  }));
  auto state = PowerOn(true);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_b");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "py-2");
  EXPECT_EQ(state->release, (ReleaseInfo{"rel-2", "2026.07", "img-2"}));
  EXPECT_EQ(BootFile("config.txt"), ConfigTxt("slot_b"));
  // The next update and a rollback work.
  ASSERT_TRUE(Update("v3").ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_a");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  ASSERT_TRUE(controller_->CommitRollback().ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "slot_b");
  EXPECT_EQ(state->version, "py-2");
}

// Runs `body` on a fresh controller in a child process killed with SIGKILL at `kill_at`.
void RunKilledAt(const RpiBootOptions& options, const std::string& kill_at,
                 const std::function<bool(BootController&)>& body) {
  ::ota::testing::RunKilledAt(options, kill_at, CreateRpiBootController, body);
}

// kill -9 after every step of an update, then a power cut: the firmware never starts a
// half-written slot — not with a plain boot, and not with a tryboot either (tryboot.txt names the
// running slot until the switch) — and a retry goes through.
TEST_F(RpiBootIntegrationTest, KilledAtEveryStepNeverBootsAHalfWrittenSlot) {
  const std::vector<std::string> steps = {"prepare:1", "prepare:2", "prepare:3",
                                          "commit:1",  "commit:2",  "commit:3",
                                          "commit:4",  "commit:5",  "commit:6"};
  for (const std::string& kill_at : steps) {
    SCOPED_TRACE(kill_at);
    auto state = PowerOn(false);
    ASSERT_TRUE(state.ok()) << state.status();
    const int from = booted_;
    controller_.reset();
    const std::string version = "v-" + kill_at;
    RunKilledAt(Options(), kill_at, [&version](BootController& c) {
      std::vector<std::string_view> keep;
      if (!c.ConfirmBoot().ok()) return false;
      auto root = c.PrepareStandby(version, keep);
      if (!root.ok()) return false;
      WriteImage(*root, version);
      return c.CommitSwitch().ok();
    });
    // A power cut (plain boot) always comes back on the running slot.
    state = PowerOn(kill_at != "commit:6");
    ASSERT_TRUE(state.ok()) << state.status();
    // (After commit:6 the switch is armed but the machine never rebooted with tryboot.)
    EXPECT_EQ(booted_, from);
    if (kill_at != "prepare:1") {
      EXPECT_EQ(state->status, SlotStatus::kFailure);
    }
    // Recoverable: a fresh update goes through.
    ASSERT_TRUE(Update("v-retry-" + kill_at).ok());
    state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(booted_, 1 - from);
    EXPECT_EQ(state->status, SlotStatus::kSuccess);
    EXPECT_EQ(state->version, "v-retry-" + kill_at);
  }
}

}  // namespace
}  // namespace ota::boot
