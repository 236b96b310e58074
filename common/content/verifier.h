// Streaming check of one download's content: body bytes in (zstd-decoded when the body is
// compressed), the content's size and sha256 verified as the bytes pass and at the end. The one
// implementation behind the fetcher's sinks (common/http) and otaproxy's cache fill.
//
//   ContentVerifier v("https://host/blob", Compression::kZstd, {.sha256 = digest});
//   OTA_RETURN_IF_ERROR(v.Begin());
//   for (piece : body) OTA_RETURN_IF_ERROR(v.Update(piece));   // or Decode(): keep the content
//   OTA_RETURN_IF_ERROR(v.Finish());
//
// zstd: one or more concatenated frames (skippable frames included); the body must end at the
// end of a frame, an empty body is not a zstd stream, anything after the last frame that does
// not start another frame is an error. Every content error is kDataLoss ("the bytes are wrong";
// another download may help) and names `what`; kResourceExhausted when no zstd context can be
// made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/content/compression.h"
#include "common/crypto/sha256.h"

struct ZSTD_DCtx_s;  // zstd.h: typedef struct ZSTD_DCtx_s ZSTD_DCtx

namespace ota::content {

struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx_s* ctx) const;
};
using UniqueZstdDCtx = std::unique_ptr<ZSTD_DCtx_s, ZstdDCtxDeleter>;

// zstd decoding contexts are large (~100 KiB) and cost a lot to set up: the streams of one
// session share a few. Not thread-safe; must outlive the verifiers that use it.
class ZstdContextPool {
 public:
  explicit ZstdContextPool(size_t keep) : keep_(keep) {}
  absl::StatusOr<UniqueZstdDCtx> Acquire();
  // Kept for the next Acquire() while fewer than `keep` are idle; freed otherwise.
  void Release(UniqueZstdDCtx ctx);

 private:
  size_t keep_;
  std::vector<UniqueZstdDCtx> idle_;
};

struct Expected {
  std::optional<crypto::Sha256Digest> sha256;  // of the (decoded) content
  std::optional<uint64_t> size;                // of the (decoded) content
};

class ContentVerifier {
 public:
  // `what` names the content in every message (a URL). kZstd contexts come from `pool` when
  // given (and go back to it on ReleaseContext() and destruction), else are made and owned here.
  ContentVerifier(std::string what, Compression compression, Expected expected,
                  ZstdContextPool* pool = nullptr);
  ~ContentVerifier();
  ContentVerifier(const ContentVerifier&) = delete;
  ContentVerifier& operator=(const ContentVerifier&) = delete;

  // Starts a stream, forgetting anything fed before (each download attempt begins with it).
  absl::Status Begin();
  // Begin(), for a body compressed as `compression` from now on (a proxy's answer may say the
  // body is not what was asked for: Ota-File-Cache-Control's file_compression_alg).
  absl::Status Restart(Compression compression);
  Compression compression() const { return compression_; }
  // Takes body bytes from the front of `*body` and puts the content they decode to into `out`
  // (non-empty), checked; returns how many bytes of `out` it filled. Call again while `*body`
  // is not empty or `out` came back full (zstd may hold more output).
  absl::StatusOr<size_t> Decode(std::string_view* body, std::span<char> out);
  // Feeds body bytes when only the verdict is wanted (the content itself is not kept).
  absl::Status Update(std::string_view body);
  // The body is complete: the last zstd frame ended, size and sha256 are as expected.
  absl::Status Finish();
  // Hands a pooled zstd context back between streams (a download waiting for its retry should
  // not hold one); Begin() takes one again.
  void ReleaseContext();

  // Content bytes of the current (or last finished) stream.
  uint64_t content_bytes() const { return content_bytes_; }

 private:
  absl::Status Check(const char* data, size_t size);

  std::string what_;
  Compression compression_;
  Expected expected_;
  ZstdContextPool* pool_;
  UniqueZstdDCtx zstd_;
  std::unique_ptr<char[]> scratch_;  // Update()'s output buffer for zstd
  crypto::Sha256 hasher_;
  bool hasher_fed_ = false;  // holds bytes of an unfinished stream
  uint64_t content_bytes_ = 0;
  bool frame_open_ = false;
  bool saw_input_ = false;
};

}  // namespace ota::content
