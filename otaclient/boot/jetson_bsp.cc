#include "otaclient/boot/jetson_bsp.h"

#include <cctype>

#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"

namespace ota::boot {
namespace {

constexpr int kMaxBspNumber = 9999;

// For messages: at most 60 bytes, control bytes as '?'.
std::string Shown(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 60)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  }
  if (text.size() > 60) out += "...";
  return out;
}

// A cursor over one line with the few matchers the formats need.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : rest_(text) {}
  bool Literal(std::string_view s) {
    if (rest_.substr(0, s.size()) != s) return false;
    rest_.remove_prefix(s.size());
    return true;
  }
  // 1..4 decimal digits (0..9999).
  bool Number(int* out) {
    size_t n = 0;
    int value = 0;
    while (n < rest_.size() && n < 5 && std::isdigit(static_cast<unsigned char>(rest_[n]))) {
      value = value * 10 + (rest_[n] - '0');
      ++n;
    }
    if (n == 0 || n > 4 || value > kMaxBspNumber) return false;
    rest_.remove_prefix(n);
    *out = value;
    return true;
  }
  // Any run of digits (GCID).
  bool Digits() {
    size_t n = 0;
    while (n < rest_.size() && std::isdigit(static_cast<unsigned char>(rest_[n]))) ++n;
    rest_.remove_prefix(n);
    return n > 0;
  }
  // Python's \w+ on ASCII.
  bool Word() {
    size_t n = 0;
    while (n < rest_.size() &&
           (std::isalnum(static_cast<unsigned char>(rest_[n])) || rest_[n] == '_')) {
      ++n;
    }
    rest_.remove_prefix(n);
    return n > 0;
  }
  void Spaces() {
    while (!rest_.empty() && (rest_.front() == ' ' || rest_.front() == '\t'))
      rest_.remove_prefix(1);
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// "A"/"0" → 0, "B"/"1" → 1.
std::optional<int> ParseSlotLetter(std::string_view text) {
  if (text == "A" || text == "0") return 0;
  if (text == "B" || text == "1") return 1;
  return std::nullopt;
}

}  // namespace

std::string BspVersion::ToString() const { return StrCat("R", major, ".", revision, ".", minor); }

absl::StatusOr<BspVersion> ParseBspVersion(std::string_view text) {
  Scanner scan(text);
  if (!scan.Literal("R")) (void)scan.Literal("r");
  BspVersion version;
  if (!scan.Number(&version.major) || !scan.Literal(".") || !scan.Number(&version.revision) ||
      !scan.Literal(".") || !scan.Number(&version.minor)) {
    return absl::InvalidArgumentError(
        StrCat("'", Shown(text), "' is not a BSP version (expected R<major>.<revision>.<minor>)"));
  }
  return version;
}

absl::StatusOr<BspVersion> ParseNvTegraRelease(std::string_view text) {
  const std::string_view line = text.substr(0, text.find('\n'));
  Scanner scan(line);
  BspVersion version;
  if (scan.Literal("# R") && scan.Number(&version.major) && scan.Literal(" (") && scan.Word() &&
      scan.Literal("), REVISION: ") && scan.Number(&version.revision) && scan.Literal(".") &&
      scan.Number(&version.minor) && scan.Literal(", GCID: ") && scan.Digits() &&
      scan.Literal(", BOARD: ") && scan.Word() && scan.Literal(", EABI: ") && scan.Word()) {
    return version;
  }
  return absl::InvalidArgumentError(
      StrCat("nv_tegra_release: first line '", Shown(line),
             "' is not '# R<major> (<word>), REVISION: <rev>.<minor>, GCID: <n>, BOARD: <word>, "
             "EABI: <word>…'"));
}

absl::StatusOr<NvBootControlConf> ParseNvBootControlConf(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("nv_boot_control.conf: contains a NUL byte");
  }
  NvBootControlConf conf;
  for (std::string_view raw : SplitLines(text)) {
    const std::string_view line = TrimSpace(raw);
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, space);
    const std::string value(TrimSpace(line.substr(space + 1)));
    // The first occurrence wins (upstream reads the first matching line).
    if (key == "TNSPEC" && conf.tnspec.empty()) conf.tnspec = value;
    if (key == "TEGRA_OTA_BOOT_DEVICE" && conf.tegra_ota_boot_device.empty()) {
      conf.tegra_ota_boot_device = value;
    }
  }
  return conf;
}

FirmwareStorage FirmwareStorageOf(const NvBootControlConf& conf) {
  const std::string_view device = conf.tegra_ota_boot_device;
  if (device.rfind("/dev/mtdblock0", 0) == 0) return FirmwareStorage::kQspi;
  if (device.rfind("/dev/mmcblk0", 0) == 0) return FirmwareStorage::kEmmc;
  return FirmwareStorage::kUnknown;
}

absl::StatusOr<DumpSlotsInfo> ParseDumpSlotsInfo(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("nvbootctrl dump-slots-info: output contains a NUL byte");
  }
  DumpSlotsInfo info;
  auto value_of = [](std::string_view line, std::string_view key) -> std::optional<std::string> {
    if (line.substr(0, key.size()) != key) return std::nullopt;
    return std::string(TrimSpace(line.substr(key.size())));
  };
  auto slot = [](const std::string& value, std::string_view what) -> absl::StatusOr<int> {
    std::optional<int> parsed = ParseSlotLetter(value);
    if (!parsed) {
      return absl::InvalidArgumentError(
          StrCat("nvbootctrl dump-slots-info: ", what, " '", Shown(value), "' is not A or B"));
    }
    return *parsed;
  };
  for (std::string_view raw : SplitLines(text)) {
    const std::string_view line = TrimSpace(raw);
    if (auto v = value_of(line, "Current version:"); v && !info.firmware_version) {
      absl::StatusOr<BspVersion> version = ParseBspVersion(*v);
      if (!version.ok()) {
        return WithContext(version.status(), "nvbootctrl dump-slots-info: Current version");
      }
      info.firmware_version = *version;
      info.current_version_text = *v;
    } else if (auto v = value_of(line, "Current bootloader slot:")) {
      OTA_ASSIGN_OR_RETURN(info.current_bootloader_slot, slot(*v, "current bootloader slot"));
    } else if (auto v = value_of(line, "Active bootloader slot:")) {
      OTA_ASSIGN_OR_RETURN(info.active_bootloader_slot, slot(*v, "active bootloader slot"));
    } else if (auto v = value_of(line, "Capsule update status:")) {
      std::optional<int> status = ParseDecimal<int>(*v);
      if (!status || *status < 0 || *status > 255) {
        return absl::InvalidArgumentError(StrCat(
            "nvbootctrl dump-slots-info: capsule update status '", Shown(*v), "' is not 0..255"));
      }
      info.capsule_update_status = *status;
    } else if (auto v = value_of(line, "slot:")) {
      // "0,             status: normal" (other fields may stand between; a line that does not
      // parse is ignored: it only serves the rollback check).
      const std::string_view text = *v;
      const size_t comma = text.find(',');
      const size_t status = text.find("status:");
      std::optional<int> number = ParseSlotLetter(TrimSpace(text.substr(0, comma)));
      if (comma == std::string_view::npos || status == std::string_view::npos || !number) {
        continue;
      }
      std::string_view value = TrimSpace(text.substr(status + 7));
      value = TrimSpace(value.substr(0, value.find(',')));
      info.slot_status[*number] = std::string(value);
    }
  }
  return info;
}

}  // namespace ota::boot
