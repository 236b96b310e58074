// Fuzzes ParseEcuInfo: arbitrary bytes must give a value or an error, never a crash or an
// escaping exception, and every accepted config must satisfy the documented invariants.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "common/config/ecu_info.h"
#include "common/config/host.h"
#include "common/log/log.h"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ota::fuzz::QuietLogs();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ota::config::EcuInfo> info = ota::config::ParseEcuInfo(text, "fuzz.yml");
  if (!info.ok()) {
    Require(info.status().code() == absl::StatusCode::kInvalidArgument);
    Require(std::string_view(info.status().message().data(), info.status().message().size())
                .rfind("fuzz.yml", 0) == 0);
    return 0;
  }
  Require(!info->ecu_id.empty());
  Require(ota::config::ValidateHost(info->ip_addr).ok());
  Require(info->bootloader.empty() || ota::config::IsKnownBootloader(info->bootloader));
  std::set<std::string> ids = {info->ecu_id};
  for (const ota::config::SecondaryEcu& secondary : info->secondaries) {
    Require(secondary.port != 0);
    Require(ota::config::ValidateHost(secondary.ip_addr).ok());
    Require(ids.insert(secondary.ecu_id).second);  // ids unique
  }
  Require(!info->available_ecu_ids.empty());
  std::set<std::string> available(info->available_ecu_ids.begin(), info->available_ecu_ids.end());
  Require(available.size() == info->available_ecu_ids.size());
  return 0;
}
