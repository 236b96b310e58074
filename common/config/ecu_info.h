// ecu_info.yaml: who this ECU is, where it listens and which secondary ECUs it talks to.
// See deploy/ecu_info.yaml for an annotated sample. The file is read the way today's Python
// otaclient reads it (PyYAML, YAML 1.1 scalars, pydantic strict types): every file it accepts
// loads here with the same meaning; what it rejects is an error naming file, line and field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::config {

// A directly connected child ECU.
struct SecondaryEcu {
  std::string ecu_id;
  std::string ip_addr;
  uint16_t port = 50051;

  bool operator==(const SecondaryEcu&) const = default;
};

struct EcuInfo {
  int format_version = 1;
  std::string ecu_id = "autoware";
  // Also the address the gRPC service binds to. (Upstream takes IP addresses only; a host name
  // is accepted here too.)
  std::string ip_addr = "127.0.0.1";
  // Direct children only; their own children are reached through them.
  std::vector<SecondaryEcu> secondaries;
  // Every ECU id of the tree (main ECU), default {ecu_id}. Reported in StatusResponse.
  std::vector<std::string> available_ecu_ids = {"autoware"};
  // As written in the file: "" (no key) or "auto_detect" = detect; "grub", "jetson-cboot" (or its
  // deprecated alias "cboot"), "jetson-uefi", "rpi_boot", or "dir" (directory slots, dev/test).
  std::string bootloader;
  // Optional explicit A/B rootfs devices (block-device boot backends), both or neither:
  // "PARTUUID=…", "UUID=…", "LABEL=…", "PARTLABEL=…" or "/dev/…". Empty: detected.
  std::string boot_slot_a;
  std::string boot_slot_b;
  // The file this came from; empty when no file exists and these are the defaults.
  std::filesystem::path source;
  // Problems that did not stop parsing (unknown keys, ...), "<file>:<line>: field ...: ...".
  // Each is also logged as a warning.
  std::vector<std::string> warnings;

  bool operator==(const EcuInfo&) const = default;
};

// The Python client reads only ecu_info.yaml; ecu_info.yml is still read when there is no .yaml.
inline constexpr std::string_view kEcuInfoFileName = "ecu_info.yaml";
inline constexpr std::string_view kEcuInfoAltFileName = "ecu_info.yml";

// An ECU id as ecu_info accepts it, and as this ECU accepts one reported by a secondary
// (otaclient/ecu/child_answer.h): at most kMaxEcuIdBytes bytes of UTF-8, no control character
// (bytes below 0x20, DEL), no leading or trailing space. The empty id passes: whether one may be
// empty is the caller's rule. kInvalidArgument naming the problem ("ECU id ...").
inline constexpr size_t kMaxEcuIdBytes = 255;
absl::Status CheckEcuId(std::string_view id);

// The `bootloader` values of ecu_info ("" = key absent).
bool IsKnownBootloader(std::string_view bootloader);

// Parses the text of an ecu_info file; `file_name` is used in messages and as `source`.
// Any invalid content is kInvalidArgument "<file>:<line>: field \"<field>\": <problem>"; an
// empty document (empty file, only comments) is invalid too, as upstream: ecu_id is required.
// Never throws.
absl::StatusOr<EcuInfo> ParseEcuInfo(std::string_view yaml_text, std::string_view file_name);

// Reads and parses one file. kInvalidArgument for bad content, not a regular file or too big;
// the errno-mapped status when it cannot be read.
absl::StatusOr<EcuInfo> LoadEcuInfoFile(const std::filesystem::path& file);

// Loads dir/ecu_info.yaml, else dir/ecu_info.yml (both present: .yaml wins, with a warning naming
// the ignored one); logs which file it used. No file is kNotFound naming both paths; an invalid
// or unreadable file is an error too. The daemon then runs on EcuInfo{} (the upstream defaults:
// "autoware", 127.0.0.1, no secondaries) and refuses updates with that error, as upstream does.
absl::StatusOr<EcuInfo> LoadEcuInfo(const std::filesystem::path& dir);

}  // namespace ota::config
