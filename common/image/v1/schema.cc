#include "common/image/v1/schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/image/legacy/list_lines.h"  // ValidateImagePath
#include "common/image/legacy/metadata.h"    // Base64UrlDecode
#include "common/image/v1/release_package.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {
namespace {

using Json = nlohmann::json;

absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view what) {
  Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError(StrCat(what, ": not valid JSON"));
  if (!doc.is_object()) return absl::InvalidArgumentError(StrCat(what, ": not a JSON object"));
  return doc;
}

absl::StatusOr<std::string> GetString(const Json& obj, std::string_view key,
                                      std::string_view what) {
  auto it = obj.find(std::string(key));
  if (it == obj.end()) return absl::InvalidArgumentError(StrCat(what, ": missing \"", key, "\""));
  if (!it->is_string()) {
    return absl::InvalidArgumentError(StrCat(what, ": \"", key, "\" is not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::optional<std::string>> GetOptString(const Json& obj, std::string_view key,
                                                        std::string_view what) {
  if (!obj.contains(std::string(key))) return std::optional<std::string>();
  OTA_ASSIGN_OR_RETURN(std::string s, GetString(obj, key, what));
  return std::optional<std::string>(std::move(s));
}

absl::StatusOr<int64_t> AsInt(const Json& v, std::string_view key, std::string_view what) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(StrCat(what, ": \"", key, "\" out of range"));
    }
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return absl::InvalidArgumentError(StrCat(what, ": \"", key, "\" is not an integer"));
}

absl::StatusOr<std::optional<int64_t>> GetOptInt(const Json& obj, std::string_view key,
                                                 std::string_view what) {
  auto it = obj.find(std::string(key));
  if (it == obj.end()) return std::optional<int64_t>();
  OTA_ASSIGN_OR_RETURN(int64_t v, AsInt(*it, key, what));
  return std::optional<int64_t>(v);
}

absl::Status ExpectInt(const Json& obj, std::string_view key, int64_t want, std::string_view what) {
  auto it = obj.find(std::string(key));
  if (it == obj.end()) return absl::InvalidArgumentError(StrCat(what, ": missing \"", key, "\""));
  OTA_ASSIGN_OR_RETURN(int64_t v, AsInt(*it, key, what));
  if (v != want) {
    return absl::InvalidArgumentError(StrCat(what, ": \"", key, "\" is ", v, ", expected ", want));
  }
  return absl::OkStatus();
}

absl::Status ExpectMediaType(const Json& obj, std::initializer_list<std::string_view> allowed,
                             std::string_view what) {
  OTA_ASSIGN_OR_RETURN(std::string mt, GetString(obj, "mediaType", what));
  for (std::string_view a : allowed) {
    if (mt == a) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(StrCat(what, ": unexpected mediaType \"", mt, "\""));
}

// A metadata document: a JSON object with the expected schemaVersion and mediaType.
absl::StatusOr<Json> ParseDocument(std::string_view text, std::string_view what, int64_t version,
                                   std::string_view media_type) {
  OTA_ASSIGN_OR_RETURN(Json doc, ParseJson(text, what));
  OTA_RETURN_IF_ERROR(ExpectInt(doc, "schemaVersion", version, what));
  OTA_RETURN_IF_ERROR(ExpectMediaType(doc, {media_type}, what));
  return doc;
}

absl::StatusOr<std::map<std::string, std::string>> ParseAnnotations(const Json& obj,
                                                                    std::string_view key,
                                                                    std::string_view what) {
  std::map<std::string, std::string> out;
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) {
    return absl::InvalidArgumentError(StrCat(what, ": \"", key, "\" is not an object"));
  }
  for (const auto& [k, v] : it->items()) {
    if (v.is_string()) {
      out[k] = v.get<std::string>();
    } else if (v.is_number_integer()) {
      out[k] = v.is_number_unsigned() ? std::to_string(v.get<uint64_t>())
                                      : std::to_string(v.get<int64_t>());
    }
    // Other value types: ignored (no key this reader uses has them).
  }
  return out;
}

absl::StatusOr<Descriptor> ParseDescriptor(const Json& v, std::string_view what,
                                           std::initializer_list<std::string_view> media_types) {
  if (!v.is_object()) return absl::InvalidArgumentError(StrCat(what, ": not a descriptor object"));
  Descriptor d;
  OTA_ASSIGN_OR_RETURN(d.media_type, GetString(v, "mediaType", what));
  if (media_types.size() > 0) OTA_RETURN_IF_ERROR(ExpectMediaType(v, media_types, what));
  OTA_ASSIGN_OR_RETURN(std::string digest, GetString(v, "digest", what));
  absl::StatusOr<crypto::Sha256Digest> parsed = ParseDigest(digest);
  if (!parsed.ok()) return WithContext(parsed.status(), what);
  d.digest = *parsed;
  auto size_it = v.find("size");
  if (size_it == v.end()) return absl::InvalidArgumentError(StrCat(what, ": missing \"size\""));
  OTA_ASSIGN_OR_RETURN(int64_t size, AsInt(*size_it, "size", what));
  if (size < 0) return absl::InvalidArgumentError(StrCat(what, ": negative \"size\""));
  d.size = static_cast<uint64_t>(size);
  OTA_ASSIGN_OR_RETURN(std::optional<std::string> artifact, GetOptString(v, "artifactType", what));
  d.artifact_type = artifact.value_or("");
  OTA_ASSIGN_OR_RETURN(d.annotations, ParseAnnotations(v, "annotations", what));
  return d;
}

std::optional<uint64_t> LabelUint(const std::map<std::string, std::string>& labels,
                                  std::string_view key) {
  auto it = labels.find(std::string(key));
  if (it == labels.end() || it->second.empty() || it->second.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

bool IsZstdTable(std::string_view media_type) { return media_type.ends_with("+zstd"); }

absl::StatusOr<crypto::Sha256Digest> ParseDigest(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    return absl::InvalidArgumentError(
        StrCat("digest \"", text.substr(0, 80), "\" is not sha256:<hex> (the only algorithm)"));
  }
  std::string_view hex = text.substr(kPrefix.size());
  crypto::Sha256Digest d{};
  if (hex.size() != 64 || !crypto::FromHex(hex, &d) || crypto::ToHex(d) != hex) {
    return absl::InvalidArgumentError(
        StrCat("digest \"", text.substr(0, 80), "\" is not sha256:<64 lowercase hex digits>"));
  }
  return d;
}

std::string FormatDigest(const crypto::Sha256Digest& digest) {
  return StrCat("sha256:", crypto::ToHex(digest));
}

absl::StatusOr<ImageIndex> ParseImageIndex(std::string_view json) {
  constexpr std::string_view kWhat = "index.json";
  OTA_ASSIGN_OR_RETURN(Json doc, ParseDocument(json, kWhat, 2, kMediaIndex));
  ImageIndex index;
  auto ann_it = doc.find("annotations");
  if (ann_it == doc.end() || !ann_it->is_object()) {
    return absl::InvalidArgumentError("index.json: missing \"annotations\" object");
  }
  OTA_ASSIGN_OR_RETURN(auto annotations, ParseAnnotations(doc, "annotations", kWhat));
  auto builder = annotations.find(std::string(kAnnotationBuilderVersion));
  if (builder == annotations.end()) {
    return absl::InvalidArgumentError(
        StrCat("index.json: annotation \"", kAnnotationBuilderVersion, "\" is required"));
  }
  index.builder_version = builder->second;
  auto manifests = doc.find("manifests");
  if (manifests == doc.end() || !manifests->is_array()) {
    return absl::InvalidArgumentError("index.json: missing \"manifests\" array");
  }
  for (size_t i = 0; i < manifests->size(); ++i) {
    const std::string what = StrCat("index.json manifests[", i, "]");
    OTA_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*manifests)[i], what, {}));
    if (d.media_type == kMediaManifest) {
      ImagePayload p;
      auto ecu = d.annotations.find(std::string(kAnnotationEcu));
      if (ecu == d.annotations.end() || ecu->second.empty()) {
        return absl::InvalidArgumentError(
            StrCat(what, ": image manifest without annotation \"", kAnnotationEcu, "\""));
      }
      p.ecu_id = ecu->second;
      auto key = d.annotations.find(std::string(kAnnotationReleaseKey));
      p.release_key = key == d.annotations.end() ? "dev" : key->second;
      if (p.release_key != "dev" && p.release_key != "prd") {
        return absl::InvalidArgumentError(
            StrCat(what, ": release key \"", p.release_key, "\" is neither dev nor prd"));
      }
      for (const ImagePayload& other : index.images) {
        if (other.ecu_id == p.ecu_id && other.release_key == p.release_key) {
          return absl::InvalidArgumentError(StrCat(what, ": a second image for ECU \"", p.ecu_id,
                                                   "\" release key ", p.release_key));
        }
      }
      p.manifest = std::move(d);
      index.images.push_back(std::move(p));
    } else if (d.media_type == kMediaResourceTable || d.media_type == kMediaResourceTableZstd) {
      if (!index.resource_table) index.resource_table = std::move(d);
    } else if (d.media_type == kMediaOtaclientPackage) {
      // The otaclient release package (ClientUpdate; release_package.h): tier4's builder writes
      // one, the first is used (as tier4's selection does).
      if (!index.otaclient_package) index.otaclient_package = std::move(d);
    } else {
      return absl::InvalidArgumentError(StrCat(what, ": unknown mediaType \"", d.media_type, "\""));
    }
  }
  if (!index.resource_table) {
    return absl::InvalidArgumentError("index.json: no resource table in \"manifests\"");
  }
  return index;
}

