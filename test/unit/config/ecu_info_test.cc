#include "common/config/ecu_info.h"

#include <functional>
#include <string>
#include <vector>

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

constexpr std::string_view kFile = "/boot/ota/ecu_info.yaml";

EcuInfo ParseOk(std::string_view yaml) {
  absl::StatusOr<EcuInfo> info = ParseEcuInfo(yaml, kFile);
  EXPECT_TRUE(info.ok()) << info.status();
  return info.ok() ? *info : EcuInfo{};
}

TEST(ConfigEcuInfo, DefaultsAreTheUpstreamOnes) {
  EcuInfo info;
  EXPECT_EQ(info.format_version, 1);
  EXPECT_EQ(info.ecu_id, "autoware");
  EXPECT_EQ(info.ip_addr, "127.0.0.1");
  EXPECT_THAT(info.secondaries, IsEmpty());
  EXPECT_THAT(info.available_ecu_ids, ElementsAre("autoware"));
  EXPECT_EQ(info.bootloader, "");
  EXPECT_TRUE(info.source.empty());
  EXPECT_THAT(info.warnings, IsEmpty());
  EXPECT_EQ(SecondaryEcu{}.port, 50051);
}

// Upstream: an empty document is not a mapping, so the file is invalid (defaults, updates
// refused), unlike a missing key.
TEST(ConfigEcuInfo, EmptyDocumentsAreInvalid) {
  for (std::string_view text :
       {"", "\n\n", "# only a comment\n", "~\n", "---\n", "null", "--- ~\n...\n", "\xEF\xBB\xBF"}) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(IsConfigError(ParseEcuInfo(text, kFile), ota::StrCat(kFile, ": "),
                              "no settings (an empty file or only comments): ecu_id is required"));
  }
}

TEST(ConfigEcuInfo, UpstreamMainEcuSample) {
  // The sample used by upstream's tests, typo "format_vesrion" included: it is an unknown key,
  // so a warning, and format_version keeps its default.
  EcuInfo info = ParseOk(R"(format_vesrion: 1
ecu_id: "autoware"
ip_addr: "10.0.0.1"
bootloader: "grub"
secondaries:
    - ecu_id: "p1"
      ip_addr: "10.0.0.11"
    - ecu_id: "p2"
      ip_addr: "10.0.0.12"
available_ecu_ids:
    - "autoware"
    # p1: new otaclient
    - "p1"
    # p2: old otaclient
    - "p2"
)");
  EXPECT_EQ(info.format_version, 1);
  EXPECT_EQ(info.ecu_id, "autoware");
  EXPECT_EQ(info.ip_addr, "10.0.0.1");
  EXPECT_EQ(info.bootloader, "grub");
  EXPECT_THAT(info.secondaries, ElementsAre(SecondaryEcu{"p1", "10.0.0.11", 50051},
                                            SecondaryEcu{"p2", "10.0.0.12", 50051}));
  EXPECT_THAT(info.available_ecu_ids, ElementsAre("autoware", "p1", "p2"));
  EXPECT_EQ(info.source, kFile);
  ASSERT_THAT(info.warnings, SizeIs(1));
  EXPECT_EQ(info.warnings[0],
            "/boot/ota/ecu_info.yaml:1: field \"format_vesrion\": unknown key, ignored");
}

TEST(ConfigEcuInfo, SubEcuWithOnlyAnId) {
  EcuInfo info = ParseOk("ecu_id: perception\n");
  EXPECT_EQ(info.ecu_id, "perception");
  EXPECT_EQ(info.ip_addr, "127.0.0.1");
  EXPECT_THAT(info.secondaries, IsEmpty());
  EXPECT_THAT(info.available_ecu_ids, ElementsAre("perception"));
  EXPECT_THAT(info.warnings, IsEmpty());
}

struct GoodCase {
  std::string name;
  std::string yaml;
  std::function<void(const EcuInfo&)> check;
};

