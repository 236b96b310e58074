// One client connection of an I/O loop (io_loop.h): a non-blocking socket, requests parsed with
// Boost.Beast's request parser as bytes arrive (one at a time: a pipelined request waits in the
// connection's buffer until the response before it is complete), each answered by the
// ResponseSource the RequestHandler returns, written through an OutputQueue with sendfile for
// file bodies. Parse errors: 431 (header too large), 413 (a body), 400 (malformed), then close.
#pragma once

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/fs/fs.h"
#include "otaproxy/server/io_loop.h"
#include "otaproxy/server/response.h"

namespace ota::proxy {

class Connection {
 public:
  Connection(IoLoop& loop, uint64_t id, fs::UniqueFd fd);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_.get(); }
  bool closed() const { return phase_ == Phase::kClosed; }
  Clock::time_point deadline() const { return deadline_; }

  // From the loop: epoll events; a wake from the response's source; the next turn after the
  // write budget ran out. Each may close the connection (closed() then says so).
  void OnEvents(uint32_t events);
  void OnWake();
  void OnTurn();
  void Close();

 private:
  enum class Phase { kReading, kResponding, kClosed };

  // Reads and answers requests, writes responses, until it has to wait.
  void Drive();
  // kReading: true when a request was parsed and its response started.
  bool ReadRequest();
  // Parses the buffered bytes: true when a request is complete (or a parse error answered).
  bool Parse();
  void Respond(std::unique_ptr<ResponseSource> source, bool keep_alive);
  // kResponding: true when the response is complete and the connection reads again.
  bool Pump();

  IoLoop& loop_;
  const uint64_t id_;
  fs::UniqueFd fd_;
  Phase phase_ = Phase::kReading;
  Clock::time_point deadline_;
  bool readable_ = true;  // no EAGAIN from recv since the last EPOLLIN
  bool writable_ = true;  // no EAGAIN from send since the last EPOLLOUT
  bool eof_ = false;
  size_t budget_ = 0;  // bytes this turn may still write

  std::string pending_;  // received, not yet parsed
  std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser_;

  std::unique_ptr<ResponseSource> source_;
  OutputQueue out_;
  bool keep_alive_ = false;
  bool last_ = false;     // the source has nothing more: done once out_ is written
  bool waiting_ = false;  // the source registered the waker
};

}  // namespace ota::proxy
