// The GRUB backend on a real GPT disk (loop device): /boot + slot A + slot B, real mkfs.ext4,
// real mounts, the real grub-editenv on a real environment block. A "machine" boots a slot by
// mounting its partition as the root and giving the controller a mountinfo and kernel command
// line that say so; a "reboot" asks DecideGrubBoot (the function that mirrors what GRUB does
// with our generated menu) which entry GRUB would boot, writes back the environment block as
// GRUB would (one-shot consumed) and boots that entry's root=PARTUUID=.
//
// Scenarios: first start on an unmanaged machine; update A→B and confirm; B never confirms
// (reset) → back on A with FAILURE; B→A later; rollback and failed rollback; otaclient killed
// (SIGKILL) at every step of an update and of the first start → never a half-written slot,
// and a following update succeeds.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "common/fs/fs.h"
#include "common/http/curl_fetcher.h"
#include "common/image/legacy/writer.h"
#include "common/log/log.h"
#include "common/util/strings.h"
#include "gtest/gtest.h"
#include "otaclient/boot/block_slot.h"
#include "otaclient/boot/grub_boot_controller.h"
#include "otaclient/boot/grub_boot_decision.h"
#include "otaclient/boot/grub_env.h"
#include "otaclient/boot/grub_menu.h"
#include "otaclient/boot/slot_state_store.h"
#include "otaclient/update/update_engine.h"
#include "test/lib/loop_disk.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

constexpr char kPartuuidBoot[] = "6b3c9a10-2d4e-4f60-8a1b-000000000b00";
constexpr char kPartuuidA[] = "6b3c9a10-2d4e-4f60-8a1b-00000000000a";
constexpr char kPartuuidB[] = "6b3c9a10-2d4e-4f60-8a1b-00000000000b";
constexpr char kPartuuidEsp[] = "6b3c9a10-2d4e-4f60-8a1b-000000000e00";
constexpr char kUuidBoot[] = "11111111-2222-4333-8444-000000000b00";
constexpr char kUuidA[] = "11111111-2222-4333-8444-00000000000a";
constexpr char kUuidB[] = "11111111-2222-4333-8444-00000000000b";

constexpr char kDistroCfg[] =
    "# distro grub.cfg\nmenuentry 'Debian' {\n  linux /boot/vmlinuz root=PARTUUID=x\n}\n";

std::string ReadText(const stdfs::path& path) {
  auto text = fs::ReadFile(path);
  return text.ok() ? *text : std::string("<missing ") + path.string() + ">";
}

