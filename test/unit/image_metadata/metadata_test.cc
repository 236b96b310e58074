#include "common/image/legacy/metadata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/fs/fs.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::image {
namespace {

using ::testing::HasSubstr;

// sha256 of "dirs", "symlinks", "regulars", "persistents", "cert".
constexpr char kDirsHash[] = "73cf2b409622a7c3d18760519c6459068826b1aed9ee565c60b8300d3e6096a7";
constexpr char kSymlinksHash[] = "62a407f770627e69c4f1168f0ef86c9c2575c6d8097f6a1c6cf5b92af50ed8ce";
constexpr char kRegularsHash[] = "94f1c801378962d3ce5aafb866e23c9339e792298258abe5494d7c16decba67f";
constexpr char kPersistentsHash[] =
    "9d9341bd506595c6be5425732ed586e767fc358112b446dfb9d69022d354f33b";
constexpr char kCertHash[] = "06298432e8066b29e2223bcc23aa9504b56ae508fabf3435508869b9c3190e22";

// The upstream generator's payload (reference §2.1), as Python json.dumps writes it.
constexpr char kUpstreamPayload[] =
    R"([{"version": 1}, {"directory": "dirs.txt", "hash": "73cf2b409622a7c3d18760519c6459068826b1aed9ee565c60b8300d3e6096a7"}, )"
    R"({"symboliclink": "symlinks.txt", "hash": "62a407f770627e69c4f1168f0ef86c9c2575c6d8097f6a1c6cf5b92af50ed8ce"}, )"
    R"({"regular": "regulars.txt", "hash": "94f1c801378962d3ce5aafb866e23c9339e792298258abe5494d7c16decba67f"}, )"
    R"({"persistent": "persistents.txt", "hash": "9d9341bd506595c6be5425732ed586e767fc358112b446dfb9d69022d354f33b"}, )"
    R"({"rootfs_directory": "data"}, )"
    R"({"certificate": "sign.pem", "hash": "06298432e8066b29e2223bcc23aa9504b56ae508fabf3435508869b9c3190e22"}, )"
    R"({"total_regular_size": "108708870"}])";

// base64url of {"alg": "ES256"}, padded, as upstream writes it.
constexpr char kUpstreamHeaderB64[] = "eyJhbGciOiAiRVMyNTYifQ==";

crypto::Sha256Digest Digest(const char* hex) {
  crypto::Sha256Digest d{};
  EXPECT_TRUE(crypto::FromHex(hex, &d)) << hex;
  return d;
}

MetadataPayload UpstreamPayload() {
  MetadataPayload p;
  p.directory = {"dirs.txt", Digest(kDirsHash)};
  p.symboliclink = {"symlinks.txt", Digest(kSymlinksHash)};
  p.regular = {"regulars.txt", Digest(kRegularsHash)};
  p.persistent = {"persistents.txt", Digest(kPersistentsHash)};
  p.certificate = {"sign.pem", Digest(kCertHash)};
  p.rootfs_directory = "data";
  p.total_regular_size = 108708870;
  return p;
}

std::string MakeJwt(std::string_view payload_json, bool pad = true,
                    std::string_view signature = "0123456789abcdef-not-checked-by-parse") {
  return Base64UrlEncode(R"({"alg": "ES256"})", pad) + "." + Base64UrlEncode(payload_json, pad) +
         "." + Base64UrlEncode(signature, pad);
}

// "[e1, e2, ...]" from entries, Python separators.
std::string JsonArray(const std::vector<std::string>& entries) {
  std::string out = "[";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ", ";
    out += entries[i];
  }
  return out + "]";
}

std::string Ref(std::string_view key, std::string_view file, std::string_view hash) {
  return "{\"" + std::string(key) + "\": \"" + std::string(file) + "\", \"hash\": \"" +
         std::string(hash) + "\"}";
}

const std::string kVersion = R"({"version": 1})";
const std::string kDir = Ref("directory", "dirs.txt", kDirsHash);
const std::string kSym = Ref("symboliclink", "symlinks.txt", kSymlinksHash);
const std::string kReg = Ref("regular", "regulars.txt", kRegularsHash);
const std::string kPers = Ref("persistent", "persistents.txt", kPersistentsHash);
const std::string kRootfs = R"({"rootfs_directory": "data"})";
const std::string kCert = Ref("certificate", "sign.pem", kCertHash);

