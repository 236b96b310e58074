#include "common/http/curl_fetcher.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::http {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUserAgent[] = "otaclient-cpp/0.1";
constexpr char kCacheControlHeader[] = "Ota-File-Cache-Control: ";
// Cancellation and backoff deadlines are checked at least this often while waiting.
constexpr int kMaxPollMs = 100;
// Jobs waiting for a retry hold a temp file; bound how many may wait besides the active ones.
constexpr size_t kWaitingPerSlot = 4;
// curl's receive buffer: large reads keep the syscall count low on big files.
constexpr long kReceiveBufferBytes = 256 * 1024;
// Decoded content is written in pieces of up to this size (curl hands bodies out 16 KiB at a
// time); a small file is written with one write().
constexpr size_t kWriteChunkBytes = 1 << 20;
constexpr size_t kMinWriteBufferBytes = 4096;
constexpr int kMaxEpollEvents = 64;

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
using UniqueEasy = std::unique_ptr<CURL, EasyDeleter>;
struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
using UniqueMulti = std::unique_ptr<CURLM, MultiDeleter>;
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using UniqueSlist = std::unique_ptr<curl_slist, SlistDeleter>;
struct ZstdDeleter {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};
using UniqueZstd = std::unique_ptr<ZSTD_DCtx, ZstdDeleter>;
struct ShareDeleter {
  void operator()(CURLSH* share) const { curl_share_cleanup(share); }
};
using UniqueShare = std::unique_ptr<CURLSH, ShareDeleter>;

void CurlGlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Upstream behaviour: with a proxy, https URLs are requested as plain http absolute-form
// requests and the proxy does TLS upstream (no CONNECT tunnels).
std::string RequestUrl(const std::string& url, bool via_proxy) {
  constexpr std::string_view kHttps = "https://";
  if (via_proxy && url.size() >= kHttps.size() &&
      ::strncasecmp(url.c_str(), kHttps.data(), kHttps.size()) == 0) {
    return StrCat("http://", std::string_view(url).substr(kHttps.size()));
  }
  return url;
}

std::string CookieHeaderValue(const std::map<std::string, std::string>& cookies) {
  std::string out;
  for (const auto& [name, value] : cookies) {
    if (!out.empty()) out.append("; ");
    StrAppend(&out, name, "=", value);
  }
  return out;
}

uint64_t RandomU64() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// Size and sha256 of the decoded content, checked as bytes arrive and at the end.
class ContentCheck {
 public:
  ContentCheck(std::string url, std::optional<crypto::Sha256Digest> sha256,
               std::optional<uint64_t> size)
      : url_(std::move(url)), expected_sha256_(sha256), expected_size_(size) {}

  void Reset() {
    if (bytes_ != 0) hasher_ = crypto::Sha256();  // a fresh or finished hasher is ready as is
    bytes_ = 0;
  }
  absl::Status Add(const void* data, size_t size) {
    if (expected_size_ && bytes_ + size > *expected_size_) {
      return absl::DataLossError(
          StrCat("size mismatch for ", url_, ": expected ", *expected_size_, " bytes, got more"));
    }
    hasher_.Update(data, size);
    bytes_ += size;
    return absl::OkStatus();
  }
  absl::Status Finish() {
    crypto::Sha256Digest actual = hasher_.Finish();
    if (expected_size_ && bytes_ != *expected_size_) {
      return absl::DataLossError(StrCat("size mismatch for ", url_, ": expected ", *expected_size_,
                                        " bytes, got ", bytes_));
    }
    if (expected_sha256_ && actual != *expected_sha256_) {
      return absl::DataLossError(StrCat("sha256 mismatch for ", url_, ": expected ",
                                        crypto::ToHex(*expected_sha256_), " got ",
                                        crypto::ToHex(actual)));
    }
    return absl::OkStatus();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string url_;
  std::optional<crypto::Sha256Digest> expected_sha256_;
  std::optional<uint64_t> expected_size_;
  crypto::Sha256 hasher_;
  uint64_t bytes_ = 0;
};

// Where the body of a successful response goes; one per job, reused by each attempt.
// Status codes: kDataLoss means "the content was wrong" (another attempt may help); any other
// error is final (a local failure such as a full disk).
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
  // waiting for its retry should not hold a write buffer).
  virtual void ReleaseAttemptResources() {}
  virtual uint64_t content_bytes() const = 0;
};

class MemorySink final : public BodySink {
 public:
  MemorySink(const std::string& url, const GetOptions& options)
      : url_(url),
        max_bytes_(options.max_bytes),
        has_expected_hash_(options.expected_sha256.has_value()),
        check_(url, options.expected_sha256, std::nullopt) {}

