// Helpers for the update tests: hand-built manifests and real trees on disk.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/image/manifest.h"
#include "gtest/gtest.h"

namespace ota::update::testing {

namespace stdfs = std::filesystem;

inline crypto::Sha256Digest Digest(std::string_view content) { return crypto::Sha256Of(content); }
inline std::string Hex(std::string_view content) { return crypto::ToHex(Digest(content)); }

inline void WriteFile(const stdfs::path& path, std::string_view content, mode_t mode = 0644,
                      uid_t uid = 0, gid_t gid = 0) {
  stdfs::create_directories(path.parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    ASSERT_TRUE(out.good()) << path;
  }
  ASSERT_EQ(::chown(path.c_str(), uid, gid), 0) << path;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

inline std::string ReadFile(const stdfs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline struct stat Lstat(const stdfs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

// Deterministic filler content of `size` bytes, distinct per `seed`.
inline std::string Content(size_t size, int seed) {
  std::string s(size, '\0');
  uint32_t x = 2166136261u ^ static_cast<uint32_t>(seed);
  for (size_t i = 0; i < size; ++i) {
    x = x * 16777619u + 0x9e3779b9u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

struct ManifestBuilder {
  image::Manifest m;

  void Dir(std::string_view path, uint32_t mode = 0755, uint32_t uid = 0, uint32_t gid = 0) {
    image::DirEntry d;
    d.mode = mode;
    d.uid = uid;
    d.gid = gid;
    d.path = m.Intern(path);
    m.dirs.push_back(d);
  }
  void Symlink(std::string_view path, std::string_view target, uint32_t uid = 0, uint32_t gid = 0) {
    image::SymlinkEntry e;
    e.mode = 0777;
    e.uid = uid;
    e.gid = gid;
    e.path = m.Intern(path);
    e.target = m.Intern(target);
    m.symlinks.push_back(e);
  }
  void Regular(std::string_view path, std::string_view content, uint32_t mode = 0644,
               uint32_t uid = 0, uint32_t gid = 0, uint32_t nlink = 1,
               std::optional<uint64_t> inode = std::nullopt, bool with_size = true) {
    image::RegularEntry e;
    e.mode = mode;
    e.uid = uid;
    e.gid = gid;
    e.nlink = nlink;
    e.sha256 = Digest(content);
    e.size = content.size();
    e.has_size = with_size;
    if (inode) {
      e.inode = *inode;
      e.has_inode = true;
    }
    e.path = m.Intern(path);
    m.regulars.push_back(e);
  }
  void Persistent(std::string_view path) { m.persistents.push_back(m.Intern(path)); }
};

// A temp dir per test, removed even when the test fails.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("ota-update-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
  }
  const stdfs::path& tmp() const { return tmp_->path(); }

  std::unique_ptr<fs::TempDir> tmp_;
};

}  // namespace ota::update::testing
