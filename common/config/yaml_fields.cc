#include "common/config/yaml_fields.h"

#include <charconv>
#include <map>
#include <sstream>
#include <string>

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
constexpr size_t kMaxEcuIdBytes = 255;

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
      return ctx.Error(key_mark, path,
                       StrCat("duplicate key (first given at line ", previous->second, ")"));
    }
    entries.push_back(Entry{name, Field{std::move(path), value, key_mark}});
  }
  return entries;
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
  // YAML 1.2 core schema spellings; PyYAML reads the same ones as booleans. yes/no/on/off are
  // YAML 1.1 only and would mean different things to different readers, so they are refused.
  const std::string& text = field.value.Scalar();
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return Expected(field, kExpected, ctx);
}

absl::StatusOr<int64_t> ReadInt(const Field& field, int64_t min, int64_t max,
                                const ParseContext& ctx) {
  std::string expected = StrCat("an integer ", min, "-", max);
  if (!field.value.IsScalar() || !(IsPlain(field.value) || field.value.Tag() == kIntTag)) {
    return Expected(field, expected, ctx);
  }
  const std::string& text = field.value.Scalar();
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  // Decimal only: YAML 1.1 readers take "010" as octal and "0x1f" as hex; refuse both.
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return Expected(field, expected, ctx);
  }
  if (digits.size() > 1 && digits.front() == '0') {
    return Expected(field,
                    StrCat(expected, " without leading zeros (YAML 1.1 reads them as octal)"), ctx);
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return Expected(field, expected, ctx);
  }
  return value;
}

absl::StatusOr<uint16_t> ReadPort(const Field& field, const ParseContext& ctx) {
  OTA_ASSIGN_OR_RETURN(int64_t port, ReadInt(field, 1, 65535, ctx));
  return static_cast<uint16_t>(port);
}

absl::StatusOr<std::string> ReadString(const Field& field, const ParseContext& ctx) {
  if (!field.value.IsScalar()) return Expected(field, "a string", ctx);
  if (!(IsPlain(field.value) || IsQuoted(field.value) || field.value.Tag() == kStrTag)) {
    return Expected(field, "a string", ctx);
  }
  const std::string& text = field.value.Scalar();
  if (text.empty()) return ctx.Error(field.mark, field.path, "must not be empty");
  return text;
}

absl::StatusOr<std::string> ReadEcuId(const Field& field, const ParseContext& ctx) {
  OTA_ASSIGN_OR_RETURN(std::string id, ReadString(field, ctx));
  if (id.size() > kMaxEcuIdBytes) {
    return ctx.Error(field.mark, field.path,
                     StrCat("ECU id longer than ", kMaxEcuIdBytes, " bytes"));
  }
  if (!IsValidUtf8(id)) {
    return ctx.Error(field.mark, field.path, "ECU id is not valid UTF-8");
  }
  for (char c : id) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return ctx.Error(field.mark, field.path,
                       StrCat("ECU id contains a control character: ", QuoteForMessage(id)));
    }
  }
  if (id.front() == ' ' || id.back() == ' ') {
    return ctx.Error(field.mark, field.path,
                     StrCat("ECU id has leading or trailing spaces: ", QuoteForMessage(id)));
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
