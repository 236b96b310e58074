#include "otaclient/boot/firmware_package.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <memory>

#include "common/config/yaml_fields.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"

namespace ota::boot {
namespace {

using config::internal::CatchYamlExceptions;
using config::internal::Entry;
using config::internal::Field;
using config::internal::ParseContext;

constexpr size_t kMaxYamlBytes = 1 << 20;

absl::StatusOr<PayloadType> ParsePayloadType(const Field& field, const ParseContext& ctx) {
  OTA_ASSIGN_OR_RETURN(std::string text, config::internal::ReadString(field, ctx));
  for (PayloadType type :
       {PayloadType::kUefiCapsule, PayloadType::kUefiBootApp, PayloadType::kBup}) {
    if (text == PayloadTypeName(type)) return type;
  }
  return ctx.Error(field.mark, field.path,
                   StrCat("unknown payload type ", config::internal::QuoteForMessage(text),
                          " (expected UEFI-CAPSULE, UEFI-BOOT-APP or BUP)"));
}

// "<alg>:<hex>" with a non-empty algorithm name and an even number of hex digits.
absl::Status ParseDigest(const Field& field, const ParseContext& ctx, FirmwarePackage* package) {
  OTA_ASSIGN_OR_RETURN(std::string text, config::internal::ReadString(field, ctx));
  const size_t colon = text.find(':');
  std::string hex = colon == std::string::npos ? "" : ToLower(text.substr(colon + 1));
  const bool hex_ok = !hex.empty() && hex.size() % 2 == 0 && hex.size() <= 256 &&
                      std::all_of(hex.begin(), hex.end(), [](char c) {
                        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                      });
  if (colon == 0 || colon == std::string::npos || !hex_ok) {
    return ctx.Error(
        field.mark, field.path,
        StrCat("expected <algorithm>:<hex digest>, got ", config::internal::QuoteForMessage(text)));
  }
  package->digest_algorithm = text.substr(0, colon);
  package->digest_hex = std::move(hex);
  return absl::OkStatus();
}

absl::StatusOr<FirmwarePackage> ParsePackage(const Field& item, const ParseContext& ctx) {
  OTA_ASSIGN_OR_RETURN(std::vector<Entry> entries, config::internal::MappingEntries(item, ctx));
  FirmwarePackage package;
  bool have_name = false, have_location = false, have_type = false, have_digest = false;
  for (const Entry& entry : entries) {
    if (entry.key == "payload_name") {
      OTA_ASSIGN_OR_RETURN(package.payload_name, config::internal::ReadString(entry.field, ctx));
      have_name = true;
    } else if (entry.key == "file_location") {
      OTA_ASSIGN_OR_RETURN(package.file_location, config::internal::ReadString(entry.field, ctx));
      have_location = true;
    } else if (entry.key == "type") {
      OTA_ASSIGN_OR_RETURN(package.type, ParsePayloadType(entry.field, ctx));
      have_type = true;
    } else if (entry.key == "digest") {
      OTA_RETURN_IF_ERROR(ParseDigest(entry.field, ctx, &package));
      have_digest = true;
    }
  }
  if (!have_name || !have_location || !have_type || !have_digest) {
    return ctx.Error(item.mark, item.path, "needs payload_name, file_location, type and digest");
  }
  return package;
}

absl::StatusOr<FirmwareCompat> ParseCompat(const Field& field, const ParseContext& ctx) {
  OTA_ASSIGN_OR_RETURN(std::vector<Entry> entries, config::internal::MappingEntries(field, ctx));
  FirmwareCompat compat;
  std::string* const targets[] = {&compat.board_id, &compat.board_sku, &compat.board_rev,
                                  &compat.fab_id, &compat.board_conf};
  constexpr std::string_view kKeys[] = {"board_id", "board_sku", "board_rev", "fab_id",
                                        "board_conf"};
  int found = 0;
  for (const Entry& entry : entries) {
    for (size_t i = 0; i < std::size(kKeys); ++i) {
      if (entry.key != kKeys[i]) continue;
      // YAML may give "3701" as a number; upstream's strict model wants strings.
      OTA_ASSIGN_OR_RETURN(*targets[i], config::internal::ReadString(entry.field, ctx));
      ++found;
    }
  }
  if (found != static_cast<int>(std::size(kKeys))) {
    return ctx.Error(field.mark, field.path,
                     "needs board_id, board_sku, board_rev, fab_id and board_conf");
  }
  return compat;
}

absl::Status CheckSize(std::string_view text, std::string_view file_name) {
  if (text.size() > kMaxYamlBytes) {
    return absl::InvalidArgumentError(StrCat(file_name, ": larger than 1 MiB"));
  }
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat(file_name, ": contains a NUL byte"));
  }
  return absl::OkStatus();
}

