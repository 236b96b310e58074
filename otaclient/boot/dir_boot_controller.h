// The directory boot backend: two slot directories and a boot state that mimics GRUB's
// "default" + one-shot "next_entry". Used for development, the demo and tests; a "reboot" is a
// restart of otaclient (re-exec) which then runs on the other slot directory.
//
// Layout under the root R:
//   R/slot_a/, R/slot_b/        the slots (R/slot_<x> is what ActiveRoot()/PrepareStandby return)
//   R/boot/default              "a" or "b": the slot booted normally (missing: "a")
//   R/boot/next_boot            one-shot: consumed (deleted) by the next ConfirmBoot, which then
//                               "boots" that slot once, like GRUB's next_entry
//   R/boot/booted               the slot the current process booted (written by ConfirmBoot)
//   R/boot/slot_<x>/status      SlotStatus name (boot_controller.h), written atomically
//   R/boot/slot_<x>/version     firmware version of that slot
//   R/boot/slot_<x>/version_detail  the release of that slot's image, in the Python client's
//                               format (slot_state_store.h); reported for the running slot
//   R/boot/slot_<x>/failure_reason  why the last update of that slot failed (when it did)
//   R/boot/slot_<x>/switch_committed  present once CommitSwitch armed the one-shot into the
//                               slot (removed by PrepareStandby): tells "did not boot" from
//                               "interrupted before the switch" when we are back on the other
//                               slot
// A slot whose status is UPDATING is never made the default.
// Taking over a state the Python client's files describe: status names are read in any case
// and an unknown one as none; without R/boot/default the slot named by slot_in_use ("a", "b",
// "slot_a", "slot_b") boots; a FAILURE on the other slot without our failure_reason is its
// pre-update mark of the slot it left, not reported.
// Rollback: possible when the other slot's status is SUCCESS (the slot an update came from is
// promoted from INITIALIZED to SUCCESS when the new slot is confirmed: it ran until then).
// CommitRollback marks it ROLLBACKING and arms the one-shot; ConfirmBoot turns ROLLBACKING into
// SUCCESS (made the default) when that slot came up, or into ROLLBACK_FAILURE when we are back
// on the slot we rolled back from.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "otaclient/boot/boot_controller.h"

namespace ota::boot {

struct DirBootOptions {
  std::filesystem::path root;
  // When set, Reboot() calls this instead of re-executing (tests, demos) and returns its status.
  std::function<absl::Status()> reboot_hook;
  // Without a hook, Reboot() execv()s /proc/self/exe with these arguments (argv[0] first).
  std::vector<std::string> reexec_argv;
};

class DirBootController : public BootController {
 public:
  // Creates the directories of the layout that are missing; reads nothing else yet.
  static absl::StatusOr<std::unique_ptr<DirBootController>> Create(DirBootOptions options);

  absl::StatusOr<BootState> ConfirmBoot() override;
  std::filesystem::path ActiveRoot() const override;
  absl::StatusOr<std::filesystem::path> PrepareStandby(
      std::string_view version, std::span<const std::string_view> keep_top_level) override;
  // Directory slots are always fit: the standby is left as it is.
  absl::StatusOr<PreparedStandby> PrepareStandbyInPlace(
      std::string_view version, std::span<const std::string_view> keep_top_level) override;
  absl::Status CommitSwitch() override;
  absl::Status OnUpdateFailed(SlotStatus status) override;
  absl::Status CheckRollbackPossible() override;
  absl::Status CommitRollback() override;
  absl::Status Reboot() override;
  bool SupportsDeferredConfirmation() const override { return true; }
  absl::StatusOr<BootState> CompleteConfirmation() override;
  absl::Status RejectNewSlot(std::string_view reason) override;

  // "a" or "b".
  std::string active_slot() const;
  std::string standby_slot() const;
  std::filesystem::path SlotRoot(std::string_view slot) const;

 private:
  explicit DirBootController(DirBootOptions options) : options_(std::move(options)) {}

  std::filesystem::path BootDir() const { return options_.root / "boot"; }
  // Marks the standby unbootable and UPDATING; cleans it unless `keep_contents`.
  absl::StatusOr<std::filesystem::path> Prepare(std::string_view version,
                                                std::span<const std::string_view> keep_top_level,
                                                bool keep_contents);
  std::filesystem::path SlotStateFile(std::string_view slot, std::string_view name) const;
  // Reads R/boot/<name> as a slot letter; nullopt when missing.
  absl::StatusOr<std::optional<std::string>> ReadSlotName(std::string_view name) const;
  absl::StatusOr<std::optional<SlotStatus>> ReadStatus(std::string_view slot) const;
  absl::Status WriteStatus(std::string_view slot, SlotStatus status);
  std::string ReadOptionalFile(const std::filesystem::path& path) const;
  absl::Status RemoveFileDurably(const std::filesystem::path& path);
  absl::StatusOr<BootState> ConfirmBootLocked();
  // The booted slot was switched to and came up: SUCCESS, made the default.
  absl::Status ConfirmBootedLocked(BootState& state);
  absl::Status CheckRollbackPossibleLocked() const;

  DirBootOptions options_;
  mutable std::mutex mu_;
  std::string booted_ = "a";
  std::optional<BootState> confirmed_;
  bool standby_prepared_ = false;
  bool switch_committed_ = false;
  std::string standby_version_;
};

}  // namespace ota::boot
