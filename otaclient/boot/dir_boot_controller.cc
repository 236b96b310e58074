#include "otaclient/boot/dir_boot_controller.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/boot/slot_state_store.h"

namespace ota::boot {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

std::string OtherSlot(std::string_view slot) { return slot == "a" ? "b" : "a"; }

std::string ToUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// A slot_in_use value naming one of our slots ("a", "b", "slot_a", "slot_b"), else "".
std::string SlotOfSlotInUse(std::string_view value) {
  if (value == "a" || value == "slot_a") return "a";
  if (value == "b" || value == "slot_b") return "b";
  return {};
}

}  // namespace

absl::StatusOr<std::unique_ptr<DirBootController>> DirBootController::Create(
    DirBootOptions options) {
  if (options.root.empty()) return absl::InvalidArgumentError("dir boot controller: empty root");
  std::unique_ptr<DirBootController> controller(new DirBootController(std::move(options)));
  const std::filesystem::path& root = controller->options_.root;
  for (const std::filesystem::path& dir :
       {root / "slot_a", root / "slot_b", root / "boot" / "slot_a", root / "boot" / "slot_b"}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return ErrnoStatus(ec.value(), StrCat("create ", dir.string()));
  }
  // Until ConfirmBoot decides, the active slot is the one recorded as booted, else the default.
  // Only a hint: a corrupt file is reported by ConfirmBoot.
  absl::StatusOr<std::optional<std::string>> booted = controller->ReadSlotName("booted");
  absl::StatusOr<std::optional<std::string>> default_slot = controller->ReadSlotName("default");
  if (booted.ok() && booted->has_value()) {
    controller->booted_ = **booted;
  } else if (default_slot.ok() && default_slot->has_value()) {
    controller->booted_ = **default_slot;
  }
  return controller;
}

std::filesystem::path DirBootController::SlotRoot(std::string_view slot) const {
  return options_.root / StrCat("slot_", slot);
}

std::filesystem::path DirBootController::SlotStateFile(std::string_view slot,
                                                       std::string_view name) const {
  return BootDir() / StrCat("slot_", slot) / std::string(name);
}

std::string DirBootController::ReadOptionalFile(const std::filesystem::path& path) const {
  absl::StatusOr<std::string> content = fs::ReadFile(path);
  return content.ok() ? std::string(Trim(*content)) : std::string();
}

absl::StatusOr<std::optional<std::string>> DirBootController::ReadSlotName(
    std::string_view name) const {
  std::filesystem::path path = BootDir() / std::string(name);
  absl::StatusOr<std::string> content = fs::ReadFile(path);
  if (absl::IsNotFound(content.status())) return std::optional<std::string>();
  if (!content.ok()) return content.status();
  std::string_view slot = Trim(*content);
  if (slot != "a" && slot != "b") {
    return absl::DataLossError(
        StrCat(path.string(), ": expected slot name 'a' or 'b', found '", slot, "'"));
  }
  return std::optional<std::string>(std::string(slot));
}

absl::StatusOr<std::optional<SlotStatus>> DirBootController::ReadStatus(
    std::string_view slot) const {
  std::filesystem::path path = SlotStateFile(slot, "status");
  absl::StatusOr<std::string> content = fs::ReadFile(path);
  if (absl::IsNotFound(content.status())) return std::optional<SlotStatus>();
  if (!content.ok()) return content.status();
  // As the Python client reads it (a slot it left behind is taken over as it is): any case, and
  // a value it does not know is no status at all.
  absl::StatusOr<SlotStatus> status = ParseSlotStatus(ToUpper(Trim(*content)));
  if (!status.ok()) {
    log::Warning("unknown slot status, read as none (as the Python client does)",
                 {{"file", path.string()}, {"content", std::string(Trim(*content))}});
    return std::optional<SlotStatus>();
  }
  return std::optional<SlotStatus>(*status);
}