absl::StatusOr<const ImagePayload*> SelectPayload(const ImageIndex& index, std::string_view ecu_id,
                                                  std::string_view release_key) {
  for (const ImagePayload& p : index.images) {
    if (p.ecu_id == ecu_id && p.release_key == release_key) return &p;
  }
  std::string offered;
  for (const ImagePayload& p : index.images) {
    StrAppend(&offered, offered.empty() ? "" : ", ", p.ecu_id, "/", p.release_key);
  }
  return absl::NotFoundError(StrCat("index.json has no image for ECU \"", ecu_id,
                                    "\" with release key ", release_key,
                                    " (it has: ", offered.empty() ? "none" : offered, ")"));
}

absl::StatusOr<JwsHeader> ParseJwsHeader(std::string_view json) {
  constexpr std::string_view kWhat = "index.jwt header";
  OTA_ASSIGN_OR_RETURN(Json doc, ParseJson(json, kWhat));
  JwsHeader h;
  OTA_ASSIGN_OR_RETURN(h.alg, GetString(doc, "alg", kWhat));
  if (h.alg != "ES256") {
    return absl::InvalidArgumentError(
        StrCat(kWhat, ": alg \"", h.alg.substr(0, 40), "\" (only ES256 is accepted)"));
  }
  OTA_ASSIGN_OR_RETURN(h.typ, GetOptString(doc, "typ", kWhat));
  if (h.typ && !EqualsIgnoreCase(*h.typ, "JWT")) {
    return absl::InvalidArgumentError(
        StrCat(kWhat, ": typ \"", h.typ->substr(0, 40), "\" (expected JWT)"));
  }
  if (doc.contains("crit")) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": \"crit\" extensions are not understood"));
  }
  auto x5c = doc.find("x5c");
  if (x5c == doc.end() || !x5c->is_array() || x5c->empty()) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": missing or empty \"x5c\" array"));
  }
  for (const Json& entry : *x5c) {
    if (!entry.is_string()) {
      return absl::InvalidArgumentError(StrCat(kWhat, ": an x5c entry is not a string"));
    }
    h.x5c.push_back(entry.get<std::string>());
  }
  return h;
}