void WriteText(const stdfs::path& path, const std::string& content) {
  stdfs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// The image an "update" writes into the standby root.
void WriteImage(const stdfs::path& root, const std::string& version) {
  WriteText(root / "boot" / StrCat("vmlinuz-", version), StrCat("kernel ", version));
  WriteText(root / "boot" / StrCat("initrd.img-", version), StrCat("initrd ", version));
  stdfs::create_symlink(StrCat("vmlinuz-", version), root / "boot" / "vmlinuz");
  WriteText(root / "etc" / "fstab",
            "# image fstab\nUUID=image-root / ext4 defaults 0 1\n"
            "UUID=image-boot /boot ext4 defaults 0 2\ntmpfs /tmp tmpfs defaults 0 0\n");
  WriteText(root / "etc" / "version", version);
  WriteText(root / "image-complete", version);  // written last
}

class GrubMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sys::RunProgram({"grub-editenv", "--version"}).ok())
      GTEST_SKIP() << "SKIP: no grub-editenv";
    auto tmp = fs::TempDir::Create("grub-machine");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    work_ = tmp_->path();
    std::vector<testing::PartitionSpec> parts = {
        {"boot", 8, kPartuuidBoot}, {"rootfs_a", 24, kPartuuidA}, {"rootfs_b", 24, kPartuuidB}};
    if (uefi_) {
      // UEFI layout: the EFI system partition first (GPT type ef00), then /boot, A, B.
      parts.insert(parts.begin(), {"EFI System Partition", 8, kPartuuidEsp, "ef00"});
      esp_part_ = 1;
      boot_part_ = 2;
      part_a_ = 3;
      part_b_ = 4;
    }
    auto disk = testing::LoopDisk::Create(work_ / "disk", parts);
    if (absl::IsUnavailable(disk.status())) GTEST_SKIP() << disk.status().message();
    ASSERT_TRUE(disk.ok()) << disk.status();
    disk_ = std::move(*disk);

    // Slot A: a distro install whose kernel lives in its own /boot.
    const stdfs::path stage = work_ / "stage_a";
    WriteText(stage / "boot" / "vmlinuz", "kernel A-1");
    WriteText(stage / "etc" / "fstab",
              StrCat("UUID=", kUuidA, " / ext4 errors=remount-ro 0 1\nUUID=", kUuidBoot,
                     " /boot ext4 defaults 0 2\n/dev/sdz1 /data ext4 nofail 0 2\n"));
    WriteText(stage / "etc" / "version", "A-1");
    WriteText(stage / "slot-a-original", "untouched");
    ASSERT_TRUE(disk_->FormatExt4(boot_part_, kUuidBoot, "boot").ok());
    ASSERT_TRUE(disk_->FormatExt4(part_a_, kUuidA, "rootfs_a", stage).ok());
    ASSERT_TRUE(disk_->FormatExt4(part_b_, kUuidB, "rootfs_b").ok());
    if (esp_part_ != 0) {
      ASSERT_TRUE(disk_->FormatFat(esp_part_, "ESP").ok());
    }

    boot_dir_ = disk_->work_dir() / "mnt" / "boot";
    root_dir_ = disk_->work_dir() / "mnt" / "root";
    mount_dir_ = disk_->work_dir() / "mnt" / "ota";
    auto boot_mount =
        MountedFileSystem::Mount(disk_->PartitionNode(boot_part_), boot_dir_, StandbyMountSpec());
    ASSERT_TRUE(boot_mount.ok()) << boot_mount.status();
    boot_mount_.emplace(std::move(*boot_mount));
    if (esp_part_ != 0) {
      // The distro's ESP at /boot/efi with GRUB's UEFI stub (otaclient never touches it).
      auto esp = MountedFileSystem::Mount(disk_->PartitionNode(esp_part_), boot_dir_ / "efi",
                                          FatMountSpec(testing::LoopDisk::FatStandInType()));
      ASSERT_TRUE(esp.ok()) << esp.status();
      esp_mount_.emplace(std::move(*esp));
      WriteText(boot_dir_ / "efi/EFI/debian/grub.cfg",
                StrCat("search.fs_uuid ", kUuidBoot, " root\nset prefix=($root)'/grub'\n",
                       "configfile $prefix/grub.cfg\n"));
      WriteText(boot_dir_ / "efi/EFI/debian/grubx64.efi", "GRUB EFI binary");
    }
    WriteText(boot_dir_ / "grub" / "grub.cfg", kDistroCfg);
    // Power on: the distro's GRUB booted slot A.
    ASSERT_NO_FATAL_FAILURE(
        BootPartition(part_a_, StrCat("BOOT_IMAGE=/boot/vmlinuz root=PARTUUID=", kPartuuidA,
                                      " ro console=ttyS0,115200 panic=5")));
  }

  void TearDown() override {
    root_mount_.reset();
    esp_mount_.reset();
    boot_mount_.reset();
    disk_.reset();  // unmounts leftovers, detaches the loop device
  }

  // The machine runs partition `number` as its root with this kernel command line.
  void BootPartition(int number, const std::string& cmdline) {
    root_mount_.reset();
    ASSERT_TRUE(UnmountAllUnder(root_dir_).ok());
    ASSERT_TRUE(UnmountAllUnder(mount_dir_).ok());  // a reboot drops every mount
    auto mounted =
        MountedFileSystem::Mount(disk_->PartitionNode(number), root_dir_, StandbyMountSpec());
    ASSERT_TRUE(mounted.ok()) << mounted.status();
    root_mount_.emplace(std::move(*mounted));
    struct stat root_st, boot_st;
    ASSERT_EQ(::stat(disk_->PartitionNode(number).c_str(), &root_st), 0);
    ASSERT_EQ(::stat(disk_->PartitionNode(boot_part_).c_str(), &boot_st), 0);
    std::string mountinfo =
        StrCat("21 1 ", major(root_st.st_rdev), ":", minor(root_st.st_rdev),
               " / / rw,relatime shared:1 - ext4 /dev/root rw\n", "22 21 ", major(boot_st.st_rdev),
               ":", minor(boot_st.st_rdev), " / ", boot_dir_.string(),
               " rw,relatime shared:2 - ext4 ", disk_->PartitionNode(boot_part_), " rw\n");
    if (esp_part_ != 0) {
      struct stat esp_st;
      ASSERT_EQ(::stat(disk_->PartitionNode(esp_part_).c_str(), &esp_st), 0);
      StrAppend(&mountinfo, "23 22 ", major(esp_st.st_rdev), ":", minor(esp_st.st_rdev), " / ",
                (boot_dir_ / "efi").string(), " rw,relatime shared:3 - vfat ",
                disk_->PartitionNode(esp_part_), " rw\n");
    }
    WriteText(work_ / "mountinfo", mountinfo);
    WriteText(work_ / "cmdline", cmdline + "\n");
    booted_partition_ = number;
    reboots_++;
  }

  // What GRUB does at power-on with our menu and grubenv; returns the booted entry id.
  std::string GrubReboot() {
    const std::string cfg = ReadText(boot_dir_ / "grub" / "grub.cfg");
    if (cfg == kDistroCfg) {
      // Not taken over yet: the distro's menu boots slot A with its own kernel.
      BootPartition(part_a_, StrCat("BOOT_IMAGE=/boot/vmlinuz root=PARTUUID=", kPartuuidA,
                                    " ro console=ttyS0,115200 panic=5"));
      last_kernel_ = ReadText(root_dir_ / "boot" / "vmlinuz");
      return "distro";
    }
    auto menu = ParseGeneratedGrubMenu(cfg);
    EXPECT_TRUE(menu.ok()) << menu.status();
    if (!menu.ok()) return "";
    GrubEnv env(boot_dir_ / "grub" / "grubenv");
    auto vars = env.Load();
    EXPECT_TRUE(vars.ok()) << vars.status();
    auto decision = DecideGrubBoot(vars.ok() ? *vars : GrubEnvMap(), *menu);
    EXPECT_TRUE(decision.ok()) << decision.status();
    if (!decision.ok()) return "";
    std::vector<std::pair<std::string, std::string>> writes;
    for (const auto& [key, value] : decision->env_after) {
      if (vars->count(key) == 0 || vars->at(key) != value) writes.emplace_back(key, value);
    }
    if (!writes.empty()) {
      EXPECT_TRUE(env.Update(writes).ok());
    }
    // GRUB must find the kernel it was told to load.
    EXPECT_TRUE(stdfs::is_regular_file(boot_dir_ / stdfs::path(decision->kernel).relative_path()))
        << decision->kernel;
    auto root = KernelCmdlineValue(decision->kernel_cmdline, "root");
    EXPECT_TRUE(root.has_value());
    int number = root == StrCat("PARTUUID=", kPartuuidA)   ? part_a_
                 : root == StrCat("PARTUUID=", kPartuuidB) ? part_b_
                                                           : 0;
    EXPECT_NE(number, 0) << decision->kernel_cmdline;
    if (number == 0) return "";
    BootPartition(number, decision->kernel_cmdline);
    last_kernel_ = ReadText(boot_dir_ / stdfs::path(decision->kernel).relative_path());
    return decision->entry_id;
  }

  GrubBootOptions Options() {
    GrubBootOptions options;
    options.system.mountinfo = work_ / "mountinfo";
    options.system.cmdline = work_ / "cmdline";
    options.boot_dir = boot_dir_;
    options.active_root = root_dir_;
    options.mount_dir = mount_dir_;
    options.reboot_hook = [] { return absl::OkStatus(); };
    return options;
  }

  std::unique_ptr<GrubBootController> Controller(GrubBootOptions options) {
    auto controller = GrubBootController::Create(std::move(options));
    EXPECT_TRUE(controller.ok()) << controller.status();
    return controller.ok() ? std::move(*controller) : nullptr;
  }
  std::unique_ptr<GrubBootController> Controller() { return Controller(Options()); }

  BootState Confirm(GrubBootController& controller) {
    auto state = controller.ConfirmBoot();
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *state : BootState{};
  }

  // One whole update through the controller on the running machine, up to the switch.
  void Update(GrubBootController& controller, const std::string& version) {
    const std::string_view keep[] = {"/.ota-resources"};
    auto standby = controller.PrepareStandby(version, keep);
    ASSERT_TRUE(standby.ok()) << standby.status();
    WriteImage(*standby, version);
    absl::Status committed = controller.CommitSwitch();
    ASSERT_TRUE(committed.ok()) << committed;
  }

  SlotState StateOf(const std::string& slot) {
    auto state = SlotStateStore(boot_dir_ / "ota-slots" / StrCat("slot_", slot)).Load();
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *state : SlotState{};
  }
  GrubEnvMap Env() {
    auto vars = GrubEnv(boot_dir_ / "grub" / "grubenv").Load();
    EXPECT_TRUE(vars.ok());
    return vars.ok() ? *vars : GrubEnvMap();
  }
  // Reads a file of slot partition `number` through a temporary read-only mount.
  std::string ReadFromPartition(int number, const std::string& rel) {
    if (number == booted_partition_) return ReadText(root_dir_ / rel);
    auto mounted = MountedFileSystem::Mount(
        disk_->PartitionNode(number), disk_->work_dir() / "mnt" / "peek", ReadOnlyMountSpec());
    EXPECT_TRUE(mounted.ok()) << mounted.status();
    return ReadText(disk_->work_dir() / "mnt" / "peek" / rel);
  }

  std::unique_ptr<fs::TempDir> tmp_;
  stdfs::path work_;
  std::unique_ptr<testing::LoopDisk> disk_;
  stdfs::path boot_dir_, root_dir_, mount_dir_;
  std::optional<MountedFileSystem> boot_mount_, esp_mount_, root_mount_;
  // Partition numbers: BIOS layout /boot, A, B; UEFI layout ESP, /boot, A, B.
  bool uefi_ = false;
  int esp_part_ = 0, boot_part_ = 1, part_a_ = 2, part_b_ = 3;
  int booted_partition_ = 0;
  int reboots_ = 0;
  std::string last_kernel_;
};

TEST_F(GrubMachineTest, FirstStartTakesOverTheDistroConfigIdempotently) {
  auto controller = Controller();
  ASSERT_NE(controller, nullptr);
  EXPECT_EQ(controller->layout().active_slot, "a");
  EXPECT_EQ(controller->layout().standby.partuuid, kPartuuidB);
  EXPECT_EQ(controller->layout().active.fs_uuid, kUuidA);
  BootState state = Confirm(*controller);
  EXPECT_EQ(state.status, SlotStatus::kInitialized);
  EXPECT_EQ(state.active_slot, "a");
  EXPECT_EQ(ReadText(boot_dir_ / "grub" / "grub.cfg.otaclient-distro-backup"), kDistroCfg);
  EXPECT_TRUE(IsGeneratedGrubMenu(ReadText(boot_dir_ / "grub" / "grub.cfg")));
  EXPECT_EQ(ReadText(boot_dir_ / "ota-slots/slot_a/vmlinuz"), "kernel A-1");
  EXPECT_EQ(Env()["saved_entry"], "slot_a");
  const std::string menu = ReadText(boot_dir_ / "grub" / "grub.cfg");
  EXPECT_NE(menu.find(StrCat("root=PARTUUID=", kPartuuidB)), std::string::npos);
  EXPECT_NE(menu.find("console=ttyS0,115200"), std::string::npos);  // carried over
  EXPECT_NE(menu.find("panic=5"), std::string::npos);

  // Restart (no reboot) and a real reboot: same result, backup not overwritten by our menu.
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kInitialized);
  EXPECT_EQ(GrubReboot(), "slot_a");
  EXPECT_EQ(last_kernel_, "kernel A-1");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kInitialized);
  EXPECT_EQ(ReadText(boot_dir_ / "grub" / "grub.cfg.otaclient-distro-backup"), kDistroCfg);
  EXPECT_EQ(ReadText(boot_dir_ / "grub" / "grub.cfg"), menu);
}

