#include "common/image/legacy/list_lines.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image {
namespace {

// Linux PATH_MAX includes the terminating NUL.
constexpr size_t kMaxPathBytes = 4095;
constexpr std::string_view kEscapedQuote = "'\\''";

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// A field value for an error message: quoted, shortened, non-printable bytes as \xNN.
std::string Shown(std::string_view value) {
  constexpr size_t kMaxShown = 80;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (value.size() > kMaxShown) out.append("...");
  out.push_back('"');
  return out;
}

// Strips the line end; an empty line is an error (ParseListFile skips blank lines itself).
absl::StatusOr<std::string_view> StripLineEnd(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.empty()) return Invalid("empty line");
  return line;
}

// Takes the text up to the next ',' off `rest` (and the ','). Fails when there is no ','.
absl::StatusOr<std::string_view> TakeField(std::string_view& rest, std::string_view name) {
  size_t comma = rest.find(',');
  if (comma == std::string_view::npos) {
    return Invalid(StrCat("missing ',' after ", name, " field"));
  }
  std::string_view field = rest.substr(0, comma);
  rest.remove_prefix(comma + 1);
  return field;
}

absl::StatusOr<uint64_t> ParseDecimal(std::string_view field, std::string_view name, uint64_t max) {
  if (field.empty()) return Invalid(StrCat(name, " is empty"));
  uint64_t value = 0;
  for (char c : field) {
    if (c < '0' || c > '9') return Invalid(StrCat(name, " ", Shown(field), " is not decimal"));
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) {
      return Invalid(StrCat(name, " ", Shown(field), " is larger than ", max));
    }
    value = value * 10 + digit;
  }
  return value;
}

absl::StatusOr<uint32_t> ParseMode(std::string_view field) {
  if (field.empty()) return Invalid("mode is empty");
  uint32_t value = 0;
  for (char c : field) {
    if (c < '0' || c > '7') return Invalid(StrCat("mode ", Shown(field), " is not octal"));
    value = value * 8 + static_cast<uint32_t>(c - '0');
    if (value > 07777) return Invalid(StrCat("mode ", Shown(field), " is larger than 07777"));
  }
  return value;
}

// Parses "MODE,UID,GID," off the front of `rest`.
absl::Status ParseModeUidGid(std::string_view& rest, uint32_t* mode, uint32_t* uid, uint32_t* gid) {
  constexpr uint64_t kMaxId = std::numeric_limits<uint32_t>::max();
  OTA_ASSIGN_OR_RETURN(std::string_view mode_field, TakeField(rest, "mode"));
  OTA_ASSIGN_OR_RETURN(*mode, ParseMode(mode_field));
  OTA_ASSIGN_OR_RETURN(std::string_view uid_field, TakeField(rest, "uid"));
  OTA_ASSIGN_OR_RETURN(uint64_t uid_value, ParseDecimal(uid_field, "uid", kMaxId));
  OTA_ASSIGN_OR_RETURN(std::string_view gid_field, TakeField(rest, "gid"));
  OTA_ASSIGN_OR_RETURN(uint64_t gid_value, ParseDecimal(gid_field, "gid", kMaxId));
  *uid = static_cast<uint32_t>(uid_value);
  *gid = static_cast<uint32_t>(gid_value);
  return absl::OkStatus();
}

// Takes one single-quoted field off the front of `rest`: "'" + text + "'", where a quote inside
// the text is written '\''. Returns the unescaped text: a view into the line when nothing needed
// unescaping, else into `scratch`. A quote that is neither '\'' nor the closing one is refused,
// so a malformed line cannot silently shift fields.
absl::StatusOr<std::string_view> TakeQuoted(std::string_view& rest, std::string_view name,
                                            std::string& scratch) {
  if (rest.empty() || rest.front() != '\'') {
    return Invalid(StrCat(name, " must be single-quoted, got ", Shown(rest)));
  }
  size_t pos = 1;
  bool escaped = false;
  scratch.clear();
  while (true) {
    size_t quote = rest.find('\'', pos);
    if (quote == std::string_view::npos) return Invalid(StrCat(name, " has no closing quote"));
    if (rest.substr(quote, kEscapedQuote.size()) == kEscapedQuote) {
      scratch.append(rest.substr(pos, quote - pos));
      scratch.push_back('\'');
      escaped = true;
      pos = quote + kEscapedQuote.size();
      continue;
    }
    std::string_view text;
    if (escaped) {
      scratch.append(rest.substr(pos, quote - pos));
      text = scratch;
    } else {
      text = rest.substr(1, quote - 1);
    }
    rest.remove_prefix(quote + 1);
    return text;
  }
}

