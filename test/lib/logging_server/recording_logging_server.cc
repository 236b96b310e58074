// A stand-in for the fleet's otaclient-iot-logging-server that records what it receives: the
// gRPC service OTAClientIoTLoggingService (PutLog, Check) and the HTTP API (POST /<ecu_id>) on
// --address (default 127.0.0.1), each record appended to --out as one JSON line, flushed at once so
// tests can poll:
//   {"transport":"grpc","ecu_id":"...","log_type":"LOG"|"METRICS","level":3,"timestamp":0,
//    "message":"..."}
//   {"transport":"http","ecu_id":"...","log_type":"","level":0,"timestamp":0,"message":"..."}
// Like the real server: an empty message is refused (NO_MESSAGE / HTTP 400) and not recorded;
// with --allowed-ecu only those ids are taken (NOT_ALLOWED_ECU_ID / 400); Check answers SERVING.
//
//   --address A                     the loopback address to listen on (127.0.0.x)
//   --grpc-port N | --no-grpc       gRPC port (0: any free one, written to --grpc-port-file)
//   --http-port N | --no-http       HTTP port (idem, --http-port-file)
//   --grpc-port-file F, --http-port-file F   "<port>\n", written atomically once listening
//   --out FILE                      where records go (appended)
//   --delay-ms N                    answer every non-empty PutLog/POST only after N ms (a
//                                   stalled server; Check and the empty probe answer at once)
//   --busy-first N                  answer the first N records SERVER_QUEUE_FULL / HTTP 503
//   --allowed-ecu ID                (repeatable) refuse other ecu ids
//   --no-check                      Check answers UNIMPLEMENTED (an old server: HTTP is used)
// Stops on SIGTERM/SIGINT.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>  // before Boost.Asio, whose awaitable.hpp uses std::exchange
#include <vector>

#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "common/fs/fs.h"
#include "common/util/json.h"
#include "common/util/strings.h"
#include "grpcpp/grpcpp.h"
#include "proto/otaclient_iot_logging_server_v1.grpc.pb.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

struct Options {
  std::string address = "127.0.0.1";
  std::optional<int> grpc_port = 0;
  std::optional<int> http_port = 0;
  std::string grpc_port_file, http_port_file, out;
  int delay_ms = 0;
  int busy_first = 0;
  std::set<std::string> allowed;
  bool no_check = false;
};

// What both APIs share: the filter, the busy counter, the delay and the output file.
class Recorder {
 public:
  explicit Recorder(const Options& options) : options_(options) {
    out_ = std::fopen(options.out.c_str(), "a");
  }
  ~Recorder() {
    if (out_ != nullptr) std::fclose(out_);
  }
  bool ok() const { return out_ != nullptr; }

  ErrorCode Put(std::string_view transport, std::string_view ecu_id, std::string_view log_type,
                int level, uint64_t timestamp, std::string_view message) {
    // Refused at once, like the real server; the probe of the client (an empty POST) is too.
    if (message.empty()) return NO_MESSAGE;
    if (options_.delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.delay_ms));
    }
    if (!options_.allowed.empty() && options_.allowed.count(std::string(ecu_id)) == 0) {
      return NOT_ALLOWED_ECU_ID;
    }
    if (busy_left_.fetch_sub(1) > 0) return SERVER_QUEUE_FULL;
    std::string line = "{\"transport\":";
    ota::AppendJsonString(&line, transport);
    line.append(",\"ecu_id\":");
    ota::AppendJsonString(&line, ecu_id);
    line.append(",\"log_type\":");
    ota::AppendJsonString(&line, log_type);
    ota::StrAppend(&line, ",\"level\":", level, ",\"timestamp\":", timestamp, ",\"message\":");
    ota::AppendJsonString(&line, message);
    line.append("}\n");
    std::lock_guard<std::mutex> lock(mu_);
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
    return NO_FAILURE;
  }

 private:
  const Options& options_;
  std::atomic<int> busy_left_{options_.busy_first};
  std::mutex mu_;
  FILE* out_ = nullptr;
};

class GrpcService final : public OTAClientIoTLoggingService::Service {
 public:
  GrpcService(Recorder& recorder, bool no_check) : recorder_(recorder), no_check_(no_check) {}

  grpc::Status PutLog(grpc::ServerContext*, const PutLogRequest* request,
                      PutLogResponse* response) override {
    response->set_code(recorder_.Put("grpc", request->ecu_id(), LogType_Name(request->log_type()),
                                     request->level(), request->timestamp(), request->message()));
    return grpc::Status::OK;
  }

  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest*,
                     HealthCheckResponse* response) override {
    if (no_check_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no Check here");
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }

 private:
  Recorder& recorder_;
  const bool no_check_;
};

