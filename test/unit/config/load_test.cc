// Loading from a directory: real files in a temporary directory.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>

#include "common/config/ecu_info.h"
#include "common/config/proxy_info.h"
#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/config/test_util.h"

namespace ota::config {
namespace {

using ::ota::config::testing::IsConfigError;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class ConfigLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<fs::TempDir> dir = fs::TempDir::Create("config_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
  }
  const std::filesystem::path& dir() const { return dir_->path(); }
  void Write(std::string_view name, std::string_view content) {
    ASSERT_TRUE(fs::WriteFileAtomic(dir() / name, content).ok());
  }

  std::optional<fs::TempDir> dir_;  // removed even when a test fails
};

// No ecu_info is an error (the daemon then runs on the defaults and refuses updates, as
// upstream); no proxy_info gives the defaults (local otaproxy on).
TEST_F(ConfigLoad, NoFiles) {
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir());
  ASSERT_FALSE(ecu.ok());
  EXPECT_EQ(ecu.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ecu.status().message(),
            ota::StrCat((dir() / "ecu_info.yaml").string(), ": no such file (nor ",
                        (dir() / "ecu_info.yml").string(), ")"));
  absl::StatusOr<ProxyInfo> proxy = LoadProxyInfo(dir());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_EQ(*proxy, ProxyInfo{});
  EXPECT_TRUE(proxy->enable_local_ota_proxy);
}

TEST_F(ConfigLoad, MissingDirectoryIsNoFile) {
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir() / "does-not-exist");
  EXPECT_EQ(ecu.status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<ProxyInfo> proxy = LoadProxyInfo(dir() / "does-not-exist");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_TRUE(proxy->source.empty());
}

TEST_F(ConfigLoad, DirectoryPathIsAFileIsAnError) {
  Write("plain", "x");
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir() / "plain");
  ASSERT_FALSE(ecu.ok());
  EXPECT_NE(ecu.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ecu.status().message()), HasSubstr("plain/ecu_info.yaml"));
}

TEST_F(ConfigLoad, ReadsYamlSpelling) {
  Write("ecu_info.yaml", "ecu_id: sub\n");
  Write("proxy_info.yaml", "gateway: false\n");
  ::testing::internal::CaptureStderr();
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir());
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(ecu.ok()) << ecu.status();
  EXPECT_EQ(ecu->ecu_id, "sub");
  EXPECT_EQ(ecu->source, dir() / "ecu_info.yaml");
  EXPECT_THAT(ecu->warnings, IsEmpty());
  EXPECT_THAT(log, HasSubstr((dir() / "ecu_info.yaml").string()));  // which file was used
  absl::StatusOr<ProxyInfo> proxy = LoadProxyInfo(dir());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_FALSE(proxy->gateway);
  EXPECT_FALSE(proxy->enable_local_ota_proxy);  // a file without the key: no local otaproxy
  EXPECT_EQ(proxy->source, dir() / "proxy_info.yaml");
}

// Existing users of the .yml spelling keep working when there is no .yaml (and are told which
// file was read).
TEST_F(ConfigLoad, ReadsYmlSpellingWhenThereIsNoYaml) {
  Write("ecu_info.yml", "ecu_id: main\n");
  Write("proxy_info.yml", "enable_local_ota_proxy: true\n");
  ::testing::internal::CaptureStderr();
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir());
  absl::StatusOr<ProxyInfo> proxy = LoadProxyInfo(dir());
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(ecu.ok()) << ecu.status();
  EXPECT_EQ(ecu->ecu_id, "main");
  EXPECT_EQ(ecu->source, dir() / "ecu_info.yml");
  EXPECT_THAT(ecu->warnings, IsEmpty());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_EQ(proxy->source, dir() / "proxy_info.yml");
  EXPECT_THAT(log, HasSubstr((dir() / "ecu_info.yml").string()));
  EXPECT_THAT(log, HasSubstr((dir() / "proxy_info.yml").string()));
}

