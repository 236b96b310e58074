// Feeds arbitrary bytes to the four list-line parsers and to ParseListFile. Whatever a parser
// accepts must survive format → parse unchanged (the generator and the client agree).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/crypto/sha256.h"
#include "common/image/legacy/list_lines.h"
#include "common/image/manifest.h"

namespace {

using ota::image::Manifest;

void Check(bool ok) {
  if (!ok) std::abort();
}

void RoundTripDir(std::string_view line) {
  Manifest m;
  if (!ota::image::ParseDirLine(line, m).ok()) return;
  const auto& e = m.dirs.at(0);
  Manifest again;
  Check(ota::image::ParseDirLine(ota::image::FormatDirLine(e.mode, e.uid, e.gid, m.Str(e.path)),
                                 again)
            .ok());
  const auto& f = again.dirs.at(0);
  Check(f.mode == e.mode && f.uid == e.uid && f.gid == e.gid && again.Str(f.path) == m.Str(e.path));
}

void RoundTripSymlink(std::string_view line) {
  Manifest m;
  if (!ota::image::ParseSymlinkLine(line, m).ok()) return;
  const auto& e = m.symlinks.at(0);
  Manifest again;
  Check(ota::image::ParseSymlinkLine(
            ota::image::FormatSymlinkLine(e.mode, e.uid, e.gid, m.Str(e.path), m.Str(e.target)),
            again)
            .ok());
  const auto& f = again.symlinks.at(0);
  Check(f.mode == e.mode && f.uid == e.uid && f.gid == e.gid &&
        again.Str(f.path) == m.Str(e.path) && again.Str(f.target) == m.Str(e.target));
}

void RoundTripRegular(std::string_view line) {
  Manifest m;
  if (!ota::image::ParseRegularLine(line, m).ok()) return;
  const auto& e = m.regulars.at(0);
  std::string inode = e.has_inode ? std::to_string(e.inode) : std::string();
  std::string formatted = ota::image::FormatRegularLine(
      e.mode, e.uid, e.gid, e.nlink, ota::crypto::ToHex(e.sha256), m.Str(e.path), e.size, inode,
      e.compression == ota::image::Compression::kZstd ? "zst" : "");
  Manifest again;
  Check(ota::image::ParseRegularLine(formatted, again).ok());
  const auto& f = again.regulars.at(0);
  Check(f.mode == e.mode && f.uid == e.uid && f.gid == e.gid && f.nlink == e.nlink &&
        f.sha256 == e.sha256 && again.Str(f.path) == m.Str(e.path) && f.size == e.size &&
        f.has_inode == e.has_inode && f.inode == e.inode && f.compression == e.compression);
}

void RoundTripPersistent(std::string_view line) {
  Manifest m;
  if (!ota::image::ParsePersistentLine(line, m).ok()) return;
  Manifest again;
  Check(ota::image::ParsePersistentLine(
            ota::image::FormatPersistentLine(m.Str(m.persistents.at(0))), again)
            .ok());
  Check(again.Str(again.persistents.at(0)) == m.Str(m.persistents.at(0)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  RoundTripDir(input);
  RoundTripSymlink(input);
  RoundTripRegular(input);
  RoundTripPersistent(input);
  for (auto kind : {ota::image::ListKind::kDirs, ota::image::ListKind::kSymlinks,
                    ota::image::ListKind::kRegulars, ota::image::ListKind::kPersistents}) {
    Manifest m;
    (void)ota::image::ParseListFile(kind, input, "fuzz.txt", m);
    // Every stored path went through ValidateImagePath.
    for (const auto& d : m.dirs) Check(ota::image::ValidateImagePath(m.Str(d.path)).ok());
    for (const auto& r : m.regulars) Check(ota::image::ValidateImagePath(m.Str(r.path)).ok());
  }
  return 0;
}
