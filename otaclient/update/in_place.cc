#include "otaclient/update/in_place.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/update/content_index.h"
#include "otaclient/update/parallel.h"

namespace ota::update {
namespace {

constexpr int kMaxDepth = 128;
constexpr std::chrono::seconds kFstrimTimeout{30};

enum class Kind : uint8_t { kDir, kSymlink, kSpecial, kRegular };

struct Target {
  Kind kind;
  uint32_t index;
};

bool ReservedTop(std::string_view name) {
  return name == kResourcesDir || name == kDownloadDir || name == kMetaDir || name == "lost+found";
}

// A regular file of the standby at a path where the image wants a regular file: what the walk's
// lstat saw of it (only what is used: 280k of them are kept at once; the path views the
// manifest's).
struct Candidate {
  Candidate(uint32_t entry, std::string_view path, const struct stat& st)
      : entry(entry),
        path(path),
        seen(FileObservation::FromStat(st)),
        nlink(static_cast<uint32_t>(st.st_nlink)),
        uid(st.st_uid),
        gid(st.st_gid),
        mode(st.st_mode) {}
  uint32_t entry;  // manifest.regulars index
  std::string_view path;
  FileObservation seen;
  uint32_t nlink, uid, gid, mode;
  crypto::Sha256Digest digest{};
  bool known = false;  // digest valid
};

class Planner {
 public:
  Planner(const image::Manifest& m, const fs::RootedDir& standby, const InPlaceOptions& options)
      : m_(m), standby_(standby), options_(options) {}

  absl::StatusOr<InPlacePlan> Run(ProgressCounters& counters) {
    plan_.keep_regulars.assign(m_.regulars.size(), 0);
    plan_.keep_symlinks.assign(m_.symlinks.size(), 0);
    plan_.keep_specials.assign(m_.specials.size(), 0);
    plan_.keep_dirs.assign(m_.dirs.size(), 0);
    plan_.fix_regulars.assign(m_.regulars.size(), 0);
    plan_.fix_symlinks.assign(m_.symlinks.size(), 0);
    plan_.fix_specials.assign(m_.specials.size(), 0);
    plan_.vouched_regulars.assign(m_.regulars.size(), 0);
    targets_.reserve(m_.dirs.size() + m_.symlinks.size() + m_.specials.size() + m_.regulars.size());
    auto add = [&](image::StrRef path, Kind kind, size_t i) {
      targets_.emplace(m_.Str(path), Target{kind, static_cast<uint32_t>(i)});
    };
    for (size_t i = 0; i < m_.dirs.size(); ++i) add(m_.dirs[i].path, Kind::kDir, i);
    for (size_t i = 0; i < m_.symlinks.size(); ++i) add(m_.symlinks[i].path, Kind::kSymlink, i);
    for (size_t i = 0; i < m_.specials.size(); ++i) add(m_.specials[i].path, Kind::kSpecial, i);
    for (size_t i = 0; i < m_.regulars.size(); ++i) add(m_.regulars[i].path, Kind::kRegular, i);

    OTA_ASSIGN_OR_RETURN(fs::UniqueFd root, standby_.OpenDir(""));
    struct stat root_st;
    if (::fstat(root.get(), &root_st) != 0) {
      return ErrnoStatus(errno, StrCat("stat ", standby_.Describe("/")));
    }
    root_dev_ = root_st.st_dev;
    OTA_RETURN_IF_ERROR(Walk(std::move(root)));
    OTA_RETURN_IF_ERROR(Decide(counters));
    // Deepest first: a path sorts after its ancestors, so the reverse order removes children
    // before their parents (RemoveAll takes whole subtrees anyway).
    std::sort(plan_.remove.begin(), plan_.remove.end(), std::greater<>());
    return std::move(plan_);
  }

 private:
  // A directory of the standby being walked, shared by the items of its subdirectories.
  struct WalkDir {
    fs::UniqueFd fd;
    std::string rel;  // "" for the root, else "/a/b"
    int depth = 0;
  };
  // One unit of the walk: list `subdir` of `parent` (the root itself when parent is null).
  struct WalkItem {
    std::shared_ptr<const WalkDir> parent;
    std::string subdir;
  };
  // What one walking thread found; merged after the walk.
  struct WorkerOut {
    std::vector<std::string> remove;
    std::vector<Candidate> candidates;
    std::string path;  // the entry being looked at (reused: no allocation per entry)
  };

