// Test data of a given size, the same for the same seed: random bytes (incompressible), text
// (compressible but not trivial: words of a small alphabet), and zstd frames of data.
#pragma once

#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace ota::testing {

inline std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

inline std::string TextBytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out;
  while (out.size() < size) out.push_back("abcdefgh \n"[rng() % 10]);
  return out;
}

// One zstd frame of `data` (with its content size); a failure fails the test and gives "".
inline std::string ZstdCompress(const std::string& data, int level = 3) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

}  // namespace ota::testing
