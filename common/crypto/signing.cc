#include "common/crypto/signing.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::crypto {
namespace {

// std::unique_ptr deleters for OpenSSL objects.
template <auto FreeFn>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<ECDSA_SIG_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>>;
// A stack that borrows its certificates (they stay owned by a std::vector<X509Ptr>).
struct BorrowingStackDeleter {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};
using BorrowedX509Stack = std::unique_ptr<STACK_OF(X509), BorrowingStackDeleter>;

// Drains OpenSSL's thread-local error queue into one line ("" when empty).
std::string TakeOpenSslErrors() {
  std::string out;
  while (unsigned long err = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out.append("; ");
    out.append(buf);
  }
  return out;
}

// Never prompt for a passphrase on a terminal: encrypted keys simply fail to load.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

absl::StatusOr<BioPtr> MemoryBio(std::string_view data, std::string_view what) {
  if (data.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(StrCat(what, ": too large (", data.size(), " bytes)"));
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return absl::InternalError(StrCat(what, ": BIO_new_mem_buf failed"));
  return bio;
}

// Every certificate in a PEM text, in order. Other PEM blocks (keys) are skipped. An empty result
// or a broken certificate block is kInvalidArgument naming `what`.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(std::string_view pem,
                                                       std::string_view what) {
  ERR_clear_error();
  OTA_ASSIGN_OR_RETURN(BioPtr bio, MemoryBio(pem, what));
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    certs.emplace_back(cert);
  }
  // The loop always ends with an error; "no start line" just means no further PEM block.
  unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
  } else if (last != 0) {
    return absl::InvalidArgumentError(
        StrCat(what, ": malformed PEM certificate: ", TakeOpenSslErrors()));
  }
  if (certs.empty()) {
    return absl::InvalidArgumentError(StrCat(what, ": no PEM certificate found"));
  }
  return certs;
}

std::string SubjectOf(const X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return "?";
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  if (size <= 0 || data == nullptr) return "(empty subject)";
  return std::string(data, static_cast<size_t>(size));
}

bool DigestVerify(EVP_PKEY* key, std::string_view data, std::string_view signature) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
}

// Raw JWS-style r||s (32 + 32 bytes) → DER SEQUENCE{INTEGER r, INTEGER s}; "" on failure.
std::string RawEcdsaToDer(std::string_view raw) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  const int half = static_cast<int>(raw.size() / 2);
  BignumPtr r(BN_bin2bn(bytes, half, nullptr));
  BignumPtr s(BN_bin2bn(bytes + half, half, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig) return "";
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return "";
  static_cast<void>(r.release());  // now owned by sig
  static_cast<void>(s.release());
  int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0) return "";
  std::string der(static_cast<size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != size) return "";
  return der;
}

constexpr size_t kRawP256SignatureSize = 64;

}  // namespace

absl::Status VerifySignature(std::string_view cert_pem, std::string_view data,
                             std::string_view signature) {
  OTA_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificates(cert_pem, "certificate"));
  EVP_PKEY* key = X509_get0_pubkey(certs.front().get());  // owned by the certificate
  if (key == nullptr) {
    return absl::InvalidArgumentError(StrCat("certificate ", SubjectOf(certs.front().get()),
                                             ": unusable public key: ", TakeOpenSslErrors()));
  }
  bool ok = DigestVerify(key, data, signature);
  if (!ok && signature.size() == kRawP256SignatureSize &&
      EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    std::string der = RawEcdsaToDer(signature);
    ok = !der.empty() && DigestVerify(key, data, der);
  }
  ERR_clear_error();
  if (!ok) {
    return WithOtaErrorCode(absl::PermissionDeniedError(StrCat(
                                "signature does not verify with the public key of certificate ",
                                SubjectOf(certs.front().get()), " (", signature.size(),
                                "-byte signature over ", data.size(), " bytes)")),
                            OtaErrorCode::kMetadataCertVerificationFailed);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SignEs256(std::string_view key_pem, std::string_view data) {
  ERR_clear_error();
  OTA_ASSIGN_OR_RETURN(BioPtr bio, MemoryBio(key_pem, "signing key"));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        StrCat("signing key: not an unencrypted PEM private key: ", TakeOpenSslErrors()));
  }
  char group[64] = {};
  size_t group_len = 0;
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC ||
      EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &group_len) != 1 ||
      std::string_view(group, group_len) != "prime256v1") {
    ERR_clear_error();
    return absl::InvalidArgumentError("signing key: ES256 needs an EC P-256 (prime256v1) key");
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return absl::InternalError(StrCat("EVP_DigestSignInit: ", TakeOpenSslErrors()));
  }
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  size_t sig_len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &sig_len, in, data.size()) != 1) {
    return absl::InternalError(StrCat("EVP_DigestSign (size): ", TakeOpenSslErrors()));
  }
  std::string sig(sig_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len, in,
                     data.size()) != 1) {
    return absl::InternalError(StrCat("EVP_DigestSign: ", TakeOpenSslErrors()));
  }
  sig.resize(sig_len);
  return sig;
}