  absl::Status BeginAttempt() override {
    body_.clear();
    check_.Reset();
    return absl::OkStatus();
  }
  absl::Status Write(const char* data, size_t size) override {
    if (body_.size() + size > max_bytes_) {
      std::string msg = StrCat("GET ", url_, ": body exceeds the limit of ", max_bytes_, " bytes");
      // With a known hash an oversized body is simply wrong content, worth a retry.
      return has_expected_hash_ ? absl::DataLossError(msg) : absl::InvalidArgumentError(msg);
    }
    body_.append(data, size);
    return check_.Add(data, size);
  }
  absl::Status EndAttempt() override { return check_.Finish(); }
  absl::Status Commit() override { return absl::OkStatus(); }
  uint64_t content_bytes() const override { return body_.size(); }

  std::string TakeBody() { return std::move(body_); }

 private:
  std::string url_;
  size_t max_bytes_;
  bool has_expected_hash_;
  ContentCheck check_;
  std::string body_;
};

// zstd decoding contexts are large (~100 KiB) and cost a lot to set up; the active downloads of
// a session share a few.
class ZstdPool {
 public:
  absl::StatusOr<UniqueZstd> Acquire() {
    if (idle_.empty()) {
      UniqueZstd ctx(ZSTD_createDCtx());
      if (!ctx) return absl::ResourceExhaustedError("ZSTD_createDCtx failed");
      return ctx;
    }
    UniqueZstd ctx = std::move(idle_.back());
    idle_.pop_back();
    return ctx;
  }
  void Release(UniqueZstd ctx, size_t keep) {
    if (ctx && idle_.size() < keep) idle_.push_back(std::move(ctx));
  }

 private:
  std::vector<UniqueZstd> idle_;
};

