// The Raspberry Pi firmware's boot files on the system-boot (FAT) partition, as far as the tryboot
// A/B scheme needs them:
//   config.txt_<slot>, cmdline.txt_<slot>   per-slot, provisioned outside otaclient, never
//                                           edited by it
//   config.txt                              what the firmware reads normally (a copy of the
//                                           running slot's config.txt_<slot>)
//   tryboot.txt                             what it reads once after `reboot "0 tryboot"`
// config.txt: one `key=value` per line, `#` comments, conditional sections in brackets
// ([all], [pi4], [none], ...; lines under [none] never apply), `initramfs <file> [followkernel]`
// without '=', and `include <file>`. cmdline.txt: the kernel command line, one line.
//
// Before tryboot.txt is pointed at a slot, its config is checked (CheckSlotBootConfig): every
// file it names (kernel=, initramfs, cmdline=, include, os_prefix-relative) exists, and the
// kernel command line it uses mounts that slot's rootfs (root=LABEL=<slot>, PARTUUID=, UUID= or
// the device path). The reference Python client checks nothing: a config.txt_<slot> that names
// the other slot's cmdline would "boot the new slot" into the old rootfs and confirm it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::boot {

struct RpiConfigEntry {
  std::string key;    // lower case: "kernel", "initramfs", "cmdline", "include", ...
  std::string value;  // "vmlinuz_slot_a"; for initramfs the file name only
  int line = 0;
};

// The entries that apply to a Pi 4 (conditional sections other than [none] are kept: which
// filters match is the firmware's business; a file named under any of them must exist).
// kInvalidArgument "<what>:<line>: ..." for a NUL byte or a line that is neither a comment, a
// section, `key=value`, `initramfs <file> [...]` nor `include <file>`.
absl::StatusOr<std::vector<RpiConfigEntry>> ParseRpiConfig(std::string_view text,
                                                           std::string_view what);

// The kernel command line of cmdline.txt: its first line, whitespace-separated arguments;
// kInvalidArgument for a NUL byte or an empty line.
absl::StatusOr<std::vector<std::string>> ParseRpiCmdline(std::string_view text,
                                                         std::string_view what);

// What identifies a slot's rootfs in root=.
struct RpiSlotIdentity {
  std::string slot;      // "slot_a": its ext4 label
  std::string partuuid;  // GPT/MBR partition UUID
  std::string fs_uuid;   // ext4 UUID
  std::string device;    // "/dev/mmcblk0p2"
};

// Reads a file of the system-boot partition by name (kNotFound when missing).
using RpiFileReader = std::function<absl::StatusOr<std::string>(std::string_view name)>;

// The check described above, for config.txt_<slot>. Errors name the file and line.
absl::Status CheckSlotBootConfig(const RpiFileReader& read, const RpiSlotIdentity& slot);

}  // namespace ota::boot
