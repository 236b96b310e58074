#include "tools/otactl/update_request.h"

#include <optional>
#include <set>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace ota::otactl {
namespace {

absl::Status CheckCookiesJson(std::string_view cookies) {
  if (cookies.empty()) return absl::OkStatus();
  const nlohmann::json parsed = nlohmann::json::parse(cookies, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError("cookies are not valid JSON");
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError("cookies must be a JSON object of name: value strings");
  }
  for (const auto& [name, value] : parsed.items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(StrCat("cookie \"", name, "\" must have a string value"));
    }
  }
  return absl::OkStatus();
}

// Splits "--opt=value" into name and value; "--opt" alone gives no value.
std::pair<std::string, std::optional<std::string>> SplitOption(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (arg.starts_with("--") && eq != std::string::npos) {
    return {arg.substr(0, eq), arg.substr(eq + 1)};
  }
  return {arg, std::nullopt};
}

// Cookies travel in an HTTP header: printable ASCII only (this also keeps the JSON dump valid).
bool IsCookieText(const std::string& text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return !text.empty();
}

std::string YamlWhere(std::string_view file_name, const YAML::Mark& mark) {
  if (mark.line < 0) return std::string(file_name);
  return StrCat(file_name, ":", mark.line + 1);
}

absl::StatusOr<std::string> YamlString(const YAML::Node& node, std::string_view field,
                                       std::string_view where) {
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(StrCat(where, ": field \"", field, "\" must be a string"));
  }
  return node.Scalar();
}

