// The text of an uploaded log record: the deployed client's JSON line, so that the fleet's
// dashboards, metric filters and Logs Insights queries, written against what the Python client
// uploads, keep working:
//   {"timestamp":"2026-08-01
//   12:34:56,789","level":"INFO","logger":"otaclient.update.update_session",
//    "function":"RunSteps","line":181,"message":"image verified url=https://... regulars=1234"}
// timestamp: local time, Python's asctime with milliseconds; level: Python's names (DEBUG, INFO,
// WARNING, ERROR); logger: the source file as a dotted module path (common/ → otaclient_common.,
// otaproxy/ → ota_proxy., as the Python packages are named); function: the function that logged
// (a lambda: "<lambda>"); line: a number; message: our stderr line without tag and level (the
// message and its key=value fields). Unlike the Python client's, the line is always valid JSON
// (quotes and control characters escaped, invalid UTF-8 replaced by U+FFFD).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/log/log.h"

namespace ota::telemetry {

// The JSON line of a kLog record. Text longer than `max_text_bytes` is cut there and
// "…[N bytes cut]" appended.
std::string FormatUploadLine(const log::Record& record, size_t max_text_bytes);

// "otaclient.update.update_session" for ".../otaclient/update/update_session.cc" (the source
// root is where this file is built from); a file outside the tree: its base name without
// extension.
std::string LoggerName(std::string_view source_file);

// Python's level names.
std::string_view PythonLevelName(log::Level level);

}  // namespace ota::telemetry
