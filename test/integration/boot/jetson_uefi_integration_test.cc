// The Jetson UEFI controller on real block devices: a GPT disk on a loop device with rootfs A (p1)
// and B (p2), each a real ext4 with /boot/extlinux/extlinux.conf and the Jetson /etc files, plus
// a real vfat EFI system partition (p3, GPT name "esp") holding the L4TLauncher. The fake UEFI
// nvbootctrl (test/lib/fake-nvbootctrl-uefi) on PATH keeps the firmware's slot state in a file;
// the efivarfs is a stand-in directory. A "reboot" unmounts everything, mounts the ESP for the
// firmware emulation (`fake-boot`: capsules processed when OsIndications asks, else the active
// slot), mounts the slot that came up as the running root and creates a new controller on it.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
#include "otaclient/boot/efi_var.h"
#include "otaclient/boot/jetson_uefi_boot_controller.h"
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

constexpr const char* kFake = OTA_SOURCE_DIR "/test/lib/fake-nvbootctrl-uefi";
constexpr const char* kExtlinux =
    "TIMEOUT 30\nDEFAULT primary\n\nLABEL primary\n      LINUX /boot/Image\n"
    "      INITRD /boot/initrd\n      APPEND ${cbootargs} root=/dev/nvme0n1p1 rw rootwait\n";
constexpr const char* kTnspec = "3701-500-0005-A.0-1-0-cti-orin-agx-agx201-00-";
constexpr const char* kLauncher = "L4TLauncher as flashed\n";

std::string Sha256(const stdfs::path& file) {
  return Trimmed(Sh("sha256sum '" + file.string() + "' | cut -d' ' -f1"));
}

std::string NvTegraRelease(int major, int revision, int minor) {
  return "# R" + std::to_string(major) + " (release), REVISION: " + std::to_string(revision) + "." +
         std::to_string(minor) + ", GCID: 33958178, BOARD: generic, EABI: aarch64, DATE: x\n";
}

// What the image's /opt/ota/firmware holds.
struct Firmware {
  std::string capsule_bsp = "R35.4.1";  // the fake capsule's content
  std::string package_bsp = "r35.4.1";  // the manifest's
  std::string board_rev = "A.0";
  bool corrupt_capsule_digest = false;
  bool with_launcher = true;
  std::string launcher = "L4TLauncher R35.4.1\n";
  std::string capsule_location = "file:///opt/ota/firmware/bl_only_payload.Cap";
};

class JetsonUefiIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "%06x%06x", random() & 0xffffff, random() & 0xffffff);
    partuuid_a_ = std::string("7b2c0d2e-000a-4000-8000-") + suffix;
    partuuid_b_ = std::string("7b2c0d2e-000b-4000-8000-") + suffix;
    const stdfs::path parent = stdfs::is_directory("/dev/shm") ? "/dev/shm" : "";
    auto tmp = fs::TempDir::Create("uefi-it", parent);
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    dir_ = tmp_->path();
    stdfs::create_directories(dir_ / "bin");
    stdfs::create_symlink(kFake, dir_ / "bin" / "nvbootctrl");
    old_path_ = getenv("PATH") ? getenv("PATH") : "";
    ::setenv("PATH", ((dir_ / "bin").string() + ":" + old_path_).c_str(), 1);
    ::setenv("FAKE_NVBOOTCTRL_STATE", (dir_ / "nvbootctrl.state").c_str(), 1);
    ::setenv("FAKE_NVBOOTCTRL_LOG", (dir_ / "nvbootctrl.log").c_str(), 1);
    ::unsetenv("FAKE_NVBOOTCTRL_FAIL");
    Sh("nvbootctrl fake-init 0 35.4.1");
    stdfs::create_directories(dir_ / "efivars");
    static constexpr char kCompatible[] =
        "nvidia,p3737-0000+p3701-0005\0nvidia,p3701-0005\0nvidia,tegra234";
    WriteText(dir_ / "compatible", std::string(kCompatible, sizeof(kCompatible)));

    auto disk = ota::testing::LoopDisk::Create(
        dir_ / "disk",
        {{"APP", 24, partuuid_a_}, {"APP_b", 24, partuuid_b_}, {"esp", 8, Uuid("e5"), "ef00"}});
    if (!disk.ok() && absl::IsUnavailable(disk.status())) GTEST_SKIP() << disk.status().message();
    ASSERT_TRUE(disk.ok()) << disk.status();
    disk_ = std::move(*disk);
    for (int slot : {0, 1}) {
      const stdfs::path stage = dir_ / ("stage" + std::to_string(slot));
      WriteJetsonFiles(stage, "/dev/mtdblock0");
      WriteText(stage / "boot/extlinux/extlinux.conf", kExtlinux);
      WriteText(stage / "boot/ota/ecu_info.yaml", "ecu_id: main\n");
      WriteText(stage / "etc/os-release", "v1\n");
      ASSERT_TRUE(disk_
                      ->FormatExt4(slot + 1, Uuid(slot == 0 ? "a1" : "b1"),
                                   slot == 0 ? "APP" : "APP_b", stage)
                      .ok());
    }
    ASSERT_TRUE(disk_->FormatFat(3, "ESP").ok());
    ASSERT_TRUE(WithEsp(*disk_, [](const stdfs::path& esp) {
      WriteText(esp / "EFI/BOOT/BOOTAA64.efi", kLauncher);
    }));
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

  // A per-test unique UUID ("…-0000000000<tag>" with this test's random suffix in front).
  std::string Uuid(const std::string& tag) const {
    return "7b2c0d2e-00" + tag + "-4000-8000-" + partuuid_a_.substr(24);
  }

  static void WriteJetsonFiles(const stdfs::path& root, const std::string& boot_device) {
    WriteText(root / "etc/nv_tegra_release", NvTegraRelease(35, 4, 1));
    WriteText(root / "etc/nv_boot_control.conf",
              std::string("TNSPEC ") + kTnspec + "\nCOMPATIBLE_SPEC 3701--0005--1--jetson-agx-\n" +
                  "TEGRA_OTA_BOOT_DEVICE " + boot_device + "\n");
  }

  // Runs `body` with the ESP (p3) of `disk` mounted read-write; false when it could not mount.
  bool WithEsp(const ota::testing::LoopDisk& disk,
               const std::function<void(const stdfs::path&)>& body,
               const std::string& name = "esp-peek") {
    auto mounted = MountedFileSystem::Mount(disk.PartitionNode(3), dir_ / name,
                                            FatMountSpec(ota::testing::LoopDisk::FatStandInType()));
    EXPECT_TRUE(mounted.ok()) << mounted.status();
    if (!mounted.ok()) return false;
    body(mounted->target());
    EXPECT_TRUE(mounted->SyncAndUnmount().ok());
    return true;
  }
  std::string EspFile(const std::string& path) {
    std::string text;
    WithEsp(*disk_, [&](const stdfs::path& esp) { text = ReadText(esp / path); });
    return text;
  }
  std::vector<std::string> EspCapsules() {
    std::vector<std::string> names;
    WithEsp(*disk_, [&](const stdfs::path& esp) {
      std::error_code ec;
      for (const auto& e : stdfs::directory_iterator(esp / "EFI/UpdateCapsule", ec)) {
        names.push_back(e.path().filename().string());
      }
    });
    return names;
  }

  std::string FakeGet(const std::string& key) { return Trimmed(Sh("nvbootctrl fake-get " + key)); }
  std::string Calls() { return ReadText(dir_ / "nvbootctrl.log"); }
  int CountCalls(const std::string& call) {
    int n = 0;
    std::istringstream in(Calls());
    for (std::string line; std::getline(in, line);) n += line == call ? 1 : 0;
    return n;
  }
  std::string SlotDevice(int slot) { return disk_->PartitionNode(slot + 1); }
  stdfs::path ActiveRoot() { return dir_ / "active"; }
  stdfs::path OsIndications() { return dir_ / "efivars" / std::string(kOsIndicationsVariable); }

  JetsonUefiOptions Options() {
    JetsonUefiOptions options;
    options.active_root = ActiveRoot();
    options.mount_dir = dir_ / "mnt";
    options.device_tree_compatible = dir_ / "compatible";
    options.efivars_dir = dir_ / "efivars";
    options.esp_fs_type = ota::testing::LoopDisk::FatStandInType();
    if (emmc_) options.internal_emmc_disk = stdfs::path(emmc_->device()).filename().string();
    return options;
  }

  absl::StatusOr<BootState> Boot() {
    controller_.reset();
    active_mount_.reset();
    auto mounted = MountedFileSystem::Mount(SlotDevice(std::stoi(FakeGet("current"))), ActiveRoot(),
                                            StandbyMountSpec());
    if (!mounted.ok()) return mounted.status();
    active_mount_ = std::make_unique<MountedFileSystem>(std::move(*mounted));
    return Restart();
  }

  absl::StatusOr<BootState> Restart() {
    controller_.reset();
    auto controller = CreateJetsonUefiBootController(Options());
    if (!controller.ok()) return controller.status();
    controller_ = std::move(*controller);
    if (defer_confirmation_) controller_->DeferConfirmation();
    return controller_->ConfirmBoot();
  }

  // Power cycle: the firmware (with the ESPs mounted for it) decides, then Boot().
  absl::StatusOr<BootState> Reboot(const std::string& flags = "") {
    controller_.reset();
    active_mount_.reset();
    (void)UnmountAllUnder(dir_);
    auto esp = MountedFileSystem::Mount(disk_->PartitionNode(3), dir_ / "fw-esp",
                                        FatMountSpec(ota::testing::LoopDisk::FatStandInType()));
    if (!esp.ok()) return esp.status();
    std::optional<MountedFileSystem> emmc_esp;
    std::string emmc_flag;
    if (emmc_) {
      auto mounted =
          MountedFileSystem::Mount(emmc_->PartitionNode(3), dir_ / "fw-emmc-esp",
                                   FatMountSpec(ota::testing::LoopDisk::FatStandInType()));
      if (!mounted.ok()) return mounted.status();
      emmc_esp.emplace(std::move(*mounted));
      emmc_flag = " --emmc-esp " + (dir_ / "fw-emmc-esp").string();
    }
    Sh("nvbootctrl fake-boot --esp " + (dir_ / "fw-esp").string() + " --efivars " +
       (dir_ / "efivars").string() + emmc_flag + " " + flags);
    if (absl::Status s = esp->SyncAndUnmount(); !s.ok()) return s;
    if (emmc_esp) {
      if (absl::Status s = emmc_esp->SyncAndUnmount(); !s.ok()) return s;
    }
    return Boot();
  }

  static void WriteImage(const stdfs::path& root, const std::string& version) {
    WriteJetsonFiles(root, "/dev/mtdblock0");
    WriteText(root / "boot/extlinux/extlinux.conf", kExtlinux);
    WriteText(root / "boot/Image", "kernel " + version + "\n");
    WriteText(root / "etc/os-release", version + "\n");
  }

  static void WriteFirmware(const stdfs::path& root, const Firmware& f) {
    const stdfs::path dir = root / "opt/ota/firmware";
    WriteText(dir / "bl_only_payload.Cap", "FAKE-CAPSULE bsp=" + f.capsule_bsp + "\n");
    WriteText(dir / "BOOTAA64.efi", f.launcher);
    std::string capsule_digest = Sha256(dir / "bl_only_payload.Cap");
    if (f.corrupt_capsule_digest) capsule_digest[0] = capsule_digest[0] == '0' ? '1' : '0';
    WriteText(dir / "firmware_update.yaml",
              std::string("format_version: 1\nfirmware_list: [bl_only_payload") +
                  (f.with_launcher ? ", BOOTAA64.efi" : "") + "]\n");
    WriteText(dir / "firmware_manifest.yaml",
              "format_version: 1\nhardware_type: nvidia_jetson\nhardware_series: ORIN\n"
              "hardware_model: AGX\nfirmware_spec:\n  bsp_version: " +
                  f.package_bsp +
                  "\n  firmware_compat:\n    board_id: \"3701\"\n    board_sku: \"0005\"\n"
                  "    board_rev: " +
                  f.board_rev +
                  "\n    fab_id: \"500\"\n"
                  "    board_conf: cti-orin-agx-agx201-00\nfirmware_packages:\n"
                  "  - payload_name: bl_only_payload\n    file_location: " +
                  f.capsule_location +
                  "\n    type: UEFI-CAPSULE\n    digest: sha256:" + capsule_digest +
                  "\n"
                  "  - payload_name: BOOTAA64.efi\n"
                  "    file_location: file:///opt/ota/firmware/BOOTAA64.efi\n"
                  "    type: UEFI-BOOT-APP\n    digest: sha256:" +
                  Sha256(dir / "BOOTAA64.efi") + "\n");
  }

  // PrepareStandby + image (+ firmware) + CommitSwitch.
  absl::Status Update(const std::string& version, const std::optional<Firmware>& firmware) {
    std::vector<std::string_view> keep = {".ota-resources"};
    auto root = controller_->PrepareStandby(version, keep);
    if (!root.ok()) return root.status();
    WriteImage(*root, version);
    if (firmware) WriteFirmware(*root, *firmware);
    return controller_->CommitSwitch();
  }

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
  std::string partuuid_a_;
  std::string partuuid_b_;
  std::unique_ptr<MountedFileSystem> active_mount_;
  std::unique_ptr<BootController> controller_;
  bool defer_confirmation_ = false;  // health-gated commit (otaclient --health-check-*)
};

