// The system layer without a block device: mountinfo parsing, device specs, kernel command
// line, ext4 superblock identity (on a regular file formatted by the real mkfs.ext4), and child
// programs with time limits.
#include "common/sys/block_device.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/fs/fs.h"
#include "common/sys/command.h"
#include "gtest/gtest.h"

namespace ota::sys {
namespace {

constexpr char kMountinfo[] =
    "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
    "23 22 259:1 / /boot rw,relatime shared:2 - ext4 /dev/nvme0n1p1 rw\n"
    "24 22 0:5 / /dev rw - devtmpfs udev rw\n"
    "25 22 7:3 / /mnt/with\\040space rw - ext4 /dev/loop3 rw\n"
    "26 23 7:4 / /boot rw - ext4 /dev/loop4 rw\n"
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

// The one mountinfo parser of the boot backends (issue 11 §2c): strict, so that a caller never
// mistakes a line it could not read for "not mounted".
TEST(ParseMountinfo, Table) {
  struct Case {
    std::string text;
    std::vector<MountinfoEntry> want;
  };
  const Case cases[] = {
      {"", {}},
      {"\n\n", {}},
      // No optional fields.
      {"22 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw\n",
       {{{259, 2}, "/", "/", "ext4", "/dev/nvme0n1p2"}}},
      // Several optional fields (proc(5)'s example), no final newline.
      {"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 propagate_from:3 - ext3 /dev/root "
       "rw,errors=continue",
       {{{98, 0}, "/mnt1", "/mnt2", "ext3", "/dev/root"}}},
      // Octal escapes in the root, the mount point and the source: space, tab, newline,
      // backslash.
      {"40 22 7:3 /sub\\040dir /mnt/a\\040b\\011c\\012d\\134e rw - ext4 /dev/my\\040disk rw\n",
       {{{7, 3}, "/sub dir", "/mnt/a b\tc\nd\\e", "ext4", "/dev/my disk"}}},
      // A mount point that is itself "-" is no separator; tabs separate too.
      {"41 22 8:1 / - rw\t-\text4\t/dev/sda1 rw\n", {{{8, 1}, "/", "-", "ext4", "/dev/sda1"}}},
      // The top of a stack comes last.
      {"25 22 7:3 / /boot rw - ext4 /dev/loop3 rw\n26 25 7:4 / /boot rw - ext4 /dev/loop4 rw\n",
       {{{7, 3}, "/", "/boot", "ext4", "/dev/loop3"},
        {{7, 4}, "/", "/boot", "ext4", "/dev/loop4"}}},
  };
  for (const Case& c : cases) {
    auto parsed = ParseMountinfo(c.text, "mi");
    ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.status();
    ASSERT_EQ(parsed->size(), c.want.size()) << c.text;
    for (size_t i = 0; i < c.want.size(); ++i) {
      EXPECT_EQ((*parsed)[i].device, c.want[i].device) << c.text;
      EXPECT_EQ((*parsed)[i].root, c.want[i].root) << c.text;
      EXPECT_EQ((*parsed)[i].mount_point, c.want[i].mount_point) << c.text;
      EXPECT_EQ((*parsed)[i].fs_type, c.want[i].fs_type) << c.text;
      EXPECT_EQ((*parsed)[i].source, c.want[i].source) << c.text;
    }
  }
}

TEST(ParseMountinfo, MalformedLinesAreErrorsNamingTheLine) {
  struct Case {
    std::string text;
    std::string message_part;
  };
  const Case cases[] = {
      {"garbage line\n", "mi line 1: no ' - ' separator"},
      {"22 1 259:2 / / rw,relatime shared:1 ext4 /dev/x rw\n", "mi line 1: no ' - ' separator"},
      {"22 1 259:2 / / rw - ext4 /dev/x rw\n23 1 259:3 / /boot rw - ext4\n",
       "mi line 2: expected fs type and source"},
      {"22 1 259:2 / / rw - ext4 /dev/x rw\n22 1 x:y / / rw - ext4 /dev/x rw\n", "mi line 2"},
      {"22 1 259:2 / / rw - ext4 /dev/x rw\n1 1 12 / /a rw - ext4 /dev/y rw\n",
       "mi line 2: expected major:minor"},
      {"22 1 259:2 /\n", "mi line 1: no ' - ' separator"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseMountinfo(c.text, "mi");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << c.text;
    EXPECT_NE(parsed.status().message().find(c.message_part), absl::string_view::npos)
        << c.text << ": " << parsed.status();
  }
}

TEST(ReadMountinfo, UnreadableIsAnErrorNotAnEmptyList) {
  auto missing = ReadMountinfo("/nonexistent/mountinfo");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/mountinfo"), absl::string_view::npos)
      << missing.status();
  auto real = ReadMountinfo("/proc/self/mountinfo");
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_TRUE(std::any_of(real->begin(), real->end(),
                          [](const MountinfoEntry& e) { return e.mount_point == "/"; }));
}

// The one resolver of PARTUUID=/UUID=/LABEL=/PARTLABEL= (matching real partitions is covered by
// the GRUB and CBoot integration tests on loop devices).
TEST(ResolveDeviceSpec, FormsAndMisses) {
  auto dir = fs::TempDir::Create("spec-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  SystemPaths paths;
  paths.sys = dir->path() / "sys";  // a machine without partitions
  std::filesystem::create_directories(paths.sys / "class" / "block");
  for (const char* spec : {"PARTUUID=abc", "UUID=abc", "LABEL=x", "PARTLABEL=x"}) {
    auto resolved = ResolveDeviceSpec(paths, spec, "slot override slot_a");
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kNotFound) << spec;
    EXPECT_EQ(resolved.status().message(),
              std::string("slot override slot_a '") + spec + "': no partition matches");
  }
  for (const char* spec : {"", "PARTUUID=", "UUID", "sda2", "uuid=abc"}) {
    auto resolved = ResolveDeviceSpec(paths, spec, "w");
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument) << spec;
  }
  // A path is described directly: not a block device here.
  EXPECT_EQ(ResolveDeviceSpec(paths, "/dev/null", "w").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(ResolveDeviceSpec(paths, "/dev/no-such-disk", "w").ok());
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

// The extra environment (install hooks) is added to the inherited one; a variable of the same
// name is replaced, not duplicated.
TEST(RunProgram, ExtraEnvironmentReplacesInheritedVariables) {
  ASSERT_EQ(::setenv("OTA_RUN_PROGRAM_TEST", "inherited", 1), 0);
  auto result = RunProgram({"sh", "-c",
                            "echo \"$OTA_RUN_PROGRAM_TEST $OTA_RUN_PROGRAM_NEW\"; env | grep -c "
                            "'^OTA_RUN_PROGRAM_TEST='; echo \"${HOME:+home-kept}\""},
                           std::chrono::seconds(10),
                           {"OTA_RUN_PROGRAM_TEST=replaced", "OTA_RUN_PROGRAM_NEW=a b=c"});
  ::unsetenv("OTA_RUN_PROGRAM_TEST");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->err;
  EXPECT_EQ(result->out, std::string("replaced a b=c\n1\n") +
                             (std::getenv("HOME") != nullptr ? "home-kept\n" : "\n"));
}

// Regression (issue 11 §2d): RunProgram waited forever (poll(-1), then waitpid) for a child
// that hangs. Every child now has a limit; on expiry its whole process group is killed, SIGTERM
// then SIGKILL. Here the child and its grandchild ignore SIGTERM, so only SIGKILL ends them.
TEST(RunProgram, TimeoutKillsTheWholeProcessGroup) {
  // Orphans are reparented to this process, so the test can wait for the grandchild and see how
  // it ended. The grandchild is orphaned at once (started by a subshell that exits): were it the
  // shell's own child, the shell's pending wait4(-1) could reap it in the kernel in the instant
  // both die of the SIGKILL, and this test would find no child to wait for.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  auto dir = fs::TempDir::Create("run-timeout");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string pidfile = (dir->path() / "grandchild").string();
  const std::string script = "trap '' TERM; (sleep 30 & echo $! > " + pidfile + ".tmp; mv " +
                             pidfile + ".tmp " + pidfile + "); sleep 30";
  const auto start = std::chrono::steady_clock::now();
  auto result = RunProgram({"sh", "-c", script}, std::chrono::milliseconds(1500));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded) << result.status();
  EXPECT_NE(result.status().message().find("sh -c trap"), absl::string_view::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("1500 ms"), absl::string_view::npos) << result.status();
  EXPECT_LT(took, std::chrono::milliseconds(1500) + kKillGrace + std::chrono::seconds(5));
  auto pid_text = fs::ReadFile(pidfile);
  ASSERT_TRUE(pid_text.ok()) << pid_text.status();
  const pid_t grandchild = std::stoi(*pid_text);
  int status = 0;
  ASSERT_EQ(::waitpid(grandchild, &status, 0), grandchild);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  EXPECT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
  // A quick program is unaffected by its limit.
  auto quick = RunProgram({"sh", "-c", "echo done"}, std::chrono::seconds(20));
  ASSERT_TRUE(quick.ok()) << quick.status();
  EXPECT_EQ(quick->out, "done\n");
}

}  // namespace
}  // namespace ota::sys
