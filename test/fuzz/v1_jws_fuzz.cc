// Fuzzes index.jwt: the compact JWS split and base64url decoding (ParseIndexJwt), the header
// (ParseJwsHeader: alg, typ, x5c, crit) and claims (ParseJwsClaims), the time check, and x5c
// entry decoding (X5cEntryToDer). The first byte picks the entry point. Beyond "no crash": a
// parsed token's signing input is exactly its first two segments, an accepted header is ES256.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/crypto/signing.h"
#include "common/image/v1/schema.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::image::v1;
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      if (auto jwt = ParseIndexJwt(input); jwt.ok()) {
        Check(input.substr(0, jwt->signing_input.size()) == jwt->signing_input);
        Check(jwt->header.alg == "ES256" && !jwt->header.x5c.empty());
        (void)CheckJwsTimes(jwt->claims, 1700000000);
      }
      break;
    case 1:
      if (auto h = ParseJwsHeader(input); h.ok()) Check(h->alg == "ES256");
      break;
    case 2:
      if (auto c = ParseJwsClaims(input); c.ok()) (void)CheckJwsTimes(*c, 0);
      break;
    case 3:
      (void)ota::crypto::X5cEntryToDer(input);
      break;
  }
  return 0;
}
