// GrubEnv against the real grub-editenv: create, set/unset in one atomic replacement, values with
// '=' and spaces, a missing file, and that the file stays a valid 1024-byte block GRUB can read.
#include "otaclient/boot/grub_env.h"

#include <filesystem>

#include "common/fs/fs.h"
#include "common/sys/command.h"
#include "gtest/gtest.h"

namespace ota::boot {
namespace {

class GrubEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sys::RunProgram({"grub-editenv", "--version"}).ok())
      GTEST_SKIP() << "SKIP: no grub-editenv";
    auto tmp = fs::TempDir::Create("grubenv-test");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
  }
  std::filesystem::path File() const { return tmp_->path() / "grubenv"; }
  std::unique_ptr<fs::TempDir> tmp_;
};

TEST_F(GrubEnvTest, MissingFileReadsEmptyAndCreateMakesABlock) {
  GrubEnv env(File());
  auto vars = env.Load();
  ASSERT_TRUE(vars.ok()) << vars.status();
  EXPECT_TRUE(vars->empty());
  ASSERT_TRUE(env.CreateIfMissing().ok());
  EXPECT_EQ(std::filesystem::file_size(File()), 1024u);
  ASSERT_TRUE(env.CreateIfMissing().ok());  // idempotent
}

TEST_F(GrubEnvTest, SetAndUnsetAtomically) {
  GrubEnv env(File());
  ASSERT_TRUE(env.Update({{"saved_entry", "slot_a"}, {"next_entry", "slot_b"}}).ok());
  ASSERT_TRUE(env.Update({{"odd", "a=b c"}}, {"next_entry"}).ok());
  auto vars = env.Load();
  ASSERT_TRUE(vars.ok()) << vars.status();
  EXPECT_EQ(*vars, (GrubEnvMap{{"saved_entry", "slot_a"}, {"odd", "a=b c"}}));
  EXPECT_EQ(std::filesystem::file_size(File()), 1024u);
  EXPECT_FALSE(std::filesystem::exists(File().string() + ".ota-new"));
  // The real tool agrees.
  auto listed = sys::RunProgramChecked({"grub-editenv", File().string(), "list"});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, "saved_entry=slot_a\nodd=a=b c\n");
}

TEST_F(GrubEnvTest, EmptyValueIsKeptLikeGrubSaveEnv) {
  GrubEnv env(File());
  ASSERT_TRUE(env.Update({{"next_entry", ""}}).ok());
  auto vars = env.Load();
  ASSERT_TRUE(vars.ok());
  EXPECT_EQ(*vars, (GrubEnvMap{{"next_entry", ""}}));
}

TEST_F(GrubEnvTest, CorruptBlockIsAnErrorNotSilentlyEmpty) {
  ASSERT_TRUE(fs::WriteFileAtomic(File(), "not an environment block").ok());
  GrubEnv env(File());
  EXPECT_FALSE(env.Load().ok());
}

TEST(ParseGrubEnvList, Lines) {
  EXPECT_EQ(ParseGrubEnvList("a=1\nb=x=y\n=bad\nnoequals\nc=\r\n"),
            (GrubEnvMap{{"a", "1"}, {"b", "x=y"}, {"c", ""}}));
}

}  // namespace
}  // namespace ota::boot
