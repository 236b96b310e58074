#include "common/image/legacy/metadata.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/crypto/signing.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image {
namespace {

constexpr std::string_view kBase64UrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The header tier4's generator writes (and we write); never checked on input, as upstream.
constexpr std::string_view kJwtHeader = R"({"alg": "ES256"})";

// A signed payload is an array of flat objects; anything nested deeper is not ours and is
// refused before the JSON parser sees it, so hostile nesting cannot exhaust the stack.
constexpr int kMaxPayloadNesting = 8;

// Largest metadata.jwt we accept; real ones are well under 2 KiB.
constexpr size_t kMaxJwtSize = 1 << 20;

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Python json.dumps(ensure_ascii=True) string escaping. Input is UTF-8; bytes that are not valid
// UTF-8 become lone surrogates \udcXX, as Python's os.fsdecode (surrogateescape) would give.
void AppendPythonJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto append_u16 = [&out](uint32_t unit) {
    out.append("\\u");
    for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(unit >> shift) & 0xf]);
  };
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto byte = static_cast<unsigned char>(s[i]);
    if (byte < 0x80) {
      switch (byte) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        default:
          if (byte >= 0x20 && byte < 0x7f) {
            out.push_back(static_cast<char>(byte));
          } else {
            append_u16(byte);  // other controls and DEL
          }
      }
      ++i;
      continue;
    }
    // Multi-byte UTF-8: decode strictly (no overlongs, no surrogates, <= U+10FFFF).
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min_cp = 0;
    if ((byte & 0xe0) == 0xc0) {
      len = 2, cp = byte & 0x1f, min_cp = 0x80;
    } else if ((byte & 0xf0) == 0xe0) {
      len = 3, cp = byte & 0x0f, min_cp = 0x800;
    } else if ((byte & 0xf8) == 0xf0) {
      len = 4, cp = byte & 0x07, min_cp = 0x10000;
    }
    bool valid = len != 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      valid = (cont & 0xc0) == 0x80;
      cp = (cp << 6) | (cont & 0x3f);
    }
    valid = valid && cp >= min_cp && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    if (!valid) {
      append_u16(0xdc00 | byte);
      ++i;
      continue;
    }
    if (cp >= 0x10000) {
      const uint32_t v = cp - 0x10000;
      append_u16(0xd800 | (v >> 10));
      append_u16(0xdc00 | (v & 0x3ff));
    } else {
      append_u16(cp);
    }
    i += len;
  }
  out.push_back('"');
}

void AppendFileRef(std::string& out, std::string_view key, const SignedFileRef& ref) {
  out.append("{");
  AppendPythonJsonString(out, key);
  out.append(": ");
  AppendPythonJsonString(out, ref.file);
  out.append(", \"hash\": ");
  AppendPythonJsonString(out, crypto::ToHex(ref.sha256));
  out.append("}");
}

void AppendStringEntry(std::string& out, std::string_view key, std::string_view value) {
  out.append("{");
  AppendPythonJsonString(out, key);
  out.append(": ");
  AppendPythonJsonString(out, value);
  out.append("}");
}

// Deepest bracket nesting of a JSON text (strings skipped); stops counting past `limit`.
int JsonNestingDepth(std::string_view text, int limit) {
  int depth = 0;
  int max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) break;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// Where and why `text` is not JSON, without exceptions: a SAX pass that only listens for errors.
std::string JsonSyntaxError(std::string_view text) {
  struct ErrorListener : nlohmann::json_sax<nlohmann::json> {
    std::string error = "unknown error";
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t position, const std::string& /*last_token*/,
                     const nlohmann::detail::exception& ex) override {
      error = StrCat("byte ", position, ": ", ex.what());
      return false;
    }
  };
  ErrorListener listener;
  nlohmann::json::sax_parse(text, &listener);
  return listener.error;
}

// List and certificate names are single files next to metadata.jwt.
absl::Status ValidateFileName(std::string_view key, std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError(StrCat("'", key, "': empty file name"));
  if (name.find('/') != std::string_view::npos || name.find('\\') != std::string_view::npos ||
      name.find("..") != std::string_view::npos || name == "." ||
      name.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        StrCat("'", key, "': unsafe file name '", name, "' (must be a plain file name)"));
  }
  return absl::OkStatus();
}

