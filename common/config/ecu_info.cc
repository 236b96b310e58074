#include "common/config/ecu_info.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "common/config/config_files.h"
#include "common/config/yaml_fields.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/utf8.h"

namespace ota::config {
namespace {

using internal::Entry;
using internal::Field;
using internal::ParseContext;

// Upstream's BootloaderType values (exactly these lowercase strings), and our directory backend.
constexpr std::string_view kBootloaders[] = {"auto_detect", "grub",     "cboot", "jetson-cboot",
                                             "jetson-uefi", "rpi_boot", "dir"};

// A null value where upstream's field is not Optional: the whole file is invalid there.
absl::Status NullNotAllowed(const Field& field, const ParseContext& ctx, std::string_view what) {
  return ctx.Error(field.mark, field.path,
                   StrCat("expected ", what,
                          ", got null (an empty value; leave the key out for "
                          "the default)"));
}

// A block device named the way fstab/blkid name them, or by its path under /dev.
bool IsDeviceSpec(std::string_view spec) {
  for (std::string_view prefix : {"PARTUUID=", "UUID=", "LABEL=", "PARTLABEL="}) {
    if (spec.size() > prefix.size() && spec.substr(0, prefix.size()) == prefix) {
      return spec.find_first_of(" \t\n") == std::string_view::npos;
    }
  }
  return spec.size() > 5 && spec.substr(0, 5) == "/dev/" &&
         spec.find_first_of(" \t\n") == std::string_view::npos &&
         spec.find("..") == std::string_view::npos;
}

// Parses one element of `secondaries`; `ecu_id_mark` receives the position of its ecu_id.
absl::StatusOr<SecondaryEcu> ParseSecondary(const Field& element, const ParseContext& ctx,
                                            YAML::Mark* ecu_id_mark) {
  OTA_ASSIGN_OR_RETURN(std::vector<Entry> entries, internal::MappingEntries(element, ctx));
  SecondaryEcu secondary;
  bool has_ecu_id = false;
  bool has_ip_addr = false;
  for (const Entry& entry : entries) {
    const Field& field = entry.field;
    if (entry.key == "ecu_id") {
      if (field.value.IsNull()) return ctx.Error(field.mark, field.path, "required, got null");
      OTA_ASSIGN_OR_RETURN(secondary.ecu_id, internal::ReadEcuId(field, ctx));
      *ecu_id_mark = field.mark;
      has_ecu_id = true;
    } else if (entry.key == "ip_addr") {
      if (field.value.IsNull()) return ctx.Error(field.mark, field.path, "required, got null");
      OTA_ASSIGN_OR_RETURN(secondary.ip_addr, internal::ReadHost(field, ctx));
      has_ip_addr = true;
    } else if (entry.key == "port") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "an integer 1-65535");
      OTA_ASSIGN_OR_RETURN(secondary.port, internal::ReadPort(field, ctx));
    } else {
      ctx.Warn(field.mark, field.path, "unknown key, ignored");
    }
  }
  if (!has_ecu_id) return ctx.Error(element.mark, StrCat(element.path, ".ecu_id"), "required");
  if (!has_ip_addr) return ctx.Error(element.mark, StrCat(element.path, ".ip_addr"), "required");
  return secondary;
}