struct CaStore::Group {
  std::string name;                // the prefix, e.g. "0"
  std::vector<std::string> files;  // file names, for messages
  X509StorePtr store;
};

struct CaStore::Root {
  std::string file;     // for messages
  std::string subject;  // for messages
  X509Ptr cert;
  X509StorePtr store;
};

CaStore::CaStore() = default;
CaStore::CaStore(CaStore&&) noexcept = default;
CaStore& CaStore::operator=(CaStore&&) noexcept = default;
CaStore::~CaStore() = default;

absl::StatusOr<CaStore> CaStore::LoadDir(const std::filesystem::path& dir) {
  CaStore ca;
  ca.dir_ = dir;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    if (ec) return absl::InternalError(StrCat("certs dir ", dir.string(), ": ", ec.message()));
    return ca;
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(StrCat("certs dir ", dir.string(), " is not a directory"));
  }

  // Upstream globs `*.*.pem` (hidden files excluded) and takes the name minus its last two
  // dot-components as the group: "0.root.pem" → "0", "x.y.z.pem" → "x.y".
  std::map<std::string, std::vector<std::string>> files_by_group;  // sorted, like Python sorted()
  std::filesystem::directory_iterator it(dir, ec);
  if (ec)
    return absl::InternalError(StrCat("listing certs dir ", dir.string(), ": ", ec.message()));
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    constexpr std::string_view kSuffix = ".pem";
    if (name.empty() || name.front() == '.' || name.size() <= kSuffix.size() ||
        !name.ends_with(kSuffix)) {
      continue;
    }
    std::string_view stem = std::string_view(name).substr(0, name.size() - kSuffix.size());
    size_t dot = stem.rfind('.');
    if (dot == std::string_view::npos) continue;
    std::error_code type_ec;
    if (!std::filesystem::is_regular_file(it->path(), type_ec)) continue;  // follows symlinks
    files_by_group[std::string(stem.substr(0, dot))].push_back(name);
  }
  if (ec)
    return absl::InternalError(StrCat("listing certs dir ", dir.string(), ": ", ec.message()));

  OTA_RETURN_IF_ERROR(ca.LoadV1Roots());

  for (auto& [group_name, files] : files_by_group) {
    std::sort(files.begin(), files.end());
    auto group = std::make_unique<Group>();
    group->name = group_name;
    group->files = files;
    group->store.reset(X509_STORE_new());
    if (!group->store) return absl::InternalError("X509_STORE_new failed");
    for (const std::string& file : files) {
      const std::filesystem::path path = dir / file;
      OTA_ASSIGN_OR_RETURN(std::string pem, fs::ReadFile(path));
      OTA_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificates(pem, path.string()));
      for (const X509Ptr& cert : certs) {
        if (X509_STORE_add_cert(group->store.get(), cert.get()) != 1) {  // takes its own ref
          return absl::InvalidArgumentError(StrCat(
              path.string(), ": cannot add certificate to the trust store: ", TakeOpenSslErrors()));
        }
      }
    }
    ca.groups_.push_back(std::move(group));
  }
  return ca;
}

