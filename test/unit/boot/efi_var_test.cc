// EFI variable files (efi_var.h): the capsule trigger's exact bytes, parsing, and writing into a
// stand-in efivars directory and onto an "ESP" directory.
#include "otaclient/boot/efi_var.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/fs/fs.h"
#include "gtest/gtest.h"

namespace ota::boot {
namespace {

TEST(EfiVariable, CapsuleTriggerIsUpstreamsTwelveBytes) {
  const std::string bytes = EncodeEfiVariable(CapsuleTriggerVariable());
  EXPECT_EQ(bytes, std::string("\x07\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00", 12));
  auto parsed = ParseEfiVariable(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->attributes, 7u);
  EXPECT_EQ(*OsIndicationsValue(*parsed), kOsIndicationsFileCapsuleDelivery);
  EXPECT_EQ(*parsed, CapsuleTriggerVariable());
}

TEST(EfiVariable, ParseTable) {
  EXPECT_FALSE(ParseEfiVariable("").ok());
  EXPECT_FALSE(ParseEfiVariable("abc").ok());
  EXPECT_FALSE(ParseEfiVariable(std::string(64 * 1024 + 5, 'x')).ok());
  auto empty = ParseEfiVariable(std::string("\x06\x00\x00\x80", 4));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->attributes, 0x80000006u);
  EXPECT_EQ(empty->data, "");
  EXPECT_FALSE(OsIndicationsValue(*empty).ok());  // not 8 bytes
  auto big = ParseEfiVariable(std::string("\x07\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x88", 12));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(*OsIndicationsValue(*big), 0x8807060504030201ull);
}

TEST(EfiVariable, WritesIntoAStandInDirectoryAndTheEsp) {
  auto tmp = fs::TempDir::Create("efivar-test");
  ASSERT_TRUE(tmp.ok());
  const std::filesystem::path efivars = tmp->path() / "efivars";
  std::filesystem::create_directories(efivars);
  // An older value is replaced whole.
  std::ofstream(efivars / std::string(kOsIndicationsVariable)) << std::string(40, 'z');
  ASSERT_TRUE(
      WriteEfivarfsVariable(efivars, kOsIndicationsVariable, CapsuleTriggerVariable()).ok());
  EXPECT_EQ(*fs::ReadFile(efivars / std::string(kOsIndicationsVariable)),
            EncodeEfiVariable(CapsuleTriggerVariable()));

  std::filesystem::create_directories(tmp->path() / "esp");
  auto esp = fs::RootedDir::Open(tmp->path() / "esp");
  ASSERT_TRUE(esp.ok());
  ASSERT_TRUE(WriteEspVariable(*esp, kOsIndicationsVariable, CapsuleTriggerVariable()).ok());
  EXPECT_EQ(
      *fs::ReadFile(tmp->path() / "esp/EFI/NVDA/Variables" / std::string(kOsIndicationsVariable)),
      EncodeEfiVariable(CapsuleTriggerVariable()));
}

TEST(EfiVariable, RefusesADirectoryHoldingAnotherFileSystem) {
  // /proc is mounted: not efivarfs, so nothing is written there.
  absl::Status status = WriteEfivarfsVariable("/proc", "X-00000000-0000-0000-0000-000000000000",
                                              CapsuleTriggerVariable());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
}

}  // namespace
}  // namespace ota::boot