// 64 hex digits (either case) into a digest, through a table: crypto::FromHex's per-digit
// branches showed up in profiles of 300k-line lists. false on anything else.
bool ParseHexDigest(std::string_view hex, crypto::Sha256Digest* digest) {
  static constexpr uint8_t kNotHex = 0x10;
  static constexpr std::array<uint8_t, 256> kNibble = [] {
    std::array<uint8_t, 256> table{};
    table.fill(kNotHex);
    for (int c = 0; c < 10; ++c) table['0' + c] = static_cast<uint8_t>(c);
    for (int c = 0; c < 6; ++c) {
      table['a' + c] = static_cast<uint8_t>(10 + c);
      table['A' + c] = static_cast<uint8_t>(10 + c);
    }
    return table;
  }();
  if (hex.size() != 2 * digest->size()) return false;
  unsigned invalid = 0;  // has kNotHex once any digit was not hex
  for (size_t i = 0; i < digest->size(); ++i) {
    const unsigned hi = kNibble[static_cast<unsigned char>(hex[2 * i])];
    const unsigned lo = kNibble[static_cast<unsigned char>(hex[2 * i + 1])];
    invalid |= hi | lo;
    (*digest)[i] = static_cast<uint8_t>((hi & 0xfu) << 4 | (lo & 0xfu));
  }
  return (invalid & kNotHex) == 0;
}

absl::Status ExpectEnd(std::string_view rest, std::string_view after) {
  if (!rest.empty()) return Invalid(StrCat("unexpected ", Shown(rest), " after ", after));
  return absl::OkStatus();
}

