// ecu_info.yml: who this ECU is, where it listens and which secondary ECUs it talks to.
// See deploy/ecu_info.yml for an annotated sample.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

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
  // Also the address the gRPC service binds to.
  std::string ip_addr = "localhost";
  // Direct children only; their own children are reached through them.
  std::vector<SecondaryEcu> secondaries;
  // Every ECU id of the tree (main ECU), default {ecu_id}. Reported in StatusResponse.
  std::vector<std::string> available_ecu_ids = {"autoware"};
  // "" = detect; otherwise one of "grub", "cboot", "dir" (directory slots, dev/test).
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

inline constexpr std::string_view kEcuInfoFileName = "ecu_info.yml";
inline constexpr std::string_view kEcuInfoAltFileName = "ecu_info.yaml";

// Parses the text of an ecu_info file; `file_name` is used in messages and as `source`.
// Empty text (or only comments) gives the defaults. Any invalid content is kInvalidArgument
// "<file>:<line>: field \"<field>\": <problem>"; never throws.
absl::StatusOr<EcuInfo> ParseEcuInfo(std::string_view yaml_text, std::string_view file_name);

// Reads and parses one file. kInvalidArgument for bad content, not a regular file or too big;
// the errno-mapped status when it cannot be read.
absl::StatusOr<EcuInfo> LoadEcuInfoFile(const std::filesystem::path& file);

// Loads dir/ecu_info.yml, else dir/ecu_info.yaml (both present: .yml wins, with a warning),
// else returns the defaults with an empty `source`. An existing but invalid or unreadable
// file is an error, never a fallback to the defaults.
absl::StatusOr<EcuInfo> LoadEcuInfo(const std::filesystem::path& dir);

}  // namespace ota::config
