// Fuzzes the --grpc-tls-* file check (CheckTlsIdentity: PEM certificates, private key, CA
// certificates, key match, chain and purpose). The input is the certificate, key and CA texts
// separated by NUL bytes; the first byte picks the use. Beyond "no crash": an accepted identity
// has a PEM certificate and a PEM key.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/crypto/signing.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto use =
      data[0] % 2 == 0 ? ota::crypto::TlsUse::kClient : ota::crypto::TlsUse::kClientAndServer;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string_view parts[3];
  for (int i = 0; i < 2; ++i) {
    const size_t nul = rest.find('\0');
    parts[i] = rest.substr(0, nul);
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  }
  parts[2] = rest;
  if (ota::crypto::CheckTlsIdentity(parts[0], parts[1], parts[2], use).ok()) {
    Check(parts[0].find("-----BEGIN") != std::string_view::npos);
    Check(parts[1].find("-----BEGIN") != std::string_view::npos);
  }
  return 0;
}
