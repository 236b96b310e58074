#include "otaproxy/server/response.h"

#include <algorithm>

#include "otaproxy/server/io_loop.h"

namespace ota::proxy {

void Waker::Wake() const {
  if (loop != nullptr) loop->Wake(connection);
}

void OutputQueue::Add(std::string bytes) {
  if (bytes.empty()) return;
  pieces_.push_back(Piece{.bytes = std::move(bytes), .fd = -1, .offset = 0, .left = 0});
}

void OutputQueue::AddFile(int fd, uint64_t offset, uint64_t length) {
  if (length == 0) return;
  pieces_.push_back(Piece{.bytes = {}, .fd = fd, .offset = offset, .left = length});
}

IoResult OutputQueue::WriteTo(int sock, size_t budget) {
  size_t written = 0;
  while (!pieces_.empty()) {
    if (written >= budget) return {written, IoResult::Status::kOk};
    Piece& p = pieces_.front();
    IoResult r;
    if (p.fd < 0) {
      // More to follow at once: let the kernel put it into the same segment.
      r = SendSome(sock, std::string_view(p.bytes).substr(p.offset), pieces_.size() > 1);
      p.offset += r.bytes;
      if (p.offset == p.bytes.size()) pieces_.pop_front();
    } else {
      r = SendFileSome(sock, p.fd, p.offset,
                       static_cast<size_t>(std::min<uint64_t>(p.left, budget - written)));
      p.offset += r.bytes;
      p.left -= r.bytes;
      if (p.left == 0) pieces_.pop_front();
    }
    written += r.bytes;
    if (r.status != IoResult::Status::kOk) return {written, r.status};
  }
  return {written, IoResult::Status::kOk};
}

}  // namespace ota::proxy
