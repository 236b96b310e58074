#include "otaclient/boot/rpi_boot_files.h"

#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"

namespace ota::boot {
namespace {

constexpr size_t kMaxBootFileBytes = size_t{1} << 20;

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// A file name the firmware can open on the FAT partition: no separators upward, no blanks.
bool IsPlainFileName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find("..") != std::string_view::npos) {
    return false;
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<RpiConfigEntry>> ParseRpiConfig(std::string_view text,
                                                           std::string_view what) {
  if (text.size() > kMaxBootFileBytes) {
    return absl::InvalidArgumentError(StrCat(what, ": larger than 1 MiB"));
  }
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat(what, ": contains a NUL byte"));
  }
  std::vector<RpiConfigEntry> entries;
  bool in_none = false;
  int number = 0;
  for (std::string_view raw : SplitLines(text)) {
    ++number;
    std::string_view line = TrimSpace(raw);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(StrCat(what, ":", number, ": ", why, ": '", line, "'"));
    };
    if (line.front() == '[') {
      if (line.back() != ']') return bad("unterminated section");
      in_none = ToLower(line) == "[none]";
      continue;
    }
    RpiConfigEntry entry;
    entry.line = number;
    const size_t eq = line.find('=');
    const size_t space = line.find_first_of(" \t");
    if (eq != std::string_view::npos && (space == std::string_view::npos || eq < space)) {
      entry.key = ToLower(TrimSpace(line.substr(0, eq)));
      entry.value = std::string(TrimSpace(line.substr(eq + 1)));
    } else if (space != std::string_view::npos) {
      // initramfs <file> [followkernel|<address>], include <file>
      entry.key = ToLower(line.substr(0, space));
      std::vector<std::string_view> args = SplitFields(line.substr(space));
      if (args.empty()) return bad("missing argument");
      if (entry.key != "initramfs" && entry.key != "include") {
        return bad("expected key=value");
      }
      entry.value = std::string(args.front());
    } else {
      return bad("expected key=value");
    }
    if (entry.key.empty() || !std::all_of(entry.key.begin(), entry.key.end(), IsKeyChar)) {
      return bad("bad key");
    }
    if (!in_none) entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<std::string>> ParseRpiCmdline(std::string_view text,
                                                         std::string_view what) {
  if (text.size() > kMaxBootFileBytes) {
    return absl::InvalidArgumentError(StrCat(what, ": larger than 1 MiB"));
  }
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat(what, ": contains a NUL byte"));
  }
  std::vector<std::string> args;
  for (std::string_view field : SplitFields(TrimSpace(text.substr(0, text.find('\n'))))) {
    args.emplace_back(field);
  }
  if (args.empty()) return absl::InvalidArgumentError(StrCat(what, ": empty kernel command line"));
  return args;
}

absl::Status CheckSlotBootConfig(const RpiFileReader& read, const RpiSlotIdentity& slot) {
  const std::string config_name = StrCat("config.txt_", slot.slot);
  OTA_ASSIGN_OR_RETURN(std::string config_text, read(config_name));
  OTA_ASSIGN_OR_RETURN(std::vector<RpiConfigEntry> entries,
                       ParseRpiConfig(config_text, config_name));
  std::string os_prefix;
  std::string cmdline_name = "cmdline.txt";
  for (const RpiConfigEntry& entry : entries) {
    if (entry.key == "os_prefix") os_prefix = entry.value;
    if (entry.key == "cmdline") cmdline_name = entry.value;
  }
  auto must_exist = [&](const RpiConfigEntry& entry, const std::string& name) -> absl::Status {
    if (!IsPlainFileName(name)) {
      return absl::FailedPreconditionError(StrCat(config_name, ":", entry.line, ": ", entry.key,
                                                  " names '", name, "', not a boot file"));
    }
    absl::StatusOr<std::string> file = read(name);
    if (!file.ok()) {
      return absl::FailedPreconditionError(StrCat(config_name, ":", entry.line, ": ", entry.key,
                                                  " names ", name, ", which cannot be read (",
                                                  file.status().message(), ")"));
    }
    return absl::OkStatus();
  };
  for (const RpiConfigEntry& entry : entries) {
    if (entry.key == "kernel" || entry.key == "initramfs" || entry.key == "cmdline") {
      OTA_RETURN_IF_ERROR(must_exist(entry, os_prefix + entry.value));
    } else if (entry.key == "include" || entry.key == "device_tree") {
      OTA_RETURN_IF_ERROR(must_exist(entry, entry.value));
    }
  }
  const std::string cmdline_path = os_prefix + cmdline_name;
  OTA_ASSIGN_OR_RETURN(std::string cmdline_text, read(cmdline_path));
  OTA_ASSIGN_OR_RETURN(std::vector<std::string> args, ParseRpiCmdline(cmdline_text, cmdline_path));
  std::optional<std::string> root;
  for (const std::string& arg : args) {
    if (arg.rfind("root=", 0) == 0) root = arg.substr(5);  // the kernel takes the last one
  }
  if (!root.has_value()) {
    return absl::FailedPreconditionError(
        StrCat(cmdline_path, " (used by ", config_name, ") has no root="));
  }
  auto equals_ci = [](std::string_view a, std::string_view b) { return ToLower(a) == ToLower(b); };
  const std::string_view value = *root;
  bool matches = false;
  if (value.rfind("LABEL=", 0) == 0) matches = value.substr(6) == slot.slot;
  if (value.rfind("PARTUUID=", 0) == 0) {
    matches = !slot.partuuid.empty() && equals_ci(value.substr(9), slot.partuuid);
  }
  if (value.rfind("UUID=", 0) == 0) {
    matches = !slot.fs_uuid.empty() && equals_ci(value.substr(5), slot.fs_uuid);
  }
  if (value.rfind("/dev/", 0) == 0) matches = value == slot.device;
  if (!matches) {
    return absl::FailedPreconditionError(
        StrCat(cmdline_path, " (used by ", config_name, ") boots root=", value, ", which is not ",
               slot.slot, " (LABEL=", slot.slot, ", PARTUUID=", slot.partuuid, ", ", slot.device,
               "): tryboot would start the wrong rootfs"));
  }
  return absl::OkStatus();
}

}  // namespace ota::boot
