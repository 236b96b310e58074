// Persistent files copied from a real "active" tree into a real "standby" tree whose
// /etc/passwd and /etc/group give the same names other ids.
#include "otaclient/update/persistents.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "common/util/errors.h"
#include "test/unit/update/tree_util.h"

namespace ota::update {
namespace {

using testing::Lstat;
using testing::ManifestBuilder;
using testing::ReadFile;
using testing::WriteFile;

constexpr char kActivePasswd[] =
    "root:x:0:0:root:/root:/bin/bash\n"
    "\n"
    "# a comment\n"
    "alice:x:1000:1000::/home/alice:/bin/sh\n"
    "bob:x:1001:1001::/home/bob:/bin/sh\n"
    "broken-line-without-fields\n";
constexpr char kActiveGroup[] = "root:x:0:\nalice:x:1000:\nbob:x:1001:\nstaff:x:50:alice,bob\n";
// The new image shifted everybody.
constexpr char kStandbyPasswd[] =
    "root:x:0:0:root:/root:/bin/bash\nalice:x:2000:2000::/home/alice:/bin/sh\n"
    "bob:x:2001:2001::/home/bob:/bin/sh\n";
constexpr char kStandbyGroup[] = "root:x:0:\nalice:x:2000:\nbob:x:2001:\nstaff:x:60:\n";

class PersistentsTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    active_root_ = tmp() / "active";
    standby_root_ = tmp() / "standby";
    WriteFile(active_root_ / "etc/passwd", kActivePasswd);
    WriteFile(active_root_ / "etc/group", kActiveGroup);
    WriteFile(standby_root_ / "etc/passwd", kStandbyPasswd);
    WriteFile(standby_root_ / "etc/group", kStandbyGroup);
  }

  absl::Status Copy(const image::Manifest& m) {
    auto active = fs::RootedDir::Open(active_root_);
    auto standby = fs::RootedDir::Open(standby_root_);
    if (!active.ok()) return active.status();
    if (!standby.ok()) return standby.status();
    return CopyPersistents(m, *active, *standby);
  }

  void MkDir(const std::filesystem::path& p, mode_t mode, uid_t uid, gid_t gid) {
    std::filesystem::create_directories(p);
    ASSERT_EQ(::chown(p.c_str(), uid, gid), 0);
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
  }

  std::filesystem::path active_root_, standby_root_;
};