// A machine left by the Python client has .yaml; a stale .yml beside it must not change what
// it does: .yaml wins, and the ignored .yml is named in a warning.
TEST_F(ConfigLoad, BothSpellingsUseYamlAndWarn) {
  Write("ecu_info.yml", "ecu_id: from-yml\n");
  Write("ecu_info.yaml", "ecu_id: from-yaml\n");
  Write("proxy_info.yml", "this is not even [valid\n");
  Write("proxy_info.yaml", "gateway: false\n");
  ::testing::internal::CaptureStderr();
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir());
  absl::StatusOr<ProxyInfo> proxy = LoadProxyInfo(dir());
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(ecu.ok()) << ecu.status();
  EXPECT_EQ(ecu->ecu_id, "from-yaml");
  ASSERT_THAT(ecu->warnings, SizeIs(1));
  EXPECT_THAT(ecu->warnings[0], HasSubstr("both "));
  EXPECT_THAT(ecu->warnings[0], HasSubstr("using " + (dir() / "ecu_info.yaml").string()));
  EXPECT_THAT(ecu->warnings[0], HasSubstr("ignoring " + (dir() / "ecu_info.yml").string()));
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_FALSE(proxy->gateway);
  ASSERT_THAT(proxy->warnings, SizeIs(1));
  EXPECT_THAT(log, HasSubstr("WARN"));
  EXPECT_THAT(log, HasSubstr("ignoring " + (dir() / "ecu_info.yml").string()));
  EXPECT_THAT(log, HasSubstr("ignoring " + (dir() / "proxy_info.yml").string()));
}

TEST_F(ConfigLoad, UnknownKeysAreLoggedAsWarnings) {
  Write("ecu_info.yaml", "ecu_id: a\nfuture_key: 1\n");
  ::testing::internal::CaptureStderr();
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir());
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(ecu.ok()) << ecu.status();
  EXPECT_THAT(log, HasSubstr("WARN"));
  EXPECT_THAT(log, HasSubstr((dir() / "ecu_info.yaml").string() + ":2"));
  EXPECT_THAT(log, HasSubstr("future_key"));
}

TEST_F(ConfigLoad, EmptyFileIsInvalidNotAbsent) {
  Write("ecu_info.yaml", "");
  Write("proxy_info.yaml", "# all defaults\n");
  EXPECT_TRUE(
      IsConfigError(LoadEcuInfo(dir()), (dir() / "ecu_info.yaml").string() + ": ", "no settings"));
  EXPECT_TRUE(IsConfigError(LoadProxyInfo(dir()), (dir() / "proxy_info.yaml").string() + ": ",
                            "no settings"));
}

TEST_F(ConfigLoad, InvalidFileIsAnErrorWithItsPathAndLine) {
  Write("ecu_info.yml", "ecu_id: a\nsecondaries:\n  - {ecu_id: a, ip_addr: h}\n");
  Write("proxy_info.yaml", "gateway: false\nupper_ota_proxy: socks5://main:8082\n");
  std::string ecu_path = (dir() / "ecu_info.yml").string();
  std::string proxy_path = (dir() / "proxy_info.yaml").string();
  EXPECT_TRUE(IsConfigError(LoadEcuInfo(dir()),
                            ota::StrCat(ecu_path, ":3: field \"secondaries[0].ecu_id\": "),
                            "duplicate ECU id \"a\""));
  EXPECT_TRUE(IsConfigError(LoadProxyInfo(dir()),
                            ota::StrCat(proxy_path, ":2: field \"upper_ota_proxy\": "),
                            "unsupported scheme \"socks5\""));
}

TEST_F(ConfigLoad, SyntaxErrorIsAnErrorNotDefaults) {
  Write("ecu_info.yaml", "ecu_id: a\n\tip_addr: b\n");
  EXPECT_TRUE(IsConfigError(LoadEcuInfo(dir()),
                            (dir() / "ecu_info.yaml").string() + ":2: ", "invalid YAML"));
}