  // The standby's directories are listed on `hash_threads` threads (a shared stack, depth
  // first); every entry is lstat'ed relative to its directory's fd and compared with the image.
  // Per-entry results go to distinct bytes of the plan's per-entry vectors, lists to the
  // thread's own WorkerOut.
  absl::Status Walk(fs::UniqueFd root) {
    const int threads = std::max(options_.hash_threads, 1);
    std::vector<WorkerOut> outs(static_cast<size_t>(threads));
    for (WorkerOut& out : outs) out.candidates.reserve(m_.regulars.size() / outs.size() + 64);
    auto root_dir = std::make_shared<WalkDir>();
    root_dir->fd = std::move(root);
    std::vector<WalkItem> initial;
    initial.push_back(WalkItem{std::move(root_dir), {}});
    OTA_RETURN_IF_ERROR(ParallelDrain(
        std::move(initial), threads,
        [&](WalkItem& item, WorkQueue<WalkItem>& queue, size_t worker) -> absl::Status {
          return ListDir(item, queue, outs[worker]);
        },
        options_.cancel));
    size_t removes = 0;
    size_t candidates = 0;
    for (const WorkerOut& out : outs) {
      removes += out.remove.size();
      candidates += out.candidates.size();
    }
    plan_.remove.reserve(removes);
    candidates_.reserve(candidates);
    for (WorkerOut& out : outs) {
      std::move(out.remove.begin(), out.remove.end(), std::back_inserter(plan_.remove));
      std::move(out.candidates.begin(), out.candidates.end(), std::back_inserter(candidates_));
    }
    // The same order whatever thread found what (sources, logs).
    std::sort(candidates_.begin(), candidates_.end(),
              [](const Candidate& a, const Candidate& b) { return a.entry < b.entry; });
    return absl::OkStatus();
  }

