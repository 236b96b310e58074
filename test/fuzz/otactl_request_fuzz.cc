// otactl's request builders on arbitrary input: the YAML file of `update --from`, and the same
// bytes split at NUL into `update` arguments. Must never crash or throw; a request it accepts
// must have passed the per-entry validation.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/otactl/update_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto from_yaml = ota::otactl::UpdateRequestFromYaml(text, "fuzz.yaml");
  if (from_yaml.ok()) {
    for (const auto& entry : from_yaml->ecu()) {
      if (!ota::otactl::ValidateEntry(entry, "fuzz").ok()) __builtin_trap();
    }
  }

  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '\0') {
      args.emplace_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  // "@file" cookies would read files; keep the fuzzer off the file system.
  for (const std::string& arg : args) {
    if (arg.starts_with('@')) return 0;
  }
  auto from_args = ota::otactl::UpdateRequestFromArgs(args);
  if (from_args.ok() && from_args->ecu_size() == 0) __builtin_trap();
  return 0;
}
