// Table tests of the OTA image v1 parsers: msgpack (filters, xattrs), descriptors and the JSON
// documents, the JWS header and claims, time claims, sys_config, and file-table rows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <string_view>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/image/legacy/metadata.h"
#include "common/image/v1/file_table.h"
#include "common/image/v1/filter.h"
#include "common/image/v1/msgpack.h"
#include "common/image/v1/schema.h"

namespace ota::image::v1 {
namespace {

using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

// --- filters: the exact bytes tier4's library writes, and nasty ones -----------------------

TEST(V1Filter, TierFourVectors) {
  EXPECT_EQ(EncodeBundleFilter(5, 100, 200), Bytes({0x62, 0x3a, 0x93, 0x05, 0x64, 0xcc, 0xc8}));
  EXPECT_EQ(EncodeCompressFilter(7), Bytes({0x63, 0x3a, 0x92, 0x07, 0xa4, 'z', 's', 't', 'd'}));
  EXPECT_EQ(EncodeSliceFilter({1, 2, 300}),
            Bytes({0x73, 0x3a, 0x93, 0x01, 0x02, 0xcd, 0x01, 0x2c}));

  auto b = ParseResourceFilter(EncodeBundleFilter(5, 100, 200));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->kind, ResourceFilter::Kind::kBundle);
  EXPECT_EQ(b->ref, 5);
  EXPECT_EQ(b->offset, 100u);
  EXPECT_EQ(b->length, 200u);
  auto c = ParseResourceFilter(EncodeCompressFilter(7));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kind, ResourceFilter::Kind::kCompressed);
  EXPECT_EQ(c->ref, 7);
  auto s = ParseResourceFilter(EncodeSliceFilter({9, 9, 300}));  // repeats are kept
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->slices, (std::vector<int64_t>{9, 9, 300}));
  auto leaf = ParseResourceFilter(std::nullopt);
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(leaf->kind, ResourceFilter::Kind::kLeaf);
}

TEST(V1Filter, Refusals) {
  const struct {
    std::string blob;
    std::string_view why;
  } cases[] = {
      {"", "not '<code>"},
      {"b", "not '<code>"},
      {"b:", "not '<code>"},
      {"x:" + Bytes({0x90}), "unknown filter code"},
      {"b:" + Bytes({0x92, 0x01, 0x02}), "2 fields"},
      {"b:" + Bytes({0x93, 0x01, 0x02}), "3 elements in 2 remaining bytes"},
      {"b:" + Bytes({0x93, 0x01, 0x02, 0xcd, 0x01}), "truncated"},
      {"c:" + Bytes({0x92, 0x07, 0xa4, 'g', 'z', 'i', 'p'}), "unsupported algorithm"},
      {"c:" + Bytes({0x92, 0x07, 0x07}), "expected a str"},
      {"s:" + Bytes({0x90}), "no slices"},
      {"s:" + Bytes({0x91, 0xff}), "negative"},
      {"s:" + Bytes({0x91, 0xd0, 0x80}), "negative"},
      {"s:" + Bytes({0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), "out of range"},
      {"s:" + Bytes({0x91, 0x01, 0x00}), "trailing"},
      {"s:" + Bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), "elements in"},
      {"s:" + Bytes({0x91, 0xca, 0, 0, 0, 0}), "expected an integer"},
      {"b:" + Bytes({0x93, 0x01, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}),
       "overflows"},
  };
  for (const auto& c : cases) {
    auto f = ParseResourceFilter(c.blob);
    ASSERT_FALSE(f.ok()) << "accepted " << c.blob.size() << " bytes: " << c.why;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(std::string(c.why)));
  }
  std::string huge = "s:" + Bytes({0xdd, 0x00, 0x04, 0x00, 0x00});
  huge.append(1 << 20, '\x01');
  EXPECT_THAT(std::string(ParseResourceFilter(huge).status().message()), HasSubstr("max 1 MiB"));
}

// --- xattrs ----------------------------------------------------------------------------------

