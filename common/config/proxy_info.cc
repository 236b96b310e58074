#include "common/config/proxy_info.h"

#include <optional>
#include <string>

#include "common/config/config_files.h"
#include "common/config/host.h"
#include "common/config/yaml_fields.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::config {
namespace {

using internal::Entry;
using internal::Field;
using internal::ParseContext;

// logging_server / logging_server_grpc: an http(s) URL, or null (nullopt: turned off).
absl::StatusOr<std::optional<std::string>> ReadLoggingServerUrl(const Field& field,
                                                                const ParseContext& ctx) {
  if (field.value.IsNull()) return std::nullopt;
  if (!field.value.IsScalar()) {
    return ctx.Error(field.mark, field.path, "expected an http(s) URL or null");
  }
  const std::string url = field.value.Scalar();
  absl::StatusOr<HttpUrl> parsed = ParseHttpUrl(url, "http://10.0.0.1:8083");
  if (!parsed.ok()) {
    return ctx.Error(field.mark, field.path,
                     StrCat("invalid URL ", internal::QuoteForMessage(url), ": ",
                            parsed.status().message(), " (null turns the log upload off)"));
  }
  std::string path = parsed->path;
  while (!path.empty() && path.back() == '/') path.pop_back();
  return StrCat(parsed->Origin(), path);
}

absl::StatusOr<ProxyInfo> ParseProxyInfoDocument(std::string_view yaml_text,
                                                 std::string_view file_name) {
  ProxyInfo info;
  info.source = std::filesystem::path(file_name);
  ParseContext ctx(file_name, &info.warnings);
  OTA_ASSIGN_OR_RETURN(YAML::Node root, internal::LoadRootMapping(yaml_text, ctx));
  if (root.IsNull()) return info;  // empty file: the defaults, as upstream

  OTA_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                       internal::MappingEntries(Field{"", root, root.Mark()}, ctx));
  std::optional<bool> deprecated_enable;
  std::optional<Field> deprecated_field;
  bool has_enable_local = false;
  for (const Entry& entry : entries) {
    const Field& field = entry.field;
    const std::string& key = entry.key;
    if (!(key == "enable_local_ota_proxy" || key == "enable_ota_proxy" ||
          key == "upper_ota_proxy" || key == "gateway" || key == "enable_local_ota_proxy_cache" ||
          key == "local_ota_proxy_listen_addr" || key == "local_ota_proxy_listen_port" ||
          key == "logging_server" || key == "logging_server_grpc")) {
      ctx.Warn(field.mark, field.path, "unknown key, ignored");
      continue;
    }
    // Null means "off" here, not "the default".
    if (key == "logging_server") {
      OTA_ASSIGN_OR_RETURN(info.logging_server, ReadLoggingServerUrl(field, ctx));
      continue;
    }
    if (key == "logging_server_grpc") {
      OTA_ASSIGN_OR_RETURN(info.logging_server_grpc, ReadLoggingServerUrl(field, ctx));
      continue;
    }
    if (field.value.IsNull()) continue;  // "key:" with no value means "use the default"
    if (key == "enable_local_ota_proxy") {
      OTA_ASSIGN_OR_RETURN(info.enable_local_ota_proxy, internal::ReadBool(field, ctx));
      has_enable_local = true;
    } else if (key == "enable_ota_proxy") {
      OTA_ASSIGN_OR_RETURN(deprecated_enable, internal::ReadBool(field, ctx));
      deprecated_field = field;
    } else if (key == "gateway") {
      OTA_ASSIGN_OR_RETURN(info.gateway, internal::ReadBool(field, ctx));
    } else if (key == "enable_local_ota_proxy_cache") {
      OTA_ASSIGN_OR_RETURN(info.enable_local_ota_proxy_cache, internal::ReadBool(field, ctx));
    } else if (key == "local_ota_proxy_listen_addr") {
      OTA_ASSIGN_OR_RETURN(info.local_ota_proxy_listen_addr, internal::ReadHost(field, ctx));
    } else if (key == "local_ota_proxy_listen_port") {
      OTA_ASSIGN_OR_RETURN(info.local_ota_proxy_listen_port, internal::ReadPort(field, ctx));
    } else if (key == "upper_ota_proxy") {
      if (!field.value.IsScalar()) {
        return ctx.Error(field.mark, field.path, "expected an http://host:port URL");
      }
      // An explicitly empty string means "no upper proxy", like an absent key (as upstream).
      if (field.value.Scalar().empty()) continue;
      OTA_ASSIGN_OR_RETURN(std::string url, internal::ReadString(field, ctx));
      absl::StatusOr<std::string> normalized = NormalizeHttpProxyUrl(url);
      if (!normalized.ok()) {
        return ctx.Error(field.mark, field.path,
                         StrCat("invalid URL ", internal::QuoteForMessage(url), ": ",
                                normalized.status().message()));
      }
      info.upper_ota_proxy = *std::move(normalized);
    }
  }
  if (deprecated_enable.has_value()) {
    std::string note = "deprecated, use enable_local_ota_proxy; its value wins";
    if (has_enable_local && info.enable_local_ota_proxy != *deprecated_enable) {
      StrAppend(&note, " over the conflicting enable_local_ota_proxy");
    }
    ctx.Warn(deprecated_field->mark, deprecated_field->path, note);
    info.enable_local_ota_proxy = *deprecated_enable;
  }
  return info;
}

}  // namespace

std::string ProxyInfo::ProxyForOtaClient() const {
  if (enable_local_ota_proxy) {
    // A wildcard listen address is not an address to connect to; the proxy is on this host.
    std::string_view host = local_ota_proxy_listen_addr;
    if (host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    return StrCat("http://", FormatHostPort(host, local_ota_proxy_listen_port));
  }
  return upper_ota_proxy;  // "" = direct
}

absl::StatusOr<ProxyInfo> ParseProxyInfo(std::string_view yaml_text, std::string_view file_name) {
  ParseContext ctx(file_name, nullptr);
  return internal::CatchYamlExceptions<ProxyInfo>(
      ctx, [&] { return ParseProxyInfoDocument(yaml_text, file_name); });
}

absl::StatusOr<ProxyInfo> LoadProxyInfoFile(const std::filesystem::path& file) {
  OTA_ASSIGN_OR_RETURN(std::string text, internal::ReadConfigFile(file));
  return ParseProxyInfo(text, file.string());
}

absl::StatusOr<ProxyInfo> LoadProxyInfo(const std::filesystem::path& dir) {
  OTA_ASSIGN_OR_RETURN(std::optional<internal::FoundFile> found,
                       internal::FindConfigFile(dir, kProxyInfoFileName, kProxyInfoAltFileName));
  if (!found.has_value()) {
    log::Info("config: no proxy_info file, using defaults", {{"dir", dir.string()}});
    return ProxyInfo{};
  }
  OTA_ASSIGN_OR_RETURN(ProxyInfo info, LoadProxyInfoFile(found->path));
  if (!found->warning.empty()) info.warnings.insert(info.warnings.begin(), found->warning);
  return info;
}

}  // namespace ota::config