absl::StatusOr<EcuInfo> ParseEcuInfoDocument(std::string_view yaml_text,
                                             std::string_view file_name) {
  EcuInfo info;
  info.source = std::filesystem::path(file_name);
  ParseContext ctx(file_name, &info.warnings);
  OTA_ASSIGN_OR_RETURN(YAML::Node root, internal::LoadRootMapping(yaml_text, ctx));
  if (root.IsNull()) {
    // Upstream: not a mapping, so the file is invalid (its defaults then apply and updates are
    // refused); the ECU needs at least its ecu_id.
    return ctx.Error(YAML::Mark::null_mark(), "",
                     "no settings (an empty file or only comments): ecu_id is required");
  }

  Field root_field{"", root, root.Mark()};
  OTA_ASSIGN_OR_RETURN(std::vector<Entry> entries, internal::MappingEntries(root_field, ctx));
  // Where each secondary's ecu_id was declared, to name both places of a duplicate.
  std::vector<Field> secondary_id_fields;
  std::optional<Field> available_field;
  std::vector<Field> available_elements;
  std::optional<Field> own_id_field;
  std::vector<Field> slot_fields;  // boot_slot_a / boot_slot_b: both or neither

  for (const Entry& entry : entries) {
    const Field& field = entry.field;
    if (entry.key == "ecu_id") {
      if (field.value.IsNull()) return ctx.Error(field.mark, field.path, "required, got null");
      OTA_ASSIGN_OR_RETURN(info.ecu_id, internal::ReadEcuId(field, ctx));
      own_id_field = field;
      continue;
    }
    if (!(entry.key == "format_version" || entry.key == "ip_addr" || entry.key == "secondaries" ||
          entry.key == "available_ecu_ids" || entry.key == "bootloader" ||
          entry.key == "boot_slot_a" || entry.key == "boot_slot_b")) {
      ctx.Warn(field.mark, field.path, "unknown key, ignored");
      continue;
    }
    if (entry.key == "format_version") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "an integer");
      // Any integer, as upstream (it does not check the value); only 1 exists.
      OTA_ASSIGN_OR_RETURN(int64_t version,
                           internal::ReadInt(field, std::numeric_limits<int32_t>::min(),
                                             std::numeric_limits<int32_t>::max(), ctx));
      if (version != 1) {
        ctx.Warn(field.mark, field.path,
                 StrCat("format version ", version, " is not 1; reading it as version 1"));
      }
      info.format_version = static_cast<int>(version);
    } else if (entry.key == "ip_addr") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "an IP address");
      OTA_ASSIGN_OR_RETURN(info.ip_addr, internal::ReadHost(field, ctx));
    } else if (entry.key == "bootloader") {
      if (field.value.IsNull()) {
        return NullNotAllowed(field, ctx, "a bootloader name (or no key to detect)");
      }
      OTA_ASSIGN_OR_RETURN(std::string bootloader, internal::ReadString(field, ctx));
      if (!IsKnownBootloader(bootloader)) {
        return ctx.Error(field.mark, field.path,
                         StrCat("expected one of grub, jetson-cboot, jetson-uefi, rpi_boot, "
                                "auto_detect, cboot (deprecated) or dir, got ",
                                internal::QuoteForMessage(bootloader)));
      }
      if (bootloader == "auto_detect") {
        ctx.Warn(field.mark, field.path,
                 "auto_detect is deprecated (upstream too): name the bootloader");
      } else if (bootloader == "cboot") {
        ctx.Warn(field.mark, field.path, "cboot is the deprecated name of jetson-cboot");
      }
      info.bootloader = std::move(bootloader);
    } else if (entry.key == "boot_slot_a" || entry.key == "boot_slot_b") {
      if (field.value.IsNull()) continue;  // ours, not upstream's: no value means detect
      OTA_ASSIGN_OR_RETURN(std::string spec, internal::ReadString(field, ctx));
      if (!IsDeviceSpec(spec)) {
        return ctx.Error(field.mark, field.path,
                         StrCat("expected PARTUUID=…, UUID=…, LABEL=…, PARTLABEL=… or a /dev/ "
                                "path, got ",
                                internal::QuoteForMessage(spec)));
      }
      (entry.key == "boot_slot_a" ? info.boot_slot_a : info.boot_slot_b) = std::move(spec);
      slot_fields.push_back(field);
    } else if (entry.key == "secondaries") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "a list (write [] for none)");
      OTA_ASSIGN_OR_RETURN(
          std::vector<Field> elements,
          internal::SequenceElements(field, "a list of {ecu_id, ip_addr, port}", ctx));
      for (const Field& element : elements) {
        YAML::Mark ecu_id_mark;
        OTA_ASSIGN_OR_RETURN(SecondaryEcu secondary, ParseSecondary(element, ctx, &ecu_id_mark));
        info.secondaries.push_back(std::move(secondary));
        secondary_id_fields.push_back(Field{StrCat(element.path, ".ecu_id"), {}, ecu_id_mark});
      }
    } else if (entry.key == "available_ecu_ids") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "a list (write [] for none)");
      OTA_ASSIGN_OR_RETURN(available_elements,
                           internal::SequenceElements(field, "a list of ECU ids", ctx));
      available_field = field;
    }
  }

  if (info.boot_slot_a.empty() != info.boot_slot_b.empty()) {
    const Field& given = slot_fields.front();
    return ctx.Error(given.mark, given.path,
                     "boot_slot_a and boot_slot_b name the two rootfs slots together: set both");
  }

  if (!own_id_field.has_value()) {
    return ctx.Error(root.Mark(), "ecu_id",
                     "required: a file that exists must name this ECU (no file means the "
                     "default \"autoware\")");
  }

  // ECU ids must be unique among this ECU and its direct secondaries.
  std::map<std::string, int> line_of_id;
  line_of_id.emplace(info.ecu_id, own_id_field->mark.line + 1);
  for (size_t i = 0; i < info.secondaries.size(); ++i) {
    const Field& id_field = secondary_id_fields[i];
    auto [previous, inserted] =
        line_of_id.emplace(info.secondaries[i].ecu_id, id_field.mark.line + 1);
    if (!inserted) {
      return ctx.Error(id_field.mark, id_field.path,
                       StrCat("duplicate ECU id ", internal::QuoteForMessage(previous->first),
                              " (already used at line ", previous->second, ")"));
    }
  }

  info.available_ecu_ids = {info.ecu_id};
  if (available_field.has_value()) {
    if (available_elements.empty()) {
      // Upstream reports [ecu_id] for an empty list too; keep that, but say so.
      ctx.Warn(available_field->mark, available_field->path, "empty list, using [ecu_id] instead");
    } else {
      info.available_ecu_ids.clear();
      std::map<std::string, int> line_of_available;
      for (const Field& element : available_elements) {
        if (element.value.IsNull()) {
          return ctx.Error(element.mark, element.path, "expected an ECU id, got null");
        }
        OTA_ASSIGN_OR_RETURN(std::string id, internal::ReadEcuId(element, ctx));
        auto [previous, inserted] = line_of_available.emplace(id, element.mark.line + 1);
        if (!inserted) {
          // Upstream keeps the first of each (dict.fromkeys); say so.
          ctx.Warn(element.mark, element.path,
                   StrCat("duplicate ECU id ", internal::QuoteForMessage(id),
                          " (already listed at line ", previous->second, "), ignored"));
          continue;
        }
        info.available_ecu_ids.push_back(std::move(id));
      }
      if (line_of_available.count(info.ecu_id) == 0) {
        ctx.Warn(available_field->mark, available_field->path,
                 StrCat("does not include this ECU's own ecu_id ",
                        internal::QuoteForMessage(info.ecu_id)));
      }
    }
  }
  return info;
}

}  // namespace

