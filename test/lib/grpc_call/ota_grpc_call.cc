// ota-grpc-call: sends ONE OtaClientV2 call exactly as written, for shell tests that need
// requests no well-behaved client (otactl validates what it sends) would make: megabytes of URL,
// thousands of entries, NUL bytes, broken cookies. The request is a text-format protobuf file
// (so a test writes it with printf; escapes such as \000 or \r work), sent with a 64 MiB send
// limit. Prints one JSON line: {"code": "INVALID_ARGUMENT", "message": "...", "ms": 12,
// "response": {...}} (response only when the call succeeded; proto field names).
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "proto/otaclient_v2.grpc.pb.h"

namespace {

constexpr char kUsage[] =
    R"(Usage: ota-grpc-call --target HOST:PORT --rpc Update|Abort|Rollback|Status
                     [--request FILE] [--timeout SECONDS]

FILE: the request as a text-format protobuf (UpdateRequest, AbortRequest or RollbackRequest;
none for Status). Exit status: 0 the call was made (whatever its gRPC code), 1 the request file
cannot be read or parsed, 2 bad command line.
)";

[[noreturn]] void Usage(const std::string& message) {
  std::cerr << "ota-grpc-call: " << message << "\n" << kUsage;
  std::exit(2);
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "?";
  }
}

template <typename Request>
Request ReadRequest(const std::string& file) {
  Request request;
  if (file.empty()) return request;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "ota-grpc-call: cannot read " << file << "\n";
    std::exit(1);
  }
  std::stringstream text;
  text << in.rdbuf();
  if (!google::protobuf::TextFormat::ParseFromString(text.str(), &request)) {
    std::cerr << "ota-grpc-call: " << file << " is not a text-format "
              << Request::descriptor()->full_name() << "\n";
    std::exit(1);
  }
  return request;
}

// Makes the call, prints its JSON line.
template <typename Request, typename Response, typename Call>
void Run(const std::string& file, std::chrono::seconds timeout, const Call& call) {
  const Request request = ReadRequest<Request>(file);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  Response response;
  const auto start = std::chrono::steady_clock::now();
  const grpc::Status status = call(&context, request, &response);
  const auto took = std::chrono::steady_clock::now() - start;
  nlohmann::json line;
  line["code"] = CodeName(status.error_code());
  line["message"] = status.error_message();
  line["ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  if (status.ok()) {
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string json;
    if (google::protobuf::util::MessageToJsonString(response, &json, options).ok()) {
      line["response"] = nlohmann::json::parse(json);
    }
  }
  // Replacing invalid UTF-8 keeps the line printable whatever the server said.
  std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, rpc, file;
  long timeout_s = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= argc) Usage(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--target") {
      target = value;
    } else if (arg == "--rpc") {
      rpc = value;
    } else if (arg == "--request") {
      file = value;
    } else if (arg == "--timeout") {
      timeout_s = std::strtol(value.c_str(), nullptr, 10);
      if (timeout_s <= 0) Usage("--timeout must be a positive number of seconds");
    } else {
      Usage("unknown option " + arg);
    }
  }
  if (target.empty() || rpc.empty()) Usage("--target and --rpc are required");
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  args.SetMaxSendMessageSize(64 << 20);
  auto stub = OtaClientV2::OtaClientService::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  const std::chrono::seconds timeout(timeout_s);
  if (rpc == "Update") {
    Run<OtaClientV2::UpdateRequest, OtaClientV2::UpdateResponse>(
        file, timeout,
        [&](grpc::ClientContext* c, const auto& q, auto* r) { return stub->Update(c, q, r); });
  } else if (rpc == "Abort") {
    Run<OtaClientV2::AbortRequest, OtaClientV2::AbortResponse>(
        file, timeout,
        [&](grpc::ClientContext* c, const auto& q, auto* r) { return stub->Abort(c, q, r); });
  } else if (rpc == "Rollback") {
    Run<OtaClientV2::RollbackRequest, OtaClientV2::RollbackResponse>(
        file, timeout,
        [&](grpc::ClientContext* c, const auto& q, auto* r) { return stub->Rollback(c, q, r); });
  } else if (rpc == "Status") {
    Run<OtaClientV2::StatusRequest, OtaClientV2::StatusResponse>(
        file, timeout,
        [&](grpc::ClientContext* c, const auto& q, auto* r) { return stub->Status(c, q, r); });
  } else {
    Usage("unknown --rpc " + rpc);
  }
  return 0;
}
