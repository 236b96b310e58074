// The GRUB menu otaclient generates for an A/B machine (replaces the distro's grub.cfg on first
// start; the distro file is kept as grub.cfg.otaclient-distro-backup). Deterministic: the same
// inputs give byte-identical output (golden files in test/unit/boot/testdata/).
//
// What GRUB does with it (mirrored exactly by DecideGrubBoot in grub_boot_decision.h):
//   set default=<fallback>                      (used when grubenv is missing or empty)
//   load_env                                    ($prefix/grubenv, i.e. <boot>/grub/grubenv)
//   saved_entry set  → default=saved_entry       (the confirmed slot)
//   next_entry set   → default=next_entry, then next_entry is cleared and saved BEFORE booting,
//                      so the new slot is tried exactly once: a reset or a panic (panic=N makes
//                      the kernel reset) boots saved_entry again.
// Each slot's kernel and initrd are copied onto the boot partition (<boot>/ota-slots/slot_<x>/
// vmlinuz, initrd.img) and read relative to $root, which GRUB set to the partition holding its
// prefix (the boot partition) — no (hdX,gptN) names or UUID searches that could pick the wrong
// disk. The kernel finds its root by root=PARTUUID=<slot's GPT partition UUID>, which works for
// NVMe, SATA and virtio alike and needs no initramfs support for labels.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::boot {

inline constexpr std::string_view kGrubMenuMarker =
    "# otaclient A/B boot menu (generated; do not edit: rewritten on every update)";

struct GrubMenuEntry {
  std::string id;             // "slot_a"
  std::string title;          // shown in the menu
  std::string kernel;         // path on the boot partition, "/ota-slots/slot_a/vmlinuz"
  std::string initrd;         // "" when the slot has none
  std::string root_partuuid;  // GPT partition UUID of the slot's rootfs
  std::string kernel_args;    // further arguments ("ro quiet console=ttyS0,115200")
};

struct GrubMenuConfig {
  std::vector<GrubMenuEntry> entries;
  std::string fallback_default;  // entry id booted when grubenv names none
  int panic_seconds = 5;         // panic=N: a panicking kernel resets, GRUB then falls back
  bool serial_console = false;   // GRUB's own menu on ttyS0 too (when the kernel console is)
  int timeout_seconds = 0;
};

// kInvalidArgument when an entry is incomplete or a value would change the meaning of the
// script (quotes, '$', ';', braces, newlines...).
absl::StatusOr<std::string> RenderGrubMenu(const GrubMenuConfig& config);

bool IsGeneratedGrubMenu(std::string_view text);

// The parts of a generated menu DecideGrubBoot needs. Only understands what RenderGrubMenu
// writes; anything else is kInvalidArgument.
struct ParsedGrubEntry {
  std::string id;
  std::string title;
  std::string kernel;
  std::string args;  // everything after the kernel path on the linux line
  std::string initrd;
  bool operator==(const ParsedGrubEntry&) const = default;
};
struct ParsedGrubMenu {
  std::string fallback_default;
  std::vector<ParsedGrubEntry> entries;
};
absl::StatusOr<ParsedGrubMenu> ParseGeneratedGrubMenu(std::string_view text);

// Extra kernel arguments to carry over from the running kernel's command line: everything but
// what the menu sets itself (BOOT_IMAGE, root, panic) and what GRUB could misparse.
std::string CarryOverKernelArgs(std::string_view cmdline);

}  // namespace ota::boot