std::vector<std::string> MinimalEntries() {
  return {kVersion, kDir, kSym, kReg, kPers, kRootfs, kCert};
}

// --- base64url ----------------------------------------------------------------------------------

TEST(Base64UrlTest, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64UrlEncode(plain), encoded);
    std::string unpadded = encoded.substr(0, encoded.find('='));
    EXPECT_EQ(Base64UrlEncode(plain, /*pad=*/false), unpadded);
    auto padded_back = Base64UrlDecode(encoded);
    ASSERT_TRUE(padded_back.ok()) << encoded << ": " << padded_back.status();
    EXPECT_EQ(*padded_back, plain);
    auto unpadded_back = Base64UrlDecode(unpadded);
    ASSERT_TRUE(unpadded_back.ok()) << unpadded << ": " << unpadded_back.status();
    EXPECT_EQ(*unpadded_back, plain);
  }
}

TEST(Base64UrlTest, UsesUrlSafeAlphabet) {
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8=");
  EXPECT_EQ(Base64UrlEncode("\xfb\xef\xbe"), "----");
  EXPECT_EQ(Base64UrlEncode("\xff\xff\xff"), "____");
  EXPECT_EQ(*Base64UrlDecode("-_8="), "\xfb\xff");
  EXPECT_EQ(Base64UrlEncode(R"({"alg": "ES256"})"), kUpstreamHeaderB64);
}

TEST(Base64UrlTest, RoundTripsEveryByteAtEveryLength) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>((i * 37 + 11) & 0xff));
  for (size_t len = 0; len <= data.size(); ++len) {
    const std::string_view slice(data.data(), len);
    for (bool pad : {true, false}) {
      std::string encoded = Base64UrlEncode(slice, pad);
      if (pad) {
        EXPECT_EQ(encoded.size() % 4, 0u);
      }
      auto decoded = Base64UrlDecode(encoded);
      ASSERT_TRUE(decoded.ok()) << encoded << ": " << decoded.status();
      EXPECT_EQ(*decoded, slice);
    }
  }
}