// The same machine with the UEFI disk layout (ESP, /boot, A, B — told apart from BIOS by the
// ESP in front, as upstream does): the slots are found the same way (the two unmounted ext4
// partitions besides /boot), updates, confirmation and fallback work, and the ESP with GRUB's
// UEFI stub (which chains to /boot/grub/grub.cfg) is never written.
class GrubUefiMachineTest : public GrubMachineTest {
 protected:
  GrubUefiMachineTest() { uefi_ = true; }
  std::string EspTree() {
    return sys::RunProgramChecked(
               {"bash", "-c",
                "cd '" + (boot_dir_ / "efi").string() +
                    "' && find . -type f -print0 | sort -z | xargs -0 sha256sum"})
        .value_or("<unreadable>");
  }
};

TEST_F(GrubUefiMachineTest, UpdateConfirmFallbackAndBackOnTheUefiLayout) {
  const std::string esp_before = EspTree();
  ASSERT_NE(esp_before.find("grubx64.efi"), std::string::npos) << esp_before;
  {
    auto controller = Controller();
    ASSERT_NE(controller, nullptr);
    EXPECT_EQ(controller->layout().active.node, disk_->PartitionNode(part_a_));
    EXPECT_EQ(controller->layout().standby.node, disk_->PartitionNode(part_b_));
    ASSERT_TRUE(controller->layout().boot.has_value());
    EXPECT_EQ(controller->layout().boot->node, disk_->PartitionNode(boot_part_));
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(booted_partition_, part_b_);
  EXPECT_EQ(last_kernel_, "kernel 2.0");
  {
    BootState state = Confirm(*Controller());
    EXPECT_EQ(state.status, SlotStatus::kSuccess);
    EXPECT_EQ(state.active_slot, "b");
    EXPECT_EQ(Env()["saved_entry"], "slot_b");
  }
  // B → A, and A never comes up: back on B with FAILURE.
  {
    auto controller = Controller();
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "3.0"));
  }
  EXPECT_EQ(GrubReboot(), "slot_a");
  EXPECT_EQ(booted_partition_, part_a_);
  EXPECT_EQ(GrubReboot(), "slot_b");  // A hung: reset
  BootState state = Confirm(*Controller());
  EXPECT_EQ(state.status, SlotStatus::kFailure);
  EXPECT_EQ(state.active_slot, "b");
  EXPECT_EQ(state.version, "2.0");
  EXPECT_EQ(EspTree(), esp_before);
}

// The Python otaclient managed this machine: its grub.cfg, kernels and per-slot state in
// /boot/ota-slot_<x>/. It updated A→B and rebooted; GRUB booted B.
class GrubPythonTakeoverTest : public GrubMachineTest {
 protected:
  void WritePythonMachine(const std::string& a_status, const std::string& b_status) {
    const stdfs::path stage = work_ / "stage_b_py";
    WriteText(stage / "etc/version", "py-2");
    WriteText(stage / "etc/fstab", StrCat("UUID=", kUuidB, " / ext4 defaults 0 1\nUUID=", kUuidBoot,
                                          " /boot ext4 defaults 0 2\n"));
    ASSERT_TRUE(disk_->FormatExt4(part_b_, kUuidB, "rootfs_b", stage).ok());
    WriteText(boot_dir_ / "grub/grub.cfg",
              "# OTAClient managed configuration file, DO NOT EDIT!\n"
              "# Manual edits to this file will NOT be preserved across OTA!\n"
              "source /grub/ota-slot_a.cfg\nsource /grub/ota-slot_b.cfg\n");
    for (const auto& [slot, status, version] :
         {std::tuple<std::string, std::string, std::string>{"a", a_status, "py-1"},
          {"b", b_status, "py-2"}}) {
      const stdfs::path dir = boot_dir_ / StrCat("ota-slot_", slot);
      WriteText(dir / "status", status);
      WriteText(dir / "version", version);
      WriteText(dir / "slot_in_use", "ota-slot_b");
      WriteText(dir / "vmlinuz-5.15.0-py", StrCat("kernel ", version));
      WriteText(dir / "initrd.img-5.15.0-py", StrCat("initrd ", version));
    }
    WriteText(boot_dir_ / "ota-slot_b/version_detail",
              R"({"release_name": "rel-2", "release_id": "2026.07", "image_id": "img-2"})");
  }
};

TEST_F(GrubPythonTakeoverTest, ConfirmsThePythonUpdateThenUpdatesAndRollsBack) {
  ASSERT_NO_FATAL_FAILURE(WritePythonMachine("FAILURE", "updating"));
  ASSERT_NO_FATAL_FAILURE(
      BootPartition(part_b_, StrCat("BOOT_IMAGE=/ota-slot_b/vmlinuz-5.15.0-py root=UUID=", kUuidB,
                                    " ro console=ttyS0,115200")));
  {
    BootState state = Confirm(*Controller());
    EXPECT_EQ(state.active_slot, "b");
    EXPECT_EQ(state.status, SlotStatus::kSuccess);
    EXPECT_EQ(state.version, "py-2");
    EXPECT_EQ(state.release, (ReleaseInfo{"rel-2", "2026.07", "img-2"}));
    EXPECT_EQ(Env()["saved_entry"], "slot_b");
    EXPECT_EQ(ReadText(boot_dir_ / "ota-slots/slot_b/vmlinuz"), "kernel py-2");
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kSuccess);
  {
    auto controller = Controller();
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "3.0"));
  }
  EXPECT_EQ(GrubReboot(), "slot_a");
  {
    auto controller = Controller();
    BootState state = Confirm(*controller);
    EXPECT_EQ(state.status, SlotStatus::kSuccess);
    EXPECT_EQ(state.version, "3.0");
    ASSERT_TRUE(controller->CheckRollbackPossible().ok()) << controller->CheckRollbackPossible();
    ASSERT_TRUE(controller->CommitRollback().ok());
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(last_kernel_, "kernel py-2");
  BootState state = Confirm(*Controller());
  EXPECT_EQ(state.status, SlotStatus::kSuccess);
  EXPECT_EQ(state.version, "py-2");
}

TEST_F(GrubPythonTakeoverTest, ReportsThePythonUpdateThatFellBack) {
  // B never came up: GRUB fell back to A, which Python had marked FAILURE before the switch.
  ASSERT_NO_FATAL_FAILURE(WritePythonMachine("FAILURE", "UPDATING"));
  ASSERT_NO_FATAL_FAILURE(
      BootPartition(part_a_, StrCat("BOOT_IMAGE=/ota-slot_a/vmlinuz-5.15.0-py root=UUID=", kUuidA,
                                    " ro console=ttyS0,115200")));
  auto controller = Controller();
  BootState state = Confirm(*controller);
  EXPECT_EQ(state.active_slot, "a");
  EXPECT_EQ(state.status, SlotStatus::kFailure);
  EXPECT_EQ(state.version, "py-1");
  EXPECT_NE(state.failure_reason.find("slot b (version py-2) did not boot"), std::string::npos)
      << state.failure_reason;
  // The next update goes through.
  ASSERT_NO_FATAL_FAILURE(Update(*controller, "3.0"));
  controller.reset();
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kSuccess);
}

