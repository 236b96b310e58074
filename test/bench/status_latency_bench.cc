// Status latency of otaclient as a client sees it. With several targets the calls are
// interleaved (target 1, target 2, ..., target 1, ...) over one channel per target, so every
// target is measured under the same load at the same moments: the comparison stays fair while
// the machine moves through an update's phases. One line per target:
//   <label> calls=N p50_us=.. p99_us=.. max_us=.. slow=<calls over 5 ms> ecus=<ecu_v2 entries>
//           [in_flight=K channels=C failures=F]
// Usage: status_latency_bench --target [LABEL=]HOST:PORT [--target ...] [--calls N]
//                             [--seconds S] [--in-flight K [--channels C]]
// With --seconds, calls go on until S seconds have passed (and at least N calls per target).
// With --in-flight K (> 1), each target in turn gets N calls with K of them in flight all the
// time (asynchronous, from one thread; spread over C channels, 1 by default); failed calls are
// counted, not fatal, and the exit status is 1 if there was any.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/otaclient_v2.grpc.pb.h"

namespace {

constexpr auto kSlowCall = std::chrono::milliseconds(5);

int Usage() {
  std::cerr << "usage: status_latency_bench --target [LABEL=]HOST:PORT [--target ...] "
               "[--calls N] [--seconds S] [--in-flight K [--channels C]]\n";
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
  // --in-flight: one stub per channel (its own TCP connection), as separate callers have.
  std::vector<std::unique_ptr<OtaClientV2::OtaClientService::Stub>> channel_stubs;
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

// `calls` calls (at least; until `until`) with `in_flight` of them outstanding all the time,
// from one thread over a completion queue (asynchronous stubs): a finished call is replaced at
// once, so the server sees a steady `in_flight`, and the client's own cost per call is a few
// microseconds instead of a thread switch per call, so what is measured is the server. The
// calls are spread round-robin over the target's channels. Returns the failures.
int RunConcurrent(Target& target, int calls, std::chrono::steady_clock::time_point until,
                  int in_flight, std::string* first_error) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> context;
    OtaClientV2::StatusResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<OtaClientV2::StatusResponse>> reader;
    std::chrono::steady_clock::time_point start;
  };
  grpc::CompletionQueue queue;
  std::vector<Call> slots(static_cast<size_t>(in_flight));
  int started = 0;
  int failures = 0;
  size_t next_channel = 0;
  auto start_call = [&](size_t slot) {
    Call& call = slots[slot];
    call.context = std::make_unique<grpc::ClientContext>();
    call.context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    call.response.Clear();
    auto& stub = *target.channel_stubs[next_channel++ % target.channel_stubs.size()];
    call.start = std::chrono::steady_clock::now();
    call.reader = stub.PrepareAsyncStatus(call.context.get(), {}, &queue);
    call.reader->StartCall();
    call.reader->Finish(&call.response, &call.status, reinterpret_cast<void*>(slot));
    ++started;
  };
  auto want_more = [&] { return started < calls || std::chrono::steady_clock::now() < until; };
  int outstanding = 0;
  for (size_t slot = 0; slot < slots.size() && want_more(); ++slot, ++outstanding) start_call(slot);
  void* tag = nullptr;
  bool ok = false;
  while (outstanding > 0 && queue.Next(&tag, &ok)) {
    const auto slot = reinterpret_cast<size_t>(tag);
    Call& call = slots[slot];
    const auto took = std::chrono::steady_clock::now() - call.start;
    --outstanding;
    if (!ok || !call.status.ok()) {
      ++failures;
      if (first_error->empty()) *first_error = call.status.error_message();
    } else {
      target.micros.push_back(std::chrono::duration<double, std::micro>(took).count());
      target.ecus = call.response.ecu_v2_size();
    }
    if (want_more()) {
      start_call(slot);
      ++outstanding;
    }
  }
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  // The callers stand for other machines: spend as little of this machine's CPU as possible on
  // them. Debian's abseil keeps its lock-cycle detection on (no NDEBUG), which gRPC's client
  // path pays for on every call (the server turns it off too: otaclient/service/server.cc).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<Target> targets;
  int calls = 2000;
  int seconds = 0;
  int in_flight = 1;
  int channels = 1;
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
    } else if (name == "--channels") {
      if (!ParsePositive(value, &channels)) return Usage();
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
    for (int c = 0; c < channels; ++c) {
      grpc::ChannelArguments own = args;
      // A channel of its own, not a shared subchannel: one connection per simulated caller.
      own.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      own.SetInt("ota.bench.channel", c);
      target.channel_stubs.push_back(OtaClientV2::OtaClientService::NewStub(
          grpc::CreateCustomChannel(target.address, grpc::InsecureChannelCredentials(), own)));
      int ecus = 0;
      if (const grpc::Status s = CallStatus(*target.channel_stubs.back(), &ecus); !s.ok()) {
        std::cerr << "status_latency_bench: Status on " << target.address << " (channel " << c
                  << ") failed: " << s.error_message() << "\n";
        return 1;
      }
    }
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
    if (in_flight > 1) {
      std::printf(" in_flight=%d channels=%d failures=%d", in_flight, channels, failures[t]);
    }
    std::printf("\n");
    failed += failures[t];
  }
  return failed > 0 ? 1 : 0;
}
