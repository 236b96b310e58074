#include "otaclient/boot/capsule_updater.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>
#include <utility>

#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"
#include "otaclient/boot/block_slot.h"
#include "otaclient/boot/efi_var.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

// Upstream's table of L4TLauncher binaries shipped by NVIDIA (sha256 → BSP).
constexpr std::array<std::pair<std::string_view, BspVersion>, 3> kKnownLaunchers = {{
    {"b14fa3623f4078d05573d9dcf2a0b46ea2ae07d6b75d9843f9da6ff24db13718", {36, 3, 0}},
    {"3928e0feb84e37db87dc6705a02eec95a6fca2dccd3467b61fa66ed8e1046b67", {35, 5, 0}},
    {"ac17457772666351154a5952e3b87851a6398da2afcf3a38bedfc0925760bb0e", {35, 4, 1}},
}};

// The ESP of `disk`: the partition named "esp" there (any other disk's "esp" does not count).
absl::StatusOr<BlockDevice> FindEsp(const SystemPaths& paths, const std::string& disk) {
  DeviceSpecOptions spec;
  spec.prefer_disk = disk;
  const std::string label = StrCat("PARTLABEL=", kEspPartitionLabel);
  absl::StatusOr<BlockDevice> esp = ResolveDeviceSpec(paths, label, "ESP", spec);
  if (esp.ok() && esp->disk != disk) {
    esp =
        absl::NotFoundError(StrCat("ESP '", label, "': ", esp->node.string(), " is not on ", disk));
  }
  if (!esp.ok()) {
    return absl::FailedPreconditionError(StrCat(
        "no EFI system partition (GPT name \"esp\") on /dev/", disk, ": ", esp.status().message()));
  }
  return esp;
}

absl::StatusOr<std::string> Sha256OfFile(const stdfs::path& file) {
  fs::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", file.string()));
  return FileDigestHex(fd.get(), "sha256");
}

// Copies `from` to `to` on the (mounted) ESP: temp + fsync + rename.
absl::Status CopyOnEsp(const stdfs::path& from, const stdfs::path& to) {
  OTA_ASSIGN_OR_RETURN(std::string content, fs::ReadFile(from));
  return fs::WriteFileAtomic(to, content);
}

// What the running L4TLauncher is, recording it when the version file did not say.
absl::StatusOr<BspVersion> DetectLauncherVersion(const stdfs::path& esp, BspVersion fallback) {
  const stdfs::path launcher = esp / kL4tLauncherOnEsp;
  const stdfs::path version_file = esp / kL4tLauncherVersionOnEsp;
  OTA_ASSIGN_OR_RETURN(std::string digest, Sha256OfFile(launcher));
  absl::StatusOr<std::string> recorded = fs::ReadFile(version_file);
  if (recorded.ok()) {
    std::optional<L4tLauncherVersion> parsed = ParseL4tLauncherVersion(*recorded);
    if (parsed.has_value() && parsed->sha256 == digest) return parsed->bsp;
    log::Warning("L4TLauncher version file does not match the launcher: ignored",
                 {{"file", version_file.string()}, {"launcher_sha256", digest}});
  }
  std::optional<BspVersion> known = KnownL4tLauncherVersion(digest);
  const BspVersion version = known.value_or(fallback);
  log::Info("L4TLauncher version", {{"version", version.ToString()},
                                    {"source", known ? "known digest" : "running firmware"},
                                    {"sha256", digest}});
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(version_file, StrCat(version.ToString(), ":", digest)));
  return version;
}

