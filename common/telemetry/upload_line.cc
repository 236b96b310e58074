#include "common/telemetry/upload_line.h"

#include <time.h>

#include <algorithm>
#include <chrono>

#include "common/util/json.h"
#include "common/util/strings.h"

namespace ota::telemetry {
namespace {

// This file's path relative to the source root, to find the root in __FILE__ of other files.
constexpr std::string_view kThisFile = "common/telemetry/upload_line.cc";

std::string_view SourceRoot() {
  const std::string_view here = __FILE__;
  if (here.size() >= kThisFile.size() && here.ends_with(kThisFile)) {
    return here.substr(0, here.size() - kThisFile.size());
  }
  return {};
}

// "2026-08-01 12:34:56,789" in local time.
void AppendAsctime(std::string* out, std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const time_t t = static_cast<time_t>(seconds.count());
  struct tm local {};
  char buf[32];
  if (localtime_r(&t, &local) == nullptr ||
      strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &local) == 0) {
    StrAppend(out, t);
  } else {
    out->append(buf);
  }
  char ms[8];
  snprintf(ms, sizeof(ms), ",%03d", static_cast<int>(std::clamp<int64_t>(millis, 0, 999)));
  out->append(ms);
}

}  // namespace

std::string_view PythonLevelName(log::Level level) {
  switch (level) {
    case log::Level::kDebug:
      return "DEBUG";
    case log::Level::kInfo:
      return "INFO";
    case log::Level::kWarning:
      return "WARNING";
    case log::Level::kError:
      return "ERROR";
  }
  return "INFO";
}

std::string LoggerName(std::string_view source_file) {
  const std::string_view root = SourceRoot();
  std::string_view relative = source_file;
  if (!root.empty() && relative.starts_with(root)) {
    relative.remove_prefix(root.size());
  } else if (const size_t slash = relative.rfind('/'); slash != std::string_view::npos) {
    relative.remove_prefix(slash + 1);
  }
  if (const size_t dot = relative.rfind('.');
      dot != std::string_view::npos && relative.find('/', dot) == std::string_view::npos) {
    relative = relative.substr(0, dot);
  }
  // The Python client's package names for the same parts.
  static constexpr std::pair<std::string_view, std::string_view> kPackages[] = {
      {"common/", "otaclient_common/"}, {"otaproxy/", "ota_proxy/"}};
  std::string name(relative);
  for (const auto& [ours, theirs] : kPackages) {
    if (relative.starts_with(ours)) {
      name = StrCat(theirs, relative.substr(ours.size()));
      break;
    }
  }
  std::replace(name.begin(), name.end(), '/', '.');
  return name;
}

std::string FormatUploadLine(const log::Record& record, size_t max_text_bytes) {
  std::string_view text = record.text;
  std::string cut_note;
  if (text.size() > max_text_bytes) {
    cut_note = StrCat("…[", text.size() - max_text_bytes, " bytes cut]");
    text = text.substr(0, max_text_bytes);
  }
  std::string_view function = record.where.function != nullptr ? record.where.function : "";
  if (function == "operator()") function = "<lambda>";
  std::string line;
  line.reserve(text.size() + 160);
  line.append("{\"timestamp\":\"");
  AppendAsctime(&line, record.time);
  StrAppend(&line, "\",\"level\":\"", PythonLevelName(record.level), "\",\"logger\":");
  AppendJsonString(&line, LoggerName(record.where.file != nullptr ? record.where.file : ""));
  line.append(",\"function\":");
  AppendJsonString(&line, function);
  StrAppend(&line, ",\"line\":", record.where.line, ",\"message\":");
  AppendJsonString(&line, cut_note.empty() ? std::string(text) : StrCat(text, cut_note));
  line.push_back('}');
  return line;
}

}  // namespace ota::telemetry