absl::StatusOr<JwsClaims> ParseJwsClaims(std::string_view json) {
  constexpr std::string_view kWhat = "index.jwt claims";
  OTA_ASSIGN_OR_RETURN(Json doc, ParseJson(json, kWhat));
  JwsClaims c;
  OTA_ASSIGN_OR_RETURN(c.iat, GetOptInt(doc, "iat", kWhat));
  OTA_ASSIGN_OR_RETURN(c.exp, GetOptInt(doc, "exp", kWhat));
  OTA_ASSIGN_OR_RETURN(c.nbf, GetOptInt(doc, "nbf", kWhat));
  auto index = doc.find("image_index");
  if (index == doc.end()) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": missing \"image_index\""));
  }
  OTA_ASSIGN_OR_RETURN(c.image_index, ParseDescriptor(*index, StrCat(kWhat, " image_index"), {}));
  return c;
}

absl::StatusOr<IndexJwt> ParseIndexJwt(std::string_view text) {
  constexpr size_t kMaxJwt = 1 << 20;
  if (text.size() > kMaxJwt) {
    return absl::InvalidArgumentError(StrCat("index.jwt: ", text.size(), " bytes (max 1 MiB)"));
  }
  // Tolerate one trailing newline (an editor's), nothing else.
  if (text.ends_with("\n")) text.remove_suffix(1);
  const size_t dot1 = text.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : text.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || text.find('.', dot2 + 1) != std::string_view::npos) {
    return absl::InvalidArgumentError("index.jwt: not three '.'-separated segments");
  }
  IndexJwt jwt;
  absl::StatusOr<std::string> header = Base64UrlDecode(text.substr(0, dot1));
  if (!header.ok()) return WithContext(header.status(), "index.jwt header segment");
  absl::StatusOr<std::string> claims = Base64UrlDecode(text.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims.ok()) return WithContext(claims.status(), "index.jwt claims segment");
  absl::StatusOr<std::string> signature = Base64UrlDecode(text.substr(dot2 + 1));
  if (!signature.ok()) return WithContext(signature.status(), "index.jwt signature segment");
  OTA_ASSIGN_OR_RETURN(jwt.header, ParseJwsHeader(*header));
  OTA_ASSIGN_OR_RETURN(jwt.claims, ParseJwsClaims(*claims));
  jwt.signing_input = std::string(text.substr(0, dot2));
  jwt.signature = std::move(*signature);
  return jwt;
}