TEST_F(JetsonUefiIntegrationTest, UpdateWithoutFirmwareSwitchesThroughNvbootctrl) {
  auto state = Boot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kInitialized);
  EXPECT_EQ(state->active_slot, "0");
  ASSERT_TRUE(Update("v2", std::nullopt).ok());
  EXPECT_EQ(CountCalls("set-active-boot-slot 1"), 1);
  EXPECT_EQ(Calls().find("-t"), std::string::npos) << Calls();
  EXPECT_FALSE(stdfs::exists(OsIndications()));
  const std::string conf = ReadSlotFile(1, "boot/extlinux/extlinux.conf");
  EXPECT_NE(conf.find("root=PARTUUID=" + partuuid_b_ + " rw"), std::string::npos) << conf;
  EXPECT_EQ(ReadSlotFile(1, "boot/ota-status/status"), "UPDATING");
  EXPECT_EQ(ReadSlotFile(1, "boot/ota/ecu_info.yaml"), "ecu_id: main\n");

  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");
  EXPECT_EQ(CountCalls("verify"), 1);
  EXPECT_EQ(FakeGet("successful1"), "1");
  // Rollback to A, then back on B after a rollback whose boot fails.
  ASSERT_TRUE(controller_->CheckRollbackPossible().ok()) << controller_->CheckRollbackPossible();
  ASSERT_TRUE(controller_->CommitRollback().ok());
  EXPECT_EQ(CountCalls("set-active-boot-slot 0"), 1);
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "");  // the factory image never had a version
  ASSERT_TRUE(controller_->CommitRollback().ok());
  state = Reboot("--fail-new");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kRollbackFailure);
  // The firmware gave up on B: no rollback target any more.
  absl::Status rollback = controller_->CheckRollbackPossible();
  EXPECT_EQ(rollback.code(), absl::StatusCode::kFailedPrecondition) << rollback;
  EXPECT_NE(rollback.message().find("unbootable"), absl::string_view::npos) << rollback;
}