// Replaces the L4TLauncher with the image's when it is older than the package.
absl::StatusOr<bool> UpdateLauncher(const fs::RootedDir& standby, const FirmwarePackageSet& package,
                                    const stdfs::path& esp, BspVersion running_firmware) {
  const std::vector<const FirmwarePackage*> apps = package.Requested(PayloadType::kUefiBootApp);
  if (apps.empty()) return false;
  std::error_code ec;
  if (!stdfs::exists(esp / kL4tLauncherOnEsp, ec)) {
    log::Warning("no L4TLauncher on the ESP: boot application update skipped",
                 {{"expected", (esp / kL4tLauncherOnEsp).string()}});
    return false;
  }
  OTA_ASSIGN_OR_RETURN(BspVersion current, DetectLauncherVersion(esp, running_firmware));
  const BspVersion wanted = package.manifest.bsp_version;
  if (!(current < wanted)) {
    log::Info("L4TLauncher is up to date",
              {{"launcher", current.ToString()}, {"package", wanted.ToString()}});
    return false;
  }
  const FirmwarePackage& app = *apps.front();
  OTA_RETURN_IF_ERROR(CopyOnEsp(esp / kL4tLauncherOnEsp, esp / kL4tLauncherBackupOnEsp));
  absl::Status copied = CopyVerifiedPayload(standby, app, esp / kL4tLauncherOnEsp);
  if (!copied.ok()) {
    log::Warning("boot application update skipped",
                 {{"payload", app.payload_name}, {"reason", std::string(copied.message())}});
    return false;
  }
  OTA_ASSIGN_OR_RETURN(std::string digest, Sha256OfFile(esp / kL4tLauncherOnEsp));
  OTA_RETURN_IF_ERROR(
      fs::WriteFileAtomic(esp / kL4tLauncherVersionOnEsp, StrCat(wanted.ToString(), ":", digest)));
  log::Info("L4TLauncher updated", {{"from", current.ToString()}, {"to", wanted.ToString()}});
  return true;
}

// Everything in EFI/UpdateCapsule/ removed (files only; FAT has no symlinks).
absl::Status EmptyCapsuleDir(const stdfs::path& dir) {
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("create ", dir.string()));
  for (const stdfs::directory_entry& entry : stdfs::directory_iterator(dir, ec)) {
    stdfs::remove_all(entry.path(), ec);
    if (ec) return ErrnoStatus(ec.value(), StrCat("remove ", entry.path().string()));
  }
  if (ec) return ErrnoStatus(ec.value(), StrCat("list ", dir.string()));
  return fs::SyncDir(dir);
}

}  // namespace

std::optional<L4tLauncherVersion> ParseL4tLauncherVersion(std::string_view text) {
  text = TrimSpace(text);
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view version = text.substr(0, colon);
  absl::StatusOr<BspVersion> bsp = ParseBspVersion(version);
  if (!version.empty() && (version.front() == 'R' || version.front() == 'r')) {
    version.remove_prefix(1);
  }
  // The whole field must be the version (no prefix match: this is our own file format).
  if (!bsp.ok() || StrCat("R", version) != bsp->ToString()) return std::nullopt;
  const std::string_view digest = text.substr(colon + 1);
  if (digest.size() != 64) return std::nullopt;
  for (char c : digest) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return L4tLauncherVersion{*bsp, std::string(digest)};
}