absl::Status DirBootController::WriteStatus(std::string_view slot, SlotStatus status) {
  log::Info("slot status", {{"slot", slot}, {"status", SlotStatusName(status)}});
  return fs::WriteFileAtomic(SlotStateFile(slot, "status"), SlotStatusName(status));
}

absl::Status DirBootController::RemoveFileDurably(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("remove ", path.string()));
  }
  return fs::SyncDir(path.parent_path());
}

absl::StatusOr<BootState> DirBootController::ConfirmBoot() {
  std::lock_guard<std::mutex> lock(mu_);
  if (confirmed_.has_value()) return *confirmed_;  // one boot, one decision
  absl::StatusOr<BootState> state = ConfirmBootLocked();
  if (state.ok()) confirmed_ = *state;
  return state;
}

absl::StatusOr<BootState> DirBootController::ConfirmBootLocked() {
  OTA_ASSIGN_OR_RETURN(std::optional<std::string> default_slot, ReadSlotName("default"));
  if (!default_slot.has_value()) {
    // Never booted by us: a state left by the Python client names the slot to run in the
    // slot_in_use files (both slots' status dirs hold the same value).
    for (std::string_view slot : {"a", "b"}) {
      std::string in_use = SlotOfSlotInUse(ReadOptionalFile(SlotStateFile(slot, "slot_in_use")));
      if (!in_use.empty()) {
        log::Info("no boot default yet: taking the slot_in_use left in the slot state",
                  {{"slot", in_use}});
        default_slot = in_use;
        break;
      }
    }
  }
  // A corrupt one-shot is dropped (a boot loader would ignore it too) rather than wedging boot.
  absl::StatusOr<std::optional<std::string>> next = ReadSlotName("next_boot");
  if (!next.ok()) {
    log::Warning("ignoring unreadable one-shot boot entry",
                 {{"error", std::string(next.status().message())}});
    next = std::optional<std::string>();
  }
  std::string booted = next->value_or(default_slot.value_or("a"));
  if (next->has_value()) {
    OTA_RETURN_IF_ERROR(RemoveFileDurably(BootDir() / "next_boot"));
  }
  if (!default_slot.has_value()) default_slot = "a";
  if (!std::filesystem::exists(BootDir() / "default")) {
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(BootDir() / "default", *default_slot));
  }
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(BootDir() / "booted", booted));
  booted_ = booted;
  const std::string other = OtherSlot(booted);

  OTA_ASSIGN_OR_RETURN(std::optional<SlotStatus> booted_status, ReadStatus(booted));
  OTA_ASSIGN_OR_RETURN(std::optional<SlotStatus> other_status, ReadStatus(other));

  BootState state;
  state.active_slot = booted;
  state.version = ReadOptionalFile(SlotStateFile(booted, "version"));
  if (state.version.size() > SlotStateStore::kMaxVersionBytes) {
    state.version.resize(SlotStateStore::kMaxVersionBytes);  // as upstream reads it
  }
  state.release = ParseVersionDetail(
                      ReadOptionalFile(SlotStateFile(booted, SlotStateStore::kVersionDetailFile)))
                      .value_or(ReleaseInfo{});
  log::Info("booted slot", {{"slot", booted},
                            {"via", next->has_value() ? "one-shot" : "default"},
                            {"version", state.version}});

  if (booted_status == SlotStatus::kUpdating || booted_status == SlotStatus::kRollbacking) {
    if (confirmation_deferred()) {
      // Health-gated: the default stays the old slot until CompleteConfirmation.
      log::Info("new slot booted; its confirmation waits for the health check", {{"slot", booted}});
      state.status = *booted_status;
      state.confirmation_pending = true;
      return state;
    }
    OTA_RETURN_IF_ERROR(ConfirmBootedLocked(state));
    return state;
  }
  if (other_status == SlotStatus::kRollbacking) {
    // The rollback's one-shot boot was consumed without that slot confirming: we fell back.
    state.status = SlotStatus::kRollbackFailure;
    state.failure_reason = StrCat("rollback to slot ", other, " did not boot; running ", booted);
    OTA_RETURN_IF_ERROR(WriteStatus(other, SlotStatus::kRollbackFailure));
    OTA_RETURN_IF_ERROR(
        fs::WriteFileAtomic(SlotStateFile(other, "failure_reason"), state.failure_reason));
    return state;
  }
  if (other_status == SlotStatus::kUpdating) {
    // The other slot was being updated and we are not running it: either its one-shot boot was
    // consumed without it confirming (the switch was committed), or the update was cut off
    // before the switch.
    state.status = SlotStatus::kFailure;
    state.failure_reason =
        std::filesystem::exists(SlotStateFile(other, "switch_committed"))
            ? StrCat("new slot ", other, " did not boot; running ", booted)
            : StrCat("update of slot ", other,
                     " was interrupted before the boot switch (otaclient or the machine "
                     "restarted); running ",
                     booted);
    OTA_RETURN_IF_ERROR(WriteStatus(other, SlotStatus::kFailure));
    OTA_RETURN_IF_ERROR(
        fs::WriteFileAtomic(SlotStateFile(other, "failure_reason"), state.failure_reason));
    return state;
  }
  if (!booted_status.has_value()) {
    OTA_RETURN_IF_ERROR(WriteStatus(booted, SlotStatus::kInitialized));
    booted_status = SlotStatus::kInitialized;
  }
  state.status = *booted_status;
  // The outcome of our last operation on the other slot stays visible until the next update.
  // Ours always come with a failure_reason: a bare FAILURE there is the Python client's (its
  // pre-update marks the slot it updates FROM as FAILURE, and after the switch that is the
  // other slot), which it never reports: neither do we.
  const std::string other_reason = ReadOptionalFile(SlotStateFile(other, "failure_reason"));
  if ((other_status == SlotStatus::kFailure || other_status == SlotStatus::kAborted ||
       other_status == SlotStatus::kRollbackFailure) &&
      !other_reason.empty()) {
    state.status = *other_status;
    state.failure_reason = other_reason;
  } else if (state.status == SlotStatus::kFailure) {
    // The running slot itself says FAILURE (the Python client's mark of a failed update).
    state.failure_reason = StrCat("the last update failed (status FAILURE recorded in ",
                                  SlotStateFile(booted, "status").string(), ")");
  }
  return state;
}

