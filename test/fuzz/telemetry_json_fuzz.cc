// Fuzzes the JSON the fleet receives: AppendJsonString and the uploaded log line. Whatever the
// bytes (a log message, a function name), the result must be valid UTF-8 and valid JSON, and a
// valid UTF-8 message must come back unchanged.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/log/log.h"
#include "common/telemetry/upload_line.h"
#include "common/util/json.h"
#include "common/util/utf8.h"
#include "nlohmann/json.hpp"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string quoted;
  ota::AppendJsonString(&quoted, text);
  Require(ota::IsValidUtf8(quoted));
  const nlohmann::json parsed = nlohmann::json::parse(quoted, nullptr, false);
  Require(parsed.is_string());
  if (ota::IsValidUtf8(text)) Require(parsed.get<std::string>() == text);

  // The first byte picks the level, the rest up to a '|' is the function name.
  const auto level = static_cast<ota::log::Level>(size > 0 ? data[0] % 4 : 0);
  const std::string_view rest = size > 0 ? text.substr(1) : text;
  const size_t bar = rest.find('|');
  const std::string function(rest.substr(0, bar == std::string_view::npos ? 0 : bar));
  const std::string_view message = bar == std::string_view::npos ? rest : rest.substr(bar + 1);
  const ota::log::Record record{.type = ota::log::RecordType::kLog,
                                .level = level,
                                .time = std::chrono::system_clock::time_point(
                                    std::chrono::milliseconds(static_cast<int64_t>(size) * 997)),
                                .text = message,
                                .where = ota::log::Where("/x/otaclient/y.cc", function.c_str(), 1)};
  constexpr size_t kMaxText = 64;
  const std::string line = ota::telemetry::FormatUploadLine(record, kMaxText);
  Require(ota::IsValidUtf8(line));
  const nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
  Require(object.is_object() && object.size() == 6);
  Require(object["message"].is_string() && object["line"] == 1);
  if (message.size() <= kMaxText && ota::IsValidUtf8(message)) {
    Require(object["message"].get<std::string>() == message);
  }
  return 0;
}
