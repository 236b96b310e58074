#include "common/crypto/grpc_tls.h"

#include <string_view>
#include <utility>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace ota::crypto {

absl::StatusOr<std::optional<GrpcTlsIdentity>> LoadGrpcTls(const GrpcTlsFiles& files, TlsUse use) {
  if (!files.any()) return std::nullopt;
  struct Option {
    std::string_view flag;
    const std::string& path;
    std::string* pem;
  };
  GrpcTlsIdentity identity;
  const Option options[] = {{kGrpcTlsCertFlag, files.cert, &identity.cert_pem},
                            {kGrpcTlsKeyFlag, files.key, &identity.key_pem},
                            {kGrpcTlsCaFlag, files.ca, &identity.ca_pem}};
  std::string missing;
  for (const Option& option : options) {
    if (option.path.empty()) StrAppend(&missing, missing.empty() ? "" : ", ", option.flag);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(StrCat("gRPC TLS needs all of ", kGrpcTlsCertFlag, ", ",
                                             kGrpcTlsKeyFlag, " and ", kGrpcTlsCaFlag,
                                             " (or none for plain gRPC); missing: ", missing));
  }
  for (const Option& option : options) {
    absl::StatusOr<std::string> text = fs::ReadFile(option.path);
    if (!text.ok()) return WithContext(text.status(), option.flag);
    *option.pem = *std::move(text);
  }
  if (absl::Status checked =
          CheckTlsIdentity(identity.cert_pem, identity.key_pem, identity.ca_pem, use);
      !checked.ok()) {
    return absl::InvalidArgumentError(StrCat("gRPC TLS (", kGrpcTlsCertFlag, " ", files.cert, ", ",
                                             kGrpcTlsKeyFlag, " ", files.key, ", ", kGrpcTlsCaFlag,
                                             " ", files.ca, "): ", checked.message()));
  }
  return identity;
}

std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(
    const std::optional<GrpcTlsIdentity>& identity) {
  if (!identity) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = identity->ca_pem;
  options.pem_key_cert_pairs.push_back({identity->key_pem, identity->cert_pem});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> GrpcChannelCredentials(
    const std::optional<GrpcTlsIdentity>& identity) {
  if (!identity) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = identity->ca_pem;
  options.pem_private_key = identity->key_pem;
  options.pem_cert_chain = identity->cert_pem;
  return grpc::SslCredentials(options);
}

}  // namespace ota::crypto
