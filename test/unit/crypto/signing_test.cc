#include "common/crypto/signing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::crypto {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::time_t kOneDay = 24 * 60 * 60;

// Made once per test process by the real gen-certs.sh; removed at exit.
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

// A second, unrelated PKI: its certs chain to nothing in Pki().
const testing::TestPki& OtherPki() {
  static const testing::TestPki pki = [] {
    auto made = testing::CachedTestPki("other");
    if (!made.ok()) {
      std::fprintf(stderr, "gen-certs.sh failed: %s\n", made.status().ToString().c_str());
      std::abort();
    }
    return std::move(*made);
  }();
  return pki;
}

void WriteFile(const std::filesystem::path& path, std::string_view content) {
  ASSERT_TRUE(fs::WriteFileAtomic(path, content).ok()) << path;
}

// DER ECDSA signature → raw r||s (32 + 32 bytes), as JWS would carry it.
std::string DerToRaw(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
  if (!sig) return "";
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + 32, 32);
  return raw;
}

// A fresh EC private key on `curve`, as unencrypted PEM.
std::string EcKeyPem(const char* curve) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen(curve), EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!key || !bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return "";
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

constexpr std::string_view kData = "eyJhbGciOiAiRVMyNTYifQ==.W3sidmVyc2lvbiI6IDF9XQ==";

// --- signatures ---------------------------------------------------------------------------------

TEST(VerifySignatureTest, DerSignatureFromSignEs256Verifies) {
  auto sig = SignEs256(Pki().sign_key, kData);
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(static_cast<unsigned char>((*sig)[0]), 0x30) << "DER SEQUENCE expected";
  EXPECT_GE(sig->size(), 8u);
  EXPECT_LE(sig->size(), 72u);
  EXPECT_TRUE(VerifySignature(Pki().sign_pem, kData, *sig).ok());
}

TEST(VerifySignatureTest, RawRsSignatureVerifies) {
  auto sig = SignEs256(Pki().sign_key, kData);
  ASSERT_TRUE(sig.ok()) << sig.status();
  std::string raw = DerToRaw(*sig);
  ASSERT_EQ(raw.size(), 64u);
  EXPECT_TRUE(VerifySignature(Pki().sign_pem, kData, raw).ok());
}

TEST(VerifySignatureTest, SignatureFromOpensslCliVerifies) {
  // Independent signer: `openssl dgst -sha256 -sign` writes DER, as Python's cryptography does.
  auto scratch = fs::TempDir::Create("ota-signing-test");
  ASSERT_TRUE(scratch.ok());
  const std::filesystem::path data_file = scratch->path() / "data.bin";
  const std::filesystem::path sig_file = scratch->path() / "data.sig";
  WriteFile(data_file, kData);
  ASSERT_TRUE(
      testing::RunQuietly({"openssl", "dgst", "-sha256", "-sign", Pki().path("sign.key").string(),
                           "-out", sig_file.string(), data_file.string()})
          .ok());
  auto sig = fs::ReadFile(sig_file);
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(VerifySignature(Pki().sign_pem, kData, *sig).ok());
}

