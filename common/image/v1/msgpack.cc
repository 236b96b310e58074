#include "common/image/v1/msgpack.h"

#include <algorithm>

#include "common/util/strings.h"

namespace ota::image::v1 {
namespace {

constexpr size_t kMaxXattrValue = 64 << 10;  // Linux XATTR_SIZE_MAX
constexpr size_t kMaxXattrName = 255;        // Linux XATTR_NAME_MAX

std::string Hex2(uint8_t b) {
  constexpr char kHex[] = "0123456789abcdef";
  return {kHex[b >> 4], kHex[b & 15]};
}

void AppendBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

absl::Status MsgpackReader::Unexpected(uint8_t tag, std::string_view wanted) const {
  return absl::InvalidArgumentError(StrCat("msgpack: expected ", wanted, " at byte ", pos_ - 1,
                                           ", found type byte 0x", Hex2(tag)));
}

absl::StatusOr<uint8_t> MsgpackReader::Byte() {
  if (pos_ >= data_.size()) {
    return absl::InvalidArgumentError(StrCat("msgpack: truncated at byte ", pos_));
  }
  return static_cast<uint8_t>(data_[pos_++]);
}

absl::StatusOr<uint64_t> MsgpackReader::BigEndian(size_t bytes) {
  if (data_.size() - pos_ < bytes) {
    return absl::InvalidArgumentError(StrCat("msgpack: truncated at byte ", pos_));
  }
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v = v << 8 | static_cast<uint8_t>(data_[pos_++]);
  return v;
}

absl::StatusOr<std::string_view> MsgpackReader::Take(uint64_t size) {
  if (data_.size() - pos_ < size) {
    return absl::InvalidArgumentError(
        StrCat("msgpack: ", size, "-byte string at byte ", pos_, " runs past the end"));
  }
  std::string_view s = data_.substr(pos_, static_cast<size_t>(size));
  pos_ += static_cast<size_t>(size);
  return s;
}

absl::StatusOr<uint64_t> MsgpackReader::ReadUint() {
  auto tag = Byte();
  if (!tag.ok()) return tag.status();
  if (*tag <= 0x7f) return *tag;
  switch (*tag) {
    case 0xcc:
      return BigEndian(1);
    case 0xcd:
      return BigEndian(2);
    case 0xce:
      return BigEndian(4);
    case 0xcf:
      return BigEndian(8);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {  // signed forms: fine when the value is not negative
      const size_t bytes = size_t{1} << (*tag - 0xd0);
      auto v = BigEndian(bytes);
      if (!v.ok()) return v.status();
      if ((*v >> (8 * bytes - 1)) & 1) {
        return absl::InvalidArgumentError(
            StrCat("msgpack: negative integer at byte ", pos_ - bytes - 1));
      }
      return *v;
    }
    default:
      if (*tag >= 0xe0) {
        return absl::InvalidArgumentError(StrCat("msgpack: negative integer at byte ", pos_ - 1));
      }
      return Unexpected(*tag, "an integer");
  }
}

absl::StatusOr<std::string_view> MsgpackReader::ReadStr() {
  auto tag = Byte();
  if (!tag.ok()) return tag.status();
  uint64_t size = 0;
  if ((*tag & 0xe0) == 0xa0) {
    size = *tag & 0x1f;
  } else if (*tag >= 0xd9 && *tag <= 0xdb) {
    auto n = BigEndian(size_t{1} << (*tag - 0xd9));
    if (!n.ok()) return n.status();
    size = *n;
  } else {
    return Unexpected(*tag, "a str");
  }
  return Take(size);
}

absl::StatusOr<std::string_view> MsgpackReader::ReadBin() {
  auto tag = Byte();
  if (!tag.ok()) return tag.status();
  if (*tag < 0xc4 || *tag > 0xc6) return Unexpected(*tag, "a bin");
  auto n = BigEndian(size_t{1} << (*tag - 0xc4));
  if (!n.ok()) return n.status();
  return Take(*n);
}

absl::StatusOr<uint32_t> MsgpackReader::ReadArrayHeader() {
  auto tag = Byte();
  if (!tag.ok()) return tag.status();
  uint64_t n = 0;
  if ((*tag & 0xf0) == 0x90) {
    n = *tag & 0x0f;
  } else if (*tag == 0xdc || *tag == 0xdd) {
    auto v = BigEndian(*tag == 0xdc ? 2 : 4);
    if (!v.ok()) return v.status();
    n = *v;
  } else {
    return Unexpected(*tag, "an array");
  }
  // Every element takes at least one byte: a count beyond what is left is a lie.
  if (n > remaining()) {
    return absl::InvalidArgumentError(
        StrCat("msgpack: array of ", n, " elements in ", remaining(), " remaining bytes"));
  }
  return static_cast<uint32_t>(n);
}

absl::StatusOr<uint32_t> MsgpackReader::ReadMapHeader() {
  auto tag = Byte();
  if (!tag.ok()) return tag.status();
  uint64_t n = 0;
  if ((*tag & 0xf0) == 0x80) {
    n = *tag & 0x0f;
  } else if (*tag == 0xde || *tag == 0xdf) {
    auto v = BigEndian(*tag == 0xde ? 2 : 4);
    if (!v.ok()) return v.status();
    n = *v;
  } else {
    return Unexpected(*tag, "a map");
  }
  if (n * 2 > remaining()) {
    return absl::InvalidArgumentError(
        StrCat("msgpack: map of ", n, " pairs in ", remaining(), " remaining bytes"));
  }
  return static_cast<uint32_t>(n);
}

absl::StatusOr<std::vector<std::pair<std::string_view, std::string_view>>> DecodeXattrs(
    std::string_view msgpack) {
  MsgpackReader reader(msgpack);
  auto count = reader.ReadMapHeader();
  if (!count.ok()) return count.status();
  std::vector<std::pair<std::string_view, std::string_view>> out;
  out.reserve(*count);
  for (uint32_t i = 0; i < *count; ++i) {
    auto name = reader.ReadStr();
    if (!name.ok()) return name.status();
    auto value = reader.ReadBin();
    if (!value.ok()) return value.status();
    if (name->empty() || name->size() > kMaxXattrName ||
        name->find('\0') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          StrCat("xattrs: invalid attribute name of ", name->size(), " bytes"));
    }
    if (value->size() > kMaxXattrValue) {
      return absl::InvalidArgumentError(
          StrCat("xattrs: value of ", *name, " has ", value->size(), " bytes (max 65536)"));
    }
    out.emplace_back(*name, *value);
  }
  if (!reader.AtEnd()) {
    return absl::InvalidArgumentError(
        StrCat("xattrs: ", reader.remaining(), " trailing bytes after the map"));
  }
  std::vector<std::string_view> names;
  names.reserve(out.size());
  for (const auto& [name, value] : out) names.push_back(name);
  std::sort(names.begin(), names.end());
  if (std::adjacent_find(names.begin(), names.end()) != names.end()) {
    return absl::InvalidArgumentError("xattrs: an attribute name appears twice");
  }
  return out;
}

void MsgpackAppendUint(std::string& out, uint64_t v) {
  if (v <= 0x7f) {
    out.push_back(static_cast<char>(v));
  } else if (v <= 0xff) {
    out.push_back(static_cast<char>(0xcc));
    AppendBigEndian(out, v, 1);
  } else if (v <= 0xffff) {
    out.push_back(static_cast<char>(0xcd));
    AppendBigEndian(out, v, 2);
  } else if (v <= 0xffffffffu) {
    out.push_back(static_cast<char>(0xce));
    AppendBigEndian(out, v, 4);
  } else {
    out.push_back(static_cast<char>(0xcf));
    AppendBigEndian(out, v, 8);
  }
}

void MsgpackAppendStr(std::string& out, std::string_view s) {
  if (s.size() <= 31) {
    out.push_back(static_cast<char>(0xa0 | s.size()));
  } else if (s.size() <= 0xff) {
    out.push_back(static_cast<char>(0xd9));
    AppendBigEndian(out, s.size(), 1);
  } else if (s.size() <= 0xffff) {
    out.push_back(static_cast<char>(0xda));
    AppendBigEndian(out, s.size(), 2);
  } else {
    out.push_back(static_cast<char>(0xdb));
    AppendBigEndian(out, s.size(), 4);
  }
  out.append(s);
}

void MsgpackAppendBin(std::string& out, std::string_view b) {
  if (b.size() <= 0xff) {
    out.push_back(static_cast<char>(0xc4));
    AppendBigEndian(out, b.size(), 1);
  } else if (b.size() <= 0xffff) {
    out.push_back(static_cast<char>(0xc5));
    AppendBigEndian(out, b.size(), 2);
  } else {
    out.push_back(static_cast<char>(0xc6));
    AppendBigEndian(out, b.size(), 4);
  }
  out.append(b);
}

void MsgpackAppendArrayHeader(std::string& out, uint32_t n) {
  if (n <= 15) {
    out.push_back(static_cast<char>(0x90 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0xdc));
    AppendBigEndian(out, n, 2);
  } else {
    out.push_back(static_cast<char>(0xdd));
    AppendBigEndian(out, n, 4);
  }
}

void MsgpackAppendMapHeader(std::string& out, uint32_t n) {
  if (n <= 15) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0xde));
    AppendBigEndian(out, n, 2);
  } else {
    out.push_back(static_cast<char>(0xdf));
    AppendBigEndian(out, n, 4);
  }
}

}  // namespace ota::image::v1