bool CaStore::empty() const { return groups_.empty(); }

bool CaStore::v1_roots_empty() const { return roots_.empty(); }

absl::Status CaStore::LoadV1Roots() {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.front() == '.') continue;
    if (!name.ends_with(".pem") && !name.ends_with(".crt")) continue;
    std::error_code type_ec;
    if (!std::filesystem::is_regular_file(it->path(), type_ec)) continue;
    files.push_back(it->path());
  }
  if (ec)
    return absl::InternalError(StrCat("listing certs dir ", dir_.string(), ": ", ec.message()));
  std::sort(files.begin(), files.end());
  for (const std::filesystem::path& path : files) {
    absl::StatusOr<std::string> pem = fs::ReadFile(path);
    if (!pem.ok()) continue;
    absl::StatusOr<std::vector<X509Ptr>> certs = ParseCertificates(*pem, path.string());
    if (!certs.ok()) {
      ERR_clear_error();
      continue;  // not a certificate: not a root (as the deployed client)
    }
    for (X509Ptr& cert : *certs) {
      if (X509_self_signed(cert.get(), 1) != 1) continue;
      auto root = std::make_unique<Root>();
      root->file = path.filename().string();
      root->subject = SubjectOf(cert.get());
      root->store.reset(X509_STORE_new());
      if (!root->store || X509_STORE_add_cert(root->store.get(), cert.get()) != 1) {
        return absl::InternalError(StrCat(path.string(), ": X509_STORE: ", TakeOpenSslErrors()));
      }
      root->cert = std::move(cert);
      roots_.push_back(std::move(root));
    }
  }
  ERR_clear_error();
  return absl::OkStatus();
}

std::vector<std::string> CaStore::group_names() const {
  std::vector<std::string> names;
  names.reserve(groups_.size());
  for (const auto& group : groups_) names.push_back(group->name);
  return names;
}

absl::Status CaStore::VerifyCertificate(std::string_view cert_pem, std::time_t now) const {
  OTA_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificates(cert_pem, "certificate"));
  const std::string subject = SubjectOf(certs.front().get());
  if (groups_.empty()) {
    return WithOtaErrorCode(
        absl::PermissionDeniedError(
            StrCat("certificate ", subject, ": no CA certificates installed in ", dir_.string())),
        OtaErrorCode::kMetadataCertVerificationFailed);
  }
  // Certificates after the leaf are untrusted intermediates that may help build the chain.
  BorrowedX509Stack untrusted(sk_X509_new_null());
  if (!untrusted) return absl::InternalError("sk_X509_new_null failed");
  for (size_t i = 1; i < certs.size(); ++i) {
    if (sk_X509_push(untrusted.get(), certs[i].get()) <= 0) {
      return absl::InternalError("sk_X509_push failed");
    }
  }

  std::string reasons;
  for (const auto& group : groups_) {
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), group->store.get(), certs.front().get(),
                                    untrusted.get()) != 1) {
      return absl::InternalError(StrCat("X509_STORE_CTX_init: ", TakeOpenSslErrors()));
    }
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), now);
    if (X509_verify_cert(ctx.get()) == 1) {
      ERR_clear_error();
      return absl::OkStatus();
    }
    const int err = X509_STORE_CTX_get_error(ctx.get());
    std::string files;
    for (const std::string& file : group->files) StrAppend(&files, files.empty() ? "" : ", ", file);
    StrAppend(&reasons, reasons.empty() ? "" : "; ", "group '", group->name, "' (", files,
              "): ", X509_verify_cert_error_string(err), " at depth ",
              X509_STORE_CTX_get_error_depth(ctx.get()));
  }
  ERR_clear_error();
  return WithOtaErrorCode(absl::PermissionDeniedError(StrCat("certificate ", subject,
                                                             " is not trusted by any CA group in ",
                                                             dir_.string(), ": ", reasons)),
                          OtaErrorCode::kMetadataCertVerificationFailed);
}

