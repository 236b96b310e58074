// Writing an image's tree onto a real standby directory: modes, owners, links, names.
#include "otaclient/update/slot_writer.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>

#include "common/util/errors.h"
#include "otaclient/update/delta_planner.h"
#include "test/unit/update/tree_util.h"

namespace ota::update {
namespace {

using testing::Content;
using testing::Hex;
using testing::Lstat;
using testing::ManifestBuilder;
using testing::ReadFile;
using testing::WriteFile;

class SlotWriterTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    standby_root_ = tmp() / "standby";
    std::filesystem::create_directories(standby_root_ / ".ota-resources");
    auto dir = fs::RootedDir::Open(standby_root_);
    ASSERT_TRUE(dir.ok());
    standby_ = std::make_unique<fs::RootedDir>(std::move(*dir));
  }

  // What the delta/download phases leave behind: one resource per needed content.
  void ProvideResources() {
    for (const auto& [digest_hex, content] : contents_) {
      WriteFile(standby_root_ / ".ota-resources" / digest_hex, content, 0600);
    }
  }

  void Add(ManifestBuilder& b, std::string_view path, const std::string& content,
           uint32_t mode = 0644, uint32_t uid = 0, uint32_t gid = 0, uint32_t nlink = 1,
           std::optional<uint64_t> inode = std::nullopt) {
    b.Regular(path, content, mode, uid, gid, nlink, inode);
    if (!content.empty()) contents_[Hex(content)] = content;
  }

  absl::Status Apply(const image::Manifest& m) {
    ProvideResources();
    OTA_RETURN_IF_ERROR(ApplyDirectories(m, *standby_));
    OTA_RETURN_IF_ERROR(ApplySymlinks(m, *standby_));
    auto index = ContentIndex::Build(m);
    if (!index.ok()) return index.status();
    std::vector<uint8_t> downloaded(index->size(), 0);
    for (size_t i = 0; i < index->size(); ++i) downloaded[i] = i % 2;  // some of each bucket
    ApplyOptions options;
    options.threads = 4;
    return ApplyRegulars(m, *index, downloaded, *standby_, options, counters_);
  }

  std::filesystem::path S(std::string_view rel) { return standby_root_ / rel.substr(1); }

  std::filesystem::path standby_root_;
  std::unique_ptr<fs::RootedDir> standby_;
  std::map<std::string, std::string> contents_;
  ProgressCounters counters_;
};

