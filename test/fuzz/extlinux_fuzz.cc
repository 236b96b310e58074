// extlinux.conf rewriting on arbitrary bytes: never crash; a successful rewrite is idempotent,
// names the new root on every APPEND line and keeps the number of lines.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otaclient/boot/extlinux.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kUuid = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9";
  absl::StatusOr<ota::boot::ExtlinuxRewrite> once = ota::boot::RewriteExtlinuxRoot(input, kUuid);
  if (!once.ok()) return 0;
  if (once->append_lines < 1) std::abort();
  if (std::count(input.begin(), input.end(), '\n') !=
      std::count(once->content.begin(), once->content.end(), '\n')) {
    std::abort();
  }
  if (once->content.find("root=PARTUUID=0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9") ==
      std::string::npos) {
    std::abort();
  }
  absl::StatusOr<ota::boot::ExtlinuxRewrite> twice =
      ota::boot::RewriteExtlinuxRoot(once->content, kUuid);
  if (!twice.ok() || twice->content != once->content) std::abort();
  return 0;
}