TEST(V1Xattrs, DecodesMapOfStrToBin) {
  std::string packed;
  MsgpackAppendMapHeader(packed, 2);
  MsgpackAppendStr(packed, "user.a");
  MsgpackAppendBin(packed, std::string("\0\x01", 2));
  MsgpackAppendStr(packed, "security.capability");
  MsgpackAppendBin(packed, std::string(300, 'x'));  // bin16
  auto x = DecodeXattrs(packed);
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_EQ(x->size(), 2u);
  EXPECT_EQ((*x)[0].first, "user.a");
  EXPECT_EQ((*x)[0].second, std::string("\0\x01", 2));
  EXPECT_EQ((*x)[1].second.size(), 300u);
  auto empty = DecodeXattrs(Bytes({0x80}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(V1Xattrs, Refusals) {
  auto pair = [](std::string_view name, std::string_view value, bool value_as_str = false) {
    std::string p;
    MsgpackAppendMapHeader(p, 1);
    MsgpackAppendStr(p, name);
    if (value_as_str) {
      MsgpackAppendStr(p, value);
    } else {
      MsgpackAppendBin(p, value);
    }
    return p;
  };
  std::string twice;
  MsgpackAppendMapHeader(twice, 2);
  for (int i = 0; i < 2; ++i) {
    MsgpackAppendStr(twice, "user.x");
    MsgpackAppendBin(twice, "1");
  }
  const struct {
    std::string packed;
    std::string_view why;
  } cases[] = {
      {"", "truncated"},
      {Bytes({0x90}), "expected a map"},
      {Bytes({0x81}), "pairs in"},
      {pair("user.a", "v", /*value_as_str=*/true), "expected a bin"},
      {pair("", "v"), "invalid attribute name"},
      {pair(std::string("a\0b", 3), "v"), "invalid attribute name"},
      {pair("user.a", std::string(70000, 'v')), "max 65536"},
      {pair("user.a", "v") + "x", "trailing"},
      {twice, "appears twice"},
      {Bytes({0x81, 0xa1, 'a', 0xc4, 0x05, 'x'}), "runs past the end"},
      {Bytes({0xdf, 0xff, 0xff, 0xff, 0xff}), "pairs in"},
  };
  for (const auto& c : cases) {
    auto x = DecodeXattrs(c.packed);
    ASSERT_FALSE(x.ok()) << c.why;
    EXPECT_THAT(std::string(x.status().message()), HasSubstr(std::string(c.why)));
  }
}

// --- JSON documents ----------------------------------------------------------------------------

const std::string kHexA(64, 'a');
const std::string kDigestA = "sha256:" + kHexA;

std::string IndexJson(
    std::string_view manifests,
    std::string_view annotations = R"({"vnd.tier4.ota.ota-image-builder.version":"t"})") {
  return std::string(
             R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":)") +
         std::string(manifests) + R"(,"annotations":)" + std::string(annotations) + "}";
}
std::string ImageEntry(std::string_view ecu, std::string_view key = "") {
  std::string ann =
      std::string(R"({"vnd.tier4.pilot-auto.platform.ecu":")") + std::string(ecu) + "\"";
  if (!key.empty())
    ann += std::string(R"(,"vnd.tier4.ota.release-key":")") + std::string(key) + "\"";
  ann += "}";
  return R"({"size":10,"digest":")" + kDigestA + R"(","annotations":)" + ann +
         R"(,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
}
const std::string kRsEntry =
    R"({"size":5,"digest":")" + kDigestA +
    R"(","mediaType":"application/vnd.tier4.ota.file-based-ota-image.resource_table.v1.sqlite3+zstd"})";

TEST(V1Index, ParsesAndSelects) {
  auto idx = ParseImageIndex(IndexJson("[" + ImageEntry("main") + "," + ImageEntry("sub", "prd") +
                                       "," + ImageEntry("sub", "dev") + "," + kRsEntry + "]"));
  ASSERT_TRUE(idx.ok()) << idx.status();
  ASSERT_EQ(idx->images.size(), 3u);
  EXPECT_EQ(idx->images[0].release_key, "dev");  // absent means dev
  ASSERT_TRUE(idx->resource_table.has_value());
  EXPECT_TRUE(IsZstdTable(idx->resource_table->media_type));
  auto sub = SelectPayload(*idx, "sub", "dev");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ((*sub)->ecu_id, "sub");
  EXPECT_EQ((*sub)->release_key, "dev");
  auto none = SelectPayload(*idx, "other", "dev");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("main/dev, sub/prd, sub/dev"));
}