TEST_F(GrubMachineTest, UpdateAToBThenConfirmThenBToA) {
  {
    auto controller = Controller();
    ASSERT_NE(controller, nullptr);
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
    EXPECT_EQ(Env()["next_entry"], "slot_b");
    EXPECT_EQ(Env()["saved_entry"], "slot_a");
    EXPECT_EQ(StateOf("b").status, SlotStatus::kUpdating);
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(last_kernel_, "kernel 2.0");
  EXPECT_EQ(Env()["next_entry"], "");  // one-shot consumed by GRUB
  {
    auto controller = Controller();
    ASSERT_NE(controller, nullptr);
    EXPECT_EQ(controller->layout().active_slot, "b");
    BootState state = Confirm(*controller);
    EXPECT_EQ(state.status, SlotStatus::kSuccess);
    EXPECT_EQ(state.version, "2.0");
    EXPECT_EQ(state.active_slot, "b");
    EXPECT_EQ(Env()["saved_entry"], "slot_b");
    // fstab: root is this slot's own UUID, /boot the shared partition, site mounts kept.
    const std::string fstab = ReadText(root_dir_ / "etc/fstab");
    EXPECT_NE(fstab.find(StrCat("UUID=", kUuidB, "\t/\text4")), std::string::npos) << fstab;
    EXPECT_NE(fstab.find(StrCat("UUID=", kUuidBoot, " /boot")), std::string::npos) << fstab;
    EXPECT_NE(fstab.find("/dev/sdz1 /data"), std::string::npos) << fstab;
    EXPECT_EQ(fstab.find("image-root"), std::string::npos) << fstab;
    EXPECT_EQ(ReadText(boot_dir_ / "ota-slots/slot_b/initrd.img"), "initrd 2.0");
  }
  // Stays on B across reboots.
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kSuccess);
  // Later: B → A.
  {
    auto controller = Controller();
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "3.0"));
  }
  EXPECT_EQ(GrubReboot(), "slot_a");
  EXPECT_EQ(last_kernel_, "kernel 3.0");
  BootState state = Confirm(*Controller());
  EXPECT_EQ(state.status, SlotStatus::kSuccess);
  EXPECT_EQ(state.version, "3.0");
  EXPECT_EQ(state.active_slot, "a");
  EXPECT_EQ(ReadText(root_dir_ / "slot-a-original"), std::string("<missing ") +
                                                         (root_dir_ / "slot-a-original").string() +
                                                         ">");  // A was rewritten
  EXPECT_EQ(ReadText(root_dir_ / "etc/version"), "3.0");
  EXPECT_EQ(StateOf("b").status, SlotStatus::kSuccess);
  EXPECT_EQ(StateOf("b").version, "2.0");
}

