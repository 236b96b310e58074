#include "otaclient/boot/extlinux.h"

#include "common/util/strings.h"

namespace ota::boot {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

bool IsPartuuid(std::string_view text) {
  if (text.empty() || text.size() > 36) return false;
  for (char c : text) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != '-') return false;
  }
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

// Rewrites the parameters of one APPEND line (`params` excludes the keyword and the line end).
absl::StatusOr<std::string> RewriteParams(std::string_view params, std::string_view root_token,
                                          int line_number) {
  std::string out;
  bool replaced = false;
  size_t pos = 0;
  // Where to insert root= when there is none: after the last kernel parameter.
  size_t insert_at = std::string::npos;
  while (pos < params.size()) {
    if (IsBlank(params[pos])) {
      out.push_back(params[pos++]);
      continue;
    }
    size_t end = pos;
    bool in_quote = false;
    while (end < params.size() && (in_quote || !IsBlank(params[end]))) {
      if (params[end] == '"') in_quote = !in_quote;
      ++end;
    }
    if (in_quote) {
      return absl::InvalidArgumentError(
          StrCat("extlinux.conf line ", line_number, ": unterminated quote in APPEND"));
    }
    std::string_view token = params.substr(pos, end - pos);
    if (token == "--") {
      // Init's arguments follow; our root= must come before them.
      if (!replaced) insert_at = out.size();
      out.append(params.substr(pos));
      pos = params.size();
      break;
    }
    // The kernel also reads a parameter quoted as a whole ("root=/dev/x") as root=.
    if (token.substr(0, 5) == "root=" || token.substr(0, 6) == "\"root=") {
      out.append(root_token);
      replaced = true;
    } else {
      out.append(token);
    }
    pos = end;
  }
  if (!replaced) {
    if (insert_at == std::string::npos) {
      // After the last parameter, keeping trailing blanks after it.
      size_t last = out.find_last_not_of(" \t");
      insert_at = last == std::string::npos ? out.size() : last + 1;
      out.insert(insert_at, StrCat(" ", root_token));
    } else {
      out.insert(insert_at, StrCat(root_token, " "));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<ExtlinuxRewrite> RewriteExtlinuxRoot(std::string_view conf,
                                                    std::string_view partuuid) {
  if (!IsPartuuid(partuuid)) {
    return absl::InvalidArgumentError(
        StrCat("extlinux.conf: '", partuuid, "' is not a partition UUID"));
  }
  if (conf.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("extlinux.conf: contains a NUL byte");
  }
  const std::string root_token = StrCat("root=PARTUUID=", partuuid);
  ExtlinuxRewrite result;
  result.content.reserve(conf.size() + 64);
  size_t line_start = 0;
  int line_number = 0;
  while (line_start < conf.size()) {
    ++line_number;
    size_t newline = conf.find('\n', line_start);
    size_t line_end = newline == std::string_view::npos ? conf.size() : newline;
    // The line's body excludes "\n" and a "\r" before it.
    size_t body_end = line_end;
    if (body_end > line_start && conf[body_end - 1] == '\r') --body_end;
    std::string_view body = conf.substr(line_start, body_end - line_start);
    std::string_view terminator = conf.substr(
        body_end, (newline == std::string_view::npos ? conf.size() : newline + 1) - body_end);

    size_t keyword_start = 0;
    while (keyword_start < body.size() && IsBlank(body[keyword_start])) ++keyword_start;
    size_t keyword_end = keyword_start;
    while (keyword_end < body.size() && !IsBlank(body[keyword_end])) ++keyword_end;
    std::string_view keyword = body.substr(keyword_start, keyword_end - keyword_start);
    if (EqualsIgnoreCase(keyword, "APPEND")) {
      absl::StatusOr<std::string> params =
          RewriteParams(body.substr(keyword_end), root_token, line_number);
      if (!params.ok()) return params.status();
      result.content.append(body.substr(0, keyword_end));
      result.content.append(*params);
      ++result.append_lines;
    } else {
      result.content.append(body);
    }
    result.content.append(terminator);
    line_start = newline == std::string_view::npos ? conf.size() : newline + 1;
  }
  if (result.append_lines == 0) {
    return absl::InvalidArgumentError(
        "extlinux.conf: no APPEND line, cannot point the boot entry at the slot's rootfs");
  }
  return result;
}

}  // namespace ota::boot
