#include "otaclient/service/server.h"

#include "absl/synchronization/mutex.h"
#include "common/util/strings.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "otaclient/service/request_limits.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace ota::service {

std::string JoinHostPort(const std::string& host, int port) {
  const bool bare_ipv6 = host.find(':') != std::string::npos && !host.starts_with('[');
  return bare_ipv6 ? StrCat("[", host, "]:", port) : StrCat(host, ":", port);
}

absl::StatusOr<RunningServer> StartServer(grpc::Service& service, const ServerOptions& options) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(StrCat("listen port ", options.port, " is out of range"));
  }
  // Both are process-wide switches read when a builder is created.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // Debian builds abseil without NDEBUG, so every absl::Mutex lock (gRPC takes several per call)
  // also updates the deadlock detector's lock graph: about 9% of the server's CPU per Status call
  // under load (perf). That is a debugging aid for absl's own tests, not for a daemon.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  const std::string address = JoinHostPort(options.listen_address, options.port);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  // gRPC sets SO_REUSEPORT by default: a second daemon would then share the port silently.
  // Shared only under a PortLock (port_handover.h).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, options.share_port ? 1 : 0);
  builder.AddListeningPort(
      address,
      options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
      &bound_port);
  builder.RegisterService(&service);
  // Requests are small; a bigger message is refused by gRPC (RESOURCE_EXHAUSTED) before it is
  // read into memory.
  builder.SetMaxReceiveMessageSize(kMaxRequestMessageBytes);
  grpc::ResourceQuota quota("otaclient-service");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  // Only Update, ClientUpdate, Abort and Rollback use this pool; Status is a callback method.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);

  RunningServer running;
  running.server = builder.BuildAndStart();
  if (running.server == nullptr || bound_port == 0) {
    return absl::UnavailableError(
        StrCat("cannot listen for gRPC on ", address,
               " (address not local, or port in use; check ecu_info ip_addr and --listen-port)"));
  }
  // Health per service name too, so `grpc_health_probe -service=OtaClientV2.OtaClientService`
  // works, not only the server-wide "" entry.
  if (grpc::HealthCheckServiceInterface* health = running.server->GetHealthCheckService()) {
    health->SetServingStatus(OtaClientV2::OtaClientService::service_full_name(), true);
  }
  running.port = bound_port;
  running.address = JoinHostPort(options.listen_address, bound_port);
  return running;
}

}  // namespace ota::service
