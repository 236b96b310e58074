// Internal to common/config: strict, position-aware reading of YAML config files with yaml-cpp.
// Every problem becomes kInvalidArgument "<file>:<line>: field \"<path>\": <problem>"; no
// YAML::Exception leaves these helpers' callers (see CatchYamlExceptions).
#pragma once

#include <cstdint>
#include <functional>
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

// The entries of a mapping in file order. Keys must be plain scalars; duplicate keys and YAML
// merge keys ("<<") are errors, since yaml-cpp would keep both or ignore the merge silently.
absl::StatusOr<std::vector<Entry>> MappingEntries(const Field& mapping, const ParseContext& ctx);

// The elements of a sequence, with paths "<path>[i]".
absl::StatusOr<std::vector<Field>> SequenceElements(const Field& sequence,
                                                    std::string_view expected,
                                                    const ParseContext& ctx);

// Scalar readers; `field.value` must not be Null (callers decide what null means).
absl::StatusOr<bool> ReadBool(const Field& field, const ParseContext& ctx);
absl::StatusOr<int64_t> ReadInt(const Field& field, int64_t min, int64_t max,
                                const ParseContext& ctx);
absl::StatusOr<uint16_t> ReadPort(const Field& field, const ParseContext& ctx);
// A non-empty string scalar (plain or quoted).
absl::StatusOr<std::string> ReadString(const Field& field, const ParseContext& ctx);
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
