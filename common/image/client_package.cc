#include "common/image/client_package.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "common/util/errors.h"
#include "common/util/json.h"
#include "common/util/strings.h"

namespace ota::image {
namespace {

using Json = nlohmann::json;

bool IsLowerHex(std::string_view s) {
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Printable ASCII only: these strings name files and appear in log lines and Status.
bool IsPrintableAscii(std::string_view s) {
  for (const char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

absl::StatusOr<std::string> StringField(const Json& obj, std::string_view key,
                                        const std::string& where) {
  const auto it = obj.find(std::string(key));
  if (it == obj.end()) {
    return absl::InvalidArgumentError(StrCat(where, ": missing \"", key, "\""));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(StrCat(where, ": \"", key, "\" is not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<ClientPackage> ParsePackage(const Json& entry, const std::string& where) {
  if (!entry.is_object()) return absl::InvalidArgumentError(StrCat(where, ": not an object"));
  ClientPackage package;
  OTA_ASSIGN_OR_RETURN(package.filename, StringField(entry, "filename", where));
  OTA_ASSIGN_OR_RETURN(package.version, StringField(entry, "version", where));
  OTA_ASSIGN_OR_RETURN(package.type, StringField(entry, "type", where));
  OTA_ASSIGN_OR_RETURN(package.architecture, StringField(entry, "architecture", where));
  OTA_ASSIGN_OR_RETURN(const std::string checksum, StringField(entry, "checksum", where));

  if (package.filename.empty() || package.filename == "." || package.filename == ".." ||
      package.filename.find('/') != std::string::npos || !IsPrintableAscii(package.filename) ||
      package.filename.size() > 255) {
    return absl::InvalidArgumentError(
        StrCat(where,
               ": filename must be one plain file name (no '/', '.', '..' or control "
               "characters, at most 255 bytes)"));
  }
  if (package.version.empty() || package.version.size() > 128 ||
      package.version.find('/') != std::string::npos || !IsPrintableAscii(package.version)) {
    return absl::InvalidArgumentError(
        StrCat(where, ": version must be 1..128 printable ASCII characters without '/'"));
  }
  if (!IsPrintableAscii(package.type) || !IsPrintableAscii(package.architecture)) {
    return absl::InvalidArgumentError(
        StrCat(where, ": type and architecture must be printable ASCII"));
  }

  const auto size = entry.find("size");
  if (size == entry.end()) return absl::InvalidArgumentError(StrCat(where, ": missing \"size\""));
  if (size->is_number_unsigned()) {
    package.size = size->get<uint64_t>();
  } else if (size->is_number_integer() && size->get<int64_t>() >= 0) {
    package.size = static_cast<uint64_t>(size->get<int64_t>());
  } else {
    return absl::InvalidArgumentError(StrCat(where, ": \"size\" is not a non-negative integer"));
  }

  const size_t colon = checksum.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == checksum.size()) {
    return absl::InvalidArgumentError(
        StrCat(where, ": checksum \"", checksum.substr(0, 80), "\" is not <algorithm>:<hex>"));
  }
  package.checksum_algorithm = checksum.substr(0, colon);
  package.checksum_hex = absl::AsciiStrToLower(checksum.substr(colon + 1));
  if (!IsPrintableAscii(package.checksum_algorithm) || !IsLowerHex(package.checksum_hex)) {
    return absl::InvalidArgumentError(
        StrCat(where, ": checksum \"", checksum.substr(0, 80), "\" is not <algorithm>:<hex>"));
  }
  return package;
}

}  // namespace

absl::StatusOr<ClientReleaseManifest> ParseClientReleaseManifest(std::string_view json) {
  constexpr std::string_view kWhat = "otaclient release manifest";
  if (json.size() > kMaxClientManifestBytes) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": ", json.size(), " bytes, more than the ",
                                             kMaxClientManifestBytes, " allowed"));
  }
  const Json doc = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError(StrCat(kWhat, ": not valid JSON"));
  if (!doc.is_object()) return absl::InvalidArgumentError(StrCat(kWhat, ": not a JSON object"));
  ClientReleaseManifest manifest;
  OTA_ASSIGN_OR_RETURN(manifest.schema_version,
                       StringField(doc, "schema_version", std::string(kWhat)));
  if (manifest.schema_version != "1") {
    return absl::InvalidArgumentError(StrCat(kWhat, ": schema_version \"",
                                             manifest.schema_version.substr(0, 20),
                                             "\" unknown (expected \"1\")"));
  }
  if (const auto date = doc.find("date"); date != doc.end() && date->is_string()) {
    manifest.date = date->get<std::string>();
  }
  const auto packages = doc.find("packages");
  if (packages == doc.end() || !packages->is_array()) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": \"packages\" is missing or not a list"));
  }
  if (packages->size() > kMaxPackages) {
    return absl::InvalidArgumentError(StrCat(
        kWhat, ": ", packages->size(), " packages, more than the ", kMaxPackages, " allowed"));
  }
  for (size_t i = 0; i < packages->size(); ++i) {
    OTA_ASSIGN_OR_RETURN(ClientPackage package,
                         ParsePackage((*packages)[i], StrCat(kWhat, ": packages[", i, "]")));
    manifest.packages.push_back(std::move(package));
  }
  return manifest;
}

