// Backend selection table and creation errors that name their source.
#include "otaclient/boot/boot_factory.h"

#include <string>

#include "common/fs/fs.h"
#include "gtest/gtest.h"

namespace ota::boot {
namespace {

struct Case {
  std::string flag, bootloader, machine;
  std::string backend;  // "" = error
  absl::StatusCode code = absl::StatusCode::kOk;
};

TEST(ResolveBootBackend, Table) {
  const Case cases[] = {
      {"auto", "", "x86_64", "grub"},
      {"auto", "", "aarch64", "cboot"},
      {"auto", "", "riscv64", "", absl::StatusCode::kFailedPrecondition},
      {"auto", "grub", "aarch64", "grub"},
      {"auto", "cboot", "x86_64", "cboot"},
      {"auto", "jetson-cboot", "x86_64", "cboot"},
      {"auto", "dir", "x86_64", "dir"},
      {"auto", "rpi_boot", "x86_64", "", absl::StatusCode::kInvalidArgument},
      {"auto", "GRUB", "x86_64", "", absl::StatusCode::kInvalidArgument},
      {"dir", "grub", "x86_64", "dir"},
      {"grub", "cboot", "aarch64", "grub"},
      {"cboot", "", "x86_64", "cboot"},
      {"uefi", "", "x86_64", "", absl::StatusCode::kInvalidArgument},
      {"", "", "x86_64", "", absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto backend = ResolveBootBackend(c.flag, c.bootloader, c.machine);
    const std::string where = c.flag + "/" + c.bootloader + "/" + c.machine;
    if (c.backend.empty()) {
      EXPECT_EQ(backend.status().code(), c.code) << where;
    } else {
      ASSERT_TRUE(backend.ok()) << where << ": " << backend.status();
      EXPECT_EQ(*backend, c.backend) << where;
    }
  }
  auto bad = ResolveBootBackend("auto", "rpi_boot", "x86_64");
  EXPECT_NE(bad.status().message().find("ecu_info bootloader 'rpi_boot'"), absl::string_view::npos);
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
