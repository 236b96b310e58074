#include "common/content/verifier.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/util/strings.h"

namespace ota::content {

void ZstdDCtxDeleter::operator()(ZSTD_DCtx_s* ctx) const { ZSTD_freeDCtx(ctx); }

absl::StatusOr<UniqueZstdDCtx> ZstdContextPool::Acquire() {
  if (idle_.empty()) {
    UniqueZstdDCtx ctx(ZSTD_createDCtx());
    if (!ctx) return absl::ResourceExhaustedError("ZSTD_createDCtx failed");
    return ctx;
  }
  UniqueZstdDCtx ctx = std::move(idle_.back());
  idle_.pop_back();
  return ctx;
}

void ZstdContextPool::Release(UniqueZstdDCtx ctx) {
  if (ctx && idle_.size() < keep_) idle_.push_back(std::move(ctx));
}

ContentVerifier::ContentVerifier(std::string what, Compression compression, Expected expected,
                                 ZstdContextPool* pool)
    : what_(std::move(what)), compression_(compression), expected_(expected), pool_(pool) {}

ContentVerifier::~ContentVerifier() { ReleaseContext(); }

absl::Status ContentVerifier::Begin() {
  // A fresh or finished hasher is ready as is; only a half-fed one is replaced.
  if (hasher_fed_) hasher_ = crypto::Sha256();
  hasher_fed_ = false;
  content_bytes_ = 0;
  frame_open_ = false;
  saw_input_ = false;
  if (compression_ != Compression::kZstd) return absl::OkStatus();
  if (!zstd_) {
    if (pool_ != nullptr) {
      absl::StatusOr<UniqueZstdDCtx> ctx = pool_->Acquire();
      if (!ctx.ok()) return ctx.status();
      zstd_ = *std::move(ctx);
    } else {
      zstd_.reset(ZSTD_createDCtx());
      if (!zstd_) return absl::ResourceExhaustedError("ZSTD_createDCtx failed");
    }
  }
  ZSTD_DCtx_reset(zstd_.get(), ZSTD_reset_session_only);
  return absl::OkStatus();
}

absl::Status ContentVerifier::Restart(Compression compression) {
  if (compression != compression_) {
    ReleaseContext();
    compression_ = compression;
  }
  return Begin();
}

absl::Status ContentVerifier::Check(const char* data, size_t size) {
  if (expected_.size && content_bytes_ + size > *expected_.size) {
    return absl::DataLossError(
        StrCat("size mismatch for ", what_, ": expected ", *expected_.size, " bytes, got more"));
  }
  hasher_.Update(data, size);
  hasher_fed_ = true;
  content_bytes_ += size;
  return absl::OkStatus();
}

absl::StatusOr<size_t> ContentVerifier::Decode(std::string_view* body, std::span<char> out) {
  if (compression_ != Compression::kZstd) {
    const size_t n = std::min(body->size(), out.size());
    if (absl::Status checked = Check(body->data(), n); !checked.ok()) return checked;
    std::memcpy(out.data(), body->data(), n);
    body->remove_prefix(n);
    return n;
  }
  if (!zstd_) return absl::FailedPreconditionError("ContentVerifier: Decode() before Begin()");
  if (!body->empty()) saw_input_ = true;
  ZSTD_inBuffer in{body->data(), body->size(), 0};
  ZSTD_outBuffer decoded{out.data(), out.size(), 0};
  const size_t ret = ZSTD_decompressStream(zstd_.get(), &decoded, &in);
  if (ZSTD_isError(ret)) {
    return absl::DataLossError(
        StrCat("zstd decoding of ", what_, " failed: ", ZSTD_getErrorName(ret)));
  }
  // A call that only looked for pending output after a finished frame says nothing new (it
  // would report the size hint of a next frame that never comes).
  if (in.pos > 0 || decoded.pos > 0) frame_open_ = ret != 0;
  body->remove_prefix(in.pos);
  if (absl::Status checked = Check(out.data(), decoded.pos); !checked.ok()) return checked;
  return decoded.pos;
}

absl::Status ContentVerifier::Update(std::string_view body) {
  if (compression_ != Compression::kZstd) return Check(body.data(), body.size());
  const size_t scratch_size = ZSTD_DStreamOutSize();
  if (!scratch_) scratch_ = std::make_unique_for_overwrite<char[]>(scratch_size);
  while (true) {
    absl::StatusOr<size_t> n = Decode(&body, std::span<char>(scratch_.get(), scratch_size));
    if (!n.ok()) return n.status();
    if (body.empty() && *n < scratch_size) return absl::OkStatus();
  }
}

absl::Status ContentVerifier::Finish() {
  if (compression_ == Compression::kZstd && (!saw_input_ || frame_open_)) {
    return absl::DataLossError(StrCat("truncated zstd stream from ", what_));
  }
  const crypto::Sha256Digest actual = hasher_.Finish();
  hasher_fed_ = false;
  if (expected_.size && content_bytes_ != *expected_.size) {
    return absl::DataLossError(StrCat("size mismatch for ", what_, ": expected ", *expected_.size,
                                      " bytes, got ", content_bytes_));
  }
  if (expected_.sha256 && actual != *expected_.sha256) {
    return absl::DataLossError(StrCat("sha256 mismatch for ", what_, ": expected ",
                                      crypto::ToHex(*expected_.sha256), " got ",
                                      crypto::ToHex(actual)));
  }
  return absl::OkStatus();
}

void ContentVerifier::ReleaseContext() {
  if (!zstd_) return;
  if (pool_ != nullptr) {
    pool_->Release(std::move(zstd_));
  } else {
    zstd_.reset();
  }
  scratch_.reset();
}

}  // namespace ota::content
