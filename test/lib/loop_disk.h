// A GPT disk image on a loop device for tests that need real block devices: a sparse file,
// partitions made by sgdisk (fixed PARTUUIDs and names), attached with `losetup -P`, partition
// nodes registered with `partx -a` when the kernel made none (these hosts have no partition
// parsers), each partition formatted by the real mkfs.ext4 (optionally from a staging dir).
// The destructor unmounts everything the test mounted under the disk's work dir, removes the
// partition nodes and detaches the loop device — also when the test failed halfway.
//
//   auto disk = LoopDisk::Create(work_dir, {{"boot", 8, uuid1}, {"rootfs_a", 24, uuid2}, ...});
//   if (!disk.ok()) GTEST_SKIP() << disk.status();   // only for "no loop devices"
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sys/command.h"
#include "common/util/strings.h"
#include "otaclient/boot/block_slot.h"

namespace ota::testing {

struct PartitionSpec {
  std::string name;  // GPT partition name
  int size_mib = 16;
  std::string partuuid;       // fixed GPT partition UUID
  std::string type = "8300";  // sgdisk type code ("ef00": EFI system partition)
};

class LoopDisk {
 public:
  // kUnavailable when this host cannot give us a loop device (callers skip); other errors fail.
  static absl::StatusOr<std::unique_ptr<LoopDisk>> Create(const std::filesystem::path& work_dir,
                                                          const std::vector<PartitionSpec>& parts) {
    if (::geteuid() != 0) return absl::UnavailableError("SKIP: not root (loop devices need it)");
    if (!std::filesystem::exists("/dev/loop-control")) {
      return absl::UnavailableError("SKIP: no loop devices (/dev/loop-control missing)");
    }
    std::unique_ptr<LoopDisk> disk(new LoopDisk(work_dir));
    std::filesystem::create_directories(work_dir);
    int total_mib = 2;
    for (const PartitionSpec& part : parts) total_mib += part.size_mib;
    {
      std::ofstream(disk->image_).close();
      std::filesystem::resize_file(disk->image_, static_cast<uintmax_t>(total_mib) << 20);
    }
    std::vector<std::string> sgdisk = {"sgdisk", "-o"};
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string n = std::to_string(i + 1);
      sgdisk.insert(
          sgdisk.end(),
          {"-n", StrCat(n, ":0:+", parts[i].size_mib, "M"), "-t", StrCat(n, ":", parts[i].type),
           "-c", StrCat(n, ":", parts[i].name), "-u", StrCat(n, ":", parts[i].partuuid)});
    }
    sgdisk.push_back(disk->image_.string());
    if (absl::Status st = sys::RunProgramChecked(sgdisk).status(); !st.ok()) return st;
    absl::StatusOr<sys::CommandResult> loop =
        sys::RunProgram({"losetup", "--find", "--show", "-P", disk->image_.string()});
    if (!loop.ok() || loop->exit_code != 0) {
      return absl::UnavailableError(StrCat("SKIP: no loop device available: ",
                                           loop.ok() ? loop->err : loop.status().ToString()));
    }
    disk->device_ = std::string(loop->out.substr(0, loop->out.find('\n')));
    const std::string first = disk->PartitionNode(1);
    if (!std::filesystem::exists(first)) (void)sys::RunProgram({"partx", "-a", disk->device_});
    // devtmpfs creates the nodes asynchronously after partx: poll with a deadline.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (size_t i = 1; i <= parts.size(); ++i) {
      while (!std::filesystem::exists(disk->PartitionNode(static_cast<int>(i)))) {
        if (std::chrono::steady_clock::now() > deadline) {
          return absl::InternalError(StrCat(
              "partition node ", disk->PartitionNode(static_cast<int>(i)), " never appeared"));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    disk->partitions_ = static_cast<int>(parts.size());
    return disk;
  }

  ~LoopDisk() {
    (void)boot::UnmountAllUnder(work_dir_);
    if (!device_.empty()) {
      (void)sys::RunProgram({"partx", "-d", device_});
      (void)sys::RunProgram({"losetup", "-d", device_});
    }
    std::error_code ec;
    std::filesystem::remove(image_, ec);
  }

  const std::string& device() const { return device_; }
  std::string PartitionNode(int number) const { return StrCat(device_, "p", number); }
  const std::filesystem::path& work_dir() const { return work_dir_; }

  // The file system a FAT boot partition (an ESP, the Pi's system-boot) gets in tests: vfat
  // when this kernel can mount it, else ext4 (these CI hosts' kernels have no FAT driver; the
  // product is told with its `*_fs_type` option). Says which on stderr, once.
  static const std::string& FatStandInType() {
    static const std::string type = [] {
      absl::StatusOr<std::string> fs = sys::RunProgramChecked({"cat", "/proc/filesystems"});
      const bool vfat = fs.ok() && fs->find("\tvfat\n") != std::string::npos;
      if (!vfat) std::fprintf(stderr, "note: no vfat in this kernel: FAT partitions are ext4\n");
      return std::string(vfat ? "vfat" : "ext4");
    }();
    return type;
  }
  // A FAT boot partition with a label (FatStandInType() decides which file system).
  absl::Status FormatFat(int number, const std::string& label) const {
    if (FatStandInType() == "vfat") {
      return sys::RunProgramChecked({"mkfs.vfat", "-n", label, PartitionNode(number)}).status();
    }
    return sys::RunProgramChecked({"mkfs.ext4", "-F", "-q", "-L", label, PartitionNode(number)})
        .status();
  }

  // mkfs.ext4 (-F -q) with a fixed UUID and label, populated from `stage` when given.
  absl::Status FormatExt4(int number, const std::string& uuid, const std::string& label,
                          const std::filesystem::path& stage = {}) const {
    std::vector<std::string> argv = {"mkfs.ext4", "-F", "-q", "-U", uuid, "-L", label};
    if (!stage.empty()) argv.insert(argv.end(), {"-d", stage.string()});
    argv.push_back(PartitionNode(number));
    return sys::RunProgramChecked(argv).status();
  }

 private:
  explicit LoopDisk(std::filesystem::path work_dir)
      : work_dir_(std::move(work_dir)), image_(work_dir_ / "disk.img") {}

  std::filesystem::path work_dir_;
  std::filesystem::path image_;
  std::string device_;
  int partitions_ = 0;
};

}  // namespace ota::testing
