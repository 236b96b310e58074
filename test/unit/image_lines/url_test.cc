#include "common/image/url.h"

#include <gtest/gtest.h>

#include <string>

namespace ota::image {
namespace {

struct EncodeCase {
  std::string in;
  std::string out;
};

class PercentEncode : public ::testing::TestWithParam<EncodeCase> {};

TEST_P(PercentEncode, MatchesPythonQuoteFromBytes) {
  EXPECT_EQ(PercentEncodePath(GetParam().in), GetParam().out);
}

// Expected values are what Python's urllib.parse.quote_from_bytes(path, safe="/") gives.
INSTANTIATE_TEST_SUITE_P(
    All, PercentEncode,
    ::testing::Values(EncodeCase{"usr/bin/kill", "usr/bin/kill"}, EncodeCase{"a:b:c", "a%3Ab%3Ac"},
                      EncodeCase{"with space", "with%20space"}, EncodeCase{"100%", "100%25"},
                      EncodeCase{"a+b", "a%2Bb"}, EncodeCase{"it's", "it%27s"},
                      EncodeCase{"a,b;c=d&e?f#g", "a%2Cb%3Bc%3Dd%26e%3Ff%23g"},
                      EncodeCase{"back\\slash", "back%5Cslash"},
                      EncodeCase{"~user/_x.y-z", "~user/_x.y-z"}, EncodeCase{"AZaz09", "AZaz09"},
                      EncodeCase{"/lead/and/trail/", "/lead/and/trail/"},
                      EncodeCase{"\xc3\xa9t\xc3\xa9", "%C3%A9t%C3%A9"},
                      EncodeCase{"\xe6\x97\xa5\xe6\x9c\xac", "%E6%97%A5%E6%9C%AC"},
                      EncodeCase{std::string("nul\0byte", 8), "nul%00byte"},
                      EncodeCase{"\x7f\xff", "%7F%FF"}, EncodeCase{"tab\tnl\n", "tab%09nl%0A"},
                      EncodeCase{"@!$()*[]", "%40%21%24%28%29%2A%5B%5D"}, EncodeCase{"", ""}));

TEST(JoinUrl, CollapsesTheSeam) {
  EXPECT_EQ(JoinUrl("http://h/x", "a"), "http://h/x/a");
  EXPECT_EQ(JoinUrl("http://h/x/", "a"), "http://h/x/a");
  EXPECT_EQ(JoinUrl("http://h/x//", "a"), "http://h/x/a");
  EXPECT_EQ(JoinUrl("http://h/x/", "/a"), "http://h/x/a");
  EXPECT_EQ(JoinUrl("http://h/x", "//a/b/"), "http://h/x/a/b/");
  EXPECT_EQ(JoinUrl("http://h:8080", "metadata.jwt"), "http://h:8080/metadata.jwt");
  EXPECT_EQ(JoinUrl("file:///srv/img", "dirs.txt"), "file:///srv/img/dirs.txt");
  // Only the seam is touched: inner double slashes of either side stay.
  EXPECT_EQ(JoinUrl("http://h/x//y", "a//b"), "http://h/x//y/a//b");
}

TEST(RegularFileUrl, QuotesThePathNotTheRootfsDir) {
  EXPECT_EQ(RegularFileUrl("http://ota-server:8080/ota-server", "data", "/a:b:c"),
            "http://ota-server:8080/ota-server/data/a%3Ab%3Ac");
  EXPECT_EQ(RegularFileUrl("http://h/img/", "data", "/usr/bin/kill"),
            "http://h/img/data/usr/bin/kill");
  EXPECT_EQ(RegularFileUrl("http://h/img//", "data/", "/with space/100%+"),
            "http://h/img/data/with%20space/100%25%2B");
  EXPECT_EQ(RegularFileUrl("http://h/img", "my data", "/x"), "http://h/img/my data/x");
  EXPECT_EQ(RegularFileUrl("http://h", "data", "/\xc3\xa9"), "http://h/data/%C3%A9");
}

TEST(CompressedBlobUrl, HexDotZst) {
  const std::string hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  EXPECT_EQ(CompressedBlobUrl("http://h/img", "data.zst", hex),
            "http://h/img/data.zst/" + hex + ".zst");
  EXPECT_EQ(CompressedBlobUrl("http://h/img/", "data.zst/", hex),
            "http://h/img/data.zst/" + hex + ".zst");
}

}  // namespace
}  // namespace ota::image
