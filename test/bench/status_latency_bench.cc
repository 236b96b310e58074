// Status latency of one otaclient as a client sees it: N sequential Status calls over one
// channel (after a warm-up), printed as one line
//   <label> calls=N p50_us=.. p99_us=.. max_us=.. ecus=<ecu_v2 entries of the last answer>
// Usage: status_latency_bench --target HOST:PORT [--calls N] [--label TEXT]
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace {

int Usage() {
  std::cerr << "usage: status_latency_bench --target HOST:PORT [--calls N] [--label TEXT]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, label = "status";
  int calls = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i], value = argv[i + 1];
    if (name == "--target") {
      target = value;
    } else if (name == "--label") {
      label = value;
    } else if (name == "--calls") {
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), calls);
      if (error != std::errc() || end != value.data() + value.size() || calls < 1) return Usage();
    } else {
      return Usage();
    }
  }
  if (target.empty() || argc % 2 == 0) return Usage();

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  auto stub = OtaClientV2::OtaClientService::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  OtaClientV2::StatusResponse response;
  auto call = [&]() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    response.Clear();
    return stub->Status(&context, {}, &response);
  };
  for (int i = 0; i < 50; ++i) {
    if (const grpc::Status s = call(); !s.ok()) {
      std::cerr << "status_latency_bench: Status on " << target << " failed: " << s.error_message()
                << "\n";
      return 1;
    }
  }
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const grpc::Status s = call();
    const auto took = std::chrono::steady_clock::now() - start;
    if (!s.ok()) {
      std::cerr << "status_latency_bench: call " << i << " failed: " << s.error_message() << "\n";
      return 1;
    }
    micros.push_back(std::chrono::duration<double, std::micro>(took).count());
  }
  std::sort(micros.begin(), micros.end());
  auto percentile = [&](double p) {
    return micros[std::min(micros.size() - 1, static_cast<size_t>(p * micros.size()))];
  };
  std::printf("%s calls=%d p50_us=%.0f p99_us=%.0f max_us=%.0f ecus=%d\n", label.c_str(), calls,
              percentile(0.50), percentile(0.99), micros.back(), response.ecu_v2_size());
  return 0;
}