// Python's hashlib names that OpenSSL spells differently.
std::string OpenSslDigestName(std::string_view algorithm) {
  std::string name(algorithm);
  if (name.rfind("sha3_", 0) == 0) name[4] = '-';
  if (name == "blake2b") return "BLAKE2b512";
  if (name == "blake2s") return "BLAKE2s256";
  return name;
}

}  // namespace

std::string_view PayloadTypeName(PayloadType type) {
  switch (type) {
    case PayloadType::kUefiCapsule:
      return "UEFI-CAPSULE";
    case PayloadType::kUefiBootApp:
      return "UEFI-BOOT-APP";
    case PayloadType::kBup:
      return "BUP";
  }
  return "?";
}

absl::StatusOr<FirmwareUpdateRequest> ParseFirmwareUpdateRequest(std::string_view text,
                                                                 std::string_view file_name) {
  OTA_RETURN_IF_ERROR(CheckSize(text, file_name));
  ParseContext ctx(file_name, nullptr);
  return CatchYamlExceptions<FirmwareUpdateRequest>(
      ctx, [&]() -> absl::StatusOr<FirmwareUpdateRequest> {
        OTA_ASSIGN_OR_RETURN(YAML::Node root, config::internal::LoadRootMapping(text, ctx));
        if (root.IsNull()) return ctx.Error(root.Mark(), "", "empty file");
        OTA_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                             config::internal::MappingEntries({"", root, root.Mark()}, ctx));
        FirmwareUpdateRequest request;
        bool have_list = false;
        for (const Entry& entry : entries) {
          if (entry.key == "format_version") {
            OTA_ASSIGN_OR_RETURN(int64_t version,
                                 config::internal::ReadInt(entry.field, 1, 1, ctx));
            (void)version;
          } else if (entry.key == "firmware_list") {
            OTA_ASSIGN_OR_RETURN(std::vector<Field> items,
                                 config::internal::SequenceElements(entry.field, "a list", ctx));
            for (const Field& item : items) {
              OTA_ASSIGN_OR_RETURN(std::string name, config::internal::ReadString(item, ctx));
              request.firmware_list.push_back(std::move(name));
            }
            have_list = true;
          }
        }
        if (!have_list) return ctx.Error(root.Mark(), "firmware_list", "missing");
        return request;
      });
}

absl::StatusOr<FirmwareManifest> ParseFirmwareManifest(std::string_view text,
                                                       std::string_view file_name) {
  OTA_RETURN_IF_ERROR(CheckSize(text, file_name));
  ParseContext ctx(file_name, nullptr);
  return CatchYamlExceptions<FirmwareManifest>(ctx, [&]() -> absl::StatusOr<FirmwareManifest> {
    OTA_ASSIGN_OR_RETURN(YAML::Node root, config::internal::LoadRootMapping(text, ctx));
    if (root.IsNull()) return ctx.Error(root.Mark(), "", "empty file");
    OTA_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                         config::internal::MappingEntries({"", root, root.Mark()}, ctx));
    FirmwareManifest manifest;
    bool have_type = false, have_spec = false, have_packages = false;
    for (const Entry& entry : entries) {
      if (entry.key == "format_version") {
        OTA_ASSIGN_OR_RETURN(int64_t version, config::internal::ReadInt(entry.field, 1, 1, ctx));
        (void)version;
      } else if (entry.key == "hardware_type") {
        OTA_ASSIGN_OR_RETURN(std::string type, config::internal::ReadString(entry.field, ctx));
        if (type != "nvidia_jetson") {
          return ctx.Error(
              entry.field.mark, entry.field.path,
              StrCat("unsupported hardware type ", config::internal::QuoteForMessage(type),
                     " (expected nvidia_jetson)"));
        }
        have_type = true;
      } else if (entry.key == "hardware_series") {
        OTA_ASSIGN_OR_RETURN(manifest.hardware_series,
                             config::internal::ReadString(entry.field, ctx));
      } else if (entry.key == "hardware_model") {
        OTA_ASSIGN_OR_RETURN(manifest.hardware_model,
                             config::internal::ReadString(entry.field, ctx));
      } else if (entry.key == "firmware_spec") {
        OTA_ASSIGN_OR_RETURN(std::vector<Entry> spec,
                             config::internal::MappingEntries(entry.field, ctx));
        bool have_bsp = false, have_compat = false;
        for (const Entry& part : spec) {
          if (part.key == "bsp_version") {
            OTA_ASSIGN_OR_RETURN(std::string text, config::internal::ReadString(part.field, ctx));
            absl::StatusOr<BspVersion> bsp = ParseBspVersion(text);
            if (!bsp.ok()) {
              return ctx.Error(part.field.mark, part.field.path,
                               std::string(bsp.status().message()));
            }
            manifest.bsp_version = *bsp;
            have_bsp = true;
          } else if (part.key == "firmware_compat") {
            OTA_ASSIGN_OR_RETURN(manifest.compat, ParseCompat(part.field, ctx));
            have_compat = true;
          }
        }
        if (!have_bsp || !have_compat) {
          return ctx.Error(entry.field.mark, entry.field.path,
                           "needs bsp_version and firmware_compat");
        }
        have_spec = true;
      } else if (entry.key == "firmware_packages") {
        OTA_ASSIGN_OR_RETURN(std::vector<Field> items,
                             config::internal::SequenceElements(entry.field, "a list", ctx));
        for (const Field& item : items) {
          OTA_ASSIGN_OR_RETURN(FirmwarePackage package, ParsePackage(item, ctx));
          manifest.packages.push_back(std::move(package));
        }
        have_packages = true;
      }
    }
    if (!have_type || !have_spec || !have_packages) {
      return ctx.Error(root.Mark(), "", "needs hardware_type, firmware_spec and firmware_packages");
    }
    return manifest;
  });
}

