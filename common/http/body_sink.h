// Where the body of a successful response goes, one sink per fetched resource, reused by each
// of its attempts (internal to the curl fetcher; see curl_fetcher.h for the guarantees).
//
// Status codes: kDataLoss means "the content was wrong" (another attempt may help); any other
// error is final (a local failure such as a full disk).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/content/verifier.h"
#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/http/fetcher.h"

namespace ota::http {

class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual absl::Status BeginAttempt() = 0;
  virtual absl::Status Write(const char* data, size_t size) = 0;
  // The body is complete: verify it.
  virtual absl::Status EndAttempt() = 0;
  // The verified content becomes visible.
  virtual absl::Status Commit() = 0;
  // The attempt is over, whatever its outcome: give back memory held only while it runs (a job
  // waiting for its retry should not hold a write buffer). With `keep_stream` (the next attempt
  // continues this body, after Suspend()) the decoder state stays.
  virtual void ReleaseAttemptResources(bool /*keep_stream*/) {}

  // Byte-range resume: a sink that can continue a body across attempts says so. After a cut
  // attempt, Suspend() puts everything taken so far where the next attempt finds it (an error:
  // the stream cannot continue; start over with BeginAttempt()); ContinueAttempt() then starts an
  // attempt that feeds the rest of the same body, hash and decoder state carried on.
  virtual bool CanResume() const { return false; }
  virtual absl::Status Suspend() { return absl::FailedPreconditionError("sink cannot resume"); }
  virtual absl::Status ContinueAttempt() {
    return absl::FailedPreconditionError("sink cannot resume");
  }
  virtual uint64_t content_bytes() const = 0;

  // How the body of the attempt in flight is compressed. Before its first byte an attempt may
  // say otherwise (a proxy answering from its cache, e.g. with a .zst blob for an uncompressed
  // request); the next fresh attempt expects what the job asked for again. A sink that cannot
  // decode `compression` refuses with kDataLoss (the answer is not the content asked for).
  virtual content::Compression body_compression() const { return content::Compression::kNone; }
  virtual absl::Status AdoptBodyCompression(content::Compression compression) {
    if (compression == content::Compression::kNone) return absl::OkStatus();
    return absl::DataLossError("a compressed body where an uncompressed one was asked for");
  }
};

// A small resource into memory (Fetcher::Get).
class MemorySink final : public BodySink {
 public:
  MemorySink(const std::string& url, const GetOptions& options);

  absl::Status BeginAttempt() override;
  absl::Status Write(const char* data, size_t size) override;
  absl::Status EndAttempt() override { return check_.Finish(); }
  absl::Status Commit() override { return absl::OkStatus(); }
  uint64_t content_bytes() const override { return body_.size(); }

  std::string TakeBody() { return std::move(body_); }

 private:
  std::string url_;
  size_t max_bytes_;
  bool has_expected_hash_;
  content::ContentVerifier check_;
  std::string body_;
};

// Streams (and zstd-decodes) into ".<name>.ota-partial.<random>" beside dest; renames onto dest
// only after verification. Decoded bytes are hashed as they come and collected in a buffer of
// up to 1 MiB, so a small file costs one write() and a big one a write() per MiB.
// No fsync per file: that would cost more than the download on flash; the caller syncs the file
// system once after the whole batch.
class FileSink final : public BodySink {
 public:
  // `zstd_pool` (needed for kZstd only) must outlive the sink.
  FileSink(std::string url, std::filesystem::path dest, const crypto::Sha256Digest& sha256,
           std::optional<uint64_t> size, content::Compression compression,
           content::ZstdContextPool* zstd_pool = nullptr);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  absl::Status BeginAttempt() override;
  absl::Status Write(const char* data, size_t size) override;
  absl::Status EndAttempt() override;
  absl::Status Commit() override;
  void ReleaseAttemptResources(bool keep_stream) override;
  bool CanResume() const override { return true; }
  absl::Status Suspend() override;
  absl::Status ContinueAttempt() override;
  uint64_t content_bytes() const override { return check_.content_bytes(); }
  content::Compression body_compression() const override { return check_.compression(); }
  absl::Status AdoptBodyCompression(content::Compression compression) override;

 private:
  absl::Status CreateTemp();
  // Writes out what is buffered; makes sure there is a buffer to fill next.
  absl::Status Flush();
  void Discard();

  std::filesystem::path dest_;
  const content::Compression requested_compression_;  // what the job asked for
  content::ContentVerifier check_;
  std::filesystem::path temp_path_;
  fs::UniqueFd fd_;
  uint64_t file_bytes_ = 0;  // written to the temp file by this attempt
  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_;
  size_t buffered_ = 0;
};

}  // namespace ota::http