std::optional<BspVersion> KnownL4tLauncherVersion(std::string_view sha256_hex) {
  for (const auto& [digest, version] : kKnownLaunchers) {
    if (digest == sha256_hex) return version;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<StagedCapsule>> StageCapsuleUpdate(
    const fs::RootedDir& standby, const std::optional<FirmwarePackageSet>& package,
    const CapsuleOptions& options) {
  using Result = std::optional<StagedCapsule>;
  if (!package.has_value()) return Result();
  const BspVersion package_bsp = package->manifest.bsp_version;
  auto skip = [](std::string_view why) {
    log::Warning("firmware update skipped", {{"reason", why}});
    return Result();
  };
  if (options.firmware_bsp < kFirstCapsuleBsp) {
    return skip(StrCat("running firmware ", options.firmware_bsp.ToString(),
                       " has no capsule update (needs R35.2.0 or later)"));
  }
  if (package_bsp < kFirstCapsuleBsp) {
    return skip(StrCat("the package's BSP ", package_bsp.ToString(), " is older than R35.2.0"));
  }
  if (package_bsp < options.firmware_bsp) {
    return skip(StrCat("the package's BSP ", package_bsp.ToString(),
                       " is older than the running firmware ", options.firmware_bsp.ToString(),
                       " (no downgrade)"));
  }
  if (options.conf.tnspec.empty()) return skip("no TNSPEC in nv_boot_control.conf");
  if (!FirmwareCompatible(package->manifest.compat, options.conf.tnspec)) {
    return skip(StrCat("the package is not for this board (TNSPEC ", options.conf.tnspec, ")"));
  }
  const FirmwareStorage storage = FirmwareStorageOf(options.conf);
  if (storage == FirmwareStorage::kUnknown) {
    return skip(StrCat("TEGRA_OTA_BOOT_DEVICE '", options.conf.tegra_ota_boot_device,
                       "' is neither QSPI nor eMMC: a capsule update cannot be triggered"));
  }
  const std::vector<const FirmwarePackage*> capsules =
      package->Requested(PayloadType::kUefiCapsule);
  for (const FirmwarePackage* capsule : capsules) {
    OTA_RETURN_IF_ERROR(PayloadPathInImage(*capsule).status());
  }
  OTA_ASSIGN_OR_RETURN(BlockDevice esp, FindEsp(options.paths, options.boot_disk));
  OTA_RETURN_IF_ERROR(UnmountAllUnder(options.esp_mount_dir, options.mountinfo));
  OTA_ASSIGN_OR_RETURN(
      MountedFileSystem mounted,
      MountedFileSystem::Mount(esp.node, options.esp_mount_dir, FatMountSpec(options.esp_fs_type)));
  const stdfs::path root = mounted.target();
  StagedCapsule staged;
  staged.storage = storage;
  staged.package_bsp = package_bsp;
  const stdfs::path capsule_dir = root / kCapsuleDirOnEsp;
  OTA_RETURN_IF_ERROR(EmptyCapsuleDir(capsule_dir));
  for (const FirmwarePackage* capsule : capsules) {
    absl::Status copied =
        CopyVerifiedPayload(standby, *capsule, capsule_dir / capsule->payload_name);
    if (absl::IsNotFound(copied) || absl::IsDataLoss(copied)) {
      log::Warning("capsule skipped",
                   {{"payload", capsule->payload_name}, {"reason", std::string(copied.message())}});
      continue;
    }
    OTA_RETURN_IF_ERROR(copied);
    log::Info("capsule staged on the ESP",
              {{"payload", capsule->payload_name}, {"esp", esp.node.string()}});
    ++staged.capsules;
  }
  if (staged.capsules == 0) {
    OTA_RETURN_IF_ERROR(mounted.SyncAndUnmount());
    return skip("no requested UEFI capsule could be staged");
  }
  OTA_ASSIGN_OR_RETURN(staged.launcher_updated,
                       UpdateLauncher(standby, *package, root, options.firmware_bsp));
  OTA_RETURN_IF_ERROR(mounted.SyncAndUnmount());
  return Result(staged);
}

absl::Status TriggerCapsuleUpdate(const StagedCapsule& staged, const CapsuleOptions& options) {
  const EfiVariable trigger = CapsuleTriggerVariable();
  if (staged.storage == FirmwareStorage::kQspi) {
    return WriteEfivarfsVariable(options.efivars_dir, kOsIndicationsVariable, trigger,
                                 options.mountinfo);
  }
  if (staged.storage != FirmwareStorage::kEmmc) {
    return absl::FailedPreconditionError("capsule trigger: unknown firmware storage");
  }
  OTA_ASSIGN_OR_RETURN(BlockDevice esp, FindEsp(options.paths, options.internal_emmc_disk));
  OTA_RETURN_IF_ERROR(UnmountAllUnder(options.esp_mount_dir, options.mountinfo));
  OTA_ASSIGN_OR_RETURN(
      MountedFileSystem mounted,
      MountedFileSystem::Mount(esp.node, options.esp_mount_dir, FatMountSpec(options.esp_fs_type)));
  {
    OTA_ASSIGN_OR_RETURN(fs::RootedDir root, fs::RootedDir::Open(mounted.target()));
    OTA_RETURN_IF_ERROR(WriteEspVariable(root, kOsIndicationsVariable, trigger));
  }
  return mounted.SyncAndUnmount();
}

absl::Status ClearStagedCapsules(const CapsuleOptions& options) {
  absl::StatusOr<BlockDevice> esp = FindEsp(options.paths, options.boot_disk);
  if (!esp.ok()) return absl::OkStatus();
  OTA_RETURN_IF_ERROR(UnmountAllUnder(options.esp_mount_dir, options.mountinfo));
  OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted,
                       MountedFileSystem::Mount(esp->node, options.esp_mount_dir,
                                                FatMountSpec(options.esp_fs_type)));
  std::error_code ec;
  if (stdfs::exists(mounted.target() / kCapsuleDirOnEsp, ec)) {
    OTA_RETURN_IF_ERROR(EmptyCapsuleDir(mounted.target() / kCapsuleDirOnEsp));
  }
  return mounted.SyncAndUnmount();
}

}  // namespace ota::boot
