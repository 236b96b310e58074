#include "otaclient/boot/grub_boot_decision.h"

#include "common/util/strings.h"

namespace ota::boot {
namespace {

std::string EnvValue(const GrubEnvMap& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

// GRUB's lookup of `default`: id, then title, then a decimal index.
size_t ResolveEntry(const ParsedGrubMenu& menu, const std::string& wanted) {
  for (size_t i = 0; i < menu.entries.size(); ++i) {
    if (menu.entries[i].id == wanted) return i;
  }
  for (size_t i = 0; i < menu.entries.size(); ++i) {
    if (menu.entries[i].title == wanted) return i;
  }
  if (!wanted.empty() && wanted.size() < 6 &&
      wanted.find_first_not_of("0123456789") == std::string::npos) {
    size_t index = std::stoul(wanted);
    if (index < menu.entries.size()) return index;
  }
  return 0;
}

}  // namespace

absl::StatusOr<GrubBootDecision> DecideGrubBoot(const GrubEnvMap& env, const ParsedGrubMenu& menu) {
  if (menu.entries.empty()) return absl::InvalidArgumentError("grub menu has no entries");
  GrubBootDecision decision;
  decision.env_after = env;
  std::string default_entry = menu.fallback_default;
  const std::string saved = EnvValue(env, "saved_entry");
  if (!saved.empty()) default_entry = saved;
  const std::string next = EnvValue(env, "next_entry");
  if (!next.empty()) {
    default_entry = next;
    decision.env_after["next_entry"] = "";
    decision.one_shot = true;
  }
  const ParsedGrubEntry& entry = menu.entries[ResolveEntry(menu, default_entry)];
  decision.entry_id = entry.id;
  decision.kernel = entry.kernel;
  decision.initrd = entry.initrd;
  decision.kernel_cmdline = StrCat("BOOT_IMAGE=", entry.kernel);
  if (!entry.args.empty()) StrAppend(&decision.kernel_cmdline, " ", entry.args);
  return decision;
}

}  // namespace ota::boot
