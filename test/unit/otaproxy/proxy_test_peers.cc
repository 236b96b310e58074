#include "test/unit/otaproxy/proxy_test_peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/util/errors.h"
#include "common/util/strings.h"
#include "test/lib/loopback.h"

namespace ota::proxy::testing {
namespace {

int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1000));
}

// Waits until `fd` has `events` or the deadline passed.
bool WaitFd(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, MillisLeft(deadline));
    if (n > 0) return true;
    if (n < 0 && errno == EINTR) continue;
    if (Clock::now() >= deadline) return false;
  }
}

absl::Status SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(errno, "send");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

absl::StatusOr<RawClient> RawClient::Connect(uint16_t port, int receive_buffer) {
  fs::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  if (receive_buffer > 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, StrCat("connect 127.0.0.1:", port));
  }
  return RawClient(std::move(fd));
}

absl::Status RawClient::Send(std::string_view bytes) { return SendAll(fd_.get(), bytes); }

void RawClient::WidenReceiveBuffer(int bytes) {
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

absl::Status RawClient::SendGet(const std::string& url, const std::vector<std::string>& headers) {
  std::string request = StrCat("GET ", url, " HTTP/1.1\r\nHost: proxied\r\n");
  for (const std::string& h : headers) StrAppend(&request, h, "\r\n");
  request.append("\r\n");
  return Send(request);
}

absl::StatusOr<std::string> RawClient::ReadSome(size_t max, Clock::time_point deadline) {
  if (!buffered_.empty()) {
    const size_t n = std::min(max, buffered_.size());
    std::string out = buffered_.substr(0, n);
    buffered_.erase(0, n);
    return out;
  }
  if (!WaitFd(fd_.get(), POLLIN, deadline)) return absl::DeadlineExceededError("nothing to read");
  std::string out(max, '\0');
  while (true) {
    const ssize_t n = ::recv(fd_.get(), out.data(), max, 0);
    if (n >= 0) {
      out.resize(static_cast<size_t>(n));
      return out;
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return std::string();  // closed (reset) counts as the end
    return ErrnoStatus(errno, "recv");
  }
}

absl::StatusOr<ResponseHead> RawClient::ReadHead(Clock::time_point deadline) {
  std::string data;
  size_t end;
  while ((end = data.find("\r\n\r\n")) == std::string::npos) {
    absl::StatusOr<std::string> got = ReadSome(64 * 1024, deadline);
    if (!got.ok()) return got.status();
    if (got->empty()) return absl::DataLossError(StrCat("closed before the head: '", data, "'"));
    data += *got;
  }
  buffered_ = data.substr(end + 4) + buffered_;
  ResponseHead head;
  const std::string text = data.substr(0, end);
  size_t pos = text.find("\r\n");
  const std::string status_line = text.substr(0, pos);
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.1 ")) {
    return absl::DataLossError(StrCat("bad status line '", status_line, "'"));
  }
  head.status = std::stoi(status_line.substr(9, 3));
  while (pos != std::string::npos) {
    const size_t next = text.find("\r\n", pos + 2);
    const std::string line =
        text.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      head.headers[Lower(line.substr(0, colon))] = value;
    }
    pos = next;
  }
  return head;
}

absl::Status RawClient::ReadBody(uint64_t length, std::string* body, Clock::time_point deadline) {
  while (body->size() < length) {
    absl::StatusOr<std::string> got =
        ReadSome(static_cast<size_t>(std::min<uint64_t>(length - body->size(), 1 << 20)), deadline);
    if (!got.ok()) return got.status();
    if (got->empty()) {
      return absl::DataLossError(StrCat("closed after ", body->size(), " of ", length, " bytes"));
    }
    body->append(*got);
  }
  return absl::OkStatus();
}

absl::Status RawClient::WaitClosed(Clock::time_point deadline) {
  while (true) {
    absl::StatusOr<std::string> got = ReadSome(1 << 20, deadline);
    if (!got.ok()) return got.status();
    if (got->empty()) return absl::OkStatus();
  }
}

absl::Status Exchange::Send(std::string_view bytes) { return SendAll(fd_.get(), bytes); }

absl::Status Exchange::SendHead(int status, std::optional<uint64_t> content_length) {
  std::string head = StrCat("HTTP/1.1 ", status, " Scripted\r\nConnection: close\r\n");
  if (content_length) StrAppend(&head, "Content-Length: ", *content_length, "\r\n");
  head.append("Content-Type: application/x-scripted\r\n\r\n");
  return Send(head);
}

absl::StatusOr<std::unique_ptr<ScriptedUpstream>> ScriptedUpstream::Start() {
  std::unique_ptr<ScriptedUpstream> up(new ScriptedUpstream());
  OTA_ASSIGN_OR_RETURN(::ota::testing::LoopbackSocket listener, ::ota::testing::BindLoopback(64));
  up->listen_ = std::move(listener.fd);
  up->port_ = static_cast<uint16_t>(listener.port);
  up->stop_ = fs::UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!up->stop_.valid()) return ErrnoStatus(errno, "eventfd");
  ScriptedUpstream* raw = up.get();
  up->thread_ = std::thread([raw] { raw->AcceptLoop(); });
  return up;
}

ScriptedUpstream::~ScriptedUpstream() {
  const uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

std::string ScriptedUpstream::Url(const std::string& path) const {
  return StrCat("http://127.0.0.1:", port_, path);
}

size_t ScriptedUpstream::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void ScriptedUpstream::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno == EINTR) continue;
    if ((fds[1].revents & POLLIN) != 0) return;
    fs::UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) continue;
    // The request head (otaproxy sends no body).
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      pollfd p[2] = {{fd.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 && errno == EINTR) continue;
      if ((p[1].revents & POLLIN) != 0) return;
      const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    if (request.find("\r\n\r\n") == std::string::npos) continue;
    std::lock_guard lock(mu_);
    requests_++;
    received_.push_back(std::make_unique<Exchange>(std::move(fd), std::move(request)));
    cv_.notify_all();
  }
}

absl::StatusOr<std::unique_ptr<Exchange>> ScriptedUpstream::Next(Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_until(lock, deadline, [&] { return !received_.empty(); })) {
    return absl::DeadlineExceededError("no request reached the scripted upstream");
  }
  std::unique_ptr<Exchange> e = std::move(received_.front());
  received_.pop_front();
  return e;
}

size_t ThreadCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

size_t OpenFdCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

bool WaitFor(const std::function<bool()>& condition, Clock::time_point deadline) {
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 5);  // re-check every 5 ms
  }
  return true;
}

}  // namespace ota::proxy::testing
