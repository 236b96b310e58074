// The external caches' lookup on real files: <root>/data/<sha256>.zst before <root>/data/<sha256>,
// only regular files inside data/ (no symlink followed, a FIFO never blocks), size sanity;
// the mount-point test against a mountinfo file; the environment switch read as upstream reads
// it.
#include "otaproxy/external/external_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/fs/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ota::proxy {
namespace {

using ::testing::HasSubstr;

const std::string kShaA(64, 'a');
const std::string kShaB(64, 'b');
constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

class ExternalCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("external-cache-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<fs::TempDir>(*std::move(dir));
    root_ = dir_->path() / "mnt";
    std::filesystem::create_directories(root_ / "data");
  }
  void Put(const std::string& name, const std::string& content) {
    ASSERT_TRUE(fs::WriteFileAtomic(root_ / "data" / name, content).ok());
  }
  std::unique_ptr<ExternalCache> OpenOk() {
    auto cache = ExternalCache::Open("usb", root_);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return cache.ok() ? *std::move(cache) : nullptr;
  }

  std::unique_ptr<fs::TempDir> dir_;
  std::filesystem::path root_;
};

TEST_F(ExternalCacheTest, ZstFormFirstThenPlain) {
  Put(kShaA + ".zst", "compressed");
  Put(kShaA, "plain");
  Put(kShaB, "only plain");
  auto cache = OpenOk();
  ASSERT_NE(cache, nullptr);
  std::optional<ExternalHit> a = cache->Find(kShaA);
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->zst);
  EXPECT_EQ(a->size, 10u);
  EXPECT_EQ(ReadAll(a->fd.get()), "compressed");
  std::optional<ExternalHit> b = cache->Find(kShaB);
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->zst);
  EXPECT_EQ(ReadAll(b->fd.get()), "only plain");
  EXPECT_FALSE(cache->Find(std::string(64, 'c')).has_value());
}

TEST_F(ExternalCacheTest, OnlyFixedFormNamesAreLookedUp) {
  Put("x", "not a digest");
  Put(kShaA, "a");
  auto cache = OpenOk();
  ASSERT_NE(cache, nullptr);
  for (const std::string& bad :
       {std::string("x"), std::string(""), std::string(63, 'a'), std::string(65, 'a'),
        std::string(64, 'A'), "../data/" + kShaA.substr(8), std::string(63, 'a') + "/"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(cache->Find(bad).has_value());
  }
}

TEST_F(ExternalCacheTest, SymlinksAreNeverFollowed) {
  // A file outside the cache, and a symlink to it under the blob's name (.zst form), plus a
  // symlink inside data/ to a file inside data/ (plain form): neither is served.
  ASSERT_TRUE(fs::WriteFileAtomic(dir_->path() / "secret", "outside").ok());
  std::filesystem::create_symlink(dir_->path() / "secret", root_ / "data" / (kShaA + ".zst"));
  Put("real", "inside");
  std::filesystem::create_symlink("real", root_ / "data" / kShaA);
  auto cache = OpenOk();
  ASSERT_NE(cache, nullptr);
  EXPECT_FALSE(cache->Find(kShaA).has_value());
  // The plain file is still found when the .zst name is a symlink.
  std::filesystem::create_symlink(dir_->path() / "secret", root_ / "data" / (kShaB + ".zst"));
  Put(kShaB, "plain b");
  std::optional<ExternalHit> b = cache->Find(kShaB);
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->zst);
  EXPECT_EQ(ReadAll(b->fd.get()), "plain b");
}

TEST_F(ExternalCacheTest, DataDirMustNotBeASymlink) {
  std::filesystem::remove(root_ / "data");
  std::filesystem::create_directories(dir_->path() / "elsewhere");
  std::filesystem::create_symlink(dir_->path() / "elsewhere", root_ / "data");
  auto cache = ExternalCache::Open("usb", root_);
  ASSERT_FALSE(cache.ok());
  EXPECT_THAT(cache.status().message(), HasSubstr((root_ / "data").string()));
  EXPECT_THAT(cache.status().message(), HasSubstr("not a symlink"));
}

