#include "otaclient/update/slot_writer.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/update/delta_planner.h"
#include "otaclient/update/parallel.h"

namespace ota::update {
namespace {

// Runs `op`; when it fails because the parent directory is missing (an image whose dirs.txt
// does not list every parent), creates the parents and runs it once more.
template <typename Op>
absl::Status WithParents(fs::RootedDir& dir, std::string_view path, Op&& op) {
  absl::Status st = op();
  if (!absl::IsNotFound(st)) return st;
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return st;
  OTA_RETURN_IF_ERROR(dir.MakeDirs(path.substr(0, slash)));
  return op();
}

int CompareGroupKey(const image::RegularEntry& a, const image::RegularEntry& b) {
  if (a.has_inode != b.has_inode) return a.has_inode ? -1 : 1;
  if (a.has_inode) return a.inode < b.inode ? -1 : (a.inode > b.inode ? 1 : 0);
  return a.sha256 < b.sha256 ? -1 : (b.sha256 < a.sha256 ? 1 : 0);
}

uint64_t NanosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
}

// The regular files as work items: a single file, or a hard-link group whose first path is
// written and the rest linked. 8 bytes per entry.
struct WorkItems {
  std::vector<uint32_t> order;   // entry indices; a group's members are consecutive
  std::vector<uint32_t> starts;  // item k covers order[starts[k] .. starts[k+1])

  size_t size() const { return starts.size(); }
  std::span<const uint32_t> item(size_t k) const {
    size_t end = k + 1 < starts.size() ? starts[k + 1] : order.size();
    return std::span(order).subspan(starts[k], end - starts[k]);
  }
};

WorkItems BuildWorkItems(const std::vector<image::RegularEntry>& regulars) {
  WorkItems items;
  items.order.reserve(regulars.size());
  std::vector<uint32_t> linked;
  for (uint32_t i = 0; i < regulars.size(); ++i) {
    if (regulars[i].nlink > 1) {
      linked.push_back(i);
    } else {
      items.starts.push_back(static_cast<uint32_t>(items.order.size()));
      items.order.push_back(i);
    }
  }
  std::sort(linked.begin(), linked.end(), [&](uint32_t a, uint32_t b) {
    int c = CompareGroupKey(regulars[a], regulars[b]);
    return c < 0 || (c == 0 && a < b);
  });
  for (size_t k = 0; k < linked.size(); ++k) {
    if (k == 0 || CompareGroupKey(regulars[linked[k - 1]], regulars[linked[k]]) != 0) {
      items.starts.push_back(static_cast<uint32_t>(items.order.size()));
    }
    items.order.push_back(linked[k]);
  }
  return items;
}

// After owner and mode: setting security.capability must come after the chown, which clears it.
absl::Status ApplyXattrs(const image::Manifest& manifest, image::XattrsRef xattrs,
                         std::string_view path, fs::RootedDir& standby) {
  absl::Status status;
  manifest.ForEachXattr(xattrs, [&](std::string_view name, std::string_view value) {
    if (status.ok()) status = standby.SetXattr(path, name, value);
  });
  return status;
}

}  // namespace

absl::Status ApplyDirectories(const image::Manifest& manifest, fs::RootedDir& standby,
                              std::span<const uint8_t> skip) {
  for (size_t i = 0; i < manifest.dirs.size(); ++i) {
    if (i < skip.size() && skip[i] != 0) continue;
    const image::DirEntry& d = manifest.dirs[i];
    std::string_view path = manifest.Str(d.path);
    if (path != "/") OTA_RETURN_IF_ERROR(standby.MakeDirs(path, d.mode & 0777));
    // Only what differs is changed: a directory an in-place update finds right is not dirtied
    // (every chown/chmod is an inode write and a journal entry on the standby).
    absl::StatusOr<struct stat> st = standby.Lstat(path);
    const bool owner_ok = st.ok() && st->st_uid == d.uid && st->st_gid == d.gid;
    if (!owner_ok) OTA_RETURN_IF_ERROR(standby.Lchown(path, d.uid, d.gid));
    // chown clears setuid/setgid: the mode is set again after one.
    if (!owner_ok || (st->st_mode & 07777) != (d.mode & 07777)) {
      OTA_RETURN_IF_ERROR(standby.Chmod(path, d.mode & 07777));
    }
    OTA_RETURN_IF_ERROR(ApplyXattrs(manifest, d.xattrs, path, standby));
  }
  return absl::OkStatus();
}

absl::Status ApplySymlinks(const image::Manifest& manifest, fs::RootedDir& standby,
                           std::span<const uint8_t> skip) {
  for (size_t i = 0; i < manifest.symlinks.size(); ++i) {
    if (i < skip.size() && skip[i] != 0) continue;
    const image::SymlinkEntry& l = manifest.symlinks[i];
    std::string_view path = manifest.Str(l.path);
    OTA_RETURN_IF_ERROR(WithParents(
        standby, path, [&] { return standby.CreateSymlink(path, manifest.Str(l.target)); }));
    OTA_RETURN_IF_ERROR(standby.Lchown(path, l.uid, l.gid));
    OTA_RETURN_IF_ERROR(ApplyXattrs(manifest, l.xattrs, path, standby));
  }
  return absl::OkStatus();
}