absl::Status CheckJwsTimes(const JwsClaims& claims, int64_t now) {
  if (claims.iat && *claims.iat > now) {
    return absl::PermissionDeniedError(StrCat("index.jwt: issued in the future (iat ", *claims.iat,
                                              ", now ", now, "): is this ECU's clock behind?"));
  }
  if (claims.exp && *claims.exp <= now) {
    return absl::PermissionDeniedError(StrCat("index.jwt: expired (exp ", *claims.exp, ")"));
  }
  if (claims.nbf && *claims.nbf > now) {
    return absl::PermissionDeniedError(StrCat("index.jwt: not valid before ", *claims.nbf));
  }
  return absl::OkStatus();
}

absl::StatusOr<ImageManifest> ParseImageManifest(std::string_view json) {
  constexpr std::string_view kWhat = "image manifest";
  OTA_ASSIGN_OR_RETURN(Json doc, ParseDocument(json, kWhat, 2, kMediaManifest));
  ImageManifest m;
  auto config = doc.find("config");
  if (config == doc.end()) return absl::InvalidArgumentError("image manifest: missing \"config\"");
  OTA_ASSIGN_OR_RETURN(m.config,
                       ParseDescriptor(*config, "image manifest config", {kMediaImageConfig}));
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array() || layers->size() != 1) {
    return absl::InvalidArgumentError(
        "image manifest: \"layers\" must hold exactly one descriptor (the file table)");
  }
  OTA_ASSIGN_OR_RETURN(m.file_table, ParseDescriptor((*layers)[0], "image manifest layers[0]",
                                                     {kMediaFileTable, kMediaFileTableZstd}));
  OTA_ASSIGN_OR_RETURN(auto annotations, ParseAnnotations(doc, "annotations", kWhat));
  auto ecu = annotations.find(std::string(kAnnotationEcu));
  if (ecu != annotations.end()) m.ecu_id = ecu->second;
  auto arch = annotations.find(std::string(kAnnotationArchitecture));
  if (arch != annotations.end()) m.architecture = arch->second;
  return m;
}

