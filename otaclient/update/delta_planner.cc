#include "otaclient/update/delta_planner.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>

#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/update/parallel.h"

namespace ota::update {
namespace {

// Top-level directories of the running system that hold no image content.
constexpr std::array<std::string_view, 8> kSkippedTopLevel = {"proc", "sys", "dev",   "run",
                                                              "tmp",  "mnt", "media", "lost+found"};
constexpr int kMaxWalkDepth = 128;
// Files up to this size are read whole into the worker's buffer, hashed, and (when needed)
// written out from that same buffer; larger ones are streamed in chunks of this size.
constexpr size_t kBufferBytes = 1 << 20;
// Regular files of one directory handed out per work item, so that a huge directory
// (/usr/lib) is spread over the threads too.
constexpr size_t kFilesPerItem = 64;
constexpr size_t kDirentBufferBytes = 32 << 10;

struct DirEntryInfo {
  std::string name;
  unsigned char type;  // DT_*
};

// Lists a directory (without . and ..) from an fd; the fd stays open and unmoved.
absl::StatusOr<std::vector<DirEntryInfo>> ListDir(int dir_fd, const std::string& what) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoStatus(errno, StrCat("dup ", what));
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(dup_fd), &::closedir);
  if (!dir) {
    int err = errno;
    ::close(dup_fd);
    return ErrnoStatus(err, StrCat("opendir ", what));
  }
  ::rewinddir(dir.get());
  std::vector<DirEntryInfo> out;
  errno = 0;
  while (struct dirent* de = ::readdir(dir.get())) {
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = de->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
      }
    }
    out.push_back({std::string(name), type});
  }
  if (errno != 0) return ErrnoStatus(errno, StrCat("readdir ", what));
  return out;
}

// SHA-256 with an explicitly fetched implementation: re-initialising a context for it costs
// ~0.3 µs, against ~1 µs with EVP_sha256()'s implicit fetch on every init (OpenSSL 3), which
// matters when hashing 300k tiny files.
class ReusableSha256 {
 public:
  ReusableSha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {}

  void Init() { EVP_DigestInit_ex2(ctx_.get(), Md(), nullptr); }
  void Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  crypto::Sha256Digest Final() {
    crypto::Sha256Digest out{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), out.data(), &len);
    return out;
  }

 private:
  static const EVP_MD* Md() {
    // Fetched once for the process and never freed (still reachable: not a leak).
    static const EVP_MD* const md = [] {
      const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
      return fetched != nullptr ? fetched : EVP_sha256();
    }();
    return md;
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// Per-worker scratch state, reused for every file the worker handles.
struct Scratch {
  std::vector<char> buffer;
  std::vector<uint64_t> dirents;  // uint64_t for struct dirent64's alignment
  ReusableSha256 sha;

  char* Buffer() {
    if (buffer.empty()) buffer.resize(kBufferBytes);
    return buffer.data();
  }
};

struct HashedFile {
  crypto::Sha256Digest digest;
  bool in_buffer;  // all `size` bytes are in Scratch::buffer
};

// Hashes the first `size` bytes of `fd` (read from offset 0). nullopt when the file turns out
// shorter or unreadable: it changed under us and is no source. Only bytes read are hashed, so
// whatever the file does meanwhile, the digest is that of the bytes in hand.
std::optional<HashedFile> HashOpenFile(int fd, uint64_t size, Scratch& scratch,
                                       ProgressCounters& counters) {
  char* buf = scratch.Buffer();
  scratch.sha.Init();
  const bool in_buffer = size <= kBufferBytes;
  if (!in_buffer) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint64_t done = 0;
  size_t filled = 0;  // bytes of the current chunk in `buf`
  while (done < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size - done, kBufferBytes - filled));
    ssize_t n = ::pread(fd, buf + filled, want, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    done += static_cast<uint64_t>(n);
    filled += static_cast<size_t>(n);
    if (filled == kBufferBytes || done == size) {
      scratch.sha.Update(buf, filled);
      if (!in_buffer) filled = 0;
    }
  }
  counters.delta_files_hashed.fetch_add(1, std::memory_order_relaxed);
  counters.delta_bytes_hashed.fetch_add(size, std::memory_order_relaxed);
  return HashedFile{scratch.sha.Final(), in_buffer};
}

