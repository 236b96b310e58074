// ContentVerifier: the streaming zstd + size + sha256 check shared by the fetcher and otaproxy.
// Table tests over real zstd frames: whole bodies, every split point, corrupted, truncated and
// trailing bytes, wrong digests and sizes, multiple and skippable frames, empty input.
#include "common/content/verifier.h"

#include <zstd.h>

#include <random>
#include <span>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/lib/test_bytes.h"

namespace ota::content {
namespace {

using ::ota::testing::RandomBytes;
using ::ota::testing::TextBytes;
using ::ota::testing::ZstdCompress;

using ::testing::HasSubstr;

// A skippable frame (magic 0x184D2A50, 4-byte little-endian length, payload).
std::string SkippableFrame(const std::string& payload) {
  std::string out = {'\x50', '\x2a', '\x4d', '\x18'};
  const uint32_t n = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + payload;
}

// Feeds `pieces` through Update(); the first error or Finish()'s verdict.
absl::Status Verify(ContentVerifier& v, const std::vector<std::string>& pieces) {
  if (absl::Status s = v.Begin(); !s.ok()) return s;
  for (const std::string& piece : pieces) {
    if (absl::Status s = v.Update(piece); !s.ok()) return s;
  }
  return v.Finish();
}

// The same through Decode() into an output buffer of `out_size` bytes; collects the content.
absl::Status DecodeAll(ContentVerifier& v, const std::vector<std::string>& pieces, size_t out_size,
                       std::string* content) {
  if (absl::Status s = v.Begin(); !s.ok()) return s;
  std::vector<char> out(out_size);
  for (const std::string& piece : pieces) {
    std::string_view body = piece;
    while (true) {
      absl::StatusOr<size_t> n = v.Decode(&body, std::span<char>(out));
      if (!n.ok()) return n.status();
      content->append(out.data(), *n);
      if (body.empty() && *n < out.size()) break;
    }
  }
  return v.Finish();
}

struct Case {
  std::string name;
  Compression compression;
  std::string body;
  absl::StatusCode code;  // kOk: verified
  std::string reason;     // substring of the message
};

// The table, for content `original` (expected sha256: of `original`).
std::vector<Case> Cases(const std::string& original) {
  const std::string compressed = ZstdCompress(original);
  std::string corrupted = compressed;
  corrupted[corrupted.size() / 2] ^= 0x55;
  std::string bad_magic = compressed;
  bad_magic[0] ^= 0x01;
  const size_t third = original.size() / 3;
  return {
      {"plain", Compression::kNone, original, absl::StatusCode::kOk, ""},
      {"zstd", Compression::kZstd, compressed, absl::StatusCode::kOk, ""},
      {"zstd-two-frames", Compression::kZstd,
       ZstdCompress(original.substr(0, third)) + ZstdCompress(original.substr(third), 19),
       absl::StatusCode::kOk, ""},
      {"zstd-skippable-frames", Compression::kZstd,
       SkippableFrame("meta") + compressed + SkippableFrame(""), absl::StatusCode::kOk, ""},
      {"plain-wrong-digest", Compression::kNone, original.substr(1) + "!",
       absl::StatusCode::kDataLoss, "sha256 mismatch for what: expected "},
      {"zstd-wrong-digest", Compression::kZstd, ZstdCompress(original + "\n"),
       absl::StatusCode::kDataLoss, "sha256 mismatch for what"},
      // Either the decoder notices or the content is wrong: never accepted.
      {"zstd-corrupted-frame", Compression::kZstd, corrupted, absl::StatusCode::kDataLoss, ""},
      {"zstd-bad-magic", Compression::kZstd, bad_magic, absl::StatusCode::kDataLoss,
       "zstd decoding of what failed"},
      {"zstd-truncated", Compression::kZstd, compressed.substr(0, compressed.size() - 1),
       absl::StatusCode::kDataLoss, "truncated zstd stream from what"},
      {"zstd-trailing-garbage", Compression::kZstd, compressed + "garbage!",
       absl::StatusCode::kDataLoss, "zstd decoding of what failed"},
      // One byte of a next frame's magic: a frame that never ends.
      {"zstd-trailing-partial-frame", Compression::kZstd, compressed + "\x28",
       absl::StatusCode::kDataLoss, "truncated zstd stream from what"},
      {"zstd-not-compressed", Compression::kZstd, original, absl::StatusCode::kDataLoss,
       "zstd decoding of what failed"},
      {"zstd-empty-body", Compression::kZstd, "", absl::StatusCode::kDataLoss,
       "truncated zstd stream from what"},
      {"plain-empty-body", Compression::kNone, "", absl::StatusCode::kDataLoss,
       "sha256 mismatch for what"},
  };
}

void Expect(const Case& c, const absl::Status& status, const std::string& how) {
  EXPECT_EQ(status.code(), c.code) << c.name << " " << how << ": " << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(c.reason)) << c.name << " " << how;
}

Expected ShaOf(const std::string& original) {
  return {.sha256 = crypto::Sha256Of(original), .size = std::nullopt};
}

// Small enough to split everywhere, large enough for several zstd sequences.
const std::string& SmallOriginal() {
  static const std::string original = TextBytes(3000, 1);
  return original;
}
// Several zstd blocks (128 KiB each).
const std::string& LargeOriginal() {
  static const std::string original = TextBytes(300000, 2);
  return original;
}

TEST(ContentVerifierTable, WholeBody) {
  for (const std::string* original : {&SmallOriginal(), &LargeOriginal()}) {
    for (const Case& c : Cases(*original)) {
      ContentVerifier v("what", c.compression, ShaOf(*original));
      Expect(c, Verify(v, {c.body}), "whole, " + std::to_string(original->size()));
    }
  }
}

TEST(ContentVerifierTable, SplitAtEveryByteBoundary) {
  const std::string& original = SmallOriginal();
  for (const Case& c : Cases(original)) {
    for (size_t at = 0; at <= c.body.size(); ++at) {
      ContentVerifier v("what", c.compression, ShaOf(original));
      Expect(c, Verify(v, {c.body.substr(0, at), c.body.substr(at)}),
             "split at " + std::to_string(at));
    }
  }
}

TEST(ContentVerifierTable, LargeBodySplitNearItsEndsAndAcrossBlocks) {
  const std::string& original = LargeOriginal();
  for (const Case& c : Cases(original)) {
    for (size_t at = 0; at <= c.body.size(); at += (at < 64 || c.body.size() - at < 64) ? 1 : 997) {
      ContentVerifier v("what", c.compression, ShaOf(original));
      Expect(c, Verify(v, {c.body.substr(0, at), c.body.substr(at)}),
             "split at " + std::to_string(at));
    }
  }
}

TEST(ContentVerifierTable, ByteByByte) {
  const std::string& original = SmallOriginal();
  for (const Case& c : Cases(original)) {
    std::vector<std::string> pieces;
    for (char ch : c.body) pieces.emplace_back(1, ch);
    ContentVerifier v("what", c.compression, ShaOf(original));
    Expect(c, Verify(v, pieces), "byte by byte");
  }
}

TEST(ContentVerifierTable, DecodeHandsOutTheContentThroughAnyOutputSize) {
  for (const std::string* original : {&SmallOriginal(), &LargeOriginal()}) {
    for (size_t out_size : {size_t{1}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
      for (const Case& c : Cases(*original)) {
        ContentVerifier v("what", c.compression, ShaOf(*original));
        std::string content;
        const size_t mid = c.body.size() / 3;
        const absl::Status status =
            DecodeAll(v, {c.body.substr(0, mid), c.body.substr(mid)}, out_size, &content);
        Expect(c, status, "decode into " + std::to_string(out_size));
        if (c.code == absl::StatusCode::kOk) {
          EXPECT_TRUE(content == *original) << c.name << " out " << out_size;
          EXPECT_EQ(v.content_bytes(), original->size());
        }
      }
    }
  }
}

TEST(ContentVerifier, SizeIsCheckedAsBytesArriveAndAtTheEnd) {
  const std::string content = "0123456789";
  const crypto::Sha256Digest sha = crypto::Sha256Of(content);
  for (Compression compression : {Compression::kNone, Compression::kZstd}) {
    const std::string body = compression == Compression::kZstd ? ZstdCompress(content) : content;
    ContentVerifier longer("u", compression, {.sha256 = sha, .size = 9});
    ASSERT_TRUE(longer.Begin().ok());
    absl::Status s = longer.Update(body);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(s.message()), HasSubstr("size mismatch for u: expected 9 bytes"));

    ContentVerifier shorter("u", compression, {.sha256 = sha, .size = 11});
    s = Verify(shorter, {body});
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(s.message()), HasSubstr("expected 11 bytes, got 10"));

    ContentVerifier exact("u", compression, {.sha256 = sha, .size = 10});
    EXPECT_TRUE(Verify(exact, {body}).ok());
    ContentVerifier no_expectations("u", compression,
                                    {.sha256 = std::nullopt, .size = std::nullopt});
    EXPECT_TRUE(Verify(no_expectations, {body}).ok());
  }
}

