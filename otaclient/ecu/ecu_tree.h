// This ECU's view of the ECU tree below it: the direct children from ecu_info `secondaries`
// (each reached through a SecondaryTransport), a status cache kept fresh by a background
// poller, the request fan-out and the "reboot last" wait of the orderly finish.
//
// Status cache and poller
//   - Every direct child is polled with Status on its own schedule: every
//     `poll_interval_active` (default 1 s) while any ECU of the tree (this one included) is
//     UPDATING, CLIENT_UPDATING, ABORTING or ROLLBACKING, every `poll_interval_idle` (default
//     10 s) otherwise; a forwarded request triggers an immediate poll. Polls are asynchronous
//     and independent: a slow or dead child delays nobody else, and Status itself never waits
//     for a child (it copies the cache).
//   - A child's answer is first checked whole (child_answer.h): a garbage or huge answer is
//     that child's failed poll (logged with the reason when it changes), nothing of it is used.
//   - Each ecu_v2 entry of a child's answer (the child's own and its descendants', so
//     grandchildren flow up) is stored under its ecu_id with the time it was heard. Entries
//     naming this ECU, another direct child of this ECU (its own answers are the only source
//     for it) or an ECU already owned by an earlier child are ignored (with a warning); so are
//     such ids in its available_ecu_ids (which only widen where requests are forwarded).
//   - Each child's known subtree (the ids it reported, kept across answers) holds at most
//     answer_limits.max_entries ids: a child whose answers over time name more loses the
//     entries only its older answers named, so a child inventing new ids cannot grow memory.
//   - Drop rule: an ECU not heard from for longer than `drop_after` (default: three times the
//     current poll interval, like upstream: 3 s while an update runs, 30 s when idle) is left
//     out of ecu_v2; it is then listed in the v1 `ecu` view only, as
//     {ecu_id, result: RECOVERABLE} without status (what the original daemon answered for a
//     child that did not answer), and the reason is logged once. A direct child never heard
//     from is listed the same way. available_ecu_ids is always this ECU's ecu_info list.
//   - A child that answers garbage (undecodable message, gRPC error), restarts or hangs is just
//     an error for that poll: logged when its reachability changes, never fatal.
//   - Right after a child acknowledged an Update for an ECU (NO_FAILURE), that ECU's cached
//     entry is set to UPDATING at once, so a caller polling Status never sees the stale
//     pre-update SUCCESS of a child that has not been polled since.
//
// Orderly finish (WaitForChildren, called from EngineOptions::before_reboot): a direct child is
// done when its latest answer, to a poll started after the wait began, is complete and calm:
//   - it has an entry for the child itself and for every ECU ever reported through that child
//     (its subtree as this ECU knows it), and
//   - none of those entries is busy (UPDATING, CLIENT_UPDATING, ABORTING, ROLLBACKING).
// "Not in the answer" is not "done": a mid-level child that just rebooted (or re-executed)
// answers with its own SUCCESS before its first poll of its own children returned, listing
// them only as v1 "not heard" placeholders; an idle child (aborted, restarted) may still report
// an updating ECU below it. A child with no fresh answer yet blocks too. An ECU stops blocking
// once not heard from for longer than `unreachable_grace` (default 20 min; counted from its
// last report, or from Start() when never heard): a silent direct child with its whole subtree,
// or one ECU that its parent leaves out of its answers. ECUs never reported by anyone are not
// waited for. So when the wait ends, every ECU heard through a child has been reported again,
// finished, in the child's latest answer: the fleet view the otaproxy purge decides on
// (service/download_proxy.h) is complete, except for the ECUs given up on (logged).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/config/ecu_info.h"
#include "otaclient/ecu/child_answer.h"
#include "otaclient/ecu/fanout.h"
#include "otaclient/ecu/secondary_transport.h"
#include "proto/otaclient_v2.pb.h"