TEST(ConfigEcuInfo, AcceptedValues) {
  const std::vector<GoodCase> cases = {
      {"format_version 1", "ecu_id: a\nformat_version: 1\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.format_version, 1); }},
      // Upstream does not check the value; a warning here.
      {"format_version 2", "ecu_id: a\nformat_version: 2\n",
       [](const EcuInfo& i) {
         EXPECT_EQ(i.format_version, 2);
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_THAT(i.warnings[0], HasSubstr(":2: field \"format_version\": format version 2"));
       }},
      {"format_version 0x1", "ecu_id: a\nformat_version: 0x1\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.format_version, 1); }},
      // A repeated key: PyYAML keeps the later value and the file loads; so does ours, warned.
      {"repeated key", "ecu_id: a\necu_id: b\n",
       [](const EcuInfo& i) {
         EXPECT_EQ(i.ecu_id, "b");
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_THAT(i.warnings[0], HasSubstr(":2: field \"ecu_id\": repeated key (first given "
                                              "at line 1); this later value is used"));
       }},
      {"repeated key in a secondary",
       "ecu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: 10.0.0.1, ip_addr: 10.0.0.2}\n",
       [](const EcuInfo& i) {
         ASSERT_THAT(i.secondaries, SizeIs(1));
         EXPECT_EQ(i.secondaries[0].ip_addr, "10.0.0.2");
       }},
      {"quoted numeric id", "ecu_id: \"123\"\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ecu_id, "123"); }},
      {"id that only looks odd", "ecu_id: 1e3\n",  // YAML 1.1 floats need a '.'
       [](const EcuInfo& i) { EXPECT_EQ(i.ecu_id, "1e3"); }},
      {"id with a colon", "ecu_id: ecu:1\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ecu_id, "ecu:1"); }},
      {"unicode id", "ecu_id: \"認識ECU-ü\"\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ecu_id, "認識ECU-ü"); }},
      {"single-quoted id", "ecu_id: 'main ecu'\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ecu_id, "main ecu"); }},
      {"explicit str tag", "ecu_id: !!str 5\n", [](const EcuInfo& i) { EXPECT_EQ(i.ecu_id, "5"); }},
      {"ipv4", "ecu_id: a\nip_addr: 192.168.10.11\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ip_addr, "192.168.10.11"); }},
      {"ipv6", "ecu_id: a\nip_addr: \"fd00::1\"\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ip_addr, "fd00::1"); }},
      {"ipv6 zone", "ecu_id: a\nip_addr: \"fe80::1%eth0\"\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ip_addr, "fe80::1%eth0"); }},
      {"host name", "ecu_id: a\nip_addr: main-ecu.local\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ip_addr, "main-ecu.local"); }},
      {"wildcard", "ecu_id: a\nip_addr: 0.0.0.0\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ip_addr, "0.0.0.0"); }},

      {"bootloader grub", "ecu_id: a\nbootloader: grub\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.bootloader, "grub"); }},
      {"bootloader cboot", "ecu_id: a\nbootloader: cboot\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.bootloader, "cboot"); }},
      {"bootloader dir", "ecu_id: a\nbootloader: 'dir'\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.bootloader, "dir"); }},
      {"bootloader jetson-cboot", "ecu_id: a\nbootloader: jetson-cboot\n",
       [](const EcuInfo& i) {
         EXPECT_EQ(i.bootloader, "jetson-cboot");
         EXPECT_THAT(i.warnings, IsEmpty());
       }},
      {"bootloader jetson-uefi", "ecu_id: a\nbootloader: \"jetson-uefi\"\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.bootloader, "jetson-uefi"); }},
      {"bootloader rpi_boot", "ecu_id: a\nbootloader: rpi_boot\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.bootloader, "rpi_boot"); }},
      {"bootloader auto_detect warns", "ecu_id: a\nbootloader: auto_detect\n",
       [](const EcuInfo& i) {
         EXPECT_EQ(i.bootloader, "auto_detect");
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_THAT(i.warnings[0], HasSubstr("auto_detect is deprecated"));
       }},
      {"bootloader cboot warns", "ecu_id: a\nbootloader: cboot\n",
       [](const EcuInfo& i) {
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_THAT(i.warnings[0], HasSubstr("deprecated name of jetson-cboot"));
       }},
      {"secondaries empty", "ecu_id: a\nsecondaries: []\n",
       [](const EcuInfo& i) { EXPECT_THAT(i.secondaries, IsEmpty()); }},
      {"secondary port", "ecu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: 10.0.0.2, port: 1}\n",
       [](const EcuInfo& i) {
         EXPECT_THAT(i.secondaries, ElementsAre(SecondaryEcu{"b", "10.0.0.2", 1}));
       }},
      {"secondary port max", "ecu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: h, port: 65535}\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 65535); }},
      {"secondary port !!int",
       "ecu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: h, port: !!int 7}\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 7); }},
      // Ports as upstream's NetworkPort reads them: int(x) first, so YAML 1.1 integers in any
      // base and strings that Python's int() reads.
      {"secondary port quoted",
       "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: '50051'}]\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 50051); }},
      {"secondary port !!str", "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: !!str 8}]\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 8); }},
      {"secondary port string with spaces and _",
       "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: ' +50_051 '}]\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 50051); }},
      {"secondary port hex", "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 0xC351}]\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 50001); }},
      {"secondary port octal", "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 050051}]\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 20521); }},
      {"secondary port plain 08 is a string, int() reads 8",
       "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 08}]\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 8); }},
      {"secondary port sign and _",
       "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: +50_051}]\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 50051); }},
      {"secondary port base 60",
       "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 13:53:31}]\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.secondaries.at(0).port, 50011); }},
      {"available duplicates are dropped with a warning",
       "ecu_id: a\navailable_ecu_ids:\n  - a\n  - b\n  - a\n",
       [](const EcuInfo& i) {
         EXPECT_THAT(i.available_ecu_ids, ElementsAre("a", "b"));
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_THAT(i.warnings[0],
                     HasSubstr(":5: field \"available_ecu_ids[2]\": duplicate ECU id \"a\" "
                               "(already listed at line 3), ignored"));
       }},
      {"available flow", "ecu_id: a\navailable_ecu_ids: [a, b, c]\n",
       [](const EcuInfo& i) { EXPECT_THAT(i.available_ecu_ids, ElementsAre("a", "b", "c")); }},
      {"available empty warns", "ecu_id: a\navailable_ecu_ids: []\n",
       [](const EcuInfo& i) {
         EXPECT_THAT(i.available_ecu_ids, ElementsAre("a"));
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_THAT(i.warnings[0], HasSubstr(":2: field \"available_ecu_ids\": empty list"));
       }},
      {"available without self warns", "ecu_id: a\navailable_ecu_ids: [b]\n",
       [](const EcuInfo& i) {
         EXPECT_THAT(i.available_ecu_ids, ElementsAre("b"));
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_THAT(i.warnings[0], HasSubstr("does not include this ECU's own ecu_id \"a\""));
       }},
      {"CRLF line endings",
       "ecu_id: a\r\nip_addr: 10.0.0.1\r\nsecondaries:\r\n  - ecu_id: b\r\n"
       "    ip_addr: 10.0.0.2\r\n",
       [](const EcuInfo& i) {
         EXPECT_EQ(i.ip_addr, "10.0.0.1");
         EXPECT_THAT(i.secondaries, ElementsAre(SecondaryEcu{"b", "10.0.0.2", 50051}));
       }},
      {"byte order mark",
       "\xEF\xBB\xBF"
       "ecu_id: a\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ecu_id, "a"); }},
      {"flow mapping document", "{ecu_id: a, ip_addr: 127.0.0.1}",
       [](const EcuInfo& i) { EXPECT_EQ(i.ip_addr, "127.0.0.1"); }},
      {"explicit document markers", "%YAML 1.2\n---\necu_id: a\n...\n",
       [](const EcuInfo& i) { EXPECT_EQ(i.ecu_id, "a"); }},
      {"anchor and alias of a scalar",
       "x-port: &port 50052\necu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: h, port: *port}\n",
       [](const EcuInfo& i) {
         EXPECT_EQ(i.secondaries.at(0).port, 50052);
         ASSERT_THAT(i.warnings, SizeIs(1));  // x-port is unknown
         EXPECT_THAT(i.warnings[0], HasSubstr(":1: field \"x-port\": unknown key"));
       }},
      {"alias of a list", "ecu_id: a\nx-ids: &ids [a, b]\navailable_ecu_ids: *ids\n",
       [](const EcuInfo& i) { EXPECT_THAT(i.available_ecu_ids, ElementsAre("a", "b")); }},
      {"unknown key in a secondary warns",
       "ecu_id: a\nsecondaries:\n  - ecu_id: b\n    ip_addr: h\n    color: red\n",
       [](const EcuInfo& i) {
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_EQ(i.warnings[0],
                   "/boot/ota/ecu_info.yaml:5: field \"secondaries[0].color\": "
                   "unknown key, ignored");
       }},
      {"same id deeper in the tree is allowed in available_ecu_ids",
       "ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h}]\navailable_ecu_ids: [a, b, c]\n",
       [](const EcuInfo& i) { EXPECT_THAT(i.available_ecu_ids, SizeIs(3)); }},
      {"two secondaries on one host, different ports",
       "ecu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: 127.0.0.1, port: 50052}\n"
       "  - {ecu_id: c, ip_addr: 127.0.0.1, port: 50053}\n",
       [](const EcuInfo& i) { EXPECT_THAT(i.secondaries, SizeIs(2)); }},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<EcuInfo> info;
    EXPECT_NO_THROW(info = ParseEcuInfo(c.yaml, kFile));
    ASSERT_TRUE(info.ok()) << info.status();
    c.check(*info);
  }
}

struct BadCase {
  std::string yaml;
  std::string where;  // "<file>:<line>: field \"...\": " or "<file>:<line>: "
  std::string reason;
};

std::string At(int line, std::string_view field) {
  return ota::StrCat(kFile, ":", line, ": field \"", field, "\": ");
}
std::string At(int line) { return ota::StrCat(kFile, ":", line, ": "); }

TEST(ConfigEcuInfo, RejectedValuesNameFileLineAndField) {
  const std::vector<BadCase> cases = {
      // The example of the spec, verbatim.
      {"ecu_id: main\nsecondaries:\n  - {ecu_id: a, ip_addr: 10.0.0.2}\n  - ecu_id: b\n"
       "    ip_addr: 10.0.0.3\n    port: abc\n",
       At(6, "secondaries[1].port"), "expected an integer 1-65535, got \"abc\""},
      // ecu_id
      {"ip_addr: 10.0.0.1\n", At(1, "ecu_id"), "required"},
      {"ip_addr: 10.0.0.1\necu_id:\n", At(2, "ecu_id"), "required, got null"},
      {"ecu_id: ''\n", At(1, "ecu_id"), "must not be empty"},
      {"ecu_id: [a]\n", At(1, "ecu_id"), "expected a string, got a list"},
      {"ecu_id: {a: b}\n", At(1, "ecu_id"), "expected a string, got a mapping"},
      {"ecu_id: \"a\\x01b\"\n", At(1, "ecu_id"), "control character"},
      {"ecu_id: \"a\\nb\"\n", At(1, "ecu_id"), "control character"},
      {"ecu_id: \" a\"\n", At(1, "ecu_id"), "leading or trailing spaces"},
      {"ecu_id: \"\xff\xfe\"\n", At(1, "ecu_id"), "not valid UTF-8"},
      {"ecu_id: \xc0\xaf\n", At(1, "ecu_id"), "not valid UTF-8"},      // overlong '/'
      {"ecu_id: \xed\xa0\x80\n", At(1, "ecu_id"), "not valid UTF-8"},  // surrogate
      {"ecu_id: " + std::string(256, 'x') + "\n", At(1, "ecu_id"), "longer than 255 bytes"},
      {"ecu_id: !foo a\n", At(1, "ecu_id"), "expected a string, got \"a\" tagged \"!foo\""},
      // Plain scalars YAML 1.1 does not read as strings (upstream's strict str refuses them).
      {"ecu_id: 123\n", At(1, "ecu_id"),
       "expected a string, got \"123\" (YAML 1.1 reads it as an integer); quote it"},
      {"ecu_id: yes\n", At(1, "ecu_id"), "(YAML 1.1 reads it as a boolean)"},
      {"ecu_id: Off\n", At(1, "ecu_id"), "(YAML 1.1 reads it as a boolean)"},
      {"ecu_id: 1.5\n", At(1, "ecu_id"), "(YAML 1.1 reads it as a float)"},
      {"ecu_id: .inf\n", At(1, "ecu_id"), "(YAML 1.1 reads it as a float)"},
      {"ecu_id: 1_000\n", At(1, "ecu_id"), "(YAML 1.1 reads it as an integer)"},
      {"ecu_id: 2024-01-01\n", At(1, "ecu_id"), "(YAML 1.1 reads it as a date)"},
      {"ecu_id: 2024-1-2 3:04:05 +09\n", At(1, "ecu_id"), "(YAML 1.1 reads it as a date)"},
      {"ecu_id: =\n", At(1, "ecu_id"), "(YAML 1.1 reads it as a special value)"},
      {"ecu_id: ~\n", At(1, "ecu_id"), "required, got null"},
      // format_version: any integer, nothing else (strict int).
      {"ecu_id: a\nformat_version: \"1\"\n", At(2, "format_version"),
       "got the quoted string \"1\""},
      {"ecu_id: a\nformat_version: 1.0\n", At(2, "format_version"),
       "got \"1.0\" (YAML 1.1 reads it as a float)"},
      {"ecu_id: a\nformat_version: true\n", At(2, "format_version"), "got \"true\""},
      {"ecu_id: a\nformat_version:\n", At(2, "format_version"), "got null"},
      {"ecu_id: a\nformat_version: 99999999999999999999\n", At(2, "format_version"),
       "expected an integer"},
      // ip_addr
      {"ecu_id: a\nip_addr: http://10.0.0.1\n", At(2, "ip_addr"), "a URL"},
      {"ecu_id: a\nip_addr: '10.0.0.1 '\n", At(2, "ip_addr"), "contains whitespace"},
      {"ecu_id: a\nip_addr: 'my host'\n", At(2, "ip_addr"), "contains whitespace"},
      {"ecu_id: a\nip_addr: 10.0.0.1:50051\n", At(2, "ip_addr"), "the port is a separate key"},
      {"ecu_id: a\nip_addr: 300.1.1.1\n", At(2, "ip_addr"), "not a valid IPv4 address"},
      {"ecu_id: a\nip_addr: 10.0.1\n", At(2, "ip_addr"), "not a valid IPv4 address"},
      {"ecu_id: a\nip_addr: '[::1]'\n", At(2, "ip_addr"), "without brackets"},
      {"ecu_id: a\nip_addr: host/path\n", At(2, "ip_addr"), "invalid character '/'"},
      {"ecu_id: a\nip_addr: -host\n", At(2, "ip_addr"), "must not start or end with '-'"},
      {"ecu_id: a\nip_addr: a..b\n", At(2, "ip_addr"), "empty label"},
      {"ecu_id: a\nip_addr: ''\n", At(2, "ip_addr"), "must not be empty"},
      {"ecu_id: a\nip_addr: [10.0.0.1]\n", At(2, "ip_addr"), "got a list"},
      {"ecu_id: a\nip_addr: ~\n", At(2, "ip_addr"), "expected an IP address, got null"},
      // bootloader
      {"ecu_id: a\nbootloader: uboot\n", At(2, "bootloader"),
       "expected one of grub, jetson-cboot, jetson-uefi, rpi_boot, auto_detect, cboot "
       "(deprecated) or dir, got \"uboot\""},
      {"ecu_id: a\nbootloader: jetson_cboot\n", At(2, "bootloader"), "got \"jetson_cboot\""},
      {"ecu_id: a\nbootloader:\n", At(2, "bootloader"), "got null"},
      {"ecu_id: a\nbootloader: GRUB\n", At(2, "bootloader"), "got \"GRUB\""},
      {"ecu_id: a\nbootloader: ''\n", At(2, "bootloader"), "must not be empty"},
      // secondaries
      {"ecu_id: a\nsecondaries:\n", At(2, "secondaries"),
       "expected a list (write [] for none), got null"},
      {"ecu_id: a\nsecondaries: b\n", At(2, "secondaries"),
       "expected a list of {ecu_id, ip_addr, port}, got \"b\""},
      {"ecu_id: a\nsecondaries: {ecu_id: b, ip_addr: h}\n", At(2, "secondaries"), "got a mapping"},
      {"ecu_id: a\nsecondaries:\n  - b\n", At(3, "secondaries[0]"), "got \"b\""},
      {"ecu_id: a\nsecondaries:\n  -\n  - {ecu_id: c, ip_addr: h}\n", "secondaries[0]", "got null"},
      {"ecu_id: a\nsecondaries:\n  - ip_addr: h\n", At(3, "secondaries[0].ecu_id"), "required"},
      {"ecu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: h}\n  - ecu_id: c\n",
       At(4, "secondaries[1].ip_addr"), "required"},
      {"ecu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: }\n", At(3, "secondaries[0].ip_addr"),
       "required, got null"},
      {"ecu_id: a\nsecondaries:\n  - {ecu_id: , ip_addr: h}\n", At(3, "secondaries[0].ecu_id"),
       "required, got null"},
      {"ecu_id: a\nsecondaries:\n  - {ecu_id: b, ip_addr: 'h h'}\n",
       At(3, "secondaries[0].ip_addr"), "contains whitespace"},
      // ports: negative, zero, too big, huge, bool, float, null, list, junk strings
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: -1}]\n",
       At(2, "secondaries[0].port"), "expected an integer 1-65535, got \"-1\""},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 0}]\n", At(2, "secondaries[0].port"),
       "got \"0\""},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 65536}]\n",
       At(2, "secondaries[0].port"), "got \"65536\""},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 18446744073709551616}]\n",
       At(2, "secondaries[0].port"), "got \"18446744073709551616\""},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: "
       "-99999999999999999999999999999999}]\n",
       At(2, "secondaries[0].port"), "expected an integer 1-65535"},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 0x1_0000}]\n",
       At(2, "secondaries[0].port"), "got \"0x1_0000\""},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: '50 051'}]\n",
       At(2, "secondaries[0].port"), "got the quoted string \"50 051\""},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: '5__0'}]\n",
       At(2, "secondaries[0].port"), "got the quoted string"},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: '0x10'}]\n",
       At(2, "secondaries[0].port"), "got the quoted string"},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: ''}]\n",
       At(2, "secondaries[0].port"), "got the quoted string \"\""},
      // Upstream's int(True) would make this port 1 and int(8082.9) port 8082: refused here.
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: true}]\n",
       At(2, "secondaries[0].port"), "got \"true\" (YAML 1.1 reads it as a boolean)"},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 8082.0}]\n",
       At(2, "secondaries[0].port"), "(YAML 1.1 reads it as a float)"},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: 5e4}]\n",
       At(2, "secondaries[0].port"), "got \"5e4\""},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: }]\n", At(2, "secondaries[0].port"),
       "got null"},
      {"ecu_id: a\nsecondaries: [{ecu_id: b, ip_addr: h, port: [1]}]\n",
       At(2, "secondaries[0].port"), "got a list"},
      // duplicate ECU ids
      {"ecu_id: a\nsecondaries:\n  - {ecu_id: a, ip_addr: h}\n", At(3, "secondaries[0].ecu_id"),
       "duplicate ECU id \"a\" (already used at line 1)"},
      {"ecu_id: a\nsecondaries:\n  - ecu_id: b\n    ip_addr: h\n  - ip_addr: h2\n    ecu_id: b\n",
       At(6, "secondaries[1].ecu_id"), "duplicate ECU id \"b\" (already used at line 3)"},
      {"ecu_id: a\nx: &s {ecu_id: b, ip_addr: h}\nsecondaries: [*s, *s]\n",
       At(2, "secondaries[1].ecu_id"), "duplicate ECU id \"b\""},
      // available_ecu_ids
      {"ecu_id: a\navailable_ecu_ids: a\n", At(2, "available_ecu_ids"),
       "expected a list of ECU ids, got \"a\""},
      {"ecu_id: a\navailable_ecu_ids: [a, [b]]\n", At(2, "available_ecu_ids[1]"), "got a list"},
      {"ecu_id: a\navailable_ecu_ids: [a, '']\n", At(2, "available_ecu_ids[1]"),
       "must not be empty"},
      {"ecu_id: a\navailable_ecu_ids: [a, ~]\n", At(2, "available_ecu_ids[1]"), "got null"},
      {"ecu_id: a\navailable_ecu_ids: [a, 2]\n", At(2, "available_ecu_ids[1]"),
       "(YAML 1.1 reads it as an integer)"},
      {"ecu_id: a\navailable_ecu_ids:\n", At(2, "available_ecu_ids"), "got null"},
      // YAML structure
      {"ecu_id: a\nbase: &b {ip_addr: h}\nsecondaries:\n  - <<: *b\n    ecu_id: c\n",
       At(4, "secondaries[0].<<"), "merge keys (<<) are not supported"},
      {"ecu_id: a\n? [x]\n: y\n", At(2), "keys must be plain strings"},
      {"- ecu_id: a\n", At(1), "expected a mapping of keys to values at the top level, got a list"},
      {"just a string\n", At(1), "got \"just a string\""},
      {"'quoted'\n", At(1), "got the quoted string \"quoted\""},
      // The upstream "corrupted" sample: one plain scalar.
      {"/t/t/t/t/t/t/t/tyaml file should not contain tabs/t/t/t/", At(1), "top level"},
      {"ecu_id: a\n---\necu_id: b\n", At(2), "more than one YAML document"},
      {"---\necu_id: a\n---\n", At(3), "more than one YAML document"},
      // yaml-cpp's LoadAll loops forever (allocating) on these; found by the fuzzer.
      {",", At(1), "invalid YAML: unexpected \",\" (column 1)"},
      {"!x ,", At(1), "invalid YAML: unexpected \",\" (column 4)"},
      {"&x,", At(1), "invalid YAML: unexpected \",\" (column 3)"},
      {"&x?b, i\"p_ ipa\x99'cd\xa5n21\n", At(1), "invalid YAML: unexpected \",\""},
      {"# comment\n\n  ,\n", At(3), "invalid YAML: unexpected \",\" (column 3)"},
      // Syntax errors carry yaml-cpp's position.
      {"ecu_id: a\n\tip_addr: h\n", At(2), "invalid YAML: illegal tab"},
      {"ecu_id: a\nsecondaries:\n\t- {ecu_id: b, ip_addr: h}\n", At(3), "invalid YAML"},
      {"ecu_id: a\nip_addr: [10.0.0.1\n", At(3), "invalid YAML"},  // found at the end
      {"ecu_id: a\nip_addr: *nowhere\n", At(2), "invalid YAML"},
      // yaml-cpp closes an unterminated quote at the end of input; the folded newline then
      // shows up as a trailing space, which the ECU id check refuses.
      {"ecu_id: \"unterminated\n", At(1, "ecu_id"), "leading or trailing spaces"},
      {"ecu_id: a\nip_addr: \"x\" y\n", At(2), "invalid YAML: end of map not found"},
      {"ecu_id: a: b\n", At(1), "invalid YAML"},
      {"ecu_id: a\n  ip_addr: h\n", At(2), "invalid YAML"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.yaml);
    absl::StatusOr<EcuInfo> info;
    EXPECT_NO_THROW(info = ParseEcuInfo(c.yaml, kFile));
    if (c.where.rfind("/", 0) == 0) {
      EXPECT_TRUE(IsConfigError(info, c.where, c.reason));
    } else {
      // Cases whose line yaml-cpp reports loosely (null sequence elements): field only.
      ASSERT_FALSE(info.ok());
      EXPECT_THAT(std::string(info.status().message()), HasSubstr(c.where));
      EXPECT_THAT(std::string(info.status().message()), HasSubstr(c.reason));
    }
  }
}

