// bench_tree_gen: writes the deterministic rootfs trees the benchmarks run on.
//
//   bench_tree_gen --out DIR --kind mixed --files N --bytes B [--seed S] [--variant V]
//       N regular files totalling about B bytes, in leaf directories of 100 files, plus one
//       relative symlink per 100 files. Sizes: ~96% small (64 B..32 KiB, log-uniform), ~1%
//       medium (64 KiB..1 MiB), one file in 2000 large (the bytes left over to reach B, split
//       evenly with jitter; at least 1 MiB each).
//   bench_tree_gen --out DIR --kind tiny --files N --dirs D --symlinks L [--seed S] [--variant V]
//       N tiny regular files (8..263 bytes) spread over D leaf directories, plus L symlinks:
//       the metadata-scale tree (many list entries, little data).
//
// Paths and sizes depend only on --seed; file content depends on --seed, --variant and the file
// index, so two variants have the same shape (paths, sizes) and no content in common. Content is
// pseudo-random (incompressible, every file distinct). DIR must not exist; the tree is written to
// DIR.partial and renamed at the end, so an interrupted run never leaves a half tree at DIR.
// Prints a JSON summary: files, bytes, dirs, symlinks.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "test/bench/bench_util.h"

namespace ota::bench {
namespace {

namespace stdfs = std::filesystem;

constexpr char kUsage[] = R"(usage:
  bench_tree_gen --out DIR --kind mixed --files N --bytes B [--seed S] [--variant V]
  bench_tree_gen --out DIR --kind tiny --files N --dirs D --symlinks L [--seed S] [--variant V]
)";

constexpr uint64_t kFilesPerLeafDir = 100;
constexpr uint64_t kLeafDirsPerTopDir = 50;

// splitmix64: tiny, fast, good enough for test data; deterministic across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }
  // Log-uniform in [lo, hi]: as many files of 100 B..1 KiB as of 1 KiB..10 KiB.
  uint64_t LogBetween(uint64_t lo, uint64_t hi) {
    double u = static_cast<double>(Next() >> 11) / static_cast<double>(1ull << 53);
    double v =
        std::exp(std::log(static_cast<double>(lo)) +
                 u * (std::log(static_cast<double>(hi)) - std::log(static_cast<double>(lo))));
    return std::clamp(static_cast<uint64_t>(v), lo, hi);
  }

 private:
  uint64_t state_;
};

struct FileSpec {
  std::string path;  // relative to the tree root
  uint64_t size = 0;
};

struct SymlinkSpec {
  std::string path;
  std::string target;  // relative, a sibling file
};

struct TreeSpec {
  std::vector<std::string> dirs;  // every directory to create, parents first
  std::vector<FileSpec> files;
  std::vector<SymlinkSpec> symlinks;
};

std::string Numbered(std::string_view prefix, uint64_t n, int width) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*llu", width, static_cast<unsigned long long>(n));
  return StrCat(prefix, buf);
}

// Leaf directory k lives at t<top>/l<k>; returns its path, adding new directories to `spec`.
std::string LeafDir(uint64_t leaf, TreeSpec& spec) {
  std::string top = Numbered("t", leaf / kLeafDirsPerTopDir, 3);
  if (leaf % kLeafDirsPerTopDir == 0) spec.dirs.push_back(top);
  std::string dir = StrCat(top, "/", Numbered("l", leaf, 5));
  spec.dirs.push_back(dir);
  return dir;
}