// Streams (and zstd-decodes) into ".<name>.ota-partial.<random>" beside dest; renames onto dest
// only after verification. Decoded bytes are hashed as they come and collected in a buffer of
// up to kWriteChunkBytes, so a small file costs one write() and a big one a write() per MiB.
// No fsync per file: that would cost more than the download on flash; the caller syncs the file
// system once after the whole batch.
class FileSink final : public BodySink {
 public:
  // `zstd_pool` (needed for kZstd only) must outlive the sink; `pool_keep` bounds its size.
  FileSink(std::string url, std::filesystem::path dest, const crypto::Sha256Digest& sha256,
           std::optional<uint64_t> size, image::Compression compression,
           ZstdPool* zstd_pool = nullptr, size_t pool_keep = 0)
      : url_(url),
        dest_(std::move(dest)),
        compression_(compression),
        check_(std::move(url), sha256, size),
        buffer_capacity_(std::clamp<uint64_t>(size.value_or(kWriteChunkBytes), kMinWriteBufferBytes,
                                              kWriteChunkBytes)),
        zstd_pool_(zstd_pool),
        pool_keep_(pool_keep) {}
  ~FileSink() override {
    ReleaseAttemptResources();
    Discard();
  }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  absl::Status BeginAttempt() override {
    if (!fd_.valid()) {
      OTA_RETURN_IF_ERROR(CreateTemp());
    } else if (file_bytes_ > 0) {
      if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0) {
        return ErrnoStatus(errno, StrCat("truncate ", temp_path_.string()));
      }
      file_bytes_ = 0;
    }
    check_.Reset();
    buffered_ = 0;
    if (compression_ == image::Compression::kZstd) {
      if (!zstd_) {
        if (zstd_pool_ == nullptr) return absl::InternalError("zstd job without a zstd pool");
        OTA_ASSIGN_OR_RETURN(zstd_, zstd_pool_->Acquire());
      }
      ZSTD_DCtx_reset(zstd_.get(), ZSTD_reset_session_only);
      zstd_frame_open_ = false;
      zstd_saw_input_ = false;
    }
    return absl::OkStatus();
  }

  absl::Status Write(const char* data, size_t size) override {
    if (compression_ != image::Compression::kZstd) return Append(data, size);
    if (size > 0) zstd_saw_input_ = true;
    ZSTD_inBuffer in{data, size, 0};
    // Decode straight into the write buffer; keep going while input remains or the buffer came
    // back full (more output may be pending).
    while (true) {
      if (!buffer_ || buffered_ == buffer_capacity_) OTA_RETURN_IF_ERROR(Flush());
      ZSTD_outBuffer out{buffer_.get() + buffered_, buffer_capacity_ - buffered_, 0};
      const size_t in_before = in.pos;
      size_t ret = ZSTD_decompressStream(zstd_.get(), &out, &in);
      if (ZSTD_isError(ret)) {
        return absl::DataLossError(
            StrCat("zstd decoding of ", url_, " failed: ", ZSTD_getErrorName(ret)));
      }
      // A call that only checked for pending output after a finished frame says nothing new
      // (it would report the size hint of a next frame that never comes).
      if (in.pos != in_before || out.pos > 0) zstd_frame_open_ = ret != 0;
      if (out.pos > 0) {
        OTA_RETURN_IF_ERROR(check_.Add(buffer_.get() + buffered_, out.pos));
        buffered_ += out.pos;
      }
      if (in.pos == in.size && out.pos < out.size) break;
    }
    return absl::OkStatus();
  }

  absl::Status EndAttempt() override {
    if (compression_ == image::Compression::kZstd && (!zstd_saw_input_ || zstd_frame_open_)) {
      return absl::DataLossError(StrCat("truncated zstd stream from ", url_));
    }
    OTA_RETURN_IF_ERROR(check_.Finish());
    return Flush();
  }

  absl::Status Commit() override {
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

  void ReleaseAttemptResources() override {
    buffer_.reset();
    buffered_ = 0;
    if (zstd_) zstd_pool_->Release(std::move(zstd_), pool_keep_);
  }

  uint64_t content_bytes() const override { return check_.bytes(); }

 private:
  absl::Status CreateTemp() {
    std::filesystem::path dir = dest_.parent_path();
    if (dir.empty()) dir = ".";
    for (int tries = 0; tries < 16; ++tries) {
      char suffix[17];
      std::snprintf(suffix, sizeof(suffix), "%016llx",
                    static_cast<unsigned long long>(RandomU64()));
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

  // Plain content: verified, then buffered.
  absl::Status Append(const char* data, size_t size) {
    OTA_RETURN_IF_ERROR(check_.Add(data, size));
    while (size > 0) {
      if (!buffer_ || buffered_ == buffer_capacity_) OTA_RETURN_IF_ERROR(Flush());
      size_t n = std::min(size, buffer_capacity_ - buffered_);
      std::memcpy(buffer_.get() + buffered_, data, n);
      buffered_ += n;
      data += n;
      size -= n;
    }
    return absl::OkStatus();
  }

  // Writes out what is buffered; makes sure there is a buffer to fill next.
  absl::Status Flush() {
    if (!buffer_) buffer_ = std::make_unique_for_overwrite<char[]>(buffer_capacity_);
    if (buffered_ == 0) return absl::OkStatus();
    OTA_RETURN_IF_ERROR(fs::WriteAll(fd_.get(), buffer_.get(), buffered_, temp_path_.string()));
    file_bytes_ += buffered_;
    buffered_ = 0;
    return absl::OkStatus();
  }

  void Discard() {
    fd_.Reset();
    if (!temp_path_.empty()) {
      ::unlink(temp_path_.c_str());
      temp_path_.clear();
    }
  }

  std::string url_;
  std::filesystem::path dest_;
  image::Compression compression_;
  ContentCheck check_;
  std::filesystem::path temp_path_;
  fs::UniqueFd fd_;
  uint64_t file_bytes_ = 0;  // written to the temp file by this attempt
  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_;
  size_t buffered_ = 0;
  ZstdPool* zstd_pool_;
  size_t pool_keep_;
  UniqueZstd zstd_;
  bool zstd_frame_open_ = false;
  bool zstd_saw_input_ = false;
};

// One resource to fetch, across all its attempts.
struct Task {
  uint64_t tag = 0;
  std::string url;  // as requested (https→http when proxied); named in every message
  // Ota-File-Cache-Control directives, before and after a content mismatch (empty = no header).
  std::string cache_control;
  std::string cache_control_after_mismatch;
  std::unique_ptr<BodySink> sink;
  // Set when the task needs no request at all (empty file): its final status.
  std::optional<absl::Status> precompleted;

  int attempts = 0;
  bool content_mismatch_seen = false;
  Clock::time_point due{};
  uint64_t network_bytes = 0;

  // The attempt in flight.
  UniqueEasy easy;
  UniqueSlist headers;
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  absl::Status write_error;
  const TransferObserver* observer = nullptr;
};

size_t OnBody(char* data, size_t size, size_t nmemb, void* user);

// A multi handle driven through curl's socket interface over an epoll set, and the idle easy
// handles that go with it. The multi handle owns the connection cache, so connections are reused
// across calls; the share handle keeps TLS sessions for new connections to the same server.
//
// Why not curl_multi_perform + curl_multi_poll: perform visits every transfer on each wake-up
// (with a poll() per transfer), and poll() re-registers every socket each time. With the socket
// interface curl only runs the transfers whose socket is ready, and a transfer that needs no
// socket (file://) runs to completion from the timer without any waiting.
class Session {
 public:
  Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  absl::Status Init(const FetcherConfig& config, const std::string& cookie_header) {
    config_ = &config;
    cookie_header_ = &cookie_header;
    const long max_parallel = std::max(config.max_parallel, 1);
    int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) return ErrnoStatus(errno, "epoll_create1 for the transfer loop");
    epoll_ = fs::UniqueFd(epoll_fd);
    share_.reset(curl_share_init());
    if (!share_) return absl::InternalError("curl_share_init failed");
    curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    multi_.reset(curl_multi_init());
    if (!multi_) return absl::InternalError("curl_multi_init failed");
    curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, max_parallel);
    curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, max_parallel);
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &Session::OnSocket);
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &Session::OnTimer);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
    max_idle_ = static_cast<size_t>(max_parallel);
    return absl::OkStatus();
  }
  CURLM* multi() const { return multi_.get(); }
  std::mutex& mutex() { return mu_; }
  ZstdPool& zstd_pool() { return zstd_pool_; }
  size_t max_idle() const { return max_idle_; }

  // An easy handle with the options every transfer shares already set (set once per handle,
  // not per transfer).
  UniqueEasy Acquire() {
    if (!idle_.empty()) {
      UniqueEasy easy = std::move(idle_.back());
      idle_.pop_back();
      return easy;
    }
    UniqueEasy easy(curl_easy_init());
    if (easy) SetCommonOptions(easy.get());
    return easy;
  }
  void Release(UniqueEasy easy) {
    if (!easy || idle_.size() >= max_idle_) return;
    // The attempt's buffers die with its task; curl must not keep pointers to them.
    curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, nullptr);
    curl_easy_setopt(easy.get(), CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, nullptr);
    idle_.push_back(std::move(easy));
  }

  // Waits up to `max_wait_ms` (less when curl's timer is due earlier) for socket activity, then
  // lets curl act on the ready sockets and on its expired timer.
  absl::Status Drive(int max_wait_ms) {
    const Clock::time_point now = Clock::now();
    const bool timer_due = timer_ && *timer_ <= now;
    // A due timer (transfers just added, or one that needs no socket such as file://) is acted
    // on without asking the kernel first; but never twice in a row, so that transfers waiting on
    // their sockets are not starved by others that keep the timer at zero.
    if (!timer_due || timer_only_last_time_) {
      int wait_ms = 0;
      if (!timer_due) {
        wait_ms = max_wait_ms;
        if (timer_) {
          auto until = std::chrono::ceil<std::chrono::milliseconds>(*timer_ - now).count();
          wait_ms = static_cast<int>(std::clamp<int64_t>(until, 0, wait_ms));
        }
      }
      std::array<epoll_event, kMaxEpollEvents> events;
      int ready = ::epoll_wait(epoll_.get(), events.data(), kMaxEpollEvents, wait_ms);
      if (ready < 0) {
        if (errno != EINTR) return ErrnoStatus(errno, "epoll_wait in the transfer loop");
        ready = 0;
      }
      for (int i = 0; i < ready; ++i) {
        const uint32_t got = events[i].events;
        int bits = 0;
        // A hang-up is reported as readable so that curl reads the EOF or the error.
        if ((got & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) != 0) bits |= CURL_CSELECT_IN;
        if ((got & EPOLLOUT) != 0) bits |= CURL_CSELECT_OUT;
        if ((got & EPOLLERR) != 0) bits |= CURL_CSELECT_ERR;
        OTA_RETURN_IF_ERROR(Act(events[i].data.fd, bits));
      }
      timer_only_last_time_ = false;
    } else {
      timer_only_last_time_ = true;
    }
    if (timer_ && *timer_ <= Clock::now()) {
      timer_.reset();  // curl sets the next one from inside the call
      OTA_RETURN_IF_ERROR(Act(CURL_SOCKET_TIMEOUT, 0));
    }
    return absl::OkStatus();
  }

 private:
  void SetCommonOptions(CURL* easy) const {
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
    // "" also disables http_proxy & co. from the environment: only the configured proxy counts.
    curl_easy_setopt(easy, CURLOPT_PROXY, config_->proxy.c_str());
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, static_cast<long>(config_->connect_timeout_s));
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, static_cast<long>(config_->low_speed_timeout_s));
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, kUserAgent);
    curl_easy_setopt(easy, CURLOPT_SHARE, share_.get());
    if (!config_->ca_bundle.empty()) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, config_->ca_bundle.c_str());
    }
    if (!cookie_header_->empty()) curl_easy_setopt(easy, CURLOPT_COOKIE, cookie_header_->c_str());
  }

  absl::Status Act(curl_socket_t fd, int bits) {
    int running = 0;
    CURLMcode mc = curl_multi_socket_action(multi_.get(), fd, bits, &running);
    if (mc != CURLM_OK) {
      if (!socket_error_.ok()) return std::exchange(socket_error_, absl::OkStatus());
      return absl::InternalError(StrCat("curl_multi_socket_action: ", curl_multi_strerror(mc)));
    }
    return absl::OkStatus();
  }

  // curl says which sockets to watch for what; socketp is non-null once the fd is in the set.
  static int OnSocket(CURL* /*easy*/, curl_socket_t fd, int what, void* self_ptr, void* socketp) {
    auto* self = static_cast<Session*>(self_ptr);
    const int epoll_fd = self->epoll_.get();
    if (what == CURL_POLL_REMOVE) {
      // Fails harmlessly when the socket is already closed (epoll drops closed fds itself).
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
      return 0;
    }
    epoll_event event{};
    event.events =
        ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0u);
    event.data.fd = fd;
    int op = socketp != nullptr ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = ::epoll_ctl(epoll_fd, op, fd, &event);
    if (rc != 0 && (errno == ENOENT || errno == EEXIST)) {
      op = errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
      rc = ::epoll_ctl(epoll_fd, op, fd, &event);
    }
    if (rc != 0) {
      self->socket_error_ = ErrnoStatus(errno, StrCat("epoll_ctl for socket ", fd));
      return -1;
    }
    if (socketp == nullptr) curl_multi_assign(self->multi_.get(), fd, self);
    return 0;
  }

  static int OnTimer(CURLM* /*multi*/, long timeout_ms, void* self_ptr) {
    auto* self = static_cast<Session*>(self_ptr);
    if (timeout_ms < 0) {
      self->timer_.reset();
    } else {
      self->timer_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
    }
    return 0;
  }

  std::mutex mu_;
  const FetcherConfig* config_ = nullptr;
  const std::string* cookie_header_ = nullptr;
  // Destroyed in reverse order: easy handles before the multi handle (whose cleanup may still
  // report sockets to the epoll set), the share handle after every easy handle using it.
  fs::UniqueFd epoll_;
  std::optional<Clock::time_point> timer_;  // when curl wants CURL_SOCKET_TIMEOUT
  bool timer_only_last_time_ = false;
  absl::Status socket_error_;
  UniqueShare share_;
  UniqueMulti multi_;
  std::vector<UniqueEasy> idle_;
  size_t max_idle_ = 0;
  ZstdPool zstd_pool_;
};

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* task = static_cast<Task*>(user);
  size_t bytes = size * nmemb;
  task->network_bytes += bytes;
  if (task->observer != nullptr && task->observer->on_bytes) task->observer->on_bytes(bytes);
  long code = 0;
  curl_easy_getinfo(task->easy.get(), CURLINFO_RESPONSE_CODE, &code);
  // Error pages are not content; code 0 is a non-HTTP transfer (file://).
  if (code != 0 && (code < 200 || code > 299)) return bytes;
  absl::Status status = task->sink->Write(data, bytes);
  if (!status.ok()) {
    task->write_error = std::move(status);
    return 0;  // anything but `bytes` makes curl abort with CURLE_WRITE_ERROR
  }
  return bytes;
}