  absl::Status ListDir(WalkItem& item, WorkQueue<WalkItem>& queue, WorkerOut& out) {
    std::shared_ptr<const WalkDir> dir = std::move(item.parent);
    if (!item.subdir.empty()) {
      auto sub = std::make_shared<WalkDir>();
      sub->rel = StrCat(dir->rel, "/", item.subdir);
      sub->depth = dir->depth + 1;
      sub->fd = OpenSubdir(dir->fd.get(), item.subdir);
      if (!sub->fd.valid()) return ErrnoStatus(errno, StrCat("open ", standby_.Describe(sub->rel)));
      dir = std::move(sub);
    }
    const int dir_fd = dir->fd.get();
    const std::string& rel = dir->rel;
    const int depth = dir->depth;
    if (depth > kMaxDepth) {
      return absl::FailedPreconditionError(
          StrCat("standby tree deeper than ", kMaxDepth, " at ", standby_.Describe(rel)));
    }
    int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return ErrnoStatus(errno, StrCat("dup ", standby_.Describe(rel)));
    std::unique_ptr<DIR, int (*)(DIR*)> dir_stream(::fdopendir(dup_fd), &::closedir);
    if (!dir_stream) {
      const int err = errno;
      ::close(dup_fd);
      return ErrnoStatus(err, StrCat("opendir ", standby_.Describe(rel)));
    }
    ::rewinddir(dir_stream.get());
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* de = ::readdir(dir_stream.get())) {
      std::string_view name = de->d_name;
      if (name == "." || name == "..") continue;
      if (depth == 0 && ReservedTop(name)) continue;
      names.emplace_back(name);
    }
    if (errno != 0) return ErrnoStatus(errno, StrCat("readdir ", standby_.Describe(rel)));
    dir_stream.reset();
    if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
      return absl::CancelledError("update cancelled");
    }
    std::string& path = out.path;
    for (std::string& name : names) {
      path.assign(rel);
      path += '/';
      path += name;
      struct stat st;
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        return ErrnoStatus(errno, StrCat("lstat ", standby_.Describe(path)));
      }
      auto it = targets_.find(path);
      const bool other_fs = st.st_dev != root_dev_;
      if (it == targets_.end() || other_fs) {
        if (!other_fs) out.remove.push_back(path);
        continue;
      }
      const Target t = it->second;
      bool matches = false;
      switch (t.kind) {
        case Kind::kDir:
          if (S_ISDIR(st.st_mode)) {
            const image::DirEntry& d = m_.dirs[t.index];
            plan_.keep_dirs[t.index] =
                NeedsFix(st, d.uid, d.gid, d.mode, true, d.xattrs) == 0 ? 1 : 0;
            queue.Push(WalkItem{dir, std::move(name)});
            matches = true;
          }
          break;
        case Kind::kSymlink:
          if (S_ISLNK(st.st_mode)) {
            matches = true;  // replaced atomically by ApplySymlinks unless equal
            std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
            ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
            if (n >= 0 && static_cast<size_t>(n) < target.size()) {
              target.resize(static_cast<size_t>(n));
              const image::SymlinkEntry& l = m_.symlinks[t.index];
              if (target == m_.Str(l.target)) {
                plan_.keep_symlinks[t.index] = 1;
                plan_.fix_symlinks[t.index] = NeedsFix(st, l.uid, l.gid, 0, false, l.xattrs);
              }
            }
          }
          break;
        case Kind::kSpecial:
          if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {
            matches = true;
            plan_.keep_specials[t.index] = 1;
            const image::SpecialEntry& x = m_.specials[t.index];
            plan_.fix_specials[t.index] = NeedsFix(st, x.uid, x.gid, x.mode, true, x.xattrs);
          }
          break;
        case Kind::kRegular:
          if (S_ISREG(st.st_mode)) {
            out.candidates.emplace_back(t.index, m_.Str(m_.regulars[t.index].path), st);
            continue;  // its content is decided later
          }
          break;
      }
      if (!matches) out.remove.push_back(path);
    }
    return absl::OkStatus();
  }

  // O_NOATIME: reading a directory must not dirty its inode (relatime still writes the atime of a
  // directory not read since its last change, i.e. all of them after a rebuild); needs ownership
  // or CAP_FOWNER, dropped for good on the first EPERM.
  fs::UniqueFd OpenSubdir(int dir_fd, const std::string& name) {
    constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    if (noatime_.load(std::memory_order_relaxed)) {
      fs::UniqueFd fd(::openat(dir_fd, name.c_str(), kFlags | O_NOATIME));
      if (fd.valid() || errno != EPERM) return fd;
      noatime_.store(false, std::memory_order_relaxed);
    }
    return fs::UniqueFd(::openat(dir_fd, name.c_str(), kFlags));
  }

  // The content of each candidate: from the trusted table when the file is unchanged since it was
  // written, else rehashed when its size could match.
  absl::Status Decide(ProgressCounters& counters) {
    std::atomic<uint64_t> rehashed{0};
    std::atomic<uint64_t> table_hits{0};
    OTA_RETURN_IF_ERROR(ParallelFor(
        candidates_.size(), std::max(options_.hash_threads, 1),
        [&](size_t i) -> absl::Status {
          Candidate& c = candidates_[i];
          const image::RegularEntry& e = m_.regulars[c.entry];
          const uint64_t size = c.seen.size;
          if (options_.trusted_table != nullptr) {
            const SlotTableEntry* known = options_.trusted_table->Find(c.path);
            if (known != nullptr && known->seen == c.seen) {
              c.digest = known->sha256;
              c.known = true;
              plan_.vouched_regulars[c.entry] = 1;  // one writer per entry
              table_hits.fetch_add(1, std::memory_order_relaxed);
              return absl::OkStatus();
            }
          }
          log::Debug("in-place: rehashing", {{"path", c.path}});
          const uint64_t want = e.has_inline ? m_.Str(e.inline_content).size() : e.size;
          if ((e.has_size || e.has_inline) && size != want) return absl::OkStatus();
          absl::StatusOr<fs::UniqueFd> fd = standby_.OpenRead(c.path);
          if (!fd.ok()) return absl::OkStatus();  // not readable as a file: rewritten
          absl::StatusOr<crypto::Sha256Digest> digest =
              crypto::Sha256Fd(fd->get(), standby_.Describe(c.path));
          if (!digest.ok()) return absl::OkStatus();
          rehashed.fetch_add(1, std::memory_order_relaxed);
          counters.delta_files_hashed.fetch_add(1, std::memory_order_relaxed);
          counters.delta_bytes_hashed.fetch_add(size, std::memory_order_relaxed);
          c.digest = *digest;
          c.known = true;
          return absl::OkStatus();
        },
        options_.cancel));
    plan_.rehashed = rehashed.load();
    plan_.table_hits = table_hits.load();

    // Per entry: content and (for plain files) link count right.
    std::vector<int32_t> candidate_of(m_.regulars.size(), -1);
    for (size_t i = 0; i < candidates_.size(); ++i) {
      Candidate& c = candidates_[i];
      candidate_of[c.entry] = static_cast<int32_t>(i);
      if (!c.known) continue;
      plan_.sources.push_back(StandbySource{c.digest, c.path.substr(1)});
      const image::RegularEntry& e = m_.regulars[c.entry];
      const crypto::Sha256Digest want =
          e.has_inline ? crypto::Sha256Of(m_.Str(e.inline_content)) : e.sha256;
      if (c.digest != want) continue;
      if (e.nlink <= 1 && c.nlink != 1) continue;
      plan_.keep_regulars[c.entry] = 1;
    }
    // Hard-link groups (keyed like slot_writer: the build host's inode, else the sha256): kept
    // only as a whole, as one inode with exactly the group's members as its links.
    std::vector<uint32_t> linked;
    for (uint32_t i = 0; i < m_.regulars.size(); ++i) {
      if (m_.regulars[i].nlink > 1) linked.push_back(i);
    }
    auto key_less = [&](uint32_t a, uint32_t b) {
      const auto& x = m_.regulars[a];
      const auto& y = m_.regulars[b];
      if (x.has_inode != y.has_inode) return x.has_inode;
      if (x.has_inode) return x.inode < y.inode;
      return x.sha256 < y.sha256;
    };
    std::sort(linked.begin(), linked.end(), key_less);
    for (size_t start = 0; start < linked.size();) {
      size_t end = start + 1;
      while (end < linked.size() && !key_less(linked[start], linked[end]) &&
             !key_less(linked[end], linked[start])) {
        ++end;
      }
      bool whole = true;
      const int32_t first = candidate_of[linked[start]];
      for (size_t k = start; k < end && whole; ++k) {
        const int32_t c = candidate_of[linked[k]];
        whole = c >= 0 && first >= 0 && plan_.keep_regulars[linked[k]] != 0 &&
                candidates_[c].seen.inode == candidates_[first].seen.inode &&
                candidates_[c].nlink == end - start;
      }
      for (size_t k = start; k < end; ++k) plan_.keep_regulars[linked[k]] = whole ? 1 : 0;
      start = end;
    }
    for (const Candidate& c : candidates_) {
      if (plan_.keep_regulars[c.entry] == 0) continue;
      const image::RegularEntry& e = m_.regulars[c.entry];
      plan_.fix_regulars[c.entry] =
          NeedsFix(c.uid, c.gid, c.mode, e.uid, e.gid, e.mode, true, e.xattrs);
    }
    return absl::OkStatus();
  }

  // 1 when a kept entry needs its owner, mode or xattrs set (judged from the walk's lstat).
  uint8_t NeedsFix(const struct stat& st, uint32_t uid, uint32_t gid, uint32_t mode, bool has_mode,
                   image::XattrsRef xattrs) const {
    return NeedsFix(st.st_uid, st.st_gid, st.st_mode, uid, gid, mode, has_mode, xattrs);
  }
  uint8_t NeedsFix(uint32_t has_uid, uint32_t has_gid, uint32_t has_mode_bits, uint32_t uid,
                   uint32_t gid, uint32_t mode, bool has_mode, image::XattrsRef xattrs) const {
    const bool differs =
        has_uid != uid || has_gid != gid || (has_mode && (has_mode_bits & 07777) != (mode & 07777));
    return differs || !m_.Str(xattrs).empty() ? 1 : 0;
  }

  const image::Manifest& m_;
  const fs::RootedDir& standby_;
  const InPlaceOptions& options_;
  // Open addressing: no allocation per entry, one probe per lookup (300k entries).
  absl::flat_hash_map<std::string_view, Target> targets_;
  std::vector<Candidate> candidates_;
  InPlacePlan plan_;
  dev_t root_dev_ = 0;
  std::atomic<bool> noatime_{true};
};

