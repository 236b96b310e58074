// Fuzzes the v1 file-table row rules (AddDirRow, AddNonRegularRow, AddRegularRow): the input is
// cut into the row's columns. Beyond "no crash": an accepted row adds exactly one entry whose
// path, owner and (for regular files) digest are the row's, and an inlined content hashes to the
// digest.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/crypto/sha256.h"
#include "common/image/v1/file_table.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

// Takes a length-prefixed piece (1 byte length) from the front of `in`.
std::string_view Piece(std::string_view& in) {
  if (in.empty()) return {};
  const size_t n = std::min<size_t>(static_cast<uint8_t>(in[0]), in.size() - 1);
  std::string_view out = in.substr(1, n);
  in.remove_prefix(1 + n);
  return out;
}

int64_t Int(std::string_view& in) {
  int64_t v = 0;
  const size_t n = std::min<size_t>(8, in.size());
  std::memcpy(&v, in.data(), n);
  in.remove_prefix(n);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::image;
  if (size < 2) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  const uint8_t kind = data[0] % 3;
  const uint8_t present = data[1];  // which optional columns are set
  v1::FileTableRow row;
  row.path = Piece(in);
  row.uid = Int(in) % (1ll << 33);
  row.gid = Int(in) % (1ll << 33);
  row.mode = Int(in) % (1 << 17);
  if (present & 1) row.links_count = Int(in) % 8;
  if (present & 2) row.xattrs = Piece(in);
  if (present & 4) row.meta = Piece(in);
  if (present & 8) row.contents = Piece(in);
  row.size = (present & 16) ? static_cast<int64_t>(row.contents ? row.contents->size() : 0)
                            : Int(in) % 100000;
  std::string digest(32, '\0');
  if (present & 32) {
    const auto d = ota::crypto::Sha256Of(row.contents.value_or(""));
    std::memcpy(digest.data(), d.data(), 32);
  } else {
    std::string_view d = Piece(in);
    digest.assign(d.substr(0, 32));
    if (present & 64) digest.resize(32, '\0');
  }
  row.digest = digest;
  row.inode_id = Int(in);

  Manifest m;
  absl::Status st = kind == 0   ? v1::AddDirRow(row, m)
                    : kind == 1 ? v1::AddNonRegularRow(row, m)
                                : v1::AddRegularRow(row, m);
  const size_t entries = m.dirs.size() + m.symlinks.size() + m.specials.size() + m.regulars.size();
  Check(st.ok() ? entries == 1 : entries == 0);
  if (st.ok() && kind == 2) {
    const RegularEntry& e = m.regulars[0];
    Check(m.Str(e.path) == row.path && e.uid == static_cast<uint32_t>(row.uid));
    Check(std::memcmp(e.sha256.data(), row.digest.data(), 32) == 0);
    if (e.has_inline) Check(ota::crypto::Sha256Of(m.Str(e.inline_content)) == e.sha256);
    m.ForEachXattr(e.xattrs, [](std::string_view name, std::string_view) { Check(!name.empty()); });
  }
  return 0;
}
