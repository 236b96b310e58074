// Fuzzes the slot table parser (otaclient/update/slot_table.h), which reads a file on the
// standby that a crash or a tampered slot may have left in any state. Oracle: no crash, and
// whatever parses re-serializes to exactly the input and finds each of its paths.
#include <cstdint>
#include <string_view>

#include "otaclient/update/slot_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ota::update::SlotTable> table = ota::update::SlotTable::Parse(input, "fuzz");
  if (!table.ok()) return 0;
  if (table->Serialize() != input) __builtin_trap();
  for (const auto& e : table->entries()) {
    if (table->Find(e.path) != &e) __builtin_trap();
  }
  return 0;
}