absl::Status SetXattrs(const image::Manifest& m, image::XattrsRef xattrs, std::string_view path,
                       fs::RootedDir& standby) {
  absl::Status status;
  m.ForEachXattr(xattrs, [&](std::string_view name, std::string_view value) {
    if (status.ok()) status = standby.SetXattr(path, name, value);
  });
  return status;
}

// Sets owner, mode (when `has_mode`) and xattrs of a kept entry where they differ from the image.
// Returns the entry's lstat from before.
absl::StatusOr<struct stat> FixKept(const image::Manifest& m, fs::RootedDir& standby,
                                    std::string_view path, uint32_t uid, uint32_t gid,
                                    uint32_t mode, bool has_mode, image::XattrsRef xattrs) {
  OTA_ASSIGN_OR_RETURN(struct stat st, standby.Lstat(path));
  bool chowned = false;
  if (st.st_uid != uid || st.st_gid != gid) {
    OTA_RETURN_IF_ERROR(standby.Lchown(path, uid, gid));
    chowned = true;
  }
  // chown clears setuid/setgid: the mode is set again after it.
  if (has_mode && (chowned || (st.st_mode & 07777) != (mode & 07777))) {
    OTA_RETURN_IF_ERROR(standby.Chmod(path, mode & 07777));
  }
  OTA_RETURN_IF_ERROR(SetXattrs(m, xattrs, path, standby));
  return st;
}

}  // namespace

