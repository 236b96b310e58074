// Pieces of slot detection that need no block device: mountinfo parsing, kernel command line,
// ext4 superblock identity (on a regular file formatted by the real mkfs.ext4).
#include "otaclient/boot/slot_layout.h"

#include <filesystem>
#include <fstream>

#include "common/fs/fs.h"
#include "gtest/gtest.h"
#include "otaclient/boot/command.h"

namespace ota::boot {
namespace {

constexpr char kMountinfo[] =
    "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
    "23 22 259:1 / /boot rw,relatime shared:2 - ext4 /dev/nvme0n1p1 rw\n"
    "24 22 0:5 / /dev rw - devtmpfs udev rw\n"
    "25 22 7:3 / /mnt/with\\040space rw - ext4 /dev/loop3 rw\n"
    "26 23 7:4 / /boot rw - ext4 /dev/loop4 rw\n"
    "garbage line\n"
    "\n";

TEST(FindMountDevice, RootAndTopOfStack) {
  auto root = FindMountDevice(kMountinfo, "/");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, (DeviceNumber{259, 2}));
  // /boot is mounted twice: the later line is on top.
  auto boot = FindMountDevice(kMountinfo, "/boot/");
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(*boot, (DeviceNumber{7, 4}));
  auto spaced = FindMountDevice(kMountinfo, "/mnt/with space");
  ASSERT_TRUE(spaced.ok()) << spaced.status();
  EXPECT_EQ(*spaced, (DeviceNumber{7, 3}));
}

TEST(FindMountDevice, NotMountedIsNotFound) {
  EXPECT_EQ(FindMountDevice(kMountinfo, "/boot/efi").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FindMountDevice("", "/").status().code(), absl::StatusCode::kNotFound);
}

TEST(FindMountDevice, CorruptDeviceNumberIsDataLoss) {
  auto result = FindMountDevice("1 1 x:y / / rw - ext4 /dev/x rw\n", "/");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(result.status().message().find("line 1"), absl::string_view::npos);
}

TEST(KernelCmdline, LastOccurrenceWinsAndQuotesStripped) {
  constexpr char kCmdline[] =
      "BOOT_IMAGE=/ota-slots/slot_b/vmlinuz root=/dev/sda2 ro root=PARTUUID=ABC-1 "
      "panic=5 quiet x=\"quoted\"\n";
  EXPECT_EQ(KernelCmdlineValue(kCmdline, "root"), "PARTUUID=ABC-1");
  EXPECT_EQ(KernelCmdlineValue(kCmdline, "panic"), "5");
  EXPECT_EQ(KernelCmdlineValue(kCmdline, "x"), "quoted");
  EXPECT_EQ(KernelCmdlineValue(kCmdline, "quiet"), std::nullopt);  // a flag, no value
  EXPECT_EQ(KernelCmdlineValue(kCmdline, "roo"), std::nullopt);
  EXPECT_EQ(KernelCmdlineValue("", "root"), std::nullopt);
}

TEST(ReadExt4Identity, ReadsUuidAndLabelWrittenByMkfs) {
  auto tmp = fs::TempDir::Create("ext4-ident");
  ASSERT_TRUE(tmp.ok());
  const auto image = tmp->path() / "fs.img";
  std::ofstream(image).close();
  std::filesystem::resize_file(image, 8 << 20);
  auto mkfs = RunProgram({"mkfs.ext4", "-F", "-q", "-U", "0123abcd-4567-89ef-0123-456789abcdef",
                          "-L", "rootB", image.string()});
  ASSERT_TRUE(mkfs.ok()) << mkfs.status();
  ASSERT_EQ(mkfs->exit_code, 0) << mkfs->err;
  auto identity = ReadExt4Identity(image);
  ASSERT_TRUE(identity.ok()) << identity.status();
  ASSERT_TRUE(identity->has_value());
  EXPECT_EQ((*identity)->uuid, "0123abcd-4567-89ef-0123-456789abcdef");
  EXPECT_EQ((*identity)->label, "rootB");
}

TEST(ReadExt4Identity, NoFileSystemIsNulloptAndMissingIsError) {
  auto tmp = fs::TempDir::Create("ext4-ident");
  ASSERT_TRUE(tmp.ok());
  const auto zeros = tmp->path() / "zeros.img";
  std::ofstream(zeros).close();
  std::filesystem::resize_file(zeros, 1 << 20);
  auto identity = ReadExt4Identity(zeros);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_FALSE(identity->has_value());
  const auto tiny = tmp->path() / "tiny.img";
  std::ofstream(tiny) << "short";
  identity = ReadExt4Identity(tiny);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_FALSE(identity->has_value());
  EXPECT_EQ(ReadExt4Identity(tmp->path() / "missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(RunProgram, CapturesOutputAndExitCode) {
  auto result = RunProgram({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->out, "out\n");
  EXPECT_EQ(result->err, "err\n");
  auto checked = RunProgramChecked({"sh", "-c", "echo bad >&2; exit 2"});
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.status().message().find("exit 2: bad"), absl::string_view::npos)
      << checked.status();
  EXPECT_EQ(RunProgram({"/nonexistent/prog"}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ota::boot
