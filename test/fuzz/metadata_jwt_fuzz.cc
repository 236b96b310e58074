// Fuzzes metadata.jwt parsing (ParseMetadataJwt) and base64url decoding. Beyond "no crash", it
// checks round trips: decode∘encode is the identity, and a parsed payload re-serialized with
// SerializePayloadJson parses back to the same fields.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/image/legacy/metadata.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

bool SameRef(const ota::image::SignedFileRef& a, const ota::image::SignedFileRef& b) {
  return a.file == b.file && a.sha256 == b.sha256;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto decoded = ota::image::Base64UrlDecode(input); decoded.ok()) {
    for (bool pad : {true, false}) {
      auto again = ota::image::Base64UrlDecode(ota::image::Base64UrlEncode(*decoded, pad));
      Check(again.ok() && *again == *decoded);
    }
  }

  auto metadata = ota::image::ParseMetadataJwt(input);
  if (!metadata.ok()) return 0;
  Check(!metadata->signature.empty());
  Check(input.starts_with(metadata->signed_part));

  ota::image::MetadataPayload payload;
  payload.directory = metadata->directory;
  payload.symboliclink = metadata->symboliclink;
  payload.regular = metadata->regular;
  payload.persistent = metadata->persistent;
  payload.certificate = metadata->certificate;
  payload.rootfs_directory = metadata->rootfs_directory;
  payload.compressed_rootfs_directory = metadata->compressed_rootfs_directory;
  payload.total_regular_size = metadata->total_regular_size;
  const std::string jwt = ota::image::Base64UrlEncode(R"({"alg": "ES256"})") + "." +
                          ota::image::Base64UrlEncode(ota::image::SerializePayloadJson(payload)) +
                          "." + ota::image::Base64UrlEncode(metadata->signature);
  auto reparsed = ota::image::ParseMetadataJwt(jwt);
  Check(reparsed.ok());
  Check(reparsed->version == 1);
  Check(SameRef(reparsed->directory, metadata->directory));
  Check(SameRef(reparsed->symboliclink, metadata->symboliclink));
  Check(SameRef(reparsed->regular, metadata->regular));
  Check(SameRef(reparsed->persistent, metadata->persistent));
  Check(SameRef(reparsed->certificate, metadata->certificate));
  Check(reparsed->rootfs_directory == metadata->rootfs_directory);
  Check(reparsed->compressed_rootfs_directory == metadata->compressed_rootfs_directory);
  Check(reparsed->total_regular_size == metadata->total_regular_size);
  Check(reparsed->signature == metadata->signature);
  return 0;
}
