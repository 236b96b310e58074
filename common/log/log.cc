#include "common/log/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/util/strings.h"

namespace ota::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
absl::Mutex g_tag_mu;
std::string g_tag ABSL_GUARDED_BY(g_tag_mu);

constexpr std::string_view kLevelNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};

// Quotes a value when it has spaces, quotes or is empty, so lines stay machine-parsable.
void AppendValue(std::string* out, std::string_view value) {
  bool needs_quotes = value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') needs_quotes = true;
  }
  if (!needs_quotes) {
    out->append(value);
    return;
  }
  out->push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

void SetMinLevel(Level level) { g_min_level.store(static_cast<int>(level)); }

bool ParseLevel(std::string_view text, Level* level) {
  if (text == "debug")
    *level = Level::kDebug;
  else if (text == "info")
    *level = Level::kInfo;
  else if (text == "warning" || text == "warn")
    *level = Level::kWarning;
  else if (text == "error")
    *level = Level::kError;
  else
    return false;
  return true;
}

void SetTag(std::string tag) {
  absl::MutexLock lock(&g_tag_mu);
  g_tag = std::move(tag);
}

void Write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  std::string line;
  {
    absl::MutexLock lock(&g_tag_mu);
    if (!g_tag.empty()) StrAppend(&line, "[", g_tag, "] ");
  }
  StrAppend(&line, kLevelNames[static_cast<int>(level)], " ", message);
  for (const auto& [key, value] : fields) {
    StrAppend(&line, " ", key, "=");
    AppendValue(&line, value);
  }
  line.push_back('\n');
  // One write() per line keeps lines from concurrent threads whole.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace ota::log
