#include "otaclient/boot/efi_var.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"
#include "otaclient/boot/slot_layout.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

constexpr size_t kMaxVariableBytes = size_t{64} * 1024;
constexpr unsigned long kEfivarfsFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME;

// Clears FS_IMMUTABLE_FL on an existing variable file (efivarfs marks most variables immutable
// so that a stray `rm` cannot brick a machine). Files without attributes are fine.
absl::Status ClearImmutable(const stdfs::path& file) {
  fs::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("open ", file.string()));
  }
  int flags = 0;
  if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) {
    if (errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("read the attributes of ", file.string()));
  }
  if ((flags & FS_IMMUTABLE_FL) == 0) return absl::OkStatus();
  flags &= ~FS_IMMUTABLE_FL;
  if (::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0) {
    return ErrnoStatus(errno, StrCat("clear the immutable attribute of ", file.string()));
  }
  log::Info("cleared the immutable attribute of an EFI variable", {{"file", file.string()}});
  return absl::OkStatus();
}

// What is mounted exactly at `dir` (the top of the stack), if anything.
absl::StatusOr<std::optional<MountinfoEntry>> MountAt(const stdfs::path& dir,
                                                      const stdfs::path& mountinfo) {
  OTA_ASSIGN_OR_RETURN(std::vector<MountinfoEntry> mounts, ReadMountinfo(mountinfo));
  const std::string wanted = NormalizeMountPoint(dir.string());
  std::optional<MountinfoEntry> found;
  for (MountinfoEntry& entry : mounts) {
    if (NormalizeMountPoint(entry.mount_point) == wanted) found = std::move(entry);
  }
  return found;
}

// Undoes what was done to make efivarfs writable, on every path out of the write.
class EfivarfsAccess {
 public:
  enum class Undo { kNothing, kRemountReadOnly, kUnmount };
  EfivarfsAccess(stdfs::path dir, Undo undo) : dir_(std::move(dir)), undo_(undo) {}
  EfivarfsAccess(const EfivarfsAccess&) = delete;
  EfivarfsAccess& operator=(const EfivarfsAccess&) = delete;
  ~EfivarfsAccess() {
    if (undo_ == Undo::kRemountReadOnly &&
        ::mount("efivarfs", dir_.c_str(), "efivarfs", MS_REMOUNT | MS_RDONLY | kEfivarfsFlags,
                nullptr) != 0) {
      log::Warning("could not remount efivarfs read-only",
                   {{"dir", dir_.string()}, {"error", ErrnoText(errno)}});
    }
    if (undo_ == Undo::kUnmount && ::umount2(dir_.c_str(), 0) != 0) {
      log::Warning("could not unmount efivarfs",
                   {{"dir", dir_.string()}, {"error", ErrnoText(errno)}});
    }
  }

 private:
  stdfs::path dir_;
  Undo undo_;
};

}  // namespace

std::string EncodeEfiVariable(const EfiVariable& variable) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((variable.attributes >> (8 * i)) & 0xff);
  out += variable.data;
  return out;
}

absl::StatusOr<EfiVariable> ParseEfiVariable(std::string_view bytes) {
  if (bytes.size() < 4) {
    return absl::InvalidArgumentError(
        StrCat("EFI variable of ", bytes.size(), " bytes: no 4-byte attribute word"));
  }
  if (bytes.size() > kMaxVariableBytes) {
    return absl::InvalidArgumentError(
        StrCat("EFI variable of ", bytes.size(), " bytes: too large"));
  }
  EfiVariable variable;
  for (int i = 3; i >= 0; --i) {
    variable.attributes = (variable.attributes << 8) | static_cast<unsigned char>(bytes[i]);
  }
  variable.data = std::string(bytes.substr(4));
  return variable;
}

EfiVariable CapsuleTriggerVariable() {
  EfiVariable variable;
  variable.attributes =
      kEfiVariableNonVolatile | kEfiVariableBootserviceAccess | kEfiVariableRuntimeAccess;
  variable.data.assign(8, '\0');
  for (int i = 0; i < 8; ++i) {
    variable.data[i] = static_cast<char>((kOsIndicationsFileCapsuleDelivery >> (8 * i)) & 0xff);
  }
  return variable;
}