// One keep-alive HTTP/1.1 connection: POST /<ecu_id> records the body.
void ServeHttpConnection(asio::ip::tcp::socket socket, Recorder& recorder) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  for (;;) {
    bhttp::request<bhttp::string_body> request;
    bhttp::read(socket, buffer, request, ec);
    if (ec) return;
    bhttp::status status = bhttp::status::not_found;
    const std::string_view target(request.target().data(), request.target().size());
    if (request.method() == bhttp::verb::post && target.size() > 1 && target.front() == '/' &&
        target.find('/', 1) == std::string_view::npos) {
      const ErrorCode code = recorder.Put("http", target.substr(1), "", 0, 0, request.body());
      status = code == NO_FAILURE          ? bhttp::status::ok
               : code == SERVER_QUEUE_FULL ? bhttp::status::service_unavailable
                                           : bhttp::status::bad_request;
    }
    bhttp::response<bhttp::string_body> response(status, request.version());
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    bhttp::write(socket, response, ec);
    if (ec || !request.keep_alive()) return;
  }
}

[[noreturn]] void Usage(const std::string& message) {
  std::cerr << "recording_logging_server: " << message << "\n";
  std::_Exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& name = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) Usage(name + " needs a value");
      return args[++i];
    };
    auto number = [&]() {
      const std::string text = value();
      const std::optional<int> n = ota::ParseDecimal<int>(text);
      if (!n.has_value() || *n < 0) Usage(name + ": not a number: " + text);
      return *n;
    };
    if (name == "--address") {
      options.address = value();
    } else if (name == "--grpc-port") {
      options.grpc_port = number();
    } else if (name == "--no-grpc") {
      options.grpc_port.reset();
    } else if (name == "--http-port") {
      options.http_port = number();
    } else if (name == "--no-http") {
      options.http_port.reset();
    } else if (name == "--grpc-port-file") {
      options.grpc_port_file = value();
    } else if (name == "--http-port-file") {
      options.http_port_file = value();
    } else if (name == "--out") {
      options.out = value();
    } else if (name == "--delay-ms") {
      options.delay_ms = number();
    } else if (name == "--busy-first") {
      options.busy_first = number();
    } else if (name == "--allowed-ecu") {
      options.allowed.insert(value());
    } else if (name == "--no-check") {
      options.no_check = true;
    } else {
      Usage("unknown option " + name);
    }
  }
  if (options.out.empty()) Usage("--out FILE is required");
  return options;
}

void WritePortFile(const std::string& file, int port) {
  if (file.empty()) return;
  if (!ota::fs::WriteFileAtomic(file, ota::StrCat(port, "\n")).ok()) {
    Usage("cannot write " + file);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  Recorder recorder(options);
  if (!recorder.ok()) Usage("cannot open " + options.out);

  GrpcService service(recorder, options.no_check);
  std::unique_ptr<grpc::Server> grpc_server;
  if (options.grpc_port.has_value()) {
    int bound = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(ota::StrCat(options.address, ":", *options.grpc_port),
                             grpc::InsecureServerCredentials(), &bound);
    builder.RegisterService(&service);
    grpc_server = builder.BuildAndStart();
    if (grpc_server == nullptr || bound == 0) Usage("cannot listen for gRPC");
    WritePortFile(options.grpc_port_file, bound);
  }

  asio::io_context io;
  std::optional<asio::ip::tcp::acceptor> acceptor;
  std::thread http_thread;
  if (options.http_port.has_value()) {
    beast::error_code ec;
    acceptor.emplace(io);
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(options.address),
                                           static_cast<uint16_t>(*options.http_port));
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) Usage("cannot listen for HTTP: " + ec.message());
    WritePortFile(options.http_port_file, acceptor->local_endpoint().port());
    http_thread = std::thread([&] {
      for (;;) {
        asio::ip::tcp::socket socket(io);
        beast::error_code accept_ec;
        acceptor->accept(socket, accept_ec);
        if (accept_ec) return;  // closed at stop
        std::thread(ServeHttpConnection, std::move(socket), std::ref(recorder)).detach();
      }
    });
  }

  int signal_number = 0;
  sigwait(&stop, &signal_number);
  if (grpc_server != nullptr) {
    grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  if (acceptor.has_value()) {
    beast::error_code ec;
    acceptor->cancel(ec);
    acceptor->close(ec);
  }
  // Connection threads are detached and may still block in a read: leave without unwinding.
  std::fflush(nullptr);
  std::_Exit(0);
}
