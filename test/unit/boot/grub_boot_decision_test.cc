// DecideGrubBoot: the table of what GRUB boots from our menu for every grubenv state that
// matters, and what the environment block becomes.
#include "otaclient/boot/grub_boot_decision.h"

#include <string>

#include "gtest/gtest.h"

namespace ota::boot {
namespace {

ParsedGrubMenu Menu(std::string fallback = "slot_a") {
  ParsedGrubMenu menu;
  menu.fallback_default = std::move(fallback);
  menu.entries = {
      {"slot_a", "otaclient slot A", "/ota-slots/slot_a/vmlinuz", "root=PARTUUID=aa panic=5", ""},
      {"slot_b", "otaclient slot B", "/ota-slots/slot_b/vmlinuz", "root=PARTUUID=bb panic=5",
       "/ota-slots/slot_b/initrd.img"},
  };
  return menu;
}

struct Case {
  std::string name;
  GrubEnvMap env;
  std::string fallback;
  std::string booted;
  bool one_shot;
  GrubEnvMap env_after;
};

class DecisionTest : public ::testing::TestWithParam<Case> {};

TEST_P(DecisionTest, Decides) {
  const Case& c = GetParam();
  auto decision = DecideGrubBoot(c.env, Menu(c.fallback));
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->entry_id, c.booted);
  EXPECT_EQ(decision->one_shot, c.one_shot);
  EXPECT_EQ(decision->env_after, c.env_after);
}

INSTANTIATE_TEST_SUITE_P(
    Table, DecisionTest,
    ::testing::Values(Case{"empty_env_uses_fallback", {}, "slot_a", "slot_a", false, {}},
                      Case{"empty_env_fallback_b", {}, "slot_b", "slot_b", false, {}},
                      Case{"saved_entry_wins_over_fallback",
                           {{"saved_entry", "slot_b"}},
                           "slot_a",
                           "slot_b",
                           false,
                           {{"saved_entry", "slot_b"}}},
                      Case{"one_shot_boots_next_and_clears_it",
                           {{"saved_entry", "slot_a"}, {"next_entry", "slot_b"}},
                           "slot_a",
                           "slot_b",
                           true,
                           {{"saved_entry", "slot_a"}, {"next_entry", ""}}},
                      Case{"cleared_one_shot_falls_back_to_saved",
                           {{"saved_entry", "slot_a"}, {"next_entry", ""}},
                           "slot_a",
                           "slot_a",
                           false,
                           {{"saved_entry", "slot_a"}, {"next_entry", ""}}},
                      Case{"one_shot_without_saved_entry",
                           {{"next_entry", "slot_a"}},
                           "slot_b",
                           "slot_a",
                           true,
                           {{"next_entry", ""}}},
                      Case{"empty_saved_entry_is_ignored",
                           {{"saved_entry", ""}},
                           "slot_b",
                           "slot_b",
                           false,
                           {{"saved_entry", ""}}},
                      Case{"unknown_saved_entry_boots_first_entry",
                           {{"saved_entry", "slot_c"}},
                           "slot_b",
                           "slot_a",
                           false,
                           {{"saved_entry", "slot_c"}}},
                      Case{"unknown_one_shot_still_consumed",
                           {{"saved_entry", "slot_b"}, {"next_entry", "gone"}},
                           "slot_a",
                           "slot_a",
                           true,
                           {{"saved_entry", "slot_b"}, {"next_entry", ""}}},
                      Case{"title_matches",
                           {{"saved_entry", "otaclient slot B"}},
                           "slot_a",
                           "slot_b",
                           false,
                           {{"saved_entry", "otaclient slot B"}}},
                      Case{"numeric_index",
                           {{"saved_entry", "1"}},
                           "slot_a",
                           "slot_b",
                           false,
                           {{"saved_entry", "1"}}},
                      Case{"numeric_out_of_range",
                           {{"saved_entry", "7"}},
                           "slot_b",
                           "slot_a",
                           false,
                           {{"saved_entry", "7"}}},
                      Case{"other_variables_untouched",
                           {{"next_entry", "slot_b"}, {"boot_success", "1"}},
                           "slot_a",
                           "slot_b",
                           true,
                           {{"next_entry", ""}, {"boot_success", "1"}}}),
    [](const auto& info) { return info.param.name; });

TEST(Decision, KernelCommandLineAsProcCmdlineShowsIt) {
  auto decision = DecideGrubBoot({{"next_entry", "slot_b"}}, Menu());
  ASSERT_TRUE(decision.ok());
  EXPECT_EQ(decision->kernel_cmdline,
            "BOOT_IMAGE=/ota-slots/slot_b/vmlinuz root=PARTUUID=bb panic=5");
  EXPECT_EQ(decision->kernel, "/ota-slots/slot_b/vmlinuz");
  EXPECT_EQ(decision->initrd, "/ota-slots/slot_b/initrd.img");
}

TEST(Decision, MenuWithoutEntriesIsAnError) {
  ParsedGrubMenu empty;
  EXPECT_EQ(DecideGrubBoot({}, empty).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ota::boot