namespace ota::ecu {

struct EcuTreeOptions {
  std::string self_ecu_id;
  std::vector<config::SecondaryEcu> children;
  // The Python client's 6 s (WAITING_SUBECU_ACK_REQ_TIMEOUT and its Status poll deadline).
  std::chrono::milliseconds forward_timeout{6000};  // per forwarded Update/Abort/Rollback
  std::chrono::milliseconds status_timeout{6000};   // per Status poll of a child
  std::chrono::milliseconds poll_interval_active{1000};
  std::chrono::milliseconds poll_interval_idle{10000};
  // nullopt: three times the poll interval in force (active or idle).
  std::optional<std::chrono::milliseconds> drop_after;
  std::chrono::milliseconds unreachable_grace{std::chrono::minutes(20)};
  // What a child's answers may hold (child_answer.h).
  ChildAnswerLimits answer_limits;
};

using TransportFactory =
    std::function<std::unique_ptr<SecondaryTransport>(const config::SecondaryEcu& child)>;

class EcuTree {
 public:
  explicit EcuTree(EcuTreeOptions options,
                   const TransportFactory& factory = CreateGrpcSecondaryTransport);
  ~EcuTree();  // Stop()
  EcuTree(const EcuTree&) = delete;
  EcuTree& operator=(const EcuTree&) = delete;

  // Starts the poller thread (no thread when there are no children). `local_busy` says whether
  // this ECU itself is in an update (for the poll interval); it is called without any lock held.
  void Start(std::function<bool()> local_busy);
  // Stops the poller, releases WaitForChildren and waits (bounded by the call deadlines) for
  // calls in flight, so the transports can be destroyed after it.
  void Stop();

  bool has_children() const { return !options_.children.empty(); }
  const EcuTreeOptions& options() const { return options_; }

  // Fan-out (rules in fanout.h): forwards the whole request to the target children in
  // parallel, runs `local` (which appends this ECU's own answers) meanwhile, waits at most
  // forward_timeout for the children and returns local answers followed by the merged ones.
  OtaClientV2::UpdateResponse Update(
      const OtaClientV2::UpdateRequest& request,
      const std::function<void(OtaClientV2::UpdateResponse*)>& local);
  // ClientUpdate (the otaclient self-update) goes where Update goes, with the same answers; the
  // cached entries are not touched (the children report CLIENT_UPDATING themselves).
  OtaClientV2::UpdateResponse ClientUpdate(
      const OtaClientV2::UpdateRequest& request,
      const std::function<void(OtaClientV2::UpdateResponse*)>& local);
  // Abort follows the Python client instead (fanout.h, MergeAbortAnswers): the request goes to
  // every direct child whatever it lists, `local` answers for this ECU, and the answer holds each
  // child's whole answer followed by this ECU's.
  OtaClientV2::AbortResponse Abort(const OtaClientV2::AbortRequest& request,
                                   const std::function<void(OtaClientV2::AbortResponse*)>& local);
  OtaClientV2::RollbackResponse Rollback(
      const OtaClientV2::RollbackRequest& request,
      const std::function<void(OtaClientV2::RollbackResponse*)>& local);

  // Appends the cached entries of the tree below this ECU (drop rule above) to ecu_v2 and the
  // v1 ecu view. Never waits for a child.
  void AppendChildrenStatus(OtaClientV2::StatusResponse* response) const;

  // The orderly-finish wait (rules above). Returns at once without children or after Stop().
  void WaitForChildren();

  // Polls every child now (also used after forwarding a request).
  void PollNow();

 private:
  struct Shared;
  std::vector<ChildView> ChildViews() const;
  // Sends `request` to the children `targets` (indices into `views`) in parallel, runs
  // `meanwhile`, and returns each target's result once all answered or forward_timeout passed.
  template <typename Request, typename Response>
  std::vector<std::pair<size_t, ChildResult<Response>>> Forward(
      const Request& request, const std::string& rpc, const std::vector<ChildView>& views,
      const std::vector<size_t>& targets,
      void (SecondaryTransport::*call)(const Request&, std::chrono::milliseconds, Done<Response>),
      const std::function<void()>& meanwhile);
  template <typename Request, typename Response, typename Entry>
  Response FanOut(const Request& request, const std::string& rpc, int failure_result,
                  void (SecondaryTransport::*call)(const Request&, std::chrono::milliseconds,
                                                   Done<Response>),
                  const std::function<void(Response*)>& local);
  void PollerLoop();
  void StartPoll(size_t child);

  const EcuTreeOptions options_;
  std::vector<std::unique_ptr<SecondaryTransport>> transports_;
  std::shared_ptr<Shared> shared_;
  std::function<bool()> local_busy_;
  std::thread poller_;
};

}  // namespace ota::ecu
