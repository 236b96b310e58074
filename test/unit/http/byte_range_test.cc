// Range and Content-Range parsing (common/http/byte_range.h): table tests with hostile vectors.
#include "common/http/byte_range.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace ota::http {
namespace {

struct RangeCase {
  std::string input;
  std::optional<uint64_t> first;  // nullopt = not understood
  std::optional<uint64_t> last;
};

TEST(ParseRangeHeaderTest, Table) {
  const RangeCase cases[] = {
      {"bytes=0-", 0, std::nullopt},
      {"bytes=123-", 123, std::nullopt},
      {"bytes=5-9", 5, 9},
      {"bytes=5-5", 5, 5},
      {"BYTES=7-", 7, std::nullopt},
      {"  bytes = 7- ", 7, std::nullopt},
      {"bytes=18446744073709551615-", 18446744073709551615ull, std::nullopt},
      // Not understood: ignored by the server (a full 200).
      {"", std::nullopt, std::nullopt},
      {"bytes", std::nullopt, std::nullopt},
      {"bytes=", std::nullopt, std::nullopt},
      {"bytes=-", std::nullopt, std::nullopt},
      {"bytes=-500", std::nullopt, std::nullopt},     // suffix range
      {"bytes=9-5", std::nullopt, std::nullopt},      // last before first
      {"bytes=0-1,5-9", std::nullopt, std::nullopt},  // several ranges
      {"bytes=0-,5-", std::nullopt, std::nullopt},
      {"bytes=+5-", std::nullopt, std::nullopt},
      {"bytes=-5-", std::nullopt, std::nullopt},
      {"bytes=5--", std::nullopt, std::nullopt},
      {"bytes=0x10-", std::nullopt, std::nullopt},
      {"bytes=1 0-", std::nullopt, std::nullopt},
      {"bytes=18446744073709551616-", std::nullopt, std::nullopt},  // 2^64
      {"bytes=1-18446744073709551616", std::nullopt, std::nullopt},
      {"items=0-", std::nullopt, std::nullopt},
      {"bytesx=0-", std::nullopt, std::nullopt},
      {"bytes:0-", std::nullopt, std::nullopt},
      {"bytes=5", std::nullopt, std::nullopt},
      {std::string("bytes=5\0-", 9), std::nullopt, std::nullopt},
      {"bytes=5-\r\n", std::nullopt, std::nullopt},
  };
  for (const RangeCase& c : cases) {
    SCOPED_TRACE("input: \"" + c.input + "\"");
    std::optional<ByteRange> got = ParseRangeHeader(c.input);
    ASSERT_EQ(got.has_value(), c.first.has_value());
    if (!got) continue;
    EXPECT_EQ(got->first, *c.first);
    EXPECT_EQ(got->last, c.last);
  }
}

struct ContentRangeCase {
  std::string input;
  bool ok;
  uint64_t first = 0;
  uint64_t last = 0;
  std::optional<uint64_t> complete;
};

TEST(ParseContentRangeTest, Table) {
  const ContentRangeCase cases[] = {
      {"bytes 0-9/10", true, 0, 9, 10},
      {"bytes 100-199/1000", true, 100, 199, 1000},
      {"bytes 5-5/6", true, 5, 5, 6},
      {"bytes 5-9/*", true, 5, 9, std::nullopt},
      {"Bytes 1-2/3", true, 1, 2, 3},
      {" bytes  1-2/3 ", true, 1, 2, 3},
      {"bytes 0-18446744073709551614/18446744073709551615", true, 0, 18446744073709551614ull,
       18446744073709551615ull},
      {"", false, 0, 0, std::nullopt},
      {"bytes", false, 0, 0, std::nullopt},
      {"bytes ", false, 0, 0, std::nullopt},
      {"bytes */1000", false, 0, 0, std::nullopt},   // a 416's: no satisfiable range
      {"bytes 9-5/10", false, 0, 0, std::nullopt},   // last before first
      {"bytes 0-10/10", false, 0, 0, std::nullopt},  // beyond the length
      {"bytes 0-9/0", false, 0, 0, std::nullopt},
      {"bytes 0-9/", false, 0, 0, std::nullopt},
      {"bytes 0-9", false, 0, 0, std::nullopt},
      {"bytes 0-/10", false, 0, 0, std::nullopt},
      {"bytes -9/10", false, 0, 0, std::nullopt},
      {"bytes -1-9/10", false, 0, 0, std::nullopt},
      {"bytes +1-9/10", false, 0, 0, std::nullopt},
      {"bytes 1-+9/10", false, 0, 0, std::nullopt},
      {"bytes 1-9/+10", false, 0, 0, std::nullopt},
      {"bytes 1/9-10", false, 0, 0, std::nullopt},  // slash before dash
      {"bytes=1-9/10", false, 0, 0, std::nullopt},  // Range syntax, not Content-Range
      {"bytes1-9/10", false, 0, 0, std::nullopt},
      {"items 1-9/10", false, 0, 0, std::nullopt},
      {"bytes 0-18446744073709551616/18446744073709551617", false, 0, 0, std::nullopt},  // overflow
      {"bytes 1-9/10/11", false, 0, 0, std::nullopt},
      {"bytes 1-9/10,1-2/3", false, 0, 0, std::nullopt},
      {"bytes 0x1-9/10", false, 0, 0, std::nullopt},
      {std::string("bytes 1-9/1\0", 12), false, 0, 0, std::nullopt},
  };
  for (const ContentRangeCase& c : cases) {
    SCOPED_TRACE("input: \"" + c.input + "\"");
    absl::StatusOr<ContentRange> got = ParseContentRange(c.input);
    ASSERT_EQ(got.ok(), c.ok) << got.status();
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(got.status().message().find("Content-Range"), absl::string_view::npos);
      continue;
    }
    EXPECT_EQ(got->first, c.first);
    EXPECT_EQ(got->last, c.last);
    EXPECT_EQ(got->complete, c.complete);
  }
}

TEST(FormatContentRangeTest, RoundTrips) {
  EXPECT_EQ(FormatContentRange(0, 10), "bytes 0-9/10");
  EXPECT_EQ(FormatContentRange(9, 10), "bytes 9-9/10");
  absl::StatusOr<ContentRange> back = ParseContentRange(FormatContentRange(123, 456789));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->first, 123u);
  EXPECT_EQ(back->last, 456788u);
  EXPECT_EQ(back->complete, 456789u);
}

}  // namespace
}  // namespace ota::http
