// common/util/utf8.h: ValidUtf8Prefix, which makes foreign text (a secondary's error message)
// fit for a protobuf string field of this ECU's own answers.
#include "common/util/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace ota {
namespace {

TEST(ValidUtf8Prefix, Table) {
  struct Case {
    std::string in;
    size_t max;
    std::string want;
  };
  const Case cases[] = {
      {"", 3, ""},
      {"abc", 3, "abc"},       // fits exactly: not cut
      {"abcd", 3, "..."},      // nothing of it fits beside the mark
      {"abcdef", 5, "ab..."},  //
      {"a\xff"
       "b",
       10,
       "a\xEF\xBF\xBD"
       "b"},                                         // a stray byte becomes U+FFFD
      {"\xc0\x80", 10, "\xEF\xBF\xBD\xEF\xBF\xBD"},  // overlong NUL: two stray bytes
      {"\xe2\x82", 10, "\xEF\xBF\xBD\xEF\xBF\xBD"},  // a sequence cut short
      {"\xed\xa0\x80", 20, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // a surrogate
      {"x\xe2\x82\xac\xe2\x82\xac", 6, "x..."},  // never half a character: "x€..." is 7
      {"x\xe2\x82\xac\xe2\x82\xac", 7, "x\xe2\x82\xac\xe2\x82\xac"},  // fits exactly
      {"x\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 8, "x\xe2\x82\xac..."},
      {std::string("line\nNUL\0end", 12), 100, std::string("line\nNUL\0end", 12)},  // kept
  };
  for (const Case& c : cases) {
    const std::string got = ValidUtf8Prefix(c.in, c.max);
    EXPECT_EQ(got, c.want) << c.in << " max " << c.max;
    EXPECT_LE(got.size(), c.max) << c.in;
    EXPECT_TRUE(IsValidUtf8(got)) << c.in;
  }
}

}  // namespace
}  // namespace ota