absl::Status CheckEcuId(std::string_view id) {
  if (id.size() > kMaxEcuIdBytes) {
    return absl::InvalidArgumentError(StrCat("ECU id longer than ", kMaxEcuIdBytes, " bytes"));
  }
  if (!ota::IsValidUtf8(id)) return absl::InvalidArgumentError("ECU id is not valid UTF-8");
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          StrCat("ECU id contains a control character: ", internal::QuoteForMessage(id)));
    }
  }
  if (!id.empty() && (id.front() == ' ' || id.back() == ' ')) {
    return absl::InvalidArgumentError(
        StrCat("ECU id has leading or trailing spaces: ", internal::QuoteForMessage(id)));
  }
  return absl::OkStatus();
}

bool IsKnownBootloader(std::string_view bootloader) {
  return std::find(std::begin(kBootloaders), std::end(kBootloaders), bootloader) !=
         std::end(kBootloaders);
}

absl::StatusOr<EcuInfo> ParseEcuInfo(std::string_view yaml_text, std::string_view file_name) {
  ParseContext ctx(file_name, nullptr);
  return internal::CatchYamlExceptions<EcuInfo>(
      ctx, [&] { return ParseEcuInfoDocument(yaml_text, file_name); });
}

absl::StatusOr<EcuInfo> LoadEcuInfoFile(const std::filesystem::path& file) {
  OTA_ASSIGN_OR_RETURN(std::string text, internal::ReadConfigFile(file));
  return ParseEcuInfo(text, file.string());
}

absl::StatusOr<EcuInfo> LoadEcuInfo(const std::filesystem::path& dir) {
  OTA_ASSIGN_OR_RETURN(std::optional<internal::FoundFile> found,
                       internal::FindConfigFile(dir, kEcuInfoFileName, kEcuInfoAltFileName));
  if (!found.has_value()) {
    return absl::NotFoundError(StrCat((dir / kEcuInfoFileName).string(), ": no such file (nor ",
                                      (dir / kEcuInfoAltFileName).string(), ")"));
  }
  log::Info("config: reading ecu_info", {{"file", found->path.string()}});
  OTA_ASSIGN_OR_RETURN(EcuInfo info, LoadEcuInfoFile(found->path));
  if (!found->warning.empty()) info.warnings.insert(info.warnings.begin(), found->warning);
  return info;
}

}  // namespace ota::config