TEST(Base64UrlTest, RejectsMalformedInput) {
  const char* bad[] = {
      "A",         // a lone 6-bit group
      "AAAAA",     // same, after a full quantum
      "Zg=",       // short padding
      "Zg===",     // too much padding
      "Z===",      // padding cannot make up three characters
      "Zm9v=",     // padding after a full quantum
      "====",      // only padding
      "Zm=9v",     // '=' inside
      "Zm9v+A==",  // standard alphabet '+' is not base64url
      "Zm9v/A==",  // standard alphabet '/'
      "Zm9 v",     // whitespace
      "Zm9v\n",    // newline
      "Zm9\xc3\xa9",
  };
  for (const char* text : bad) {
    auto decoded = Base64UrlDecode(text);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_EQ(Base64UrlDecode(std::string_view("Zm\0v", 4)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- SerializePayloadJson -----------------------------------------------------------------------

TEST(SerializePayloadJsonTest, ByteExactWithUpstreamGenerator) {
  EXPECT_EQ(SerializePayloadJson(UpstreamPayload()), kUpstreamPayload);
}

TEST(SerializePayloadJsonTest, WithoutTotalRegularSize) {
  MetadataPayload p = UpstreamPayload();
  p.total_regular_size.reset();
  std::string expected = kUpstreamPayload;
  const std::string_view tail = R"(, {"total_regular_size": "108708870"})";
  expected.erase(expected.find(tail), tail.size());
  EXPECT_EQ(SerializePayloadJson(p), expected);
  EXPECT_EQ(expected.find("total_regular_size"), std::string::npos);
}

TEST(SerializePayloadJsonTest, CompressedRootfsDirectoryAndPythonEscaping) {
  MetadataPayload p = UpstreamPayload();
  p.directory.file = "d\xc3\xafrs\"\\\t\x01\x7f.txt";  // ï, quote, backslash, tab, ^A, DEL
  p.symboliclink.file = "symlinks\xe2\x82\xac.txt";    // €
  p.regular.file = "reg\xf0\x9f\x98\x80.txt";          // U+1F600, a surrogate pair in JSON
  p.compressed_rootfs_directory = "data.zst";
  p.total_regular_size.reset();
  // Python: json.dumps([...]) with ensure_ascii=True.
  constexpr char kExpected[] =
      R"([{"version": 1}, {"directory": "d\u00efrs\"\\\t\u0001\u007f.txt", "hash": "73cf2b409622a7c3d18760519c6459068826b1aed9ee565c60b8300d3e6096a7"}, )"
      R"({"symboliclink": "symlinks\u20ac.txt", "hash": "62a407f770627e69c4f1168f0ef86c9c2575c6d8097f6a1c6cf5b92af50ed8ce"}, )"
      R"({"regular": "reg\ud83d\ude00.txt", "hash": "94f1c801378962d3ce5aafb866e23c9339e792298258abe5494d7c16decba67f"}, )"
      R"({"persistent": "persistents.txt", "hash": "9d9341bd506595c6be5425732ed586e767fc358112b446dfb9d69022d354f33b"}, )"
      R"({"rootfs_directory": "data"}, {"compressed_rootfs_directory": "data.zst"}, )"
      R"({"certificate": "sign.pem", "hash": "06298432e8066b29e2223bcc23aa9504b56ae508fabf3435508869b9c3190e22"}])";
  EXPECT_EQ(SerializePayloadJson(p), kExpected);
}

TEST(SerializePayloadJsonTest, InvalidUtf8BecomesSurrogateEscapes) {
  MetadataPayload p = UpstreamPayload();
  p.rootfs_directory =
      "a\xff"
      "b\xc3";  // Python os.fsdecode → "a\udcffb\udcc3"
  EXPECT_THAT(SerializePayloadJson(p), HasSubstr(R"({"rootfs_directory": "a\udcffb\udcc3"})"));
  p.rootfs_directory = "\xed\xa0\x80";  // an encoded surrogate is not valid UTF-8
  EXPECT_THAT(SerializePayloadJson(p), HasSubstr(R"({"rootfs_directory": "\udced\udca0\udc80"})"));
  p.rootfs_directory = "\xc0\xaf";  // overlong '/'
  EXPECT_THAT(SerializePayloadJson(p), HasSubstr(R"({"rootfs_directory": "\udcc0\udcaf"})"));
}

// --- ParseMetadataJwt: good inputs --------------------------------------------------------------

TEST(ParseMetadataJwtTest, UpstreamPayloadPadded) {
  const std::string jwt = MakeJwt(kUpstreamPayload, /*pad=*/true, "sig-bytes");
  auto md = ParseMetadataJwt(jwt);
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->version, 1);
  EXPECT_EQ(md->directory.file, "dirs.txt");
  EXPECT_EQ(crypto::ToHex(md->directory.sha256), kDirsHash);
  EXPECT_EQ(md->symboliclink.file, "symlinks.txt");
  EXPECT_EQ(crypto::ToHex(md->symboliclink.sha256), kSymlinksHash);
  EXPECT_EQ(md->regular.file, "regulars.txt");
  EXPECT_EQ(crypto::ToHex(md->regular.sha256), kRegularsHash);
  EXPECT_EQ(md->persistent.file, "persistents.txt");
  EXPECT_EQ(crypto::ToHex(md->persistent.sha256), kPersistentsHash);
  EXPECT_EQ(md->certificate.file, "sign.pem");
  EXPECT_EQ(crypto::ToHex(md->certificate.sha256), kCertHash);
  EXPECT_EQ(md->rootfs_directory, "data");
  EXPECT_FALSE(md->compressed_rootfs_directory.has_value());
  ASSERT_TRUE(md->total_regular_size.has_value());
  EXPECT_EQ(*md->total_regular_size, 108708870u);
  EXPECT_EQ(md->signature, "sig-bytes");
  EXPECT_EQ(md->signed_part, jwt.substr(0, jwt.rfind('.')));
  EXPECT_TRUE(md->signed_part.starts_with(std::string(kUpstreamHeaderB64) + "."));
}

TEST(ParseMetadataJwtTest, UnpaddedSegmentsAndSignedPartKeptVerbatim) {
  const std::string jwt = MakeJwt(kUpstreamPayload, /*pad=*/false, "sig");
  ASSERT_EQ(jwt.find('='), std::string::npos);
  auto md = ParseMetadataJwt(jwt);
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->signed_part, jwt.substr(0, jwt.rfind('.')));
  EXPECT_EQ(md->signature, "sig");
  EXPECT_EQ(*md->total_regular_size, 108708870u);
}