std::string_view PackageArchitectureOf(std::string_view machine) {
  if (machine == "x86_64" || machine == "amd64") return "x86_64";
  if (machine == "aarch64" || machine == "arm64") return "arm64";
  return "";
}

absl::StatusOr<ClientPackage> SelectClientPackage(const ClientReleaseManifest& manifest,
                                                  std::string_view machine) {
  const std::string_view arch = PackageArchitectureOf(machine);
  if (arch.empty()) {
    return absl::FailedPreconditionError(
        StrCat("this CPU (", machine, ") has no otaclient package architecture"));
  }
  if (manifest.packages.empty()) {
    return absl::FailedPreconditionError("the image's otaclient release lists no package");
  }
  std::vector<std::string> ours_for_other_cpus;
  std::vector<std::string> other_types;
  for (const ClientPackage& package : manifest.packages) {
    if (package.type != kCppPackageType) {
      other_types.push_back(StrCat(package.type, " ", package.architecture));
      continue;
    }
    if (PackageArchitectureOf(package.architecture) != arch) {
      ours_for_other_cpus.push_back(package.architecture);
      continue;
    }
    if (package.checksum_algorithm != "sha256" || package.checksum_hex.size() != 64) {
      return absl::FailedPreconditionError(StrCat("the otaclient package ", package.filename,
                                                  " has a ", package.checksum_algorithm,
                                                  " checksum; only sha256 is accepted"));
    }
    return package;
  }
  if (!ours_for_other_cpus.empty()) {
    return absl::FailedPreconditionError(
        StrCat("the image has no ", kCppPackageType, " package for this CPU (", arch,
               "), only for: ", absl::StrJoin(ours_for_other_cpus, ", ")));
  }
  return absl::FailedPreconditionError(StrCat("the image has no ", kCppPackageType,
                                              " package (this client cannot run the "
                                              "packages it lists: ",
                                              absl::StrJoin(other_types, ", "), ")"));
}

crypto::Sha256Digest PackageDigest(const ClientPackage& package) {
  crypto::Sha256Digest digest{};
  crypto::FromHex(package.checksum_hex, &digest);
  return digest;
}

std::string ClientReleaseManifestJson(const ClientPackage& package, std::string_view date) {
  std::string out = "{\"schema_version\":\"1\",\"date\":";
  AppendJsonString(&out, date);
  out += ",\"packages\":[{\"filename\":";
  AppendJsonString(&out, package.filename);
  out += ",\"version\":";
  AppendJsonString(&out, package.version);
  out += ",\"type\":";
  AppendJsonString(&out, package.type);
  out += ",\"architecture\":";
  AppendJsonString(&out, package.architecture);
  out += StrCat(",\"size\":", package.size, ",\"checksum\":");
  AppendJsonString(&out, StrCat(package.checksum_algorithm, ":", package.checksum_hex));
  out += "}]}\n";
  return out;
}

absl::StatusOr<std::string> AddToClientReleaseManifest(std::string_view existing,
                                                       const ClientPackage& package) {
  OTA_RETURN_IF_ERROR(ParseClientReleaseManifest(existing).status());
  Json doc = Json::parse(existing.begin(), existing.end(), nullptr, /*allow_exceptions=*/false);
  const Json ours = Json::parse(ClientReleaseManifestJson(package, ""), nullptr,
                                /*allow_exceptions=*/false)["packages"][0];
  const std::string_view arch = PackageArchitectureOf(package.architecture);
  Json kept = Json::array();
  // Parsed above: "packages" is a list of objects with string type and architecture.
  for (const Json& entry : doc["packages"]) {
    const bool same = entry["type"].get<std::string>() == package.type &&
                      PackageArchitectureOf(entry["architecture"].get<std::string>()) == arch;
    if (!same) kept.push_back(entry);
  }
  kept.push_back(ours);
  doc["packages"] = std::move(kept);
  std::string out = doc.dump() + "\n";
  // What is written must read back (e.g. not one package too many).
  OTA_RETURN_IF_ERROR(ParseClientReleaseManifest(out).status());
  return out;
}

}  // namespace ota::image