absl::StatusOr<InPlacePlan> PlanInPlace(const image::Manifest& manifest,
                                        const fs::RootedDir& standby, const InPlaceOptions& options,
                                        ProgressCounters& counters) {
  Planner planner(manifest, standby, options);
  OTA_ASSIGN_OR_RETURN(InPlacePlan plan, planner.Run(counters));
  uint64_t kept = 0;
  for (uint8_t k : plan.keep_regulars) kept += k;
  log::Info("in-place: standby compared with the image",
            {{"regulars", StrCat(manifest.regulars.size())},
             {"kept", StrCat(kept)},
             {"to_remove", StrCat(plan.remove.size())},
             {"rehashed", StrCat(plan.rehashed)},
             {"trusted_table", options.trusted_table != nullptr ? "yes" : "no"}});
  return plan;
}

absl::Status ApplyInPlaceFixups(const image::Manifest& manifest, const InPlacePlan& plan,
                                fs::RootedDir& standby, ProgressCounters& counters) {
  for (const std::string& path : plan.remove) {
    OTA_RETURN_IF_ERROR(standby.RemoveAll(path));
    counters.in_place_removed.fetch_add(1, std::memory_order_relaxed);
  }
  for (size_t i = 0; i < manifest.regulars.size(); ++i) {
    if (plan.keep_regulars[i] == 0) continue;
    const image::RegularEntry& e = manifest.regulars[i];
    const std::string_view path = manifest.Str(e.path);
    // A kept file's size is the image's; the file is stat'ed only when that is not known.
    uint64_t size = e.has_inline ? manifest.Str(e.inline_content).size() : e.size;
    if (plan.fix_regulars[i] != 0) {
      OTA_ASSIGN_OR_RETURN(struct stat st,
                           FixKept(manifest, standby, path, e.uid, e.gid, e.mode, true, e.xattrs));
      size = static_cast<uint64_t>(st.st_size);
    } else if (!e.has_inline && !e.has_size) {
      OTA_ASSIGN_OR_RETURN(struct stat st, standby.Lstat(path));
      size = static_cast<uint64_t>(st.st_size);
    }
    counters.in_place_kept.fetch_add(1, std::memory_order_relaxed);
    counters.processed_files_num.fetch_add(1, std::memory_order_relaxed);
    counters.processed_files_size.fetch_add(size, std::memory_order_relaxed);
  }
  for (size_t i = 0; i < manifest.symlinks.size(); ++i) {
    if (plan.keep_symlinks[i] == 0 || plan.fix_symlinks[i] == 0) continue;
    const image::SymlinkEntry& l = manifest.symlinks[i];
    OTA_RETURN_IF_ERROR(
        FixKept(manifest, standby, manifest.Str(l.path), l.uid, l.gid, 0, false, l.xattrs)
            .status());
  }
  for (size_t i = 0; i < manifest.specials.size(); ++i) {
    if (plan.keep_specials[i] == 0 || plan.fix_specials[i] == 0) continue;
    const image::SpecialEntry& x = manifest.specials[i];
    OTA_RETURN_IF_ERROR(
        FixKept(manifest, standby, manifest.Str(x.path), x.uid, x.gid, x.mode, true, x.xattrs)
            .status());
  }
  return absl::OkStatus();
}

