// /etc/fstab parsing (table of nasty vectors) and the standby merge rules.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "otaclient/boot/block_slot.h"

namespace ota::boot {
namespace {

struct ParseCase {
  std::string name;
  std::string text;
  bool ok;
  int entries;  // when ok
};

class FstabParseTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(FstabParseTest, Parses) {
  const ParseCase& c = GetParam();
  auto lines = ParseFstab(c.text, "fstab");
  ASSERT_EQ(lines.ok(), c.ok) << lines.status();
  if (!c.ok) {
    EXPECT_EQ(lines.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(lines.status().message().find("fstab"), absl::string_view::npos);
    return;
  }
  int entries = 0;
  for (const FstabLine& line : *lines) entries += line.is_entry ? 1 : 0;
  EXPECT_EQ(entries, c.entries);
}

INSTANTIATE_TEST_SUITE_P(
    Table, FstabParseTest,
    ::testing::Values(
        ParseCase{"empty", "", true, 0}, ParseCase{"only_newlines", "\n\n\n", true, 0},
        ParseCase{"comment_and_blank", "# c\n   \n\t# indented comment\n", true, 0},
        ParseCase{"typical",
                  "UUID=1 / ext4 errors=remount-ro 0 1\nUUID=2 /boot ext4 defaults 0 2\n", true, 2},
        ParseCase{"tabs_and_crlf", "UUID=1\t/\text4\tdefaults\t0\t1\r\n", true, 1},
        ParseCase{"no_trailing_newline", "/dev/sda1 / ext4", true, 1},
        ParseCase{"three_fields", "proc /proc proc", true, 1},
        ParseCase{"two_fields", "UUID=1 /\n", false, 0},
        ParseCase{"one_field", "garbage\n", false, 0},
        ParseCase{"seven_fields", "a / ext4 defaults 0 1 extra\n", false, 0},
        ParseCase{"nul_byte", std::string("a / ext4\0 x", 11), false, 0},
        ParseCase{"hash_inside_field", "a /mnt/x#y ext4 defaults 0 0\n", true, 1},
        ParseCase{"octal_escape", "LABEL=my\\040disk /mnt/my\\040dir ext4 defaults 0 0\n", true,
                  1}),
    [](const auto& info) { return info.param.name; });

TEST(FstabParse, DecodesOctalEscapesAndKeepsRaw) {
  auto lines = ParseFstab("LABEL=a\\040b /mnt/x\\011y ext4 ro 0 2\n", "f");
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].spec, "LABEL=a b");
  EXPECT_EQ((*lines)[0].mount_point, "/mnt/x\ty");
  EXPECT_EQ((*lines)[0].raw, "LABEL=a\\040b /mnt/x\\011y ext4 ro 0 2");
  // Re-encoding escapes again, so the line survives a round trip.
  EXPECT_EQ(FormatFstabEntry((*lines)[0]), "LABEL=a\\040b\t/mnt/x\\011y\text4\tro\t0\t2");
  auto again = ParseFstab(FormatFstabEntry((*lines)[0]), "f");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].mount_point, "/mnt/x\ty");
}

TEST(FstabParse, LineNumberInError) {
  auto lines = ParseFstab("# ok\nUUID=1 / ext4\nbad line\n", "image /etc/fstab");
  ASSERT_FALSE(lines.ok());
  EXPECT_NE(lines.status().message().find("image /etc/fstab:3:"), absl::string_view::npos)
      << lines.status();
}

constexpr char kActive[] =
    "# active fstab\n"
    "UUID=aaaa / ext4 errors=remount-ro 0 1\n"
    "UUID=boot /boot ext4 defaults 0 2\n"
    "/dev/sdb1 /data ext4 defaults 0 2\n"
    "/swapfile none swap sw 0 0\n";

struct MergeCase {
  std::string name;
  std::string image;
  bool shared_boot;
  std::string expected;
};

class FstabMergeTest : public ::testing::TestWithParam<MergeCase> {};

