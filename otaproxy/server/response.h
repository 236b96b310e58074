// What a client connection (connection.h) sends for one request: a ResponseSource fills the
// connection's OutputQueue with pieces (bytes in memory, ranges of files sent with sendfile) as
// they become available, and wakes the connection through a Waker when it has more.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "common/fs/fs.h"
#include "otaproxy/server/client_socket.h"

namespace ota::proxy {

class IoLoop;

// Wakes one connection of an I/O loop (from any thread): it then asks its source for more. A
// wake for a connection that has gone is ignored.
struct Waker {
  IoLoop* loop = nullptr;
  uint64_t connection = 0;
  void Wake() const;
};

// Pieces waiting to be written to a client socket, in order.
class OutputQueue {
 public:
  void Add(std::string bytes);
  // `fd` must stay open until the piece is written (its owner is the response's source).
  void AddFile(int fd, uint64_t offset, uint64_t length);
  bool empty() const { return pieces_.empty(); }

  // Writes until the queue is empty, the socket is full (kWouldBlock) or `budget` bytes went out
  // (kOk with the queue not empty); kClosed: the client is gone.
  IoResult WriteTo(int sock, size_t budget);

 private:
  struct Piece {
    std::string bytes;
    int fd = -1;
    uint64_t offset = 0;  // into bytes, or into the file
    uint64_t left = 0;    // file bytes still to send
  };
  std::deque<Piece> pieces_;
};

class ResponseSource {
 public:
  enum class Fill {
    kMore,  // pieces added: ask again once they are written
    kWait,  // nothing to add now: the waker will be called (registered by this call)
    kLast,  // pieces added (maybe none); the response is complete once they are written
    kAbort  // the response cannot be completed: close the connection (a truncated response)
  };
  virtual ~ResponseSource() = default;
  virtual Fill FillQueue(OutputQueue& out, const Waker& waker) = 0;
};

// A response completely known now (a formatted head and body).
class BytesResponse : public ResponseSource {
 public:
  explicit BytesResponse(std::string bytes) : bytes_(std::move(bytes)) {}
  Fill FillQueue(OutputQueue& out, const Waker&) override {
    out.Add(std::move(bytes_));
    return Fill::kLast;
  }

 private:
  std::string bytes_;
};

// A head and then `length` bytes of an open file from `offset` (a cache hit, or a range of one).
class FileResponse : public ResponseSource {
 public:
  FileResponse(std::string head, fs::UniqueFd fd, uint64_t length, uint64_t offset = 0)
      : head_(std::move(head)), fd_(std::move(fd)), length_(length), offset_(offset) {}
  Fill FillQueue(OutputQueue& out, const Waker&) override {
    out.Add(std::move(head_));
    out.AddFile(fd_.get(), offset_, length_);
    return Fill::kLast;
  }

 private:
  std::string head_;
  fs::UniqueFd fd_;
  uint64_t length_;
  uint64_t offset_;
};

}  // namespace ota::proxy