absl::StatusOr<TreeSpec> MixedSpec(uint64_t files, uint64_t bytes, uint64_t seed) {
  if (files < 10) return absl::InvalidArgumentError("--kind mixed needs --files >= 10");
  const uint64_t large = std::max<uint64_t>(1, files / 2000);
  const uint64_t medium = std::max<uint64_t>(1, files / 100);
  enum class Role : uint8_t { kSmall, kMedium, kLarge };
  std::vector<Role> roles(files, Role::kSmall);
  std::fill(roles.begin(), roles.begin() + static_cast<long>(large), Role::kLarge);
  std::fill(roles.begin() + static_cast<long>(large),
            roles.begin() + static_cast<long>(large + medium), Role::kMedium);
  Rng rng(seed);
  for (uint64_t i = files - 1; i > 0; --i) std::swap(roles[i], roles[rng.Between(0, i)]);

  TreeSpec spec;
  spec.files.resize(files);
  uint64_t fixed_bytes = 0;
  std::vector<uint64_t> large_indices;
  std::string dir;
  for (uint64_t i = 0; i < files; ++i) {
    if (i % kFilesPerLeafDir == 0) dir = LeafDir(i / kFilesPerLeafDir, spec);
    FileSpec& f = spec.files[i];
    f.path = StrCat(dir, "/", Numbered("f", i, 6), ".dat");
    switch (roles[i]) {
      case Role::kSmall:
        f.size = rng.LogBetween(64, 32 << 10);
        break;
      case Role::kMedium:
        f.size = rng.LogBetween(64 << 10, 1 << 20);
        break;
      case Role::kLarge:
        large_indices.push_back(i);
        break;
    }
    fixed_bytes += f.size;
    if (i % kFilesPerLeafDir == kFilesPerLeafDir - 1 || i + 1 == files) {
      spec.symlinks.push_back({StrCat(dir, "/", Numbered("link", i / kFilesPerLeafDir, 5)),
                               Numbered("f", i, 6) + ".dat"});
    }
  }
  // The large files take up what is left of --bytes, jittered by ±25%, at least 1 MiB each.
  const uint64_t left = bytes > fixed_bytes ? bytes - fixed_bytes : 0;
  const uint64_t each = std::max<uint64_t>(1 << 20, left / large_indices.size());
  uint64_t given = 0;
  for (size_t k = 0; k < large_indices.size(); ++k) {
    uint64_t size = each;
    if (k + 1 == large_indices.size()) {
      size = std::max<uint64_t>(1 << 20, left > given ? left - given : 0);
    } else if (k % 2 == 0) {
      size = each + each / 4 - rng.Between(0, each / 2);  // the next one compensates
    } else {
      size = 2 * each - spec.files[large_indices[k - 1]].size;
    }
    spec.files[large_indices[k]].size = size;
    given += size;
  }
  return spec;
}

absl::StatusOr<TreeSpec> TinySpec(uint64_t files, uint64_t dirs, uint64_t symlinks, uint64_t seed) {
  if (files == 0 || dirs == 0) {
    return absl::InvalidArgumentError("--kind tiny needs --files and --dirs >= 1");
  }
  TreeSpec spec;
  Rng rng(seed);
  std::vector<std::string> leaf_dirs;
  leaf_dirs.reserve(dirs);
  for (uint64_t d = 0; d < dirs; ++d) leaf_dirs.push_back(LeafDir(d, spec));
  spec.files.resize(files);
  for (uint64_t i = 0; i < files; ++i) {
    const std::string& dir = leaf_dirs[i * dirs / files];
    spec.files[i] = {StrCat(dir, "/", Numbered("f", i, 7)), rng.Between(8, 263)};
  }
  for (uint64_t k = 0; k < symlinks; ++k) {
    const uint64_t target = k * files / std::max<uint64_t>(symlinks, 1);
    const std::string& path = spec.files[target].path;
    const std::string dir = path.substr(0, path.rfind('/'));
    spec.symlinks.push_back(
        {StrCat(dir, "/", Numbered("link", k, 7)), path.substr(path.rfind('/') + 1)});
  }
  return spec;
}