TEST_P(FstabMergeTest, Merges) {
  const MergeCase& c = GetParam();
  FstabMergeInput input{kActive, c.image, "UUID=aaaa", "UUID=bbbb", c.shared_boot};
  auto merged = MergeFstab(input);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(*merged, c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, FstabMergeTest,
    ::testing::Values(
        MergeCase{"image_root_rewritten_boot_from_active_site_mounts_kept",
                  "# image\nUUID=image-root / ext4 defaults 0 1\nUUID=image-boot /boot ext4 "
                  "defaults 0 2\ntmpfs /tmp tmpfs defaults 0 0\n",
                  true,
                  "# image\nUUID=bbbb\t/\text4\tdefaults\t0\t1\n"
                  "UUID=boot /boot ext4 defaults 0 2\n"
                  "tmpfs /tmp tmpfs defaults 0 0\n"
                  "/dev/sdb1 /data ext4 defaults 0 2\n"
                  "/swapfile none swap sw 0 0\n"},
        MergeCase{"boot_not_shared_keeps_image_boot",
                  "UUID=image-root / ext4 defaults 0 1\nUUID=image-boot /boot ext4 defaults 0 2\n",
                  false,
                  "UUID=bbbb\t/\text4\tdefaults\t0\t1\n"
                  "UUID=image-boot /boot ext4 defaults 0 2\n"
                  "/dev/sdb1 /data ext4 defaults 0 2\n"
                  "/swapfile none swap sw 0 0\n"},
        MergeCase{"image_without_root_gets_active_root_with_standby_uuid",
                  "tmpfs /tmp tmpfs defaults 0 0\n", true,
                  "UUID=bbbb\t/\text4\terrors=remount-ro\t0\t1\n"
                  "tmpfs /tmp tmpfs defaults 0 0\n"
                  "UUID=boot /boot ext4 defaults 0 2\n"
                  "/dev/sdb1 /data ext4 defaults 0 2\n"
                  "/swapfile none swap sw 0 0\n"},
        MergeCase{"empty_image", "", true,
                  "UUID=bbbb\t/\text4\terrors=remount-ro\t0\t1\n"
                  "UUID=boot /boot ext4 defaults 0 2\n"
                  "/dev/sdb1 /data ext4 defaults 0 2\n"
                  "/swapfile none swap sw 0 0\n"},
        MergeCase{"image_overrides_same_mount_point_and_second_swap_kept",
                  "/ / ext4 defaults 0 1\n/dev/sdc1 /data xfs defaults 0 2\n/dev/sda9 none swap sw "
                  "0 0\n",
                  true,
                  "UUID=bbbb\t/\text4\tdefaults\t0\t1\n"
                  "/dev/sdc1 /data xfs defaults 0 2\n"
                  "/dev/sda9 none swap sw 0 0\n"
                  "UUID=boot /boot ext4 defaults 0 2\n"
                  "/swapfile none swap sw 0 0\n"},
        MergeCase{"trailing_slash_mount_point_is_the_same",
                  "UUID=x /boot/ ext4 defaults 0 2\nUUID=y // ext4 defaults 0 1\n", true,
                  "UUID=boot /boot ext4 defaults 0 2\n"
                  "UUID=bbbb\t/\text4\tdefaults\t0\t1\n"
                  "/dev/sdb1 /data ext4 defaults 0 2\n"
                  "/swapfile none swap sw 0 0\n"}),
    [](const auto& info) { return info.param.name; });

TEST(FstabMerge, ActiveRootUuidElsewhereIsRewritten) {
  FstabMergeInput input{"UUID=aaaa / ext4 defaults 0 1\nUUID=aaaa /mnt/self ext4 ro 0 0\n", "",
                        "UUID=aaaa", "UUID=bbbb", true};
  auto merged = MergeFstab(input);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(*merged, "UUID=bbbb\t/\text4\tdefaults\t0\t1\nUUID=bbbb\t/mnt/self\text4\tro\t0\t0\n");
}

TEST(FstabMerge, MalformedImageFstabIsAnErrorNamingIt) {
  FstabMergeInput input{kActive, "only-one-field\n", "UUID=aaaa", "UUID=bbbb", true};
  auto merged = MergeFstab(input);
  ASSERT_FALSE(merged.ok());
  EXPECT_NE(merged.status().message().find("image /etc/fstab:1"), absl::string_view::npos);
}

}  // namespace
}  // namespace ota::boot
