// delta_scan_bench: times the update engine's reuse detection (ContentIndex::Build + PlanDelta)
// over a real tree used as the active slot, with an empty standby in a temp dir.
//
//   delta_scan_bench --active DIR [--digests unmatched|real] [--standby-parent DIR]
//                    [--hash-threads N]
//
// Setup (not timed): walks DIR (regular files only, symlinks not followed, the planner's skipped
// top-level directories skipped too) and builds a Manifest with one regular entry per file, with
// that file's size and
//   --digests unmatched (default): a digest that matches no file, so the planner must hash every
//                                  non-empty file and copies nothing: the same work as
//                                  `find | xargs openssl dgst -sha256`;
//   --digests real:                the file's real sha256 (hashed during setup), so the planner
//                                  finds every content and copies it into the standby's
//                                  resources dir: the realistic "nothing changed" delta.
// Empty files get the empty digest (never hashed or copied, as in a real image).
// Prints one JSON line: counts, bytes, seconds and the peak RSS.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "common/image/manifest.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/update/content_index.h"
#include "otaclient/update/delta_planner.h"
#include "otaclient/update/progress.h"
#include "otaclient/update/update_session.h"
#include "test/bench/bench_util.h"

namespace ota::bench {
namespace {

namespace stdfs = std::filesystem;

constexpr char kUsage[] = R"(usage: delta_scan_bench --active DIR [--digests unmatched|real]
                        [--standby-parent DIR] [--hash-threads N]
)";

// Top-level directories PlanDelta never walks (see delta_planner.h); kept out of the manifest so
// that both sides see the same files.
bool SkippedTopLevel(std::string_view name) {
  constexpr std::string_view kSkipped[] = {
      "proc", "sys", "dev", "run", "tmp", "mnt", "media", "lost+found", update::kResourcesDir};
  for (std::string_view skipped : kSkipped) {
    if (name == skipped) return true;
  }
  return false;
}

struct ScanStats {
  uint64_t files = 0;
  uint64_t empty_files = 0;
  uint64_t bytes = 0;
};

absl::StatusOr<image::Manifest> ManifestOfTree(const stdfs::path& root, bool real_digests,
                                               ScanStats& stats) {
  image::Manifest manifest;
  crypto::Sha256Digest empty;
  crypto::FromHex(crypto::kEmptySha256Hex, &empty);
  std::error_code ec;
  stdfs::recursive_directory_iterator it(root, stdfs::directory_options::none, ec);
  if (ec) return absl::NotFoundError(StrCat("cannot walk ", root.string(), ": ", ec.message()));
  for (const stdfs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) return absl::InternalError(StrCat("walking ", root.string(), ": ", ec.message()));
    const stdfs::path rel = it->path().lexically_relative(root);
    if (it.depth() == 0 && SkippedTopLevel(rel.string())) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) {
      return ErrnoStatus(errno, StrCat("lstat ", it->path().string()));
    }
    if (!S_ISREG(st.st_mode)) continue;
    image::RegularEntry entry;
    entry.mode = st.st_mode & 07777;
    entry.uid = st.st_uid;
    entry.gid = st.st_gid;
    entry.size = static_cast<uint64_t>(st.st_size);
    entry.has_size = true;
    entry.path = manifest.Intern(StrCat("/", rel.string()));
    if (entry.size == 0) {
      entry.sha256 = empty;
      ++stats.empty_files;
    } else if (real_digests) {
      OTA_ASSIGN_OR_RETURN(entry.sha256, crypto::Sha256File(it->path()));
    } else {
      entry.sha256 = crypto::Sha256Of(StrCat("ota-bench-unmatched:", stats.files));
    }
    ++stats.files;
    stats.bytes += entry.size;
    manifest.regulars.push_back(entry);
  }
  return manifest;
}

uint64_t CountFiles(const stdfs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

absl::Status Run(const Flags& flags) {
  std::string problem;
  const std::optional<uint64_t> threads =
      flags.GetUint("hash-threads", static_cast<uint64_t>(update::kHashThreads), &problem);
  if (!threads || *threads == 0 || *threads > 64) {
    return absl::InvalidArgumentError(
        problem.empty() ? std::string("--hash-threads must be in [1, 64]") : problem);
  }
  const std::string digests = flags.Get("digests", "unmatched");
  if (digests != "unmatched" && digests != "real") {
    return absl::InvalidArgumentError(
        StrCat("--digests must be unmatched or real, got '", digests, "'"));
  }
  const stdfs::path active_root = flags.Get("active");
  ScanStats stats;
  OTA_ASSIGN_OR_RETURN(image::Manifest manifest,
                       ManifestOfTree(active_root, digests == "real", stats));

  OTA_ASSIGN_OR_RETURN(fs::TempDir standby_dir,
                       fs::TempDir::Create("delta-scan-standby", flags.Get("standby-parent")));
  OTA_ASSIGN_OR_RETURN(fs::RootedDir active, fs::RootedDir::Open(active_root));
  OTA_ASSIGN_OR_RETURN(fs::RootedDir standby, fs::RootedDir::Open(standby_dir.path()));

  update::ProgressCounters counters;
  update::DeltaOptions options;
  options.hash_threads = static_cast<int>(*threads);

  const double cpu_before = ProcessCpuSeconds();
  const Stopwatch total;
  OTA_ASSIGN_OR_RETURN(update::ContentIndex index, update::ContentIndex::Build(manifest));
  const double index_seconds = total.Seconds();
  OTA_ASSIGN_OR_RETURN(update::DeltaResult delta,
                       update::PlanDelta(index, active, standby, options, counters));
  const double seconds = total.Seconds();
  const double cpu_seconds = ProcessCpuSeconds() - cpu_before;

  const uint64_t bytes_hashed = counters.delta_bytes_hashed.load();
  JsonLine out;
  out.Add("digests", digests)
      .Add("hash_threads", *threads)
      .Add("manifest_files", stats.files)
      .Add("empty_files", stats.empty_files)
      .Add("tree_bytes", stats.bytes)
      .Add("contents", static_cast<uint64_t>(index.size()))
      .Add("files_hashed", counters.delta_files_hashed.load())
      .Add("bytes_hashed", bytes_hashed)
      .Add("reused", counters.delta_reused.load())
      .Add("missing", static_cast<uint64_t>(delta.missing.size()))
      .Add("missing_bytes", delta.missing_bytes)
      .Add("resources_files", CountFiles(standby_dir.path() / update::kResourcesDir))
      .Add("index_seconds", index_seconds)
      .Add("seconds", seconds)
      .Add("cpu_seconds", cpu_seconds)
      .Add("hash_mb_per_s", seconds > 0 ? static_cast<double>(bytes_hashed) / 1e6 / seconds : 0.0)
      .Add("peak_rss_kib", PeakRssKib());
  std::printf("%s\n", out.ToString().c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace ota::bench

int main(int argc, char** argv) {
  std::string problem;
  auto flags = ota::bench::Flags::Parse(
      argc, argv, {"active", "digests", "standby-parent", "hash-threads"}, &problem);
  if (flags && flags->help()) {
    std::fputs(ota::bench::kUsage, stdout);
    return 0;
  }
  if (!flags || !flags->Has("active")) {
    std::fprintf(stderr, "delta_scan_bench: %s\n%s",
                 problem.empty() ? "--active is required" : problem.c_str(), ota::bench::kUsage);
    return 2;
  }
  if (absl::Status st = ota::bench::Run(*flags); !st.ok()) {
    std::fprintf(stderr, "delta_scan_bench: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
