#include "otaproxy/server/connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <cerrno>
#include <utility>

#include "common/util/strings.h"
#include "otaproxy/server/client_socket.h"

namespace ota::proxy {
namespace {

namespace beast_http = boost::beast::http;

// Bytes one connection may write per turn of its loop before the others get theirs.
constexpr size_t kWriteBudget = 1 << 20;
// A request buffer grown beyond this (a long header) is given back once it is empty.
constexpr size_t kKeepBufferBytes = 4096;

}  // namespace

Connection::Connection(IoLoop& loop, uint64_t id, fs::UniqueFd fd)
    : loop_(loop), id_(id), fd_(std::move(fd)) {
  int one = 1;
  ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  deadline_ = loop_.now() + std::chrono::seconds(loop_.options().idle_timeout_s);
}

void Connection::OnEvents(uint32_t events) {
  if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
    Close();  // reset, or both directions shut: nothing can be sent any more
    return;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP)) != 0) readable_ = true;
  if ((events & EPOLLOUT) != 0) writable_ = true;
  budget_ = kWriteBudget;
  Drive();
}

void Connection::OnWake() {
  if (phase_ != Phase::kResponding || !waiting_) return;
  waiting_ = false;
  budget_ = kWriteBudget;
  Drive();
}

void Connection::OnTurn() {
  budget_ = kWriteBudget;
  Drive();
}

void Connection::Close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  source_.reset();  // a relay stops fetching; an admission is given back
  out_ = OutputQueue();
  parser_.reset();
  pending_ = std::string();
}

void Connection::Drive() {
  while (true) {
    switch (phase_) {
      case Phase::kClosed:
        return;
      case Phase::kReading:
        if (!ReadRequest()) return;
        break;
      case Phase::kResponding:
        if (!Pump()) return;
        break;
    }
  }
}

bool Connection::ReadRequest() {
  std::vector<char>& scratch = loop_.scratch();
  while (true) {
    if (Parse()) return true;
    if (eof_) {
      // The client closed its side: an unfinished request is answered, then the connection
      // closes; at a request boundary it just closes.
      if (!pending_.empty() || (parser_ && parser_->got_some())) {
        const boost::system::error_code ec = beast_http::error::partial_message;
        Respond(std::make_unique<BytesResponse>(FormatSimple(
                    400, StrCat("otaproxy: malformed request: ", ec.message(), "\n"), false)),
                false);
        return true;
      }
      Close();
      return false;
    }
    if (!readable_) return false;
    const ssize_t n = ::recv(fd_.get(), scratch.data(), scratch.size(), 0);
    if (n > 0) {
      pending_.append(scratch.data(), static_cast<size_t>(n));
      // A short read emptied the socket; new bytes bring a new edge.
      if (static_cast<size_t>(n) < scratch.size()) readable_ = false;
      continue;
    }
    if (n == 0) {
      eof_ = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      readable_ = false;
      return false;
    }
    Close();
    return false;
  }
}

bool Connection::Parse() {
  if (pending_.empty()) return false;
  if (!parser_) {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(loop_.options().header_limit));
    parser_->body_limit(0);
  }
  boost::system::error_code ec;
  while (!pending_.empty() && !parser_->is_done()) {
    const size_t used = parser_->put(boost::asio::buffer(pending_.data(), pending_.size()), ec);
    pending_.erase(0, used);
    if (ec || used == 0) break;
  }
  if (ec == beast_http::error::need_more || (!ec && !parser_->is_done())) return false;
  if (pending_.empty() && pending_.capacity() > kKeepBufferBytes) pending_ = std::string();
  if (ec) {
    int status = 400;
    std::string body = StrCat("otaproxy: malformed request: ", ec.message(), "\n");
    if (ec == beast_http::error::header_limit) {
      status = 431;
      body = "otaproxy: request header fields too large\n";
    } else if (ec == beast_http::error::body_limit || ec == beast_http::error::unexpected_body) {
      status = 413;
      body = "otaproxy: requests with a body are not accepted\n";
    }
    Respond(std::make_unique<BytesResponse>(FormatSimple(status, body, false)), false);
    return true;
  }
  const Request& request = parser_->get();
  const bool keep_alive = request.keep_alive() && !loop_.handler().Stopping();
  std::unique_ptr<ResponseSource> source = loop_.handler().Handle(request, keep_alive, fd_.get());
  parser_.reset();
  Respond(std::move(source), keep_alive);
  return true;
}

void Connection::Respond(std::unique_ptr<ResponseSource> source, bool keep_alive) {
  source_ = std::move(source);
  keep_alive_ = keep_alive;
  last_ = false;
  waiting_ = false;
  phase_ = Phase::kResponding;
  deadline_ = Clock::time_point::max();
}

bool Connection::Pump() {
  while (true) {
    if (!out_.empty()) {
      if (!writable_) {  // EPOLLOUT brings us back
        if (deadline_ == Clock::time_point::max()) {
          deadline_ = loop_.now() + std::chrono::seconds(loop_.options().send_timeout_s);
        }
        return false;
      }
      if (budget_ == 0) {
        loop_.MarkReady(id_);
        return false;
      }
      const IoResult r = out_.WriteTo(fd_.get(), budget_);
      budget_ -= std::min(budget_, r.bytes);
      if (r.status == IoResult::Status::kClosed) {
        Close();
        return false;
      }
      if (r.status == IoResult::Status::kWouldBlock) {
        writable_ = false;
        deadline_ = loop_.now() + std::chrono::seconds(loop_.options().send_timeout_s);
        return false;
      }
      continue;
    }
    if (last_) {
      source_.reset();
      last_ = false;
      if (!keep_alive_) {
        ::shutdown(fd_.get(), SHUT_RDWR);
        Close();
        return false;
      }
      phase_ = Phase::kReading;
      deadline_ = loop_.now() + std::chrono::seconds(loop_.options().idle_timeout_s);
      return true;
    }
    // Waiting for the source is not the client's fault: no deadline (the upstream's own
    // timeouts end a stalled download).
    deadline_ = Clock::time_point::max();
    switch (source_->FillQueue(out_, Waker{&loop_, id_})) {
      case ResponseSource::Fill::kMore:
        break;
      case ResponseSource::Fill::kLast:
        last_ = true;
        break;
      case ResponseSource::Fill::kWait:
        waiting_ = true;
        return false;
      case ResponseSource::Fill::kAbort:
        Close();
        return false;
    }
  }
}

}  // namespace ota::proxy
