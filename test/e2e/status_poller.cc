// Polls Status of one otaclient without pause until a stop file appears, over a kept channel and
// over a fresh connection per call, and reports every failure: the e2e check that a ClientUpdate
// hand-over leaves no moment in which Status is not answered (client_update_e2e.sh).
//
//   status_poller HOST:PORT ECU_ID STOP_FILE
// Prints "calls=<n> failures=<n over new connections> kept_failures=<codes> versions=<v1>,<v2>,...
// kept=<v1>,..." (the ECU's otaclient_version each time it changed, over new connections and over
// the kept channel) on stdout, each failure on stderr; exit 0 (the script judges), 2 on usage.
#include <sys/stat.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace {

std::shared_ptr<grpc::Channel> Channel(const std::string& target, bool fresh) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  // A channel of its own connection, not one shared through the global subchannel pool.
  if (fresh) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: status_poller HOST:PORT ECU_ID STOP_FILE\n";
    return 2;
  }
  const std::string target = argv[1];
  const std::string ecu_id = argv[2];
  const std::string stop_file = argv[3];
  auto kept = OtaClientV2::OtaClientService::NewStub(Channel(target, false));
  long calls = 0;
  long failures = 0;          // over new connections
  std::string kept_failures;  // the status codes of the kept channel's failures, in order
  std::vector<std::string> versions[2];  // kept channel, new connections
  struct stat st {};
  for (long i = 0; ::stat(stop_file.c_str(), &st) != 0; ++i) {
    const bool fresh = i % 2 == 1;
    std::unique_ptr<OtaClientV2::OtaClientService::Stub> once;
    if (fresh) once = OtaClientV2::OtaClientService::NewStub(Channel(target, true));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    OtaClientV2::StatusResponse response;
    const grpc::Status status =
        (fresh ? once : kept)->Status(&context, OtaClientV2::StatusRequest(), &response);
    ++calls;
    if (!status.ok()) {
      if (fresh) {
        ++failures;
      } else {
        kept_failures += (kept_failures.empty() ? "" : ",") + std::to_string(status.error_code());
      }
      std::cerr << "call " << calls << (fresh ? " (new connection)" : " (kept channel)")
                << " failed: " << status.error_code() << " " << status.error_message() << "\n";
      continue;
    }
    for (const auto& ecu : response.ecu_v2()) {
      if (ecu.ecu_id() != ecu_id) continue;
      std::vector<std::string>& seen = versions[fresh ? 1 : 0];
      if (seen.empty() || seen.back() != ecu.otaclient_version()) {
        seen.push_back(ecu.otaclient_version());
      }
    }
  }
  auto join = [](const std::vector<std::string>& seen) {
    std::string out;
    for (const std::string& v : seen) out += (out.empty() ? "" : ",") + v;
    return out;
  };
  std::cout << "calls=" << calls << " failures=" << failures << " kept_failures=" << kept_failures
            << " versions=" << join(versions[1]) << " kept=" << join(versions[0]) << "\n";
  return 0;
}
