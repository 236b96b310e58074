// Optional mutual TLS for the OtaClientV2 gRPC service (otaclient's server, its calls to the
// secondaries, otactl): three PEM files given by --grpc-tls-cert, --grpc-tls-key and
// --grpc-tls-ca, all three or none. None: plain gRPC, as the vehicles in the field expect.
//
// With TLS, every peer presents a certificate signed by the CA and checks the other's: the
// server requires and verifies a client certificate; a client checks that the server's
// certificate chains to the CA and names the host it dialled. ECUs are dialled by the IP address
// in ecu_info.yaml, so an ECU's certificate carries that address as an IP subjectAltName (and
// 127.0.0.1 if otactl on the ECU itself dials it there). No name override: a certificate of one
// ECU cannot stand in for another.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/signing.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace ota::crypto {

// The three file paths as given on the command line ("" = not given).
struct GrpcTlsFiles {
  std::string cert;  // --grpc-tls-cert: this side's certificate (+ intermediates), PEM
  std::string key;   // --grpc-tls-key: its private key, unencrypted PEM
  std::string ca;    // --grpc-tls-ca: the CA certificate(s) the peers' certificates chain to

  bool any() const { return !cert.empty() || !key.empty() || !ca.empty(); }
};

// The loaded, checked PEM texts.
struct GrpcTlsIdentity {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_pem;
};

// Option names (flags) used in messages and help texts.
inline constexpr char kGrpcTlsCertFlag[] = "--grpc-tls-cert";
inline constexpr char kGrpcTlsKeyFlag[] = "--grpc-tls-key";
inline constexpr char kGrpcTlsCaFlag[] = "--grpc-tls-ca";

// nullopt when no file is given (plain gRPC). Otherwise reads the three files and checks them
// (CheckTlsIdentity: the key belongs to the certificate, which chains to the CA and allows
// `use`). Errors name the option and file at fault: kInvalidArgument when only some of the three
// are given ("... missing: --grpc-tls-key"), the read error of an unreadable file, kInvalidArgument
// for contents that do not fit.
absl::StatusOr<std::optional<GrpcTlsIdentity>> LoadGrpcTls(const GrpcTlsFiles& files, TlsUse use);

// Server side: plain when `identity` is nullopt, else TLS that requires a client certificate
// signed by the CA (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(
    const std::optional<GrpcTlsIdentity>& identity);

// Client side: plain when `identity` is nullopt, else TLS presenting the certificate and checking
// the server's against the CA and the dialled host.
std::shared_ptr<grpc::ChannelCredentials> GrpcChannelCredentials(
    const std::optional<GrpcTlsIdentity>& identity);

}  // namespace ota::crypto