absl::Status DirBootController::ConfirmBootedLocked(BootState& state) {
  // The freshly written (or rolled back to) slot came up: it is good, make it the default.
  const std::string other = OtherSlot(booted_);
  OTA_ASSIGN_OR_RETURN(std::optional<SlotStatus> other_status, ReadStatus(other));
  OTA_RETURN_IF_ERROR(WriteStatus(booted_, SlotStatus::kSuccess));
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(BootDir() / "default", booted_));
  if (other_status == SlotStatus::kInitialized) {
    // The slot we came from ran until now: it holds the previous good image (rollback target).
    OTA_RETURN_IF_ERROR(WriteStatus(other, SlotStatus::kSuccess));
  }
  state.status = SlotStatus::kSuccess;
  state.confirmation_pending = false;
  return absl::OkStatus();
}

absl::StatusOr<BootState> DirBootController::CompleteConfirmation() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value() || !confirmed_->confirmation_pending) {
    return absl::FailedPreconditionError("dir boot controller: no boot confirmation is pending");
  }
  BootState state = *confirmed_;
  OTA_RETURN_IF_ERROR(ConfirmBootedLocked(state));
  log::Info("new slot confirmed after its health check", {{"slot", booted_}});
  confirmed_ = state;
  return state;
}

absl::Status DirBootController::RejectNewSlot(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value() || !confirmed_->confirmation_pending) {
    return absl::FailedPreconditionError("dir boot controller: no boot confirmation is pending");
  }
  // The default still names the old slot: the next boot returns there, and its ConfirmBoot
  // reports this slot's outcome with the reason.
  const SlotStatus outcome = confirmed_->status == SlotStatus::kRollbacking
                                 ? SlotStatus::kRollbackFailure
                                 : SlotStatus::kFailure;
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(SlotStateFile(booted_, "failure_reason"),
                                          StrCat(kHealthCheckFailedPrefix, reason)));
  OTA_RETURN_IF_ERROR(WriteStatus(booted_, outcome));
  log::Warning("new slot rejected: the next boot returns to the old slot",
               {{"slot", booted_}, {"reason", std::string(reason)}});
  confirmed_->confirmation_pending = false;
  confirmed_->status = outcome;
  confirmed_->failure_reason = StrCat(kHealthCheckFailedPrefix, reason);
  return absl::OkStatus();
}

