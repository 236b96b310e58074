// nvbootctrl output parsing (table of nasty outputs) and the wrapper driving the fake CLI from
// test/lib/fake-nvbootctrl as a real process.
#include "otaclient/boot/nvbootctrl.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/fs/fs.h"
#include "common/sys/command.h"
#include "gtest/gtest.h"
#include "otaclient/boot/jetson_bsp.h"

namespace ota::boot {
namespace {

struct SlotCase {
  std::string output;
  int expected;  // -1: must be rejected
};

TEST(ParseNvbootctrlSlot, Table) {
  const SlotCase cases[] = {
      {"0\n", 0},
      {"1\n", 1},
      {"0", 0},
      {"1", 1},
      {"2\n", -1},
      {"", -1},
      {"\n", -1},
      {" 0\n", -1},
      {"0 \n", -1},
      {"0\n\n", -1},
      {"01\n", -1},
      {"0\r\n", -1},
      {"-1\n", -1},
      {"a\n", -1},
      {"1\n0\n", -1},
      {"9\n", -1},
      {std::string("0\0", 2), -1},
      {"\n0", -1},
      {"slot: 0\n", -1},
      {"\xff\n", -1},
      {"Current slot: 1", -1},
  };
  for (const SlotCase& c : cases) {
    absl::StatusOr<int> slot = ParseNvbootctrlSlot(c.output);
    if (c.expected < 0) {
      EXPECT_FALSE(slot.ok()) << "accepted '" << c.output << "' as " << *slot;
    } else {
      ASSERT_TRUE(slot.ok()) << slot.status();
      EXPECT_EQ(*slot, c.expected) << c.output;
    }
  }
}

TEST(ParseNvbootctrlSlot, ErrorQuotesOutputSafely) {
  absl::StatusOr<int> slot = ParseNvbootctrlSlot("bad\x01\n");
  ASSERT_FALSE(slot.ok());
  EXPECT_NE(slot.status().message().find("get-current-slot"), absl::string_view::npos);
  EXPECT_NE(slot.status().message().find("bad\\x01\\n"), absl::string_view::npos) << slot.status();
}

TEST(ParseNvbootctrlSlotCount, Table) {
  const SlotCase cases[] = {{"2\n", 2}, {"1\n", 1},   {"2", 2},      {"0\n", -1},
                            {"", -1},   {"12\n", -1}, {"two\n", -1}, {"2\n\n", -1}};
  for (const SlotCase& c : cases) {
    absl::StatusOr<int> count = ParseNvbootctrlSlotCount(c.output);
    if (c.expected < 0) {
      EXPECT_FALSE(count.ok()) << "accepted '" << c.output << "'";
    } else {
      ASSERT_TRUE(count.ok()) << count.status();
      EXPECT_EQ(*count, c.expected);
    }
  }
}

class NvbootctrlFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("nvbootctrl-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    state_ = tmp_->path() / "state";
    log_ = tmp_->path() / "calls.log";
    ::setenv("FAKE_NVBOOTCTRL_STATE", state_.c_str(), 1);
    ::setenv("FAKE_NVBOOTCTRL_LOG", log_.c_str(), 1);
    ::unsetenv("FAKE_NVBOOTCTRL_FAIL");
    ASSERT_TRUE(sys::RunProgramChecked({kFake, "fake-init", "0"}).ok());
  }
  void TearDown() override {
    ::unsetenv("FAKE_NVBOOTCTRL_STATE");
    ::unsetenv("FAKE_NVBOOTCTRL_LOG");
    ::unsetenv("FAKE_NVBOOTCTRL_FAIL");
  }
  std::string Log() {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  static constexpr const char* kFake = OTA_SOURCE_DIR "/test/lib/fake-nvbootctrl";
  std::unique_ptr<fs::TempDir> tmp_;
  std::filesystem::path state_;
  std::filesystem::path log_;
  Nvbootctrl nv_{kFake};
};

TEST_F(NvbootctrlFakeTest, SwitchCycle) {
  EXPECT_EQ(*nv_.GetCurrentSlot(), 0);
  EXPECT_EQ(*nv_.GetNumberSlots(), 2);
  ASSERT_TRUE(nv_.SetSlotAsUnbootable(1).ok());
  EXPECT_FALSE(*nv_.IsSlotBootable(1));
  EXPECT_TRUE(*nv_.IsSlotBootable(0));
  ASSERT_TRUE(nv_.SetActiveBootSlot(1).ok());
  EXPECT_TRUE(*nv_.IsSlotBootable(1));
  EXPECT_FALSE(*nv_.IsSlotMarkedSuccessful(1));
  ASSERT_EQ(*sys::RunProgramChecked({kFake, "fake-boot"}), "1\n");
  EXPECT_EQ(*nv_.GetCurrentSlot(), 1);
  ASSERT_TRUE(nv_.MarkBootSuccessful().ok());
  EXPECT_TRUE(*nv_.IsSlotMarkedSuccessful(1));
  EXPECT_EQ(Log(),
            "-t rootfs get-current-slot\n-t rootfs get-number-slots\n"
            "-t rootfs set-slot-as-unbootable 1\n-t rootfs is-slot-bootable 1\n"
            "-t rootfs is-slot-bootable 0\n-t rootfs set-active-boot-slot 1\n"
            "-t rootfs is-slot-bootable 1\n-t rootfs is-slot-marked-successful 1\n"
            "-t rootfs get-current-slot\n-t rootfs mark-boot-successful\n"
            "-t rootfs is-slot-marked-successful 1\n");
}

TEST_F(NvbootctrlFakeTest, FailedNewSlotFallsBack) {
  ASSERT_TRUE(nv_.SetActiveBootSlot(1).ok());
  ASSERT_EQ(*sys::RunProgramChecked({kFake, "fake-boot", "--fail-new"}), "0\n");
  EXPECT_EQ(*nv_.GetCurrentSlot(), 0);
  EXPECT_FALSE(*nv_.IsSlotBootable(1));
}

TEST_F(NvbootctrlFakeTest, InjectedFailureNamesTheCommand) {
  ::setenv("FAKE_NVBOOTCTRL_FAIL", "set-active-boot-slot 1", 1);
  absl::Status status = nv_.SetActiveBootSlot(1);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("set-active-boot-slot 1"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("injected failure"), absl::string_view::npos) << status;
  EXPECT_TRUE(nv_.SetActiveBootSlot(0).ok());  // other slot unaffected
}

TEST_F(NvbootctrlFakeTest, GarbageOutputIsAnError) {
  // The state file says slot 7: get-current-slot prints "7", which must not be trusted.
  std::ofstream(state_) << "current=7\nactive=0\nbootable0=1\nbootable1=1\n";
  absl::StatusOr<int> slot = nv_.GetCurrentSlot();
  EXPECT_FALSE(slot.ok());
}

TEST_F(NvbootctrlFakeTest, UnifiedAbDrivesTheBootloaderChainOnly) {
  ASSERT_TRUE(sys::RunProgramChecked({kFake, "fake-init", "0", "0"}).ok());
  Nvbootctrl bootloader(kFake, NvbootctrlTarget::kBootloader);
  EXPECT_EQ(*bootloader.IsUnifiedEnabled(), UnifiedAb::kEnabled);
  // -t rootfs is refused while unified A/B is on: the product must not use it then.
  EXPECT_FALSE(nv_.GetCurrentSlot().ok());
  ASSERT_TRUE(bootloader.SetSlotAsUnbootable(1).ok());
  EXPECT_FALSE(*bootloader.IsSlotBootable(1));
  ASSERT_TRUE(bootloader.SetActiveBootSlot(1).ok());
  ASSERT_EQ(*sys::RunProgramChecked({kFake, "fake-boot"}), "1\n");
  EXPECT_EQ(*bootloader.GetCurrentSlot(), 1);
  EXPECT_EQ(*sys::RunProgramChecked({kFake, "fake-get", "current"}), "1\n");  // rootfs follows
  EXPECT_EQ(Log(),
            "is-unified-enabled\n-t rootfs get-current-slot\nset-slot-as-unbootable 1\n"
            "is-slot-bootable 1\nset-active-boot-slot 1\nget-current-slot\n");
}

TEST_F(NvbootctrlFakeTest, UnifiedAbExitCodes) {
  Nvbootctrl bootloader(kFake, NvbootctrlTarget::kBootloader);
  for (const auto& [code, expected] :
       {std::pair{"0", UnifiedAb::kEnabled}, std::pair{"70", UnifiedAb::kRootfsOnly},
        std::pair{"69", UnifiedAb::kDisabled}, std::pair{"3", UnifiedAb::kUnknown}}) {
    ASSERT_TRUE(sys::RunProgramChecked({kFake, "fake-init", "0", code}).ok());
    EXPECT_EQ(*bootloader.IsUnifiedEnabled(), expected) << code;
  }
}

TEST_F(NvbootctrlFakeTest, UefiVariantSpeaksDumpSlotsInfo) {
  static constexpr const char* kUefiFake = OTA_SOURCE_DIR "/test/lib/fake-nvbootctrl-uefi";
  ASSERT_TRUE(sys::RunProgramChecked({kUefiFake, "fake-init", "1", "36.3.0"}).ok());
  Nvbootctrl uefi(kUefiFake, NvbootctrlTarget::kBootloader);
  EXPECT_EQ(*uefi.GetCurrentSlot(), 1);
  ASSERT_TRUE(uefi.SetActiveBootSlot(0).ok());
  auto info = ParseDumpSlotsInfo(*uefi.DumpSlotsInfo());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(*info->firmware_version, (BspVersion{36, 3, 0}));
  EXPECT_EQ(info->current_bootloader_slot, 1);
  EXPECT_EQ(info->active_bootloader_slot, 0);
  EXPECT_EQ(info->slot_status[0], "normal");
  auto verified = uefi.Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->exit_code, 0);
  // A CBoot-style call (-t rootfs) is an error on UEFI.
  EXPECT_FALSE(Nvbootctrl(kUefiFake).GetCurrentSlot().ok());
}

TEST(NvbootctrlTest, MissingBinaryIsAnErrorNotFalse) {
  Nvbootctrl nv("/nonexistent/nvbootctrl");
  EXPECT_FALSE(nv.IsSlotBootable(0).ok());
  EXPECT_FALSE(nv.GetCurrentSlot().ok());
}

TEST(NvbootctrlTest, SignalIsAnErrorNotFalse) {
  // A helper killed by a signal gives no answer.
  auto dir = fs::TempDir::Create("nvbootctrl-sig");
  ASSERT_TRUE(dir.ok());
  std::filesystem::path script = dir->path() / "nvbootctrl";
  std::ofstream(script) << "#!/bin/sh\nkill -9 $$\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  Nvbootctrl nv(script.string());
  EXPECT_FALSE(nv.IsSlotMarkedSuccessful(0).ok());
}

}  // namespace
}  // namespace ota::boot