TEST(V1Index, Refusals) {
  const struct {
    std::string json;
    std::string_view why;
  } cases[] = {
      {"", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"schemaVersion":1})", "expected 2"},
      {R"({"schemaVersion":"2"})", "not an integer"},
      {IndexJson("[" + kRsEntry + "]", "{}"), "is required"},
      {IndexJson("{}"), "\"manifests\" array"},
      {IndexJson("[" + ImageEntry("a") + "]"), "no resource table"},
      {IndexJson("[" + ImageEntry("a") + "," + ImageEntry("a") + "," + kRsEntry + "]"),
       "a second image"},
      {IndexJson("[" + ImageEntry("a", "xyz") + "," + kRsEntry + "]"), "neither dev nor prd"},
      {IndexJson("[" + ImageEntry("") + "," + kRsEntry + "]"), "without annotation"},
      {IndexJson(R"([{"size":1,"digest":")" + kDigestA + R"(","mediaType":"text/plain"},)" +
                 kRsEntry + "]"),
       "unknown mediaType"},
      {IndexJson(R"([{"size":1,"digest":"sha256:)" + std::string(64, 'A') +
                 R"(","mediaType":"x"}])"),
       "lowercase"},
      {IndexJson(R"([{"size":1,"digest":"sha512:)" + kHexA + R"(","mediaType":"x"}])"),
       "only algorithm"},
      {IndexJson(R"([{"size":-1,"digest":")" + kDigestA + R"(","mediaType":"x"}])"), "negative"},
      {IndexJson(R"([{"size":1.5,"digest":")" + kDigestA + R"(","mediaType":"x"}])"),
       "not an integer"},
      {IndexJson(R"([{"digest":")" + kDigestA + R"(","mediaType":"x"}])"), "missing \"size\""},
  };
  for (const auto& c : cases) {
    auto idx = ParseImageIndex(c.json);
    ASSERT_FALSE(idx.ok()) << c.why;
    EXPECT_EQ(idx.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(idx.status().message()), HasSubstr(std::string(c.why))) << c.json;
  }
}

std::string Desc(std::string_view media_type) {
  return R"({"size":3,"digest":")" + kDigestA + R"(","mediaType":")" + std::string(media_type) +
         "\"}";
}

TEST(V1Manifest, ParsesWithoutArtifactTypeAndRefusesBadLayers) {
  const std::string ft = Desc(kMediaFileTableZstd);
  auto m = ParseImageManifest(
      R"({"schemaVersion":2,"mediaType":")" + std::string(kMediaManifest) + R"(","config":)" +
      Desc(kMediaImageConfig) + R"(,"layers":[)" + ft +
      R"(],"annotations":{"vnd.tier4.pilot-auto.platform.ecu.architecture":"x86_64"}})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->architecture, "x86_64");
  auto two = ParseImageManifest(R"({"schemaVersion":2,"mediaType":")" +
                                std::string(kMediaManifest) + R"(","config":)" +
                                Desc(kMediaImageConfig) + R"(,"layers":[)" + ft + "," + ft + "]}");
  EXPECT_THAT(std::string(two.status().message()), HasSubstr("exactly one"));
  auto wrong =
      ParseImageManifest(R"({"schemaVersion":2,"mediaType":")" + std::string(kMediaManifest) +
                         R"(","config":)" + Desc(kMediaFileTable) + R"(,"layers":[)" + ft + "]}");
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("unexpected mediaType"));
}

