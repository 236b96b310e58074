#include "common/log/log.h"

#include <unistd.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/util/strings.h"

namespace ota::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
absl::Mutex g_tag_mu;
std::string g_tag ABSL_GUARDED_BY(g_tag_mu);

// The sink: lines hold the lock shared while they hand a record over, ScopedSink's destructor
// takes it exclusively, so a removed sink is never called again. A std::shared_mutex (pthread
// rwlock) rather than absl::Mutex so that ThreadSanitizer sees it (Debian's abseil is not
// instrumented).
std::shared_mutex g_sink_mu;
Sink* g_sink = nullptr;  // guarded by g_sink_mu

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

// "[tag] LEVEL " + text + "\n" in one write(), which keeps lines from concurrent threads whole.
void WriteStderr(Level level, std::string_view text) {
  std::string line;
  {
    absl::MutexLock lock(&g_tag_mu);
    if (!g_tag.empty()) StrAppend(&line, "[", g_tag, "] ");
  }
  StrAppend(&line, kLevelNames[static_cast<int>(level)], " ", text, "\n");
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

void HandToSink(RecordType type, Level level, std::string_view text, const Where& where) {
  std::shared_lock lock(g_sink_mu);
  if (g_sink == nullptr) return;
  g_sink->Consume(Record{.type = type,
                         .level = level,
                         .time = std::chrono::system_clock::now(),
                         .text = text,
                         .where = where});
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

void Write(Level level, std::string_view message, std::initializer_list<Field> fields,
           Where where) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  std::string text(message);
  for (const auto& [key, value] : fields) {
    StrAppend(&text, " ", key, "=");
    AppendValue(&text, value);
  }
  WriteStderr(level, text);
  HandToSink(RecordType::kLog, level, text, where);
}

void Metrics(std::string_view json, Where where) {
  // Whatever the minimum level: one line per update session, and the fleet's dashboards need it.
  WriteStderr(Level::kInfo, StrCat("metrics ", json));
  HandToSink(RecordType::kMetrics, Level::kInfo, json, where);
}

ScopedSink::ScopedSink(Sink* sink) {
  std::unique_lock lock(g_sink_mu);
  if (g_sink != nullptr || sink == nullptr) return;
  g_sink = sink;
  installed_ = true;
}

ScopedSink::~ScopedSink() {
  if (!installed_) return;
  std::unique_lock lock(g_sink_mu);
  g_sink = nullptr;
}

}  // namespace ota::log