TEST_F(SlotWriterTest, ModesOwnersSymlinksEmptyFilesAndNastyNames) {
  ManifestBuilder b;
  b.Dir("/usr", 0755);
  b.Dir("/usr/bin", 0755);
  b.Dir("/tmp", 01777);
  b.Dir("/home", 0755);
  b.Dir("/home/user", 0700, 1000, 1000);
  b.Dir("/srv/shared", 02775, 0, 50);  // parent /srv is not listed
  b.Symlink("/lib", "usr/lib");
  b.Symlink("/etc-passwd-link", "/etc/passwd");
  b.Symlink("/dangling", "/does/not/exist", 1000, 1000);
  b.Symlink("/home/user/up", "../../..");
  const std::string su = Content(5000, 1);
  Add(b, "/usr/bin/su", su, 04755);
  Add(b, "/usr/bin/wall", Content(300, 2), 02755, 0, 5);
  Add(b, "/usr/bin/both", Content(301, 3), 06711, 0, 0);
  Add(b, "/home/user/.profile", Content(99, 4), 0600, 1000, 1000);
  Add(b, "/etc/empty", "", 0640, 33, 33);
  const std::vector<std::string> nasty = {"/home/user/it's here", "/home/user/a,b,c",
                                          "/home/user/sp ace",    "/home/user/ünï©ødé-ファイル",
                                          "/home/user/'quoted'",  "/home/user/back\\slash"};
  for (size_t i = 0; i < nasty.size(); ++i) Add(b, nasty[i], Content(10 + i, 50 + i));
  ASSERT_TRUE(Apply(b.m).ok());

  EXPECT_EQ(Lstat(S("/tmp")).st_mode & 07777, 01777u);
  EXPECT_EQ(Lstat(S("/home/user")).st_mode & 07777, 0700u);
  EXPECT_EQ(Lstat(S("/home/user")).st_uid, 1000u);
  EXPECT_EQ(Lstat(S("/srv/shared")).st_mode & 07777, 02775u);
  EXPECT_EQ(Lstat(S("/srv/shared")).st_gid, 50u);
  EXPECT_EQ(std::filesystem::read_symlink(S("/lib")), "usr/lib");
  EXPECT_EQ(std::filesystem::read_symlink(S("/etc-passwd-link")), "/etc/passwd");
  EXPECT_EQ(std::filesystem::read_symlink(S("/dangling")), "/does/not/exist");
  EXPECT_EQ(Lstat(S("/dangling")).st_uid, 1000u);
  EXPECT_EQ(std::filesystem::read_symlink(S("/home/user/up")), "../../..");
  EXPECT_EQ(ReadFile(S("/usr/bin/su")), su);
  EXPECT_EQ(Lstat(S("/usr/bin/su")).st_mode & 07777, 04755u);
  EXPECT_EQ(Lstat(S("/usr/bin/wall")).st_mode & 07777, 02755u);
  EXPECT_EQ(Lstat(S("/usr/bin/wall")).st_gid, 5u);
  EXPECT_EQ(Lstat(S("/usr/bin/both")).st_mode & 07777, 06711u);
  EXPECT_EQ(Lstat(S("/home/user/.profile")).st_uid, 1000u);
  struct stat empty = Lstat(S("/etc/empty"));
  EXPECT_TRUE(S_ISREG(empty.st_mode));
  EXPECT_EQ(empty.st_size, 0);
  EXPECT_EQ(empty.st_mode & 07777, 0640u);
  EXPECT_EQ(empty.st_uid, 33u);
  for (size_t i = 0; i < nasty.size(); ++i) {
    EXPECT_EQ(ReadFile(S(nasty[i])), Content(10 + i, 50 + i)) << nasty[i];
  }
  EXPECT_EQ(counters_.processed_files_num.load(), b.m.regulars.size());
  EXPECT_EQ(counters_.files_copy.load() + counters_.files_download.load(), b.m.regulars.size());
  EXPECT_EQ(counters_.files_link.load(), 0u);
  // Every resource had exactly one writer, so each was renamed into place.
  EXPECT_TRUE(std::filesystem::is_empty(standby_root_ / ".ota-resources"));
}

TEST_F(SlotWriterTest, HardLinkGroupsShareAnInodeAndSharedContentIsCopied) {
  ManifestBuilder b;
  b.Dir("/bin", 0755);
  const std::string tool = Content(2000, 7);
  Add(b, "/bin/tool", tool, 0755, 0, 0, 3, 4242);
  Add(b, "/bin/tool-alias", tool, 0755, 0, 0, 3, 4242);
  Add(b, "/bin/sub/tool-other", tool, 0755, 0, 0, 3, 4242);  // parent not listed either
  // Same content again, not linked: gets its own inode.
  Add(b, "/bin/tool-copy", tool, 0700, 12, 13);
  // A group without inode numbers is keyed by content.
  const std::string lib = Content(900, 8);
  Add(b, "/bin/lib-a", lib, 0644, 0, 0, 2);
  Add(b, "/bin/lib-b", lib, 0644, 0, 0, 2);
  ASSERT_TRUE(Apply(b.m).ok());

  ino_t ino = Lstat(S("/bin/tool")).st_ino;
  EXPECT_EQ(Lstat(S("/bin/tool-alias")).st_ino, ino);
  EXPECT_EQ(Lstat(S("/bin/sub/tool-other")).st_ino, ino);
  EXPECT_EQ(Lstat(S("/bin/tool")).st_nlink, 3u);
  EXPECT_NE(Lstat(S("/bin/tool-copy")).st_ino, ino);
  EXPECT_EQ(ReadFile(S("/bin/tool-copy")), tool);
  EXPECT_EQ(Lstat(S("/bin/tool-copy")).st_mode & 07777, 0700u);
  EXPECT_EQ(Lstat(S("/bin/tool-copy")).st_uid, 12u);
  EXPECT_EQ(Lstat(S("/bin/tool")).st_mode & 07777, 0755u);
  EXPECT_EQ(Lstat(S("/bin/lib-a")).st_ino, Lstat(S("/bin/lib-b")).st_ino);
  EXPECT_EQ(counters_.files_link.load(), 3u);
  EXPECT_EQ(counters_.processed_files_num.load(), 6u);
  EXPECT_TRUE(std::filesystem::is_empty(standby_root_ / ".ota-resources"));
}

