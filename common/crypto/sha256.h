// Streaming SHA-256 over OpenSSL EVP (uses the CPU's SHA extensions where present).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ota::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Returns the digest and resets the hasher for reuse.
  Sha256Digest Finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

Sha256Digest Sha256Of(std::string_view data);
std::string ToHex(const Sha256Digest& digest);
// Parses 64 hex digits (either case); false otherwise.
bool FromHex(std::string_view hex, Sha256Digest* digest);

// Hashes a whole file (reads with a large buffer, hints sequential access).
absl::StatusOr<Sha256Digest> Sha256File(const std::filesystem::path& path);
// Same, for an already open fd (read from its current offset to EOF).
absl::StatusOr<Sha256Digest> Sha256Fd(int fd, std::string_view what);

// sha256 of the empty string: files with this digest are never fetched.
inline constexpr std::string_view kEmptySha256Hex =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace ota::crypto
