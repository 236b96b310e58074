// The generated GRUB menu: golden files (byte-exact, so any change is reviewed), the parser that
// reads it back, input validation, and carrying over kernel arguments.
// Regenerate goldens: OTA_UPDATE_GOLDEN=1 ./grub_menu_test
#include "otaclient/boot/grub_menu.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/fs/fs.h"
#include "common/sys/command.h"
#include "gtest/gtest.h"

namespace ota::boot {
namespace {

const std::filesystem::path kTestdata =
    std::filesystem::path(OTA_SOURCE_DIR) / "test/unit/boot/testdata";

GrubMenuConfig TwoSlots() {
  GrubMenuConfig config;
  config.fallback_default = "slot_a";
  config.entries = {
      {"slot_a", "otaclient slot A", "/ota-slots/slot_a/vmlinuz", "/ota-slots/slot_a/initrd.img",
       "8A1F3C52-0B6E-4C1A-9D43-2F0A7E6B1C0A", "ro quiet"},
      {"slot_b", "otaclient slot B", "/ota-slots/slot_b/vmlinuz", "",
       "8a1f3c52-0b6e-4c1a-9d43-2f0a7e6b1c0b", "ro quiet"},
  };
  return config;
}

void ExpectGolden(const std::string& actual, const std::string& name) {
  const auto path = kTestdata / name;
  if (std::getenv("OTA_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
  }
  auto golden = fs::ReadFile(path);
  ASSERT_TRUE(golden.ok()) << golden.status();
  EXPECT_EQ(actual, *golden) << "golden file " << path;
}

TEST(GrubMenu, GoldenTwoSlots) {
  auto menu = RenderGrubMenu(TwoSlots());
  ASSERT_TRUE(menu.ok()) << menu.status();
  ExpectGolden(*menu, "grub_menu_two_slots.cfg");
  // Deterministic: the same inputs give the same bytes.
  EXPECT_EQ(*menu, *RenderGrubMenu(TwoSlots()));
}

TEST(GrubMenu, GoldenSerialConsoleFallbackB) {
  GrubMenuConfig config = TwoSlots();
  config.fallback_default = "slot_b";
  config.serial_console = true;
  config.panic_seconds = 3;
  for (auto& entry : config.entries) entry.kernel_args = "rw console=ttyS0,115200 init=/init";
  auto menu = RenderGrubMenu(config);
  ASSERT_TRUE(menu.ok()) << menu.status();
  ExpectGolden(*menu, "grub_menu_serial_fallback_b.cfg");
}

TEST(GrubMenu, GrubScriptCheckAcceptsTheGoldens) {
  if (!sys::RunProgram({"grub-script-check", "--version"}).ok()) {
    GTEST_SKIP() << "SKIP: no grub-script-check (grub-common)";
  }
  for (const char* name : {"grub_menu_two_slots.cfg", "grub_menu_serial_fallback_b.cfg"}) {
    auto result = sys::RunProgram({"grub-script-check", (kTestdata / name).string()});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 0) << name << ": " << result->err << result->out;
  }
}

TEST(GrubMenu, ParsesBackWhatItRenders) {
  auto menu = RenderGrubMenu(TwoSlots());
  ASSERT_TRUE(menu.ok());
  EXPECT_TRUE(IsGeneratedGrubMenu(*menu));
  auto parsed = ParseGeneratedGrubMenu(*menu);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->fallback_default, "slot_a");
  ASSERT_EQ(parsed->entries.size(), 2u);
  EXPECT_EQ(parsed->entries[0],
            (ParsedGrubEntry{"slot_a", "otaclient slot A", "/ota-slots/slot_a/vmlinuz",
                             "root=PARTUUID=8a1f3c52-0b6e-4c1a-9d43-2f0a7e6b1c0a ro quiet panic=5",
                             "/ota-slots/slot_a/initrd.img"}));
  EXPECT_EQ(parsed->entries[1].initrd, "");
  EXPECT_EQ(parsed->entries[1].id, "slot_b");
}

TEST(GrubMenu, RejectsInputsThatWouldChangeTheScript) {
  struct Case {
    const char* name;
    void (*mutate)(GrubMenuConfig&);
  };
  const Case cases[] = {
      {"no entries", [](GrubMenuConfig& c) { c.entries.clear(); }},
      {"quote in title", [](GrubMenuConfig& c) { c.entries[0].title = "a\" --id x {"; }},
      {"dollar in args", [](GrubMenuConfig& c) { c.entries[0].kernel_args = "x=${y}"; }},
      {"newline in args", [](GrubMenuConfig& c) { c.entries[0].kernel_args = "a\nb"; }},
      {"semicolon in args", [](GrubMenuConfig& c) { c.entries[1].kernel_args = "a; reboot"; }},
      {"relative kernel", [](GrubMenuConfig& c) { c.entries[0].kernel = "vmlinuz"; }},
      {"space in kernel", [](GrubMenuConfig& c) { c.entries[0].kernel = "/a b"; }},
      {"empty partuuid", [](GrubMenuConfig& c) { c.entries[0].root_partuuid = ""; }},
      {"bad id", [](GrubMenuConfig& c) { c.entries[0].id = "slot a"; }},
      {"bad fallback", [](GrubMenuConfig& c) { c.fallback_default = "${x}"; }},
      {"brace in initrd", [](GrubMenuConfig& c) { c.entries[0].initrd = "/x}"; }},
  };
  for (const Case& c : cases) {
    GrubMenuConfig config = TwoSlots();
    c.mutate(config);
    auto menu = RenderGrubMenu(config);
    EXPECT_EQ(menu.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
  }
}

TEST(GrubMenu, ParserRejectsForeignConfigs) {
  EXPECT_FALSE(ParseGeneratedGrubMenu("menuentry 'Debian' {\n linux /vmlinuz\n}\n").ok());
  std::string ours(kGrubMenuMarker);
  EXPECT_FALSE(ParseGeneratedGrubMenu(ours + "\n").ok());  // no entries
  EXPECT_FALSE(ParseGeneratedGrubMenu(ours + "\nmenuentry \"x\" --id a {\n linux /k\n").ok());
  EXPECT_FALSE(ParseGeneratedGrubMenu(ours + "\nmenuentry \"x\" --id a {\n}\n").ok());
  EXPECT_FALSE(
      ParseGeneratedGrubMenu(ours + "\nmenuentry \"x\" --id a {\n linux /k\n chainloader +1\n}\n")
          .ok());
}

TEST(CarryOverKernelArgs, DropsWhatTheMenuSetsAndUnsafeWords) {
  EXPECT_EQ(CarryOverKernelArgs("BOOT_IMAGE=/boot/vmlinuz root=PARTUUID=abc rootfstype=ext4 rw "
                                "console=ttyS0,115200 panic=5 x=$y quiet\n"),
            "rootfstype=ext4 rw console=ttyS0,115200 quiet");
  EXPECT_EQ(CarryOverKernelArgs(""), "");
  EXPECT_EQ(CarryOverKernelArgs("rootwait root=/dev/sda2"), "rootwait");
}

}  // namespace
}  // namespace ota::boot