TEST_F(JetsonUefiIntegrationTest, NewSlotThatNeverBootsFallsBack) {
  ASSERT_TRUE(Boot().ok());
  ASSERT_TRUE(Update("v2", std::nullopt).ok());
  auto state = Reboot("--fail-new");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_NE(state->failure_reason.find("v2"), std::string::npos) << state->failure_reason;
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
  state = Restart();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  // The next update works.
  ASSERT_TRUE(Update("v3", std::nullopt).ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v3");
}

// Health-gated commit: no `nvbootctrl verify` (the firmware's own retry counter still guards the
// new slot) until the check passed; a rejected slot hands the boot back with
// set-active-boot-slot, and the old slot reports the reason.
TEST_F(JetsonUefiIntegrationTest, HealthGatedRejectionSwitchesBackThroughNvbootctrl) {
  ASSERT_TRUE(Boot().ok());
  ASSERT_TRUE(Update("v2", std::nullopt).ok());
  defer_confirmation_ = true;
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kUpdating);
  EXPECT_TRUE(state->confirmation_pending);
  EXPECT_EQ(CountCalls("verify"), 0);
  ASSERT_TRUE(controller_->RejectNewSlot("unit app.target failed").ok());
  EXPECT_EQ(CountCalls("set-active-boot-slot 0"), 1);
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(state->failure_reason, "health check failed: unit app.target failed");
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
}