absl::Status WriteTree(const TreeSpec& spec, const stdfs::path& root, uint64_t seed,
                       uint64_t variant) {
  std::error_code ec;
  if (!stdfs::create_directory(root, ec) || ec) {
    return absl::InternalError(
        StrCat("mkdir ", root.string(), ": ", ec ? ec.message() : std::string("already exists")));
  }
  for (const std::string& dir : spec.dirs) {
    if (::mkdir((root / dir).c_str(), 0755) != 0) {
      return ErrnoStatus(errno, StrCat("mkdir ", (root / dir).string()));
    }
  }
  std::vector<uint64_t> buffer;
  for (size_t i = 0; i < spec.files.size(); ++i) {
    const FileSpec& f = spec.files[i];
    // Content stream: a function of (seed, variant, index) only.
    Rng content(seed * 0x100000001B3ull ^ (variant + 1) * 0xC2B2AE3D27D4EB4Full ^ i);
    const stdfs::path path = root / f.path;
    fs::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoStatus(errno, StrCat("create ", path.string()));
    uint64_t left = f.size;
    while (left > 0) {
      const uint64_t chunk = std::min<uint64_t>(left, 1 << 20);
      buffer.resize((chunk + 7) / 8);
      for (uint64_t& word : buffer) word = content.Next();
      OTA_RETURN_IF_ERROR(fs::WriteAll(fd.get(), buffer.data(), chunk, path.string()));
      left -= chunk;
    }
  }
  for (const SymlinkSpec& link : spec.symlinks) {
    const stdfs::path path = root / link.path;
    if (::symlink(link.target.c_str(), path.c_str()) != 0) {
      return ErrnoStatus(errno, StrCat("symlink ", path.string()));
    }
  }
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  std::string problem;
  auto flags = Flags::Parse(
      argc, argv, {"out", "kind", "files", "bytes", "dirs", "symlinks", "seed", "variant"},
      &problem);
  if (flags && flags->help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::optional<uint64_t> files, bytes, dirs, symlinks, seed, variant;
  if (flags) {
    files = flags->GetUint("files", 0, &problem);
    bytes = flags->GetUint("bytes", 0, &problem);
    dirs = flags->GetUint("dirs", 0, &problem);
    symlinks = flags->GetUint("symlinks", 0, &problem);
    seed = flags->GetUint("seed", 1, &problem);
    variant = flags->GetUint("variant", 0, &problem);
  }
  if (!flags || !problem.empty() || !flags->Has("out") || !flags->Has("kind")) {
    std::fprintf(stderr, "bench_tree_gen: %s\n%s",
                 problem.empty() ? "--out and --kind are required" : problem.c_str(), kUsage);
    return 2;
  }
  const std::string kind = flags->Get("kind");
  absl::StatusOr<TreeSpec> spec;
  if (kind == "mixed") {
    spec = MixedSpec(*files, *bytes, *seed);
  } else if (kind == "tiny") {
    spec = TinySpec(*files, *dirs, *symlinks, *seed);
  } else {
    std::fprintf(stderr, "bench_tree_gen: --kind must be mixed or tiny, got '%s'\n", kind.c_str());
    return 2;
  }
  if (!spec.ok()) {
    std::fprintf(stderr, "bench_tree_gen: %s\n", std::string(spec.status().message()).c_str());
    return 2;
  }
  const stdfs::path out = flags->Get("out");
  const stdfs::path partial = out.string() + ".partial";
  std::error_code ec;
  if (stdfs::exists(out, ec)) {
    std::fprintf(stderr, "bench_tree_gen: %s already exists\n", out.c_str());
    return 1;
  }
  stdfs::remove_all(partial, ec);  // leftovers of an interrupted run
  if (absl::Status st = WriteTree(*spec, partial, *seed, *variant); !st.ok()) {
    std::fprintf(stderr, "bench_tree_gen: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  stdfs::rename(partial, out, ec);
  if (ec) {
    std::fprintf(stderr, "bench_tree_gen: rename %s → %s: %s\n", partial.c_str(), out.c_str(),
                 ec.message().c_str());
    return 1;
  }
  uint64_t total = 0;
  for (const FileSpec& f : spec->files) total += f.size;
  std::printf("%s\n", JsonLine()
                          .Add("files", static_cast<uint64_t>(spec->files.size()))
                          .Add("bytes", total)
                          .Add("dirs", static_cast<uint64_t>(spec->dirs.size()))
                          .Add("symlinks", static_cast<uint64_t>(spec->symlinks.size()))
                          .ToString()
                          .c_str());
  return 0;
}

}  // namespace
}  // namespace ota::bench

int main(int argc, char** argv) { return ota::bench::Run(argc, argv); }