std::filesystem::path DirBootController::ActiveRoot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return SlotRoot(booted_);
}

std::string DirBootController::active_slot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return booted_;
}

std::string DirBootController::standby_slot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return OtherSlot(booted_);
}

absl::StatusOr<std::filesystem::path> DirBootController::PrepareStandby(
    std::string_view version, std::span<const std::string_view> keep_top_level) {
  return Prepare(version, keep_top_level, /*keep_contents=*/false);
}

absl::StatusOr<PreparedStandby> DirBootController::PrepareStandbyInPlace(
    std::string_view version, std::span<const std::string_view> keep_top_level) {
  OTA_ASSIGN_OR_RETURN(std::filesystem::path root,
                       Prepare(version, keep_top_level, /*keep_contents=*/true));
  return PreparedStandby{std::move(root), true, ""};
}

absl::StatusOr<std::filesystem::path> DirBootController::Prepare(
    std::string_view version, std::span<const std::string_view> keep_top_level,
    bool keep_contents) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!confirmed_.has_value()) {
    return absl::FailedPreconditionError("dir boot controller: ConfirmBoot was not called");
  }
  const std::string standby = OtherSlot(booted_);
  // Unbootable first: drop any stale one-shot into it, make sure it is not the default.
  OTA_RETURN_IF_ERROR(RemoveFileDurably(BootDir() / "next_boot"));
  OTA_ASSIGN_OR_RETURN(std::optional<std::string> default_slot, ReadSlotName("default"));
  if (default_slot == standby) {
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(BootDir() / "default", booted_));
  }
  OTA_RETURN_IF_ERROR(WriteStatus(standby, SlotStatus::kUpdating));
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(SlotStateFile(standby, "version"), version));
  // The release the Python client records beside the version (complete, or no file).
  OTA_RETURN_IF_ERROR(
      SlotStateStore(BootDir() / StrCat("slot_", standby)).WriteRelease(standby_release()));
  OTA_RETURN_IF_ERROR(RemoveFileDurably(SlotStateFile(standby, "failure_reason")));
  OTA_RETURN_IF_ERROR(RemoveFileDurably(SlotStateFile(standby, "switch_committed")));
  standby_prepared_ = true;
  switch_committed_ = false;
  standby_version_ = std::string(version);

  std::filesystem::path standby_root = SlotRoot(standby);
  if (!keep_contents) {
    OTA_ASSIGN_OR_RETURN(fs::RootedDir dir, fs::RootedDir::Open(standby_root));
    OTA_RETURN_IF_ERROR(WithContext(dir.RemoveTreeExcept(keep_top_level),
                                    StrCat("cleaning standby ", standby_root.string())));
  }
  log::Info(
      "standby prepared",
      {{"slot", standby}, {"version", version}, {"contents", keep_contents ? "kept" : "cleaned"}});
  return standby_root;
}

absl::Status DirBootController::CommitSwitch() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!standby_prepared_) {
    return absl::FailedPreconditionError("dir boot controller: no standby prepared");
  }
  const std::string standby = OtherSlot(booted_);
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(SlotStateFile(standby, "switch_committed"), ""));
  OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(BootDir() / "next_boot", standby));
  switch_committed_ = true;
  log::Info("boot switch committed: next boot tries the standby once", {{"slot", standby}});
  return absl::OkStatus();
}

