// Internal to common/config: strict, position-aware reading of YAML config files with yaml-cpp.
// Every problem becomes kInvalidArgument "<file>:<line>: field \"<path>\": <problem>"; no
// YAML::Exception leaves these helpers' callers (see CatchYamlExceptions).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "yaml-cpp/depthguard.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace ota::config::internal {

// Config files are a few hundred bytes; anything this large is not a config file.
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Quotes a value for an error message: escapes quotes and control bytes, shortens long text.
std::string QuoteForMessage(std::string_view value);

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Formats problems with the file name and 1-based line, and records warnings.
class ParseContext {
 public:
  ParseContext(std::string_view file_name, std::vector<std::string>* warnings)
      : file_name_(file_name), warnings_(warnings) {}

  // "<file>:<line>" (or "<file>" when the mark has no position).
  std::string Where(const YAML::Mark& mark) const;
  absl::Status Error(const YAML::Mark& mark, std::string_view field,
                     std::string_view problem) const;
  // Logs the warning and appends it to the caller's list.
  void Warn(const YAML::Mark& mark, std::string_view field, std::string_view problem) const;
  // Converts a yaml-cpp exception (syntax error, too deep) into an error with its position.
  absl::Status FromException(const YAML::Exception& e) const;

 private:
  std::string file_name_;
  std::vector<std::string>* warnings_;
};

// A value to read, with the dotted path ("secondaries[1].port") and the position to report.
struct Field {
  std::string path;
  YAML::Node value;
  YAML::Mark mark;  // the key's position for mapping values (yaml-cpp misplaces empty values)
};

struct Entry {
  std::string key;
  Field field;
};

// Parses `text` as exactly one YAML document. An empty document (empty file, only comments,
// "~") gives a Null node; otherwise the root must be a mapping.
absl::StatusOr<YAML::Node> LoadRootMapping(std::string_view text, const ParseContext& ctx);

// The entries of a mapping in file order. Keys must be plain scalars; YAML merge keys ("<<") are
// errors (yaml-cpp would ignore the merge silently). A repeated key is a warning and its last
// value is the one returned (in its place), as PyYAML loads it.
absl::StatusOr<std::vector<Entry>> MappingEntries(const Field& mapping, const ParseContext& ctx);

// The elements of a sequence, with paths "<path>[i]".
absl::StatusOr<std::vector<Field>> SequenceElements(const Field& sequence,
                                                    std::string_view expected,
                                                    const ParseContext& ctx);

// What the Python otaclient's YAML reader (PyYAML safe_load, YAML 1.1) makes of a plain
// (unquoted, untagged) scalar. Its configs are then validated strictly (pydantic strict mode), so
// a plain `ecu_id: 123` is an integer there and invalid, `gateway: yes` is a boolean, and
// `ecu_id: 2024-01-01` is a date. We resolve plain scalars the same way to accept and refuse the
// same files.
enum class Yaml11Type { kNull, kBool, kInt, kFloat, kTimestamp, kValue, kString };
Yaml11Type ResolvePlainScalar(std::string_view text);
// The YAML 1.1 boolean spellings (yes/no/on/off/true/false in three cases); nullopt otherwise.
std::optional<bool> ParseYaml11Bool(std::string_view text);
// A YAML 1.1 integer as PyYAML reads it: optional sign, '_' separators, 0b binary, 0x hex,
// a leading 0 octal, base 60 ("1:30"); nullopt when the text is no such integer or it does not
// fit in int64.
std::optional<int64_t> ParseYaml11Int(std::string_view text);
// Python's int(str): surrounding whitespace, an optional sign, decimal digits (leading zeros
// allowed) with single '_' between digits; nullopt otherwise or when it does not fit in int64.
std::optional<int64_t> ParsePythonIntString(std::string_view text);

// Scalar readers; `field.value` must not be Null (callers decide what null means).
// A boolean: a plain YAML 1.1 boolean or a !!bool scalar (quoted "true" is a string: refused).
absl::StatusOr<bool> ReadBool(const Field& field, const ParseContext& ctx);
// An integer: a plain YAML 1.1 integer or a !!int scalar, within [min, max].
absl::StatusOr<int64_t> ReadInt(const Field& field, int64_t min, int64_t max,
                                const ParseContext& ctx);
// A port 1..65535: an integer as above, or a quoted string Python's int() reads (upstream's
// NetworkPort converts with int(x) first, so "8082" is a port there).
absl::StatusOr<uint16_t> ReadPort(const Field& field, const ParseContext& ctx);
// A string scalar: quoted, !!str, or plain when YAML 1.1 reads it as a string (not as a number,
// boolean, date or null). `allow_empty` false refuses "".
absl::StatusOr<std::string> ReadString(const Field& field, const ParseContext& ctx,
                                       bool allow_empty = false);
// An ECU id: non-empty UTF-8 text without control characters or surrounding spaces.
absl::StatusOr<std::string> ReadEcuId(const Field& field, const ParseContext& ctx);
// A host name or IP address (see ValidateHost).
absl::StatusOr<std::string> ReadHost(const Field& field, const ParseContext& ctx);

// Runs `parse`, turning any YAML::Exception that escapes it into an error.
template <typename T>
absl::StatusOr<T> CatchYamlExceptions(const ParseContext& ctx,
                                      const std::function<absl::StatusOr<T>()>& parse) {
  try {
    return parse();
  } catch (const YAML::Exception& e) {
    return ctx.FromException(e);
  }
}

}  // namespace ota::config::internal
