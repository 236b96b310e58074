#include "common/util/memory.h"

#include <cstddef>
#include <cstring>
#include <memory>

#include "gtest/gtest.h"

namespace ota {
namespace {

// The resident set follows memory the process touches and gives back: 64 MiB written raise it by
// about that much; freed and trimmed, it comes back down.
TEST(ResidentSetKib, FollowsTouchedAndReleasedMemory) {
  const long before = ResidentSetKib();
  ASSERT_GT(before, 0);
  constexpr std::size_t kBytes = 64 << 20;
  auto block = std::make_unique<char[]>(kBytes);
  std::memset(block.get(), 0x5a, kBytes);
  const long touched = ResidentSetKib();
  EXPECT_GE(touched - before, 60 * 1024) << "before " << before << " KiB, touched " << touched;
  block.reset();
  ReleaseFreeMemory();
  const long released = ResidentSetKib();
  EXPECT_LT(released - before, 8 * 1024) << "before " << before << " KiB, after " << released;
}

}  // namespace
}  // namespace ota