// rootfs directories are relative URL paths below the image base ("data", "data.zst").
absl::Status ValidateRelativeDir(std::string_view key, std::string_view dir) {
  auto unsafe = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("'", key, "': unsafe directory '", dir, "': ", why));
  };
  if (dir.empty()) return absl::InvalidArgumentError(StrCat("'", key, "': empty directory"));
  if (dir.front() == '/') return unsafe("absolute");
  for (char c : dir) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return unsafe("control character");
    if (c == '?' || c == '#' || c == '\\') return unsafe("'?', '#' or '\\' not allowed");
  }
  size_t start = 0;
  while (start <= dir.size()) {
    size_t end = dir.find('/', start);
    if (end == std::string_view::npos) end = dir.size();
    std::string_view segment = dir.substr(start, end - start);
    if (segment == "." || segment == "..") return unsafe("'.' or '..' component");
    if (segment.empty() && end != dir.size()) return unsafe("empty component");
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StringValue(const nlohmann::json& value, std::string_view key) {
  if (!value.is_string()) {
    return absl::InvalidArgumentError(
        StrCat("'", key, "': expected a string, got ", std::string(value.type_name())));
  }
  return value.get<std::string>();
}

// Python int() of a string: optional surrounding whitespace, decimal digits.
absl::StatusOr<uint64_t> ParseTotalRegularSize(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (!value.is_string()) {
    return absl::InvalidArgumentError(StrCat(
        "'total_regular_size': expected a decimal string, got ", std::string(value.type_name())));
  }
  const std::string& text = value.get_ref<const std::string&>();
  std::string_view digits = text;
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  while (!digits.empty() && kSpace.find(digits.front()) != std::string_view::npos) {
    digits.remove_prefix(1);
  }
  while (!digits.empty() && kSpace.find(digits.back()) != std::string_view::npos) {
    digits.remove_suffix(1);
  }
  uint64_t size = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
  if (digits.empty() || digits.front() < '0' || digits.front() > '9' || ec != std::errc() ||
      end != digits.data() + digits.size()) {
    return absl::InvalidArgumentError(
        StrCat("'total_regular_size': not a decimal number: '", text, "'"));
  }
  return size;
}

struct PayloadFields {
  std::optional<int> version;
  std::optional<SignedFileRef> directory, symboliclink, regular, persistent, certificate;
  std::optional<std::string> rootfs_directory, compressed_rootfs_directory;
  std::optional<uint64_t> total_regular_size;
};

absl::Status ParseFileRef(const nlohmann::json& entry, std::string_view key,
                          std::optional<SignedFileRef>& slot) {
  if (slot.has_value()) return absl::InvalidArgumentError(StrCat("'", key, "': given twice"));
  OTA_ASSIGN_OR_RETURN(std::string file, StringValue(entry.at(std::string(key)), key));
  OTA_RETURN_IF_ERROR(ValidateFileName(key, file));
  auto hash_it = entry.find("hash");
  if (hash_it == entry.end()) {
    return absl::InvalidArgumentError(StrCat("'", key, "' (", file, "): missing 'hash'"));
  }
  OTA_ASSIGN_OR_RETURN(std::string hash_hex, StringValue(*hash_it, "hash"));
  SignedFileRef ref;
  if (!crypto::FromHex(hash_hex, &ref.sha256)) {
    return absl::InvalidArgumentError(
        StrCat("'", key, "' (", file, "): hash '", hash_hex, "' is not 64 hex digits"));
  }
  ref.file = std::move(file);
  slot = std::move(ref);
  return absl::OkStatus();
}

absl::Status ParseDirField(const nlohmann::json& entry, std::string_view key,
                           std::optional<std::string>& slot) {
  if (slot.has_value()) return absl::InvalidArgumentError(StrCat("'", key, "': given twice"));
  OTA_ASSIGN_OR_RETURN(std::string dir, StringValue(entry.at(std::string(key)), key));
  OTA_RETURN_IF_ERROR(ValidateRelativeDir(key, dir));
  slot = std::move(dir);
  return absl::OkStatus();
}

// One payload entry. Upstream looks at the known keys of every entry; unknown keys are ignored so
// that newer generators' additions do not break us.
absl::Status ParseEntry(const nlohmann::json& entry, PayloadFields& fields) {
  if (!entry.is_object()) {
    return absl::InvalidArgumentError(
        StrCat("expected an object, got ", std::string(entry.type_name())));
  }
  // version: the first entry with a truthy "version" wins (upstream).
  if (auto it = entry.find("version"); it != entry.end() && !fields.version.has_value()) {
    const nlohmann::json& v = *it;
    const bool falsy = v.is_null() || (v.is_boolean() && !v.get<bool>()) ||
                       (v.is_number() && v.get<double>() == 0) ||
                       (v.is_string() && v.get_ref<const std::string&>().empty());
    if (!falsy) {
      if (!v.is_number_integer() || v.get<int64_t>() < std::numeric_limits<int>::min() ||
          v.get<int64_t>() > std::numeric_limits<int>::max() ||
          (v.is_number_unsigned() &&
           v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max()))) {
        return absl::InvalidArgumentError(StrCat("'version': expected an integer, got ", v.dump()));
      }
      fields.version = static_cast<int>(v.get<int64_t>());
    }
  }
  const std::pair<std::string_view, std::optional<SignedFileRef>*> refs[] = {
      {"directory", &fields.directory},     {"symboliclink", &fields.symboliclink},
      {"regular", &fields.regular},         {"persistent", &fields.persistent},
      {"certificate", &fields.certificate},
  };
  for (const auto& [key, slot] : refs) {
    if (entry.contains(key)) OTA_RETURN_IF_ERROR(ParseFileRef(entry, key, *slot));
  }
  if (entry.contains("rootfs_directory")) {
    OTA_RETURN_IF_ERROR(ParseDirField(entry, "rootfs_directory", fields.rootfs_directory));
  }
  if (entry.contains("compressed_rootfs_directory")) {
    OTA_RETURN_IF_ERROR(
        ParseDirField(entry, "compressed_rootfs_directory", fields.compressed_rootfs_directory));
  }
  if (auto it = entry.find("total_regular_size"); it != entry.end()) {
    if (fields.total_regular_size.has_value()) {
      return absl::InvalidArgumentError("'total_regular_size': given twice");
    }
    OTA_ASSIGN_OR_RETURN(fields.total_regular_size, ParseTotalRegularSize(*it));
  }
  return absl::OkStatus();
}

