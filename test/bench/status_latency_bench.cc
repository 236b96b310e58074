// Status latency of otaclient as a client sees it. With several targets the calls are
// interleaved (target 1, target 2, ..., target 1, ...) over one channel per target, so every
// target is measured under the same load at the same moments: the comparison stays fair while
// the machine moves through an update's phases. One line per target:
//   <label> calls=N p50_us=.. p99_us=.. max_us=.. slow=<calls over 5 ms> ecus=<ecu_v2 entries>
//           [in_flight=K failures=F]
// Usage: status_latency_bench --target [LABEL=]HOST:PORT [--target ...] [--calls N]
//                             [--seconds S] [--in-flight K]
// With --seconds, calls go on until S seconds have passed (and at least N calls per target).
// With --in-flight K (> 1), each target in turn gets N calls from K threads at once (K calls in
// flight all the time, over one channel); failed calls are counted, not fatal, and the exit
// status is 1 if there was any.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
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

grpc::Status CallStatus(OtaClientV2::OtaClientService::Stub& stub, int* ecus) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  OtaClientV2::StatusResponse response;
  const grpc::Status status = stub.Status(&context, {}, &response);
  *ecus = response.ecu_v2_size();
  return status;
}

grpc::Status CallStatus(Target& target) { return CallStatus(*target.stub, &target.ecus); }

// `calls` calls (at least; until `until`) from `in_flight` threads at once; returns the failures.
int RunConcurrent(Target& target, int calls, std::chrono::steady_clock::time_point until,
                  int in_flight, std::string* first_error) {
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::vector<double>> per_thread(static_cast<size_t>(in_flight));
  std::vector<std::string> errors(static_cast<size_t>(in_flight));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(in_flight));
  for (int t = 0; t < in_flight; ++t) {
    threads.emplace_back([&, t] {
      auto& micros = per_thread[static_cast<size_t>(t)];
      int ecus = 0;
      while (next.fetch_add(1) < calls || std::chrono::steady_clock::now() < until) {
        const auto start = std::chrono::steady_clock::now();
        const grpc::Status s = CallStatus(*target.stub, &ecus);
        const auto took = std::chrono::steady_clock::now() - start;
        if (!s.ok()) {
          failures++;
          if (errors[static_cast<size_t>(t)].empty())
            errors[static_cast<size_t>(t)] = s.error_message();
          continue;
        }
        micros.push_back(std::chrono::duration<double, std::micro>(took).count());
      }
      if (t == 0) target.ecus = ecus;
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const auto& micros : per_thread) {
    target.micros.insert(target.micros.end(), micros.begin(), micros.end());
  }
  for (const std::string& error : errors) {
    if (!error.empty()) {
      *first_error = error;
      break;
    }
  }
  return failures.load();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Target> targets;
  int calls = 2000;
  int seconds = 0;
  int in_flight = 1;
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
    } else if (name == "--in-flight") {
      if (!ParsePositive(value, &in_flight)) return Usage();
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
  std::vector<int> failures(targets.size(), 0);
  if (in_flight > 1) {
    for (size_t t = 0; t < targets.size(); ++t) {
      std::string first_error;
      const auto target_until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
      failures[t] = RunConcurrent(targets[t], calls, target_until, in_flight, &first_error);
      if (failures[t] > 0) {
        std::cerr << "status_latency_bench: " << failures[t] << " calls to " << targets[t].address
                  << " failed, the first: " << first_error << "\n";
      }
    }
  }
  for (int i = 0; in_flight == 1 && (i < calls || std::chrono::steady_clock::now() < until); ++i) {
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
  int failed = 0;
  for (size_t t = 0; t < targets.size(); ++t) {
    Target& target = targets[t];
    std::vector<double>& micros = target.micros;
    if (micros.empty()) micros.push_back(0);  // every call failed: printed as failures
    std::sort(micros.begin(), micros.end());
    auto percentile = [&](double p) {
      return micros[std::min(micros.size() - 1, static_cast<size_t>(p * micros.size()))];
    };
    const auto slow =
        micros.end() -
        std::upper_bound(micros.begin(), micros.end(),
                         std::chrono::duration<double, std::micro>(kSlowCall).count());
    std::printf("%s calls=%zu p50_us=%.0f p99_us=%.0f max_us=%.0f slow=%td ecus=%d",
                target.label.c_str(), micros.size(), percentile(0.50), percentile(0.99),
                micros.back(), slow, target.ecus);
    if (in_flight > 1) std::printf(" in_flight=%d failures=%d", in_flight, failures[t]);
    std::printf("\n");
    failed += failures[t];
  }
  return failed > 0 ? 1 : 0;
}