TEST(ParseMetadataJwtTest, MixedPaddingAcrossSegments) {
  const std::string jwt = Base64UrlEncode(R"({"alg": "ES256"})", true) + "." +
                          Base64UrlEncode(kUpstreamPayload, false) + "." +
                          Base64UrlEncode("s", true);
  auto md = ParseMetadataJwt(jwt);
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->signature, "s");
}

TEST(ParseMetadataJwtTest, WithoutTotalRegularSizeWithCompressedDirectory) {
  std::vector<std::string> entries = MinimalEntries();
  entries.insert(entries.begin() + 6, R"({"compressed_rootfs_directory": "data.zst"})");
  auto md = ParseMetadataJwt(MakeJwt(JsonArray(entries)));
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_FALSE(md->total_regular_size.has_value());
  ASSERT_TRUE(md->compressed_rootfs_directory.has_value());
  EXPECT_EQ(*md->compressed_rootfs_directory, "data.zst");
}

TEST(ParseMetadataJwtTest, ToleratedVariations) {
  struct Case {
    const char* name;
    std::vector<std::string> entries;
  };
  auto with = [](std::vector<std::string> extra) {
    std::vector<std::string> e = MinimalEntries();
    e.insert(e.end(), extra.begin(), extra.end());
    return e;
  };
  const Case cases[] = {
      {"any entry order", {kCert, kRootfs, kPers, kReg, kSym, kDir, kVersion}},
      {"unknown keys ignored", with({R"({"future_key": [1, {"x": 2}]})", R"({"hash": "zz"})"})},
      {"uppercase hash hex",
       {kVersion,
        Ref("directory", "dirs.txt",
            "73CF2B409622A7C3D18760519C6459068826B1AED9EE565C60B8300D3E6096A7"),
        kSym, kReg, kPers, kRootfs, kCert}},
      {"total size with surrounding whitespace", with({R"({"total_regular_size": " 42\n"})"})},
      {"total size as JSON number", with({R"({"total_regular_size": 42})"})},
      {"no whitespace at all",
       {R"({"version":1})",
        R"({"directory":"dirs.txt","hash":")" + std::string(kDirsHash) + R"("})", kSym, kReg, kPers,
        kRootfs, kCert}},
      {"rootfs directory with subdir",
       {kVersion, kDir, kSym, kReg, kPers, R"({"rootfs_directory": "images/v1/data"})", kCert}},
  };
  for (const Case& c : cases) {
    auto md = ParseMetadataJwt(MakeJwt(JsonArray(c.entries)));
    EXPECT_TRUE(md.ok()) << c.name << ": " << md.status();
  }
}

TEST(ParseMetadataJwtTest, TotalRegularSizeValues) {
  auto parse_size = [](std::string_view value) -> std::optional<uint64_t> {
    std::vector<std::string> e = MinimalEntries();
    e.push_back(R"({"total_regular_size": )" + std::string(value) + "}");
    auto md = ParseMetadataJwt(MakeJwt(JsonArray(e)));
    if (!md.ok()) return std::nullopt;
    return md->total_regular_size;
  };
  EXPECT_EQ(parse_size(R"("0")"), 0u);
  EXPECT_EQ(parse_size(R"(" 42\n")"), 42u);
  EXPECT_EQ(parse_size(R"("18446744073709551615")"), 18446744073709551615u);
  EXPECT_EQ(parse_size("7"), 7u);
}

TEST(ParseMetadataJwtTest, FirstTruthyVersionWins) {
  std::vector<std::string> e = MinimalEntries();
  e[0] = R"({"version": 0})";
  e.push_back(R"({"version": 2})");
  e.push_back(R"({"version": 1})");
  auto md = ParseMetadataJwt(MakeJwt(JsonArray(e)));
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->version, 2);  // accepted; the loader only warns, as upstream
}

