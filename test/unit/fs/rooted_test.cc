// RootedDir against real trees, including hostile ones: every escape attempt must fail or stay
// inside the root, and the file planted outside must be byte-for-byte and mode-for-mode intact.
#include "common/fs/rooted.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace ota::fs {
namespace {

namespace stdfs = std::filesystem;

void WriteText(const stdfs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << p;
}

std::string ReadText(const stdfs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct stat LstatOrDie(const stdfs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

class RootedDirTest : public ::testing::TestWithParam<RootedDir::Resolver> {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("rooted-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    root_ = tmp_->path() / "root";
    outside_ = tmp_->path() / "outside";
    stdfs::create_directories(root_);
    stdfs::create_directories(outside_);
    victim_ = outside_ / "victim";
    WriteText(victim_, "original");
    ::chmod(victim_.c_str(), 0640);
    ::chown(victim_.c_str(), 0, 0);
    auto dir = RootedDir::Open(root_, GetParam());
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<RootedDir>(std::move(*dir));
  }

  // The outside file must be exactly as planted.
  void ExpectVictimUntouched() {
    EXPECT_EQ(ReadText(victim_), "original");
    struct stat st = LstatOrDie(victim_);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_gid, 0u);
    EXPECT_EQ(std::distance(stdfs::directory_iterator(outside_), stdfs::directory_iterator()), 1)
        << "something was created next to the victim";
  }

  UniqueFd SourceFd(const std::string& content) {
    stdfs::path src = tmp_->path() / "src";
    WriteText(src, content);
    return UniqueFd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  }

  std::unique_ptr<TempDir> tmp_;
  stdfs::path root_, outside_, victim_;
  std::unique_ptr<RootedDir> dir_;
};

TEST_P(RootedDirTest, MakeDirsCreatesMissingParentsAndAcceptsExisting) {
  ASSERT_TRUE(dir_->MakeDirs("/a/b/c", 0700).ok());
  EXPECT_TRUE(stdfs::is_directory(root_ / "a/b/c"));
  EXPECT_EQ(LstatOrDie(root_ / "a/b/c").st_mode & 0777, 0700u);
  EXPECT_EQ(LstatOrDie(root_ / "a/b").st_mode & 0777, 0755u);
  EXPECT_TRUE(dir_->MakeDirs("a/b/c").ok());
  EXPECT_TRUE(dir_->MakeDirs("//a///b/./c/").ok());
  WriteText(root_ / "a/file", "x");
  absl::Status st = dir_->MakeDirs("/a/file");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(dir_->MakeDirs("/a/file/sub").code(), absl::StatusCode::kInternal);  // ENOTDIR
  // A symlink to a directory inside the root counts as that directory; a dangling one does not.
  std::filesystem::create_symlink("/a/b", root_ / "to_b");
  EXPECT_TRUE(dir_->MakeDirs("/to_b").ok());
  EXPECT_TRUE(dir_->MakeDirs("/to_b/c/d").ok());
  EXPECT_TRUE(stdfs::is_directory(root_ / "a/b/c/d"));
  std::filesystem::create_symlink("/nowhere", root_ / "dangling");
  EXPECT_EQ(dir_->MakeDirs("/dangling").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(stdfs::exists(root_ / "nowhere"));
}

TEST_P(RootedDirTest, CopyFileFromAppliesOwnerThenModeSoSetuidSurvives) {
  ASSERT_TRUE(dir_->MakeDirs("/usr/bin").ok());
  UniqueFd src = SourceFd("#!/bin/sh\necho hi\n");
  RootedDir::FileAttrs attrs;
  attrs.mode = 04755;
  attrs.uid = 1234;
  attrs.gid = 5678;
  attrs.mtime = timespec{1000000000, 0};
  ASSERT_TRUE(dir_->CopyFileFrom(src.get(), "/usr/bin/su", attrs).ok());
  struct stat st = LstatOrDie(root_ / "usr/bin/su");
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000000);
  EXPECT_EQ(ReadText(root_ / "usr/bin/su"), "#!/bin/sh\necho hi\n");
  // No temp files are left beside it.
  EXPECT_EQ(
      std::distance(stdfs::directory_iterator(root_ / "usr/bin"), stdfs::directory_iterator()), 1);
}

TEST_P(RootedDirTest, CopyFileFromReplacesExistingFileAndSymlinkButNotDirectory) {
  WriteText(root_ / "f", "old");
  UniqueFd src = SourceFd("new");
  ASSERT_TRUE(dir_->CopyFileFrom(src.get(), "f", {}).ok());
  EXPECT_EQ(ReadText(root_ / "f"), "new");

  stdfs::create_directories(root_ / "d");
  src = SourceFd("new");
  EXPECT_FALSE(dir_->CopyFileFrom(src.get(), "d", {}).ok());
  EXPECT_TRUE(stdfs::is_directory(root_ / "d"));
}

TEST_P(RootedDirTest, EmptyFileAndNastyNames) {
  for (std::string name : {"it's", "a,b", "sp ace", "ünï©ødé", "'quoted'", "\\back"}) {
    RootedDir::FileAttrs attrs;
    attrs.mode = 01777;
    ASSERT_TRUE(dir_->CreateEmptyFile("/" + name, attrs).ok()) << name;
    struct stat st = LstatOrDie(root_ / name);
    EXPECT_EQ(st.st_size, 0);
    EXPECT_EQ(st.st_mode & 07777, 01777u) << name;
  }
}

TEST_P(RootedDirTest, SymlinkIsCreatedReplacedAndNeverFollowed) {
  ASSERT_TRUE(dir_->CreateSymlink("/dangling", "/does/not/exist").ok());
  EXPECT_EQ(stdfs::read_symlink(root_ / "dangling"), "/does/not/exist");
  ASSERT_TRUE(dir_->CreateSymlink("/dangling", "../relative target").ok());
  EXPECT_EQ(stdfs::read_symlink(root_ / "dangling"), "../relative target");
  auto target = dir_->ReadLink("dangling");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, "../relative target");

  WriteText(root_ / "plain", "x");
  ASSERT_TRUE(dir_->CreateSymlink("plain", "elsewhere").ok());
  EXPECT_TRUE(stdfs::is_symlink(root_ / "plain"));

  stdfs::create_directories(root_ / "dir");
  EXPECT_FALSE(dir_->CreateSymlink("dir", "x").ok());
  EXPECT_TRUE(stdfs::is_directory(stdfs::symlink_status(root_ / "dir")));
}

TEST_P(RootedDirTest, InRootSymlinksInParentsResolveAsInsideTheSlot) {
  ASSERT_TRUE(dir_->MakeDirs("/usr/lib").ok());
  stdfs::create_symlink("usr/lib", root_ / "lib");          // relative
  stdfs::create_symlink("/usr/lib", root_ / "lib64");       // absolute: the slot's /usr/lib
  stdfs::create_symlink("../../..", root_ / "usr/lib/up");  // climbs to the root and beyond
  UniqueFd src = SourceFd("1");
  ASSERT_TRUE(dir_->CopyFileFrom(src.get(), "/lib/one", {}).ok());
  src = SourceFd("2");
  ASSERT_TRUE(dir_->CopyFileFrom(src.get(), "/lib64/two", {}).ok());
  src = SourceFd("3");
  ASSERT_TRUE(dir_->CopyFileFrom(src.get(), "/lib/up/three", {}).ok());
  EXPECT_EQ(ReadText(root_ / "usr/lib/one"), "1");
  EXPECT_EQ(ReadText(root_ / "usr/lib/two"), "2");
  EXPECT_EQ(ReadText(root_ / "three"), "3");
}

TEST_P(RootedDirTest, EscapesThroughParentSymlinksAndDotDotStayInside) {
  stdfs::create_symlink("../outside", root_ / "rel_escape");
  stdfs::create_symlink(outside_, root_ / "abs_escape");
  stdfs::create_symlink("/etc", root_ / "etc");  // points at itself inside the root: a loop
  stdfs::create_symlink("/proc/self/root" + outside_.string(), root_ / "magic");

  for (std::string path :
       {"rel_escape/victim", "abs_escape/victim", "../outside/victim", "a/../../outside/victim",
        "/../../outside/victim", "magic/victim", "etc/victim"}) {
    SCOPED_TRACE(path);
    UniqueFd src = SourceFd("pwned");
    EXPECT_FALSE(dir_->CopyFileFrom(src.get(), path, {}).ok());
    EXPECT_FALSE(dir_->CreateSymlink(path, "pwned").ok());
    EXPECT_FALSE(dir_->Lchown(path, 4321, 4321).ok());
    EXPECT_FALSE(dir_->Chmod(path, 07777).ok());
    EXPECT_FALSE(dir_->OpenRead(path).ok());
    EXPECT_FALSE(dir_->Link(path, "stolen").ok());
    // Either nothing is found inside the root (OK) or resolution fails (the /etc loop).
    absl::Status removed = dir_->RemoveAll(path);
    EXPECT_TRUE(removed.ok() || path == "etc/victim") << removed;
    ExpectVictimUntouched();
  }
  EXPECT_FALSE(dir_->MakeDirs("rel_escape/newdir").ok());
  EXPECT_FALSE(dir_->MakeDirs("abs_escape/newdir").ok());
  ExpectVictimUntouched();
  // The parent resolved "in root" may even exist there: then the write lands inside.
  ASSERT_TRUE(dir_->MakeDirs("outside").ok());
  UniqueFd src = SourceFd("inside");
  ASSERT_TRUE(dir_->CopyFileFrom(src.get(), "rel_escape/victim", {}).ok());
  EXPECT_EQ(ReadText(root_ / "outside/victim"), "inside");
  ExpectVictimUntouched();
}

TEST_P(RootedDirTest, LastComponentSymlinkIsNeverFollowed) {
  stdfs::create_symlink(victim_, root_ / "to_victim");
  EXPECT_EQ(dir_->Chmod("to_victim", 0777).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(dir_->Lchown("to_victim", 4321, 8765).ok());
  EXPECT_EQ(LstatOrDie(root_ / "to_victim").st_uid, 4321u);
  EXPECT_FALSE(dir_->OpenRead("to_victim").ok());
  EXPECT_FALSE(dir_->ReadFile("to_victim").ok());
  EXPECT_FALSE(dir_->MakeDirs("to_victim").ok());
  ASSERT_TRUE(dir_->Link("to_victim", "link_of_link").ok());
  EXPECT_TRUE(stdfs::is_symlink(root_ / "link_of_link"));
  ExpectVictimUntouched();
  UniqueFd src = SourceFd("replacement");
  ASSERT_TRUE(dir_->CopyFileFrom(src.get(), "to_victim", {}).ok());
  EXPECT_FALSE(stdfs::is_symlink(root_ / "to_victim"));
  EXPECT_EQ(ReadText(root_ / "to_victim"), "replacement");
  ExpectVictimUntouched();
}

TEST_P(RootedDirTest, ChmodAndLchownOnRealEntries) {
  ASSERT_TRUE(dir_->MakeDirs("/tmp").ok());
  ASSERT_TRUE(dir_->Lchown("/tmp", 7, 8).ok());
  ASSERT_TRUE(dir_->Chmod("/tmp", 01777).ok());
  struct stat st = LstatOrDie(root_ / "tmp");
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  EXPECT_EQ(st.st_uid, 7u);
  WriteText(root_ / "tmp/f", "x");
  ASSERT_TRUE(dir_->Lchown("tmp/f", 99, 98).ok());
  ASSERT_TRUE(dir_->Chmod("tmp/f", 06711).ok());
  st = LstatOrDie(root_ / "tmp/f");
  EXPECT_EQ(st.st_mode & 07777, 06711u);
  EXPECT_EQ(st.st_gid, 98u);
  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
  ASSERT_TRUE(dir_->Chmod("fifo", 0644).ok());  // must not block opening it
  EXPECT_EQ(LstatOrDie(root_ / "fifo").st_mode & 07777, 0644u);
  EXPECT_EQ(dir_->OpenRead("fifo").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(RootedDirTest, LinkRenameAndReadFile) {
  WriteText(root_ / "a", "content");
  ASSERT_TRUE(dir_->Link("/a", "/b").ok());
  EXPECT_EQ(LstatOrDie(root_ / "a").st_ino, LstatOrDie(root_ / "b").st_ino);
  WriteText(root_ / "c", "other");
  ASSERT_TRUE(dir_->Link("a", "c").ok());  // replaces
  EXPECT_EQ(LstatOrDie(root_ / "c").st_ino, LstatOrDie(root_ / "a").st_ino);
  ASSERT_TRUE(dir_->Rename("c", "d").ok());
  EXPECT_FALSE(stdfs::exists(root_ / "c"));
  auto content = dir_->ReadFile("/d");
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "content");
  EXPECT_EQ(dir_->ReadFile("/missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*dir_->Exists("d"), true);
  EXPECT_EQ(*dir_->Exists("nope"), false);
}

TEST_P(RootedDirTest, RemoveTreeExceptKeepsNamedEntriesAndDoesNotFollowLinks) {
  stdfs::create_directories(root_ / ".ota-resources");
  WriteText(root_ / ".ota-resources/keep", "k");
  stdfs::create_directories(root_ / "usr/share/deep/er");
  WriteText(root_ / "usr/share/deep/er/f", "f");
  ::chmod((root_ / "usr/share/deep").c_str(), 0500);  // read-only dir: root still empties it
  stdfs::create_symlink(outside_, root_ / "abs_escape");
  stdfs::create_symlink("../outside", root_ / "usr/rel_escape");
  stdfs::create_directory_symlink(outside_, root_ / "usr/share/dirlink");
  WriteText(root_ / "top", "t");
  std::string_view keep[] = {"/.ota-resources"};
  ASSERT_TRUE(dir_->RemoveTreeExcept(keep).ok());
  std::vector<std::string> left;
  for (auto& e : stdfs::directory_iterator(root_)) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{".ota-resources"});
  EXPECT_EQ(ReadText(root_ / ".ota-resources/keep"), "k");
  ExpectVictimUntouched();
  std::string_view bad_keep[] = {"a/b"};
  EXPECT_EQ(dir_->RemoveTreeExcept(bad_keep).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(RootedDirTest, RemoveAllOnFilesDirsAndMissing) {
  stdfs::create_directories(root_ / "x/y");
  WriteText(root_ / "x/y/z", "z");
  stdfs::create_directory_symlink(outside_, root_ / "x/link");
  ASSERT_TRUE(dir_->RemoveAll("x").ok());
  EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(root_ / "x")));
  EXPECT_TRUE(dir_->RemoveAll("x").ok());
  ExpectVictimUntouched();
}

INSTANTIATE_TEST_SUITE_P(Resolvers, RootedDirTest,
                         ::testing::Values(RootedDir::Resolver::kAuto,
                                           RootedDir::Resolver::kUserSpace),
                         [](const auto& info) {
                           return info.param == RootedDir::Resolver::kAuto ? "openat2"
                                                                           : "userspace";
                         });

TEST(RootedDirOpen, MissingRootIsNotFound) {
  EXPECT_EQ(RootedDir::Open("/nonexistent/ota-root").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ota::fs
