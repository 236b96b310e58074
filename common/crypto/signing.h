// ES256 (ECDSA P-256 + SHA-256) signatures and the local CA-group trust store.
#pragma once

#include <ctime>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::crypto {

// Verifies `signature` over `data` with the public key of the PEM certificate `cert_pem` (the
// first certificate when the PEM holds several). Accepts a DER-encoded ECDSA signature (what the
// image generator writes) or raw r||s (64 bytes, EC keys only). SHA-256 digest.
// Errors: kPermissionDenied "signature does not verify", kInvalidArgument for an unparsable cert.
absl::Status VerifySignature(std::string_view cert_pem, std::string_view data,
                             std::string_view signature);

// Signs `data` with the PEM private key (EC P-256) and returns a DER-encoded signature.
absl::StatusOr<std::string> SignEs256(std::string_view key_pem, std::string_view data);

// JWS ES256 as OTA image v1 signs index.jwt: `signature` must be the 64-byte raw r||s (not DER)
// and the certificate's key EC P-256. `cert_der` is one DER certificate.
// Errors: kPermissionDenied (wrong size, wrong key type, does not verify), kInvalidArgument for an
// unparsable certificate.
absl::Status VerifyJwsEs256(std::string_view cert_der, std::string_view signing_input,
                            std::string_view signature);
// Signs `data` like SignEs256 and returns the 64-byte raw r||s form.
absl::StatusOr<std::string> SignEs256Raw(std::string_view key_pem, std::string_view data);

// One x5c entry (RFC 7515 §4.1.6: standard base64 of a DER certificate; images signed by
// ota-image-libs before 2026-01 carry a PEM string instead, also accepted) → DER.
absl::StatusOr<std::string> X5cEntryToDer(std::string_view entry);
// Certificates of a PEM text → x5c entries (standard base64 DER), in order.
absl::StatusOr<std::vector<std::string>> PemToX5c(std::string_view pem);

// Trust anchors from a certs dir, two views of the same files:
//  - legacy CA groups: every `<group>.<name>.pem` file; files sharing the group prefix (the name
//    minus its last two dot-components: "0.root.pem" and "0.interm.pem" → "0") form one store. A
//    certificate is trusted when any group, tried in sorted order, verifies its chain.
//  - OTA image v1 roots: every `*.pem` or `*.crt` file holding a self-signed certificate is a
//    root of its own (files that are not, or do not parse, are not roots); intermediates come only
//    from the image's x5c (VerifyX5cChain).
// What a TLS identity is used for; its certificate's extendedKeyUsage must allow it (a
// certificate without that extension allows both).
enum class TlsUse { kClient, kClientAndServer };

// Checks a TLS identity as gRPC takes it (PEM texts) before it is used, so that a mistake is one
// clear startup error instead of failing handshakes: `cert_pem` (the leaf, optionally followed by
// intermediates) must carry the public key of `key_pem` (an unencrypted PEM private key), chain to
// a certificate in `ca_pem` and allow `use`. Validity dates are not checked: an ECU's clock may
// be wrong at boot, and every handshake checks them anyway. kInvalidArgument saying what is wrong
// ("certificate: ...", "key: ...", "CA: ...").
absl::Status CheckTlsIdentity(std::string_view cert_pem, std::string_view key_pem,
                              std::string_view ca_pem, TlsUse use);

class CaStore {
 public:
  // Loads the groups in `dir`. A missing or empty dir gives an empty store (see empty()).
  // Unreadable or unparsable PEM files are errors naming the file.
  static absl::StatusOr<CaStore> LoadDir(const std::filesystem::path& dir);

  CaStore(CaStore&&) noexcept;
  CaStore& operator=(CaStore&&) noexcept;
  ~CaStore();

  bool empty() const;
  std::vector<std::string> group_names() const;
  // The directory the groups were loaded from (for messages).
  const std::filesystem::path& dir() const { return dir_; }

  // Verifies `cert_pem` (leaf, optionally followed by intermediates) against the groups, with
  // validity dates checked at `now`. kPermissionDenied naming every group tried when none verifies.
  absl::Status VerifyCertificate(std::string_view cert_pem, std::time_t now) const;

  bool v1_roots_empty() const;
  // OTA image v1 chain policy (reference/ota-image-v1.md §5.3, §5.5): `x5c` holds 1 to 6
  // certificates (any order, see X5cEntryToDer), none self-signed, forming exactly one linear
  // chain from the signing certificate (the one that issued none of the others); it must reach one
  // of the v1 roots using only those intermediates; every CA certificate on the path (the root
  // included) carries a critical basicConstraints with CA=TRUE and respects pathLen; validity
  // periods at `now`. Returns the signing certificate (DER). kPermissionDenied naming the
  // certificate and the problem; kInvalidArgument for an x5c that does not parse.
  absl::StatusOr<std::string> VerifyX5cChain(std::span<const std::string> x5c,
                                             std::time_t now) const;

 private:
  struct Group;
  CaStore();
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<Group>> groups_;
  absl::Status LoadV1Roots();
  struct Root;
  std::vector<std::unique_ptr<Root>> roots_;
};

}  // namespace ota::crypto