// What one finished attempt means.
struct AttemptOutcome {
  absl::Status status;  // OK = done
  bool retryable = false;
  long retry_after_s = 0;
};

AttemptOutcome ClassifyHttpCode(const std::string& url, long code, long retry_after_s) {
  std::string msg = StrCat("GET ", url, ": HTTP ", static_cast<int64_t>(code));
  if (code == 401 || code == 403) return {absl::PermissionDeniedError(msg)};
  if (code == 404 || code == 410) return {absl::NotFoundError(msg)};
  if (code == 408 || code == 429 || code >= 500) {
    return {absl::UnavailableError(msg), true, retry_after_s};
  }
  return {absl::InvalidArgumentError(msg)};
}

AttemptOutcome ClassifyCurlError(const std::string& url, CURLcode code, const char* errbuf,
                                 const std::string& proxy) {
  std::string detail = (errbuf != nullptr && errbuf[0] != '\0') ? errbuf : curl_easy_strerror(code);
  std::string msg = StrCat("GET ", url, ": ", detail);
  if (!proxy.empty()) StrAppend(&msg, " (via proxy ", proxy, ")");
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
      return {absl::InvalidArgumentError(msg)};
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      // The server is not who it claims to be; asking again will not change that.
      return {absl::PermissionDeniedError(msg)};
    case CURLE_FILE_COULDNT_READ_FILE:
      return {absl::NotFoundError(msg)};
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_WRITE_ERROR:
      return {absl::InternalError(msg)};
    case CURLE_BAD_CONTENT_ENCODING:
      return {absl::DataLossError(msg), true};
    default:
      // Refused / reset connections, timeouts, truncated bodies, TLS handshake hiccups.
      return {absl::UnavailableError(msg), true};
  }
}