absl::StatusOr<ImageConfig> ParseImageConfig(std::string_view json) {
  constexpr std::string_view kWhat = "image config";
  OTA_ASSIGN_OR_RETURN(Json doc, ParseDocument(json, kWhat, 1, kMediaImageConfig));
  ImageConfig c;
  OTA_ASSIGN_OR_RETURN(std::optional<std::string> alg,
                       GetOptString(doc, "resource_digest_alg", kWhat));
  if (alg && *alg != "sha256") {
    return absl::InvalidArgumentError(
        StrCat(kWhat, ": resource_digest_alg \"", alg->substr(0, 40), "\" (only sha256)"));
  }
  OTA_ASSIGN_OR_RETURN(c.architecture, GetString(doc, "architecture", kWhat));
  auto sys = doc.find("sys_config");
  if (sys != doc.end() && !sys->is_null()) {
    OTA_ASSIGN_OR_RETURN(c.sys_config, ParseDescriptor(*sys, "image config sys_config",
                                                       {kMediaSysConfig, kMediaSysConfigOld}));
  }
  auto table = doc.find("file_table");
  if (table == doc.end()) return absl::InvalidArgumentError("image config: missing \"file_table\"");
  OTA_ASSIGN_OR_RETURN(c.file_table, ParseDescriptor(*table, "image config file_table",
                                                     {kMediaFileTable, kMediaFileTableZstd}));
  auto labels_it = doc.find("labels");
  if (labels_it == doc.end() || !labels_it->is_object()) {
    return absl::InvalidArgumentError("image config: missing \"labels\" object");
  }
  OTA_ASSIGN_OR_RETURN(auto labels, ParseAnnotations(doc, "labels", kWhat));
  c.rootfs_size = LabelUint(labels, "vnd.tier4.image.rootfs.size");
  c.regular_files_count = LabelUint(labels, "vnd.tier4.image.rootfs.regular-files-count");
  return c;
}

absl::StatusOr<SysConfig> ParseSysConfig(std::string_view yaml) {
  SysConfig out;
  try {
    YAML::Node doc = YAML::Load(std::string(yaml));
    if (!doc.IsMap()) return absl::InvalidArgumentError("sys_config: not a YAML mapping");
    YAML::Node hostname = doc["hostname"];
    if (!hostname || !hostname.IsScalar() || (hostname.Tag() != "!" && hostname.Tag() != "?")) {
      return absl::InvalidArgumentError("sys_config: missing \"hostname\" string");
    }
    out.hostname = hostname.as<std::string>();
    if (hostname.Tag() == "?") {
      // A plain scalar: tier4's parser wants a string, so a bare number is refused.
      const std::string& s = out.hostname;
      const bool numeric = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+';
      }) && std::any_of(s.begin(), s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      });
      if (numeric || s == "null" || s == "~" || s == "true" || s == "false") {
        return absl::InvalidArgumentError(
            StrCat("sys_config: \"hostname\" is not a string (", s.substr(0, 40), "); quote it"));
      }
    }
    YAML::Node persist = doc["persist_files"];
    if (persist && !persist.IsNull()) {
      if (!persist.IsSequence()) {
        return absl::InvalidArgumentError("sys_config: \"persist_files\" is not a list");
      }
      for (size_t i = 0; i < persist.size(); ++i) {
        if (!persist[i].IsScalar()) {
          return absl::InvalidArgumentError(
              StrCat("sys_config: persist_files[", i, "] is not a string"));
        }
        std::string path = persist[i].as<std::string>();
        if (absl::Status st = ValidateImagePath(path); !st.ok()) {
          return WithContext(st, StrCat("sys_config: persist_files[", i, "]"));
        }
        out.persist_files.push_back(std::move(path));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("sys_config: ", e.what()));
  }
  return out;
}