TEST(V1Config, ParsesLabelsAndSysConfigDescriptor) {
  auto c = ParseImageConfig(R"({"schemaVersion":1,"mediaType":")" + std::string(kMediaImageConfig) +
                            R"(","architecture":"x86_64","sys_config":)" +
                            Desc(kMediaSysConfigOld) + R"(,"file_table":)" + Desc(kMediaFileTable) +
                            R"(,"labels":{"vnd.tier4.image.rootfs.size":12345}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rootfs_size, 12345u);
  ASSERT_TRUE(c->sys_config.has_value());
  auto bad_alg =
      ParseImageConfig(R"({"schemaVersion":1,"mediaType":")" + std::string(kMediaImageConfig) +
                       R"(","resource_digest_alg":"md5","architecture":"x"})");
  EXPECT_THAT(std::string(bad_alg.status().message()), HasSubstr("only sha256"));
  auto no_labels =
      ParseImageConfig(R"({"schemaVersion":1,"mediaType":")" + std::string(kMediaImageConfig) +
                       R"(","architecture":"x","file_table":)" + Desc(kMediaFileTable) + "}");
  EXPECT_THAT(std::string(no_labels.status().message()), HasSubstr("labels"));
}

TEST(V1SysConfig, PersistFilesAndHostname) {
  auto s = ParseSysConfig("hostname: ecu1\npersist_files:\n  - /etc/hosts\n  - \"/var/a b\"\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->hostname, "ecu1");
  EXPECT_EQ(s->persist_files, (std::vector<std::string>{"/etc/hosts", "/var/a b"}));
  auto quoted_number = ParseSysConfig("hostname: \"123\"\n");
  EXPECT_TRUE(quoted_number.ok()) << quoted_number.status();
  const struct {
    std::string yaml;
    std::string_view why;
  } cases[] = {
      {"- a\n", "not a YAML mapping"},
      {"persist_files: []\n", "hostname"},
      {"hostname: 123\n", "quote it"},
      {"hostname: [a]\n", "hostname"},
      {"hostname: a\npersist_files: /etc\n", "not a list"},
      {"hostname: a\npersist_files:\n  - etc/hosts\n", "persist_files[0]"},
      {"hostname: a\npersist_files:\n  - /etc/../x\n", "persist_files[0]"},
      {"hostname: a\npersist_files:\n  - [x]\n", "not a string"},
      {"hostname: a\n  bad: : indent\n", "sys_config"},
  };
  for (const auto& c : cases) {
    auto r = ParseSysConfig(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(std::string(c.why))) << c.yaml;
  }
}

// --- JWS ---------------------------------------------------------------------------------------

TEST(V1Jws, HeaderRules) {
  auto ok = ParseJwsHeader(R"({"alg":"ES256","typ":"JWT","x5c":["AAAA"]})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->x5c.size(), 1u);
  EXPECT_TRUE(ParseJwsHeader(R"({"alg":"ES256","x5c":["AAAA"]})").ok()) << "missing typ accepted";
  EXPECT_TRUE(ParseJwsHeader(R"({"alg":"ES256","typ":"jwt","x5c":["A"]})").ok());
  const struct {
    std::string json;
    std::string_view why;
  } cases[] = {
      {R"({"alg":"none","x5c":["A"]})", "only ES256"},
      {R"({"alg":"HS256","x5c":["A"]})", "only ES256"},
      {R"({"x5c":["A"]})", "missing \"alg\""},
      {R"({"alg":"ES256","typ":"JOSE+JSON","x5c":["A"]})", "expected JWT"},
      {R"({"alg":"ES256","typ":1,"x5c":["A"]})", "not a string"},
      {R"({"alg":"ES256"})", "x5c"},
      {R"({"alg":"ES256","x5c":[]})", "x5c"},
      {R"({"alg":"ES256","x5c":[1]})", "not a string"},
      {R"({"alg":"ES256","x5c":["A"],"crit":["b64"]})", "crit"},
  };
  for (const auto& c : cases) {
    auto h = ParseJwsHeader(c.json);
    ASSERT_FALSE(h.ok()) << c.json;
    EXPECT_THAT(std::string(h.status().message()), HasSubstr(std::string(c.why))) << c.json;
  }
}

TEST(V1Jws, ClaimsAndTimes) {
  const std::string index =
      R"("image_index":{"size":12,"digest":")" + kDigestA + R"(","mediaType":"whatever"})";
  auto c = ParseJwsClaims("{\"iat\":100," + index + "}");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->image_index.size, 12u);
  EXPECT_TRUE(CheckJwsTimes(*c, 100).ok());
  EXPECT_TRUE(CheckJwsTimes(*c, 1000).ok());
  absl::Status future = CheckJwsTimes(*c, 99);
  EXPECT_EQ(future.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(future.message()), HasSubstr("future"));
  auto no_iat = ParseJwsClaims("{" + index + "}");
  ASSERT_TRUE(no_iat.ok());
  EXPECT_TRUE(CheckJwsTimes(*no_iat, 0).ok());
  auto exp = ParseJwsClaims("{\"exp\":50," + index + "}");
  ASSERT_TRUE(exp.ok());
  EXPECT_THAT(std::string(CheckJwsTimes(*exp, 50).message()), HasSubstr("expired"));
  auto nbf = ParseJwsClaims("{\"nbf\":50," + index + "}");
  ASSERT_TRUE(nbf.ok());
  EXPECT_FALSE(CheckJwsTimes(*nbf, 49).ok());
  EXPECT_THAT(std::string(ParseJwsClaims("{\"iat\":1.5," + index + "}").status().message()),
              HasSubstr("not an integer"));
  EXPECT_THAT(std::string(ParseJwsClaims("{\"iat\":\"1\"," + index + "}").status().message()),
              HasSubstr("not an integer"));
  EXPECT_THAT(std::string(ParseJwsClaims("{\"iat\":1}").status().message()),
              HasSubstr("image_index"));
}

TEST(V1Jws, Segments) {
  const std::string h = Base64UrlEncode(R"({"alg":"ES256","x5c":["A"]})", false);
  const std::string p = Base64UrlEncode(
      R"({"image_index":{"size":1,"digest":")" + kDigestA + R"(","mediaType":"m"}})", false);
  const std::string sig = Base64UrlEncode(std::string(64, '\x01'), false);
  auto jwt = ParseIndexJwt(h + "." + p + "." + sig);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ(jwt->signing_input, h + "." + p);
  EXPECT_EQ(jwt->signature.size(), 64u);
  EXPECT_TRUE(ParseIndexJwt(h + "." + p + "." + sig + "\n").ok()) << "one trailing newline";
  for (const std::string& bad :
       {h + "." + p, h + "." + p + "." + sig + ".x", h + "." + p + "." + sig + "\n\n",
        h + "!." + p + "." + sig, std::string("..")}) {
    EXPECT_FALSE(ParseIndexJwt(bad).ok()) << bad;
  }
}

// --- file-table rows -------------------------------------------------------------------------

TEST(V1FileTableRows, Kinds) {
  Manifest m;
  FileTableRow dir;
  dir.path = "/";
  dir.mode = S_IFDIR | 0755;
  ASSERT_TRUE(AddDirRow(dir, m).ok());
  FileTableRow link;
  link.path = "/l";
  link.mode = S_IFLNK | 0777;
  link.meta = "../target";
  ASSERT_TRUE(AddNonRegularRow(link, m).ok());
  FileTableRow wh;
  wh.path = "/w";
  wh.mode = S_IFCHR | 0;
  wh.uid = 1000;
  ASSERT_TRUE(AddNonRegularRow(wh, m).ok());
  std::string xattrs;
  MsgpackAppendMapHeader(xattrs, 1);
  MsgpackAppendStr(xattrs, "user.k");
  MsgpackAppendBin(xattrs, "v");
  const crypto::Sha256Digest hi = crypto::Sha256Of("hi");
  FileTableRow inl;
  inl.path = "/inl";
  inl.mode = S_IFREG | 04755;
  inl.digest = std::string_view(reinterpret_cast<const char*>(hi.data()), 32);
  inl.size = 2;
  inl.contents = "hi";
  inl.xattrs = xattrs;
  inl.links_count = 3;
  inl.inode_id = -77;
  ASSERT_TRUE(AddRegularRow(inl, m).ok());
  ASSERT_EQ(m.regulars.size(), 1u);
  const RegularEntry& e = m.regulars[0];
  EXPECT_TRUE(e.has_inline);
  EXPECT_EQ(m.Str(e.inline_content), "hi");
  EXPECT_EQ(e.nlink, 3u);
  EXPECT_EQ(static_cast<int64_t>(e.inode), -77);
  EXPECT_EQ(e.mode & 07777, 04755u);
  int seen = 0;
  m.ForEachXattr(e.xattrs, [&](std::string_view name, std::string_view value) {
    EXPECT_EQ(name, "user.k");
    EXPECT_EQ(value, "v");
    ++seen;
  });
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(m.symlinks.size(), 1u);
  EXPECT_EQ(m.specials.size(), 1u);
  EXPECT_EQ(m.specials[0].uid, 1000u);
}

TEST(V1FileTableRows, Refusals) {
  const crypto::Sha256Digest hi = crypto::Sha256Of("hi");
  const crypto::Sha256Digest empty = crypto::Sha256Of("");
  const std::string hi_d(reinterpret_cast<const char*>(hi.data()), 32);
  const std::string empty_d(reinterpret_cast<const char*>(empty.data()), 32);
  auto reg = [&](std::string_view path) {
    FileTableRow r;
    r.path = path;
    r.mode = S_IFREG | 0644;
    r.digest = hi_d;
    r.size = 5000;
    return r;
  };
  struct Case {
    FileTableRow row;
    int kind;  // 0 dir, 1 non-regular, 2 regular
    std::string_view why;
  };
  std::vector<Case> cases;
  {
    FileTableRow r = reg("relative");
    cases.push_back({r, 2, "absolute"});
    r = reg("/a/../b");
    cases.push_back({r, 2, ".."});
    r = reg("/");
    cases.push_back({r, 2, "'/'"});
    r = reg("/x");
    r.mode = S_IFDIR | 0755;
    cases.push_back({r, 2, "not a regular file"});
    r = reg("/x");
    r.uid = -1;
    cases.push_back({r, 2, "out of range"});
    r = reg("/x");
    r.gid = 0xffffffffll;
    cases.push_back({r, 2, "out of range"});
    r = reg("/x");
    r.mode = 0x10000;
    cases.push_back({r, 2, "out of range"});
    r = reg("/x");
    r.digest = "short";
    cases.push_back({r, 2, "want 32"});
    r = reg("/x");
    r.contents = "";
    cases.push_back({r, 2, "X''"});
    r = reg("/x");
    r.size = 2;
    r.contents = "ho";
    cases.push_back({r, 2, "do not match"});
    r = reg("/x");
    r.size = 3;
    r.contents = "hi";
    cases.push_back({r, 2, "inlined contents of 2"});
    r = reg("/x");
    r.size = 0;
    cases.push_back({r, 2, "empty content"});
    r = reg("/x");
    r.size = 0;
    r.digest = empty_d;
    r.contents = "x";
    cases.push_back({r, 2, "non-empty contents"});
    r = reg("/x");
    r.size = -1;
    cases.push_back({r, 2, "negative"});
    r = reg("/x");
    r.links_count = 0;
    cases.push_back({r, 2, "links_count"});
    r = reg("/x");
    static const std::string kStrValue("\x81\xa1k\xa1v");  // value as str
    r.xattrs = kStrValue;
    cases.push_back({r, 2, "expected a bin"});
    FileTableRow n;
    n.path = "/n";
    n.mode = 0777;  // no type bits
    cases.push_back({n, 1, "neither a symlink"});
    n.mode = S_IFIFO | 0644;
    cases.push_back({n, 1, "neither a symlink"});
    n.mode = S_IFLNK | 0777;
    cases.push_back({n, 1, "without a target"});
    n.meta = std::string("a\0b", 3);
    cases.push_back({n, 1, "NUL"});
    n.mode = S_IFCHR;
    n.meta = "x";
    cases.push_back({n, 1, "only whiteouts"});
    FileTableRow d;
    d.path = "/d";
    d.mode = S_IFREG | 0755;
    cases.push_back({d, 0, "not a directory"});
  }
  for (const Case& c : cases) {
    Manifest m;
    absl::Status st = c.kind == 0   ? AddDirRow(c.row, m)
                      : c.kind == 1 ? AddNonRegularRow(c.row, m)
                                    : AddRegularRow(c.row, m);
    ASSERT_FALSE(st.ok()) << c.why;
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(st.message()), HasSubstr(std::string(c.why)));
    EXPECT_TRUE(m.regulars.empty() && m.symlinks.empty() && m.specials.empty() && m.dirs.empty());
  }
}