TEST(ConfigEcuInfo, BootSlotOverride) {
  EcuInfo info = ParseOk(
      "ecu_id: a\nboot_slot_a: PARTUUID=8A1F3C52-0b6e-4c1a-9d43-2f0a7e6b1c0a\n"
      "boot_slot_b: LABEL=rootfs_b\n");
  EXPECT_EQ(info.boot_slot_a, "PARTUUID=8A1F3C52-0b6e-4c1a-9d43-2f0a7e6b1c0a");
  EXPECT_EQ(info.boot_slot_b, "LABEL=rootfs_b");
  EXPECT_THAT(info.warnings, IsEmpty());
  info = ParseOk("ecu_id: a\nboot_slot_a: /dev/nvme0n1p2\nboot_slot_b: PARTLABEL=b\n");
  EXPECT_EQ(info.boot_slot_a, "/dev/nvme0n1p2");
  EXPECT_EQ(info.boot_slot_b, "PARTLABEL=b");
  info = ParseOk("ecu_id: a\nboot_slot_a:\nboot_slot_b:\n");  // null: detect
  EXPECT_EQ(info.boot_slot_a, "");
  EXPECT_EQ(ParseOk("ecu_id: a\n").boot_slot_b, "");

  const std::vector<BadCase> cases = {
      {"ecu_id: a\nboot_slot_a: UUID=x\n", At(2, "boot_slot_a"), "set both"},
      {"ecu_id: a\nboot_slot_b: UUID=x\n", At(2, "boot_slot_b"), "set both"},
      {"ecu_id: a\nboot_slot_a: sda2\nboot_slot_b: sda3\n", At(2, "boot_slot_a"), "got \"sda2\""},
      {"ecu_id: a\nboot_slot_a: UUID=\nboot_slot_b: UUID=x\n", At(2, "boot_slot_a"),
       "expected PARTUUID="},
      {"ecu_id: a\nboot_slot_a: /dev/../etc/x\nboot_slot_b: UUID=x\n", At(2, "boot_slot_a"),
       "expected PARTUUID="},
      {"ecu_id: a\nboot_slot_a: UUID=x\nboot_slot_b: 'LABEL=a b'\n", At(3, "boot_slot_b"),
       "expected PARTUUID="},
      {"ecu_id: a\nboot_slot_a: [x]\nboot_slot_b: UUID=x\n", At(2, "boot_slot_a"),
       "expected a string, got a list"},
  };
  for (const BadCase& c : cases) {
    absl::StatusOr<EcuInfo> bad = ParseEcuInfo(c.yaml, kFile);
    EXPECT_TRUE(IsConfigError(bad, c.where, c.reason)) << c.yaml << " -> " << bad.status();
  }
}