// The otaclient release package (release_package.h): here, for this file's JSON rules.

std::string_view LayerMediaTypeOf(std::string_view type) {
  if (type == "squashfs") return kMediaOtaclientSquashfs;
  if (type == kCppPackageType) return kMediaOtaclientCpp;
  return "";
}

absl::StatusOr<ReleasePackageManifest> ParseReleasePackageManifest(std::string_view json) {
  constexpr std::string_view kWhat = "otaclient package manifest";
  if (json.size() > kMaxClientManifestBytes) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": ", json.size(), " bytes, more than the ",
                                             kMaxClientManifestBytes, " allowed"));
  }
  OTA_ASSIGN_OR_RETURN(Json doc, ParseDocument(json, kWhat, 2, kMediaManifest));
  OTA_ASSIGN_OR_RETURN(std::optional<std::string> artifact,
                       GetOptString(doc, "artifactType", kWhat));
  if (artifact && *artifact != kArtifactOtaclientPackage) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": artifactType \"", artifact->substr(0, 80),
                                             "\" (expected ", kArtifactOtaclientPackage, ")"));
  }
  ReleasePackageManifest m;
  auto config = doc.find("config");
  if (config == doc.end()) return absl::InvalidArgumentError(StrCat(kWhat, ": missing \"config\""));
  OTA_ASSIGN_OR_RETURN(
      m.config, ParseDescriptor(*config, StrCat(kWhat, " config"), {kMediaOtaclientPackage}));
  if (m.config.size > kMaxClientManifestBytes) {
    return absl::InvalidArgumentError(StrCat(kWhat, " config: ", m.config.size,
                                             " bytes, more than the ", kMaxClientManifestBytes,
                                             " a release manifest may have"));
  }
  auto ann_it = doc.find("annotations");
  if (ann_it == doc.end() || !ann_it->is_object()) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": missing \"annotations\" object"));
  }
  OTA_ASSIGN_OR_RETURN(m.date, GetString(*ann_it, "date", StrCat(kWhat, " annotations")));
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": missing \"layers\" array"));
  }
  if (layers->size() > kMaxPackages) {
    return absl::InvalidArgumentError(
        StrCat(kWhat, ": ", layers->size(), " layers, more than the ", kMaxPackages, " allowed"));
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    const std::string what = StrCat(kWhat, " layers[", i, "]");
    ReleasePackageLayer layer;
    OTA_ASSIGN_OR_RETURN(
        layer.blob,
        ParseDescriptor((*layers)[i], what, {kMediaOtaclientSquashfs, kMediaOtaclientCpp}));
    const auto& ann = layer.blob.annotations;
    auto get = [&](const char* key) -> absl::StatusOr<std::string> {
      auto it = ann.find(key);
      if (it == ann.end()) {
        return absl::InvalidArgumentError(StrCat(what, ": missing annotation \"", key, "\""));
      }
      if (it->second.size() > 128 || std::any_of(it->second.begin(), it->second.end(),
                                                 [](char c) { return c < 0x20 || c > 0x7e; })) {
        return absl::InvalidArgumentError(
            StrCat(what, ": annotation \"", key, "\" is not 1..128 printable ASCII characters"));
      }
      return it->second;
    };
    OTA_ASSIGN_OR_RETURN(layer.version, get("version"));
    OTA_ASSIGN_OR_RETURN(layer.type, get("type"));
    OTA_ASSIGN_OR_RETURN(layer.architecture, get("architecture"));
    OTA_ASSIGN_OR_RETURN(const std::string size_text, get("size"));
    OTA_ASSIGN_OR_RETURN(const std::string checksum, get("checksum"));
    if (layer.version.empty()) {
      return absl::InvalidArgumentError(StrCat(what, ": empty annotation \"version\""));
    }
    if (LayerMediaTypeOf(layer.type) != layer.blob.media_type) {
      return absl::InvalidArgumentError(StrCat(what, ": type \"", layer.type,
                                               "\" does not go with mediaType \"",
                                               layer.blob.media_type, "\""));
    }
    if (layer.architecture != "x86_64" && layer.architecture != "arm64") {
      return absl::InvalidArgumentError(
          StrCat(what, ": architecture \"", layer.architecture, "\" (only x86_64 and arm64)"));
    }
    const std::optional<uint64_t> size = LabelUint(ann, "size");
    if (!size || *size != layer.blob.size) {
      return absl::InvalidArgumentError(StrCat(what, ": annotation size \"", size_text,
                                               "\" is not the descriptor's ", layer.blob.size));
    }
    absl::StatusOr<crypto::Sha256Digest> sum = ParseDigest(checksum);
    if (!sum.ok()) return WithContext(sum.status(), StrCat(what, " annotation checksum"));
    if (*sum != layer.blob.digest) {
      return absl::InvalidArgumentError(StrCat(what, ": annotation checksum ", checksum,
                                               " is not the descriptor's digest ",
                                               FormatDigest(layer.blob.digest)));
    }
    for (size_t j = 0; j < m.layers.size(); ++j) {
      const ReleasePackageLayer& other = m.layers[j];
      if (other.blob.digest == layer.blob.digest) {
        return absl::InvalidArgumentError(StrCat(what, ": the same blob as layers[", j, "] (",
                                                 FormatDigest(layer.blob.digest), ")"));
      }
      if (other.type == layer.type && other.architecture == layer.architecture &&
          other.version == layer.version) {
        return absl::InvalidArgumentError(StrCat(what, ": a second ", layer.type, " ",
                                                 layer.architecture, " package of version ",
                                                 layer.version, " (layers[", j, "])"));
      }
    }
    m.layers.push_back(std::move(layer));
  }
  return m;
}