int BackoffMs(const FetcherConfig& config, int failed_attempts, long retry_after_s) {
  int64_t initial = std::max(config.backoff_initial_ms, 0);
  int64_t cap = std::max<int64_t>(config.backoff_max_ms, initial);
  int64_t delay = initial;
  for (int i = 1; i < failed_attempts && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  // Jitter in [delay/2, delay] keeps many clients of one server from retrying in lockstep.
  if (delay > 1) delay = delay / 2 + static_cast<int64_t>(RandomU64() % (delay / 2 + 1));
  if (retry_after_s > 0) delay = std::max(delay, std::min<int64_t>(retry_after_s * 1000, cap));
  return static_cast<int>(delay);
}

// Runs tasks over a session's multi handle until all are done, the caller stops, or cancel.
//
// Each turn: fill the free transfer slots (due retries first, then new tasks), let curl act on
// what is ready, hand every finished attempt to its task, and turn again. It never waits while
// a slot could be filled, and never waits at all once nothing is left: a finished transfer's
// slot gets its next request in the same turn, and the call returns as soon as the last
// transfer completes.
class TransferLoop {
 public:
  using NextTask = std::function<std::unique_ptr<Task>()>;
  // Gets each finished task with its final status; false stops the loop.
  using OnComplete = std::function<bool(Task&, const absl::Status&)>;

  TransferLoop(const FetcherConfig& config, Session& session, const TransferObserver* observer,
               const CancelFlag* cancel)
      : config_(config),
        session_(session),
        observer_(observer),
        cancel_(cancel),
        max_active_(static_cast<size_t>(std::max(config.max_parallel, 1))),
        max_attempts_(std::max(config.max_attempts, 1)) {}

  ~TransferLoop() { AbortAll(); }

  absl::Status Run(const NextTask& next_task, const OnComplete& on_complete) {
    bool feeding = true;
    while (true) {
      if (Cancelled()) {
        AbortAll();
        return absl::CancelledError("download cancelled");
      }
      // Fill free transfer slots: due retries first, then new tasks.
      while (active_.size() < max_active_) {
        if (std::unique_ptr<Task> task = TakeDueRetry(Clock::now())) {
          if (!StartOrFinish(std::move(task), on_complete)) return Stop();
          continue;
        }
        if (!feeding || active_.size() + waiting_.size() >= max_active_ * (1 + kWaitingPerSlot)) {
          break;
        }
        std::unique_ptr<Task> task = next_task();
        if (!task) {
          feeding = false;
          break;
        }
        if (!StartOrFinish(std::move(task), on_complete)) return Stop();
      }
      if (active_.empty() && waiting_.empty() && !feeding) return absl::OkStatus();

      absl::Status driven = session_.Drive(WaitBudgetMs());
      if (!driven.ok()) {
        AbortAll();
        return driven;
      }
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(session_.multi(), &left)) {
        if (msg->msg != CURLMSG_DONE) continue;
        if (!OnAttemptDone(msg->easy_handle, msg->data.result, on_complete)) return Stop();
      }
    }
  }

 private:
  // How long the session may wait for sockets: until the cancel flag needs another look, or
  // until the next retry is due if a slot is free for it.
  int WaitBudgetMs() const {
    int wait_ms = kMaxPollMs;
    if (active_.size() < max_active_ && !waiting_.empty()) {
      Clock::time_point now = Clock::now();
      for (const auto& task : waiting_) {
        auto until = std::chrono::ceil<std::chrono::milliseconds>(task->due - now).count();
        wait_ms = static_cast<int>(std::clamp<int64_t>(until, 0, wait_ms));
      }
    }
    return wait_ms;
  }

  bool Cancelled() const {
    return (cancel_ != nullptr && cancel_->load(std::memory_order_relaxed)) ||
           (config_.cancel != nullptr && config_.cancel->load(std::memory_order_relaxed));
  }

  absl::Status Stop() {
    AbortAll();
    return absl::OkStatus();
  }

  void AbortAll() {
    for (auto& task : active_) {
      curl_multi_remove_handle(session_.multi(), task->easy.get());
      session_.Release(std::move(task->easy));
    }
    active_.clear();  // sinks remove their temp files
    waiting_.clear();
  }

  std::unique_ptr<Task> TakeDueRetry(Clock::time_point now) {
    auto best = waiting_.end();
    for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
      if ((*it)->due <= now && (best == waiting_.end() || (*it)->due < (*best)->due)) best = it;
    }
    if (best == waiting_.end()) return nullptr;
    std::unique_ptr<Task> task = std::move(*best);
    waiting_.erase(best);
    return task;
  }

  // Starts the next attempt of `task`, or completes it when it cannot start. False = stop.
  bool StartOrFinish(std::unique_ptr<Task> task, const OnComplete& on_complete) {
    if (task->precompleted) {
      absl::Status status = *task->precompleted;
      return on_complete(*task, status);
    }
    absl::Status status = StartAttempt(*task);
    if (!status.ok()) {
      task->sink->ReleaseAttemptResources();
      return on_complete(*task, status);
    }
    active_.push_back(std::move(task));
    return true;
  }

  absl::Status StartAttempt(Task& task) {
    OTA_RETURN_IF_ERROR(task.sink->BeginAttempt());
    task.easy = session_.Acquire();
    if (!task.easy) return absl::InternalError("curl_easy_init failed");
    ++task.attempts;
    task.write_error = absl::OkStatus();
    task.errbuf[0] = '\0';
    task.observer = observer_;
    const std::string& directives =
        task.content_mismatch_seen ? task.cache_control_after_mismatch : task.cache_control;
    task.headers.reset();
    if (!directives.empty()) {
      task.headers.reset(
          curl_slist_append(nullptr, StrCat(kCacheControlHeader, directives).c_str()));
    }

    // Only what differs per transfer; the rest was set when the handle was made.
    CURL* easy = task.easy.get();
    curl_easy_setopt(easy, CURLOPT_URL, task.url.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &task);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, task.errbuf.data());
    // No https → http downgrade on redirect: the cookies would travel in clear text.
    const bool is_https = ::strncasecmp(task.url.c_str(), "https://", 8) == 0;
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, is_https ? "https" : "http,https");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, task.headers.get());

    CURLMcode mc = curl_multi_add_handle(session_.multi(), easy);
    if (mc != CURLM_OK) {
      session_.Release(std::move(task.easy));
      return absl::InternalError(StrCat("curl_multi_add_handle: ", curl_multi_strerror(mc)));
    }
    return absl::OkStatus();
  }

  AttemptOutcome Classify(Task& task, CURLcode result) {
    CURL* easy = task.easy.get();
    if (result == CURLE_WRITE_ERROR && !task.write_error.ok()) {
      bool content_wrong = task.write_error.code() == absl::StatusCode::kDataLoss;
      return {task.write_error, content_wrong};
    }
    if (result != CURLE_OK) {
      AttemptOutcome outcome =
          ClassifyCurlError(task.url, result, task.errbuf.data(), config_.proxy);
      long redirects = 0;
      char* effective_url = nullptr;
      curl_easy_getinfo(easy, CURLINFO_REDIRECT_COUNT, &redirects);
      curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &effective_url);
      if (redirects > 0 && effective_url != nullptr) {
        outcome.status =
            absl::Status(outcome.status.code(),
                         StrCat(outcome.status.message(), " (redirected to ", effective_url, ")"));
      }
      return outcome;
    }
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (code != 0 && (code < 200 || code > 299)) {
      curl_off_t retry_after = 0;
      curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
      return ClassifyHttpCode(task.url, code, static_cast<long>(retry_after));
    }
    absl::Status verified = task.sink->EndAttempt();
    if (!verified.ok()) return {verified, verified.code() == absl::StatusCode::kDataLoss};
    return {task.sink->Commit()};
  }

  // False = stop.
  bool OnAttemptDone(CURL* easy, CURLcode result, const OnComplete& on_complete) {
    auto it = std::find_if(active_.begin(), active_.end(),
                           [easy](const auto& task) { return task->easy.get() == easy; });
    if (it == active_.end()) return true;  // not ours; cannot happen
    std::unique_ptr<Task> task = std::move(*it);
    // Order does not matter; swap-and-pop keeps this O(1).
    std::swap(*it, active_.back());
    active_.pop_back();

    AttemptOutcome outcome = Classify(*task, result);
    task->sink->ReleaseAttemptResources();
    curl_multi_remove_handle(session_.multi(), easy);
    session_.Release(std::move(task->easy));
    task->headers.reset();

    if (outcome.status.ok() || !outcome.retryable || task->attempts >= max_attempts_) {
      absl::Status final_status = outcome.status;
      if (!final_status.ok() && outcome.retryable) {
        final_status = absl::Status(
            final_status.code(),
            StrCat(final_status.message(), " (gave up after ", task->attempts, " attempts)"));
      }
      return on_complete(*task, final_status);
    }
    if (outcome.status.code() == absl::StatusCode::kDataLoss) task->content_mismatch_seen = true;
    int delay_ms = BackoffMs(config_, task->attempts, outcome.retry_after_s);
    std::string error(outcome.status.message());
    log::Warning("download attempt failed, will retry",
                 {{"url", task->url},
                  {"attempt", std::to_string(task->attempts)},
                  {"retry_in_ms", std::to_string(delay_ms)},
                  {"error", error}});
    task->due = Clock::now() + std::chrono::milliseconds(delay_ms);
    waiting_.push_back(std::move(task));
    return true;
  }

  const FetcherConfig& config_;
  Session& session_;
  const TransferObserver* observer_;
  const CancelFlag* cancel_;
  size_t max_active_;
  int max_attempts_;
  std::vector<std::unique_ptr<Task>> active_;
  std::vector<std::unique_ptr<Task>> waiting_;
};