// A new file `name` in the resources dir, created exclusively (never through a symlink).
absl::StatusOr<fs::UniqueFd> CreateResource(int res_fd, const std::string& name,
                                            const std::string& what) {
  for (int attempt = 0;; ++attempt) {
    fs::UniqueFd out(
        ::openat(res_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (out.valid()) return out;
    // A leftover of this name was discarded by the resume pass; one appearing since is stale.
    if (errno != EEXIST || attempt > 0) return ErrnoStatus(errno, StrCat("create ", what));
    ::unlinkat(res_fd, name.c_str(), 0);
  }
}

absl::Status CloseChecked(fs::UniqueFd& fd, const std::string& what) {
  if (::close(fd.release()) != 0 && errno != EINTR) {
    return ErrnoStatus(errno, StrCat("close ", what));
  }
  return absl::OkStatus();
}

// Writes bytes already hashed (the worker's buffer) as resource `name`. No re-verification:
// the bytes written are the bytes whose digest names the file.
absl::Status WriteResource(int res_fd, const std::string& name, const std::string& what,
                           const char* data, size_t size) {
  OTA_ASSIGN_OR_RETURN(fs::UniqueFd out, CreateResource(res_fd, name, what));
  absl::Status st = fs::WriteAll(out.get(), data, size, what);
  if (st.ok()) st = CloseChecked(out, what);
  if (!st.ok()) ::unlinkat(res_fd, name.c_str(), 0);
  return st;
}

// Copies the first `size` bytes of `src` into resource `name`, hashing exactly what is written.
// false (and nothing left behind) when that is not `expected`: the live file changed between
// the hashing pass and this copy.
absl::StatusOr<bool> CopyResourceVerified(int src, uint64_t size,
                                          const crypto::Sha256Digest& expected, int res_fd,
                                          const std::string& name, const std::string& what,
                                          Scratch& scratch) {
  OTA_ASSIGN_OR_RETURN(fs::UniqueFd out, CreateResource(res_fd, name, what));
  auto discard = [&](absl::Status st) -> absl::StatusOr<bool> {
    out.Reset();
    ::unlinkat(res_fd, name.c_str(), 0);
    if (!st.ok()) return st;
    return false;
  };
  char* buf = scratch.Buffer();
  scratch.sha.Init();
  uint64_t done = 0;
  while (done < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size - done, kBufferBytes));
    ssize_t n = ::pread(src, buf, want, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return discard(absl::OkStatus());  // shrank: changed under us
    scratch.sha.Update(buf, static_cast<size_t>(n));
    if (absl::Status st = fs::WriteAll(out.get(), buf, static_cast<size_t>(n), what); !st.ok()) {
      return discard(st);
    }
    done += static_cast<uint64_t>(n);
  }
  if (scratch.sha.Final() != expected) return discard(absl::OkStatus());
  if (absl::Status st = CloseChecked(out, what); !st.ok()) return discard(st);
  return true;
}

// An open directory of the active slot, shared by the work items below it.
struct DirNode {
  fs::UniqueFd fd;
  std::string rel;  // relative to the active root, for messages
  int depth = 0;
};

// One unit of the active-slot walk: list a directory (`subdir` of `dir`, or `dir` itself when
// `subdir` is empty), or hash some regular files of `dir`.
struct WalkItem {
  std::shared_ptr<const DirNode> dir;
  std::string subdir;
  std::vector<std::string> files;
};

bool SkippedAtTop(std::string_view name) {
  return name == kResourcesDir || std::find(kSkippedTopLevel.begin(), kSkippedTopLevel.end(),
                                            name) != kSkippedTopLevel.end();
}

std::string JoinRel(std::string_view dir, std::string_view name) {
  return dir.empty() ? std::string(name) : StrCat(dir, "/", name);
}

// The state of one PlanDelta call shared by its workers.
class Planner {
 public:
  Planner(const ContentIndex& index, const fs::RootedDir& active, fs::RootedDir& standby,
          const DeltaOptions& options, ProgressCounters& counters)
      : index_(index),
        active_(active),
        standby_(standby),
        options_(options),
        counters_(counters),
        threads_(std::max(options.hash_threads, 1)),
        scratch_(static_cast<size_t>(threads_)),
        state_(index.size()),
        remaining_(index.size_slots()) {
    for (size_t s = 0; s < index.size_slots(); ++s) {
      remaining_[s].store(index.contents_with_size(s));
    }
  }

  absl::StatusOr<DeltaResult> Run() {
    OTA_RETURN_IF_ERROR(standby_.MakeDirs(kResourcesDir, 0700));
    OTA_ASSIGN_OR_RETURN(res_fd_, standby_.OpenDir(kResourcesDir));
    OTA_RETURN_IF_ERROR(Resume());
    OTA_RETURN_IF_ERROR(FromStandby());
    // The active slot is walked only for contents still missing: when the resources dir and the
    // standby (in place) supplied everything, there is nothing it could add.
    DeltaResult result;
    result.active_scanned = AnyMissing();
    if (result.active_scanned) {
      OTA_RETURN_IF_ERROR(ScanActive());
    } else {
      log::Info("delta: active slot not scanned, nothing missing");
    }

    const size_t n = index_.size();
    result.present.resize(n);
    for (size_t i = 0; i < n; ++i) {
      result.present[i] = state_[i].load();
      if (result.present[i] == 0) {
        result.missing.push_back(static_cast<uint32_t>(i));
        if (index_[i].size_known) result.missing_bytes += index_[i].size;
      }
    }
    log::Info("delta: done", {{"needed", StrCat(n)},
                              {"resumed", StrCat(counters_.delta_resumed.load())},
                              {"reused", StrCat(counters_.delta_reused.load())},
                              {"from_standby", StrCat(counters_.delta_from_standby.load())},
                              {"hashed_files", StrCat(counters_.delta_files_hashed.load())},
                              {"to_download", StrCat(result.missing.size())}});
    return result;
  }

 private:
  void MarkPresent(size_t slot) {
    const NeededContent& c = index_[slot];
    if (c.size_known) {
      if (auto size_slot = index_.SizeSlot(c.size)) remaining_[*size_slot].fetch_sub(1);
    }
  }

  bool AnyMissing() const {
    return std::any_of(state_.begin(), state_.end(), [](const auto& s) { return s.load() == 0; });
  }

  std::string ResourceWhat(const std::string& name) const {
    return standby_.Describe(StrCat(kResourcesDir, "/", name));
  }

  // 1b. In place: the standby's own files of known content, for contents still missing. Each is
  // copied hashing what is written; a file that changed meanwhile is dropped (the active scan or
  // the download provides it then).
  absl::Status FromStandby() {
    const auto& sources = options_.standby_sources;
    if (sources.empty()) return absl::OkStatus();
    std::vector<size_t> items;
    for (size_t i = 0; i < sources.size(); ++i) {
      std::optional<size_t> slot = index_.Find(sources[i].sha256);
      if (slot.has_value() && state_[*slot].load() == 0) items.push_back(i);
    }
    return ParallelDrain(
        std::move(items), threads_,
        [&](size_t i, WorkQueue<size_t>&, size_t worker) -> absl::Status {
          const StandbySource& source = sources[i];
          const size_t slot = *index_.Find(source.sha256);
          if (state_[slot].exchange(1) != 0) return absl::OkStatus();  // another source won
          absl::StatusOr<fs::UniqueFd> fd = standby_.OpenRead(source.path);
          struct stat st;
          bool copied = false;
          if (fd.ok() && ::fstat(fd->get(), &st) == 0 &&
              (!index_[slot].size_known ||
               static_cast<uint64_t>(st.st_size) == index_[slot].size)) {
            const std::string res_name = crypto::ToHex(source.sha256);
            absl::StatusOr<bool> ok = CopyResourceVerified(
                fd->get(), static_cast<uint64_t>(st.st_size), source.sha256, res_fd_.get(),
                res_name, ResourceWhat(res_name), scratch_[worker]);
            if (!ok.ok()) {
              state_[slot].store(0);
              return WithContext(ok.status(),
                                 StrCat("delta: copying ", standby_.Describe(source.path)));
            }
            copied = *ok;
          }
          if (!copied) {
            state_[slot].store(0);
            return absl::OkStatus();
          }
          MarkPresent(slot);
          counters_.delta_from_standby.fetch_add(1);
          return absl::OkStatus();
        },
        options_.cancel);
  }

  // 1. Files already in the resources dir (an interrupted earlier attempt).
  absl::Status Resume() {
    const std::string res_what = standby_.Describe(kResourcesDir);
    OTA_ASSIGN_OR_RETURN(std::vector<DirEntryInfo> leftovers, ListDir(res_fd_.get(), res_what));
    std::vector<std::pair<std::string, size_t>> to_verify;
    for (const DirEntryInfo& e : leftovers) {
      crypto::Sha256Digest digest;
      std::optional<size_t> slot;
      if (e.type == DT_REG && crypto::FromHex(e.name, &digest) && e.name == crypto::ToHex(digest)) {
        slot = index_.Find(digest);
      }
      if (slot.has_value()) {
        to_verify.emplace_back(e.name, *slot);
      } else {
        OTA_RETURN_IF_ERROR(standby_.RemoveAll(StrCat(kResourcesDir, "/", e.name)));
      }
    }
    std::vector<size_t> items(to_verify.size());
    for (size_t i = 0; i < items.size(); ++i) items[i] = i;
    return ParallelDrain(
        std::move(items), threads_,
        [&](size_t i, WorkQueue<size_t>&, size_t worker) -> absl::Status {
          const auto& [name, slot] = to_verify[i];
          const NeededContent& c = index_[slot];
          bool valid = false;
          fs::UniqueFd fd(::openat(res_fd_.get(), name.c_str(),
                                   O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
          struct stat st;
          if (fd.valid() && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) &&
              (!c.size_known || static_cast<uint64_t>(st.st_size) == c.size)) {
            std::optional<HashedFile> hashed = HashOpenFile(
                fd.get(), static_cast<uint64_t>(st.st_size), scratch_[worker], counters_);
            valid = hashed.has_value() && hashed->digest == c.sha256;
          }
          if (!valid) {
            log::Warning("delta: discarding invalid resource", {{"path", ResourceWhat(name)}});
            return standby_.RemoveAll(StrCat(kResourcesDir, "/", name));
          }
          state_[slot].store(1);
          MarkPresent(slot);
          counters_.delta_resumed.fetch_add(1);
          return absl::OkStatus();
        },
        options_.cancel);
  }

  // 2. Contents found anywhere on the active slot. The walk never follows a symlink: every
  // directory and file is opened relative to its parent's fd with O_NOFOLLOW, so nothing
  // outside the root is reachable, and each file is opened once, fstat'ed once and, when its
  // size is still wanted, read and hashed.
  absl::Status ScanActive() {
    auto root = std::make_shared<DirNode>();
    root->fd = fs::UniqueFd(
        ::openat(active_.root_fd(), ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root->fd.valid()) return ErrnoStatus(errno, StrCat("open ", active_.Describe("")));
    struct stat root_st;
    if (::fstat(root->fd.get(), &root_st) != 0) {
      return ErrnoStatus(errno, StrCat("stat ", active_.Describe("")));
    }
    root_dev_ = root_st.st_dev;
    std::vector<WalkItem> initial(1);
    initial[0].dir = std::move(root);
    OTA_RETURN_IF_ERROR(ParallelDrain(
        std::move(initial), threads_,
        [&](WalkItem& item, WorkQueue<WalkItem>& queue, size_t worker) -> absl::Status {
          if (!item.files.empty()) return HashFiles(*item.dir, item.files, scratch_[worker]);
          return ListActiveDir(item, queue, scratch_[worker]);
        },
        options_.cancel));
    log::Info("delta: active slot scanned",
              {{"files", StrCat(files_seen_.load())},
               {"hashed_files", StrCat(counters_.delta_files_hashed.load())}});
    return absl::OkStatus();
  }

  absl::Status ListActiveDir(WalkItem& item, WorkQueue<WalkItem>& queue, Scratch& scratch) {
    std::shared_ptr<const DirNode> dir = std::move(item.dir);
    if (!item.subdir.empty()) {
      auto sub = std::make_shared<DirNode>();
      sub->fd = fs::UniqueFd(::openat(dir->fd.get(), item.subdir.c_str(),
                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub->fd.valid()) return absl::OkStatus();  // vanished or not a directory any more
      // Like `find -xdev`: another file system mounted under the slot (a data partition, a
      // tmpfs, a bind mount) is not the slot's content.
      struct stat st;
      if (::fstat(sub->fd.get(), &st) != 0) return absl::OkStatus();
      if (st.st_dev != root_dev_) {
        log::Info("delta: not crossing into another file system",
                  {{"path", active_.Describe(JoinRel(dir->rel, item.subdir))}});
        return absl::OkStatus();
      }
      sub->rel = JoinRel(dir->rel, item.subdir);
      sub->depth = dir->depth + 1;
      dir = std::move(sub);
    }
    if (scratch.dirents.empty()) scratch.dirents.resize(kDirentBufferBytes / sizeof(uint64_t));
    char* buf = reinterpret_cast<char*>(scratch.dirents.data());
    std::vector<std::string> files;
    while (true) {
      ssize_t n = ::getdents64(dir->fd.get(), buf, kDirentBufferBytes);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        log::Warning("delta: skipping unreadable directory",
                     {{"path", active_.Describe(dir->rel)}, {"error", ErrnoText(errno)}});
        break;
      }
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        const auto* de = reinterpret_cast<const struct dirent64*>(buf + off);
        off += de->d_reclen;
        std::string_view name = de->d_name;
        if (name == "." || name == "..") continue;
        unsigned char type = de->d_type;
        if (type == DT_UNKNOWN) {  // file systems without d_type
          struct stat st;
          if (::fstatat(dir->fd.get(), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
          type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (type == DT_REG) {
          files.emplace_back(name);
        } else if (type == DT_DIR && dir->depth < kMaxWalkDepth &&
                   !(dir->depth == 0 && SkippedAtTop(name))) {
          queue.Push(WalkItem{dir, std::string(name), {}});
        }
      }
    }
    files_seen_.fetch_add(files.size(), std::memory_order_relaxed);
    // Hand all but the first batch to other workers; hash the first one here.
    for (size_t start = kFilesPerItem; start < files.size(); start += kFilesPerItem) {
      const size_t end = std::min(files.size(), start + kFilesPerItem);
      queue.Push(WalkItem{dir,
                          {},
                          {std::make_move_iterator(files.begin() + static_cast<ptrdiff_t>(start)),
                           std::make_move_iterator(files.begin() + static_cast<ptrdiff_t>(end))}});
    }
    files.resize(std::min(files.size(), kFilesPerItem));
    return HashFiles(*dir, files, scratch);
  }

  absl::Status HashFiles(const DirNode& dir, const std::vector<std::string>& names,
                         Scratch& scratch) {
    for (const std::string& name : names) {
      if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
        return absl::CancelledError("update cancelled");
      }
      OTA_RETURN_IF_ERROR(HashFile(dir, name, scratch));
    }
    return absl::OkStatus();
  }

  absl::Status HashFile(const DirNode& dir, const std::string& name, Scratch& scratch) {
    // O_NONBLOCK so that a fifo cannot hang us, O_NOCTTY for a tty: both are refused below.
    // O_NOATIME: reading the whole slot must not dirty every inode (needs ownership or
    // CAP_FOWNER; dropped for good on the first EPERM).
    constexpr int kFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    const bool noatime = use_noatime_.load(std::memory_order_relaxed);
    fs::UniqueFd fd(::openat(dir.fd.get(), name.c_str(), kFlags | (noatime ? O_NOATIME : 0)));
    if (!fd.valid() && noatime && errno == EPERM) {
      use_noatime_.store(false, std::memory_order_relaxed);
      fd = fs::UniqueFd(::openat(dir.fd.get(), name.c_str(), kFlags));
    }
    if (!fd.valid()) return absl::OkStatus();  // vanished or changed type: not a source
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_dev != root_dev_) {  // a file bind-mounted from elsewhere is no source either
      return absl::OkStatus();
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    std::optional<size_t> size_slot = index_.SizeSlot(size);
    if (!size_slot.has_value() || remaining_[*size_slot].load() == 0) return absl::OkStatus();
    std::optional<HashedFile> hashed = HashOpenFile(fd.get(), size, scratch, counters_);
    if (!hashed.has_value()) return absl::OkStatus();
    std::optional<size_t> slot = index_.Find(hashed->digest);
    if (!slot.has_value() || state_[*slot].exchange(1) != 0) return absl::OkStatus();

    // Claimed: put exactly the bytes that hashed to this digest into the resources dir.
    const std::string res_name = crypto::ToHex(hashed->digest);
    const std::string what = ResourceWhat(res_name);
    if (hashed->in_buffer) {
      if (absl::Status st = WriteResource(res_fd_.get(), res_name, what, scratch.Buffer(), size);
          !st.ok()) {
        state_[*slot].store(0);
        return WithContext(st, StrCat("delta: copying ", active_.Describe(JoinRel(dir.rel, name))));
      }
    } else {
      absl::StatusOr<bool> copied = CopyResourceVerified(fd.get(), size, hashed->digest,
                                                         res_fd_.get(), res_name, what, scratch);
      if (!copied.ok() || !*copied) {
        state_[*slot].store(0);
        if (!copied.ok()) {
          return WithContext(copied.status(),
                             StrCat("delta: copying ", active_.Describe(JoinRel(dir.rel, name))));
        }
        log::Warning("delta: active file changed while copying",
                     {{"path", active_.Describe(JoinRel(dir.rel, name))}});
        return absl::OkStatus();
      }
    }
    MarkPresent(*slot);
    counters_.delta_reused.fetch_add(1);
    return absl::OkStatus();
  }

  const ContentIndex& index_;
  const fs::RootedDir& active_;
  fs::RootedDir& standby_;
  const DeltaOptions& options_;
  ProgressCounters& counters_;
  const int threads_;
  std::vector<Scratch> scratch_;  // one per worker
  // Per ContentIndex slot: 0 = missing, 1 = present (or being copied in by its claimer).
  std::vector<std::atomic<uint8_t>> state_;
  // Still-missing contents per size: once zero, files of that size are no longer hashed.
  std::vector<std::atomic<uint32_t>> remaining_;
  fs::UniqueFd res_fd_;
  std::atomic<uint64_t> files_seen_{0};
  std::atomic<bool> use_noatime_{true};
  dev_t root_dev_ = 0;  // the active root's file system: the scan stays on it
};

}  // namespace

std::string ResourcePath(const crypto::Sha256Digest& digest) {
  return StrCat(kResourcesDir, "/", crypto::ToHex(digest));
}

absl::StatusOr<DeltaResult> PlanDelta(const ContentIndex& index, const fs::RootedDir& active,
                                      fs::RootedDir& standby, const DeltaOptions& options,
                                      ProgressCounters& counters) {
  Planner planner(index, active, standby, options, counters);
  return planner.Run();
}

}  // namespace ota::update