absl::Status ParsePayload(std::string_view json_text, Metadata& metadata) {
  if (JsonNestingDepth(json_text, kMaxPayloadNesting) > kMaxPayloadNesting) {
    return absl::InvalidArgumentError("payload: JSON nested too deeply");
  }
  nlohmann::json payload = nlohmann::json::parse(json_text, /*cb=*/nullptr,
                                                 /*allow_exceptions=*/false);
  if (payload.is_discarded()) {
    return absl::InvalidArgumentError(
        StrCat("payload: not valid JSON: ", JsonSyntaxError(json_text)));
  }
  if (!payload.is_array()) {
    return absl::InvalidArgumentError(
        StrCat("payload: expected a JSON array, got ", std::string(payload.type_name())));
  }
  PayloadFields fields;
  for (size_t i = 0; i < payload.size(); ++i) {
    OTA_RETURN_IF_ERROR(WithContext(ParseEntry(payload[i], fields), StrCat("payload entry ", i)));
  }
  auto missing = [](std::string_view key) {
    return absl::InvalidArgumentError(StrCat("payload: missing '", key, "'"));
  };
  if (!fields.version) return missing("version");
  if (!fields.directory) return missing("directory");
  if (!fields.symboliclink) return missing("symboliclink");
  if (!fields.regular) return missing("regular");
  if (!fields.persistent) return missing("persistent");
  if (!fields.certificate) return missing("certificate");
  if (!fields.rootfs_directory) return missing("rootfs_directory");
  metadata.version = *fields.version;
  metadata.directory = std::move(*fields.directory);
  metadata.symboliclink = std::move(*fields.symboliclink);
  metadata.regular = std::move(*fields.regular);
  metadata.persistent = std::move(*fields.persistent);
  metadata.certificate = std::move(*fields.certificate);
  metadata.rootfs_directory = std::move(*fields.rootfs_directory);
  metadata.compressed_rootfs_directory = std::move(fields.compressed_rootfs_directory);
  metadata.total_regular_size = fields.total_regular_size;
  return absl::OkStatus();
}

}  // namespace

std::string Base64UrlEncode(std::string_view data, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8 |
                       static_cast<unsigned char>(data[i + 2]);
    out.push_back(kBase64UrlAlphabet[v >> 18]);
    out.push_back(kBase64UrlAlphabet[(v >> 12) & 63]);
    out.push_back(kBase64UrlAlphabet[(v >> 6) & 63]);
    out.push_back(kBase64UrlAlphabet[v & 63]);
  }
  const size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
    out.push_back(kBase64UrlAlphabet[v >> 18]);
    out.push_back(kBase64UrlAlphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kBase64UrlAlphabet[(v >> 6) & 63]);
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