// QSPI firmware: the capsule goes to the booted disk's ESP, OsIndications into efivarfs, and no
// set-active-boot-slot follows (it would cancel the capsule); the capsule update switches slots.
TEST_F(JetsonUefiIntegrationTest, CapsuleUpdateArmsTheTriggerInsteadOfTheSwitch) {
  ASSERT_TRUE(Boot().ok());
  ASSERT_TRUE(Update("v2", Firmware{}).ok());
  EXPECT_EQ(CountCalls("set-active-boot-slot 1"), 0) << Calls();
  EXPECT_EQ(ReadText(OsIndications()), EncodeEfiVariable(CapsuleTriggerVariable()));
  EXPECT_EQ(EspCapsules(), std::vector<std::string>{"bl_only_payload"});
  EXPECT_EQ(EspFile("EFI/UpdateCapsule/bl_only_payload"), "FAKE-CAPSULE bsp=R35.4.1\n");
  // The launcher is as new as the package: left alone, its version recorded.
  EXPECT_EQ(EspFile("EFI/BOOT/BOOTAA64.efi"), kLauncher);
  EXPECT_EQ(EspFile("EFI/BOOT/l4tlauncher_version").rfind("R35.4.1:", 0), 0u);

  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(FakeGet("capsule_status"), "1");
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "v2");
  EXPECT_TRUE(EspCapsules().empty());
  EXPECT_FALSE(stdfs::exists(OsIndications()));
}

TEST_F(JetsonUefiIntegrationTest, FailedCapsuleUpdateComesBackOnTheOldSlot) {
  ASSERT_TRUE(Boot().ok());
  ASSERT_TRUE(Update("v2", Firmware{}).ok());
  auto state = Reboot("--capsule-fails");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(FakeGet("capsule_status"), "3");
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
  EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
}

// eMMC firmware: the trigger is a file in EFI/NVDA/Variables/ on the internal eMMC's ESP.
TEST_F(JetsonUefiIntegrationTest, EmmcFirmwareGetsTheTriggerOnTheEmmcEsp) {
  auto emmc = ota::testing::LoopDisk::Create(
      dir_ / "emmc",
      {{"boot_a", 8, Uuid("c1")}, {"boot_b", 8, Uuid("c2")}, {"esp", 8, Uuid("c3"), "ef00"}});
  ASSERT_TRUE(emmc.ok()) << emmc.status();
  emmc_ = std::move(*emmc);
  ASSERT_TRUE(emmc_->FormatFat(3, "ESP").ok());
  ASSERT_TRUE(Boot().ok());
  WriteJetsonFiles(ActiveRoot(), "/dev/mmcblk0boot0");
  ASSERT_TRUE(Restart().ok());
  ASSERT_TRUE(Update("v2", Firmware{}).ok());
  EXPECT_EQ(CountCalls("set-active-boot-slot 1"), 0) << Calls();
  EXPECT_FALSE(stdfs::exists(OsIndications()));
  WithEsp(*emmc_, [](const stdfs::path& esp) {
    EXPECT_EQ(ReadText(esp / "EFI/NVDA/Variables" / std::string(kOsIndicationsVariable)),
              EncodeEfiVariable(CapsuleTriggerVariable()));
  });
  EXPECT_EQ(EspCapsules(), std::vector<std::string>{"bl_only_payload"});
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
}