absl::Status ValidateSymlinkTarget(std::string_view target) {
  if (target.empty()) return Invalid("symlink target is empty");
  if (target.find('\0') != std::string_view::npos) {
    return Invalid(StrCat("symlink target ", Shown(target), " contains NUL"));
  }
  if (target.size() > kMaxPathBytes) {
    return Invalid(StrCat("symlink target is longer than ", kMaxPathBytes, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string UnescapeQuoted(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(kEscapedQuote, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.push_back('\'');
    pos = hit + kEscapedQuote.size();
  }
  out.append(s.substr(pos));
  return out;
}

std::string EscapeQuoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    if (c == '\'') {
      out.append(kEscapedQuote);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::Status ValidateImagePath(std::string_view path) {
  auto bad = [&](std::string_view why) { return Invalid(StrCat("path ", Shown(path), ": ", why)); };
  if (path.empty()) return bad("is empty");
  if (path.front() != '/') return bad("is not absolute");
  if (path.size() == 1) return bad("is the root itself");
  if (path.size() > kMaxPathBytes) return bad(StrCat("is longer than ", kMaxPathBytes, " bytes"));
  if (path.find('\0') != std::string_view::npos) return bad("contains NUL");
  // Every component after the leading '/': no empty ones ("//", trailing '/'), no "." or "..".
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view component = path.substr(start, end - start);
    if (component.empty()) return bad("has an empty component");
    if (component == "." || component == "..") return bad("has a '.' or '..' component");
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::Status ParseDirLine(std::string_view line, Manifest& manifest) {
  OTA_ASSIGN_OR_RETURN(std::string_view rest, StripLineEnd(line));
  DirEntry entry;
  OTA_RETURN_IF_ERROR(ParseModeUidGid(rest, &entry.mode, &entry.uid, &entry.gid));
  std::string scratch;
  OTA_ASSIGN_OR_RETURN(std::string_view path, TakeQuoted(rest, "path", scratch));
  OTA_RETURN_IF_ERROR(ExpectEnd(rest, "the path"));
  OTA_RETURN_IF_ERROR(ValidateImagePath(path));
  entry.path = manifest.Intern(path);
  manifest.dirs.push_back(entry);
  return absl::OkStatus();
}

absl::Status ParseSymlinkLine(std::string_view line, Manifest& manifest) {
  OTA_ASSIGN_OR_RETURN(std::string_view rest, StripLineEnd(line));
  SymlinkEntry entry;
  OTA_RETURN_IF_ERROR(ParseModeUidGid(rest, &entry.mode, &entry.uid, &entry.gid));
  std::string link_scratch;
  OTA_ASSIGN_OR_RETURN(std::string_view link, TakeQuoted(rest, "link path", link_scratch));
  if (rest.empty() || rest.front() != ',') {
    return Invalid(StrCat("missing ',' after the link path, got ", Shown(rest)));
  }
  rest.remove_prefix(1);
  std::string target_scratch;
  OTA_ASSIGN_OR_RETURN(std::string_view target, TakeQuoted(rest, "target", target_scratch));
  OTA_RETURN_IF_ERROR(ExpectEnd(rest, "the target"));
  OTA_RETURN_IF_ERROR(ValidateImagePath(link));
  OTA_RETURN_IF_ERROR(ValidateSymlinkTarget(target));
  entry.path = manifest.Intern(link);
  entry.target = manifest.Intern(target);
  manifest.symlinks.push_back(entry);
  return absl::OkStatus();
}

absl::Status ParseRegularLine(std::string_view line, Manifest& manifest) {
  constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
  constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();
  OTA_ASSIGN_OR_RETURN(std::string_view rest, StripLineEnd(line));
  RegularEntry entry;
  OTA_RETURN_IF_ERROR(ParseModeUidGid(rest, &entry.mode, &entry.uid, &entry.gid));
  OTA_ASSIGN_OR_RETURN(std::string_view nlink_field, TakeField(rest, "nlink"));
  OTA_ASSIGN_OR_RETURN(uint64_t nlink, ParseDecimal(nlink_field, "nlink", kMaxU32));
  if (nlink == 0) return Invalid("nlink is 0");
  entry.nlink = static_cast<uint32_t>(nlink);
  OTA_ASSIGN_OR_RETURN(std::string_view sha_field, TakeField(rest, "sha256"));
  if (!ParseHexDigest(sha_field, &entry.sha256)) {
    return Invalid(StrCat("sha256 ", Shown(sha_field), " is not 64 hex digits"));
  }
  std::string scratch;
  OTA_ASSIGN_OR_RETURN(std::string_view path, TakeQuoted(rest, "path", scratch));

  // Optional tail: [,SIZE[,INODE[,COMPRESS_ALG]]], each field may be empty.
  if (!rest.empty()) {
    if (rest.front() != ',') {
      return Invalid(StrCat("unexpected ", Shown(rest), " after the path"));
    }
    rest.remove_prefix(1);
    std::string_view fields[3];
    size_t count = 0;
    while (true) {
      size_t comma = rest.find(',');
      if (count == 3) {
        return Invalid(
            StrCat("unexpected ", Shown(StrCat(",", rest)), " after the compression field"));
      }
      fields[count++] = rest.substr(0, comma);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (!fields[0].empty()) {
      OTA_ASSIGN_OR_RETURN(entry.size, ParseDecimal(fields[0], "size", kMaxU64));
      entry.has_size = true;
    }
    if (!fields[1].empty()) {
      OTA_ASSIGN_OR_RETURN(entry.inode, ParseDecimal(fields[1], "inode", kMaxU64));
      entry.has_inode = true;
    }
    if (fields[2] == "zst" || fields[2] == "zstd") {
      entry.compression = Compression::kZstd;
    } else if (!fields[2].empty()) {
      return Invalid(StrCat("unknown compression algorithm ", Shown(fields[2])));
    }
  }
  OTA_RETURN_IF_ERROR(ValidateImagePath(path));
  entry.path = manifest.Intern(path);
  manifest.regulars.push_back(entry);
  return absl::OkStatus();
}

absl::Status ParsePersistentLine(std::string_view line, Manifest& manifest) {
  OTA_ASSIGN_OR_RETURN(std::string_view rest, StripLineEnd(line));
  std::string scratch;
  OTA_ASSIGN_OR_RETURN(std::string_view path, TakeQuoted(rest, "path", scratch));
  OTA_RETURN_IF_ERROR(ExpectEnd(rest, "the path"));
  OTA_RETURN_IF_ERROR(ValidateImagePath(path));
  manifest.persistents.push_back(manifest.Intern(path));
  return absl::OkStatus();
}

absl::Status ParseListFile(ListKind kind, std::string_view content, std::string_view file_name,
                           Manifest& manifest) {
  // Manifest refers to its arena with 32-bit offsets.
  if (manifest.arena_bytes() + content.size() > std::numeric_limits<uint32_t>::max()) {
    return Invalid(StrCat(file_name, ": ", content.size(), " bytes is too large for a list file"));
  }
  size_t lines = static_cast<size_t>(std::count(content.begin(), content.end(), '\n')) + 1;
  manifest.Reserve(manifest.arena_bytes() + content.size());
  absl::Status (*parse)(std::string_view, Manifest&) = nullptr;
  switch (kind) {
    case ListKind::kDirs:
      parse = ParseDirLine;
      manifest.dirs.reserve(manifest.dirs.size() + lines);
      break;
    case ListKind::kSymlinks:
      parse = ParseSymlinkLine;
      manifest.symlinks.reserve(manifest.symlinks.size() + lines);
      break;
    case ListKind::kRegulars:
      parse = ParseRegularLine;
      manifest.regulars.reserve(manifest.regulars.size() + lines);
      break;
    case ListKind::kPersistents:
      parse = ParsePersistentLine;
      manifest.persistents.reserve(manifest.persistents.size() + lines);
      break;
  }

  size_t line_number = 0;
  size_t start = 0;
  while (start <= content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(start, end - start);
    ++line_number;
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank
    if (absl::Status status = parse(line, manifest); !status.ok()) {
      return Invalid(StrCat(file_name, ":", line_number, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

std::string FormatMode(uint32_t mode) {
  std::string out(4, '0');
  uint32_t bits = mode & 07777;
  for (int i = 3; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>('0' + (bits & 7));
    bits >>= 3;
  }
  return out;
}

namespace {

void AppendQuoted(std::string& out, std::string_view text) {
  out.push_back('\'');
  for (char c : text) {
    if (c == '\'') {
      out.append(kEscapedQuote);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
}

std::string ModeUidGid(uint32_t mode, uint32_t uid, uint32_t gid) {
  return StrCat(FormatMode(mode), ",", uid, ",", gid, ",");
}

}  // namespace

std::string FormatDirLine(uint32_t mode, uint32_t uid, uint32_t gid, std::string_view path) {
  std::string out = ModeUidGid(mode, uid, gid);
  AppendQuoted(out, path);
  return out;
}

std::string FormatSymlinkLine(uint32_t mode, uint32_t uid, uint32_t gid, std::string_view path,
                              std::string_view target) {
  std::string out = ModeUidGid(mode, uid, gid);
  AppendQuoted(out, path);
  out.push_back(',');
  AppendQuoted(out, target);
  return out;
}

std::string FormatRegularLine(uint32_t mode, uint32_t uid, uint32_t gid, uint32_t nlink,
                              std::string_view sha256_hex, std::string_view path, uint64_t size,
                              std::string_view inode, std::string_view compress_alg) {
  std::string out = ModeUidGid(mode, uid, gid);
  StrAppend(&out, nlink, ",", sha256_hex, ",");
  AppendQuoted(out, path);
  StrAppend(&out, ",", size, ",", inode, ",", compress_alg);
  return out;
}

std::string FormatPersistentLine(std::string_view path) {
  std::string out;
  AppendQuoted(out, path);
  return out;
}

}  // namespace ota::image