class CurlFetcher final : public Fetcher {
 public:
  explicit CurlFetcher(const FetcherConfig& config)
      : config_(config), cookie_header_(CookieHeaderValue(config.cookies)) {
    CurlGlobalInitOnce();
    init_status_ = bulk_.Init(config_, cookie_header_);
    if (init_status_.ok()) init_status_ = small_.Init(config_, cookie_header_);
  }

  absl::StatusOr<std::string> Get(const std::string& url, const GetOptions& options) override {
    OTA_RETURN_IF_ERROR(init_status_);
    std::lock_guard<std::mutex> lock(small_.mutex());
    if (options.expected_sha256 &&
        crypto::ToHex(*options.expected_sha256) == crypto::kEmptySha256Hex) {
      return std::string();
    }
    auto task = std::make_unique<Task>();
    task->url = RequestUrl(url, !config_.proxy.empty());
    if (options.no_cache) task->cache_control = "no_cache";
    // Upstream replaces every directive with retry_caching after a mismatch.
    task->cache_control_after_mismatch = "retry_caching";
    auto sink = std::make_unique<MemorySink>(task->url, options);
    MemorySink* body = sink.get();
    task->sink = std::move(sink);

    absl::Status result;
    std::string result_body;
    TransferLoop loop(config_, small_, nullptr, nullptr);
    bool handed_out = false;
    OTA_RETURN_IF_ERROR(loop.Run(
        [&]() -> std::unique_ptr<Task> {
          if (handed_out) return nullptr;
          handed_out = true;
          return std::move(task);
        },
        [&](Task&, const absl::Status& status) {
          result = status;
          if (status.ok()) result_body = body->TakeBody();
          return true;
        }));
    OTA_RETURN_IF_ERROR(result);
    return result_body;
  }