// LoadFileTable over real SQLite files: orphan rows and foreign databases are refused.
TEST(V1FileTable, OrphansAndForeignDatabases) {
  auto tmp = fs::TempDir::Create("v1-file-table");
  ASSERT_TRUE(tmp.ok());
  auto make = [&](const std::string& name, const std::string& sql) {
    const std::string path = (tmp->path() / name).string();
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_free(err);
    sqlite3_close(db);
    return tmp->path() / name;
  };
  const std::string ddl =
      "CREATE TABLE ft_regular (path TEXT PRIMARY KEY,inode_id INTEGER NOT NULL,resource_id "
      "INTEGER) WITHOUT ROWID;"
      "CREATE TABLE ft_dir (path TEXT PRIMARY KEY,inode_id INTEGER NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE ft_non_regular (path TEXT PRIMARY KEY,inode_id INTEGER NOT NULL,meta BLOB) "
      "WITHOUT ROWID;"
      "CREATE TABLE ft_resource (resource_id INTEGER PRIMARY KEY,digest BLOB NOT NULL UNIQUE,"
      "size INTEGER NOT NULL,contents BLOB);"
      "CREATE TABLE ft_inode (inode_id INTEGER PRIMARY KEY,uid INTEGER NOT NULL,gid INTEGER NOT "
      "NULL,mode INTEGER NOT NULL,links_count INTEGER,xattrs BLOB);"
      "INSERT INTO ft_inode VALUES (1,0,0,16877,NULL,NULL);"
      "INSERT INTO ft_dir VALUES ('/',1);"
      "INSERT INTO ft_resource VALUES "
      "(0,X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',0,X'');";
  Manifest ok;
  absl::Status good = LoadFileTable(
      make("good.sqlite3", ddl + "INSERT INTO ft_inode VALUES (2,0,0,33188,NULL,NULL);"
                                 "INSERT INTO ft_regular VALUES ('/empty',2,0);"),
      ok);
  ASSERT_TRUE(good.ok()) << good;
  EXPECT_EQ(ok.regulars.size(), 1u);
  EXPECT_EQ(ok.dirs.size(), 1u);
  Manifest m1;
  absl::Status no_inode = LoadFileTable(
      make("no-inode.sqlite3", ddl + "INSERT INTO ft_regular VALUES ('/a',9,0);"), m1);
  EXPECT_THAT(std::string(no_inode.message()), HasSubstr("missing ft_inode"));
  Manifest m2;
  absl::Status no_resource = LoadFileTable(
      make("no-resource.sqlite3", ddl + "INSERT INTO ft_inode VALUES (2,0,0,33188,NULL,NULL);"
                                        "INSERT INTO ft_regular VALUES ('/a',2,77);"),
      m2);
  EXPECT_THAT(std::string(no_resource.message()), HasSubstr("ft_resource"));
  Manifest m3;
  absl::Status foreign = LoadFileTable(make("foreign.sqlite3", "CREATE TABLE t (x);"), m3);
  EXPECT_EQ(foreign.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(foreign.message()), HasSubstr("file table"));
  std::ofstream(tmp->path() / "garbage") << "not a database at all, just text";
  Manifest m4;
  EXPECT_FALSE(LoadFileTable(tmp->path() / "garbage", m4).ok());
}

}  // namespace
}  // namespace ota::image::v1