absl::Status DirBootController::OnUpdateFailed(SlotStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!standby_prepared_) {
    return absl::FailedPreconditionError("dir boot controller: no standby prepared");
  }
  const std::string standby = OtherSlot(booted_);
  if (switch_committed_) OTA_RETURN_IF_ERROR(RemoveFileDurably(BootDir() / "next_boot"));
  OTA_RETURN_IF_ERROR(WriteStatus(standby, status));
  OTA_RETURN_IF_ERROR(
      fs::WriteFileAtomic(SlotStateFile(standby, "failure_reason"),
                          StrCat("update of slot ", standby, " to version ", standby_version_,
                                 " ended with ", SlotStatusName(status))));
  standby_prepared_ = false;
  switch_committed_ = false;
  return absl::OkStatus();
}

absl::Status DirBootController::CheckRollbackPossibleLocked() const {
  if (!confirmed_.has_value()) {
    return absl::FailedPreconditionError("dir boot controller: ConfirmBoot was not called");
  }
  if (standby_prepared_ || switch_committed_) {
    return absl::FailedPreconditionError(
        "rollback not possible: the other slot is being updated or armed for the next boot");
  }
  const std::string other = OtherSlot(booted_);
  OTA_ASSIGN_OR_RETURN(std::optional<SlotStatus> other_status, ReadStatus(other));
  if (other_status != SlotStatus::kSuccess) {
    return absl::FailedPreconditionError(
        StrCat("rollback not possible: slot ", other, " has status ",
               other_status.has_value() ? SlotStatusName(*other_status) : "(none)",
               ", a previous good image needs SUCCESS"));
  }
  std::error_code ec;
  if (std::filesystem::is_empty(SlotRoot(other), ec) || ec) {
    return absl::FailedPreconditionError(StrCat("rollback not possible: slot ", other, " (",
                                                SlotRoot(other).string(),
                                                ") is empty or unreadable"));
  }
  return absl::OkStatus();
}

absl::Status DirBootController::CheckRollbackPossible() {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckRollbackPossibleLocked();
}

absl::Status DirBootController::CommitRollback() {
  std::lock_guard<std::mutex> lock(mu_);
  OTA_RETURN_IF_ERROR(CheckRollbackPossibleLocked());
  const std::string other = OtherSlot(booted_);
  OTA_RETURN_IF_ERROR(WriteStatus(other, SlotStatus::kRollbacking));
  OTA_RETURN_IF_ERROR(RemoveFileDurably(SlotStateFile(other, "failure_reason")));
  if (absl::Status armed = fs::WriteFileAtomic(BootDir() / "next_boot", other); !armed.ok()) {
    // Not armed: the slot is still the good image it was, so a later attempt may try again.
    absl::Status restored = WriteStatus(other, SlotStatus::kSuccess);
    if (!restored.ok()) {
      log::Error("could not restore the rollback target's status",
                 {{"slot", other}, {"error", std::string(restored.message())}});
    }
    return armed;
  }
  switch_committed_ = true;
  log::Info("rollback committed: next boot tries the previous slot once", {{"slot", other}});
  return absl::OkStatus();
}

absl::Status DirBootController::Reboot() {
  if (options_.reboot_hook) {
    log::Info("reboot (hook)");
    return options_.reboot_hook();
  }
  if (options_.reexec_argv.empty()) {
    return absl::FailedPreconditionError("dir boot controller: no argv to re-exec for reboot");
  }
  std::vector<char*> argv;
  for (std::string& arg : options_.reexec_argv) argv.push_back(arg.data());
  argv.push_back(nullptr);
  log::Info("reboot: re-executing otaclient", {{"argv0", options_.reexec_argv[0]}});
  ::execv("/proc/self/exe", argv.data());
  return ErrnoStatus(errno, "execv /proc/self/exe");
}

}  // namespace ota::boot