TEST(ParseMetadataJwtTest, TrailingNewlineIsTolerated) {
  const std::string jwt = MakeJwt(kUpstreamPayload, true, "sig");
  auto md = ParseMetadataJwt(jwt + "\n");
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->signature, "sig");
  EXPECT_EQ(md->signed_part, jwt.substr(0, jwt.rfind('.')));
  EXPECT_TRUE(ParseMetadataJwt(jwt + "\r\n").ok());
}

// --- ParseMetadataJwt: bad inputs ---------------------------------------------------------------

struct BadCase {
  std::string name;
  std::string jwt;
  std::string message_part;
};

std::vector<BadCase> BadPayloadCases() {
  auto without = [](size_t index) {
    std::vector<std::string> e = MinimalEntries();
    e.erase(e.begin() + static_cast<std::ptrdiff_t>(index));
    return MakeJwt(JsonArray(e));
  };
  auto replace = [](size_t index, std::string entry) {
    std::vector<std::string> e = MinimalEntries();
    e[index] = std::move(entry);
    return MakeJwt(JsonArray(e));
  };
  auto add = [](std::string entry) {
    std::vector<std::string> e = MinimalEntries();
    e.push_back(std::move(entry));
    return MakeJwt(JsonArray(e));
  };
  const std::string good_sig_b64 = Base64UrlEncode("sig");
  const std::string header_b64 = kUpstreamHeaderB64;
  const std::string payload_b64 = Base64UrlEncode(JsonArray(MinimalEntries()));
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');

  return {
      {"missing version", without(0), "missing 'version'"},
      {"missing directory", without(1), "missing 'directory'"},
      {"missing symboliclink", without(2), "missing 'symboliclink'"},
      {"missing regular", without(3), "missing 'regular'"},
      {"missing persistent", without(4), "missing 'persistent'"},
      {"missing rootfs_directory", without(5), "missing 'rootfs_directory'"},
      {"missing certificate", without(6), "missing 'certificate'"},
      {"only falsy version", replace(0, R"({"version": 0})"), "missing 'version'"},
      {"version a string", replace(0, R"({"version": "1"})"), "'version'"},
      {"version a float", replace(0, R"({"version": 1.5})"), "'version'"},
      {"version huge", replace(0, R"({"version": 99999999999})"), "'version'"},
      {"missing hash", replace(3, R"({"regular": "regulars.txt"})"), "missing 'hash'"},
      {"hash too short", replace(3, Ref("regular", "regulars.txt", std::string(63, 'a'))),
       "not 64 hex digits"},
      {"hash too long", replace(3, Ref("regular", "regulars.txt", std::string(65, 'a'))),
       "not 64 hex digits"},
      {"hash not hex", replace(3, Ref("regular", "regulars.txt", std::string(63, 'a') + "g")),
       "not 64 hex digits"},
      {"hash empty", replace(6, Ref("certificate", "sign.pem", "")), "not 64 hex digits"},
      {"hash a number", replace(3, R"({"regular": "regulars.txt", "hash": 5})"), "'hash'"},
      {"file name a number",
       replace(3, R"({"regular": 5, "hash": ")" + std::string(kRegularsHash) + "\"}"), "'regular'"},
      {"file name with slash", replace(3, Ref("regular", "x/regulars.txt", kRegularsHash)),
       "unsafe file name"},
      {"file name absolute", replace(6, Ref("certificate", "/etc/shadow", kCertHash)),
       "unsafe file name"},
      {"file name dotdot", replace(1, Ref("directory", "..", kDirsHash)), "unsafe file name"},
      {"file name with dotdot", replace(1, Ref("directory", "..dirs.txt", kDirsHash)),
       "unsafe file name"},
      {"file name dot", replace(1, Ref("directory", ".", kDirsHash)), "unsafe file name"},
      {"file name empty", replace(2, Ref("symboliclink", "", kSymlinksHash)), "empty file name"},
      {"file name with NUL", replace(4, Ref("persistent", "p\\u0000.txt", kPersistentsHash)),
       "unsafe file name"},
      {"file name with backslash", replace(4, Ref("persistent", "a\\\\b", kPersistentsHash)),
       "unsafe file name"},
      {"rootfs absolute", replace(5, R"({"rootfs_directory": "/data"})"), "unsafe directory"},
      {"rootfs dotdot", replace(5, R"({"rootfs_directory": "data/../../x"})"), "unsafe directory"},
      {"rootfs empty", replace(5, R"({"rootfs_directory": ""})"), "empty directory"},
      {"rootfs query", replace(5, R"({"rootfs_directory": "data?x=1"})"), "unsafe directory"},
      {"rootfs a list", replace(5, R"({"rootfs_directory": ["data"]})"), "'rootfs_directory'"},
      {"compressed dir unsafe", add(R"({"compressed_rootfs_directory": "../z"})"),
       "unsafe directory"},
      {"total size letters", add(R"({"total_regular_size": "12a"})"), "not a decimal number"},
      {"total size negative", add(R"({"total_regular_size": "-1"})"), "not a decimal number"},
      {"total size plus", add(R"({"total_regular_size": "+1"})"), "not a decimal number"},
      {"total size empty", add(R"({"total_regular_size": ""})"), "not a decimal number"},
      {"total size float", add(R"({"total_regular_size": "1.5"})"), "not a decimal number"},
      {"total size overflow", add(R"({"total_regular_size": "18446744073709551616"})"),
       "not a decimal number"},
      {"total size negative number", add(R"({"total_regular_size": -3})"), "total_regular_size"},
      {"total size null", add(R"({"total_regular_size": null})"), "total_regular_size"},
      {"duplicate regular", add(Ref("regular", "other.txt", kRegularsHash)), "given twice"},
      {"duplicate total size", add(R"({"total_regular_size": "1"}, {"total_regular_size": "2"})"),
       "given twice"},
      {"entry not an object", add(R"("regular")"), "expected an object"},
      {"payload an object", MakeJwt(R"({"version": 1})"), "expected a JSON array"},
      {"payload empty array", MakeJwt("[]"), "missing 'version'"},
      {"payload not JSON", MakeJwt("[{\"version\": 1}"), "not valid JSON"},
      {"payload trailing garbage", MakeJwt(JsonArray(MinimalEntries()) + "x"), "not valid JSON"},
      {"payload invalid UTF-8", MakeJwt("[{\"version\": 1}, \"\xff\"]"), "not valid JSON"},
      {"payload empty", MakeJwt(""), "not valid JSON"},
      {"payload nested deep", MakeJwt(deep), "nested too deeply"},
      {"two segments", header_b64 + "." + payload_b64, "three"},
      {"four segments", header_b64 + "." + payload_b64 + "." + good_sig_b64 + ".x", "three"},
      {"one segment", payload_b64, "three"},
      {"empty", "", "three"},
      {"bad header base64", "e$J." + payload_b64 + "." + good_sig_b64, "header segment"},
      {"bad payload base64", header_b64 + ".W3*." + good_sig_b64, "payload segment"},
      {"bad signature base64", header_b64 + "." + payload_b64 + ".ab+c", "signature segment"},
      {"standard base64 payload", header_b64 + "." + payload_b64 + "/" + "." + good_sig_b64,
       "payload segment"},
      {"empty signature", header_b64 + "." + payload_b64 + ".", "signature segment: empty"},
      {"newline inside", header_b64 + ".\n" + payload_b64 + "." + good_sig_b64, "payload segment"},
      {"too large", std::string(2 << 20, 'A'), "too large"},
  };
}