absl::Status ApplySpecials(const image::Manifest& manifest, fs::RootedDir& standby,
                           std::span<const uint8_t> skip) {
  for (size_t i = 0; i < manifest.specials.size(); ++i) {
    if (i < skip.size() && skip[i] != 0) continue;
    const image::SpecialEntry& x = manifest.specials[i];
    std::string_view path = manifest.Str(x.path);
    fs::RootedDir::FileAttrs attrs;
    attrs.mode = x.mode & 07777;
    attrs.uid = x.uid;
    attrs.gid = x.gid;
    OTA_RETURN_IF_ERROR(
        WithParents(standby, path, [&] { return standby.MakeWhiteout(path, attrs); }));
    OTA_RETURN_IF_ERROR(ApplyXattrs(manifest, x.xattrs, path, standby));
  }
  return absl::OkStatus();
}

absl::Status ApplyRegulars(const image::Manifest& manifest, const ContentIndex& index,
                           std::span<const uint8_t> downloaded, fs::RootedDir& standby,
                           const ApplyOptions& options, ProgressCounters& counters) {
  const auto& regulars = manifest.regulars;
  WorkItems items = BuildWorkItems(regulars);
  const std::span<const uint8_t> skip = options.skip_regulars;
  auto skipped = [&](size_t k) {
    const uint32_t first = items.item(k)[0];
    return first < skip.size() && skip[first] != 0;
  };

  // Writers still to come per content; the one that takes it to zero renames the resource.
  std::vector<std::atomic<uint32_t>> writers_left(index.size());
  for (size_t k = 0; k < items.size(); ++k) {
    if (skipped(k)) continue;
    const image::RegularEntry& writer = regulars[items.item(k)[0]];
    if (writer.has_inline || ContentIndex::IsEmptyContent(writer.sha256)) continue;
    std::optional<size_t> slot = index.Find(writer.sha256);
    if (!slot.has_value()) {
      return absl::InternalError(StrCat("no content indexed for ", manifest.Str(writer.path)));
    }
    writers_left[*slot].fetch_add(1, std::memory_order_relaxed);
  }

  return ParallelFor(
      items.size(), options.threads,
      [&](size_t k) -> absl::Status {
        if (skipped(k)) return absl::OkStatus();
        std::span<const uint32_t> group = items.item(k);
        const image::RegularEntry& writer = regulars[group[0]];
        const std::string_view path = manifest.Str(writer.path);
        auto start = std::chrono::steady_clock::now();
        fs::RootedDir::FileAttrs attrs;
        attrs.mode = writer.mode & 07777;
        attrs.uid = writer.uid;
        attrs.gid = writer.gid;
        uint64_t size = writer.has_size ? writer.size : 0;
        ProgressCounters::Op op = ProgressCounters::Op::kCopy;

        if (writer.has_inline) {
          const std::string_view content = manifest.Str(writer.inline_content);
          OTA_RETURN_IF_ERROR(WithParents(
              standby, path, [&] { return standby.WriteNewFile(path, content, attrs); }));
          size = content.size();
        } else if (ContentIndex::IsEmptyContent(writer.sha256)) {
          OTA_RETURN_IF_ERROR(
              WithParents(standby, path, [&] { return standby.CreateEmptyFile(path, attrs); }));
          size = 0;
        } else {
          size_t slot = *index.Find(writer.sha256);
          if (slot < downloaded.size() && downloaded[slot] != 0) {
            op = ProgressCounters::Op::kDownload;
          }
          const std::string resource = ResourcePath(writer.sha256);
          // Open before counting down, so a later rename by the last writer cannot pull the
          // resource away from under us.
          absl::StatusOr<fs::UniqueFd> src = standby.OpenRead(resource);
          if (!src.ok()) {
            return absl::InternalError(StrCat("content for ", path, " is missing from ",
                                              standby.Describe(resource), ": ",
                                              src.status().message()));
          }
          if (!writer.has_size) {
            struct stat st;
            if (::fstat(src->get(), &st) == 0) size = static_cast<uint64_t>(st.st_size);
          }
          if (writers_left[slot].fetch_sub(1) == 1) {
            src->Reset();
            OTA_RETURN_IF_ERROR(
                WithParents(standby, path, [&] { return standby.Rename(resource, path); }));
            OTA_RETURN_IF_ERROR(standby.Lchown(path, attrs.uid, attrs.gid));
            OTA_RETURN_IF_ERROR(standby.Chmod(path, attrs.mode));
          } else {
            OTA_RETURN_IF_ERROR(WithParents(
                standby, path, [&] { return standby.CopyFileFrom(src->get(), path, attrs); }));
          }
        }
        OTA_RETURN_IF_ERROR(ApplyXattrs(manifest, writer.xattrs, path, standby));
        counters.AddProcessed(op, size, NanosSince(start));

        for (uint32_t member : group.subspan(1)) {
          auto link_start = std::chrono::steady_clock::now();
          std::string_view link_path = manifest.Str(regulars[member].path);
          OTA_RETURN_IF_ERROR(
              WithParents(standby, link_path, [&] { return standby.Link(path, link_path); }));
          counters.AddProcessed(ProgressCounters::Op::kLink, size, NanosSince(link_start));
        }
        return absl::OkStatus();
      },
      options.cancel);
}

}  // namespace ota::update
