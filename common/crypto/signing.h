// ES256 (ECDSA P-256 + SHA-256) signatures and the local CA-group trust store.
#pragma once

#include <ctime>
#include <filesystem>
#include <memory>
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

// Trust anchors from a certs dir: every `<group>.<name>.pem` file; files sharing the group prefix
// (the name minus its last two dot-components: "0.root.pem" and "0.interm.pem" → "0") form one
// store. A certificate is trusted when any group, tried in sorted order, verifies its chain.
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

 private:
  struct Group;
  CaStore();
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<Group>> groups_;
};

}  // namespace ota::crypto
