#include "otaclient/update/delta_planner.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <memory>

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

struct Candidate {
  std::string rel;  // relative to the active root
  uint32_t size_slot;
};

// Collects the active slot's regular files whose size is a needed size. Unreadable
// directories are skipped with a warning: the active slot is only a source of reuse.
class ActiveWalker {
 public:
  ActiveWalker(const ContentIndex& index, const fs::RootedDir& active,
               const std::atomic<bool>* cancel)
      : index_(index), active_(active), cancel_(cancel) {}

  absl::StatusOr<std::vector<Candidate>> Walk() {
    std::string rel;
    OTA_RETURN_IF_ERROR(WalkDir(active_.root_fd(), rel, 0));
    return std::move(candidates_);
  }

  uint64_t files_seen() const { return files_seen_; }

 private:
  absl::Status WalkDir(int dir_fd, std::string& rel, int depth) {
    if (cancel_ != nullptr && cancel_->load()) return absl::CancelledError("update cancelled");
    absl::StatusOr<std::vector<DirEntryInfo>> entries = ListDir(dir_fd, active_.Describe(rel));
    if (!entries.ok()) {
      log::Warning("delta: skipping unreadable directory",
                   {{"error", std::string(entries.status().message())}});
      return absl::OkStatus();
    }
    for (const DirEntryInfo& e : *entries) {
      size_t rel_len = rel.size();
      if (!rel.empty()) rel.push_back('/');
      rel.append(e.name);
      if (e.type == DT_DIR) {
        bool skipped = depth == 0 && (e.name == kResourcesDir ||
                                      std::find(kSkippedTopLevel.begin(), kSkippedTopLevel.end(),
                                                e.name) != kSkippedTopLevel.end());
        if (!skipped && depth < kMaxWalkDepth) {
          fs::UniqueFd sub(
              ::openat(dir_fd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          if (sub.valid()) OTA_RETURN_IF_ERROR(WalkDir(sub.get(), rel, depth + 1));
        }
      } else if (e.type == DT_REG) {
        ++files_seen_;
        struct stat st;
        if (::fstatat(dir_fd, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode)) {
          if (auto slot = index_.SizeSlot(static_cast<uint64_t>(st.st_size))) {
            candidates_.push_back({rel, static_cast<uint32_t>(*slot)});
          }
        }
      }
      rel.resize(rel_len);
    }
    return absl::OkStatus();
  }

  const ContentIndex& index_;
  const fs::RootedDir& active_;
  const std::atomic<bool>* cancel_;
  std::vector<Candidate> candidates_;
  uint64_t files_seen_ = 0;
};

absl::StatusOr<crypto::Sha256Digest> HashFd(int fd, const std::string& what,
                                            ProgressCounters& counters) {
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  OTA_ASSIGN_OR_RETURN(crypto::Sha256Digest digest, crypto::Sha256Fd(fd, what));
  counters.delta_files_hashed.fetch_add(1, std::memory_order_relaxed);
  off_t end = ::lseek(fd, 0, SEEK_CUR);
  if (end > 0) counters.delta_bytes_hashed.fetch_add(static_cast<uint64_t>(end));
  return digest;
}

}  // namespace

std::string ResourcePath(const crypto::Sha256Digest& digest) {
  return StrCat(kResourcesDir, "/", crypto::ToHex(digest));
}

absl::StatusOr<DeltaResult> PlanDelta(const ContentIndex& index, const fs::RootedDir& active,
                                      fs::RootedDir& standby, const DeltaOptions& options,
                                      ProgressCounters& counters) {
  const size_t n = index.size();
  // 0 = missing, 1 = present (or being copied in by the thread that claimed it).
  std::vector<std::atomic<uint8_t>> state(n);
  // Still-missing contents per size: once zero, files of that size are no longer hashed.
  std::vector<std::atomic<uint32_t>> remaining(index.size_slots());
  for (size_t s = 0; s < index.size_slots(); ++s) remaining[s].store(index.contents_with_size(s));

  auto mark_present = [&](size_t slot) {
    const NeededContent& c = index[slot];
    if (c.size_known) {
      if (auto size_slot = index.SizeSlot(c.size)) remaining[*size_slot].fetch_sub(1);
    }
  };

  // 1. Resume from the resources dir.
  OTA_RETURN_IF_ERROR(standby.MakeDirs(kResourcesDir, 0700));
  OTA_ASSIGN_OR_RETURN(fs::UniqueFd res_fd, standby.OpenDir(kResourcesDir));
  const std::string res_what = standby.Describe(kResourcesDir);
  OTA_ASSIGN_OR_RETURN(std::vector<DirEntryInfo> leftovers, ListDir(res_fd.get(), res_what));
  std::vector<std::pair<std::string, size_t>> to_verify;
  for (const DirEntryInfo& e : leftovers) {
    crypto::Sha256Digest digest;
    std::optional<size_t> slot;
    if (e.type == DT_REG && crypto::FromHex(e.name, &digest) && e.name == crypto::ToHex(digest)) {
      slot = index.Find(digest);
    }
    if (slot.has_value()) {
      to_verify.emplace_back(e.name, *slot);
    } else {
      OTA_RETURN_IF_ERROR(standby.RemoveAll(StrCat(kResourcesDir, "/", e.name)));
    }
  }
  OTA_RETURN_IF_ERROR(ParallelFor(
      to_verify.size(), options.hash_threads,
      [&](size_t i) -> absl::Status {
        const auto& [name, slot] = to_verify[i];
        const NeededContent& c = index[slot];
        std::string rel = StrCat(kResourcesDir, "/", name);
        bool valid = false;
        fs::UniqueFd fd(::openat(res_fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        struct stat st;
        if (fd.valid() && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) &&
            (!c.size_known || static_cast<uint64_t>(st.st_size) == c.size)) {
          absl::StatusOr<crypto::Sha256Digest> digest =
              HashFd(fd.get(), standby.Describe(rel), counters);
          valid = digest.ok() && *digest == c.sha256;
        }
        if (!valid) {
          log::Warning("delta: discarding invalid resource", {{"path", standby.Describe(rel)}});
          return standby.RemoveAll(rel);
        }
        state[slot].store(1);
        mark_present(slot);
        counters.delta_resumed.fetch_add(1);
        return absl::OkStatus();
      },
      options.cancel));

  // 2. Reuse contents from anywhere on the active slot.
  ActiveWalker walker(index, active, options.cancel);
  OTA_ASSIGN_OR_RETURN(std::vector<Candidate> candidates, walker.Walk());
  log::Info("delta: active slot scanned", {{"files", StrCat(walker.files_seen())},
                                           {"size_candidates", StrCat(candidates.size())}});
  OTA_RETURN_IF_ERROR(ParallelFor(
      candidates.size(), options.hash_threads,
      [&](size_t i) -> absl::Status {
        const Candidate& cand = candidates[i];
        if (remaining[cand.size_slot].load() == 0) return absl::OkStatus();
        absl::StatusOr<fs::UniqueFd> fd = active.OpenRead(cand.rel);
        if (!fd.ok()) return absl::OkStatus();  // vanished or changed type: not a source
        absl::StatusOr<crypto::Sha256Digest> digest =
            HashFd(fd->get(), active.Describe(cand.rel), counters);
        if (!digest.ok()) return absl::OkStatus();
        std::optional<size_t> slot = index.Find(*digest);
        if (!slot.has_value() || state[*slot].exchange(1) != 0) return absl::OkStatus();
        // Claimed: copy it in, then re-verify the copy (the live file may have changed).
        std::string rel = ResourcePath(*digest);
        if (::lseek(fd->get(), 0, SEEK_SET) != 0) {
          state[*slot].store(0);
          return absl::OkStatus();
        }
        fs::RootedDir::FileAttrs attrs;
        attrs.mode = 0600;
        if (absl::Status st = standby.CopyFileFrom(fd->get(), rel, attrs); !st.ok()) {
          state[*slot].store(0);
          return WithContext(st, StrCat("delta: copying ", active.Describe(cand.rel)));
        }
        absl::StatusOr<fs::UniqueFd> copy = standby.OpenRead(rel);
        if (!copy.ok()) return copy.status();
        absl::StatusOr<crypto::Sha256Digest> copied =
            crypto::Sha256Fd(copy->get(), standby.Describe(rel));
        if (!copied.ok() || *copied != *digest) {
          log::Warning("delta: active file changed while copying",
                       {{"path", active.Describe(cand.rel)}});
          OTA_RETURN_IF_ERROR(standby.RemoveAll(rel));
          state[*slot].store(0);
          return absl::OkStatus();
        }
        mark_present(*slot);
        counters.delta_reused.fetch_add(1);
        return absl::OkStatus();
      },
      options.cancel));

  DeltaResult result;
  result.present.resize(n);
  for (size_t i = 0; i < n; ++i) {
    result.present[i] = state[i].load();
    if (result.present[i] == 0) {
      result.missing.push_back(static_cast<uint32_t>(i));
      if (index[i].size_known) result.missing_bytes += index[i].size;
    }
  }
  log::Info("delta: done", {{"needed", StrCat(n)},
                            {"resumed", StrCat(counters.delta_resumed.load())},
                            {"reused", StrCat(counters.delta_reused.load())},
                            {"hashed_files", StrCat(counters.delta_files_hashed.load())},
                            {"to_download", StrCat(result.missing.size())}});
  return result;
}

}  // namespace ota::update