TEST_F(JetsonUefiIntegrationTest, OlderLauncherIsReplacedAtomicallyWithABackup) {
  ASSERT_TRUE(Boot().ok());
  // The recorded version matches the launcher's digest: it is trusted (R35.2.0 < R35.4.1).
  ASSERT_TRUE(WithEsp(*disk_, [](const stdfs::path& esp) {
    WriteText(esp / "EFI/BOOT/l4tlauncher_version",
              "R35.2.0:" + Sha256(esp / "EFI/BOOT/BOOTAA64.efi"));
  }));
  ASSERT_TRUE(Update("v2", Firmware{}).ok());
  EXPECT_EQ(EspFile("EFI/BOOT/BOOTAA64.efi"), "L4TLauncher R35.4.1\n");
  EXPECT_EQ(EspFile("EFI/BOOT/BOOTAA64.efi_bak"), kLauncher);
  std::string new_digest;
  WithEsp(*disk_,
          [&](const stdfs::path& esp) { new_digest = Sha256(esp / "EFI/BOOT/BOOTAA64.efi"); });
  EXPECT_EQ(EspFile("EFI/BOOT/l4tlauncher_version"), "R35.4.1:" + new_digest);
  std::vector<std::string> leftovers;
  WithEsp(*disk_, [&](const stdfs::path& esp) {
    for (const auto& e : stdfs::directory_iterator(esp / "EFI/BOOT")) {
      leftovers.push_back(e.path().filename().string());
    }
  });
  std::sort(leftovers.begin(), leftovers.end());
  EXPECT_EQ(leftovers,
            (std::vector<std::string>{"BOOTAA64.efi", "BOOTAA64.efi_bak", "l4tlauncher_version"}));
}

// Every reason to skip the capsule leaves an ordinary switch through nvbootctrl.
TEST_F(JetsonUefiIntegrationTest, CapsuleSkipsFallBackToTheManualSwitch) {
  struct Case {
    std::string name;
    Firmware firmware;
    std::string firmware_version = "35.4.1";
    std::string boot_device = "/dev/mtdblock0";
  };
  Firmware mismatch;
  mismatch.corrupt_capsule_digest = true;
  Firmware other_board;
  other_board.board_rev = "L.0";
  Firmware old_package;
  old_package.package_bsp = "r35.1.0";
  Firmware downgrade;
  downgrade.package_bsp = "r35.3.1";
  const Case cases[] = {{"digest mismatch", mismatch},
                        {"other board", other_board},
                        {"package older than R35.2", old_package},
                        {"firmware older than R35.2", Firmware{}, "35.1.0"},
                        {"package older than the firmware", downgrade},
                        {"unknown boot device", Firmware{}, "35.4.1", "/dev/sda"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Sh("nvbootctrl fake-init 0 " + c.firmware_version);
    auto state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    WriteJetsonFiles(ActiveRoot(), c.boot_device);
    ASSERT_TRUE(Restart().ok());
    ::unlink((dir_ / "nvbootctrl.log").c_str());
    absl::Status updated = Update("v-" + c.name, c.firmware);
    ASSERT_TRUE(updated.ok()) << updated;
    EXPECT_EQ(CountCalls("set-active-boot-slot 1"), 1) << Calls();
    EXPECT_FALSE(stdfs::exists(OsIndications()));
    EXPECT_TRUE(EspCapsules().empty());
    // Back to slot 0 for the next case (B is good: roll back).
    state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_EQ(state->active_slot, "1");
    ASSERT_TRUE(controller_->CommitRollback().ok());
    state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_EQ(state->active_slot, "0");
    WriteJetsonFiles(ActiveRoot(), "/dev/mtdblock0");
  }
}

TEST_F(JetsonUefiIntegrationTest, FirmwareErrorsFailTheUpdateBeforeTheSwitch) {
  ASSERT_TRUE(Boot().ok());
  // A capsule that is not a file:// payload is an error in the image (upstream: an assertion).
  Firmware blob;
  blob.capsule_location = "sha256:00";
  absl::Status commit = Update("v2", blob);
  EXPECT_EQ(commit.code(), absl::StatusCode::kUnimplemented) << commit;
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
  // No ESP on the booted disk while the image asks for firmware.
  Sh("sgdisk -c 3:notesp " + disk_->device() + " >/dev/null 2>&1 || true");
  commit = Update("v3", Firmware{});
  EXPECT_EQ(commit.code(), absl::StatusCode::kFailedPrecondition) << commit;
  EXPECT_NE(commit.message().find("esp"), absl::string_view::npos) << commit;
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
  EXPECT_EQ(CountCalls("set-active-boot-slot 1"), 0);
  EXPECT_FALSE(stdfs::exists(OsIndications()));
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kFailure);
}

