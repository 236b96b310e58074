#include "otaclient/boot/jetson_common.h"

#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/boot/block_slot.h"
#include "otaclient/boot/extlinux.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kExtlinuxConf = "boot/extlinux/extlinux.conf";

absl::Status RewriteExtlinux(const stdfs::path& root, const BlockDevice& device) {
  OTA_RETURN_IF_ERROR(CheckRealDirs(root, "boot/extlinux"));
  OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(root));
  absl::StatusOr<std::string> conf = dir.ReadFile(kExtlinuxConf);
  if (!conf.ok()) {
    return absl::InvalidArgumentError(
        StrCat("the new image has no usable /", kExtlinuxConf, ": ", conf.status().message()));
  }
  if (device.partuuid.empty()) {
    return absl::FailedPreconditionError(
        StrCat("jetson: no PARTUUID for standby ", device.node.string()));
  }
  absl::StatusOr<ExtlinuxRewrite> rewritten = RewriteExtlinuxRoot(*conf, device.partuuid);
  if (!rewritten.ok()) {
    return WithContext(rewritten.status(), StrCat("rewriting ", dir.Describe(kExtlinuxConf)));
  }
  OTA_RETURN_IF_ERROR(dir.RewriteFileDurably(kExtlinuxConf, rewritten->content));
  log::Info("extlinux.conf points at the standby",
            {{"root", StrCat("PARTUUID=", device.partuuid)},
             {"append_lines", std::to_string(rewritten->append_lines)}});
  return absl::OkStatus();
}

absl::Status MergeStandbyFstab(const stdfs::path& root, const stdfs::path& active_root,
                               const RootfsSlots& slots) {
  OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(root));
  absl::StatusOr<std::string> image_fstab = dir.ReadFile("etc/fstab");
  if (absl::IsNotFound(image_fstab.status())) return absl::OkStatus();  // nothing to merge
  if (!image_fstab.ok()) return image_fstab.status();
  absl::StatusOr<std::string> active_fstab = fs::ReadFile(active_root / "etc/fstab");
  if (!active_fstab.ok() && !absl::IsNotFound(active_fstab.status())) {
    return active_fstab.status();
  }
  OTA_RETURN_IF_ERROR(CheckRealDirs(root, "etc"));
  FstabMergeInput input;
  const std::string active_text = active_fstab.ok() ? *active_fstab : std::string();
  input.active_fstab = active_text;
  input.image_fstab = *image_fstab;
  auto spec_of = [](const BlockDevice& device) {
    return device.fs_uuid.empty() ? StrCat("PARTUUID=", device.partuuid)
                                  : StrCat("UUID=", device.fs_uuid);
  };
  input.active_root_spec = spec_of(slots.rootfs[slots.current]);
  input.standby_root_spec = spec_of(slots.rootfs[slots.standby()]);
  input.shared_boot = false;  // /boot lives inside each rootfs on Jetson
  OTA_ASSIGN_OR_RETURN(std::string merged, MergeFstab(input));
  return dir.RewriteFileDurably("etc/fstab", merged);
}

}  // namespace

std::optional<std::string> JetsonPlatformBase::DefaultBootDevice(const BlockDevice& active,
                                                                 int slot) const {
  if (active.disk.rfind("nvme", 0) != 0) return std::nullopt;
  return StrCat("/dev/mmcblk0p", PartitionNumber(slot));
}

absl::Status JetsonPlatformBase::WriteBootFiles(const stdfs::path& standby,
                                                const stdfs::path& active_root,
                                                const RootfsSlots& slots) {
  OTA_RETURN_IF_ERROR(RewriteExtlinux(standby, slots.rootfs[slots.standby()]));
  return MergeStandbyFstab(standby, active_root, slots);
}

absl::StatusOr<BspVersion> ReadRootfsBsp(const fs::RootedDir& active) {
  absl::StatusOr<std::string> text = active.ReadFile(kNvTegraRelease);
  if (!text.ok()) {
    return WithContext(text.status(),
                       StrCat("reading the BSP version from ", active.Describe(kNvTegraRelease)));
  }
  absl::StatusOr<BspVersion> bsp = ParseNvTegraRelease(*text);
  if (!bsp.ok()) return WithContext(bsp.status(), active.Describe(kNvTegraRelease));
  return bsp;
}

absl::StatusOr<NvBootControlConf> ReadNvBootControlConf(const fs::RootedDir& active) {
  absl::StatusOr<std::string> text = active.ReadFile(kNvBootControlConf);
  if (!text.ok()) {
    return WithContext(text.status(), StrCat("reading ", active.Describe(kNvBootControlConf)));
  }
  absl::StatusOr<NvBootControlConf> conf = ParseNvBootControlConf(*text);
  if (!conf.ok()) return WithContext(conf.status(), active.Describe(kNvBootControlConf));
  return conf;
}

}  // namespace ota::boot