TEST_F(SlotWriterTest, MissingResourceIsAnInternalError) {
  ManifestBuilder b;
  b.Regular("/x", Content(10, 9));  // no resource provided
  auto index = ContentIndex::Build(b.m);
  ASSERT_TRUE(index.ok());
  absl::Status st = ApplyRegulars(b.m, *index, {}, *standby_, ApplyOptions{}, counters_);
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_NE(st.message().find("/x"), std::string::npos) << st;
}

TEST_F(SlotWriterTest, ImageSymlinksCannotRedirectWritesOutOfTheSlot) {
  const auto outside = tmp() / "outside";
  WriteFile(outside / "passwd", "root:x:0:0::/root:/bin/sh\n");
  ManifestBuilder b;
  b.Symlink("/etc", outside.string());  // absolute, pointing at the host's directory
  b.Symlink("/up", "../../../../../..");
  Add(b, "/etc/passwd", "evil:x:0:0::/:/bin/sh\n");
  ASSERT_FALSE(Apply(b.m).ok());
  EXPECT_EQ(ReadFile(outside / "passwd"), "root:x:0:0::/root:/bin/sh\n");

  ManifestBuilder b2;
  b2.Symlink("/up", "../../../../../..");
  Add(b2, "/up/escaped", "evil");
  ASSERT_TRUE(Apply(b2.m).ok());  // ".." stops at the slot root: it lands inside
  EXPECT_EQ(ReadFile(S("/escaped")), "evil");
  EXPECT_FALSE(std::filesystem::exists(tmp() / "escaped"));
  EXPECT_FALSE(std::filesystem::exists("/escaped"));
}

TEST_F(SlotWriterTest, DirectoryInTheWayOfAFileFails) {
  ManifestBuilder b;
  b.Dir("/thing", 0755);
  Add(b, "/thing", Content(5, 1));
  EXPECT_FALSE(Apply(b.m).ok());
  EXPECT_TRUE(std::filesystem::is_directory(S("/thing")));
}

// What only OTA image v1 carries: xattrs (after owner and mode), whiteouts, inlined contents,
// the root directory's own row, type bits in modes.
TEST_F(SlotWriterTest, XattrsWhiteoutsAndInlinedContents) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown, mknod)";
  ManifestBuilder b;
  b.Dir("/", 040750);
  b.Dir("/etc", 040755);
  auto xattrs = [&](std::string_view name, std::string_view value) {
    const uint32_t begin = b.m.BeginXattrs();
    b.m.AddXattr(name, value);
    return b.m.EndXattrs(begin);
  };
  b.m.dirs.back().xattrs = xattrs("user.dir", "d");
  image::SpecialEntry wh;
  wh.mode = S_IFCHR | 0600;
  wh.uid = 1000;
  wh.gid = 1001;
  wh.path = b.m.Intern("/etc/.wh.gone");
  b.m.specials.push_back(wh);
  Add(b, "/etc/inline", "tiny\n", 0100640, 7, 8);
  b.m.regulars.back().has_inline = true;
  b.m.regulars.back().inline_content = b.m.Intern("tiny\n");
  contents_.erase(Hex("tiny\n"));  // never a resource
  Add(b, "/etc/big", Content(5000, 3), 04755);
  b.m.regulars.back().xattrs = xattrs("user.big", std::string("\0\x01", 2));
  ASSERT_TRUE(Apply(b.m).ok());
  ASSERT_TRUE(ApplySpecials(b.m, *standby_).ok());

  struct stat st = Lstat(S("/etc/.wh.gone"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_EQ(ReadFile(S("/etc/inline")), "tiny\n");
  st = Lstat(S("/etc/inline"));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(Lstat(S("/etc/big")).st_mode & 07777, 04755u);
  EXPECT_EQ(Lstat(standby_root_).st_mode & 07777, 0750u) << "the root row sets the root's mode";
  char value[8] = {};
  ssize_t n = ::lgetxattr(S("/etc/big").c_str(), "user.big", value, sizeof(value));
  if (n < 0 && errno == ENOTSUP) GTEST_SKIP() << "no user xattrs on this file system";
  EXPECT_EQ(std::string(value, static_cast<size_t>(std::max<ssize_t>(n, 0))),
            std::string("\0\x01", 2));
  n = ::lgetxattr(S("/etc").c_str(), "user.dir", value, sizeof(value));
  EXPECT_EQ(std::string(value, static_cast<size_t>(std::max<ssize_t>(n, 0))), "d");
}

}  // namespace
}  // namespace ota::update
