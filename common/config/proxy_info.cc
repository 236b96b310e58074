#include "common/config/proxy_info.h"

#include <limits>
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

absl::Status NullNotAllowed(const Field& field, const ParseContext& ctx, std::string_view what) {
  return ctx.Error(field.mark, field.path,
                   StrCat("expected ", what,
                          ", got null (an empty value; leave the key out for "
                          "the default)"));
}

absl::StatusOr<ProxyInfo> ParseProxyInfoDocument(std::string_view yaml_text,
                                                 std::string_view file_name) {
  ProxyInfo info;
  info.source = std::filesystem::path(file_name);
  ParseContext ctx(file_name, &info.warnings);
  OTA_ASSIGN_OR_RETURN(YAML::Node root, internal::LoadRootMapping(yaml_text, ctx));
  if (root.IsNull()) {
    return ctx.Error(YAML::Mark::null_mark(), "",
                     "no settings (an empty file or only comments); delete the file for the "
                     "defaults");
  }
  // A file that does not enable the local otaproxy has none (upstream's field default).
  info.enable_local_ota_proxy = false;

  OTA_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                       internal::MappingEntries(Field{"", root, root.Mark()}, ctx));
  std::optional<bool> enable_local;
  std::optional<bool> deprecated_enable;
  std::optional<Field> deprecated_field;
  std::optional<bool> gateway;
  for (const Entry& entry : entries) {
    const Field& field = entry.field;
    const std::string& key = entry.key;
    if (key == "upper_ota_proxy") {
      if (field.value.IsNull()) continue;  // Optional upstream: none
      if (!field.value.IsScalar()) {
        return ctx.Error(field.mark, field.path, "expected an http://host:port URL");
      }
      OTA_ASSIGN_OR_RETURN(std::string url, internal::ReadString(field, ctx, true));
      bool path_dropped = false;
      absl::StatusOr<std::string> normalized = NormalizeProxyUrl(url, &path_dropped);
      if (!normalized.ok()) {
        return ctx.Error(field.mark, field.path,
                         StrCat("invalid URL ", internal::QuoteForMessage(url), ": ",
                                normalized.status().message()));
      }
      if (path_dropped) {
        ctx.Warn(field.mark, field.path, "the path, query or fragment of a proxy URL is ignored");
      }
      info.upper_ota_proxy = *std::move(normalized);
    } else if (key == "logging_server" || key == "logging_server_grpc") {
      // Null means "off" here (upstream's None), not "the default".
      OTA_ASSIGN_OR_RETURN(std::optional<std::string> url, ReadLoggingServerUrl(field, ctx));
      (key == "logging_server" ? info.logging_server : info.logging_server_grpc) = std::move(url);
    } else if (key == "external_nfs_cache_mnt_point") {
      if (field.value.IsNull()) continue;  // Optional upstream
      OTA_ASSIGN_OR_RETURN(std::string path, internal::ReadString(field, ctx, true));
      info.external_nfs_cache_mnt_point = std::move(path);
    } else if (key == "gateway") {
      // Removed upstream: any value loads there and is ignored. Ours keeps a boolean for
      // otaproxy, and ignores anything else with a warning.
      if (field.value.IsNull()) continue;
      absl::StatusOr<bool> value = internal::ReadBool(field, ctx);
      if (value.ok()) {
        gateway = *value;
      } else {
        ctx.Warn(field.mark, field.path, "not true or false; ignored (the key is deprecated)");
      }
    } else if (key == "enable_ota_proxy") {
      deprecated_field = field;  // read below, only when enable_local_ota_proxy is absent
    } else if (key == "enable_local_ota_proxy" || key == "enable_local_ota_proxy_cache") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "true or false");
      OTA_ASSIGN_OR_RETURN(bool value, internal::ReadBool(field, ctx));
      if (key == "enable_local_ota_proxy") {
        enable_local = value;
      } else {
        info.enable_local_ota_proxy_cache = value;
      }
    } else if (key == "local_ota_proxy_listen_addr") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "an IP address");
      OTA_ASSIGN_OR_RETURN(info.local_ota_proxy_listen_addr, internal::ReadHost(field, ctx));
    } else if (key == "local_ota_proxy_listen_port") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "an integer 1-65535");
      OTA_ASSIGN_OR_RETURN(info.local_ota_proxy_listen_port, internal::ReadPort(field, ctx));
    } else if (key == "format_version") {
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "an integer");
      OTA_ASSIGN_OR_RETURN(int64_t version,
                           internal::ReadInt(field, std::numeric_limits<int32_t>::min(),
                                             std::numeric_limits<int32_t>::max(), ctx));
      info.format_version = static_cast<int>(version);
    } else {
      ctx.Warn(field.mark, field.path, "unknown key, ignored");
    }
  }
  if (deprecated_field.has_value()) {
    if (enable_local.has_value()) {
      // Upstream's AliasChoices takes the first name present and never looks at the other.
      ctx.Warn(deprecated_field->mark, deprecated_field->path,
               "deprecated, use enable_local_ota_proxy; enable_local_ota_proxy is set too and "
               "wins, this one is ignored");
    } else {
      const Field& field = *deprecated_field;
      if (field.value.IsNull()) return NullNotAllowed(field, ctx, "true or false");
      OTA_ASSIGN_OR_RETURN(deprecated_enable, internal::ReadBool(field, ctx));
      ctx.Warn(field.mark, field.path, "deprecated, use enable_local_ota_proxy");
    }
  }
  // Upstream's alias order: the new name first.
  info.enable_local_ota_proxy = enable_local.value_or(deprecated_enable.value_or(false));
  // The gateway is the ECU without an upper otaproxy (upstream's rule) unless a file says else.
  info.gateway = gateway.value_or(info.upper_ota_proxy.empty());
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
    log::Info("config: no proxy_info file, using the defaults (local otaproxy on)",
              {{"dir", dir.string()}});
    return ProxyInfo{};
  }
  log::Info("config: reading proxy_info", {{"file", found->path.string()}});
  OTA_ASSIGN_OR_RETURN(ProxyInfo info, LoadProxyInfoFile(found->path));
  if (!found->warning.empty()) info.warnings.insert(info.warnings.begin(), found->warning);
  return info;
}

}  // namespace ota::config