absl::StatusOr<const ReleasePackageLayer*> FindPackageLayer(const ReleasePackageManifest& manifest,
                                                            const ClientPackage& package) {
  crypto::Sha256Digest want{};
  if (package.checksum_algorithm != "sha256" || package.checksum_hex.size() != 64 ||
      !crypto::FromHex(package.checksum_hex, &want)) {
    return absl::InvalidArgumentError(
        StrCat("otaclient package ", package.filename, ": checksum is not sha256:<64 hex digits>"));
  }
  for (const ReleasePackageLayer& layer : manifest.layers) {
    if (layer.blob.digest != want) continue;
    const std::string what =
        StrCat("otaclient package ", package.filename, " (layer ", layer.blob.hex(), ")");
    if (layer.version != package.version) {
      return absl::InvalidArgumentError(StrCat(what, ": version ", layer.version, " in the layer, ",
                                               package.version, " in the release manifest"));
    }
    if (layer.type != package.type) {
      return absl::InvalidArgumentError(StrCat(what, ": type ", layer.type, " in the layer, ",
                                               package.type, " in the release manifest"));
    }
    if (layer.architecture != PackageArchitectureOf(package.architecture)) {
      return absl::InvalidArgumentError(StrCat(what, ": architecture ", layer.architecture,
                                               " in the layer, ", package.architecture,
                                               " in the release manifest"));
    }
    if (layer.blob.size != package.size) {
      return absl::InvalidArgumentError(StrCat(what, ": size ", layer.blob.size, " in the layer, ",
                                               package.size, " in the release manifest"));
    }
    return &layer;
  }
  return absl::NotFoundError(StrCat("otaclient package ", package.filename,
                                    " (sha256:", package.checksum_hex,
                                    ") is in the release manifest but in no layer"));
}

}  // namespace ota::image::v1