TEST(ContentVerifier, BeginStartsOverAfterAFailedOrFinishedStream) {
  const std::string content = TextBytes(50000, 3);
  const std::string body = ZstdCompress(content);
  ContentVerifier v("u", Compression::kZstd,
                    {.sha256 = crypto::Sha256Of(content), .size = content.size()});
  // Half a stream, then a corrupt one, then the real one: each attempt is judged on its own.
  ASSERT_TRUE(v.Begin().ok());
  ASSERT_TRUE(v.Update(body.substr(0, body.size() / 2)).ok());
  EXPECT_FALSE(Verify(v, {RandomBytes(100, 4)}).ok());
  EXPECT_TRUE(Verify(v, {body}).ok());
  EXPECT_TRUE(Verify(v, {body}).ok());
  EXPECT_EQ(v.content_bytes(), content.size());
}

TEST(ContentVerifier, PooledContextsAreReusedAndGivenBack) {
  const std::string content = TextBytes(20000, 5);
  const std::string body = ZstdCompress(content);
  ZstdContextPool pool(1);
  for (int round = 0; round < 3; ++round) {
    ContentVerifier a("a", Compression::kZstd,
                      {.sha256 = crypto::Sha256Of(content), .size = std::nullopt}, &pool);
    ContentVerifier b("b", Compression::kZstd,
                      {.sha256 = crypto::Sha256Of(content), .size = std::nullopt}, &pool);
    EXPECT_TRUE(Verify(a, {body}).ok());
    a.ReleaseContext();
    EXPECT_TRUE(Verify(b, {body}).ok());
    EXPECT_TRUE(Verify(a, {body}).ok());  // takes a context again
  }
}

TEST(ContentVerifier, DecodeBeforeBeginIsAnError) {
  ContentVerifier v("u", Compression::kZstd, {.sha256 = std::nullopt, .size = std::nullopt});
  std::string_view body = "x";
  char out[16];
  EXPECT_EQ(v.Decode(&body, out).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ota::content
