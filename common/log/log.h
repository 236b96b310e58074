// Levelled, one-line key=value logging to stderr (journald adds time and unit).
//   ota::log::Info("update accepted", {{"request_id", id}, {"version", v}});
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace ota::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using Field = std::pair<std::string_view, std::string_view>;

void SetMinLevel(Level level);
// Parses "debug|info|warning|error"; returns false for anything else.
bool ParseLevel(std::string_view text, Level* level);
// Every line starts with this tag, e.g. the ECU id, so mixed logs of several ECUs stay readable.
void SetTag(std::string tag);

void Write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void Debug(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, m, f);
}
inline void Info(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, m, f);
}
inline void Warning(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kWarning, m, f);
}
inline void Error(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kError, m, f);
}

}  // namespace ota::log
