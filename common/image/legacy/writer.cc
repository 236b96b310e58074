#include "common/image/legacy/writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/fs/fs.h"
#include "common/image/legacy/list_lines.h"
#include "common/image/legacy/metadata.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image {
namespace {

namespace stdfs = std::filesystem;

// tier4's generator defaults: compress files of at least 16 KiB when uncompressed/compressed is
// at least 1.25, zstd level 10.
constexpr uint64_t kCompressMinSize = uint64_t{16} * 1024;
constexpr uint64_t kCompressRatioNum = 5;  // size / compressed >= 5/4
constexpr uint64_t kCompressRatioDen = 4;
constexpr int kZstdLevel = 10;
constexpr int kZstdWorkers = 2;
constexpr size_t kIoBufferSize = 1 << 20;

constexpr std::string_view kDataDir = "data";
constexpr std::string_view kCompressedDir = "data.zst";
constexpr std::string_view kDirsFile = "dirs.txt";
constexpr std::string_view kSymlinksFile = "symlinks.txt";
constexpr std::string_view kRegularsFile = "regulars.txt";
constexpr std::string_view kPersistentsFile = "persistents.txt";
constexpr std::string_view kTotalSizeFile = "total_regular_size.txt";
constexpr std::string_view kCertFile = "sign.pem";
constexpr std::string_view kMetadataFile = "metadata.jwt";

constexpr std::array<std::string_view, 4> kDefaultPersistents = {
    "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/netplan"};

// The generator's ignore list, gitignore-style: a trailing '/' matches directories only; a
// pattern with a leading '/' is anchored at the rootfs root and matched against the whole path
// ('*' not crossing '/'); any other pattern matches an entry's name at any depth.
struct IgnoreRule {
  const char* pattern;
  bool anchored;
  bool dirs_only;
};
constexpr std::array<IgnoreRule, 11> kIgnoreRules = {{
    {"__pycache__", false, true},
    {".git", false, true},
    {".ssh", false, true},
    {"boot/grub", true, true},
    {"boot/ota", true, true},
    {"boot/initrd.img-*.old-dkms", true, false},
    {"boot/initrd.img.old", true, false},
    {"boot/initrd.img", true, false},
    {"boot/vmlinuz.old", true, false},
    {"boot/vmlinuz", true, false},
    {"tmp", true, false},
}};

// `rel_path` is relative to the rootfs ("boot/vmlinuz"), `name` its last component.
bool IsIgnored(const std::string& rel_path, const std::string& name, bool is_dir) {
  for (const IgnoreRule& rule : kIgnoreRules) {
    if (rule.dirs_only && !is_dir) continue;
    const std::string& subject = rule.anchored ? rel_path : name;
    if (::fnmatch(rule.pattern, subject.c_str(), FNM_PATHNAME) == 0) return true;
  }
  return false;
}

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
};

struct DigestHash {
  size_t operator()(const crypto::Sha256Digest& d) const {
    size_t h = 0;
    std::memcpy(&h, d.data(), sizeof(h));
    return h;
  }
};

void AppendLine(std::string& list, std::string_view line) {
  if (!list.empty()) list.push_back('\n');
  list.append(line);
}

absl::Status RejectNewline(std::string_view text, std::string_view what, std::string_view path) {
  if (text.find('\n') != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat(what, " of ", path,
                                             " contains a newline, which the list files cannot "
                                             "represent; rename it or leave it out of the rootfs"));
  }
  return absl::OkStatus();
}

// Lists a directory's entries (without "." and ".."), sorted bytewise for a deterministic image.
absl::StatusOr<std::vector<std::string>> ListDir(int dir_fd, std::string_view what) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoStatus(errno, StrCat("dup fd of ", what));
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(dup_fd));
  if (dir == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return ErrnoStatus(err, StrCat("opendir ", what));
  }
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) return ErrnoStatus(errno, StrCat("readdir ", what));
      break;
    }
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Walks the rootfs and produces the list files and the data/ (and data.zst/) trees.
class ImageBuilder {
 public:
  explicit ImageBuilder(const BuildOptions& options)
      : options_(options), buffer_(kIoBufferSize), zstd_out_(ZSTD_CStreamOutSize()) {}