TEST_F(JetsonUefiIntegrationTest, BspGuardRefusesAnotherBspBeforeAnythingIsTouched) {
  ASSERT_TRUE(Boot().ok());
  EXPECT_TRUE(controller_->WantsImagePlatformInfo());
  const std::string calls_before = Calls();
  EXPECT_TRUE(controller_->CheckImageCompatible({std::string("R35.4.1")}).ok());
  EXPECT_TRUE(controller_->CheckImageCompatible({}).ok());  // the image does not say
  for (const std::string other : {"R36.3.0", "R35.4.0", "banana"}) {
    absl::Status refused = controller_->CheckImageCompatible({other});
    EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
    EXPECT_NE(refused.message().find("R35.4.1"), absl::string_view::npos) << refused;
  }
  EXPECT_EQ(Calls(), calls_before);  // no nvbootctrl call, nothing written
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/status"), "INITIALIZED");
  EXPECT_EQ(ReadText(ActiveRoot() / "boot/ota-status/slot_in_use"), "0");
}

TEST_F(JetsonUefiIntegrationTest, StartupChecks) {
  ASSERT_TRUE(Boot().ok());
  Sh("nvbootctrl fake-set fw0 0.0.0");
  auto state = Restart();
  EXPECT_NE(state.status().message().find("incomplete"), absl::string_view::npos) << state.status();
  Sh("nvbootctrl fake-set fw0 32.7.4");
  state = Restart();
  EXPECT_NE(state.status().message().find("jetson-cboot"), absl::string_view::npos)
      << state.status();
  Sh("nvbootctrl fake-set fw0 35.4.1");
  WriteText(dir_ / "compatible", "raspberrypi,4-model-b");
  state = Restart();
  EXPECT_NE(state.status().message().find("not a Jetson"), absl::string_view::npos)
      << state.status();
  WriteText(dir_ / "compatible", "nvidia,tegra234");
  stdfs::remove(ActiveRoot() / "etc/nv_boot_control.conf");
  state = Restart();
  EXPECT_NE(state.status().message().find("nv_boot_control.conf"), absl::string_view::npos)
      << state.status();
  WriteJetsonFiles(ActiveRoot(), "/dev/mtdblock0");
  // A rootfs BSP that differs from the firmware only warns.
  WriteText(ActiveRoot() / "etc/nv_tegra_release", NvTegraRelease(35, 3, 1));
  state = Restart();
  EXPECT_TRUE(state.ok()) << state.status();
}

// An earlier switch left the boot chain pointing at the standby: it is pointed back at the
// running slot before the standby is written.
TEST_F(JetsonUefiIntegrationTest, ArmedSwitchIsUndoneBeforeTheStandbyIsWritten) {
  ASSERT_TRUE(Boot().ok());
  Sh("nvbootctrl set-active-boot-slot 1");
  ::unlink((dir_ / "nvbootctrl.log").c_str());
  std::vector<std::string_view> keep;
  auto root = controller_->PrepareStandby("v2", keep);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(FakeGet("active"), "0");
  EXPECT_EQ(Calls().find("set-active-boot-slot 0"), Calls().find("set-active"))
      << "the reset comes first: " << Calls();
  ASSERT_TRUE(controller_->OnUpdateFailed(SlotStatus::kFailure).ok());
}

