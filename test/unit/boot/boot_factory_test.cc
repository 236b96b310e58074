// Backend selection table and creation errors that name their source.
#include "otaclient/boot/boot_factory.h"

#include <string>

#include "common/fs/fs.h"
#include "gtest/gtest.h"

namespace ota::boot {
namespace {

struct Case {
  std::string flag, bootloader;
  PlatformProbe probe;
  std::string backend;  // "" = error
  absl::StatusCode code = absl::StatusCode::kOk;
};

const PlatformProbe kPc{"x86_64", false, ""};
const PlatformProbe kJetson{"aarch64", true, "NVIDIA Jetson AGX Orin Developer Kit"};
const PlatformProbe kPi4{"aarch64", false, "Raspberry Pi 4 Model B Rev 1.4"};
const PlatformProbe kPi5{"aarch64", false, "Raspberry Pi 5 Model B Rev 1.0"};
const PlatformProbe kOtherArm{"aarch64", false, ""};

TEST(ResolveBootBackend, Table) {
  const Case cases[] = {
      {"auto", "", kPc, "grub"},
      {"auto", "", kJetson, "cboot"},  // jetson-uefi is never guessed
      {"auto", "auto_detect", kJetson, "cboot"},
      {"auto", "auto_detect", kPc, "grub"},
      {"auto", "", kOtherArm, "", absl::StatusCode::kFailedPrecondition},
      {"auto", "", kPi4, "rpi_boot"},
      {"auto", "auto_detect", kPi4, "rpi_boot"},
      {"auto", "", kPi5, "", absl::StatusCode::kFailedPrecondition},
      {"auto", "", {"riscv64", false, ""}, "", absl::StatusCode::kFailedPrecondition},
      {"auto", "grub", kJetson, "grub"},
      {"auto", "cboot", kPc, "cboot"},
      {"auto", "jetson-cboot", kPc, "cboot"},
      {"auto", "jetson-uefi", kJetson, "jetson-uefi"},
      {"auto", "jetson-uefi", kOtherArm, "jetson-uefi"},
      {"auto", "dir", kPc, "dir"},
      {"auto", "rpi_boot", kPc, "rpi_boot"},
      {"rpi_boot", "grub", kPc, "rpi_boot"},
      {"auto", "uboot", kPc, "", absl::StatusCode::kInvalidArgument},
      {"auto", "GRUB", kPc, "", absl::StatusCode::kInvalidArgument},
      {"auto", "jetson_uefi", kPc, "", absl::StatusCode::kInvalidArgument},
      {"dir", "grub", kPc, "dir"},
      {"grub", "cboot", kJetson, "grub"},
      {"cboot", "", kPc, "cboot"},
      {"jetson-uefi", "cboot", kJetson, "jetson-uefi"},  // the flag wins
      {"jetson-cboot", "", kPc, "cboot"},
      {"uefi", "", kPc, "", absl::StatusCode::kInvalidArgument},
      {"", "", kPc, "", absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto backend = ResolveBootBackend(c.flag, c.bootloader, c.probe);
    const std::string where =
        c.flag + "/" + c.bootloader + "/" + c.probe.machine + "/" + c.probe.device_tree_model;
    if (c.backend.empty()) {
      EXPECT_EQ(backend.status().code(), c.code) << where;
    } else {
      ASSERT_TRUE(backend.ok()) << where << ": " << backend.status();
      EXPECT_EQ(*backend, c.backend) << where;
    }
  }
  auto bad = ResolveBootBackend("auto", "uboot", kPc);
  EXPECT_NE(bad.status().message().find("ecu_info bootloader 'uboot'"), absl::string_view::npos);
  auto pi5 = ResolveBootBackend("auto", "", kPi5);
  EXPECT_NE(pi5.status().message().find("Raspberry Pi 5"), absl::string_view::npos) << pi5.status();
  auto arm = ResolveBootBackend("auto", "", kOtherArm);
  EXPECT_NE(arm.status().message().find("set `bootloader` in ecu_info"), absl::string_view::npos)
      << arm.status();
}

TEST(ProbePlatform, ReadsTheChipIdFileAndTheDeviceTreeModel) {
  auto tmp = fs::TempDir::Create("boot-probe");
  ASSERT_TRUE(tmp.ok());
  PlatformProbePaths paths{tmp->path() / "tegra_chip_id", tmp->path() / "model"};
  PlatformProbe none = ProbePlatform(paths);
  EXPECT_FALSE(none.tegra_chip_id);
  EXPECT_EQ(none.device_tree_model, "");
  EXPECT_EQ(none.machine, MachineArchitecture());
  // The device tree's string property ends in NUL; the chip id file's content does not matter.
  ASSERT_TRUE(fs::WriteFileAtomic(paths.device_tree_model,
                                  std::string("Raspberry Pi 4 Model B Rev 1.4\0", 31))
                  .ok());
  ASSERT_TRUE(fs::WriteFileAtomic(paths.tegra_chip_id, "35\n").ok());
  PlatformProbe found = ProbePlatform(paths);
  EXPECT_TRUE(found.tegra_chip_id);
  EXPECT_EQ(found.device_tree_model, "Raspberry Pi 4 Model B Rev 1.4");
}

TEST(CreateBootController, DirBackend) {
  auto tmp = fs::TempDir::Create("boot-factory");
  ASSERT_TRUE(tmp.ok());
  BootFactoryOptions options;
  options.backend = "auto";
  options.ecu_bootloader = "dir";
  options.dir.root = tmp->path();
  auto controller = CreateBootController(std::move(options));
  ASSERT_TRUE(controller.ok()) << controller.status();
  EXPECT_EQ((*controller)->ActiveRoot(), tmp->path() / "slot_a");
}

TEST(CreateBootController, DirWithoutRootIsAnError) {
  BootFactoryOptions options;
  options.backend = "dir";
  EXPECT_EQ(CreateBootController(std::move(options)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CreateBootController, GrubRefusesAMachineThatIsNotAB) {
  // A root on a tmpfs (0:X, no block device): not an A/B layout.
  auto tmp = fs::TempDir::Create("boot-factory");
  ASSERT_TRUE(tmp.ok());
  ASSERT_TRUE(
      fs::WriteFileAtomic(tmp->path() / "mountinfo", "21 1 0:4242 / / rw - tmpfs tmpfs rw\n").ok());
  BootFactoryOptions options;
  options.backend = "grub";
  options.grub.system.mountinfo = tmp->path() / "mountinfo";
  options.grub.boot_dir = tmp->path() / "boot";
  auto controller = CreateBootController(std::move(options));
  ASSERT_FALSE(controller.ok());
  EXPECT_NE(controller.status().message().find("0:4242"), absl::string_view::npos)
      << controller.status();
}

}  // namespace
}  // namespace ota::boot
