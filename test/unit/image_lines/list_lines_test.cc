#include "common/image/legacy/list_lines.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/image/manifest.h"

namespace ota::image {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kSha =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string Sha() { return std::string(kSha); }

// A string literal with embedded NULs, whole.
template <size_t N>
std::string WithNul(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

crypto::Sha256Digest Digest(std::string_view hex) {
  crypto::Sha256Digest d{};
  EXPECT_TRUE(crypto::FromHex(hex, &d)) << hex;
  return d;
}

// ---------------------------------------------------------------------------------------------
// Upstream test vectors (reference §3) and the generator's real output shapes.

TEST(DirLine, UpstreamVector) {
  Manifest m;
  ASSERT_TRUE(ParseDirLine("0755,0,0,'/usr/lib/python3/aaa,'\\''bbb'", m).ok());
  ASSERT_EQ(m.dirs.size(), 1u);
  EXPECT_EQ(m.dirs[0].mode, 0755u);
  EXPECT_EQ(m.dirs[0].uid, 0u);
  EXPECT_EQ(m.dirs[0].gid, 0u);
  EXPECT_EQ(m.Str(m.dirs[0].path), "/usr/lib/python3/aaa,'bbb");
}

TEST(SymlinkLine, UpstreamVector) {
  Manifest m;
  ASSERT_TRUE(ParseSymlinkLine(
                  "0777,0,0,'/var/lib/ieee-data/iab.csv','../../ieee-data/'\\'','\\''iab.csv'", m)
                  .ok());
  ASSERT_EQ(m.symlinks.size(), 1u);
  EXPECT_EQ(m.symlinks[0].mode, 0777u);
  EXPECT_EQ(m.Str(m.symlinks[0].path), "/var/lib/ieee-data/iab.csv");
  EXPECT_EQ(m.Str(m.symlinks[0].target), "../../ieee-data/','iab.csv");
}

TEST(PersistentLine, UpstreamVector) {
  Manifest m;
  ASSERT_TRUE(ParsePersistentLine("'/etc/net'\\''plan'", m).ok());
  ASSERT_EQ(m.persistents.size(), 1u);
  EXPECT_EQ(m.Str(m.persistents[0]), "/etc/net'plan");
}

struct RegularCase {
  std::string name;
  std::string line;
  std::string path;
  uint32_t mode, uid, gid, nlink;
  std::optional<uint64_t> size;
  std::optional<uint64_t> inode;
  Compression compression;
};

void PrintTo(const RegularCase& c, std::ostream* os) { *os << c.name; }

class RegularLineVectors : public ::testing::TestWithParam<RegularCase> {};

TEST_P(RegularLineVectors, Parses) {
  const RegularCase& c = GetParam();
  Manifest m;
  absl::Status st = ParseRegularLine(c.line, m);
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_EQ(m.regulars.size(), 1u);
  const RegularEntry& e = m.regulars[0];
  EXPECT_EQ(m.Str(e.path), c.path);
  EXPECT_EQ(e.mode, c.mode);
  EXPECT_EQ(e.uid, c.uid);
  EXPECT_EQ(e.gid, c.gid);
  EXPECT_EQ(e.nlink, c.nlink);
  EXPECT_EQ(e.sha256, Digest(kSha));
  EXPECT_EQ(e.has_size, c.size.has_value());
  if (c.size) {
    EXPECT_EQ(e.size, *c.size);
  }
  EXPECT_EQ(e.has_inode, c.inode.has_value());
  if (c.inode) {
    EXPECT_EQ(e.inode, *c.inode);
  }
  EXPECT_EQ(e.compression, c.compression);
}

const std::string kUpstreamPath = "'/aaa\\,'\\'',233/to/file'";
const std::string kUpstreamPrefix = "0644,1000,1000,3," + Sha() + ",";

INSTANTIATE_TEST_SUITE_P(
    All, RegularLineVectors,
    ::testing::Values(
        // §3.3 vectors: v3, v2, v1.
        RegularCase{"v3", kUpstreamPrefix + kUpstreamPath + ",1234,12345678",
                    "/aaa\\,',233/to/file", 0644, 1000, 1000, 3, 1234, 12345678,
                    Compression::kNone},
        RegularCase{"v2", kUpstreamPrefix + kUpstreamPath + ",1234", "/aaa\\,',233/to/file", 0644,
                    1000, 1000, 3, 1234, std::nullopt, Compression::kNone},
        RegularCase{"v1", kUpstreamPrefix + kUpstreamPath, "/aaa\\,',233/to/file", 0644, 1000, 1000,
                    3, std::nullopt, std::nullopt, Compression::kNone},
        // The May-2022 generator's nlink==1 shape: empty inode, line ends with ','.
        RegularCase{"trailing_empty_inode", "0644,0,0,1," + Sha() + ",'/usr/bin/kill',1234,",
                    "/usr/bin/kill", 0644, 0, 0, 1, 1234, std::nullopt, Compression::kNone},
        // The Oct-2022 generator: always nine fields.
        RegularCase{"nine_fields_empty", "0644,0,0,1," + Sha() + ",'/usr/bin/kill',1234,,",
                    "/usr/bin/kill", 0644, 0, 0, 1, 1234, std::nullopt, Compression::kNone},
        RegularCase{"nine_fields_zst", "0755,0,0,1," + Sha() + ",'/usr/bin/kill',99999,,zst",
                    "/usr/bin/kill", 0755, 0, 0, 1, 99999, std::nullopt, Compression::kZstd},
        RegularCase{"nine_fields_zstd_inode",
                    "0644,0,0,2," + Sha() + ",'/usr/bin/kill',99999,4242,zstd", "/usr/bin/kill",
                    0644, 0, 0, 2, 99999, 4242, Compression::kZstd},
        RegularCase{"empty_size_field", "0644,0,0,1," + Sha() + ",'/a',", "/a", 0644, 0, 0, 1,
                    std::nullopt, std::nullopt, Compression::kNone},
        RegularCase{"setuid_max_ids",
                    "4755,4294967295,4294967295,4294967295," + Sha() + ",'/bin/su',0,,", "/bin/su",
                    04755, 4294967295u, 4294967295u, 4294967295u, 0, std::nullopt,
                    Compression::kNone},
        RegularCase{"uppercase_hex_crlf",
                    "0644,0,0,1,0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF,"
                    "'/a',1,,\r\n",
                    "/a", 0644, 0, 0, 1, 1, std::nullopt, Compression::kNone},
        RegularCase{"max_size_inode",
                    "0644,0,0,2," + Sha() + ",'/a',18446744073709551615,18446744073709551615,",
                    "/a", 0644, 0, 0, 2, 18446744073709551615ull, 18446744073709551615ull,
                    Compression::kNone},
        // Path greedy to the last quote: a name containing "','" and "',1,2,'".
        RegularCase{"path_with_quote_comma_digits",
                    "0644,0,0,1," + Sha() + ",'/x'\\'',1,2,'\\''y',7,,", "/x',1,2,'y", 0644, 0, 0,
                    1, 7, std::nullopt, Compression::kNone},
        RegularCase{"name_ending_in_quote", "0644,0,0,1," + Sha() + ",'/a'\\''',7,,", "/a'", 0644,
                    0, 0, 1, 7, std::nullopt, Compression::kNone}),
    [](const ::testing::TestParamInfo<RegularCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Malformed lines: each is refused with kInvalidArgument, and the message names the problem.

struct BadCase {
  std::string name;
  ListKind kind;
  std::string line;
  std::string reason;  // substring of the error message
};

absl::Status ParseOne(ListKind kind, std::string_view line, Manifest& m) {
  switch (kind) {
    case ListKind::kDirs:
      return ParseDirLine(line, m);
    case ListKind::kSymlinks:
      return ParseSymlinkLine(line, m);
    case ListKind::kRegulars:
      return ParseRegularLine(line, m);
    case ListKind::kPersistents:
      return ParsePersistentLine(line, m);
  }
  return absl::InternalError("unreachable");
}

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadLines : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadLines, Rejected) {
  const BadCase& c = GetParam();
  Manifest m;
  absl::Status st = ParseOne(c.kind, c.line, m);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr(c.reason));
  // Nothing half-parsed is left behind.
  EXPECT_TRUE(m.dirs.empty() && m.symlinks.empty() && m.regulars.empty() && m.persistents.empty());
}

std::string Reg(std::string_view tail) { return "0644,0,0,1," + Sha() + "," + std::string(tail); }

INSTANTIATE_TEST_SUITE_P(
    All, BadLines,
    ::testing::Values(
        // Modes.
        BadCase{"mode_non_octal", ListKind::kDirs, "0899,0,0,'/a'", "not octal"},
        BadCase{"mode_too_large", ListKind::kDirs, "10000,0,0,'/a'", "larger than 07777"},
        BadCase{"mode_huge", ListKind::kDirs, "77777777777777777777777,0,0,'/a'",
                "larger than 07777"},
        BadCase{"mode_empty", ListKind::kDirs, ",0,0,'/a'", "mode is empty"},
        BadCase{"mode_signed", ListKind::kDirs, "+644,0,0,'/a'", "not octal"},
        BadCase{"mode_space", ListKind::kDirs, " 644,0,0,'/a'", "not octal"},
        BadCase{"mode_hex", ListKind::kRegulars, "0x1ff,0,0,1," + Sha() + ",'/a'", "not octal"},
        // uid / gid.
        BadCase{"uid_overflow", ListKind::kDirs, "0755,4294967296,0,'/a'", "larger than"},
        BadCase{"gid_overflow", ListKind::kDirs, "0755,0,99999999999999999999999,'/a'",
                "larger than"},
        BadCase{"uid_negative", ListKind::kDirs, "0755,-1,0,'/a'", "not decimal"},
        BadCase{"uid_exponent", ListKind::kSymlinks, "0777,1e3,0,'/a','b'", "not decimal"},
        BadCase{"gid_empty", ListKind::kDirs, "0755,0,,'/a'", "gid is empty"},
        BadCase{"missing_fields", ListKind::kDirs, "0755,0", "missing ','"},
        BadCase{"empty_line", ListKind::kRegulars, "", "empty line"},
        BadCase{"only_crlf", ListKind::kPersistents, "\r\n", "empty line"},
        // nlink / sha256.
        BadCase{"nlink_zero", ListKind::kRegulars, "0644,0,0,0," + Sha() + ",'/a',1,,",
                "nlink is 0"},
        BadCase{"nlink_overflow", ListKind::kRegulars, "0644,0,0,4294967296," + Sha() + ",'/a',1,,",
                "larger than"},
        BadCase{"sha_short", ListKind::kRegulars, "0644,0,0,1," + Sha().substr(1) + ",'/a',1,,",
                "not 64 hex"},
        BadCase{"sha_long", ListKind::kRegulars, "0644,0,0,1," + Sha() + "0,'/a',1,,",
                "not 64 hex"},
        BadCase{"sha_non_hex", ListKind::kRegulars,
                "0644,0,0,1,g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef,"
                "'/a',1,,",
                "not 64 hex"},
        // Every byte just outside the hex ranges, at the last (low nibble) position too: the
        // digest is decoded through a table.
        BadCase{"sha_last_g", ListKind::kRegulars, "0644,0,0,1," + Sha().substr(0, 63) + "g,'/a'",
                "not 64 hex"},
        BadCase{"sha_slash", ListKind::kRegulars, "0644,0,0,1,/" + Sha().substr(1) + ",'/a'",
                "not 64 hex"},
        BadCase{"sha_colon", ListKind::kRegulars,
                "0644,0,0,1," + Sha().substr(0, 9) + ":" + Sha().substr(10) + ",'/a'",
                "not 64 hex"},
        BadCase{"sha_at", ListKind::kRegulars, "0644,0,0,1,@" + Sha().substr(1) + ",'/a'",
                "not 64 hex"},
        BadCase{"sha_upper_g", ListKind::kRegulars, "0644,0,0,1,G" + Sha().substr(1) + ",'/a'",
                "not 64 hex"},
        BadCase{"sha_backtick", ListKind::kRegulars, "0644,0,0,1,`" + Sha().substr(1) + ",'/a'",
                "not 64 hex"},
        BadCase{"sha_high_byte", ListKind::kRegulars, "0644,0,0,1,\xe6" + Sha().substr(1) + ",'/a'",
                "not 64 hex"},
        BadCase{
            "sha_nul", ListKind::kRegulars,
            "0644,0,0,1," + Sha().substr(0, 20) + std::string(1, '\0') + Sha().substr(21) + ",'/a'",
            "not 64 hex"},
        // Quoting.
        BadCase{"unquoted_dir", ListKind::kDirs, "0755,0,0,/usr", "single-quoted"},
        BadCase{"unquoted_regular", ListKind::kRegulars, Reg("/usr/a,1,,"), "single-quoted"},
        BadCase{"unquoted_persistent", ListKind::kPersistents, "/etc/hosts", "single-quoted"},
        BadCase{"no_closing_quote", ListKind::kDirs, "0755,0,0,'/usr", "no closing quote"},
        BadCase{"bare_quote_inside", ListKind::kDirs, "0755,0,0,'/a'b'", "unexpected"},
        BadCase{"bare_quote_inside_regular", ListKind::kRegulars, Reg("'/a'b',1,,"), "unexpected"},
        BadCase{"symlink_no_target", ListKind::kSymlinks, "0777,0,0,'/a'", "missing ','"},
        BadCase{"symlink_unquoted_target", ListKind::kSymlinks, "0777,0,0,'/a',b", "target"},
        BadCase{"symlink_empty_target", ListKind::kSymlinks, "0777,0,0,'/a',''", "target is empty"},
        BadCase{"symlink_nul_target", ListKind::kSymlinks, WithNul("0777,0,0,'/a','b\0c'"), "NUL"},
        // Paths.
        BadCase{"relative", ListKind::kDirs, "0755,0,0,'usr/bin'", "not absolute"},
        BadCase{"dotdot", ListKind::kRegulars, Reg("'/usr/../etc/shadow',1,,"), "'..'"},
        BadCase{"dotdot_end", ListKind::kPersistents, "'/etc/..'", "'..'"},
        BadCase{"dot", ListKind::kDirs, "0755,0,0,'/./a'", "'.'"},
        BadCase{"root", ListKind::kDirs, "0755,0,0,'/'", "root itself"},
        BadCase{"empty_path", ListKind::kPersistents, "''", "is empty"},
        BadCase{"double_slash", ListKind::kDirs, "0755,0,0,'/a//b'", "empty component"},
        BadCase{"trailing_slash", ListKind::kDirs, "0755,0,0,'/a/'", "empty component"},
        BadCase{"nul_path", ListKind::kRegulars, Reg(WithNul("'/a\0b',1,,")), "NUL"},
        BadCase{"symlink_relative_link", ListKind::kSymlinks, "0777,0,0,'a','b'", "not absolute"},
        BadCase{"too_long", ListKind::kPersistents, "'/" + std::string(4095, 'a') + "'",
                "longer than"},
        // Tails.
        BadCase{"unknown_alg", ListKind::kRegulars, Reg("'/a',1,,gz"), "unknown compression"},
        BadCase{"alg_case", ListKind::kRegulars, Reg("'/a',1,,ZST"), "unknown compression"},
        BadCase{"tenth_field", ListKind::kRegulars, Reg("'/a',1,,zst,x"), "after the compression"},
        BadCase{"tenth_empty_field", ListKind::kRegulars, Reg("'/a',1,,zst,"),
                "after the compression"},
        BadCase{"junk_after_path", ListKind::kRegulars, Reg("'/a'x"), "after the path"},
        BadCase{"space_after_path", ListKind::kRegulars, Reg("'/a' "), "after the path"},
        BadCase{"size_not_decimal", ListKind::kRegulars, Reg("'/a',12a,,"), "not decimal"},
        BadCase{"size_negative", ListKind::kRegulars, Reg("'/a',-1,,"), "not decimal"},
        BadCase{"size_overflow", ListKind::kRegulars, Reg("'/a',18446744073709551616,,"),
                "larger than"},
        BadCase{"inode_not_decimal", ListKind::kRegulars, Reg("'/a',1,x,"), "not decimal"},
        BadCase{"junk_after_dir", ListKind::kDirs, "0755,0,0,'/a',x", "after the path"},
        BadCase{"junk_after_target", ListKind::kSymlinks, "0777,0,0,'/a','b',", "after the target"},
        BadCase{"junk_after_persistent", ListKind::kPersistents, "'/etc/hosts' x",
                "after the path"},
        BadCase{"persistent_trailing_space", ListKind::kPersistents, "'/etc/hosts' ",
                "after the path"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Round trip: what the formatter writes, the parser reads back unchanged.

const std::vector<std::string>& NastyNames() {
  static const std::vector<std::string> names = {
      "/plain",
      "/it's",
      "/a,b,c",
      "/with space",
      "/100%",
      "/a+b",
      "/a:b:c",
      "/back\\slash",
      "/back\\'slash",
      "/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/\xc3\xa9t\xc3\xa9",
      "/ends-in-quote'",
      "/'starts-with-quote",
      "/''",
      "/'\\''",
      "/has','inside",
      "/x',1,2,'y",
      "/x','",
      "/dir/'/file'",
      "/tab\there",
      "/carriage\rreturn",
      "/a/b/c/d/e/f/g",
      "/...",
      "/.hidden",
      "/-",
  };
  return names;
}

TEST(RoundTrip, DirLines) {
  for (const std::string& name : NastyNames()) {
    for (uint32_t mode : {0755u, 01777u, 02755u, 040755u}) {
      Manifest m;
      std::string line = FormatDirLine(mode, 1000, 4294967295u, name);
      absl::Status st = ParseDirLine(line, m);
      ASSERT_TRUE(st.ok()) << line << ": " << st;
      EXPECT_EQ(m.Str(m.dirs[0].path), name) << line;
      EXPECT_EQ(m.dirs[0].mode, mode & 07777) << line;
      EXPECT_EQ(m.dirs[0].uid, 1000u);
      EXPECT_EQ(m.dirs[0].gid, 4294967295u);
    }
  }
}

TEST(RoundTrip, SymlinkLines) {
  std::vector<std::string> targets = NastyNames();
  targets.push_back("relative/target");
  targets.push_back("../../up");
  targets.push_back("'");
  targets.push_back("','");
  targets.push_back("dangling-nowhere");
  for (const std::string& link : NastyNames()) {
    for (const std::string& target : targets) {
      Manifest m;
      std::string line = FormatSymlinkLine(0120777, 0, 0, link, target);
      absl::Status st = ParseSymlinkLine(line, m);
      ASSERT_TRUE(st.ok()) << line << ": " << st;
      EXPECT_EQ(m.Str(m.symlinks[0].path), link) << line;
      EXPECT_EQ(m.Str(m.symlinks[0].target), target) << line;
      EXPECT_EQ(m.symlinks[0].mode, 0777u);
    }
  }
}

TEST(RoundTrip, RegularLines) {
  for (const std::string& name : NastyNames()) {
    struct Shape {
      uint32_t mode, nlink;
      uint64_t size;
      std::string inode, alg;
    };
    for (const Shape& s :
         {Shape{0100644, 1, 0, "", ""}, Shape{0104755, 1, 17, "", "zst"},
          Shape{0102755, 3, 123456789012ull, "987654321", ""}, Shape{0101777, 2, 1, "1", "zst"}}) {
      Manifest m;
      std::string line =
          FormatRegularLine(s.mode, 7, 8, s.nlink, kSha, name, s.size, s.inode, s.alg);
      absl::Status st = ParseRegularLine(line, m);
      ASSERT_TRUE(st.ok()) << line << ": " << st;
      const RegularEntry& e = m.regulars[0];
      EXPECT_EQ(m.Str(e.path), name) << line;
      EXPECT_EQ(e.mode, s.mode & 07777);
      EXPECT_EQ(e.uid, 7u);
      EXPECT_EQ(e.gid, 8u);
      EXPECT_EQ(e.nlink, s.nlink);
      EXPECT_EQ(e.sha256, Digest(kSha));
      EXPECT_TRUE(e.has_size);
      EXPECT_EQ(e.size, s.size);
      EXPECT_EQ(e.has_inode, !s.inode.empty());
      if (!s.inode.empty()) {
        EXPECT_EQ(std::to_string(e.inode), s.inode);
      }
      EXPECT_EQ(e.compression, s.alg.empty() ? Compression::kNone : Compression::kZstd);
    }
  }
}

TEST(RoundTrip, PersistentLines) {
  for (const std::string& name : NastyNames()) {
    Manifest m;
    std::string line = FormatPersistentLine(name);
    absl::Status st = ParsePersistentLine(line, m);
    ASSERT_TRUE(st.ok()) << line << ": " << st;
    EXPECT_EQ(m.Str(m.persistents[0]), name);
  }
}

TEST(RoundTrip, EscapeUnescape) {
  for (const std::string& name : NastyNames()) {
    EXPECT_EQ(UnescapeQuoted(EscapeQuoted(name)), name);
  }
  EXPECT_EQ(EscapeQuoted("a'b"), "a'\\''b");
  EXPECT_EQ(UnescapeQuoted("a'\\''b'\\''"), "a'b'");
  EXPECT_EQ(UnescapeQuoted("no quotes"), "no quotes");
}

// ---------------------------------------------------------------------------------------------
// Formatter output, byte for byte as tier4's generator writes it.

TEST(Format, Modes) {
  EXPECT_EQ(FormatMode(0100644), "0644");
  EXPECT_EQ(FormatMode(0104755), "4755");
  EXPECT_EQ(FormatMode(0102755), "2755");
  EXPECT_EQ(FormatMode(041777), "1777");
  EXPECT_EQ(FormatMode(0120777), "0777");
  EXPECT_EQ(FormatMode(0), "0000");
  EXPECT_EQ(FormatMode(07), "0007");
}

TEST(Format, Lines) {
  EXPECT_EQ(FormatDirLine(040755, 0, 0, "/usr/lib/python3/aaa,'bbb"),
            "0755,0,0,'/usr/lib/python3/aaa,'\\''bbb'");
  EXPECT_EQ(
      FormatSymlinkLine(0120777, 0, 0, "/var/lib/ieee-data/iab.csv", "../../ieee-data/','iab.csv"),
      "0777,0,0,'/var/lib/ieee-data/iab.csv','../../ieee-data/'\\'','\\''iab.csv'");
  EXPECT_EQ(FormatRegularLine(0100644, 1000, 1000, 1, kSha, "/usr/bin/kill", 1234, "", ""),
            "0644,1000,1000,1," + Sha() + ",'/usr/bin/kill',1234,,");
  EXPECT_EQ(FormatRegularLine(0100644, 1000, 1000, 3, kSha, "/aaa\\,',233/to/file", 1234,
                              "12345678", "zst"),
            "0644,1000,1000,3," + Sha() + ",'/aaa\\,'\\'',233/to/file',1234,12345678,zst");
  EXPECT_EQ(FormatPersistentLine("/etc/net'plan"), "'/etc/net'\\''plan'");
}

// ---------------------------------------------------------------------------------------------
// Whole files.

TEST(ListFile, ParsesAllLinesSkippingBlanks) {
  std::string content = Reg("'/a',1,,") + "\n\n" + Reg("'/b',2,,zst") + "\r\n   \n" +
                        Reg("'/c',3,,");  // no trailing newline
  Manifest m;
  ASSERT_TRUE(ParseListFile(ListKind::kRegulars, content, "regulars.txt", m).ok());
  ASSERT_EQ(m.regulars.size(), 3u);
  EXPECT_EQ(m.Str(m.regulars[0].path), "/a");
  EXPECT_EQ(m.Str(m.regulars[1].path), "/b");
  EXPECT_EQ(m.regulars[1].compression, Compression::kZstd);
  EXPECT_EQ(m.Str(m.regulars[2].path), "/c");
  EXPECT_EQ(m.regulars[2].size, 3u);
}

TEST(ListFile, TrailingNewlineAndEmptyFile) {
  Manifest m;
  ASSERT_TRUE(
      ParseListFile(ListKind::kPersistents, "'/etc/hosts'\n'/etc/hostname'\n", "persistents.txt", m)
          .ok());
  EXPECT_EQ(m.persistents.size(), 2u);
  ASSERT_TRUE(ParseListFile(ListKind::kDirs, "", "dirs.txt", m).ok());
  EXPECT_TRUE(m.dirs.empty());
  // Appends: the earlier entries stay valid.
  EXPECT_EQ(m.Str(m.persistents[1]), "/etc/hostname");
}

TEST(ListFile, ErrorNamesFileAndOneBasedLine) {
  std::string content = "0755,0,0,'/a'\n\n0755,0,0,'/b'\n0755,0,0,'/c/../d'\n0755,0,0,'/e'";
  Manifest m;
  absl::Status st = ParseListFile(ListKind::kDirs, content, "dirs.txt", m);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("dirs.txt:4: "));
  EXPECT_THAT(std::string(st.message()), HasSubstr("'..'"));
}

TEST(ListFile, EachKindUsesItsParser) {
  Manifest m;
  ASSERT_TRUE(
      ParseListFile(ListKind::kSymlinks, "0777,0,0,'/bin','usr/bin'", "symlinks.txt", m).ok());
  ASSERT_EQ(m.symlinks.size(), 1u);
  EXPECT_EQ(m.Str(m.symlinks[0].target), "usr/bin");
  // A dirs line is not a valid symlinks line.
  absl::Status st = ParseListFile(ListKind::kSymlinks, "0755,0,0,'/a'", "symlinks.txt", m);
  EXPECT_THAT(std::string(st.message()), HasSubstr("symlinks.txt:1: "));
}

TEST(ValidateImagePath, AcceptsAndRejects) {
  EXPECT_TRUE(ValidateImagePath("/a").ok());
  EXPECT_TRUE(ValidateImagePath("/a/b.c/...d/..e").ok());
  EXPECT_TRUE(ValidateImagePath("/" + std::string(4094, 'x')).ok());
  const std::vector<std::string> bad_paths = {
      "",   "a",   "/",      "//",      "/a/", "/a//b",
      "/.", "/..", "/a/./b", "/a/../b", "./a", "/" + std::string(4095, 'x')};
  for (const std::string& bad : bad_paths) {
    absl::Status st = ValidateImagePath(bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateImagePath(std::string_view("/a\0b", 4)).ok());
}

}  // namespace
}  // namespace ota::image
