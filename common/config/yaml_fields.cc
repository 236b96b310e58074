#include "common/config/yaml_fields.h"

#include <charconv>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "common/config/ecu_info.h"
#include "common/config/host.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/utf8.h"

namespace ota::config::internal {
namespace {

constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";
constexpr std::string_view kIntTag = "tag:yaml.org,2002:int";
constexpr std::string_view kBoolTag = "tag:yaml.org,2002:bool";

// yaml-cpp tags: "?" for plain scalars, "!" for quoted ones, the full URI for explicit "!!x".
bool IsPlain(const YAML::Node& node) { return node.Tag() == "?"; }
bool IsQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

std::string DescribeValue(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      if (IsQuoted(node)) return StrCat("the quoted string ", QuoteForMessage(node.Scalar()));
      if (IsPlain(node)) return QuoteForMessage(node.Scalar());
      return StrCat(QuoteForMessage(node.Scalar()), " tagged ", QuoteForMessage(node.Tag()));
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// Records where each document starts; ignores everything else.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;

  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

absl::Status Expected(const Field& field, std::string_view expected, const ParseContext& ctx) {
  return ctx.Error(field.mark, field.path,
                   StrCat("expected ", expected, ", got ", DescribeValue(field.value)));
}

// A cursor over a scalar's text for the YAML 1.1 matchers below (PyYAML's implicit resolver
// regular expressions, written out by hand: no backtracking, linear in the input).
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}
  bool AtEnd() const { return pos_ == text_.size(); }
  size_t pos() const { return pos_; }
  void Reset(size_t pos) { pos_ = pos; }
  bool Peek(const std::function<bool(char)>& pred) const { return !AtEnd() && pred(text_[pos_]); }
  bool Take(char c) {
    if (AtEnd() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool TakeIf(const std::function<bool(char)>& pred) {
    if (!Peek(pred)) return false;
    ++pos_;
    return true;
  }
  // Takes as many as match; returns how many.
  size_t TakeWhile(const std::function<bool(char)>& pred) {
    size_t start = pos_;
    while (Peek(pred)) ++pos_;
    return pos_ - start;
  }
  void TakeSign() {
    if (!Take('-')) Take('+');
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsDigitOrUnderscore(char c) { return IsDigit(c) || c == '_'; }
bool IsBinaryOrUnderscore(char c) { return c == '0' || c == '1' || c == '_'; }
bool IsOctalOrUnderscore(char c) { return (c >= '0' && c <= '7') || c == '_'; }
bool IsHexOrUnderscore(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '_';
}
bool IsZeroToFive(char c) { return c >= '0' && c <= '5'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// (?::[0-5]?[0-9])+  — the base-60 parts of a sexagesimal number.
bool TakeBase60Parts(Cursor& c) {
  size_t parts = 0;
  while (true) {
    size_t start = c.pos();
    if (!c.Take(':')) break;
    // [0-5]?[0-9]: one digit, or two when the first is 0-5.
    if (c.TakeIf(IsZeroToFive)) {
      c.TakeIf(IsDigit);
    } else if (!c.TakeIf(IsDigit)) {
      c.Reset(start);
      break;
    }
    ++parts;
  }
  return parts > 0;
}

// PyYAML's int resolver.
bool MatchesYaml11Int(std::string_view text) {
  auto whole = [&](const std::function<bool(Cursor&)>& alternative) {
    Cursor c(text);
    c.TakeSign();
    return alternative(c) && c.AtEnd();
  };
  return whole([](Cursor& c) {
           return c.Take('0') && c.Take('b') && c.TakeWhile(IsBinaryOrUnderscore);
         }) ||
         whole([](Cursor& c) { return c.Take('0') && c.TakeWhile(IsOctalOrUnderscore); }) ||
         whole([](Cursor& c) { return c.Take('0'); }) || whole([](Cursor& c) {
           return c.TakeIf([](char ch) { return ch >= '1' && ch <= '9'; }) &&
                  (c.TakeWhile(IsDigitOrUnderscore), true);
         }) ||
         whole([](Cursor& c) {
           return c.Take('0') && c.Take('x') && c.TakeWhile(IsHexOrUnderscore);
         }) ||
         whole([](Cursor& c) {
           return c.TakeIf([](char ch) { return ch >= '1' && ch <= '9'; }) &&
                  (c.TakeWhile(IsDigitOrUnderscore), true) && TakeBase60Parts(c);
         });
}

// PyYAML's float resolver (a '.' is required: "1e3" is a string in YAML 1.1).
bool MatchesYaml11Float(std::string_view text) {
  auto exponent = [](Cursor& c) {  // (?:[eE][-+][0-9]+)?
    size_t start = c.pos();
    if (c.TakeIf([](char ch) { return ch == 'e' || ch == 'E'; }) &&
        c.TakeIf([](char ch) { return ch == '-' || ch == '+'; }) && c.TakeWhile(IsDigit) > 0) {
      return;
    }
    c.Reset(start);
  };
  auto whole = [&](const std::function<bool(Cursor&)>& alternative) {
    Cursor c(text);
    return alternative(c) && c.AtEnd();
  };
  return whole([&](Cursor& c) {
           c.TakeSign();
           if (!c.TakeIf(IsDigit)) return false;
           c.TakeWhile(IsDigitOrUnderscore);
           if (!c.Take('.')) return false;
           c.TakeWhile(IsDigitOrUnderscore);
           exponent(c);
           return true;
         }) ||
         whole([&](Cursor& c) {
           if (!c.Take('.') || c.TakeWhile(IsDigitOrUnderscore) == 0) return false;
           exponent(c);
           return true;
         }) ||
         whole([](Cursor& c) {
           c.TakeSign();
           if (!c.TakeIf(IsDigit)) return false;
           c.TakeWhile(IsDigitOrUnderscore);
           if (!TakeBase60Parts(c) || !c.Take('.')) return false;
           c.TakeWhile(IsDigitOrUnderscore);
           return true;
         }) ||
         [&] {
           std::string_view rest = text;
           if (!rest.empty() && (rest.front() == '-' || rest.front() == '+')) rest.remove_prefix(1);
           return rest == ".inf" || rest == ".Inf" || rest == ".INF";
         }() ||
         text == ".nan" || text == ".NaN" || text == ".NAN";
}

// PyYAML's timestamp resolver.
bool MatchesYaml11Timestamp(std::string_view text) {
  auto digits = [](Cursor& c, size_t min, size_t max) {
    size_t n = 0;
    while (n < max && c.TakeIf(IsDigit)) ++n;
    return n >= min;
  };
  {
    Cursor c(text);  // YYYY-MM-DD
    if (digits(c, 4, 4) && c.Take('-') && digits(c, 2, 2) && c.Take('-') && digits(c, 2, 2) &&
        c.AtEnd()) {
      return true;
    }
  }
  Cursor c(text);  // YYYY-M-D(T| +)H:MM:SS(.f)?( *(Z|+H(:MM)?))?
  if (!(digits(c, 4, 4) && c.Take('-') && digits(c, 1, 2) && c.Take('-') && digits(c, 1, 2))) {
    return false;
  }
  if (!c.TakeIf([](char ch) { return ch == 'T' || ch == 't'; }) && c.TakeWhile(IsBlank) == 0) {
    return false;
  }
  if (!(digits(c, 1, 2) && c.Take(':') && digits(c, 2, 2) && c.Take(':') && digits(c, 2, 2))) {
    return false;
  }
  if (c.Take('.')) c.TakeWhile(IsDigit);
  if (c.AtEnd()) return true;
  c.TakeWhile(IsBlank);
  if (c.Take('Z')) return c.AtEnd();
  if (!c.TakeIf([](char ch) { return ch == '-' || ch == '+'; }) || !digits(c, 1, 2)) return false;
  if (c.Take(':') && !digits(c, 2, 2)) return false;
  return c.AtEnd();
}

// value → digits in `base`, '_' already removed; nullopt on overflow or a bad digit.
std::optional<int64_t> Accumulate(std::string_view digits, int base, bool negative) {
  if (digits.empty()) return std::nullopt;
  int64_t value = 0;
  for (char ch : digits) {
    int d;
    if (IsDigit(ch)) {
      d = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      d = ch - 'a' + 10;
    } else if (ch >= 'A' && ch <= 'F') {
      d = ch - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    // Accumulated negatively so that INT64_MIN fits.
    if (__builtin_mul_overflow(value, base, &value) || __builtin_sub_overflow(value, d, &value)) {
      return std::nullopt;
    }
  }
  if (negative) return value;
  if (value == std::numeric_limits<int64_t>::min()) return std::nullopt;
  return -value;
}

}  // namespace

std::optional<bool> ParseYaml11Bool(std::string_view text) {
  for (std::string_view t : {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}) {
    if (text == t) return true;
  }
  for (std::string_view f : {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}) {
    if (text == f) return false;
  }
  return std::nullopt;
}

std::optional<int64_t> ParseYaml11Int(std::string_view text) {
  if (!MatchesYaml11Int(text)) return std::nullopt;
  std::string value;
  for (char ch : text) {
    if (ch != '_') value.push_back(ch);
  }
  bool negative = false;
  std::string_view v = value;
  if (!v.empty() && (v.front() == '-' || v.front() == '+')) {
    negative = v.front() == '-';
    v.remove_prefix(1);
  }
  if (v == "0") return 0;
  if (v.starts_with("0b")) return Accumulate(v.substr(2), 2, negative);
  if (v.starts_with("0x")) return Accumulate(v.substr(2), 16, negative);
  if (v.starts_with("0")) return Accumulate(v, 8, negative);
  if (v.find(':') != std::string_view::npos) {
    // Base 60: "1:30:05" = (1 * 60 + 30) * 60 + 5.
    int64_t total = 0;
    size_t start = 0;
    while (start <= v.size()) {
      size_t end = v.find(':', start);
      if (end == std::string_view::npos) end = v.size();
      std::optional<int64_t> part = Accumulate(v.substr(start, end - start), 10, false);
      if (!part || total > (std::numeric_limits<int64_t>::max() - *part) / 60) return std::nullopt;
      total = total * 60 + *part;
      start = end + 1;
    }
    return negative ? -total : total;
  }
  return Accumulate(v, 10, negative);
}

std::optional<int64_t> ParsePythonIntString(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\v\f";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return std::nullopt;
  text = text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
  bool negative = false;
  if (text.front() == '-' || text.front() == '+') {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  // Digits with single underscores between them.
  std::string digits;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_') {
      if (i == 0 || i + 1 == text.size() || !IsDigit(text[i - 1]) || !IsDigit(text[i + 1])) {
        return std::nullopt;
      }
      continue;
    }
    if (!IsDigit(text[i])) return std::nullopt;
    digits.push_back(text[i]);
  }
  return Accumulate(digits, 10, negative);
}

Yaml11Type ResolvePlainScalar(std::string_view text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return Yaml11Type::kNull;
  }
  if (ParseYaml11Bool(text)) return Yaml11Type::kBool;
  if (MatchesYaml11Int(text)) return Yaml11Type::kInt;
  if (MatchesYaml11Float(text)) return Yaml11Type::kFloat;
  if (MatchesYaml11Timestamp(text)) return Yaml11Type::kTimestamp;
  if (text == "=" || text == "<<") return Yaml11Type::kValue;
  return Yaml11Type::kString;
}

namespace {

std::string_view Yaml11TypeName(Yaml11Type type) {
  switch (type) {
    case Yaml11Type::kNull:
      return "null";
    case Yaml11Type::kBool:
      return "a boolean";
    case Yaml11Type::kInt:
      return "an integer";
    case Yaml11Type::kFloat:
      return "a float";
    case Yaml11Type::kTimestamp:
      return "a date";
    case Yaml11Type::kValue:
      return "a special value";
    case Yaml11Type::kString:
      break;
  }
  return "a string";
}

// " (YAML 1.1 reads it as an integer; quote it for a string)" when a plain scalar is no string.
std::string ReadAsNote(const YAML::Node& node) {
  if (!node.IsScalar() || !IsPlain(node)) return {};
  Yaml11Type type = ResolvePlainScalar(node.Scalar());
  if (type == Yaml11Type::kString) return {};
  return StrCat(" (YAML 1.1 reads it as ", Yaml11TypeName(type), ")");
}

}  // namespace

std::string QuoteForMessage(std::string_view value) {
  constexpr size_t kMaxShown = 80;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  size_t shown = 0;
  for (char c : value) {
    if (shown++ == kMaxShown) {
      out.append("...");
      break;
    }
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      StrAppend(&out, "\\x", kHex[u >> 4], kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

bool IsValidUtf8(std::string_view text) { return ota::IsValidUtf8(text); }

std::string ParseContext::Where(const YAML::Mark& mark) const {
  std::string name = file_name_.empty() ? std::string("<input>") : file_name_;
  if (mark.line < 0) return name;
  return StrCat(name, ":", mark.line + 1);
}

absl::Status ParseContext::Error(const YAML::Mark& mark, std::string_view field,
                                 std::string_view problem) const {
  if (field.empty()) return absl::InvalidArgumentError(StrCat(Where(mark), ": ", problem));
  return absl::InvalidArgumentError(StrCat(Where(mark), ": field \"", field, "\": ", problem));
}

void ParseContext::Warn(const YAML::Mark& mark, std::string_view field,
                        std::string_view problem) const {
  std::string message = StrCat(Where(mark), ": field \"", field, "\": ", problem);
  log::Warning("config", {{"warning", message}});
  if (warnings_ != nullptr) warnings_->push_back(std::move(message));
}

absl::Status ParseContext::FromException(const YAML::Exception& e) const {
  std::string problem = StrCat("invalid YAML: ", e.msg);
  if (e.mark.column >= 0 && e.mark.line >= 0) {
    StrAppend(&problem, " (column ", e.mark.column + 1, ")");
  }
  return Error(e.mark, "", problem);
}

absl::StatusOr<YAML::Node> LoadRootMapping(std::string_view text, const ParseContext& ctx) {
  if (text.size() > kMaxConfigBytes) {
    return ctx.Error(YAML::Mark::null_mark(), "",
                     StrCat("file is ", text.size(), " bytes, larger than the ", kMaxConfigBytes,
                            " bytes a config file may have"));
  }
  std::string owned_text(text);
  DocumentStarts starts;
  YAML::Node root;
  try {
    // yaml-cpp 0.7's LoadAll never returns on inputs such as "," or "!x ,": every pass yields
    // an empty document without consuming the token, until memory runs out. So documents are
    // first counted with the event API, at most three, and only the first one is loaded.
    std::istringstream count_stream(owned_text);
    YAML::Parser parser(count_stream);
    for (int i = 0; i < 3 && parser.HandleNextDocument(starts); ++i) {
    }
    if (starts.marks.empty()) return YAML::Node(YAML::NodeType::Null);
    for (size_t i = 1; i < starts.marks.size(); ++i) {
      const YAML::Mark& stuck = starts.marks[i];
      if (stuck.pos != starts.marks[i - 1].pos) continue;
      std::string_view at = stuck.pos >= 0 && static_cast<size_t>(stuck.pos) < text.size()
                                ? text.substr(stuck.pos, 1)
                                : std::string_view();
      return ctx.Error(stuck, "",
                       StrCat("invalid YAML: unexpected ", QuoteForMessage(at), " (column ",
                              stuck.column + 1, ")"));
    }
    if (starts.marks.size() > 1) {
      return ctx.Error(starts.marks[1], "",
                       "more than one YAML document (a second \"---\"); a config file holds one");
    }
    std::istringstream load_stream(owned_text);
    root = YAML::Load(load_stream);
  } catch (const YAML::DeepRecursion& e) {
    return ctx.Error(e.mark, "",
                     StrCat("invalid YAML: nested more than ", e.depth() - 1, " levels deep"));
  } catch (const YAML::Exception& e) {
    return ctx.FromException(e);
  }
  if (root.IsNull()) return root;
  if (!root.IsMap()) {
    return ctx.Error(
        root.Mark(), "",
        StrCat("expected a mapping of keys to values at the top level, got ", DescribeValue(root)));
  }
  return root;
}

absl::StatusOr<std::vector<Entry>> MappingEntries(const Field& mapping, const ParseContext& ctx) {
  if (!mapping.value.IsMap()) return Expected(mapping, "a mapping of keys to values", ctx);
  std::vector<Entry> entries;
  std::map<std::string, int> first_line_of_key;
  for (auto it = mapping.value.begin(); it != mapping.value.end(); ++it) {
    // Copies: yaml-cpp's iterator hands out a temporary proxy, so references would dangle.
    YAML::Node key = it->first;
    YAML::Node value = it->second;
    YAML::Mark key_mark = key.Mark().line >= 0 ? key.Mark() : mapping.mark;
    if (!key.IsScalar() || !(IsPlain(key) || IsQuoted(key) || key.Tag() == kStrTag)) {
      return ctx.Error(key_mark, mapping.path,
                       StrCat("keys must be plain strings, got ", DescribeValue(key)));
    }
    const std::string& name = key.Scalar();
    std::string path = mapping.path.empty() ? name : StrCat(mapping.path, ".", name);
    if (name == "<<" && IsPlain(key)) {
      return ctx.Error(key_mark, path,
                       "YAML merge keys (<<) are not supported; write the keys out");
    }
    auto [previous, inserted] = first_line_of_key.emplace(name, key_mark.line + 1);
    if (!inserted) {
      // PyYAML keeps the last value of a repeated key, and the file loads: so does ours, loudly.
      ctx.Warn(key_mark, path,
               StrCat("repeated key (first given at line ", previous->second,
                      "); this later value is used, as the Python client does"));
    }
    entries.push_back(Entry{name, Field{std::move(path), value, key_mark}});
  }
  if (entries.size() == first_line_of_key.size()) return entries;
  // Keep each key's last occurrence, in its place. (Built anew: YAML::Node's assignment may
  // throw, so no erase/assignment of entries.)
  std::map<std::string, size_t> last_of_key;
  for (size_t i = 0; i < entries.size(); ++i) last_of_key[entries[i].key] = i;
  std::vector<Entry> kept;
  kept.reserve(last_of_key.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    if (last_of_key[entries[i].key] == i) kept.push_back(entries[i]);
  }
  return kept;
}

absl::StatusOr<std::vector<Field>> SequenceElements(const Field& sequence,
                                                    std::string_view expected,
                                                    const ParseContext& ctx) {
  if (!sequence.value.IsSequence()) return Expected(sequence, expected, ctx);
  std::vector<Field> elements;
  size_t index = 0;
  for (YAML::Node element : sequence.value) {
    YAML::Mark mark = element.Mark().line >= 0 ? element.Mark() : sequence.mark;
    elements.push_back(Field{StrCat(sequence.path, "[", index, "]"), element, mark});
    ++index;
  }
  return elements;
}

absl::StatusOr<bool> ReadBool(const Field& field, const ParseContext& ctx) {
  constexpr std::string_view kExpected = "true or false";
  if (!field.value.IsScalar() || !(IsPlain(field.value) || field.value.Tag() == kBoolTag)) {
    return Expected(field, kExpected, ctx);
  }
  // The YAML 1.1 spellings PyYAML reads as booleans: yes/no and on/off included.
  std::optional<bool> value = ParseYaml11Bool(field.value.Scalar());
  if (!value) {
    return ctx.Error(field.mark, field.path,
                     StrCat("expected ", kExpected, ", got ", DescribeValue(field.value),
                            ReadAsNote(field.value)));
  }
  return *value;
}

absl::StatusOr<int64_t> ReadInt(const Field& field, int64_t min, int64_t max,
                                const ParseContext& ctx) {
  std::string expected = StrCat("an integer ", min, "-", max);
  if (!field.value.IsScalar() || !(IsPlain(field.value) || field.value.Tag() == kIntTag)) {
    return Expected(field, expected, ctx);
  }
  std::optional<int64_t> value = ParseYaml11Int(field.value.Scalar());
  if (!value || *value < min || *value > max) {
    return ctx.Error(field.mark, field.path,
                     StrCat("expected ", expected, ", got ", DescribeValue(field.value),
                            ReadAsNote(field.value)));
  }
  return *value;
}

absl::StatusOr<uint16_t> ReadPort(const Field& field, const ParseContext& ctx) {
  constexpr std::string_view kExpected = "an integer 1-65535";
  if (field.value.IsScalar() &&
      (IsQuoted(field.value) || field.value.Tag() == kStrTag ||
       (IsPlain(field.value) && ResolvePlainScalar(field.value.Scalar()) == Yaml11Type::kString))) {
    // Upstream converts with int(x) before checking the range: "8082" is a port, and so is a
    // plain 08 (a string in YAML 1.1, not an octal number).
    std::optional<int64_t> port = ParsePythonIntString(field.value.Scalar());
    if (!port || *port < 1 || *port > 65535) return Expected(field, kExpected, ctx);
    return static_cast<uint16_t>(*port);
  }
  OTA_ASSIGN_OR_RETURN(int64_t port, ReadInt(field, 1, 65535, ctx));
  return static_cast<uint16_t>(port);
}

absl::StatusOr<std::string> ReadString(const Field& field, const ParseContext& ctx,
                                       bool allow_empty) {
  if (!field.value.IsScalar()) return Expected(field, "a string", ctx);
  if (!(IsPlain(field.value) || IsQuoted(field.value) || field.value.Tag() == kStrTag)) {
    return Expected(field, "a string", ctx);
  }
  const std::string& text = field.value.Scalar();
  if (IsPlain(field.value) && ResolvePlainScalar(text) != Yaml11Type::kString) {
    return ctx.Error(field.mark, field.path,
                     StrCat("expected a string, got ", DescribeValue(field.value),
                            ReadAsNote(field.value), "; quote it to make it a string"));
  }
  if (text.empty() && !allow_empty) return ctx.Error(field.mark, field.path, "must not be empty");
  return text;
}

absl::StatusOr<std::string> ReadEcuId(const Field& field, const ParseContext& ctx) {
  OTA_ASSIGN_OR_RETURN(std::string id, ReadString(field, ctx));
  if (absl::Status bad = CheckEcuId(id); !bad.ok()) {
    return ctx.Error(field.mark, field.path, std::string(bad.message()));
  }
  return id;
}

absl::StatusOr<std::string> ReadHost(const Field& field, const ParseContext& ctx) {
  if (!field.value.IsScalar()) return Expected(field, "a host name or IP address", ctx);
  OTA_ASSIGN_OR_RETURN(std::string host, ReadString(field, ctx));
  if (absl::Status valid = ValidateHost(host); !valid.ok()) {
    return ctx.Error(field.mark, field.path,
                     StrCat("invalid host ", QuoteForMessage(host), ": ", valid.message()));
  }
  return host;
}

}  // namespace ota::config::internal