TEST(VerifySignatureTest, TamperedDataIsRejected) {
  auto sig = SignEs256(Pki().sign_key, kData);
  ASSERT_TRUE(sig.ok());
  std::string tampered(kData);
  tampered[10] ^= 1;
  absl::Status st = VerifySignature(Pki().sign_pem, tampered, *sig);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("signature does not verify"));
  // Raw form of the same signature over the tampered data: rejected as well.
  EXPECT_EQ(VerifySignature(Pki().sign_pem, tampered, DerToRaw(*sig)).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(VerifySignatureTest, TamperedSignatureIsRejected) {
  auto sig = SignEs256(Pki().sign_key, kData);
  ASSERT_TRUE(sig.ok());
  std::string bad = *sig;
  bad[bad.size() - 1] ^= 0x01;
  EXPECT_EQ(VerifySignature(Pki().sign_pem, kData, bad).code(),
            absl::StatusCode::kPermissionDenied);
  std::string raw = DerToRaw(*sig);
  raw[5] ^= 0x80;
  EXPECT_EQ(VerifySignature(Pki().sign_pem, kData, raw).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(VerifySignatureTest, NastySignatureBytesAreRejectedNotCrashing) {
  for (const std::string& sig :
       {std::string(), std::string(1, '\0'), std::string(64, '\0'), std::string(64, '\xff'),
        std::string(72, '\x30'), std::string("\x30\x06\x02\x01\x01\x02\x01\x01", 8),
        std::string(4096, 'A')}) {
    EXPECT_EQ(VerifySignature(Pki().sign_pem, kData, sig).code(),
              absl::StatusCode::kPermissionDenied)
        << "signature of " << sig.size() << " bytes";
  }
}

TEST(VerifySignatureTest, SignatureByAnotherKeyIsRejected) {
  auto sig = SignEs256(Pki().root_key, kData);  // right curve, wrong key
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(VerifySignature(Pki().sign_pem, kData, *sig).code(),
            absl::StatusCode::kPermissionDenied);
  auto other = SignEs256(OtherPki().sign_key, kData);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(VerifySignature(Pki().sign_pem, kData, *other).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(VerifySignatureTest, UnparsableCertificateIsInvalidArgument) {
  auto sig = SignEs256(Pki().sign_key, kData);
  ASSERT_TRUE(sig.ok());
  // Upstream test: verify(<a private key PEM>) fails.
  for (const std::string& cert :
       {Pki().sign_key, std::string(), std::string("not a pem"),
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Pki().sign_pem.substr(0, Pki().sign_pem.size() / 2)}) {
    absl::Status st = VerifySignature(cert, kData, *sig);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st << " for:\n" << cert;
  }
}

TEST(VerifySignatureTest, FirstCertificateOfABundleIsUsed) {
  auto sig = SignEs256(Pki().sign_key, kData);
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(VerifySignature(Pki().sign_pem + Pki().interm_pem, kData, *sig).ok());
  EXPECT_EQ(VerifySignature(Pki().interm_pem + Pki().sign_pem, kData, *sig).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(SignEs256Test, RejectsKeysThatAreNotP256) {
  EXPECT_EQ(SignEs256("", kData).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignEs256("garbage", kData).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignEs256(Pki().sign_pem, kData).status().code(),
            absl::StatusCode::kInvalidArgument);  // a certificate is not a key
  std::string p384 = EcKeyPem("P-384");
  ASSERT_FALSE(p384.empty());
  auto st = SignEs256(p384, kData).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("P-256"));
}

TEST(SignEs256Test, SignaturesAreRandomizedButAllVerify) {
  auto a = SignEs256(Pki().sign_key, kData);
  auto b = SignEs256(Pki().sign_key, kData);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // ECDSA nonces
  EXPECT_TRUE(VerifySignature(Pki().sign_pem, kData, *a).ok());
  EXPECT_TRUE(VerifySignature(Pki().sign_pem, kData, *b).ok());
}

// --- CA store -----------------------------------------------------------------------------------

class CaStoreTest : public ::testing::Test {
 protected:
  static fs::TempDir MakeTempDir() {
    auto dir = fs::TempDir::Create("ota-castore-test");
    if (!dir.ok()) {
      std::fprintf(stderr, "%s\n", dir.status().ToString().c_str());
      std::abort();
    }
    return std::move(*dir);
  }
  void Put(std::string_view name, std::string_view content) {
    WriteFile(certs_.path() / name, content);
  }
  CaStore Load() {
    auto store = CaStore::LoadDir(certs_.path());
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) std::abort();
    return std::move(*store);
  }

  fs::TempDir certs_ = MakeTempDir();
  const std::time_t now_ = std::time(nullptr);
};

TEST_F(CaStoreTest, GenCertsLayoutVerifiesTheSigningCert) {
  auto store = CaStore::LoadDir(Pki().certs_dir());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE(store->empty());
  EXPECT_THAT(store->group_names(), ElementsAre("1"));
  EXPECT_EQ(store->dir(), Pki().certs_dir());
  EXPECT_TRUE(store->VerifyCertificate(Pki().sign_pem, now_).ok());
}

TEST_F(CaStoreTest, MissingOrEmptyDirGivesEmptyStoreThatTrustsNothing) {
  auto missing = CaStore::LoadDir(certs_.path() / "nope");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE(missing->empty());
  absl::Status st = missing->VerifyCertificate(Pki().sign_pem, now_);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(st.message()), HasSubstr("no CA certificates installed"));

  CaStore empty = Load();
  EXPECT_TRUE(empty.empty());
  EXPECT_THAT(empty.group_names(), IsEmpty());
  EXPECT_EQ(empty.VerifyCertificate(Pki().sign_pem, now_).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(CaStoreTest, NotADirectoryIsAnError) {
  Put("file", "x");
  EXPECT_FALSE(CaStore::LoadDir(certs_.path() / "file").ok());
}

TEST_F(CaStoreTest, BogusFirstGroupThenGoodSecondGroupVerifies) {
  // Upstream test_ota_metadata: a.1.pem/a.2.pem are the signing cert (not a CA); b.* the real CAs.
  Put("a.1.pem", Pki().sign_pem);
  Put("a.2.pem", Pki().sign_pem);
  Put("b.1.pem", Pki().root_pem);
  Put("b.2.pem", Pki().interm_pem);
  CaStore store = Load();
  EXPECT_THAT(store.group_names(), ElementsAre("a", "b"));
  EXPECT_TRUE(store.VerifyCertificate(Pki().sign_pem, now_).ok());
}

TEST_F(CaStoreTest, OnlyBogusGroupIsRejectedNamingTheGroupAndReason) {
  Put("a.1.pem", Pki().sign_pem);
  Put("a.2.pem", Pki().sign_pem);
  absl::Status st = Load().VerifyCertificate(Pki().sign_pem, now_);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()),
              AllOf(HasSubstr("group 'a'"), HasSubstr("a.1.pem"), HasSubstr("a.2.pem"),
                    HasSubstr("unable to get local issuer certificate"),
                    HasSubstr(certs_.path().string()), HasSubstr("OTA Test Image Signer")));
}

TEST_F(CaStoreTest, CertificateOfAnotherPkiDoesNotChain) {
  Put("0.root.pem", Pki().root_pem);
  Put("0.interm.pem", Pki().interm_pem);
  Put("1.root.pem", OtherPki().root_pem);  // a group that trusts only the other root
  CaStore store = Load();
  EXPECT_TRUE(store.VerifyCertificate(OtherPki().sign_pem, now_).code() ==
              absl::StatusCode::kPermissionDenied);
  absl::Status st = store.VerifyCertificate(OtherPki().sign_pem, now_);
  EXPECT_THAT(std::string(st.message()), AllOf(HasSubstr("group '0'"), HasSubstr("group '1'")));
  EXPECT_TRUE(store.VerifyCertificate(Pki().sign_pem, now_).ok());
}

TEST_F(CaStoreTest, IntermediateMayComeWithTheLeaf) {
  Put("0.root.pem", Pki().root_pem);
  CaStore store = Load();
  EXPECT_EQ(store.VerifyCertificate(Pki().sign_pem, now_).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(store.VerifyCertificate(Pki().sign_pem + Pki().interm_pem, now_).ok());
}

TEST_F(CaStoreTest, IntermediateAloneIsNotATrustAnchor) {
  // Partial chains are not accepted: a group must lead to a self-signed root.
  Put("0.interm.pem", Pki().interm_pem);
  EXPECT_EQ(Load().VerifyCertificate(Pki().sign_pem, now_).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(CaStoreTest, ValidityIsCheckedAtTheGivenTime) {
  CaStore store = std::move(*CaStore::LoadDir(Pki().certs_dir()));
  EXPECT_TRUE(store.VerifyCertificate(Pki().sign_pem, now_ + 365 * kOneDay).ok());
  absl::Status future = store.VerifyCertificate(Pki().sign_pem, now_ + 20 * 365 * kOneDay);
  EXPECT_EQ(future.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(future.message()), HasSubstr("expired"));
  absl::Status past = store.VerifyCertificate(Pki().sign_pem, now_ - 2 * kOneDay);
  EXPECT_EQ(past.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(past.message()), HasSubstr("not yet valid"));
}

TEST_F(CaStoreTest, ExpiredSigningCertFromGenCertsIsRejected) {
  auto expired = testing::CachedTestPki("expired", /*expired=*/true);
  ASSERT_TRUE(expired.ok()) << expired.status();
  auto store = CaStore::LoadDir(expired->certs_dir());
  ASSERT_TRUE(store.ok()) << store.status();
  absl::Status st = store->VerifyCertificate(expired->sign_pem, now_);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("certificate has expired"));
  // The signature itself is still fine: only the chain check catches expiry.
  auto sig = SignEs256(expired->sign_key, kData);
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(VerifySignature(expired->sign_pem, kData, *sig).ok());
}

TEST_F(CaStoreTest, GroupPrefixIsNameMinusLastTwoDotComponents) {
  Put("x.y.z.pem", Pki().root_pem);         // group "x.y"
  Put("x.y.interm.pem", Pki().interm_pem);  // group "x.y"
  Put("b.root.pem", OtherPki().root_pem);   // group "b"
  Put("root.pem", Pki().root_pem);          // not *.*.pem: ignored
  Put(".hidden.root.pem", "garbage");       // hidden: ignored, as glob does
  Put("notes.txt", "garbage");              // not .pem: ignored
  Put("1.root.pem.bak", "garbage");         // not .pem: ignored
  ASSERT_TRUE(std::filesystem::create_directory(certs_.path() / "d.e.pem"));  // not a file
  CaStore store = Load();
  EXPECT_THAT(store.group_names(), ElementsAre("b", "x.y"));
  EXPECT_TRUE(store.VerifyCertificate(Pki().sign_pem, now_).ok());
  EXPECT_TRUE(store.VerifyCertificate(OtherPki().sign_pem + OtherPki().interm_pem, now_).ok());
}

TEST_F(CaStoreTest, GroupsAreTriedInSortedOrderAndAllNamedOnFailure) {
  Put("10.root.pem", OtherPki().root_pem);
  Put("9.root.pem", OtherPki().root_pem);
  Put("a.root.pem", OtherPki().root_pem);
  CaStore store = Load();
  EXPECT_THAT(store.group_names(), ElementsAre("10", "9", "a"));  // byte order, like sorted()
  std::string message(store.VerifyCertificate(Pki().sign_pem, now_).message());
  size_t p10 = message.find("group '10'");
  size_t p9 = message.find("group '9'");
  size_t pa = message.find("group 'a'");
  ASSERT_NE(p10, std::string::npos) << message;
  ASSERT_NE(p9, std::string::npos) << message;
  ASSERT_NE(pa, std::string::npos) << message;
  EXPECT_LT(p10, p9);
  EXPECT_LT(p9, pa);
}

TEST_F(CaStoreTest, UnparsableCaFileIsAnErrorNamingIt) {
  Put("0.root.pem", Pki().root_pem);
  Put("0.broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  auto store = CaStore::LoadDir(certs_.path());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("0.broken.pem"));

  Put("0.broken.pem", "no pem here");
  store = CaStore::LoadDir(certs_.path());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("0.broken.pem"));
}

TEST_F(CaStoreTest, BundleFileAddsEveryCertificate) {
  Put("0.chain.pem", Pki().interm_pem + Pki().root_pem);
  EXPECT_TRUE(Load().VerifyCertificate(Pki().sign_pem, now_).ok());
}

TEST_F(CaStoreTest, UnparsableLeafIsInvalidArgument) {
  CaStore store = std::move(*CaStore::LoadDir(Pki().certs_dir()));
  for (const std::string& leaf : {Pki().sign_key, std::string(), std::string("junk")}) {
    EXPECT_EQ(store.VerifyCertificate(leaf, now_).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(CaStoreTest, AnyCertificateThatChainsVerifies) {
  // The chain check does not insist on a leaf: what binds the image is that its signature must
  // verify with this very certificate's key.
  CaStore store = std::move(*CaStore::LoadDir(Pki().certs_dir()));
  EXPECT_TRUE(store.VerifyCertificate(Pki().interm_pem, now_).ok());
}

TEST_F(CaStoreTest, StoreIsMovable) {
  CaStore a = std::move(*CaStore::LoadDir(Pki().certs_dir()));
  CaStore b = std::move(a);
  EXPECT_TRUE(b.VerifyCertificate(Pki().sign_pem, now_).ok());
  a = std::move(b);
  EXPECT_TRUE(a.VerifyCertificate(Pki().sign_pem, now_).ok());
}

// --- OTA image v1: x5c chain policy ------------------------------------------------------------
// Certificates with exactly the extensions each case needs, made by test/unit/crypto/x5c_pki.sh
// (openssl CLI) once for the suite.

class X5cChainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = fs::TempDir::Create("ota-x5c-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    ASSERT_TRUE(testing::RunQuietly({"bash", StrCat(OTA_SOURCE_DIR, "/test/unit/crypto/x5c_pki.sh"),
                                     dir_->path().string()})
                    .ok());
  }
  static void TearDownTestSuite() { dir_.reset(); }

  static std::string Pem(const std::string& name) {
    return fs::ReadFile(dir_->path() / (name + ".pem")).value_or("");
  }
  // x5c entries (standard base64 DER) of the named certificates, in order.
  static std::vector<std::string> X5c(std::initializer_list<std::string> names) {
    std::vector<std::string> out;
    for (const std::string& n : names) {
      auto entries = PemToX5c(Pem(n));
      EXPECT_TRUE(entries.ok()) << n;
      if (entries.ok()) out.insert(out.end(), entries->begin(), entries->end());
    }
    return out;
  }
  // A certs dir holding the named (self-signed) roots.
  CaStore StoreOf(std::initializer_list<std::string> roots) {
    auto certs = fs::TempDir::Create("ota-x5c-certs");
    EXPECT_TRUE(certs.ok());
    for (const std::string& r : roots) WriteFile(certs->path() / StrCat("1.", r, ".pem"), Pem(r));
    auto store = CaStore::LoadDir(certs->path());
    EXPECT_TRUE(store.ok()) << store.status();
    certs_.push_back(std::move(*certs));
    return std::move(*store);
  }

  static std::optional<fs::TempDir> dir_;
  std::vector<fs::TempDir> certs_;
  const std::time_t now_ = std::time(nullptr);
};
std::optional<fs::TempDir> X5cChainTest::dir_;

TEST_F(X5cChainTest, AcceptedChains) {
  const CaStore store = StoreOf({"root"});
  EXPECT_FALSE(store.v1_roots_empty());
  auto leaf_der = X5cEntryToDer(X5c({"leaf"})[0]);
  ASSERT_TRUE(leaf_der.ok());
  // Signer first, or in any order: the result is always the signing certificate.
  for (const auto& x5c : {X5c({"leaf", "interm"}), X5c({"interm", "leaf"})}) {
    auto signer = store.VerifyX5cChain(x5c, now_);
    ASSERT_TRUE(signer.ok()) << signer.status();
    EXPECT_EQ(*signer, *leaf_der);
  }
  // PEM strings (images signed before 2026-01) are accepted as entries too.
  const std::vector<std::string> pem = {Pem("leaf"), Pem("interm")};
  EXPECT_TRUE(store.VerifyX5cChain(pem, now_).ok());
  // A signer that says CA=TRUE is fine (the policy binds CAs on the path only).
  EXPECT_TRUE(store.VerifyX5cChain(X5c({"leafca", "interm"}), now_).ok());
  // A signing certificate issued by the root directly needs no intermediate.
  EXPECT_TRUE(store.VerifyX5cChain(X5c({"interm"}), now_).ok());
  // Several roots: the one that fits is found.
  const CaStore two = StoreOf({"rootnc", "root"});
  EXPECT_TRUE(two.VerifyX5cChain(X5c({"leaf", "interm"}), now_).ok());
}

TEST_F(X5cChainTest, RefusedChains) {
  const CaStore store = StoreOf({"root"});
  struct Case {
    const char* name;
    std::vector<std::string> x5c;
    const CaStore* store;
    std::time_t now;
    const char* reason;
  };
  const CaStore nc = StoreOf({"rootnc"});
  const CaStore pl0 = StoreOf({"rootpl0"});
  const CaStore empty = StoreOf({});
  const CaStore interm_only = StoreOf({"interm"});  // not self-signed: not a root
  std::vector<std::string> seven = X5c({"leaf", "interm"});
  while (seven.size() < 7) seven.push_back(seven.back());
  const Case cases[] = {
      {"root in x5c", X5c({"leaf", "interm", "root"}), &store, now_, "self-signed"},
      {"no certificate", {}, &store, now_, "1 to 6"},
      {"seven certificates", seven, &store, now_, "1 to 6"},
      {"two signers", X5c({"leaf", "other"}), &store, now_, "not one linear chain"},
      {"missing intermediate", X5c({"leaf"}), &store, now_, "unable to get local issuer"},
      {"foreign root", X5c({"leafnc", "intnc"}), &store, now_, "not trusted by any root"},
      {"root basicConstraints not critical", X5c({"leafnc", "intnc"}), &nc, now_,
       "not marked critical"},
      {"intermediate without basicConstraints", X5c({"leafnobc", "nobc"}), &store, now_,
       "invalid CA certificate"},
      {"root pathlen 0 above an intermediate", X5c({"leafpl", "intpl"}), &pl0, now_, "path length"},
      {"intermediate expired", X5c({"shortleaf", "short"}), &store, now_ + 3 * 86400, "expired"},
      {"not yet valid", X5c({"leaf", "interm"}), &store, now_ - 3 * 86400, "not yet valid"},
      {"no root installed", X5c({"leaf", "interm"}), &empty, now_, "no self-signed root"},
      {"an intermediate is no root", X5c({"leaf"}), &interm_only, now_, "no self-signed root"},
      {"garbage entry", {"not base64!"}, &store, now_, "x5c[0]"},
  };
  for (const Case& c : cases) {
    auto signer = c.store->VerifyX5cChain(c.x5c, c.now);
    ASSERT_FALSE(signer.ok()) << c.name;
    EXPECT_THAT(std::string(signer.status().message()), HasSubstr(c.reason))
        << c.name << ": " << signer.status();
    if (std::string_view(c.name) != "garbage entry") {
      EXPECT_EQ(signer.status().code(), absl::StatusCode::kPermissionDenied) << c.name;
    }
  }
}

}  // namespace
}  // namespace ota::crypto
