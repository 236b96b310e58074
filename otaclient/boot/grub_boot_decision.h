// What GRUB boots, computed the way GRUB computes it from the menu we generate (grub_menu.h) and
// the environment block. One small pure function: the integration tests "reboot" a simulated
// machine by applying it (new env written back with the real grub-editenv, then otaclient
// restarted on the root device the decision names), and the unit tests pin it with a table.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "otaclient/boot/grub_env.h"
#include "otaclient/boot/grub_menu.h"

namespace ota::boot {

struct GrubBootDecision {
  std::string entry_id;  // the menuentry GRUB boots
  std::string kernel;    // its kernel path (on the boot partition)
  std::string initrd;
  // The kernel command line as /proc/cmdline shows it: GRUB prepends BOOT_IMAGE=<kernel>.
  std::string kernel_cmdline;
  GrubEnvMap env_after;   // the environment block after GRUB ran the menu (one-shot consumed)
  bool one_shot = false;  // booted through next_entry
};

// Mirrors the script of the generated menu:
//   default = menu.fallback_default; saved_entry non-empty → default = saved_entry;
//   next_entry non-empty → default = next_entry and next_entry saved as "" before booting.
// GRUB resolves `default` against menu entry ids, then titles, then as a 0-based index; anything
// else boots entry 0. kInvalidArgument only for a menu without entries.
absl::StatusOr<GrubBootDecision> DecideGrubBoot(const GrubEnvMap& env, const ParsedGrubMenu& menu);

}  // namespace ota::boot