TEST_F(GrubMachineTest, NewSlotThatNeverConfirmsFallsBackToTheOldOne) {
  {
    auto controller = Controller();
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  // B's kernel panics or hangs: otaclient never runs, the machine resets.
  EXPECT_EQ(GrubReboot(), "slot_a");
  EXPECT_EQ(last_kernel_, "kernel A-1");
  BootState state = Confirm(*Controller());
  EXPECT_EQ(state.status, SlotStatus::kFailure);
  EXPECT_EQ(state.active_slot, "a");
  EXPECT_EQ(state.failure_reason, "new slot b (version 2.0) did not boot; running slot a");
  EXPECT_EQ(StateOf("b").status, SlotStatus::kFailure);
  EXPECT_EQ(ReadText(root_dir_ / "slot-a-original"), "untouched");
  EXPECT_EQ(Env()["saved_entry"], "slot_a");
  // Stays on A; the next update works.
  EXPECT_EQ(GrubReboot(), "slot_a");
  {
    auto controller = Controller();
    EXPECT_EQ(Confirm(*controller).status, SlotStatus::kFailure);  // still reported
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.1"));
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kSuccess);
}

// Health-gated commit (BootController::DeferConfirmation): the new slot is made the default only
// by CompleteConfirmation; RejectNewSlot sends the next boot back to the old slot, which reports
// the recorded reason.
TEST_F(GrubMachineTest, HealthGatedConfirmationAndRejection) {
  {
    auto controller = Controller();
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  {
    auto controller = Controller();
    controller->DeferConfirmation();
    BootState state = Confirm(*controller);
    EXPECT_TRUE(state.confirmation_pending);
    EXPECT_EQ(state.status, SlotStatus::kUpdating);
    EXPECT_EQ(state.active_slot, "b");
    // Nothing confirmed: GRUB's saved default is still the old slot.
    EXPECT_EQ(Env()["saved_entry"], "slot_a");
    EXPECT_EQ(StateOf("b").status, SlotStatus::kUpdating);
    ASSERT_TRUE(controller->RejectNewSlot("command 'check' exit 1: not ready").ok());
    EXPECT_EQ(StateOf("b").status, SlotStatus::kFailure);
    EXPECT_EQ(Env()["saved_entry"], "slot_a");
    EXPECT_EQ(Env()["next_entry"], "");
    // Nothing pending any more.
    EXPECT_EQ(controller->CompleteConfirmation().status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(GrubReboot(), "slot_a");
  EXPECT_EQ(last_kernel_, "kernel A-1");
  {
    auto controller = Controller();
    controller->DeferConfirmation();  // the old slot has nothing pending: reported at once
    BootState state = Confirm(*controller);
    EXPECT_FALSE(state.confirmation_pending);
    EXPECT_EQ(state.status, SlotStatus::kFailure);
    EXPECT_EQ(state.active_slot, "a");
    EXPECT_EQ(state.failure_reason, "health check failed: command 'check' exit 1: not ready");
    EXPECT_EQ(ReadText(root_dir_ / "slot-a-original"), "untouched");
    // The next update works, and this time the check passes.
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.1"));
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  {
    auto controller = Controller();
    controller->DeferConfirmation();
    EXPECT_TRUE(Confirm(*controller).confirmation_pending);
    EXPECT_EQ(Env()["saved_entry"], "slot_a");
    auto confirmed = controller->CompleteConfirmation();
    ASSERT_TRUE(confirmed.ok()) << confirmed.status();
    EXPECT_EQ(confirmed->status, SlotStatus::kSuccess);
    EXPECT_EQ(confirmed->version, "2.1");
    EXPECT_EQ(Env()["saved_entry"], "slot_b");
    EXPECT_EQ(StateOf("b").status, SlotStatus::kSuccess);
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kSuccess);
}

TEST_F(GrubMachineTest, RollbackAndFailedRollback) {
  {
    auto controller = Controller();
    Confirm(*controller);
    // Nothing to roll back to on a fresh machine.
    EXPECT_EQ(controller->CheckRollbackPossible().code(), absl::StatusCode::kFailedPrecondition);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  {
    auto controller = Controller();
    EXPECT_EQ(Confirm(*controller).status, SlotStatus::kSuccess);
    ASSERT_TRUE(controller->CheckRollbackPossible().ok());
    ASSERT_TRUE(controller->CommitRollback().ok());
    EXPECT_EQ(StateOf("a").status, SlotStatus::kRollbacking);
  }
  EXPECT_EQ(GrubReboot(), "slot_a");
  EXPECT_EQ(last_kernel_, "kernel A-1");
  BootState state = Confirm(*Controller());
  EXPECT_EQ(state.status, SlotStatus::kSuccess);
  EXPECT_EQ(state.active_slot, "a");
  EXPECT_EQ(ReadText(root_dir_ / "slot-a-original"), "untouched");
  EXPECT_EQ(Env()["saved_entry"], "slot_a");
  // Roll back again to B, but it never confirms: back on A with ROLLBACK_FAILURE.
  {
    auto controller = Controller();
    Confirm(*controller);
    ASSERT_TRUE(controller->CommitRollback().ok());
  }
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(GrubReboot(), "slot_a");
  state = Confirm(*Controller());
  EXPECT_EQ(state.status, SlotStatus::kRollbackFailure);
  EXPECT_NE(state.failure_reason.find("did not boot"), std::string::npos);
  // B is no longer a good slot to roll back to.
  auto controller = Controller();
  Confirm(*controller);
  EXPECT_EQ(controller->CheckRollbackPossible().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(GrubMachineTest, FailedUpdateLeavesStandbyUnbootable) {
  auto controller = Controller();
  Confirm(*controller);
  const std::string_view keep[] = {"/.ota-resources"};
  auto standby = controller->PrepareStandby("2.0", keep);
  ASSERT_TRUE(standby.ok()) << standby.status();
  WriteText(*standby / ".ota-resources" / "blob", "resume me");
  ASSERT_TRUE(controller->OnUpdateFailed(SlotStatus::kFailure).ok());
  EXPECT_EQ(StateOf("b").status, SlotStatus::kFailure);
  EXPECT_EQ(Env().count("next_entry") ? Env()["next_entry"] : "", "");
  EXPECT_FALSE(stdfs::exists(boot_dir_ / "ota-slots/slot_b/vmlinuz"));
  EXPECT_EQ(GrubReboot(), "slot_a");
  // The retry keeps the resources (resume) and cleans the rest.
  auto again = Controller();
  EXPECT_EQ(Confirm(*again).status, SlotStatus::kFailure);
  standby = again->PrepareStandby("2.0", keep);
  ASSERT_TRUE(standby.ok()) << standby.status();
  EXPECT_EQ(ReadText(*standby / ".ota-resources" / "blob"), "resume me");
  ASSERT_TRUE(again->OnUpdateFailed(SlotStatus::kAborted).ok());
}

// Regression (issue 11 §2e): PrepareStandby marked the controller "prepared" before mounting
// the standby, so after a mount error (nothing for the engine to mark failed: PrepareStandby
// failed) every Rollback answered "an update is in progress" until otaclient restarted, and the
// standby stayed UPDATING.
TEST_F(GrubMachineTest, FailedStandbyMountLeavesNoUpdateInProgress) {
  auto controller = Controller();
  Confirm(*controller);
  // The standby cannot be mounted: its mount point is taken by a file.
  WriteText(mount_dir_ / "standby_slot", "in the way");
  const std::string_view keep[] = {"/.ota-resources"};
  auto standby = controller->PrepareStandby("2.0", keep);
  ASSERT_FALSE(standby.ok());
  EXPECT_NE(standby.status().message().find("standby_slot"), absl::string_view::npos)
      << standby.status();
  // No update is in progress: a rollback is judged on the slots (b never held a good image).
  absl::Status rollback = controller->CheckRollbackPossible();
  EXPECT_EQ(rollback.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rollback.message().find("in progress"), absl::string_view::npos) << rollback;
  // The standby is left unbootable and marked failed, with the reason.
  const SlotState b = StateOf("b");
  EXPECT_EQ(b.status, SlotStatus::kFailure);
  EXPECT_NE(b.failure_reason.find("standby_slot"), std::string::npos) << b.failure_reason;
  EXPECT_EQ(StateOf("a").slot_in_use, "a");
  EXPECT_EQ(Env().count("next_entry") ? Env()["next_entry"] : "", "");
  // The same process updates fine once the way is clear, and B becomes a rollback source.
  stdfs::remove(mount_dir_ / "standby_slot");
  ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
  controller.reset();
  EXPECT_EQ(GrubReboot(), "slot_b");
  auto on_b = Controller();
  EXPECT_EQ(Confirm(*on_b).status, SlotStatus::kSuccess);
  EXPECT_TRUE(on_b->CheckRollbackPossible().ok()) << on_b->CheckRollbackPossible();
}

// Regression (issue 11 §2c): an unreadable mountinfo read as "nothing is mounted", so the
// "never format a mounted device" check and UnmountAllUnder passed silently. They fail closed.
TEST_F(GrubMachineTest, UnreadableMountinfoRefusesFormattingAndUnmounting) {
  const stdfs::path missing = work_ / "no-such-mountinfo";
  struct stat st;
  ASSERT_EQ(::stat(disk_->PartitionNode(3).c_str(), &st), 0);
  auto device = DescribeBlockDevice(SystemPaths{}, major(st.st_rdev), minor(st.st_rdev));
  ASSERT_TRUE(device.ok()) << device.status();
  WriteText(work_ / "stage_b" / "marker", "keep me");
  ASSERT_TRUE(disk_->FormatExt4(3, kUuidB, "rootfs_b", work_ / "stage_b").ok());

  absl::Status formatted = FormatExt4(*device, std::nullopt, "x", missing);
  EXPECT_FALSE(formatted.ok());
  EXPECT_NE(formatted.message().find(missing.string()), absl::string_view::npos) << formatted;
  StandbyPrepareOptions prepare;
  prepare.mount_dir = work_ / "standby";
  prepare.force_format = true;
  prepare.mountinfo = missing;
  const std::string_view keep[] = {"/.ota-resources"};
  auto prepared = PrepareStandbyFileSystem(*device, keep, prepare);
  EXPECT_FALSE(prepared.ok());
  absl::Status unmounted = UnmountAllUnder(work_, missing);
  EXPECT_FALSE(unmounted.ok());
  EXPECT_NE(unmounted.message().find(missing.string()), absl::string_view::npos) << unmounted;
  // The device was never formatted.
  EXPECT_EQ(ReadFromPartition(3, "marker"), "keep me");
}

// Issue 18: PrepareStandbyInPlace keeps the standby's contents (mounted read-write, nothing
// removed) only when its ext4 is `e2fsck -n` clean on the unmounted device; a damaged one is
// reformatted (same UUID and label; e2fsck -n clean afterwards), a partition without ext4 is
// formatted like PrepareStandby (a new UUID and the slot's label, as before), and the reason says
// why. Marking it unbootable and
// UPDATING happens either way.
TEST_F(GrubMachineTest, InPlacePreparationKeepsOnlyACleanExt4) {
  WriteText(work_ / "stage_b" / "marker", "earlier image");
  ASSERT_TRUE(disk_->FormatExt4(3, kUuidB, "rootfs_b", work_ / "stage_b").ok());
  auto controller = Controller();
  Confirm(*controller);
  const std::string_view keep[] = {"/.ota-resources"};

  auto kept = controller->PrepareStandbyInPlace("2.0", keep);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->contents_kept) << kept->reason;
  EXPECT_EQ(ReadText(kept->root / "marker"), "earlier image");
  EXPECT_EQ(StateOf("b").status, SlotStatus::kUpdating);
  EXPECT_EQ(Env()["saved_entry"], "slot_a");
  ASSERT_TRUE(controller->OnUpdateFailed(SlotStatus::kFailure).ok());

  // Damage the (unmounted) file system: an inode no directory refers to.
  const std::string node = disk_->PartitionNode(3);
  for (const char* request : {"write /etc/hostname orphan", "unlink /orphan", "ssv state 0"}) {
    ASSERT_TRUE(sys::RunProgram({"debugfs", "-w", "-R", request, node}).ok()) << request;
  }
  auto damaged = controller->PrepareStandbyInPlace("2.0", keep);
  ASSERT_TRUE(damaged.ok()) << damaged.status();
  EXPECT_FALSE(damaged->contents_kept);
  EXPECT_NE(damaged->reason.find("e2fsck -n"), std::string::npos) << damaged->reason;
  EXPECT_NE(damaged->reason.find("(reformatted)"), std::string::npos) << damaged->reason;
  EXPECT_FALSE(stdfs::exists(damaged->root / "marker"));
  ASSERT_TRUE(controller->OnUpdateFailed(SlotStatus::kFailure).ok());
  auto repaired = sys::RunProgram({"e2fsck", "-n", node});
  ASSERT_TRUE(repaired.ok());
  EXPECT_EQ(repaired->exit_code, 0) << repaired->out;  // not the damaged file system, cleaned
  auto same_identity = ReadExt4Identity(node);
  ASSERT_TRUE(same_identity.ok() && same_identity->has_value());
  EXPECT_EQ((*same_identity)->uuid, kUuidB);

  // No ext4 at all: formatted, with the slot's label.
  ASSERT_TRUE(sys::RunProgram({"wipefs", "-a", "-q", node}).ok());
  auto blank = controller->PrepareStandbyInPlace("2.0", keep);
  ASSERT_TRUE(blank.ok()) << blank.status();
  EXPECT_FALSE(blank->contents_kept);
  EXPECT_NE(blank->reason.find("no ext4"), std::string::npos) << blank->reason;
  ASSERT_TRUE(controller->OnUpdateFailed(SlotStatus::kFailure).ok());
  auto identity = ReadExt4Identity(disk_->PartitionNode(3));
  ASSERT_TRUE(identity.ok() && identity->has_value());
  EXPECT_EQ((*identity)->label, "rootfs_b");
}

TEST_F(GrubMachineTest, ForcedFormatKeepsUuidAndLabel) {
  GrubBootOptions options = Options();
  options.force_format = true;
  auto controller = Controller(options);
  Confirm(*controller);
  ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
  auto identity = ReadExt4Identity(disk_->PartitionNode(3));
  ASSERT_TRUE(identity.ok() && identity->has_value());
  EXPECT_EQ((*identity)->uuid, kUuidB);
  EXPECT_EQ((*identity)->label, "rootfs_b");
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kSuccess);
}

TEST_F(GrubMachineTest, RestartAfterSwitchBeforeRebootIsNotAFailure) {
  {
    auto controller = Controller();
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
  }
  // otaclient restarted (crash, service restart) before the reboot happened.
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kInitialized);
  EXPECT_EQ(StateOf("b").status, SlotStatus::kUpdating);
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kSuccess);
}

TEST_F(GrubMachineTest, KernelSymlinksResolveInsideTheSlotAndAMissingKernelFailsTheSwitch) {
  auto controller = Controller();
  Confirm(*controller);
  const std::string_view keep[] = {"/.ota-resources"};
  auto standby = controller->PrepareStandby("2.0", keep);
  ASSERT_TRUE(standby.ok()) << standby.status();
  WriteImage(*standby, "2.0");
  // Absolute symlinks are relative to the slot's root, never the running system's.
  stdfs::remove(*standby / "boot" / "vmlinuz");
  stdfs::create_symlink("/boot/vmlinuz-2.0", *standby / "boot" / "vmlinuz");
  stdfs::create_symlink("../../../../../../../../etc/hostname",
                        *standby / "boot" / "initrd.img-2.0.tmp");
  stdfs::rename(*standby / "boot" / "initrd.img-2.0.tmp", *standby / "boot" / "initrd.img-2.0");
  WriteText(*standby / "etc" / "hostname", "slot-b-hostname");
  absl::Status committed = controller->CommitSwitch();
  ASSERT_TRUE(committed.ok()) << committed;
  EXPECT_EQ(ReadText(boot_dir_ / "ota-slots/slot_b/vmlinuz"), "kernel 2.0");
  EXPECT_EQ(ReadText(boot_dir_ / "ota-slots/slot_b/initrd.img"), "slot-b-hostname");
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kSuccess);

  // An image without any kernel: the switch is refused and B stays unbootable.
  auto again = Controller();
  Confirm(*again);
  standby = again->PrepareStandby("3.0", keep);
  ASSERT_TRUE(standby.ok()) << standby.status();
  WriteText(*standby / "etc" / "version", "3.0");
  absl::Status refused = again->CommitSwitch();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find("no kernel"), absl::string_view::npos) << refused;
  ASSERT_TRUE(again->OnUpdateFailed(SlotStatus::kFailure).ok());
  EXPECT_EQ(GrubReboot(), "slot_b");
  EXPECT_EQ(Confirm(*Controller()).status, SlotStatus::kFailure);
  EXPECT_FALSE(stdfs::exists(boot_dir_ / "ota-slots/slot_a/vmlinuz"));
}

TEST_F(GrubMachineTest, MountedSiblingIsNoStandbySoTheMachineIsNotAB) {
  // Like a PC with /boot, / and /home on one disk: /home must never be taken for slot B.
  struct stat b_st;
  ASSERT_EQ(::stat(disk_->PartitionNode(3).c_str(), &b_st), 0);
  std::string mountinfo = ReadText(work_ / "mountinfo");
  mountinfo += StrCat("23 21 ", major(b_st.st_rdev), ":", minor(b_st.st_rdev),
                      " / /home rw,relatime - ext4 ", disk_->PartitionNode(3), " rw\n");
  WriteText(work_ / "mountinfo", mountinfo);
  auto controller = GrubBootController::Create(Options());
  ASSERT_FALSE(controller.ok());
  EXPECT_EQ(controller.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(controller.status().message().find("not an A/B layout"), absl::string_view::npos)
      << controller.status();
  // Nothing was touched.
  EXPECT_EQ(ReadText(boot_dir_ / "grub" / "grub.cfg"), kDistroCfg);
  EXPECT_FALSE(stdfs::exists(boot_dir_ / "ota-slots"));
  // Named explicitly (ecu_info boot_slot_a/b) the layout is the operator's word, but the
  // mounted partition is still never written.
  GrubBootOptions options = Options();
  options.slot_override = {StrCat("PARTUUID=", kPartuuidA), "LABEL=rootfs_b"};
  auto named = GrubBootController::Create(options);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ((*named)->layout().standby.partuuid, kPartuuidB);
  EXPECT_EQ((*named)->layout().active_slot, "a");
  ASSERT_TRUE((*named)->ConfirmBoot().ok());
  // The real mountinfo does not show the fake /home: mount B for real to be refused.
  auto home = MountedFileSystem::Mount(disk_->PartitionNode(3), disk_->work_dir() / "mnt" / "home",
                                       ReadOnlyMountSpec());
  ASSERT_TRUE(home.ok()) << home.status();
  const std::string_view keep[] = {"/.ota-resources"};
  auto standby = (*named)->PrepareStandby("2.0", keep);
  EXPECT_EQ(standby.status().code(), absl::StatusCode::kFailedPrecondition) << standby.status();
  EXPECT_NE(standby.status().message().find("is mounted at"), absl::string_view::npos);
}

// otaclient killed with SIGKILL at each step of the first start, an update, or the confirmation.
class GrubCrashTest : public GrubMachineTest, public ::testing::WithParamInterface<std::string> {
 protected:
  // Runs `body` in a child process whose controller SIGKILLs itself at step `kill_at`.
  // Returns true when the child was killed there.
  bool RunKilledAt(const std::string& kill_at, bool update) {
    pid_t pid = ::fork();
    if (pid == 0) {
      GrubBootOptions options = Options();
      options.step_hook = [kill_at](std::string_view step) {
        if (step == kill_at) ::raise(SIGKILL);
      };
      auto controller = GrubBootController::Create(options);
      if (!controller.ok() || !(*controller)->ConfirmBoot().ok()) ::_exit(3);
      if (update) {
        const std::string_view keep[] = {"/.ota-resources"};
        auto standby = (*controller)->PrepareStandby("2.0", keep);
        if (!standby.ok()) ::_exit(4);
        WriteImage(*standby, "2.0");
        if (!(*controller)->CommitSwitch().ok()) ::_exit(5);
      }
      ::_exit(0);
    }
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }
};

TEST_P(GrubCrashTest, KilledAtStepNeverBootsAHalfWrittenSlotAndRecovers) {
  const std::string step = GetParam();
  const bool during_init = step.rfind("init:", 0) == 0;
  const bool during_confirm = step.rfind("confirm:", 0) == 0;
  if (during_confirm) {
    // Get to the first boot of B, then kill the confirmation there.
    auto controller = Controller();
    Confirm(*controller);
    ASSERT_NO_FATAL_FAILURE(Update(*controller, "2.0"));
    controller.reset();
    ASSERT_EQ(GrubReboot(), "slot_b");
    ASSERT_TRUE(RunKilledAt(step, /*update=*/false)) << "child not killed at " << step;
  } else {
    ASSERT_TRUE(RunKilledAt(step, /*update=*/!during_init)) << "child not killed at " << step;
  }
  // Power cycle: wherever GRUB goes, that slot is complete.
  const std::string booted = GrubReboot();
  ASSERT_FALSE(booted.empty());
  // The distro menu (first start killed before ours was written) boots A like ours would.
  if (booted == "distro") {
    EXPECT_TRUE(during_init) << step;
  }
  if (booted == "slot_b") {
    EXPECT_EQ(ReadText(root_dir_ / "image-complete"), "2.0") << "half-written slot B booted";
    EXPECT_EQ(last_kernel_, "kernel 2.0");
  } else {
    EXPECT_EQ(ReadText(root_dir_ / "slot-a-original"), "untouched");
    EXPECT_EQ(last_kernel_, "kernel A-1");
  }
  // otaclient comes up and reports a consistent state...
  auto controller = Controller();
  ASSERT_NE(controller, nullptr);
  BootState state = Confirm(*controller);
  if (booted == "slot_b") {
    EXPECT_EQ(state.status, SlotStatus::kSuccess);
    EXPECT_EQ(state.version, "2.0");
  } else if (during_init || step == "prepare:begin" || step == "prepare:unbootable") {
    // Killed before the update was recorded: nothing to report but the running slot.
    EXPECT_EQ(state.status, SlotStatus::kInitialized) << state.failure_reason;
  } else {
    EXPECT_EQ(state.status, SlotStatus::kFailure) << state.failure_reason;
    // Killed while B was prepared or written: B was never tried. Killed while B confirmed: B
    // was tried and did not make it.
    EXPECT_EQ(state.failure_reason,
              during_confirm
                  ? "new slot b (version 2.0) did not boot; running slot a"
                  : "update of slot b (version 2.0) was interrupted before the boot switch "
                    "(otaclient or the machine restarted); running slot a");
  }
  // ...and the next update from wherever we are succeeds.
  const std::string target = booted == "slot_b" ? "slot_a" : "slot_b";
  ASSERT_NO_FATAL_FAILURE(Update(*controller, "9.9"));
  controller.reset();
  EXPECT_EQ(GrubReboot(), target);
  EXPECT_EQ(last_kernel_, "kernel 9.9");
  state = Confirm(*Controller());
  EXPECT_EQ(state.status, SlotStatus::kSuccess);
  EXPECT_EQ(state.version, "9.9");
}

INSTANTIATE_TEST_SUITE_P(Steps, GrubCrashTest,
                         ::testing::Values("init:begin", "init:kernel", "init:backup", "init:env",
                                           "init:menu", "prepare:begin", "prepare:unbootable",
                                           "prepare:status", "prepare:mounted", "commit:begin",
                                           "commit:fstab", "commit:kernel", "commit:menu",
                                           "commit:unmounted", "commit:armed", "confirm:begin",
                                           "confirm:saved-entry", "confirm:status"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == ':' || c == '-') c = '_';
                           }
                           return name;
                         });

// --- The whole engine writing the standby in place on a real ext4 (issue 18) ----------------
//
// The engine (real session, image built and signed by the image writer, served by a real nginx,
// fetched by the real CurlFetcher) over the GRUB controller of the loop-device machine. Update 1
// rebuilds slot B (it holds no record); B never boots (the machine resets back to A); update 2,
// in auto mode, writes B in place: afterwards B's tree is exactly the image, files equal in both
// images kept their inodes, changed ones did not, removed ones are gone, e2fsck -n is clean and
// the slot record complete. Then B's file system is flagged as having errors: the next update
// rebuilds it and says why.

// Collects the engine's decisions ("standby write mode decided mode=… reason=…").
class DecisionSink final : public log::Sink {
 public:
  void Consume(const log::Record& record) override {
    if (record.type != log::RecordType::kLog) return;
    if (record.text.find("standby write mode decided") == std::string_view::npos) return;
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(record.text);
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// Waits for the session's phases (EngineOptions::test_phase_hook): no sleeps.
class PhaseLog {
 public:
  void OnPhase(std::string_view phase) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.emplace_back(phase);
    cv_.notify_all();
  }
  // Until the session ends (Committed or Failed); false when it failed (or never ended).
  bool WaitCommitted() {
    std::unique_lock<std::mutex> lock(mu_);
    const bool ended = cv_.wait_for(lock, std::chrono::seconds(120), [&] {
      return std::count(seen_.begin(), seen_.end(), "Committed") +
                 std::count(seen_.begin(), seen_.end(), "Failed") >
             0;
    });
    return ended && std::count(seen_.begin(), seen_.end(), "Committed") > 0;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> seen_;
};

class GrubInPlaceEngineTest : public GrubMachineTest {
 protected:
  void SetUp() override {
    GrubMachineTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto pki = ota::testing::CachedTestPki("grub-in-place");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::move(*pki);
    // v2: every kind of entry; v3: v2 with every kind of change. No boot/vmlinuz symlink: the
    // image writer leaves it out (upstream rule); the GRUB controller takes the boot/vmlinuz-*.
    v2_ = work_ / "tree-v2";
    v3_ = work_ / "tree-v3";
    Sh(StrCat(
        "mkdir -p ", v2_.string(), " && cd ", v2_.string(),
        " && mkdir -p boot etc usr/bin usr/lib usr/share/old-dir/sub home/user"
        " && printf 'kernel 2\\n' > boot/vmlinuz-2 && printf 'initrd 2\\n' > boot/initrd.img-2"
        " && printf '# image fstab\\nUUID=image-root / ext4 defaults 0 1\\n' > etc/fstab"
        " && printf 'same in both\\n' > usr/share/same.txt"
        " && head -c 70000 /dev/urandom > usr/lib/same-big.bin"
        " && printf '#!/bin/sh\\necho tool\\n' > usr/bin/tool && chmod 755 usr/bin/tool"
        " && printf 'suid\\n' > usr/bin/suid && chmod 4755 usr/bin/suid"
        " && printf 'owned\\n' > home/user/owned && chown -R 1000:1000 home/user"
        " && printf 'mode changes\\n' > usr/share/mode.txt && chmod 644 usr/share/mode.txt"
        " && printf 'owner changes\\n' > usr/share/owner.txt"
        " && printf 'version 2\\n' > usr/share/changed.txt"
        " && printf 'gone in 3\\n' > usr/share/removed.txt"
        " && printf 'old tree\\n' > usr/share/old-dir/sub/file"
        " && printf 'linked\\n' > usr/lib/hl-a && ln usr/lib/hl-a usr/lib/hl-b"
        " && printf 'group grows\\n' > usr/lib/grow-a && ln usr/lib/grow-a usr/lib/grow-b"
        " && ln -s ../share/same.txt usr/bin/same-link"
        " && ln -s tool usr/bin/retarget"
        " && printf 'becomes a dir\\n' > usr/share/type-swap"));
    Sh(StrCat("cp -a ", v2_.string(), " ", v3_.string(), " && cd ", v3_.string(),
              " && printf 'kernel 3\\n' > boot/vmlinuz-3"
              " && rm boot/vmlinuz-2"
              " && printf 'version 3, longer\\n' > usr/share/changed.txt"
              " && rm usr/share/removed.txt && rm -r usr/share/old-dir"
              " && chmod 600 usr/share/mode.txt && chown 1000:1000 usr/share/owner.txt"
              " && ln usr/lib/grow-a usr/lib/grow-c"
              " && ln -sfn suid usr/bin/retarget"
              " && rm usr/share/type-swap && mkdir usr/share/type-swap"
              " && printf 'new in 3\\n' > usr/share/type-swap/new.txt"));
    BuildImage(v2_, work_ / "www");
    BuildImage(v3_, work_ / "www/v3");
    auto nginx = ota::testing::NginxServer::Start(work_ / "www");
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = std::move(*nginx);
  }

  void TearDown() override {
    nginx_.reset();
    GrubMachineTest::TearDown();
  }

  void Sh(const std::string& script) {
    auto run = sys::RunProgram({"bash", "-c", StrCat("set -euo pipefail; ", script)});
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->exit_code, 0) << script << "\n" << run->err;
  }

  void BuildImage(const stdfs::path& tree, const stdfs::path& out) {
    image::BuildOptions options;
    options.rootfs = tree;
    options.out_dir = out;
    options.key_pem = pki_.path("sign.key");
    options.cert_pem = pki_.path("sign.pem");
    auto built = image::BuildImage(options);
    ASSERT_TRUE(built.ok()) << built.status();
  }

  // One update through the engine on the running machine (slot A), up to the boot switch.
  // Returns the engine's status afterwards; `decision` gets the logged decision.
  update::StatusSnapshot UpdateTo(const std::string& version, const std::string& url_path,
                                  std::string& decision) {
    auto controller = Controller();
    EXPECT_NE(controller, nullptr);
    if (controller == nullptr) return {};
    BootState state = Confirm(*controller);
    PhaseLog phases;
    update::EngineOptions options;
    options.certs_dir = pki_.certs_dir();
    options.fetcher.backoff_initial_ms = 1;
    options.fetcher.backoff_max_ms = 2;
    options.fetcher.max_attempts = 2;
    options.test_phase_hook = [&phases](std::string_view phase) { phases.OnPhase(phase); };
    DecisionSink sink;
    log::ScopedSink installed(&sink);
    EXPECT_TRUE(installed.installed());
    auto engine = update::CreateUpdateEngine(
        std::move(options), std::move(controller), state,
        [](const http::FetcherConfig& config) { return http::CreateCurlFetcher(config); });
    update::UpdateRequestParams request;
    request.version = version;
    request.url = nginx_->HttpUrl(url_path);
    request.cookies_json = "{}";
    request.request_id = "req-" + version;
    EXPECT_TRUE(engine->StartUpdate(request).ok());
    const bool committed = phases.WaitCommitted();
    update::StatusSnapshot status = engine->Snapshot();
    EXPECT_TRUE(committed) << status.failure_reason;
    engine.reset();  // joins the session
    const std::vector<std::string> lines = sink.lines();
    EXPECT_EQ(lines.size(), 1u);
    decision = lines.empty() ? "" : lines.back();
    return status;
  }

  // B was switched to but never came up: the machine resets back to A.
  void ResetBackToA() {
    ASSERT_EQ(GrubReboot(), "slot_b");
    ASSERT_EQ(GrubReboot(), "slot_a");
  }

  // Runs `check` with slot B mounted read-only at `Peek()`, unmounted afterwards.
  stdfs::path Peek() { return disk_->work_dir() / "mnt" / "peek"; }
  void WithBMounted(const std::function<void()>& check) {
    auto mounted =
        MountedFileSystem::Mount(disk_->PartitionNode(part_b_), Peek(), ReadOnlyMountSpec());
    ASSERT_TRUE(mounted.ok()) << mounted.status();
    check();
    ASSERT_TRUE(mounted->SyncAndUnmount().ok());
  }

  // test/lib/tree-manifest.sh: paths, types, modes, owners, contents, link targets and hard-link
  // groups. /etc/fstab (merged by the backend), /.ota-meta and /lost+found are not the image's.
  std::string Manifest(const stdfs::path& root) {
    const stdfs::path out = work_ / "manifest.txt";
    Sh(StrCat("bash ", OTA_SOURCE_DIR, "/test/lib/tree-manifest.sh ", root.string(),
              " .ota-meta lost+found etc/fstab > ", out.string()));
    return ReadText(out);
  }

  std::map<std::string, ino_t> Inodes(const stdfs::path& root,
                                      const std::vector<std::string>& paths) {
    std::map<std::string, ino_t> inodes;
    for (const std::string& path : paths) {
      struct stat st {};
      EXPECT_EQ(::lstat((root / path).c_str(), &st), 0) << path;
      inodes[path] = st.st_ino;
    }
    return inodes;
  }

  // e2fsck -n on the unmounted slot B: exit 0 = clean.
  void ExpectBClean() {
    auto fsck = sys::RunProgram({"e2fsck", "-n", disk_->PartitionNode(part_b_)});
    ASSERT_TRUE(fsck.ok()) << fsck.status();
    EXPECT_EQ(fsck->exit_code, 0) << fsck->out << fsck->err;
  }

  ota::testing::TestPki pki_;
  stdfs::path v2_, v3_;
  std::unique_ptr<ota::testing::NginxServer> nginx_;
};

TEST_F(GrubInPlaceEngineTest, SecondUpdateWritesTheExt4StandbyInPlaceAndADirtyOneIsRebuilt) {
  std::string decision;
  // Update 1: B holds an empty ext4 and no record → rebuilt.
  update::StatusSnapshot first = UpdateTo("2", "/", decision);
  EXPECT_FALSE(first.progress.in_place);
  EXPECT_NE(decision.find("mode=rebuild"), std::string::npos) << decision;
  EXPECT_NE(decision.find("no usable slot table on the standby (missing)"), std::string::npos)
      << decision;
  ExpectBClean();
  ASSERT_NO_FATAL_FAILURE(ResetBackToA());

  const std::vector<std::string> same = {
      "usr/share/same.txt",  "usr/lib/same-big.bin", "usr/bin/tool", "usr/bin/suid",
      "home/user/owned",     "usr/lib/hl-a",         "usr/lib/hl-b", "usr/share/mode.txt",
      "usr/share/owner.txt", "boot/initrd.img-2"};
  const std::vector<std::string> changed = {"usr/share/changed.txt", "usr/lib/grow-a"};
  std::map<std::string, ino_t> same_before, changed_before;
  ASSERT_NO_FATAL_FAILURE(WithBMounted([&] {
    EXPECT_EQ(Manifest(Peek()), Manifest(v2_));
    EXPECT_EQ(ReadText(Peek() / ".ota-meta/state"), "complete\n");
    same_before = Inodes(Peek(), same);
    changed_before = Inodes(Peek(), changed);
  }));

  // Update 2 (auto): in place, trusting B's record.
  update::StatusSnapshot second = UpdateTo("3", "/v3/", decision);
  EXPECT_TRUE(second.progress.in_place);
  EXPECT_NE(decision.find("mode=in-place"), std::string::npos) << decision;
  EXPECT_NE(decision.find("standby holds a complete earlier update (slot table trusted)"),
            std::string::npos)
      << decision;
  EXPECT_EQ(Env()["next_entry"], "slot_b");
  ExpectBClean();
  ASSERT_NO_FATAL_FAILURE(WithBMounted([&] {
    EXPECT_EQ(Manifest(Peek()), Manifest(v3_));
    EXPECT_EQ(ReadText(Peek() / ".ota-meta/state"), "complete\n");
    EXPECT_EQ(Inodes(Peek(), same), same_before);  // untouched (owner/mode fixed in place)
    for (const auto& [path, inode] : Inodes(Peek(), changed)) {
      EXPECT_NE(inode, changed_before[path]) << path << " was not replaced";
    }
    for (const char* gone : {"usr/share/removed.txt", "usr/share/old-dir", "boot/vmlinuz-2"}) {
      EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(Peek() / gone))) << gone;
    }
    EXPECT_FALSE(stdfs::exists(Peek() / ".ota-resources"));
  }));
  EXPECT_EQ(ReadText(boot_dir_ / "ota-slots/slot_b/vmlinuz"), "kernel 3\n");

  // The file system gets flagged with errors (as the kernel does on a corruption it finds):
  // e2fsck -n is no longer clean, so the next update rebuilds B and says why.
  ASSERT_NO_FATAL_FAILURE(ResetBackToA());
  const std::string node = disk_->PartitionNode(part_b_);
  for (const char* request : {"write /etc/hostname orphan", "unlink /orphan", "ssv state 2"}) {
    auto run = sys::RunProgram({"debugfs", "-w", "-R", request, node});
    ASSERT_TRUE(run.ok() && run->exit_code == 0) << request;
  }
  auto dirty = sys::RunProgram({"e2fsck", "-n", node});
  ASSERT_TRUE(dirty.ok());
  ASSERT_NE(dirty->exit_code, 0) << "the damage did not make e2fsck -n unclean";
  update::StatusSnapshot third = UpdateTo("2", "/", decision);
  EXPECT_FALSE(third.progress.in_place);
  EXPECT_NE(decision.find("mode=rebuild"), std::string::npos) << decision;
  EXPECT_NE(decision.find(
                StrCat("standby file system not fit for in-place: e2fsck -n ", node, ": exit ")),
            std::string::npos)
      << decision;
  ExpectBClean();
  ASSERT_NO_FATAL_FAILURE(WithBMounted([&] {
    EXPECT_EQ(Manifest(Peek()), Manifest(v2_));
    EXPECT_EQ(ReadText(Peek() / ".ota-meta/state"), "complete\n");
  }));
}

}  // namespace
}  // namespace ota::boot
