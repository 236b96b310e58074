#include "common/http/body_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <random>
#include <span>
#include <string_view>
#include <utility>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::http {
namespace {

// Decoded content is written in pieces of up to this size (curl hands bodies out 16 KiB at a
// time); a small file is written with one write().
constexpr size_t kWriteChunkBytes = 1 << 20;
constexpr size_t kMinWriteBufferBytes = 4096;

uint64_t RandomU64() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

}  // namespace

MemorySink::MemorySink(const std::string& url, const GetOptions& options)
    : url_(url),
      max_bytes_(options.max_bytes),
      has_expected_hash_(options.expected_sha256.has_value()),
      check_(url, content::Compression::kNone,
             {.sha256 = options.expected_sha256, .size = std::nullopt}) {}

absl::Status MemorySink::BeginAttempt() {
  body_.clear();
  return check_.Begin();
}

absl::Status MemorySink::Write(const char* data, size_t size) {
  if (body_.size() + size > max_bytes_) {
    std::string msg = StrCat("GET ", url_, ": body exceeds the limit of ", max_bytes_, " bytes");
    // With a known hash an oversized body is simply wrong content, worth a retry.
    return has_expected_hash_ ? absl::DataLossError(msg) : absl::InvalidArgumentError(msg);
  }
  body_.append(data, size);
  return check_.Update(std::string_view(data, size));
}

FileSink::FileSink(std::string url, std::filesystem::path dest, const crypto::Sha256Digest& sha256,
                   std::optional<uint64_t> size, content::Compression compression,
                   content::ZstdContextPool* zstd_pool)
    : dest_(std::move(dest)),
      requested_compression_(compression),
      check_(std::move(url), compression, {.sha256 = sha256, .size = size}, zstd_pool),
      buffer_capacity_(std::clamp<uint64_t>(size.value_or(kWriteChunkBytes), kMinWriteBufferBytes,
                                            kWriteChunkBytes)) {}

FileSink::~FileSink() {
  ReleaseAttemptResources(/*keep_stream=*/false);
  Discard();
}

absl::Status FileSink::BeginAttempt() {
  if (!fd_.valid()) {
    OTA_RETURN_IF_ERROR(CreateTemp());
  } else if (file_bytes_ > 0) {
    if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0) {
      return ErrnoStatus(errno, StrCat("truncate ", temp_path_.string()));
    }
    file_bytes_ = 0;
  }
  buffered_ = 0;
  return check_.Restart(requested_compression_);
}

absl::Status FileSink::AdoptBodyCompression(content::Compression compression) {
  if (compression == check_.compression()) return absl::OkStatus();
  if (check_.content_bytes() > 0 || file_bytes_ > 0 || buffered_ > 0) {
    return absl::FailedPreconditionError("the body's compression changes only before its start");
  }
  return check_.Restart(compression);
}

absl::Status FileSink::Write(const char* data, size_t size) {
  std::string_view body(data, size);
  // Decode straight into the write buffer; keep going while input remains or the buffer came
  // back full (more output may be pending).
  while (true) {
    if (!buffer_ || buffered_ == buffer_capacity_) OTA_RETURN_IF_ERROR(Flush());
    const size_t space = buffer_capacity_ - buffered_;
    OTA_ASSIGN_OR_RETURN(size_t n,
                         check_.Decode(&body, std::span<char>(buffer_.get() + buffered_, space)));
    buffered_ += n;
    if (body.empty() && n < space) return absl::OkStatus();
  }
}

absl::Status FileSink::EndAttempt() {
  OTA_RETURN_IF_ERROR(check_.Finish());
  return Flush();
}

absl::Status FileSink::Commit() {
  if (!fd_.valid()) OTA_RETURN_IF_ERROR(BeginAttempt());  // nothing was ever written
  if (::close(fd_.release()) != 0) {
    return ErrnoStatus(errno, StrCat("close ", temp_path_.string()));
  }
  if (::rename(temp_path_.c_str(), dest_.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("rename ", temp_path_.string(), " to ", dest_.string()));
  }
  temp_path_.clear();
  return absl::OkStatus();
}

void FileSink::ReleaseAttemptResources(bool keep_stream) {
  // Suspend() flushed the buffer of a stream that is kept; otherwise its bytes are dropped with it.
  buffer_.reset();
  buffered_ = 0;
  if (!keep_stream) check_.ReleaseContext();
}

absl::Status FileSink::Suspend() {
  if (!fd_.valid()) return absl::FailedPreconditionError("no stream to suspend");
  // Every byte taken so far was decoded into the buffer (Write() leaves nothing pending in the
  // decoder's output); written out, the file holds exactly what the hash and decoder have seen.
  return Flush();
}

absl::Status FileSink::ContinueAttempt() {
  if (!fd_.valid()) return absl::FailedPreconditionError("no stream to continue");
  buffered_ = 0;
  return absl::OkStatus();
}

absl::Status FileSink::CreateTemp() {
  std::filesystem::path dir = dest_.parent_path();
  if (dir.empty()) dir = ".";
  for (int tries = 0; tries < 16; ++tries) {
    char suffix[17];
    std::snprintf(suffix, sizeof(suffix), "%016llx", static_cast<unsigned long long>(RandomU64()));
    std::filesystem::path candidate =
        dir / StrCat(".", dest_.filename().string(), ".ota-partial.", suffix);
    int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      fd_ = fs::UniqueFd(fd);
      temp_path_ = std::move(candidate);
      return absl::OkStatus();
    }
    if (errno != EEXIST) return ErrnoStatus(errno, StrCat("create ", candidate.string()));
  }
  return absl::InternalError(StrCat("no free temp file name beside ", dest_.string()));
}

absl::Status FileSink::Flush() {
  if (!buffer_) buffer_ = std::make_unique_for_overwrite<char[]>(buffer_capacity_);
  if (buffered_ == 0) return absl::OkStatus();
  OTA_RETURN_IF_ERROR(fs::WriteAll(fd_.get(), buffer_.get(), buffered_, temp_path_.string()));
  file_bytes_ += buffered_;
  buffered_ = 0;
  return absl::OkStatus();
}

void FileSink::Discard() {
  fd_.Reset();
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

}  // namespace ota::http
