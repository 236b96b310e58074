#include "common/image/v1/local_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {
namespace {

constexpr size_t kChunk = 1 << 20;

}  // namespace

absl::Status StreamFileRange(int fd, uint64_t offset, std::optional<uint64_t> length,
                             const ChunkSink& sink, std::string_view what) {
  std::vector<char> buf(kChunk);
  uint64_t done = 0;
  while (!length || done < *length) {
    size_t want = kChunk;
    if (length) want = static_cast<size_t>(std::min<uint64_t>(kChunk, *length - done));
    const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, StrCat("read ", what));
    if (n == 0) {
      if (!length) break;
      return absl::DataLossError(
          StrCat(what, ": ends at byte ", offset + done, ", expected ", offset + *length));
    }
    OTA_RETURN_IF_ERROR(sink(std::string_view(buf.data(), static_cast<size_t>(n))));
    done += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteVerified(int dir_fd, const std::string& name, const std::string& what,
                           content::Compression compression, const content::Expected& expected,
                           const std::function<absl::Status(const ChunkSink&)>& produce,
                           bool durable) {
  const std::string tmp = StrCat("tmp_", name);
  ::unlinkat(dir_fd, tmp.c_str(), 0);  // a leftover of an interrupted attempt
  fs::UniqueFd out(
      ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoStatus(errno, StrCat("create ", what));
  auto fail = [&](absl::Status st) {
    out.Reset();
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return st;
  };
  content::ContentVerifier verifier(what, compression, expected);
  if (absl::Status st = verifier.Begin(); !st.ok()) return fail(st);
  std::vector<char> decoded(compression == content::Compression::kZstd ? kChunk : 0);
  ChunkSink sink = [&](std::string_view chunk) -> absl::Status {
    if (compression != content::Compression::kZstd) {
      OTA_RETURN_IF_ERROR(verifier.Update(chunk));
      return fs::WriteAll(out.get(), chunk.data(), chunk.size(), what);
    }
    while (true) {
      OTA_ASSIGN_OR_RETURN(size_t n, verifier.Decode(&chunk, decoded));
      OTA_RETURN_IF_ERROR(fs::WriteAll(out.get(), decoded.data(), n, what));
      if (chunk.empty() && n < decoded.size()) return absl::OkStatus();
    }
  };
  if (absl::Status st = produce(sink); !st.ok()) return fail(st);
  if (absl::Status st = verifier.Finish(); !st.ok()) return fail(st);
  if (durable && ::fsync(out.get()) != 0) return fail(ErrnoStatus(errno, StrCat("fsync ", what)));
  if (::close(out.release()) != 0 && errno != EINTR) {
    return fail(ErrnoStatus(errno, StrCat("close ", what)));
  }
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    return fail(ErrnoStatus(errno, StrCat("rename into place ", what)));
  }
  return absl::OkStatus();
}

}  // namespace ota::image::v1