  absl::Status Run(BuildSummary& summary) {
    fs::UniqueFd root_fd(::open(options_.rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd.valid()) {
      return ErrnoStatus(errno, StrCat("open rootfs ", options_.rootfs.string()));
    }

    stdfs::path data_path = options_.out_dir / kDataDir;
    if (::mkdir(data_path.c_str(), 0755) != 0) {
      return ErrnoStatus(errno, StrCat("mkdir ", data_path.string()));
    }
    data_root_fd_ = fs::UniqueFd(::open(data_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!data_root_fd_.valid()) return ErrnoStatus(errno, StrCat("open ", data_path.string()));

    if (options_.compress) {
      stdfs::path compressed_path = options_.out_dir / kCompressedDir;
      if (::mkdir(compressed_path.c_str(), 0755) != 0) {
        return ErrnoStatus(errno, StrCat("mkdir ", compressed_path.string()));
      }
      compressed_fd_ =
          fs::UniqueFd(::open(compressed_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!compressed_fd_.valid()) {
        return ErrnoStatus(errno, StrCat("open ", compressed_path.string()));
      }
      zstd_.reset(ZSTD_createCCtx());
      if (zstd_ == nullptr) return absl::ResourceExhaustedError("ZSTD_createCCtx failed");
    }

    OTA_RETURN_IF_ERROR(WalkDir(root_fd.get(), "", data_root_fd_.get()));
    summary_.total_regular_size = total_regular_size_;
    summary = summary_;
    return absl::OkStatus();
  }

  const std::string& dirs_txt() const { return dirs_txt_; }
  const std::string& symlinks_txt() const { return symlinks_txt_; }
  const std::string& regulars_txt() const { return regulars_txt_; }

 private:
  struct HardLinkSource {
    std::string data_rel_path;  // relative to out/data
    crypto::Sha256Digest sha256{};
    uint64_t size = 0;
    bool compressed = false;
  };

  // `path` is the entry's absolute image path ("" for the root itself).
  absl::Status WalkDir(int dir_fd, const std::string& path, int data_dir_fd) {
    std::string shown = path.empty() ? options_.rootfs.string() : path;
    OTA_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir_fd, shown));
    for (const std::string& name : names) {
      std::string child_path = StrCat(path, "/", name);
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoStatus(errno, StrCat("lstat ", child_path));
      }
      if (IsIgnored(child_path.substr(1), name, S_ISDIR(st.st_mode))) continue;
      OTA_RETURN_IF_ERROR(RejectNewline(name, "the name", child_path));
      OTA_RETURN_IF_ERROR(ValidateImagePath(child_path));

      if (S_ISDIR(st.st_mode)) {
        AppendLine(dirs_txt_, FormatDirLine(st.st_mode, st.st_uid, st.st_gid, child_path));
        ++summary_.dirs;
        // The data/ copy is for the web server: readable by anyone, owned by the builder.
        if (::mkdirat(data_dir_fd, name.c_str(), 0755) != 0) {
          return ErrnoStatus(errno, StrCat("mkdir data", child_path));
        }
        fs::UniqueFd child_fd(
            ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!child_fd.valid()) return ErrnoStatus(errno, StrCat("open ", child_path));
        fs::UniqueFd child_data_fd(
            ::openat(data_dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!child_data_fd.valid()) return ErrnoStatus(errno, StrCat("open data", child_path));
        OTA_RETURN_IF_ERROR(WalkDir(child_fd.get(), child_path, child_data_fd.get()));
      } else if (S_ISLNK(st.st_mode)) {
        OTA_ASSIGN_OR_RETURN(std::string target, ReadLink(dir_fd, name, child_path, st));
        OTA_RETURN_IF_ERROR(RejectNewline(target, "the symlink target", child_path));
        AppendLine(symlinks_txt_,
                   FormatSymlinkLine(st.st_mode, st.st_uid, st.st_gid, child_path, target));
        ++summary_.symlinks;
      } else if (S_ISREG(st.st_mode)) {
        OTA_RETURN_IF_ERROR(AddRegular(dir_fd, data_dir_fd, name, child_path, st));
      } else {
        // tier4's generator lists only dirs, symlinks and regular files.
        log::Warning("skipping special file (fifo, socket or device)", {{"path", child_path}});
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ReadLink(int dir_fd, const std::string& name, const std::string& path,
                                       const struct stat& st) {
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1, '\0');
    while (true) {
      ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (n < 0) return ErrnoStatus(errno, StrCat("readlink ", path));
      if (static_cast<size_t>(n) < target.size()) {
        target.resize(static_cast<size_t>(n));
        return target;
      }
      target.resize(target.size() * 2);  // grew since lstat
    }
  }

  absl::Status AddRegular(int dir_fd, int data_dir_fd, const std::string& name,
                          const std::string& path, const struct stat& st) {
    HardLinkSource info;
    bool reused = false;
    std::pair<dev_t, ino_t> inode_key{st.st_dev, st.st_ino};
    if (st.st_nlink > 1) {
      if (auto it = hard_links_.find(inode_key); it != hard_links_.end()) {
        // Same inode already copied: link the data/ copy instead of reading it again.
        info = it->second;
        if (::linkat(data_root_fd_.get(), info.data_rel_path.c_str(), data_dir_fd, name.c_str(),
                     0) != 0) {
          return ErrnoStatus(errno, StrCat("link data/", info.data_rel_path, " to data", path));
        }
        reused = true;
      }
    }
    if (!reused) {
      OTA_RETURN_IF_ERROR(CopyAndHash(dir_fd, data_dir_fd, name, path, st, info));
      if (options_.compress && info.size >= kCompressMinSize) {
        OTA_ASSIGN_OR_RETURN(info.compressed, MaybeCompress(data_dir_fd, name, path, info));
      }
      if (st.st_nlink > 1) {
        info.data_rel_path = path.substr(1);
        hard_links_.emplace(inode_key, info);
      }
    }

    std::string inode = st.st_nlink > 1 ? std::to_string(st.st_ino) : std::string();
    AppendLine(regulars_txt_,
               FormatRegularLine(st.st_mode, st.st_uid, st.st_gid,
                                 static_cast<uint32_t>(st.st_nlink), crypto::ToHex(info.sha256),
                                 path, info.size, inode, info.compressed ? "zst" : ""));
    ++summary_.regulars;
    total_regular_size_ += info.size;
    return absl::OkStatus();
  }

  // Streams the file once: hashes it and writes its data/ copy.
  absl::Status CopyAndHash(int dir_fd, int data_dir_fd, const std::string& name,
                           const std::string& path, const struct stat& st, HardLinkSource& info) {
    fs::UniqueFd in(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in.valid()) return ErrnoStatus(errno, StrCat("open ", path));
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    fs::UniqueFd out(::openat(data_dir_fd, name.c_str(),
                              O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    std::string out_what = StrCat("data", path);
    if (!out.valid()) return ErrnoStatus(errno, StrCat("create ", out_what));
    uint64_t size = 0;
    while (true) {
      ssize_t n = ::read(in.get(), buffer_.data(), buffer_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, StrCat("read ", path));
      }
      if (n == 0) break;
      hasher_.Update(buffer_.data(), static_cast<size_t>(n));
      OTA_RETURN_IF_ERROR(
          fs::WriteAll(out.get(), buffer_.data(), static_cast<size_t>(n), out_what));
      size += static_cast<uint64_t>(n);
    }
    info.sha256 = hasher_.Finish();
    if (size != static_cast<uint64_t>(st.st_size)) {
      return absl::AbortedError(StrCat(path, " changed size while the image was built (",
                                       st.st_size, " → ", size, " bytes)"));
    }
    info.size = size;
    return absl::OkStatus();
  }

  // Compresses the data/ copy into data.zst/<sha256>.zst when it shrinks enough. Identical
  // content is compressed once.
  absl::StatusOr<bool> MaybeCompress(int data_dir_fd, const std::string& name,
                                     const std::string& path, const HardLinkSource& info) {
    if (auto it = compressed_by_digest_.find(info.sha256); it != compressed_by_digest_.end()) {
      return it->second;
    }
    std::string blob_name = StrCat(crypto::ToHex(info.sha256), ".zst");
    std::string temp_name = StrCat(".", blob_name, ".tmp");
    OTA_ASSIGN_OR_RETURN(bool keep, CompressTo(data_dir_fd, name, path, temp_name, info.size));
    if (keep) {
      if (::renameat(compressed_fd_.get(), temp_name.c_str(), compressed_fd_.get(),
                     blob_name.c_str()) != 0) {
        return ErrnoStatus(errno, StrCat("rename data.zst/", blob_name));
      }
      ++summary_.compressed_files;
    } else if (::unlinkat(compressed_fd_.get(), temp_name.c_str(), 0) != 0) {
      return ErrnoStatus(errno, StrCat("remove data.zst/", temp_name));
    }
    compressed_by_digest_.emplace(info.sha256, keep);
    return keep;
  }

  // Writes the zstd stream to data.zst/<temp_name>. Returns whether the ratio rule is met; stops
  // early once the output is already too large for it.
  absl::StatusOr<bool> CompressTo(int data_dir_fd, const std::string& name, const std::string& path,
                                  const std::string& temp_name, uint64_t size) {
    fs::UniqueFd in(::openat(data_dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in.valid()) return ErrnoStatus(errno, StrCat("open data", path));
    fs::UniqueFd out(::openat(compressed_fd_.get(), temp_name.c_str(),
                              O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    std::string out_what = StrCat("data.zst/", temp_name);
    if (!out.valid()) return ErrnoStatus(errno, StrCat("create ", out_what));

    ZSTD_CCtx* ctx = zstd_.get();
    ZSTD_CCtx_reset(ctx, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, kZstdLevel);
    // Multithreading is an optional libzstd feature; without it this call fails harmlessly.
    ZSTD_CCtx_setParameter(ctx, ZSTD_c_nbWorkers, kZstdWorkers);
    ZSTD_CCtx_setPledgedSrcSize(ctx, size);

    // size / compressed >= 5/4  <=>  compressed <= floor(size * 4 / 5).
    const uint64_t max_compressed = size * kCompressRatioDen / kCompressRatioNum;
    uint64_t compressed = 0;
    uint64_t read_total = 0;
    while (true) {
      ssize_t n = ::read(in.get(), buffer_.data(), buffer_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, StrCat("read data", path));
      }
      read_total += static_cast<uint64_t>(n);
      const bool last = n == 0;
      ZSTD_inBuffer input{buffer_.data(), static_cast<size_t>(n), 0};
      bool done = false;
      while (!done) {
        ZSTD_outBuffer output{zstd_out_.data(), zstd_out_.size(), 0};
        size_t remaining =
            ZSTD_compressStream2(ctx, &output, &input, last ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(remaining)) {
          return absl::InternalError(
              StrCat("zstd compress ", path, ": ", ZSTD_getErrorName(remaining)));
        }
        OTA_RETURN_IF_ERROR(fs::WriteAll(out.get(), output.dst, output.pos, out_what));
        compressed += output.pos;
        if (compressed > max_compressed) return false;  // can only grow from here
        done = last ? remaining == 0 : input.pos == input.size;
      }
      if (last) break;
    }
    if (read_total != size) {
      return absl::AbortedError(StrCat("data", path, " changed size while compressing"));
    }
    return compressed > 0;
  }

  const BuildOptions& options_;
  fs::UniqueFd data_root_fd_;
  fs::UniqueFd compressed_fd_;
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> zstd_;
  std::vector<char> buffer_;
  std::vector<char> zstd_out_;
  crypto::Sha256 hasher_;
  std::map<std::pair<dev_t, ino_t>, HardLinkSource> hard_links_;
  std::unordered_map<crypto::Sha256Digest, bool, DigestHash> compressed_by_digest_;
  std::string dirs_txt_, symlinks_txt_, regulars_txt_;
  uint64_t total_regular_size_ = 0;
  BuildSummary summary_;
};

absl::Status CheckOutputDir(const BuildOptions& options) {
  std::error_code ec;
  if (!stdfs::is_directory(options.rootfs, ec)) {
    return absl::InvalidArgumentError(
        StrCat("rootfs ", options.rootfs.string(), " is not a directory"));
  }
  stdfs::path rootfs = stdfs::weakly_canonical(options.rootfs, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("resolve ", options.rootfs.string()));
  stdfs::path out = stdfs::weakly_canonical(options.out_dir, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("resolve ", options.out_dir.string()));
  auto [root_end, out_it] = std::mismatch(rootfs.begin(), rootfs.end(), out.begin(), out.end());
  if (root_end == rootfs.end()) {
    return absl::InvalidArgumentError(StrCat("output directory ", options.out_dir.string(),
                                             " is inside the rootfs ", options.rootfs.string()));
  }
  if (stdfs::exists(options.out_dir, ec)) {
    if (!stdfs::is_directory(options.out_dir, ec)) {
      return absl::FailedPreconditionError(
          StrCat("output ", options.out_dir.string(), " exists and is not a directory"));
    }
    if (!stdfs::is_empty(options.out_dir, ec)) {
      return absl::FailedPreconditionError(
          StrCat("output directory ", options.out_dir.string(), " is not empty"));
    }
  } else if (!stdfs::create_directories(options.out_dir, ec)) {
    return ErrnoStatus(ec.value(), StrCat("mkdir ", options.out_dir.string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<SignedFileRef> WriteSignedFile(const stdfs::path& out_dir, std::string_view name,
                                              std::string_view content) {
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(out_dir / name, content, 0644));
  return SignedFileRef{std::string(name), crypto::Sha256Of(content)};
}

// Everything after the output directory was found empty (or created).
absl::StatusOr<BuildSummary> BuildInto(const BuildOptions& options, const std::string& key_pem,
                                       const std::string& cert_pem,
                                       const std::vector<std::string>& persistents) {
  log::Info("building OTA image", {{"rootfs", options.rootfs.string()},
                                   {"out", options.out_dir.string()},
                                   {"compress", options.compress ? "yes" : "no"}});
  ImageBuilder builder(options);
  BuildSummary summary;
  OTA_RETURN_IF_ERROR(builder.Run(summary));

  std::string persistents_txt;
  for (const std::string& path : persistents) {
    AppendLine(persistents_txt, FormatPersistentLine(path));
  }
  summary.persistents = persistents.size();

  MetadataPayload payload;
  OTA_ASSIGN_OR_RETURN(payload.directory,
                       WriteSignedFile(options.out_dir, kDirsFile, builder.dirs_txt()));
  OTA_ASSIGN_OR_RETURN(payload.symboliclink,
                       WriteSignedFile(options.out_dir, kSymlinksFile, builder.symlinks_txt()));
  OTA_ASSIGN_OR_RETURN(payload.regular,
                       WriteSignedFile(options.out_dir, kRegularsFile, builder.regulars_txt()));
  OTA_ASSIGN_OR_RETURN(payload.persistent,
                       WriteSignedFile(options.out_dir, kPersistentsFile, persistents_txt));
  OTA_ASSIGN_OR_RETURN(payload.certificate, WriteSignedFile(options.out_dir, kCertFile, cert_pem));
  std::string total_size = std::to_string(summary.total_regular_size);
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(options.out_dir / kTotalSizeFile, total_size, 0644));
  payload.rootfs_directory = std::string(kDataDir);
  if (options.compress) payload.compressed_rootfs_directory = std::string(kCompressedDir);
  payload.total_regular_size = summary.total_regular_size;

  OTA_ASSIGN_OR_RETURN(std::string jwt, SignMetadataJwt(payload, key_pem));
  // Catch a key that does not belong to the certificate now rather than on every ECU.
  OTA_ASSIGN_OR_RETURN(Metadata signed_metadata, ParseMetadataJwt(jwt));
  if (absl::Status st =
          crypto::VerifySignature(cert_pem, signed_metadata.signed_part, signed_metadata.signature);
      !st.ok()) {
    return absl::InvalidArgumentError(
        StrCat("the signature made with ", options.key_pem.string(), " does not verify with ",
               options.cert_pem.string(), " (key and certificate do not match?): ", st.message()));
  }
  // metadata.jwt last: its presence marks a complete image.
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(options.out_dir / kMetadataFile, jwt, 0644));

  log::Info("OTA image built",
            {{"dirs", std::to_string(summary.dirs)},
             {"symlinks", std::to_string(summary.symlinks)},
             {"regulars", std::to_string(summary.regulars)},
             {"compressed", std::to_string(summary.compressed_files)},
             {"total_regular_size", std::to_string(summary.total_regular_size)}});
  return summary;
}

}  // namespace

absl::StatusOr<BuildSummary> BuildImage(const BuildOptions& options) {
  // Read the inputs first so a typo fails before anything is written.
  OTA_ASSIGN_OR_RETURN(std::string key_pem, fs::ReadFile(options.key_pem));
  OTA_ASSIGN_OR_RETURN(std::string cert_pem, fs::ReadFile(options.cert_pem));
  std::vector<std::string> persistents;
  if (options.persistents_file.has_value()) {
    OTA_ASSIGN_OR_RETURN(persistents, ReadPersistentsFile(*options.persistents_file));
  } else {
    persistents.assign(kDefaultPersistents.begin(), kDefaultPersistents.end());
  }
  OTA_RETURN_IF_ERROR(CheckOutputDir(options));

  absl::StatusOr<BuildSummary> summary = BuildInto(options, key_pem, cert_pem, persistents);
  if (!summary.ok()) {
    // The directory was empty when we started: nothing of value is lost by clearing it, and no
    // half-built image is left to be served by mistake.
    std::error_code ec;
    std::vector<stdfs::path> partial;
    for (const auto& entry : stdfs::directory_iterator(options.out_dir, ec)) {
      partial.push_back(entry.path());
    }
    for (const stdfs::path& path : partial) stdfs::remove_all(path, ec);
  }
  return summary;
}

// Paths given in a persistents file: one per line, either raw ("/etc/hosts") or already in
// list-file form ("'/etc/hosts'"). Blank lines are skipped.
absl::StatusOr<std::vector<std::string>> ReadPersistentsFile(const std::filesystem::path& file) {
  OTA_ASSIGN_OR_RETURN(std::string content, fs::ReadFile(file));
  std::vector<std::string> paths;
  size_t line_number = 0;
  size_t start = 0;
  while (start <= content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    std::string_view line = std::string_view(content).substr(start, end - start);
    start = end + 1;
    ++line_number;
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    absl::Status status;
    if (line.front() == '\'') {
      Manifest parsed;
      status = ParsePersistentLine(line, parsed);
      if (status.ok()) paths.emplace_back(parsed.Str(parsed.persistents.front()));
    } else {
      status = ValidateImagePath(line);
      if (status.ok()) paths.emplace_back(line);
    }
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          StrCat(file.string(), ":", line_number, ": ", status.message()));
    }
  }
  return paths;
}

}  // namespace ota::image
