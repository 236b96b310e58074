#include "common/http/cache_control.h"

#include <gtest/gtest.h>

#include <string>

namespace ota::http {
namespace {

const std::string kSha(64, 'a');
const std::string kShaUpper(64, 'A');

struct Good {
  std::string header;
  CacheControl want;
};

TEST(CacheControlTest, AcceptsWhatClientsSend) {
  const Good cases[] = {
      {"", {}},
      {"no_cache", {.no_cache = true}},
      {"retry_caching", {.retry_caching = true}},
      {"use_cache", {}},
      {"file_sha256=" + kSha, {.file_sha256 = kSha}},
      {"file_sha256=" + kShaUpper, {.file_sha256 = kSha}},
      {"file_sha256=" + kSha + ",file_compression_alg=zst",
       {.file_sha256 = kSha, .file_compression_alg = "zst"}},
      {"file_compression_alg=ZSTD", {.file_compression_alg = "zst"}},
      {" retry_caching , file_sha256 = " + kSha + " ,\tno_cache ",
       {.no_cache = true, .retry_caching = true, .file_sha256 = kSha}},
      {",,no_cache,,", {.no_cache = true}},
      {"file_sha256=" + kSha + ",file_sha256=" + kShaUpper, {.file_sha256 = kSha}},
      {"something_new=1,no_cache", {.no_cache = true, .ignored = {"something_new=1"}}},
      {"NO_CACHE", {.ignored = {"NO_CACHE"}}},
  };
  for (const Good& c : cases) {
    absl::StatusOr<CacheControl> got = ParseCacheControl(c.header);
    ASSERT_TRUE(got.ok()) << c.header << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.header;
  }
}

TEST(CacheControlTest, RejectsMalformedKnownDirectives) {
  const std::string bad[] = {
      "file_sha256",
      "file_sha256=",
      "file_sha256=" + kSha.substr(1),
      "file_sha256=" + kSha + "0",
      "file_sha256=" + std::string(63, 'a') + "g",
      "file_sha256=" + kSha + ",file_sha256=" + std::string(64, 'b'),
      "file_compression_alg=",
      "file_compression_alg=zst/../x",
      "file_compression_alg=" + std::string(17, 'z'),
      "file_compression_alg=zst,file_compression_alg=gz",
      "no_cache=1",
      "retry_caching=yes",
      std::string("file_compression_alg=z\x01t"),
      std::string("file_sha256=") + std::string(32, 'a') + std::string("\0", 1) +
          std::string(31, 'a'),
  };
  for (const std::string& header : bad) {
    absl::StatusOr<CacheControl> got = ParseCacheControl(header);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << header;
    if (!got.ok()) {
      EXPECT_NE(std::string(got.status().message()).find("Ota-File-Cache-Control"),
                std::string::npos);
    }
  }
}

TEST(CacheControlTest, EchoesShaAndAlgOnly) {
  EXPECT_EQ(EchoCacheControl({}), "");
  EXPECT_EQ(EchoCacheControl({.no_cache = true, .file_compression_alg = "zst"}), "");
  EXPECT_EQ(EchoCacheControl({.retry_caching = true, .file_sha256 = kSha}), "file_sha256=" + kSha);
  EXPECT_EQ(EchoCacheControl({.file_sha256 = kSha, .file_compression_alg = "zst"}),
            "file_sha256=" + kSha + ",file_compression_alg=zst");
}

}  // namespace
}  // namespace ota::http
