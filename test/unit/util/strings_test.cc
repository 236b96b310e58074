// ParseByteSize (common/util/strings.h): the byte counts of command-line flags.
#include "common/util/strings.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace ota {
namespace {

TEST(ParseByteSizeTest, Table) {
  const std::pair<std::string, std::optional<uint64_t>> cases[] = {
      {"0", 0},
      {"123", 123},
      {"64K", 64u << 10},
      {"64k", 64u << 10},
      {"10M", 10u << 20},
      {"2G", uint64_t{2} << 30},
      {"1073741824G", uint64_t{1} << 60},
      {"1073741825G", std::nullopt},  // beyond 2^60
      {"", std::nullopt},
      {"K", std::nullopt},
      {"-1", std::nullopt},
      {"+1", std::nullopt},
      {"1.5M", std::nullopt},
      {"1 M", std::nullopt},
      {"1MB", std::nullopt},
      {"1T", std::nullopt},
      {"0x10", std::nullopt},
      {"18446744073709551616", std::nullopt},
  };
  for (const auto& [input, expected] : cases) {
    EXPECT_EQ(ParseByteSize(input), expected) << "input: \"" << input << "\"";
  }
}

}  // namespace
}  // namespace ota