TEST(ParseMetadataJwtTest, RejectsBadInputNamingTheProblem) {
  for (const BadCase& c : BadPayloadCases()) {
    auto md = ParseMetadataJwt(c.jwt);
    EXPECT_EQ(md.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name << ": " << md.status();
    EXPECT_THAT(std::string(md.status().message()), HasSubstr(c.message_part)) << c.name;
  }
}

// --- SignMetadataJwt ----------------------------------------------------------------------------

const testing::TestPki& Pki() {
  static const testing::TestPki pki = [] {
    auto made = testing::CachedTestPki("main");
    if (!made.ok()) {
      std::fprintf(stderr, "gen-certs.sh failed: %s\n", made.status().ToString().c_str());
      std::abort();
    }
    return std::move(*made);
  }();
  return pki;
}

TEST(SignMetadataJwtTest, ProducesUpstreamFormatThatParsesAndVerifies) {
  auto jwt = SignMetadataJwt(UpstreamPayload(), Pki().sign_key);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  const std::string expected_prefix =
      std::string(kUpstreamHeaderB64) + "." + Base64UrlEncode(kUpstreamPayload) + ".";
  ASSERT_TRUE(jwt->starts_with(expected_prefix)) << *jwt;
  auto md = ParseMetadataJwt(*jwt);
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->signed_part, expected_prefix.substr(0, expected_prefix.size() - 1));
  EXPECT_EQ(static_cast<unsigned char>(md->signature[0]), 0x30) << "DER signature expected";
  EXPECT_TRUE(crypto::VerifySignature(Pki().sign_pem, md->signed_part, md->signature).ok());
  // Every segment padded, as Python's urlsafe_b64encode does.
  for (size_t start = 0; start < jwt->size();) {
    size_t end = std::min(jwt->find('.', start), jwt->size());
    EXPECT_EQ((end - start) % 4, 0u);
    start = end + 1;
  }
}

