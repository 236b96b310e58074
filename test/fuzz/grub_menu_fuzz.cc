// The generated-menu parser and the boot decision on arbitrary bytes (input = grub.cfg text, a
// '\x01' separator, `grub-editenv list` output): never crash; a parsed menu always yields a
// decision that boots one of its entries and consumes a one-shot.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "otaclient/boot/grub_boot_decision.h"
#include "otaclient/boot/grub_menu.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t split = input.find('\x01');
  std::string cfg(input.substr(0, split));
  std::string_view env_text = split == std::string_view::npos ? "" : input.substr(split + 1);
  // Most inputs should look like ours to get past the marker check.
  if (!cfg.empty() && cfg[0] == '!') cfg = std::string(ota::boot::kGrubMenuMarker) + cfg.substr(1);
  ota::boot::GrubEnvMap env = ota::boot::ParseGrubEnvList(env_text);
  auto menu = ota::boot::ParseGeneratedGrubMenu(cfg);
  if (!menu.ok()) return 0;
  auto decision = ota::boot::DecideGrubBoot(env, *menu);
  if (!decision.ok()) std::abort();
  bool found = false;
  for (const auto& entry : menu->entries) found = found || entry.id == decision->entry_id;
  if (!found) std::abort();
  auto next = env.find("next_entry");
  if (next != env.end() && !next->second.empty() && decision->env_after["next_entry"] != "") {
    std::abort();
  }
  return 0;
}
