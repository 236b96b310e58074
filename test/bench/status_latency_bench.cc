// Status latency of otaclient as a client sees it. With several targets the calls are
// interleaved (target 1, target 2, ..., target 1, ...) over one channel per target, so every
// target is measured under the same load at the same moments: the comparison stays fair while
// the machine moves through an update's phases. One line per target:
//   <label> calls=N p50_us=.. p99_us=.. max_us=.. slow=<calls over 5 ms> ecus=<ecu_v2 entries>
// Usage: status_latency_bench --target [LABEL=]HOST:PORT [--target ...] [--calls N]
//                             [--seconds S]
// With --seconds, calls go on until S seconds have passed (and at least N calls per target).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace {

constexpr auto kSlowCall = std::chrono::milliseconds(5);

int Usage() {
  std::cerr << "usage: status_latency_bench --target [LABEL=]HOST:PORT [--target ...] "
               "[--calls N] [--seconds S]\n";
  return 2;
}

bool ParsePositive(const std::string& text, int* out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= 1;
}

struct Target {
  std::string label;
  std::string address;
  std::unique_ptr<OtaClientV2::OtaClientService::Stub> stub;
  std::vector<double> micros;
  int ecus = 0;
};

grpc::Status CallStatus(Target& target) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  OtaClientV2::StatusResponse response;
  const grpc::Status status = target.stub->Status(&context, {}, &response);
  target.ecus = response.ecu_v2_size();
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Target> targets;
  int calls = 2000;
  int seconds = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i], value = argv[i + 1];
    if (name == "--target") {
      Target target;
      const size_t eq = value.find('=');
      target.address = eq == std::string::npos ? value : value.substr(eq + 1);
      target.label = eq == std::string::npos ? value : value.substr(0, eq);
      if (target.address.empty()) return Usage();
      targets.push_back(std::move(target));
    } else if (name == "--calls") {
      if (!ParsePositive(value, &calls)) return Usage();
    } else if (name == "--seconds") {
      if (!ParsePositive(value, &seconds)) return Usage();
    } else {
      return Usage();
    }
  }
  if (targets.empty() || argc % 2 == 0) return Usage();

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  for (Target& target : targets) {
    target.stub = OtaClientV2::OtaClientService::NewStub(
        grpc::CreateCustomChannel(target.address, grpc::InsecureChannelCredentials(), args));
    for (int i = 0; i < 50; ++i) {  // warm-up: connection, HTTP/2 settings, first allocations
      if (const grpc::Status s = CallStatus(target); !s.ok()) {
        std::cerr << "status_latency_bench: Status on " << target.address
                  << " failed: " << s.error_message() << "\n";
        return 1;
      }
    }
    target.micros.reserve(static_cast<size_t>(calls));
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (int i = 0; i < calls || std::chrono::steady_clock::now() < until; ++i) {
    for (Target& target : targets) {
      const auto start = std::chrono::steady_clock::now();
      const grpc::Status s = CallStatus(target);
      const auto took = std::chrono::steady_clock::now() - start;
      if (!s.ok()) {
        std::cerr << "status_latency_bench: call " << i << " to " << target.address
                  << " failed: " << s.error_message() << "\n";
        return 1;
      }
      target.micros.push_back(std::chrono::duration<double, std::micro>(took).count());
    }
  }
  for (Target& target : targets) {
    std::vector<double>& micros = target.micros;
    std::sort(micros.begin(), micros.end());
    auto percentile = [&](double p) {
      return micros[std::min(micros.size() - 1, static_cast<size_t>(p * micros.size()))];
    };
    const auto slow =
        micros.end() -
        std::upper_bound(micros.begin(), micros.end(),
                         std::chrono::duration<double, std::micro>(kSlowCall).count());
    std::printf("%s calls=%zu p50_us=%.0f p99_us=%.0f max_us=%.0f slow=%td ecus=%d\n",
                target.label.c_str(), micros.size(), percentile(0.50), percentile(0.99),
                micros.back(), slow, target.ecus);
  }
  return 0;
}