namespace {

absl::StatusOr<X509Ptr> ParseDer(std::string_view der, std::string_view what) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    ERR_clear_error();
    return absl::InvalidArgumentError(StrCat(what, ": not a DER certificate"));
  }
  return cert;
}

std::string ToDer(X509* cert) {
  int size = i2d_X509(cert, nullptr);
  if (size <= 0) return "";
  std::string der(static_cast<size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(cert, &out);
  return der;
}

// basicConstraints present, critical, CA=TRUE.
std::optional<std::string> CaConstraintProblem(X509* cert) {
  const int idx = X509_get_ext_by_NID(cert, NID_basic_constraints, -1);
  if (idx < 0) return "has no basicConstraints extension";
  if (X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) != 1) {
    return "has a basicConstraints extension that is not marked critical";
  }
  if ((X509_get_extension_flags(cert) & EXFLAG_CA) == 0) return "has basicConstraints CA=FALSE";
  return std::nullopt;
}

bool Issued(X509* issuer, X509* subject) { return X509_check_issued(issuer, subject) == X509_V_OK; }

}  // namespace

absl::StatusOr<std::string> X5cEntryToDer(std::string_view entry) {
  if (entry.substr(0, 10) == "-----BEGIN") {
    OTA_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificates(entry, "x5c PEM entry"));
    if (certs.size() != 1) {
      return absl::InvalidArgumentError(
          StrCat("x5c PEM entry holds ", certs.size(), " certificates, not 1"));
    }
    return ToDer(certs.front().get());
  }
  if (entry.empty() || entry.size() % 4 != 0 || entry.size() > (1u << 20)) {
    return absl::InvalidArgumentError(
        StrCat("x5c entry of ", entry.size(), " characters is not standard base64"));
  }
  for (char c : entry) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) {
      return absl::InvalidArgumentError("x5c entry is not standard base64 (RFC 7515 §4.1.6)");
    }
  }
  std::string der(entry.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(der.data()),
                                reinterpret_cast<const unsigned char*>(entry.data()),
                                static_cast<int>(entry.size()));
  if (n < 0) return absl::InvalidArgumentError("x5c entry is not valid base64");
  size_t pad = 0;
  if (entry.ends_with("==")) {
    pad = 2;
  } else if (entry.ends_with("=")) {
    pad = 1;
  }
  der.resize(static_cast<size_t>(n) - pad);
  OTA_RETURN_IF_ERROR(ParseDer(der, "x5c entry").status());
  return der;
}

absl::StatusOr<std::vector<std::string>> PemToX5c(std::string_view pem) {
  OTA_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificates(pem, "certificate chain"));
  std::vector<std::string> out;
  for (const X509Ptr& cert : certs) {
    const std::string der = ToDer(cert.get());
    std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                  reinterpret_cast<const unsigned char*>(der.data()),
                                  static_cast<int>(der.size()));
    b64.resize(static_cast<size_t>(n));
    out.push_back(std::move(b64));
  }
  return out;
}

absl::Status VerifyJwsEs256(std::string_view cert_der, std::string_view signing_input,
                            std::string_view signature) {
  OTA_ASSIGN_OR_RETURN(X509Ptr cert, ParseDer(cert_der, "signing certificate"));
  const std::string subject = SubjectOf(cert.get());
  if (signature.size() != kRawP256SignatureSize) {
    return absl::PermissionDeniedError(StrCat("ES256 signature has ", signature.size(),
                                              " bytes; JWS needs the 64-byte raw r||s form"));
  }
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  char group[64] = {};
  size_t group_len = 0;
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
      EVP_PKEY_get_group_name(key, group, sizeof(group), &group_len) != 1 ||
      std::string_view(group, group_len) != "prime256v1") {
    ERR_clear_error();
    return absl::PermissionDeniedError(
        StrCat("signing certificate ", subject, " has no EC P-256 key, which ES256 needs"));
  }
  const std::string der = RawEcdsaToDer(signature);
  const bool ok = !der.empty() && DigestVerify(key, signing_input, der);
  ERR_clear_error();
  if (!ok) {
    return absl::PermissionDeniedError(
        StrCat("signature does not verify with the public key of certificate ", subject));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SignEs256Raw(std::string_view key_pem, std::string_view data) {
  OTA_ASSIGN_OR_RETURN(std::string der, SignEs256(key_pem, data));
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return absl::InternalError("d2i_ECDSA_SIG failed");
  std::string raw(kRawP256SignatureSize, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + 32, 32) != 32) {
    return absl::InternalError("BN_bn2binpad failed");
  }
  return raw;
}