absl::StatusOr<std::string> Base64UrlDecode(std::string_view text) {
  // Padding is optional, but when present it must be exactly what completes the last quantum.
  size_t padding = 0;
  while (padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  std::string_view body = text.substr(0, text.size() - padding);
  if (padding > 2 || (padding > 0 && text.size() % 4 != 0)) {
    return absl::InvalidArgumentError("base64url: wrong '=' padding");
  }
  if (body.size() % 4 == 1) {
    return absl::InvalidArgumentError(
        StrCat("base64url: impossible length ", body.size(), " (a lone 6-bit group at the end)"));
  }
  if (padding > 0 && (body.size() % 4) + padding != 4) {
    return absl::InvalidArgumentError("base64url: wrong '=' padding");
  }
  std::string out;
  out.reserve(body.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    const int v = Base64UrlValue(body[i]);
    if (v < 0) {
      const auto c = static_cast<unsigned char>(body[i]);
      return absl::InvalidArgumentError(StrCat("base64url: invalid character ",
                                               (c >= 0x20 && c < 0x7f)
                                                   ? StrCat("'", static_cast<char>(c), "'")
                                                   : StrCat("byte ", static_cast<int>(c)),
                                               " at offset ", i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

absl::StatusOr<Metadata> ParseMetadataJwt(std::string_view jwt) {
  if (jwt.size() > kMaxJwtSize) {
    return absl::InvalidArgumentError(
        StrCat("too large (", jwt.size(), " bytes, limit ", kMaxJwtSize, ")"));
  }
  // A trailing newline (hand-edited or `echo`ed files) is tolerated, as upstream's decoder does.
  while (!jwt.empty() &&
         (jwt.back() == '\n' || jwt.back() == '\r' || jwt.back() == ' ' || jwt.back() == '\t')) {
    jwt.remove_suffix(1);
  }
  const size_t first_dot = jwt.find('.');
  const size_t second_dot =
      first_dot == std::string_view::npos ? first_dot : jwt.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos ||
      jwt.find('.', second_dot + 1) != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "expected three '.'-separated segments: header.payload.signature");
  }
  const std::string_view header_b64 = jwt.substr(0, first_dot);
  const std::string_view payload_b64 = jwt.substr(first_dot + 1, second_dot - first_dot - 1);
  const std::string_view signature_b64 = jwt.substr(second_dot + 1);

  // The header is decoded (so garbage is refused) but, as upstream, its content is not trusted.
  OTA_RETURN_IF_ERROR(WithContext(Base64UrlDecode(header_b64).status(), "header segment"));
  auto payload_json = Base64UrlDecode(payload_b64);
  if (!payload_json.ok()) return WithContext(payload_json.status(), "payload segment");
  auto signature = Base64UrlDecode(signature_b64);
  if (!signature.ok()) return WithContext(signature.status(), "signature segment");
  if (signature->empty()) return absl::InvalidArgumentError("signature segment: empty");

  Metadata metadata;
  OTA_RETURN_IF_ERROR(ParsePayload(*payload_json, metadata));
  metadata.signed_part = std::string(jwt.substr(0, second_dot));
  metadata.signature = std::move(*signature);
  return metadata;
}

std::string SerializePayloadJson(const MetadataPayload& payload) {
  std::string out = "[{\"version\": 1}, ";
  AppendFileRef(out, "directory", payload.directory);
  out.append(", ");
  AppendFileRef(out, "symboliclink", payload.symboliclink);
  out.append(", ");
  AppendFileRef(out, "regular", payload.regular);
  out.append(", ");
  AppendFileRef(out, "persistent", payload.persistent);
  out.append(", ");
  AppendStringEntry(out, "rootfs_directory", payload.rootfs_directory);
  if (payload.compressed_rootfs_directory.has_value()) {
    out.append(", ");
    AppendStringEntry(out, "compressed_rootfs_directory", *payload.compressed_rootfs_directory);
  }
  out.append(", ");
  AppendFileRef(out, "certificate", payload.certificate);
  if (payload.total_regular_size.has_value()) {
    out.append(", ");
    AppendStringEntry(out, "total_regular_size", std::to_string(*payload.total_regular_size));
  }
  out.append("]");
  return out;
}

absl::StatusOr<std::string> SignMetadataJwt(const MetadataPayload& payload,
                                            std::string_view key_pem) {
  std::string jwt =
      StrCat(Base64UrlEncode(kJwtHeader), ".", Base64UrlEncode(SerializePayloadJson(payload)));
  OTA_ASSIGN_OR_RETURN(std::string signature, crypto::SignEs256(key_pem, jwt));
  StrAppend(&jwt, ".", Base64UrlEncode(signature));
  return jwt;
}

}  // namespace ota::image