TEST_F(ConfigLoad, DirectoryInPlaceOfTheFileIsAnError) {
  std::filesystem::create_directory(dir() / "ecu_info.yaml");
  EXPECT_TRUE(IsConfigError(LoadEcuInfo(dir()), (dir() / "ecu_info.yaml").string() + ": ",
                            "not a regular file"));
}

TEST_F(ConfigLoad, DanglingSymlinkIsAnErrorNotAbsent) {
  std::filesystem::create_symlink(dir() / "nowhere.yml", dir() / "proxy_info.yaml");
  absl::StatusOr<ProxyInfo> proxy = LoadProxyInfo(dir());
  ASSERT_FALSE(proxy.ok());
  EXPECT_THAT(std::string(proxy.status().message()), HasSubstr("dangling symlink"));
  EXPECT_THAT(std::string(proxy.status().message()),
              HasSubstr((dir() / "proxy_info.yaml").string()));
}

TEST_F(ConfigLoad, SymlinkToAFileIsFollowed) {
  Write("real.yml", "ecu_id: linked\n");
  std::filesystem::create_symlink(dir() / "real.yml", dir() / "ecu_info.yaml");
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir());
  ASSERT_TRUE(ecu.ok()) << ecu.status();
  EXPECT_EQ(ecu->ecu_id, "linked");
}

TEST_F(ConfigLoad, UnreadableFileIsAnError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files regardless of mode";
  Write("ecu_info.yml", "ecu_id: a\n");
  ASSERT_EQ(::chmod((dir() / "ecu_info.yml").c_str(), 0), 0);
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir());
  ASSERT_FALSE(ecu.ok());
  EXPECT_THAT(std::string(ecu.status().message()), HasSubstr("ecu_info.yml"));
}

TEST_F(ConfigLoad, ReadFailureIsAnErrorNotDefaults) {
  // A regular file (per stat) whose read() fails with EIO, even for root: offset 0 of our own
  // address space is unmapped.
  std::filesystem::create_symlink("/proc/self/mem", dir() / "ecu_info.yml");
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(dir());
  ASSERT_FALSE(ecu.ok());
  EXPECT_THAT(std::string(ecu.status().message()), HasSubstr("ecu_info.yml"));
}

TEST_F(ConfigLoad, OversizedFileIsRejectedBeforeReading) {
  Write("proxy_info.yaml", std::string((1 << 20) + 1, '#'));
  EXPECT_TRUE(IsConfigError(LoadProxyInfo(dir()), (dir() / "proxy_info.yaml").string() + ": ",
                            "larger than"));
}

TEST_F(ConfigLoad, LoadFileDirectly) {
  Write("custom.yml", "ecu_id: direct\n");
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfoFile(dir() / "custom.yml");
  ASSERT_TRUE(ecu.ok()) << ecu.status();
  EXPECT_EQ(ecu->ecu_id, "direct");
  absl::StatusOr<ProxyInfo> missing = LoadProxyInfoFile(dir() / "absent.yml");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

// The annotated samples shipped in deploy/ must stay valid and warning-free.
TEST(ConfigSamples, DeploySamplesParseCleanly) {
  std::filesystem::path deploy = std::filesystem::path(OTA_SOURCE_DIR) / "deploy";
  absl::StatusOr<EcuInfo> ecu = LoadEcuInfo(deploy);
  ASSERT_TRUE(ecu.ok()) << ecu.status();
  EXPECT_EQ(ecu->source, deploy / "ecu_info.yaml");
  EXPECT_THAT(ecu->warnings, IsEmpty());
  EXPECT_EQ(ecu->ecu_id, "autoware");
  EXPECT_THAT(ecu->secondaries, SizeIs(2));
  absl::StatusOr<ProxyInfo> proxy = LoadProxyInfo(deploy);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_EQ(proxy->source, deploy / "proxy_info.yaml");
  EXPECT_THAT(proxy->warnings, IsEmpty());
  ProxyInfo expected;  // the sample spells out the defaults
  expected.source = deploy / "proxy_info.yaml";
  EXPECT_EQ(*proxy, expected);
}

}  // namespace
}  // namespace ota::config