absl::StatusOr<std::string> CaStore::VerifyX5cChain(std::span<const std::string> x5c,
                                                    std::time_t now) const {
  if (x5c.empty() || x5c.size() > 6) {
    return absl::PermissionDeniedError(
        StrCat("x5c holds ", x5c.size(), " certificates; 1 to 6 are allowed"));
  }
  std::vector<X509Ptr> certs;
  for (size_t i = 0; i < x5c.size(); ++i) {
    absl::StatusOr<std::string> der = X5cEntryToDer(x5c[i]);
    if (!der.ok()) return WithContext(der.status(), StrCat("x5c[", i, "]"));
    OTA_ASSIGN_OR_RETURN(X509Ptr cert, ParseDer(*der, StrCat("x5c[", i, "]")));
    if (X509_self_signed(cert.get(), 0) == 1) {
      return absl::PermissionDeniedError(StrCat("x5c[", i, "] (", SubjectOf(cert.get()),
                                                ") is self-signed; a root never travels in x5c"));
    }
    certs.push_back(std::move(cert));
  }
  // The signing certificate issued none of the others; from it, issuer links must use them all.
  std::vector<size_t> leaves;
  for (size_t i = 0; i < certs.size(); ++i) {
    bool issued_any = false;
    for (size_t j = 0; j < certs.size(); ++j) {
      if (i != j && Issued(certs[i].get(), certs[j].get())) issued_any = true;
    }
    if (!issued_any) leaves.push_back(i);
  }
  if (leaves.size() != 1) {
    return absl::PermissionDeniedError(
        StrCat("x5c is not one linear chain (", leaves.size(), " candidate signing certificates)"));
  }
  std::vector<size_t> order = {leaves.front()};
  std::vector<bool> used(certs.size(), false);
  used[leaves.front()] = true;
  while (order.size() < certs.size()) {
    std::optional<size_t> next;
    for (size_t j = 0; j < certs.size(); ++j) {
      if (!used[j] && Issued(certs[j].get(), certs[order.back()].get())) next = j;
    }
    if (!next) {
      return absl::PermissionDeniedError(
          StrCat("x5c is not one linear chain: nothing in it issued ",
                 SubjectOf(certs[order.back()].get())));
    }
    used[*next] = true;
    order.push_back(*next);
  }
  X509* leaf = certs[order.front()].get();
  const std::string subject = SubjectOf(leaf);
  if (roots_.empty()) {
    return absl::PermissionDeniedError(StrCat(
        "certificate ", subject, ": no self-signed root certificate installed in ", dir_.string()));
  }
  BorrowedX509Stack untrusted(sk_X509_new_null());
  if (!untrusted) return absl::InternalError("sk_X509_new_null failed");
  for (size_t k = 1; k < order.size(); ++k) {
    if (sk_X509_push(untrusted.get(), certs[order[k]].get()) <= 0) {
      return absl::InternalError("sk_X509_push failed");
    }
  }
  std::string reasons;
  for (const auto& root : roots_) {
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), root->store.get(), leaf, untrusted.get()) != 1) {
      return absl::InternalError(StrCat("X509_STORE_CTX_init: ", TakeOpenSslErrors()));
    }
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), now);
    std::string problem;
    if (X509_verify_cert(ctx.get()) == 1) {
      STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
      for (int d = 1; d < sk_X509_num(chain) && problem.empty(); ++d) {
        X509* ca = sk_X509_value(chain, d);
        if (auto bad = CaConstraintProblem(ca)) {
          problem = StrCat("CA certificate ", SubjectOf(ca), " at depth ", d, " ", *bad);
        }
      }
      if (problem.empty()) {
        ERR_clear_error();
        return ToDer(leaf);
      }
    } else {
      const int err = X509_STORE_CTX_get_error(ctx.get());
      const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
      X509* at = X509_STORE_CTX_get_current_cert(ctx.get());
      problem = StrCat(X509_verify_cert_error_string(err), " at depth ", depth,
                       at != nullptr ? StrCat(" (", SubjectOf(at), ")") : std::string());
    }
    StrAppend(&reasons, reasons.empty() ? "" : "; ", "root ", root->file, " (", root->subject,
              "): ", problem);
  }
  ERR_clear_error();
  return absl::PermissionDeniedError(StrCat("certificate ", subject,
                                            " is not trusted by any root certificate in ",
                                            dir_.string(), ": ", reasons));
}