TEST(ConfigEcuInfo, FileNameAppearsAsGiven) {
  absl::StatusOr<EcuInfo> info = ParseEcuInfo("ecu_id: [x]\n", "some/dir/ecu_info.yaml");
  EXPECT_TRUE(IsConfigError(info, "some/dir/ecu_info.yaml:1: field \"ecu_id\": ", "got a list"));
  info = ParseEcuInfo("ecu_id: [x]\n", "");
  EXPECT_TRUE(IsConfigError(info, "<input>:1: field \"ecu_id\": ", "got a list"));
}

TEST(ConfigEcuInfo, HostileInputsAreErrorsNotCrashes) {
  const std::vector<std::string> inputs = {
      std::string(100000, '['),  // nesting beyond yaml-cpp's depth guard
      std::string(100000, '{'),
      "ecu_id: a\nx: " + std::string(50000, '[') + "\n",
      std::string("ecu_id: a\0b\n", 12),  // embedded NUL
      "ecu_id: a\nsecondaries: [" + std::string(3000, '-') + "]\n",
      "&a [*a]",  // self-referencing alias
      "? ? ? ? ? ? ?\n",
      "!!binary AAAA",
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input.substr(0, 40));
    absl::StatusOr<EcuInfo> info;
    EXPECT_NO_THROW(info = ParseEcuInfo(input, kFile));
    EXPECT_FALSE(info.ok());
    if (!info.ok()) {
      EXPECT_EQ(info.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(ConfigEcuInfo, DeepNestingIsNamed) {
  absl::StatusOr<EcuInfo> info = ParseEcuInfo(std::string(5000, '['), kFile);
  EXPECT_TRUE(IsConfigError(info, At(1), "invalid YAML: nested more than"));
}

TEST(ConfigEcuInfo, Utf32ByteOrderMarkAloneIsAnEmptyDocument) {
  EXPECT_TRUE(IsConfigError(ParseEcuInfo(std::string("\xff\xfe\x00\x00", 4), kFile),
                            ota::StrCat(kFile, ": "), "no settings"));
}

TEST(ConfigEcuInfo, RejectsTextLargerThanAConfigFile) {
  std::string text = "ecu_id: a\n# " + std::string(1 << 20, 'x') + "\n";
  absl::StatusOr<EcuInfo> info = ParseEcuInfo(text, kFile);
  EXPECT_TRUE(IsConfigError(info, ota::StrCat(kFile, ": "), "larger than"));
}

TEST(ConfigEcuInfo, ManySecondariesParseInOrder) {
  std::string yaml = "ecu_id: main\nsecondaries:\n";
  for (int i = 0; i < 200; ++i) {
    ota::StrAppend(&yaml, "  - {ecu_id: sub", i, ", ip_addr: 10.0.", i / 250, ".", i % 250 + 1,
                   ", port: ", 50000 + i, "}\n");
  }
  EcuInfo info = ParseOk(yaml);
  ASSERT_THAT(info.secondaries, SizeIs(200));
  EXPECT_EQ(info.secondaries[199], (SecondaryEcu{"sub199", "10.0.0.200", 50199}));
}

}  // namespace
}  // namespace ota::config