bool FirmwareCompatible(const FirmwareCompat& compat, std::string_view tnspec) {
  for (const std::string* field : {&compat.board_id, &compat.board_sku, &compat.board_rev,
                                   &compat.fab_id, &compat.board_conf}) {
    if (tnspec.find(*field) == std::string_view::npos) return false;
  }
  return true;
}

std::vector<const FirmwarePackage*> FirmwarePackageSet::Requested(PayloadType type) const {
  std::vector<const FirmwarePackage*> out;
  for (const FirmwarePackage& package : manifest.packages) {
    if (package.type != type) continue;
    if (std::find(request.firmware_list.begin(), request.firmware_list.end(),
                  package.payload_name) == request.firmware_list.end()) {
      continue;
    }
    out.push_back(&package);
  }
  return out;
}

absl::StatusOr<std::optional<FirmwarePackageSet>> LoadFirmwarePackage(const fs::RootedDir& image) {
  absl::StatusOr<std::string> request_text = image.ReadFile(kFirmwareUpdateFile);
  absl::StatusOr<std::string> manifest_text = image.ReadFile(kFirmwareManifestFile);
  if (absl::IsNotFound(request_text.status()) || absl::IsNotFound(manifest_text.status())) {
    log::Info("the image requests no firmware update",
              {{"update_file", image.Describe(kFirmwareUpdateFile)},
               {"present", request_text.ok() ? "manifest missing" : "no request"}});
    return std::optional<FirmwarePackageSet>();
  }
  // A file that exists but cannot be read is a local I/O error, not "no firmware".
  if (!request_text.ok()) return request_text.status();
  if (!manifest_text.ok()) return manifest_text.status();
  absl::StatusOr<FirmwareUpdateRequest> request =
      ParseFirmwareUpdateRequest(*request_text, image.Describe(kFirmwareUpdateFile));
  absl::StatusOr<FirmwareManifest> manifest =
      ParseFirmwareManifest(*manifest_text, image.Describe(kFirmwareManifestFile));
  if (!request.ok() || !manifest.ok()) {
    log::Warning("invalid firmware package in the image: no firmware update",
                 {{"error", std::string(request.ok() ? manifest.status().message()
                                                     : request.status().message())}});
    return std::optional<FirmwarePackageSet>();
  }
  return std::optional<FirmwarePackageSet>(
      FirmwarePackageSet{std::move(*request), std::move(*manifest)});
}

