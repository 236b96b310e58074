// Jetson text parsers (jetson_bsp.h) against tables of real and nasty inputs.
#include "otaclient/boot/jetson_bsp.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace ota::boot {
namespace {

TEST(BspVersion, ParseTable) {
  struct Case {
    std::string text;
    std::optional<BspVersion> expected;
  };
  const Case cases[] = {
      {"R35.4.1", BspVersion{35, 4, 1}},
      {"r35.4.1", BspVersion{35, 4, 1}},
      {"35.4.1", BspVersion{35, 4, 1}},
      {"R36.3.0-foo", BspVersion{36, 3, 0}},  // prefix match, like upstream
      {"R32.6.1\n", BspVersion{32, 6, 1}},
      {"R0.0.0", BspVersion{0, 0, 0}},  // syntactically fine; backends judge it
      {"R35.4", std::nullopt},
      {"R35..1", std::nullopt},
      {"RR35.4.1", std::nullopt},
      {" R35.4.1", std::nullopt},
      {"R-35.4.1", std::nullopt},
      {"R35.4.x", std::nullopt},
      {"R12345.4.1", std::nullopt},  // more than 4 digits
      {"", std::nullopt},
      {"R", std::nullopt},
      {std::string("R35\0.4.1", 8), std::nullopt},
  };
  for (const Case& c : cases) {
    absl::StatusOr<BspVersion> parsed = ParseBspVersion(c.text);
    if (c.expected) {
      ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.status();
      EXPECT_EQ(*parsed, *c.expected) << c.text;
    } else {
      EXPECT_FALSE(parsed.ok()) << c.text << " parsed as " << parsed->ToString();
    }
  }
  EXPECT_EQ((BspVersion{35, 4, 1}).ToString(), "R35.4.1");
  EXPECT_LT((BspVersion{35, 4, 1}), (BspVersion{35, 5, 0}));
  EXPECT_LT((BspVersion{32, 7, 4}), (BspVersion{34, 0, 0}));
}

TEST(NvTegraRelease, ParseTable) {
  struct Case {
    std::string text;
    std::optional<BspVersion> expected;
  };
  const Case cases[] = {
      {"# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: "
       "Fri Jun 16 04:13:55 UTC 2023\n# KERNEL_VARIANT: oot\n",
       BspVersion{35, 4, 1}},
      {"# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t186ref, EABI: aarch64, DATE: "
       "Mon Jul 26 19:36:31 UTC 2021",
       BspVersion{32, 6, 1}},
      {"# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64",
       BspVersion{36, 3, 0}},
      // Only the first line counts.
      {"\n# R35 (release), REVISION: 4.1, GCID: 1, BOARD: t186ref, EABI: aarch64", std::nullopt},
      {"# R35 (release), REVISION: 4, GCID: 1, BOARD: t186ref, EABI: aarch64", std::nullopt},
      {"# R35 (release), REVISION: 4.1, GCID: x, BOARD: t186ref, EABI: aarch64", std::nullopt},
      {"# R35 (re-lease), REVISION: 4.1, GCID: 1, BOARD: t186ref, EABI: aarch64", std::nullopt},
      {"R35 (release), REVISION: 4.1, GCID: 1, BOARD: t186ref, EABI: aarch64", std::nullopt},
      {"# R35 (release), REVISION: 4.1, GCID: 1, BOARD: t186ref, EABI: ", std::nullopt},
      {"", std::nullopt},
      {"garbage", std::nullopt},
  };
  for (const Case& c : cases) {
    absl::StatusOr<BspVersion> parsed = ParseNvTegraRelease(c.text);
    if (c.expected) {
      ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.status();
      EXPECT_EQ(*parsed, *c.expected) << c.text;
    } else {
      EXPECT_FALSE(parsed.ok()) << c.text;
    }
  }
}

TEST(NvBootControlConf, Table) {
  auto conf = ParseNvBootControlConf(
      "TNSPEC 3701-500-0005-A.0-1-0-cti-orin-agx-agx201-00-\n"
      "COMPATIBLE_SPEC 3701--0005--1--jetson-agx-orin-devkit-\n"
      "TEGRA_LEGACY_UPDATE false\n"
      "TEGRA_BOOT_STORAGE nvme0n1\n"
      "TEGRA_EMMC_ONLY false\n"
      "TEGRA_CHIPID 0x23\n"
      "TEGRA_OTA_BOOT_DEVICE /dev/mtdblock0\n"
      "TEGRA_OTA_GPT_DEVICE /dev/mtdblock0\n");
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(conf->tnspec, "3701-500-0005-A.0-1-0-cti-orin-agx-agx201-00-");
  EXPECT_EQ(conf->tegra_ota_boot_device, "/dev/mtdblock0");
  EXPECT_EQ(FirmwareStorageOf(*conf), FirmwareStorage::kQspi);

  conf = ParseNvBootControlConf(
      "  TNSPEC  2888-400-0004-M.0-1-2-jetson-xavier-rqx580-  \n"
      "TEGRA_OTA_BOOT_DEVICE /dev/mmcblk0boot0\nTNSPEC second\n");
  ASSERT_TRUE(conf.ok());
  EXPECT_EQ(conf->tnspec, "2888-400-0004-M.0-1-2-jetson-xavier-rqx580-");  // first wins
  EXPECT_EQ(FirmwareStorageOf(*conf), FirmwareStorage::kEmmc);

  conf = ParseNvBootControlConf("TNSPEC\t1234\nTEGRA_OTA_BOOT_DEVICE /dev/sda\n");
  ASSERT_TRUE(conf.ok());
  EXPECT_EQ(conf->tnspec, "");  // a tab is no separator (upstream raises)
  EXPECT_EQ(FirmwareStorageOf(*conf), FirmwareStorage::kUnknown);
  EXPECT_EQ(FirmwareStorageOf(NvBootControlConf{}), FirmwareStorage::kUnknown);
  EXPECT_FALSE(ParseNvBootControlConf(std::string("TNSPEC a\0b", 10)).ok());
}

TEST(DumpSlotsInfo, UefiOutput) {
  auto info = ParseDumpSlotsInfo(
      "Current version: 35.4.1\nCapsule update status: 1\nCurrent bootloader slot: A\n"
      "Active bootloader slot: B\nnum_slots: 2\nslot: 0,             status: normal\n"
      "slot: 1,             status: unbootable\n");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_TRUE(info->firmware_version.has_value());
  EXPECT_EQ(*info->firmware_version, (BspVersion{35, 4, 1}));
  EXPECT_EQ(info->current_version_text, "35.4.1");
  EXPECT_EQ(info->capsule_update_status, 1);
  EXPECT_EQ(info->current_bootloader_slot, 0);
  EXPECT_EQ(info->active_bootloader_slot, 1);
  EXPECT_EQ(info->slot_status[0], "normal");
  EXPECT_EQ(info->slot_status[1], "unbootable");
}

TEST(DumpSlotsInfo, Table) {
  struct Case {
    std::string text;
    bool ok;
  };
  const Case cases[] = {
      {"", true},  // nothing known: every field absent
      {"Current version: 0.0.0\n", true},
      {"Current version: 36.3.0\nCurrent version: 1.2.3\n", true},  // first wins
      {"Current version: banana\n", false},
      {"Current version:\n", false},
      {"Active bootloader slot: C\n", false},
      {"Active bootloader slot: 1\n", true},
      {"Capsule update status: -1\n", false},
      {"Capsule update status: 999\n", false},
      {"slot: 2,  status: normal\n", true},  // slot lines that do not parse are ignored
      {"slot: 0 status: normal\n", true},
      {"slot: 0, bootable: 1\n", true},
      {"Current rootfs slot: 0\nsome other line\n", true},
      {std::string("Current version: 35.4.1\0", 24), false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ParseDumpSlotsInfo(c.text).ok(), c.ok) << c.text;
  }
  auto first = ParseDumpSlotsInfo("Current version: 36.3.0\nCurrent version: 1.2.3\n");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first->firmware_version, (BspVersion{36, 3, 0}));
  auto extra = ParseDumpSlotsInfo(
      "slot: 1, retry_count: 3, status: unbootable, x: y\n"
      "slot: 0 status: unbootable\n");
  ASSERT_TRUE(extra.ok());
  EXPECT_EQ(extra->slot_status[1], "unbootable");
  EXPECT_EQ(extra->slot_status[0], "");
  auto none = ParseDumpSlotsInfo("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->firmware_version.has_value());
  EXPECT_FALSE(none->active_bootloader_slot.has_value());
}

}  // namespace
}  // namespace ota::boot