TEST_F(PersistentsTest, RemapsOwnersByNameAndReplacesExistingDirs) {
  MkDir(active_root_ / "home", 0755, 0, 0);
  MkDir(active_root_ / "home/alice", 0750, 1000, 1000);
  WriteFile(active_root_ / "home/alice/notes.txt", "alice's notes", 0640, 1000, 1000);
  WriteFile(active_root_ / "home/alice/.hidden", "dot file", 0600, 1000, 50);
  MkDir(active_root_ / "home/alice/sub", 0700, 1001, 50);
  WriteFile(active_root_ / "home/alice/sub/deep", "deep", 04750, 1001, 1001);
  std::filesystem::create_symlink("/nonexistent/target", active_root_ / "home/alice/dangling");
  ASSERT_EQ(::lchown((active_root_ / "home/alice/dangling").c_str(), 12345678, 87654321), 0);
  std::filesystem::create_directory_symlink("sub", active_root_ / "home/alice/sublink");
  struct timespec old_times[2] = {{1500000000, 0}, {1500000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (active_root_ / "home/alice/notes.txt").c_str(), old_times, 0),
            0);

  // The standby already has /home/alice (from the image) with its own owner/mode and content.
  MkDir(standby_root_ / "home", 0711, 7, 7);
  MkDir(standby_root_ / "home/alice", 0711, 7, 7);
  WriteFile(standby_root_ / "home/alice/from-image", "image file");
  WriteFile(standby_root_ / "home/alice/notes.txt", "image version", 0644);

  ManifestBuilder b;
  b.Persistent("/home/alice");
  ASSERT_TRUE(Copy(b.m).ok());

  // The existing parent is kept as it is.
  EXPECT_EQ(Lstat(standby_root_ / "home").st_mode & 07777, 0711u);
  EXPECT_EQ(Lstat(standby_root_ / "home").st_uid, 7u);
  const auto s = standby_root_ / "home/alice";
  // The directory itself is replaced, as upstream: the active slot's owner and mode, and the
  // image's own content there is gone.
  EXPECT_EQ(Lstat(s).st_mode & 07777, 0750u);
  EXPECT_EQ(Lstat(s).st_uid, 2000u);
  EXPECT_EQ(Lstat(s).st_gid, 2000u);
  EXPECT_FALSE(std::filesystem::exists(s / "from-image"));
  // Files: content, mode, mtime, remapped owners.
  EXPECT_EQ(ReadFile(s / "notes.txt"), "alice's notes");
  EXPECT_EQ(Lstat(s / "notes.txt").st_uid, 2000u);
  EXPECT_EQ(Lstat(s / "notes.txt").st_gid, 2000u);
  EXPECT_EQ(Lstat(s / "notes.txt").st_mode & 07777, 0640u);
  EXPECT_EQ(Lstat(s / "notes.txt").st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(Lstat(s / ".hidden").st_gid, 60u);  // staff: 50 → 60
  EXPECT_EQ(Lstat(s / "sub").st_uid, 2001u);
  EXPECT_EQ(Lstat(s / "sub").st_gid, 60u);
  EXPECT_EQ(Lstat(s / "sub").st_mode & 07777, 0700u);
  // Setuid survives (ours; upstream's chown after chmod clears it).
  EXPECT_EQ(Lstat(s / "sub/deep").st_mode & 07777, 04750u);
  EXPECT_EQ(Lstat(s / "sub/deep").st_uid, 2001u);
  // Symlinks are recreated, to directories too; unmappable ids are kept.
  EXPECT_EQ(std::filesystem::read_symlink(s / "sublink"), "sub");
  EXPECT_EQ(std::filesystem::read_symlink(s / "dangling"), "/nonexistent/target");
  EXPECT_EQ(Lstat(s / "dangling").st_uid, 12345678u);
  EXPECT_EQ(Lstat(s / "dangling").st_gid, 87654321u);

  // Copying again (a symlink over a symlink, files over files) works.
  ASSERT_TRUE(Copy(b.m).ok());
  EXPECT_EQ(std::filesystem::read_symlink(s / "dangling"), "/nonexistent/target");
}

TEST_F(PersistentsTest, CreatesMissingAncestorsWithSourceOwnership) {
  MkDir(active_root_ / "var/lib/app", 0750, 1001, 50);
  WriteFile(active_root_ / "var/lib/app/state.db", "db", 0660, 1001, 1001);
  ManifestBuilder b;
  b.Persistent("/var/lib/app/state.db");
  ASSERT_TRUE(Copy(b.m).ok());
  EXPECT_EQ(Lstat(standby_root_ / "var/lib/app").st_uid, 2001u);
  EXPECT_EQ(Lstat(standby_root_ / "var/lib/app").st_gid, 60u);
  EXPECT_EQ(Lstat(standby_root_ / "var/lib/app").st_mode & 07777, 0750u);
  EXPECT_EQ(ReadFile(standby_root_ / "var/lib/app/state.db"), "db");
  EXPECT_EQ(Lstat(standby_root_ / "var/lib/app/state.db").st_gid, 2001u);
}

// Upstream maps each id on its own: a mappable uid is mapped even when the gid is not.
TEST_F(PersistentsTest, UidAndGidAreMappedEachOnItsOwn) {
  WriteFile(active_root_ / "data/f", "x", 0644, 1000, 4444);
  WriteFile(active_root_ / "data/g", "y", 0644, 4444, 1001);
  ManifestBuilder b;
  b.Persistent("/data/f");
  b.Persistent("/data/g");
  ASSERT_TRUE(Copy(b.m).ok());
  EXPECT_EQ(Lstat(standby_root_ / "data/f").st_uid, 2000u);
  EXPECT_EQ(Lstat(standby_root_ / "data/f").st_gid, 4444u);
  EXPECT_EQ(Lstat(standby_root_ / "data/g").st_uid, 4444u);
  EXPECT_EQ(Lstat(standby_root_ / "data/g").st_gid, 2001u);
}

// A standby ancestor that is a symlink to a directory is followed (inside the standby) and kept.
TEST_F(PersistentsTest, StandbyParentSymlinkToADirectoryIsKept) {
  WriteFile(active_root_ / "var/lib/app/state.db", "db", 0660, 1001, 1001);
  std::filesystem::create_directories(standby_root_ / "data/lib");
  std::filesystem::create_directories(standby_root_ / "var");
  std::filesystem::create_directory_symlink("/data/lib", standby_root_ / "var/lib");
  ManifestBuilder b;
  b.Persistent("/var/lib/app/state.db");
  ASSERT_TRUE(Copy(b.m).ok());
  EXPECT_EQ(std::filesystem::read_symlink(standby_root_ / "var/lib"), "/data/lib");
  EXPECT_EQ(ReadFile(standby_root_ / "data/lib/app/state.db"), "db");
}

TEST_F(PersistentsTest, MissingAndBlankEntriesAreSkipped) {
  WriteFile(active_root_ / "etc/hostname", "ecu-1\n");
  ManifestBuilder b;
  b.Persistent("/does/not/exist");
  b.Persistent("");
  b.Persistent("/etc/hostname");
  ASSERT_TRUE(Copy(b.m).ok());
  EXPECT_EQ(ReadFile(standby_root_ / "etc/hostname"), "ecu-1\n");
  EXPECT_FALSE(std::filesystem::exists(standby_root_ / "does"));
}

TEST_F(PersistentsTest, ReplacesWhateverIsInTheWay) {
  WriteFile(active_root_ / "etc/app.conf", "conf");
  std::filesystem::create_directories(standby_root_ / "etc/app.conf/sub");  // a dir in the way
  std::filesystem::create_directories(active_root_ / "opt/tree");
  WriteFile(standby_root_ / "opt/tree", "a file where the dir goes");
  ManifestBuilder b;
  b.Persistent("/etc/app.conf");
  b.Persistent("/opt/tree");
  ASSERT_TRUE(Copy(b.m).ok());
  EXPECT_EQ(ReadFile(standby_root_ / "etc/app.conf"), "conf");
  EXPECT_TRUE(std::filesystem::is_directory(standby_root_ / "opt/tree"));
}

// Best effort, as upstream: special files are skipped with a warning, an entry that cannot be
// carried over is a warning, swap files are ignored, and the other entries are copied.
TEST_F(PersistentsTest, ProblemsAreWarningsAndTheRestIsCopied) {
  std::filesystem::create_directories(active_root_ / "run-state");
  ASSERT_EQ(::mkfifo((active_root_ / "run-state/fifo").c_str(), 0600), 0);
  WriteFile(active_root_ / "run-state/pid", "42");
  ASSERT_EQ(::mkfifo((active_root_ / "top-fifo").c_str(), 0600), 0);
  WriteFile(active_root_ / "swapfile", "swap");
  WriteFile(active_root_ / "swap.img", "swap");
  WriteFile(active_root_ / "plain", "a file");  // a file where the entry wants a directory
  WriteFile(active_root_ / "etc/hostname", "ecu-1\n");
  ManifestBuilder b;
  b.Persistent("/run-state");
  b.Persistent("/top-fifo");
  b.Persistent("/swapfile");
  b.Persistent("/swap.img");
  b.Persistent("/plain/below");
  b.Persistent("relative/path");
  b.Persistent("/etc/hostname");
  ::testing::internal::CaptureStderr();
  absl::Status st = Copy(b.m);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(ReadFile(standby_root_ / "run-state/pid"), "42");
  EXPECT_FALSE(std::filesystem::exists(standby_root_ / "run-state/fifo"));
  EXPECT_FALSE(std::filesystem::exists(standby_root_ / "top-fifo"));
  EXPECT_FALSE(std::filesystem::exists(standby_root_ / "swapfile"));
  EXPECT_FALSE(std::filesystem::exists(standby_root_ / "swap.img"));
  EXPECT_FALSE(std::filesystem::exists(standby_root_ / "plain"));
  EXPECT_EQ(ReadFile(standby_root_ / "etc/hostname"), "ecu-1\n");
  for (const char* expected :
       {"skipping a special file", "path=/top-fifo", "not a regular file, symlink or directory",
        "swap file is listed", "path=/swapfile", "path=/swap.img", "path=/plain/below",
        "path=relative/path", "preserved=2 skipped=5"}) {
    EXPECT_NE(log.find(expected), std::string::npos) << expected << "\n" << log;
  }
}

TEST_F(PersistentsTest, SymlinksOnTheActiveSlotResolveInsideIt) {
  // /etc/link points at an absolute path; read through the active root, not the host.
  WriteFile(active_root_ / "real/conf", "inside active");
  std::filesystem::create_directory_symlink("/real", active_root_ / "linkdir");
  std::filesystem::create_directories(standby_root_ / "real");  // the image has it too
  std::filesystem::create_directories(tmp() / "host/real");     // a decoy where a host path goes
  ManifestBuilder b;
  b.Persistent("/linkdir/conf");
  ASSERT_TRUE(Copy(b.m).ok());
  // The ancestor symlink is recreated as a symlink and the file lands where it points.
  EXPECT_EQ(std::filesystem::read_symlink(standby_root_ / "linkdir"), "/real");
  EXPECT_EQ(ReadFile(standby_root_ / "real/conf"), "inside active");
  EXPECT_FALSE(std::filesystem::exists("/real/conf"));
}

TEST(IdMapperTest, MapsByNameWithLaterLinesWinning) {
  IdMapper m("a:x:1:1\nb:x:2:2\nc:x:2:2\n", "g:x:10:\nh:x:12:\n",
             "a:x:100:1\na:x:150:1\nc:x:300:3\n", "g:x:11:\n");
  EXPECT_EQ(m.MapUid(1), 150u);
  EXPECT_EQ(m.MapUid(2), 300u);  // 2 → c
  EXPECT_EQ(m.MapGid(10), 11u);
  EXPECT_EQ(m.MapGid(12), std::nullopt);  // group h has no counterpart
  EXPECT_EQ(m.MapUid(99), std::nullopt);
}

// One source passwd line per case; the destination knows every name with uid 7000.
TEST(IdMapperTest, PasswdLineVectors) {
  struct Case {
    std::string line;
    uid_t uid;
    bool mapped;
  };
  const std::vector<Case> cases = {
      {"alice:x:1000:1000::/home/alice:/bin/sh", 1000, true},
      {"alice::1000:1000::/:/bin/sh", 1000, true},  // empty password field
      {"alice:x:1000", 1000, true},                 // only three fields
      {"alice:x:0:0", 0, true},
      {"alice:x:4294967295:0", 4294967295u, true},  // largest uid
      {"alice:x:4294967296:0", 0, false},           // overflow: ignored
      {"alice:x:-1:0", 4294967295u, false},         // negative: ignored
      {"alice:x:+5:0", 5, false},                   // sign: ignored
      {"alice:x: 5:0", 5, false},                   // space: ignored
      {"alice:x:5a:0", 5, false},                   // trailing junk: ignored
      {"alice:x::0", 0, false},                     // empty id
      {":x:5:0", 5, false},                         // empty name
      {"#alice:x:5:0", 5, false},                   // comment
      {"alice", 0, false},
      {"alice:x", 0, false},
      {"", 0, false},
      {"ünï:x:77:0", 77, true},  // non-ASCII name
  };
  const std::string group_src = "g:x:0:\n";
  const std::string group_dst = "g:x:0:\n";
  for (const Case& c : cases) {
    std::string dst = "alice:x:7000:0\nünï:x:7000:0\n";
    IdMapper m(c.line + "\n", group_src, dst, group_dst);
    auto result = m.MapUid(c.uid);
    EXPECT_EQ(result.has_value(), c.mapped) << "'" << c.line << "'";
    if (result) {
      EXPECT_EQ(*result, 7000u) << "'" << c.line << "'";
    }
  }
}

}  // namespace
}  // namespace ota::update