absl::StatusOr<std::string> PayloadPathInImage(const FirmwarePackage& package) {
  constexpr std::string_view kScheme = "file://";
  const std::string_view location = package.file_location;
  if (location.rfind(kScheme, 0) != 0) {
    if (location.find("://") == std::string_view::npos && location.find(':') != 0 &&
        location.find(':') != std::string_view::npos) {
      return absl::UnimplementedError(StrCat("firmware payload ", package.payload_name,
                                             ": blob location '", location,
                                             "' is not supported (only file:// payloads)"));
    }
    return absl::InvalidArgumentError(StrCat("firmware payload ", package.payload_name,
                                             ": location '", location, "' is not file://"));
  }
  const std::string_view path = location.substr(kScheme.size());
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError(StrCat("firmware payload ", package.payload_name, ": '",
                                             location, "' is not an absolute file:// path"));
  }
  return std::string(path.substr(1));
}

namespace {

// A running digest over OpenSSL's EVP interface.
class Digester {
 public:
  static absl::StatusOr<Digester> Create(std::string_view algorithm) {
    const EVP_MD* md = EVP_get_digestbyname(OpenSslDigestName(algorithm).c_str());
    if (md == nullptr) {
      return absl::InvalidArgumentError(StrCat("unknown digest algorithm '", algorithm, "'"));
    }
    Digester digester(algorithm);
    if (!digester.ctx_ || EVP_DigestInit_ex(digester.ctx_.get(), md, nullptr) != 1) {
      return absl::InternalError(StrCat("cannot start a ", algorithm, " digest"));
    }
    return digester;
  }
  absl::Status Update(const char* data, size_t size) {
    if (EVP_DigestUpdate(ctx_.get(), data, size) != 1) {
      return absl::InternalError(StrCat(algorithm_, " digest update failed"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> FinalHex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1) {
      return absl::InternalError(StrCat(algorithm_, " digest failed"));
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
      hex.push_back(kHex[digest[i] >> 4]);
      hex.push_back(kHex[digest[i] & 0xf]);
    }
    return hex;
  }

 private:
  explicit Digester(std::string_view algorithm)
      : algorithm_(algorithm), ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {}
  std::string algorithm_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// Reads `fd` to its end, handing each chunk to `sink`.
absl::Status ReadChunks(int fd, std::string_view what,
                        const std::function<absl::Status(const char*, size_t)>& sink) {
  std::vector<char> buffer(1 << 16);
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", what));
    }
    if (n == 0) return absl::OkStatus();
    OTA_RETURN_IF_ERROR(sink(buffer.data(), static_cast<size_t>(n)));
  }
}

}  // namespace

absl::StatusOr<std::string> FileDigestHex(int fd, std::string_view algorithm) {
  OTA_ASSIGN_OR_RETURN(Digester digester, Digester::Create(algorithm));
  OTA_RETURN_IF_ERROR(ReadChunks(fd, "file to digest", [&](const char* data, size_t size) {
    return digester.Update(data, size);
  }));
  return digester.FinalHex();
}

absl::Status CopyVerifiedPayload(const fs::RootedDir& image, const FirmwarePackage& package,
                                 const std::filesystem::path& dest) {
  OTA_ASSIGN_OR_RETURN(std::string path, PayloadPathInImage(package));
  OTA_ASSIGN_OR_RETURN(fs::UniqueFd in, image.OpenRead(path));
  OTA_ASSIGN_OR_RETURN(Digester digester, Digester::Create(package.digest_algorithm));
  const std::filesystem::path temp = dest.string() + ".ota-new";
  fs::UniqueFd out(
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!out.valid()) return ErrnoStatus(errno, StrCat("create ", temp.string()));
  auto discard = [&temp](absl::Status status) {
    ::unlink(temp.c_str());
    return status;
  };
  absl::Status copied =
      ReadChunks(in.get(), image.Describe(path), [&](const char* data, size_t size) {
        OTA_RETURN_IF_ERROR(digester.Update(data, size));
        return fs::WriteAll(out.get(), data, size, StrCat("write ", temp.string()));
      });
  if (!copied.ok()) return discard(copied);
  absl::StatusOr<std::string> digest = digester.FinalHex();
  if (!digest.ok()) return discard(digest.status());
  if (*digest != package.digest_hex) {
    return discard(absl::DataLossError(StrCat(
        "firmware payload ", package.payload_name, " (", image.Describe(path), "): ",
        package.digest_algorithm, " ", *digest, ", the manifest says ", package.digest_hex)));
  }
  if (::fsync(out.get()) != 0) return discard(ErrnoStatus(errno, StrCat("fsync ", temp.string())));
  out.Reset();
  if (::rename(temp.c_str(), dest.c_str()) != 0) {
    return discard(ErrnoStatus(errno, StrCat("rename ", temp.string(), " to ", dest.string())));
  }
  return fs::SyncDir(dest.parent_path());
}

}  // namespace ota::boot
