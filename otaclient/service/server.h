// Builds and starts the gRPC server that carries the OtaClientService, with server reflection
// (grpcurl works without the .proto) and the standard grpc.health.v1 service.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"

namespace ota::service {

inline constexpr int kDefaultPort = 50051;

struct ServerOptions {
  std::string listen_address = "localhost";  // ecu_info.ip_addr; IPv6 literals with or without []
  int port = kDefaultPort;                   // 0: the kernel picks a free port
  // Sync-server thread cap. Update handlers only wait for the engine's ack and Status never
  // blocks, but a few slow clients must not starve Status: keep well above the original's 2.
  int max_threads = 16;
  // nullptr: plain gRPC (as the vehicles in the field expect); else e.g. mutual TLS
  // (common/crypto/grpc_tls.h).
  std::shared_ptr<grpc::ServerCredentials> credentials = nullptr;
  // SO_REUSEPORT on the listener, so that the client a ClientUpdate starts can listen on the
  // same port before this one stops (port_handover.h). Only with a PortLock held: without it a
  // second daemon would share the port silently.
  bool share_port = false;
};

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;         // the port actually bound
  std::string address;  // "host:port" as bound
};

// "host:port", bracketing bare IPv6 literals.
std::string JoinHostPort(const std::string& host, int port);

// Registers `service` (not owned; must outlive the server), binds with options.credentials and
// starts serving.
// kUnavailable when the address cannot be bound.
absl::StatusOr<RunningServer> StartServer(grpc::Service& service, const ServerOptions& options);

}  // namespace ota::service
