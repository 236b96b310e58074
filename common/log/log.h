// Levelled, one-line key=value logging to stderr (journald adds time and unit).
//   ota::log::Info("update accepted", {{"request_id", id}, {"version", v}});
//
// Besides stderr, every line that passes the minimum level is handed to the installed Sink, if
// any (the fleet log upload, common/telemetry/log_uploader.h), with its time and the place in the
// source it was logged from. Metrics records (log::Metrics) go to stderr as a line and to the sink
// as a record of their own type.
#pragma once

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace ota::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using Field = std::pair<std::string_view, std::string_view>;

// Where a line was logged: filled in at the call site by the default arguments.
struct Where {
  constexpr Where(const char* file = __builtin_FILE(), const char* function = __builtin_FUNCTION(),
                  int line = __builtin_LINE())
      : file(file), function(function), line(line) {}
  const char* file;
  const char* function;
  int line;
};

void SetMinLevel(Level level);
// Parses "debug|info|warning|error"; returns false for anything else.
bool ParseLevel(std::string_view text, Level* level);
// Every line starts with this tag, e.g. the ECU id, so mixed logs of several ECUs stay readable.
void SetTag(std::string tag);

void Write(Level level, std::string_view message, std::initializer_list<Field> fields = {},
           Where where = {});

inline void Debug(std::string_view m, std::initializer_list<Field> f = {}, Where w = {}) {
  Write(Level::kDebug, m, f, w);
}
inline void Info(std::string_view m, std::initializer_list<Field> f = {}, Where w = {}) {
  Write(Level::kInfo, m, f, w);
}
inline void Warning(std::string_view m, std::initializer_list<Field> f = {}, Where w = {}) {
  Write(Level::kWarning, m, f, w);
}
inline void Error(std::string_view m, std::initializer_list<Field> f = {}, Where w = {}) {
  Write(Level::kError, m, f, w);
}

// A metrics record (a JSON object, one line), whatever the minimum level: written to stderr at
// INFO as "metrics <json>", and handed to the sink as a kMetrics record whose text is the JSON
// alone.
void Metrics(std::string_view json, Where where = {});

// What a sink receives: one logged line.
enum class RecordType { kLog, kMetrics };
struct Record {
  RecordType type = RecordType::kLog;
  Level level = Level::kInfo;
  std::chrono::system_clock::time_point time;
  // kLog: the message and its fields as on stderr ("update phase from=A to=B"), without the tag
  // and level; kMetrics: the JSON object.
  std::string_view text;
  Where where;
};

// Receives every line that passes the minimum level, on the thread that logged it.
// Consume must return promptly without blocking on I/O (it runs inside every caller of the
// logger: gRPC handlers, the update session) and must not log.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Consume(const Record& record) = 0;
};

// Installs `sink` for the lifetime of this object; the destructor removes it and returns only
// when no thread is inside its Consume any more. One sink at a time (a second is refused: the
// object then installs nothing, see installed()).
class ScopedSink {
 public:
  explicit ScopedSink(Sink* sink);
  ~ScopedSink();
  ScopedSink(const ScopedSink&) = delete;
  ScopedSink& operator=(const ScopedSink&) = delete;
  bool installed() const { return installed_; }

 private:
  bool installed_ = false;
};

}  // namespace ota::log
