// Fuzzes what secondaries send up: arbitrary bytes become two children's Status answers and one
// child's Update answer (protobuf-decoded, as gRPC would) and go through the EcuTree's status
// cache, drop rule and Update merge via in-process transports. Whatever a child answers, the
// tree must not crash, must never list this ECU's own id or a duplicate id in ecu_v2, and must
// answer every requested ECU exactly once.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/log/log.h"
#include "otaclient/ecu/ecu_tree.h"
#include "test/fuzz/fuzz_support.h"
#include "test/unit/ecu/inline_transport.h"

using ota::fuzz::Require;

using ota::ecu::testing::InlineScript;
using ota::ecu::testing::InlineScripts;
using ota::ecu::testing::InlineTransports;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ota::fuzz::QuietLogs();
  // Three length-prefixed (1 byte) parts; undecodable parts stay empty messages.
  std::string parts[3];
  size_t at = 0;
  for (std::string& part : parts) {
    if (at >= size) break;
    const size_t declared = data[at];
    ++at;
    const size_t length = std::min(declared, size - at);
    part.assign(reinterpret_cast<const char*>(data + at), length);
    at += length;
  }
  OtaClientV2::StatusResponse status_a, status_b;
  OtaClientV2::UpdateResponse update_a;
  (void)status_a.ParseFromString(parts[0]);
  (void)status_b.ParseFromString(parts[1]);
  (void)update_a.ParseFromString(parts[2]);

  ota::ecu::EcuTreeOptions options;
  options.self_ecu_id = "main";
  options.children = {{"a", "127.0.0.2", 50051}, {"b", "127.0.0.3", 50051}};
  options.poll_interval_idle = std::chrono::hours(1);
  options.poll_interval_active = std::chrono::hours(1);
  options.unreachable_grace = std::chrono::milliseconds(0);
  InlineScripts scripts;
  for (const char* id : {"a", "b"}) scripts[id] = std::make_shared<InlineScript>();
  scripts["a"]->SetStatus(status_a);
  scripts["b"]->SetStatus(status_b);
  for (auto& [id, script] : scripts) script->SetUpdate(update_a);
  ota::ecu::EcuTree tree(options, InlineTransports(scripts));
  tree.Start(nullptr);
  for (auto& [id, script] : scripts) Require(script->WaitAnswers(0));

  OtaClientV2::StatusResponse merged;
  tree.AppendChildrenStatus(&merged);
  std::set<std::string> seen;
  for (const auto& entry : merged.ecu_v2()) {
    Require(entry.ecu_id() != "main" && !entry.ecu_id().empty());
    Require(seen.insert(entry.ecu_id()).second);
  }

  OtaClientV2::UpdateRequest request;
  std::set<std::string> requested;
  for (const auto& entry : status_a.ecu_v2()) {
    request.add_ecu()->set_ecu_id(entry.ecu_id());
    requested.insert(entry.ecu_id());
  }
  request.add_ecu()->set_ecu_id("b");
  requested.insert("b");
  requested.erase("main");
  const OtaClientV2::UpdateResponse answer = tree.Update(request, [](auto*) {});
  std::set<std::string> answered;
  for (const auto& entry : answer.ecu()) Require(answered.insert(entry.ecu_id()).second);
  Require(answered == requested);
  tree.Stop();
  return 0;
}