  absl::Status DownloadAll(std::span<const DownloadJob> jobs,
                           const std::function<bool(const DownloadResult&)>& on_done,
                           const TransferObserver& observer, const CancelFlag& cancel) override {
    OTA_RETURN_IF_ERROR(init_status_);
    std::lock_guard<std::mutex> lock(bulk_.mutex());
    const crypto::Sha256Digest empty_sha256 = crypto::Sha256Of("");
    size_t next = 0;
    TransferLoop loop(config_, bulk_, &observer, &cancel);
    return loop.Run(
        [&]() -> std::unique_ptr<Task> {
          if (next >= jobs.size()) return nullptr;
          const DownloadJob& job = jobs[next++];
          auto task = std::make_unique<Task>();
          task->tag = job.tag;
          task->url = RequestUrl(job.url, !config_.proxy.empty());
          if (job.sha256 == empty_sha256) {
            // Upstream never fetches empty files; neither do we.
            FileSink sink(task->url, job.dest, job.sha256, job.size, image::Compression::kNone);
            absl::Status status = sink.BeginAttempt();
            if (status.ok()) status = sink.EndAttempt();
            if (status.ok()) status = sink.Commit();
            task->precompleted = status;
            return task;
          }
          task->cache_control = BlobDirectives(job);
          task->cache_control_after_mismatch = task->cache_control.empty()
                                                   ? "retry_caching"
                                                   : StrCat("retry_caching,", task->cache_control);
          task->sink =
              std::make_unique<FileSink>(task->url, job.dest, job.sha256, job.size, job.compression,
                                         &bulk_.zstd_pool(), bulk_.max_idle());
          return task;
        },
        [&](Task& task, const absl::Status& status) {
          DownloadResult result;
          result.tag = task.tag;
          result.status = status;
          result.network_bytes = task.network_bytes;
          result.file_bytes = task.sink ? task.sink->content_bytes() : 0;
          result.retries = task.attempts > 0 ? static_cast<uint32_t>(task.attempts - 1) : 0;
          return on_done(result);
        });
  }

 private:
  std::string BlobDirectives(const DownloadJob& job) const {
    if (!config_.send_cache_control) return "";
    std::string out = StrCat("file_sha256=", crypto::ToHex(job.sha256));
    if (job.compression == image::Compression::kZstd) out.append(",file_compression_alg=zst");
    return out;
  }

  const FetcherConfig config_;
  const std::string cookie_header_;
  absl::Status init_status_;
  Session bulk_;   // DownloadAll
  Session small_;  // Get
};

}  // namespace

std::unique_ptr<Fetcher> CreateCurlFetcher(const FetcherConfig& config) {
  return std::make_unique<CurlFetcher>(config);
}

}  // namespace ota::http
