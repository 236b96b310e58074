// extlinux.conf root= rewriting: a table of real and nasty configurations.
#include "otaclient/boot/extlinux.h"

#include <string>

#include "gtest/gtest.h"

namespace ota::boot {
namespace {

constexpr const char* kUuid = "1f2e3d4c-0000-4abc-8def-0123456789ab";

struct Case {
  const char* name;
  std::string in;
  std::string out;  // "" with lines == 0: must be rejected
  int lines = 1;
};

TEST(RewriteExtlinuxRoot, Table) {
  const Case cases[] = {
      {"jetson r32 default",
       "TIMEOUT 30\nDEFAULT primary\n\nMENU TITLE L4T boot options\n\nLABEL primary\n"
       "      MENU LABEL primary kernel\n      LINUX /boot/Image\n      INITRD /boot/initrd\n"
       "      APPEND ${cbootargs} quiet root=/dev/mmcblk0p1 rw rootwait rootfstype=ext4\n",
       "TIMEOUT 30\nDEFAULT primary\n\nMENU TITLE L4T boot options\n\nLABEL primary\n"
       "      MENU LABEL primary kernel\n      LINUX /boot/Image\n      INITRD /boot/initrd\n"
       "      APPEND ${cbootargs} quiet root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab rw "
       "rootwait rootfstype=ext4\n"},
      {"existing partuuid replaced", "APPEND root=PARTUUID=aaaa-bbbb rw\n",
       "APPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab rw\n"},
      {"first line is APPEND (old regex needed a newline before)", "APPEND quiet",
       "APPEND quiet root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab"},
      {"no root: appended, trailing blanks kept", "  append console=ttyS0  \n",
       "  append console=ttyS0 root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab  \n"},
      {"bare keyword", "APPEND\n", "APPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\n"},
      {"nfsroot= and rootfstype= untouched",
       "APPEND nfsroot=1.2.3.4:/x rootfstype=ext4 rootwait xroot=y\n",
       "APPEND nfsroot=1.2.3.4:/x rootfstype=ext4 rootwait xroot=y "
       "root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\n"},
      {"comment untouched", "# APPEND root=/dev/sda1\nAPPEND root=/dev/sda2\n",
       "# APPEND root=/dev/sda1\nAPPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\n"},
      {"APPENDX is not APPEND", "APPENDX root=/dev/x\nAppend root=/dev/y\n",
       "APPENDX root=/dev/x\nAppend root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\n"},
      {"two labels, both rewritten",
       "LABEL a\n APPEND root=/dev/a\nLABEL b\n\tAPPEND\troot=/dev/b\tquiet\n",
       "LABEL a\n APPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\nLABEL b\n"
       "\tAPPEND\troot=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\tquiet\n",
       2},
      {"duplicate root= all replaced", "APPEND root=/dev/a root=/dev/b\n",
       "APPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab "
       "root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\n"},
      {"quoted root value with blanks", "APPEND root=\"LABEL=my root\" ro\n",
       "APPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab ro\n"},
      {"parameter quoted as a whole", "APPEND \"root=/dev/x y\" rw\n",
       "APPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab rw\n"},
      {"root= inside another value untouched", "APPEND foo=\"root=/dev/x\" rw\n",
       "APPEND foo=\"root=/dev/x\" rw root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\n"},
      {"init args after -- untouched", "APPEND quiet -- root=/dev/init-arg single\n",
       "APPEND quiet root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab -- root=/dev/init-arg "
       "single\n"},
      {"root before -- replaced", "APPEND root=/dev/x -- root=/dev/y\n",
       "APPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab -- root=/dev/y\n"},
      {"CRLF kept", "LABEL p\r\nAPPEND root=/dev/x rw\r\n",
       "LABEL p\r\nAPPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab rw\r\n"},
      {"CRLF without root", "APPEND rw\r\n",
       "APPEND rw root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\r\n"},
      {"ROOT= is not root=", "APPEND ROOT=/dev/x\n",
       "APPEND ROOT=/dev/x root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab\n"},
      {"empty root= replaced", "APPEND root= rw\n",
       "APPEND root=PARTUUID=1f2e3d4c-0000-4abc-8def-0123456789ab rw\n"},
      {"no APPEND line", "LABEL x\nLINUX /boot/Image\n", "", 0},
      {"empty file", "", "", 0},
      {"only a commented APPEND", "#APPEND root=/dev/x\n", "", 0},
      {"unterminated quote", "APPEND root=\"abc rw\n", "", 0},
      {"NUL byte", std::string("APPEND root=/dev/x\0\n", 20), "", 0},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ExtlinuxRewrite> got = RewriteExtlinuxRoot(c.in, kUuid);
    if (c.lines == 0) {
      EXPECT_FALSE(got.ok()) << c.name << ": accepted, gave:\n" << got->content;
      continue;
    }
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.status();
    EXPECT_EQ(got->content, c.out) << c.name;
    EXPECT_EQ(got->append_lines, c.lines) << c.name;
  }
}

TEST(RewriteExtlinuxRoot, Idempotent) {
  const std::string conf = "LABEL p\n  APPEND ${cbootargs} root=/dev/mmcblk0p1 rw -- x\n";
  auto once = RewriteExtlinuxRoot(conf, kUuid);
  ASSERT_TRUE(once.ok());
  auto twice = RewriteExtlinuxRoot(once->content, kUuid);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(once->content, twice->content);
}

TEST(RewriteExtlinuxRoot, RejectsBadPartuuid) {
  for (const char* bad : {"", "zz", "abc def", "abc\n", "1234-5678 rw", "a/b",
                          "0123456789abcdef0123456789abcdef01234"}) {
    EXPECT_FALSE(RewriteExtlinuxRoot("APPEND rw\n", bad).ok()) << bad;
  }
  EXPECT_TRUE(RewriteExtlinuxRoot("APPEND rw\n", "8a3b5c1d-02").ok());  // MBR style
}

TEST(RewriteExtlinuxRoot, ErrorNamesTheLine) {
  auto got = RewriteExtlinuxRoot("LABEL a\nAPPEND rw\nAPPEND \"oops\n", kUuid);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("line 3"), absl::string_view::npos) << got.status();
}

}  // namespace
}  // namespace ota::boot