TEST(SignMetadataJwtTest, TamperingWithAnySignedByteBreaksTheSignature) {
  auto jwt = SignMetadataJwt(UpstreamPayload(), Pki().sign_key);
  ASSERT_TRUE(jwt.ok());
  auto md = ParseMetadataJwt(*jwt);
  ASSERT_TRUE(md.ok());
  // Swap the regular file's hash for another valid one: still parses, no longer verifies.
  std::string payload = kUpstreamPayload;
  payload.replace(payload.find(kRegularsHash), 64, kDirsHash);
  const std::string forged = std::string(kUpstreamHeaderB64) + "." + Base64UrlEncode(payload) +
                             "." + Base64UrlEncode(md->signature);
  auto forged_md = ParseMetadataJwt(forged);
  ASSERT_TRUE(forged_md.ok()) << forged_md.status();
  EXPECT_EQ(
      crypto::VerifySignature(Pki().sign_pem, forged_md->signed_part, forged_md->signature).code(),
      absl::StatusCode::kPermissionDenied);
  // Re-encoding the same payload without padding changes the signed bytes: also rejected.
  const std::string unpadded = Base64UrlEncode(R"({"alg": "ES256"})", false) + "." +
                               Base64UrlEncode(kUpstreamPayload, false) + "." +
                               Base64UrlEncode(md->signature, false);
  auto unpadded_md = ParseMetadataJwt(unpadded);
  ASSERT_TRUE(unpadded_md.ok());
  EXPECT_EQ(
      crypto::VerifySignature(Pki().sign_pem, unpadded_md->signed_part, unpadded_md->signature)
          .code(),
      absl::StatusCode::kPermissionDenied);
}

TEST(SignMetadataJwtTest, JwtSignedByOpensslCliVerifies) {
  // An independent signer over the upstream bytes, like tier4's metadata_sign.py.
  const std::string signed_part =
      std::string(kUpstreamHeaderB64) + "." + Base64UrlEncode(kUpstreamPayload);
  auto scratch = fs::TempDir::Create("ota-metadata-test");
  ASSERT_TRUE(scratch.ok());
  const std::filesystem::path data_file = scratch->path() / "signed_part";
  const std::filesystem::path sig_file = scratch->path() / "signed_part.sig";
  ASSERT_TRUE(fs::WriteFileAtomic(data_file, signed_part).ok());
  ASSERT_TRUE(
      testing::RunQuietly({"openssl", "dgst", "-sha256", "-sign", Pki().path("sign.key").string(),
                           "-out", sig_file.string(), data_file.string()})
          .ok());
  auto sig = fs::ReadFile(sig_file);
  ASSERT_TRUE(sig.ok());
  auto md = ParseMetadataJwt(signed_part + "." + Base64UrlEncode(*sig));
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->signed_part, signed_part);
  EXPECT_TRUE(crypto::VerifySignature(Pki().sign_pem, md->signed_part, md->signature).ok());
}

TEST(SignMetadataJwtTest, BadKeyIsAnError) {
  EXPECT_EQ(SignMetadataJwt(UpstreamPayload(), "nope").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ota::image