absl::StatusOr<uint64_t> OsIndicationsValue(const EfiVariable& variable) {
  if (variable.data.size() != 8) {
    return absl::InvalidArgumentError(
        StrCat("OsIndications holds ", variable.data.size(), " bytes, expected 8"));
  }
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(variable.data[i]);
  return value;
}

absl::Status WriteEfivarfsVariable(const stdfs::path& efivars_dir, std::string_view name,
                                   const EfiVariable& variable, const stdfs::path& mountinfo) {
  const std::string payload = EncodeEfiVariable(variable);
  const stdfs::path file = efivars_dir / std::string(name);
  OTA_ASSIGN_OR_RETURN(std::optional<MountinfoEntry> mounted, MountAt(efivars_dir, mountinfo));
  const bool is_efivarfs = mounted.has_value() && mounted->fs_type == "efivarfs";
  if (!is_efivarfs && mounted.has_value()) {
    return absl::FailedPreconditionError(StrCat(efivars_dir.string(), " holds ", mounted->fs_type,
                                                ", not efivarfs: refusing to write ", name));
  }
  if (!is_efivarfs &&
      NormalizeMountPoint(efivars_dir.string()) != NormalizeMountPoint(kDefaultEfivarsDir)) {
    // A stand-in directory (tests): an ordinary atomic file write.
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(file, payload, 0644));
    log::Info("EFI variable written", {{"file", file.string()}, {"bytes", StrCat(payload.size())}});
    return absl::OkStatus();
  }
  EfivarfsAccess::Undo undo = EfivarfsAccess::Undo::kNothing;
  if (!is_efivarfs) {
    if (::mount("efivarfs", efivars_dir.c_str(), "efivarfs", kEfivarfsFlags, nullptr) != 0) {
      return ErrnoStatus(errno, StrCat("mount efivarfs on ", efivars_dir.string()));
    }
    undo = EfivarfsAccess::Undo::kUnmount;
  } else {
    struct statvfs st;
    if (::statvfs(efivars_dir.c_str(), &st) != 0) {
      return ErrnoStatus(errno, StrCat("statvfs ", efivars_dir.string()));
    }
    if ((st.f_flag & ST_RDONLY) != 0) {
      if (::mount("efivarfs", efivars_dir.c_str(), "efivarfs", MS_REMOUNT | kEfivarfsFlags,
                  nullptr) != 0) {
        return ErrnoStatus(errno, StrCat("remount efivarfs read-write on ", efivars_dir.string()));
      }
      undo = EfivarfsAccess::Undo::kRemountReadOnly;
    }
  }
  EfivarfsAccess access(efivars_dir, undo);
  OTA_RETURN_IF_ERROR(ClearImmutable(file));
  // efivarfs replaces the variable with each write (no O_TRUNC: it has no truncate).
  fs::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", file.string()));
  const ssize_t written = ::write(fd.get(), payload.data(), payload.size());
  if (written < 0) return ErrnoStatus(errno, StrCat("write ", file.string()));
  if (static_cast<size_t>(written) != payload.size()) {
    return absl::InternalError(
        StrCat("write ", file.string(), ": ", written, " of ", payload.size(), " bytes written"));
  }
  log::Info("EFI variable written", {{"file", file.string()}, {"bytes", StrCat(payload.size())}});
  return absl::OkStatus();
}

absl::Status WriteEspVariable(fs::RootedDir& esp, std::string_view name,
                              const EfiVariable& variable) {
  OTA_RETURN_IF_ERROR(esp.MakeDirs(kEspVariablesDir));
  fs::RootedDir::FileAttrs attrs;
  attrs.mode = 0644;
  attrs.uid = ::geteuid();
  attrs.gid = ::getegid();
  const std::string path = StrCat(kEspVariablesDir, "/", name);
  OTA_RETURN_IF_ERROR(esp.WriteFileDurably(path, EncodeEfiVariable(variable), attrs));
  log::Info("EFI variable written on the ESP", {{"file", esp.Describe(path)}});
  return absl::OkStatus();
}

}  // namespace ota::boot