// The Python client switched to B (its files have no trailing newline, a version_detail): our
// first start on B finalises that update and reports its release.
TEST_F(JetsonUefiIntegrationTest, FinalizesAnUpdateWrittenByThePythonClient) {
  for (int slot : {0, 1}) {
    const stdfs::path stage = dir_ / ("py-stage" + std::to_string(slot));
    WriteJetsonFiles(stage, "/dev/mtdblock0");
    WriteText(stage / "boot/extlinux/extlinux.conf", kExtlinux);
    WriteText(stage / "etc/os-release", slot == 0 ? "py-1\n" : "py-2\n");
    WriteText(stage / "boot/ota-status/status", slot == 0 ? "FAILURE" : "UPDATING");
    WriteText(stage / "boot/ota-status/version", slot == 0 ? "py-1" : "py-2");
    WriteText(stage / "boot/ota-status/slot_in_use", "1");
    if (slot == 1) {
      WriteText(stage / "boot/ota-status/version_detail",
                R"({"release_name": "rel-2", "release_id": "2026.07", "image_id": "img-2"})");
    }
    ASSERT_TRUE(disk_
                    ->FormatExt4(slot + 1, Uuid(slot == 0 ? "a1" : "b1"),
                                 slot == 0 ? "APP" : "APP_b", stage)
                    .ok());
  }
  Sh("nvbootctrl set-active-boot-slot 1");
  auto state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  EXPECT_EQ(state->version, "py-2");
  EXPECT_EQ(state->release, (ReleaseInfo{"rel-2", "2026.07", "img-2"}));
  EXPECT_EQ(CountCalls("verify"), 1);
  EXPECT_TRUE(controller_->CheckRollbackPossible().ok()) << controller_->CheckRollbackPossible();
  // The next update and a rollback to it work.
  ASSERT_TRUE(Update("v3", std::nullopt).ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "0");
  EXPECT_EQ(state->status, SlotStatus::kSuccess);
  ASSERT_TRUE(controller_->CommitRollback().ok());
  state = Reboot();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->active_slot, "1");
  EXPECT_EQ(state->version, "py-2");
}

// Runs `body` on a fresh controller in a child process that is killed with SIGKILL at `kill_at`.
void RunKilledAt(const JetsonUefiOptions& options, const std::string& kill_at,
                 const std::function<bool(BootController&)>& body) {
  ::ota::testing::RunKilledAt(options, kill_at, CreateJetsonUefiBootController, body);
}

// kill -9 after every step of an update that carries a capsule: the firmware never boots a
// half-written slot, a capsule staged without its trigger is never applied, and the next update
// goes through with only its own capsule on the ESP.
TEST_F(JetsonUefiIntegrationTest, KilledAtEveryStepNeverBootsAHalfWrittenSlot) {
  const std::vector<std::string> steps = {"prepare:1", "prepare:2", "prepare:3",
                                          "commit:1",  "commit:2",  "commit:3",
                                          "commit:4",  "commit:5",  "commit:6"};
  for (const std::string& kill_at : steps) {
    SCOPED_TRACE(kill_at);
    Sh("nvbootctrl fake-init 0 35.4.1");
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
      Firmware firmware;
      firmware.capsule_bsp = "R35.4.1";
      WriteFirmware(*root, firmware);
      return c.CommitSwitch().ok();
    });
    state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    if (state->active_slot == "1") {
      EXPECT_EQ(kill_at, "commit:6");  // only once the trigger was written
      EXPECT_EQ(FakeGet("capsule_status"), "1");
      EXPECT_EQ(state->status, SlotStatus::kSuccess);
      EXPECT_EQ(state->version, version);
      ASSERT_TRUE(controller_->CommitRollback().ok());
      continue;
    }
    EXPECT_NE(kill_at, "commit:6");
    if (kill_at != "prepare:1") {
      EXPECT_EQ(state->status, SlotStatus::kFailure);
    }
    EXPECT_EQ(ReadText(ActiveRoot() / "etc/os-release"), "v1\n");
    EXPECT_EQ(FakeGet("capsule_status"), "0");
    // Recoverable: a fresh update (a capsule again) goes through, its capsule alone staged.
    ASSERT_TRUE(Update("v-retry", Firmware{}).ok());
    EXPECT_EQ(EspCapsules(), std::vector<std::string>{"bl_only_payload"});
    state = Reboot();
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->active_slot, "1");
    EXPECT_EQ(state->status, SlotStatus::kSuccess);
    EXPECT_EQ(state->version, "v-retry");
    ASSERT_TRUE(controller_->CommitRollback().ok());
  }
}

}  // namespace
}  // namespace ota::boot