absl::Status CheckTlsIdentity(std::string_view cert_pem, std::string_view key_pem,
                              std::string_view ca_pem, TlsUse use) {
  OTA_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificates(cert_pem, "certificate"));
  OTA_ASSIGN_OR_RETURN(std::vector<X509Ptr> cas, ParseCertificates(ca_pem, "CA"));
  X509* leaf = certs.front().get();
  const std::string subject = SubjectOf(leaf);

  ERR_clear_error();
  OTA_ASSIGN_OR_RETURN(BioPtr key_bio, MemoryBio(key_pem, "key"));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        StrCat("key: not an unencrypted PEM private key: ", TakeOpenSslErrors()));
  }
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        StrCat("key: does not belong to the certificate ", subject, " (another key pair)"));
  }

  X509StorePtr store(X509_STORE_new());
  if (!store) return absl::InternalError("X509_STORE_new failed");
  for (const X509Ptr& ca : cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) {  // takes its own reference
      return absl::InternalError(StrCat("X509_STORE_add_cert: ", TakeOpenSslErrors()));
    }
  }
  BorrowedX509Stack untrusted(sk_X509_new_null());
  if (!untrusted) return absl::InternalError("sk_X509_new_null failed");
  for (size_t i = 1; i < certs.size(); ++i) {
    if (sk_X509_push(untrusted.get(), certs[i].get()) <= 0) {
      return absl::InternalError("sk_X509_push failed");
    }
  }
  struct Check {
    int purpose;
    std::string_view role;
  };
  std::vector<Check> checks = {{X509_PURPOSE_SSL_CLIENT, "TLS client"}};
  if (use == TlsUse::kClientAndServer) checks.push_back({X509_PURPOSE_SSL_SERVER, "TLS server"});
  for (const Check& check : checks) {
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
      return absl::InternalError(StrCat("X509_STORE_CTX_init: ", TakeOpenSslErrors()));
    }
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_NO_CHECK_TIME);
    if (X509_STORE_CTX_set_purpose(ctx.get(), check.purpose) != 1) {
      return absl::InternalError(StrCat("X509_STORE_CTX_set_purpose: ", TakeOpenSslErrors()));
    }
    if (X509_verify_cert(ctx.get()) != 1) {
      const int err = X509_STORE_CTX_get_error(ctx.get());
      ERR_clear_error();
      if (err == X509_V_ERR_INVALID_PURPOSE) {
        return absl::InvalidArgumentError(StrCat(
            "certificate: ", subject, " may not be used as a ", check.role,
            " (its extendedKeyUsage must allow ",
            use == TlsUse::kClientAndServer ? "serverAuth and clientAuth" : "clientAuth", ")"));
      }
      return absl::InvalidArgumentError(
          StrCat("certificate: ", subject,
                 " does not chain to the CA: ", X509_verify_cert_error_string(err), " at depth ",
                 X509_STORE_CTX_get_error_depth(ctx.get())));
    }
  }
  ERR_clear_error();
  return absl::OkStatus();
}

}  // namespace ota::crypto