namespace {

// Entries observed now for the image's regular files `which` (manifest indices, ascending), in
// that order.
absl::StatusOr<SlotTable> Observe(const image::Manifest& manifest, const fs::RootedDir& standby,
                                  int threads, std::span<const uint32_t> which) {
  const auto& regulars = manifest.regulars;
  std::vector<SlotTableEntry> entries(which.size());
  OTA_RETURN_IF_ERROR(ParallelFor(which.size(), std::max(threads, 1), [&](size_t k) {
    const image::RegularEntry& e = regulars[which[k]];
    absl::StatusOr<struct stat> st = standby.Lstat(manifest.Str(e.path));
    if (!st.ok()) return WithContext(st.status(), "recording the slot table");
    if (!S_ISREG(st->st_mode)) {
      return absl::InternalError(
          StrCat("recording the slot table: ", standby.Describe(manifest.Str(e.path)),
                 " is not a regular file after the apply"));
    }
    entries[k].path = std::string(manifest.Str(e.path));
    entries[k].sha256 = e.has_inline ? crypto::Sha256Of(manifest.Str(e.inline_content)) : e.sha256;
    entries[k].seen = FileObservation::FromStat(*st);
    return absl::OkStatus();
  }));
  SlotTable table;
  for (SlotTableEntry& e : entries) table.Add(std::move(e));
  return table;
}

}  // namespace

absl::StatusOr<SlotTable> RecordSlotTable(const image::Manifest& manifest,
                                          const fs::RootedDir& standby, int threads) {
  std::vector<uint32_t> all(manifest.regulars.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint32_t>(i);
  return Observe(manifest, standby, threads, all);
}

absl::StatusOr<SlotTable> RecordSlotOverlay(const image::Manifest& manifest,
                                            const InPlacePlan& plan, const fs::RootedDir& standby,
                                            const SlotTable& old_overlay, int threads) {
  const size_t n = manifest.regulars.size();
  std::vector<uint8_t> touched(n, 1);
  std::vector<uint32_t> which;
  for (size_t i = 0; i < n; ++i) {
    const bool untouched = i < plan.vouched_regulars.size() && plan.vouched_regulars[i] != 0 &&
                           plan.keep_regulars[i] != 0 && plan.fix_regulars[i] == 0;
    touched[i] = untouched ? 0 : 1;
    if (!untouched) which.push_back(static_cast<uint32_t>(i));
  }
  OTA_ASSIGN_OR_RETURN(SlotTable observed, Observe(manifest, standby, threads, which));
  if (old_overlay.size() == 0) return observed;  // manifest order already
  SlotTable overlay;
  for (size_t i = 0; i < n; ++i) {
    const std::string_view path = manifest.Str(manifest.regulars[i].path);
    const SlotTableEntry* e = touched[i] != 0 ? observed.Find(path) : old_overlay.Find(path);
    if (e != nullptr) overlay.Add(*e);
  }
  return overlay;
}

void TrimStandby(const std::filesystem::path& mount_point) {
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<sys::CommandResult> trimmed =
      sys::RunProgram({"fstrim", mount_point.string()},
                      std::chrono::duration_cast<std::chrono::milliseconds>(kFstrimTimeout));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  if (!trimmed.ok()) {
    log::Warning("fstrim of the standby failed (ignored)",
                 {{"mount_point", mount_point.string()},
                  {"error", std::string(trimmed.status().message())}});
    return;
  }
  if (trimmed->exit_code != 0) {
    log::Warning("fstrim of the standby failed (ignored)", {{"mount_point", mount_point.string()},
                                                            {"exit", StrCat(trimmed->exit_code)},
                                                            {"stderr", trimmed->err}});
    return;
  }
  log::Info("standby trimmed", {{"mount_point", mount_point.string()}, {"ms", StrCat(ms)}});
}

}  // namespace ota::update
