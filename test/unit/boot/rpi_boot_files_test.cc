// config.txt / cmdline.txt parsing and the tryboot slot check: tables with nasty vectors.
#include "otaclient/boot/rpi_boot_files.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace ota::boot {
namespace {

TEST(ParseRpiConfig, Table) {
  struct Case {
    std::string text;
    bool ok;
    std::string keys;  // "key=value;..." of what applies
  };
  const Case cases[] = {
      {"", true, ""},
      {"# only a comment\n\n   \n", true, ""},
      {"kernel=vmlinuz_slot_a\n", true, "kernel=vmlinuz_slot_a;"},
      {"KERNEL=vmlinuz \r\n", true, "kernel=vmlinuz;"},
      {"initramfs initrd.img_slot_a followkernel\n", true, "initramfs=initrd.img_slot_a;"},
      {"include extra.txt\n", true, "include=extra.txt;"},
      {"[pi4]\narm_boost=1\n[all]\ncmdline=c.txt\n", true, "arm_boost=1;cmdline=c.txt;"},
      // [none] hides what follows until the next section.
      {"[none]\nkernel=x\n[all]\nkernel=y\n", true, "kernel=y;"},
      {"[NONE]\nkernel=x\n", true, ""},
      {"dtoverlay=vc4-kms-v3d,cma-512\n", true, "dtoverlay=vc4-kms-v3d,cma-512;"},
      {"kernel=a=b\n", true, "kernel=a=b;"},
      {"[pi4\nkernel=x\n", false, ""},
      {"just words\n", false, ""},
      {"kernel\n", false, ""},
      {"initramfs\n", false, ""},
      {"=value\n", false, ""},
      {"ker-nel=x\n", false, ""},
      {std::string("kernel=x\0y\n", 11), false, ""},
      {std::string(size_t{1} << 21, '#'), false, ""},
  };
  for (const Case& c : cases) {
    auto entries = ParseRpiConfig(c.text, "config.txt_slot_a");
    const std::string where = c.text.substr(0, 40);
    ASSERT_EQ(entries.ok(), c.ok) << where << ": " << entries.status();
    if (!c.ok) {
      EXPECT_NE(entries.status().message().find("config.txt_slot_a"), std::string::npos);
      continue;
    }
    std::string keys;
    for (const RpiConfigEntry& e : *entries) keys += e.key + "=" + e.value + ";";
    EXPECT_EQ(keys, c.keys) << where;
  }
  auto bad = ParseRpiConfig("a=1\n\nnonsense here\n", "config.txt_slot_b");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("config.txt_slot_b:3"), std::string::npos) << bad.status();
}

TEST(ParseRpiCmdline, Table) {
  auto args = ParseRpiCmdline("console=serial0  root=LABEL=slot_a\trootwait\nsecond line\n", "c");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args, (std::vector<std::string>{"console=serial0", "root=LABEL=slot_a", "rootwait"}));
  EXPECT_FALSE(ParseRpiCmdline("", "c").ok());
  EXPECT_FALSE(ParseRpiCmdline("   \n", "c").ok());
  EXPECT_FALSE(ParseRpiCmdline("\nroot=x\n", "c").ok());  // only the first line counts
  EXPECT_FALSE(ParseRpiCmdline(std::string("root=a\0b", 8), "c").ok());
}

class SlotCheck : public ::testing::Test {
 protected:
  absl::Status Check(const RpiSlotIdentity& slot = {"slot_b", "AbCd-02", "f00d",
                                                    "/dev/mmcblk0p3"}) {
    return CheckSlotBootConfig(
        [this](std::string_view name) -> absl::StatusOr<std::string> {
          auto it = files_.find(std::string(name));
          if (it == files_.end()) return absl::NotFoundError(std::string(name));
          return it->second;
        },
        slot);
  }
  std::map<std::string, std::string> files_ = {
      {"config.txt_slot_b",
       "kernel=vmlinuz_slot_b\ninitramfs initrd.img_slot_b followkernel\n"
       "cmdline=cmdline.txt_slot_b\n"},
      {"vmlinuz_slot_b", "k"},
      {"initrd.img_slot_b", "i"},
      {"cmdline.txt_slot_b", "console=tty1 root=LABEL=slot_b rootwait\n"},
  };
};

TEST_F(SlotCheck, AcceptsEveryWayOfNamingTheSlot) {
  EXPECT_TRUE(Check().ok()) << Check();
  for (const std::string root :
       {"PARTUUID=abcd-02", "PARTUUID=ABCD-02", "UUID=F00D", "/dev/mmcblk0p3", "LABEL=slot_b"}) {
    files_["cmdline.txt_slot_b"] = "root=LABEL=slot_a root=" + root + " rootwait";
    EXPECT_TRUE(Check().ok()) << root << ": " << Check();  // the last root= wins
  }
}

TEST_F(SlotCheck, RefusesWhatWouldBootTheWrongThingOrNothing) {
  const std::map<std::string, std::string> base = files_;
  struct Case {
    std::string file, content;  // "" content: file removed
    std::string message;
  };
  const Case cases[] = {
      {"config.txt_slot_b", "", "config.txt_slot_b"},
      {"vmlinuz_slot_b", "", "kernel names vmlinuz_slot_b"},
      {"initrd.img_slot_b", "", "initramfs names initrd.img_slot_b"},
      {"cmdline.txt_slot_b", "", "cmdline names cmdline.txt_slot_b"},
      {"cmdline.txt_slot_b", "console=tty1 rootwait", "has no root="},
      {"cmdline.txt_slot_b", "root=LABEL=slot_a", "which is not slot_b"},
      {"cmdline.txt_slot_b", "root=LABEL=slot_bb", "which is not slot_b"},
      {"cmdline.txt_slot_b", "root=PARTUUID=", "which is not slot_b"},
      {"cmdline.txt_slot_b", "root=/dev/mmcblk0p2", "which is not slot_b"},
      {"cmdline.txt_slot_b", "", "cmdline.txt_slot_b"},
      {"config.txt_slot_b", "kernel=../vmlinuz\n", "not a boot file"},
      {"config.txt_slot_b", "kernel=/vmlinuz\n", "not a boot file"},
      {"config.txt_slot_b", "include missing.txt\n", "include names missing.txt"},
      {"config.txt_slot_b", "os_prefix=b/\nkernel=vmlinuz_slot_b\n", "b/vmlinuz_slot_b"},
      {"config.txt_slot_b", "cmdline=cmdline.txt_slot_a\nkernel=vmlinuz_slot_b\n",
       "cmdline.txt_slot_a"},
      {"config.txt_slot_b", "garbage line\n", "config.txt_slot_b:1"},
  };
  for (const Case& c : cases) {
    files_ = base;
    if (c.content.empty()) {
      files_.erase(c.file);
    } else {
      files_[c.file] = c.content;
    }
    absl::Status checked = Check();
    ASSERT_FALSE(checked.ok()) << c.file << "=" << c.content;
    EXPECT_NE(checked.message().find(c.message), std::string::npos)
        << c.file << "=" << c.content << ": " << checked;
  }
}

}  // namespace
}  // namespace ota::boot