TEST_F(ExternalCacheTest, MissingDataDirIsAnErrorNamingIt) {
  std::filesystem::remove(root_ / "data");
  auto cache = ExternalCache::Open("nfs", root_);
  ASSERT_FALSE(cache.ok());
  EXPECT_THAT(cache.status().message(), HasSubstr((root_ / "data").string()));
  EXPECT_THAT(cache.status().message(), HasSubstr("data/<sha256>[.zst]"));
}

TEST_F(ExternalCacheTest, OnlyRegularFilesOfASaneSize) {
  // A FIFO under the .zst name must neither block nor be served; a directory under the plain
  // name is skipped too.
  ASSERT_EQ(::mkfifo((root_ / "data" / (kShaA + ".zst")).c_str(), 0644), 0);
  std::filesystem::create_directories(root_ / "data" / kShaA);
  // Empty files: only the empty file's own digest may be empty; a .zst never.
  Put(kShaB, "");
  Put(std::string(kEmptySha) + ".zst", "");
  Put(kEmptySha, "");
  const std::string sha_c(64, 'c');
  auto cache = OpenOk();
  ASSERT_NE(cache, nullptr);
  EXPECT_FALSE(cache->Find(kShaA).has_value());
  EXPECT_FALSE(cache->Find(kShaB).has_value());
  std::optional<ExternalHit> empty = cache->Find(kEmptySha);
  ASSERT_TRUE(empty.has_value());
  EXPECT_FALSE(empty->zst);
  EXPECT_EQ(empty->size, 0u);
  // A non-empty file named by the empty digest is not it.
  std::filesystem::remove(root_ / "data" / kEmptySha);
  Put(kEmptySha, "x");
  EXPECT_FALSE(cache->Find(kEmptySha).has_value());
  EXPECT_FALSE(cache->Find(sha_c).has_value());
}

TEST_F(ExternalCacheTest, IsMountPointReadsMountinfo) {
  const std::filesystem::path mountinfo = dir_->path() / "mountinfo";
  const std::string real_root = std::filesystem::canonical(root_).string();
  ASSERT_TRUE(fs::WriteFileAtomic(mountinfo,
                                  "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
                                  "40 22 7:3 / " +
                                      real_root + " ro,nosuid,nodev,noexec - ext4 /dev/loop3 ro\n")
                  .ok());
  absl::StatusOr<bool> yes = IsMountPoint(root_, mountinfo);
  ASSERT_TRUE(yes.ok()) << yes.status();
  EXPECT_TRUE(*yes);
  // The same directory through a symlink: canonical path compared.
  std::filesystem::create_symlink(root_, dir_->path() / "link");
  EXPECT_TRUE(*IsMountPoint(dir_->path() / "link", mountinfo));
  EXPECT_FALSE(*IsMountPoint(root_ / "data", mountinfo));
  EXPECT_FALSE(*IsMountPoint(dir_->path() / "missing", mountinfo));
  EXPECT_FALSE(IsMountPoint(root_, dir_->path() / "no-mountinfo").ok());
  // The real table: / is a mount point, a fresh temp dir is not.
  EXPECT_TRUE(*IsMountPoint("/"));
  EXPECT_FALSE(*IsMountPoint(root_));
}

TEST(ExternalCacheEnabledByEnvTest, ReadLikeAPydanticBool) {
  struct Case {
    const char* value;
    bool enabled;
    bool warned;
  };
  const Case cases[] = {
      {nullptr, true, false}, {"1", true, false},        {"true", true, false},
      {"TRUE", true, false},  {"t", true, false},        {"yes", true, false},
      {"Y", true, false},     {"on", true, false},       {" on ", true, false},
      {"0", false, false},    {"false", false, false},   {"False", false, false},
      {"f", false, false},    {"no", false, false},      {"N", false, false},
      {"off", false, false},  {"\toff\n", false, false}, {"", true, true},
      {"2", true, true},      {"disable", true, true},   {"of", true, true},
      {"fals e", true, true}, {"0x0", true, true},       {"\xff", true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value == nullptr ? "(unset)" : c.value);
    std::string warning;
    EXPECT_EQ(ExternalCacheEnabledByEnv(c.value, &warning), c.enabled);
    EXPECT_EQ(!warning.empty(), c.warned) << warning;
    if (c.warned) {
      EXPECT_THAT(warning, HasSubstr("OTACLIENT_OTAPROXY_ENABLE_EXTERNAL_CACHE"));
    }
  }
}

}  // namespace
}  // namespace ota::proxy