absl::Status CheckNoDuplicateEcus(const OtaClientV2::UpdateRequest& request) {
  std::set<std::string> ids;
  for (const auto& entry : request.ecu()) {
    if (!ids.insert(entry.ecu_id()).second) {
      return absl::InvalidArgumentError(
          StrCat("ECU ", entry.ecu_id(), " is listed twice; give each ECU once"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateEntry(const OtaClientV2::UpdateRequestEcu& entry, std::string_view where) {
  if (entry.ecu_id().empty()) {
    return absl::InvalidArgumentError(StrCat(where, ": ecu_id is empty"));
  }
  const std::string ecu = StrCat(where, ": ECU ", entry.ecu_id());
  if (entry.version().empty()) {
    return absl::InvalidArgumentError(StrCat(ecu, ": missing version (--version)"));
  }
  if (entry.url().empty()) {
    return absl::InvalidArgumentError(StrCat(ecu, ": missing url (--url)"));
  }
  if (!entry.url().starts_with("http://") && !entry.url().starts_with("https://")) {
    return absl::InvalidArgumentError(
        StrCat(ecu, ": url \"", entry.url(), "\" must start with http:// or https://"));
  }
  if (absl::Status cookies = CheckCookiesJson(entry.cookies()); !cookies.ok()) {
    return absl::InvalidArgumentError(StrCat(ecu, ": ", cookies.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<OtaClientV2::UpdateRequest> UpdateRequestFromArgs(
    const std::vector<std::string>& args) {
  OtaClientV2::UpdateRequest request;
  OtaClientV2::UpdateRequestEcu* current = nullptr;
  std::vector<std::string> entry_where;
  std::set<std::string> seen_in_entry;
  for (size_t i = 0; i < args.size(); ++i) {
    auto [name, inline_value] = SplitOption(args[i]);
    static const std::set<std::string> kKnown = {
        "--ecu", "--version", "--url", "--cookies", "--release-name", "--release-id", "--image-id"};
    if (!kKnown.contains(name)) {
      return absl::InvalidArgumentError(StrCat("unknown update option \"", args[i], "\""));
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(StrCat(name, " needs a value"));
    }
    if (name == "--ecu") {
      current = request.add_ecu();
      current->set_ecu_id(value);
      entry_where.push_back(StrCat("--ecu #", request.ecu_size()));
      seen_in_entry.clear();
      continue;
    }
    if (current == nullptr) {
      return absl::InvalidArgumentError(
          StrCat(name, " before any --ecu: every entry starts with --ecu ID"));
    }
    if (!seen_in_entry.insert(name).second) {
      return absl::InvalidArgumentError(StrCat(name, " given twice for ECU ", current->ecu_id(),
                                               " (start the next entry with --ecu)"));
    }
    if (name == "--version") {
      current->set_version(value);
    } else if (name == "--url") {
      current->set_url(value);
    } else if (name == "--cookies") {
      if (value.starts_with("@")) {
        OTA_ASSIGN_OR_RETURN(std::string content, fs::ReadFile(value.substr(1)));
        while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) {
          content.pop_back();
        }
        value = std::move(content);
      }
      current->set_cookies(value);
    } else if (name == "--release-name") {
      current->set_release_name(value);
    } else if (name == "--release-id") {
      current->set_release_id(value);
    } else if (name == "--image-id") {
      current->set_image_id(value);
    }
  }
  if (request.ecu_size() == 0) {
    return absl::InvalidArgumentError("no ECU given: use --ecu ID --version V --url U, or --from");
  }
  for (int i = 0; i < request.ecu_size(); ++i) {
    OTA_RETURN_IF_ERROR(ValidateEntry(request.ecu(i), entry_where[i]));
  }
  OTA_RETURN_IF_ERROR(CheckNoDuplicateEcus(request));
  return request;
}

absl::StatusOr<OtaClientV2::UpdateRequest> UpdateRequestFromYaml(std::string_view text,
                                                                 std::string_view file_name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        StrCat(YamlWhere(file_name, e.mark), ": not valid YAML: ", e.msg));
  }
  if (!root.IsSequence() || root.size() == 0) {
    return absl::InvalidArgumentError(StrCat(
        file_name, ": expected a non-empty list of {ecu_id, version, url, cookies} entries"));
  }
  static const std::set<std::string> kFields = {"ecu_id",       "version",    "url",     "cookies",
                                                "release_name", "release_id", "image_id"};
  OtaClientV2::UpdateRequest request;
  for (size_t i = 0; i < root.size(); ++i) {
    const YAML::Node item = root[i];
    const std::string where = StrCat(YamlWhere(file_name, item.Mark()), ": entry ", i + 1);
    if (!item.IsMap()) {
      return absl::InvalidArgumentError(StrCat(where, ": expected a mapping"));
    }
    OtaClientV2::UpdateRequestEcu* entry = request.add_ecu();
    std::set<std::string> seen_keys;
    for (const auto& kv : item) {
      if (!kv.first.IsScalar() || !kFields.contains(kv.first.Scalar())) {
        return absl::InvalidArgumentError(StrCat(
            YamlWhere(file_name, kv.first.Mark()), ": unknown field \"",
            kv.first.IsScalar() ? kv.first.Scalar() : "?",
            "\" (known: ecu_id, version, url, cookies, release_name, release_id, image_id)"));
      }
      const std::string key = kv.first.Scalar();
      const std::string field_where = YamlWhere(file_name, kv.first.Mark());
      if (!seen_keys.insert(key).second) {
        return absl::InvalidArgumentError(
            StrCat(field_where, ": field \"", key, "\" given twice in entry ", i + 1));
      }
      if (key == "cookies" && kv.second.IsMap()) {
        nlohmann::json cookies = nlohmann::json::object();
        for (const auto& cookie : kv.second) {
          if (!cookie.second.IsScalar()) {
            return absl::InvalidArgumentError(
                StrCat(field_where, ": cookie \"", cookie.first.Scalar(), "\" must be a string"));
          }
          if (!IsCookieText(cookie.first.Scalar()) || !IsCookieText(cookie.second.Scalar())) {
            return absl::InvalidArgumentError(
                StrCat(field_where, ": cookie names and values must be printable ASCII"));
          }
          cookies[cookie.first.Scalar()] = cookie.second.Scalar();
        }
        entry->set_cookies(cookies.dump());
        continue;
      }
      if (kv.second.IsNull()) continue;
      OTA_ASSIGN_OR_RETURN(std::string value, YamlString(kv.second, key, field_where));
      if (key == "ecu_id")
        entry->set_ecu_id(value);
      else if (key == "version")
        entry->set_version(value);
      else if (key == "url")
        entry->set_url(value);
      else if (key == "cookies")
        entry->set_cookies(value);
      else if (key == "release_name")
        entry->set_release_name(value);
      else if (key == "release_id")
        entry->set_release_id(value);
      else if (key == "image_id")
        entry->set_image_id(value);
    }
    OTA_RETURN_IF_ERROR(ValidateEntry(*entry, where));
  }
  OTA_RETURN_IF_ERROR(CheckNoDuplicateEcus(request));
  return request;
}

}  // namespace ota::otactl
