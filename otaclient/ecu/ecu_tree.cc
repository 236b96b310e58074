#include "otaclient/ecu/ecu_tree.h"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "common/log/log.h"
#include "common/util/strings.h"
#include "otaclient/ecu/fanout.h"

namespace ota::ecu {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Grace on top of the forward deadline for callbacks to arrive (gRPC enforces the deadline).
constexpr milliseconds kCallbackSlack{500};
// How often WaitForChildren repeats what it is waiting for (it also says so at every change).
constexpr auto kWaitLogEvery = std::chrono::seconds(30);
// Without --ecu-drop-timeout an ECU leaves ecu_v2 after this many poll intervals of silence
// (upstream's DISCONNECTED_ECU_TIMEOUT_FACTOR).
constexpr int kDropPolls = 3;

bool IsBusy(OtaClientV2::StatusOta status) {
  return status == OtaClientV2::UPDATING || status == OtaClientV2::CLIENT_UPDATING ||
         status == OtaClientV2::ABORTING || status == OtaClientV2::ROLLBACKING;
}

long Millis(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(d).count());
}

// The v1 view of an entry we only have in v2 form.
OtaClientV2::StatusResponseEcu V1From(const OtaClientV2::StatusResponseEcuV2& v2) {
  OtaClientV2::StatusResponseEcu v1;
  v1.set_ecu_id(v2.ecu_id());
  v1.set_result(OtaClientV2::NO_FAILURE);
  OtaClientV2::Status* status = v1.mutable_status();
  status->set_status(v2.ota_status());
  status->set_failure(v2.failure_type());
  status->set_failure_reason(v2.failure_reason());
  status->set_version(v2.firmware_version());
  return v1;
}

// The v2 view of an entry from a child that only speaks v1 (the 2022 daemon).
OtaClientV2::StatusResponseEcuV2 V2From(const OtaClientV2::StatusResponseEcu& v1) {
  OtaClientV2::StatusResponseEcuV2 v2;
  v2.set_ecu_id(v1.ecu_id());
  v2.set_ota_status(v1.status().status());
  v2.set_firmware_version(v1.status().version());
  if (v1.status().status() == OtaClientV2::FAILURE) {
    v2.set_failure_type(v1.status().failure());
    v2.set_failure_reason(v1.status().failure_reason());
  }
  return v2;
}

}  // namespace

struct EcuTree::Shared {
  struct CachedEcu {
    OtaClientV2::StatusResponseEcuV2 v2;
    std::optional<OtaClientV2::StatusResponseEcu> v1;
    Clock::time_point heard;
    size_t child = 0;
    // Which answer of `child` last carried this entry (ChildState::answers): equal to the
    // child's count when its latest answer reports it.
    uint64_t reported_in = 0;
    bool drop_logged = false;
  };
  struct ChildState {
    std::string ecu_id;
    std::string target;
    std::optional<std::set<std::string>> subtree;
    std::vector<std::string> order;  // ids heard through this child, in answer order
    std::optional<Clock::time_point> last_answer;
    Clock::time_point last_answer_poll_start;
    uint64_t answers = 0;  // successful answers so far; the latest is number `answers`
    bool in_flight = false;
    bool poll_now = true;
    Clock::time_point last_completed;
    std::optional<bool> reachable;  // as last logged
    std::string refused;            // why its last answer was refused (child_answer.h), logged
  };

  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  // Calls whose callback has not run yet. The transports (and their channels) must outlive
  // them: gRPC's shared callback queue breaks when a channel goes away under a pending call.
  int outstanding = 0;
  Clock::time_point started = Clock::now();
  std::string self;
  std::optional<milliseconds> drop_after;  // nullopt: kDropPolls poll intervals
  milliseconds poll_interval{};            // the interval in force (the poller sets it)
  milliseconds status_timeout{};
  ChildAnswerLimits limits;
  std::vector<ChildState> children;
  std::map<std::string, CachedEcu> ecus;

  milliseconds DropAfter() const { return drop_after.value_or(kDropPolls * poll_interval); }

  bool Fresh(const CachedEcu& ecu, Clock::time_point now) const {
    return now - ecu.heard <= DropAfter();
  }

  // The cached entry of `id` when the latest answer of child `index` carried it.
  const CachedEcu* ReportedInLatestAnswerLocked(size_t index, const std::string& id) const {
    auto it = ecus.find(id);
    if (it == ecus.end() || it->second.child != index ||
        it->second.reported_in != children[index].answers) {
      return nullptr;
    }
    return &it->second;
  }

  bool AnyBusyLocked(Clock::time_point now) const {
    for (const auto& [id, ecu] : ecus) {
      if (Fresh(ecu, now) && IsBusy(ecu.v2.ota_status())) return true;
    }
    return false;
  }

  void LogDropsLocked(size_t child, Clock::time_point now) {
    for (auto& [id, ecu] : ecus) {
      if (ecu.child != child || ecu.drop_logged || Fresh(ecu, now)) continue;
      ecu.drop_logged = true;
      log::Warning("ECU left out of Status: not heard from",
                   {{"ecu_id", id},
                    {"via", children[child].ecu_id},
                    {"silent_ms", std::to_string(Millis(now - ecu.heard))},
                    {"drop_after_ms", std::to_string(DropAfter().count())}});
    }
  }

  // True when `id` is another direct child of this ECU than child `index`: only that child's
  // own answers speak for it.
  bool IsOtherChildLocked(size_t index, const std::string& id) const {
    for (size_t i = 0; i < children.size(); ++i) {
      if (i != index && children[i].ecu_id == id) return true;
    }
    return false;
  }

  void OnPollResult(size_t index, Clock::time_point poll_start, const grpc::Status& status,
                    const OtaClientV2::StatusResponse& response) {
    // Checked before the lock: the answer may be large, Status readers must not wait for it.
    const absl::Status valid = status.ok() ? CheckChildAnswer(response, limits) : absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu);
    const Clock::time_point now = Clock::now();
    --outstanding;
    ChildState& child = children[index];
    child.in_flight = false;
    child.last_completed = now;
    if (!status.ok()) {
      if (child.reachable.value_or(true)) {
        log::Warning(
            "secondary not answering Status",
            {{"ecu_id", child.ecu_id},
             {"target", child.target},
             {"error", ChildErrorMessage({child.ecu_id, child.target, std::nullopt}, "Status", true,
                                         status, static_cast<long>(status_timeout.count()))}});
      }
      child.reachable = false;
      child.refused.clear();
      LogDropsLocked(index, now);
      cv.notify_all();
      return;
    }
    if (!valid.ok()) {
      // That child's failure, not ours: the answer is not used at all (as no answer).
      if (child.refused != valid.message()) {
        child.refused = std::string(valid.message());
        log::Warning(
            "secondary's Status answer refused: not used",
            {{"ecu_id", child.ecu_id}, {"target", child.target}, {"reason", child.refused}});
      }
      child.reachable = false;
      LogDropsLocked(index, now);
      cv.notify_all();
      return;
    }
    if (!child.reachable.value_or(false)) {
      log::Info("secondary answers Status", {{"ecu_id", child.ecu_id}, {"target", child.target}});
    }
    child.reachable = true;
    child.refused.clear();
    ++child.answers;

    std::set<std::string> subtree = {child.ecu_id};
    std::vector<std::string> order;
    // Whether child `index` may speak for `id`; an entry it may not is logged (`entry`). Its
    // available_ecu_ids (its ecu_info list, which may well name the whole vehicle) are not.
    auto may_report = [&](const std::string& id, bool entry) {
      if (id.empty()) return false;
      if (id == self) {
        if (entry) {
          log::Warning("secondary reports an entry with this ECU's id; ignored (ECU tree loop?)",
                       {{"secondary", child.ecu_id}, {"ecu_id", id}});
        }
        return false;
      }
      if (IsOtherChildLocked(index, id)) {
        if (entry) {
          log::Warning(
              "secondary reports an entry for another direct secondary of this ECU; ignored",
              {{"secondary", child.ecu_id}, {"ecu_id", id}});
        }
        return false;
      }
      auto it = ecus.find(id);
      if (it != ecus.end() && it->second.child != index && Fresh(it->second, now)) {
        if (entry) {
          log::Warning("two secondaries report the same ECU id; keeping the first",
                       {{"ecu_id", id},
                        {"kept_via", children[it->second.child].ecu_id},
                        {"ignored_via", child.ecu_id}});
        }
        return false;
      }
      return true;
    };
    auto accept = [&](const std::string& id) -> CachedEcu* {
      if (!may_report(id, /*entry=*/true)) return nullptr;
      CachedEcu& ecu = ecus[id];
      ecu.child = index;
      ecu.heard = now;
      ecu.reported_in = child.answers;
      ecu.drop_logged = false;
      ecu.v1.reset();
      subtree.insert(id);
      if (std::find(order.begin(), order.end(), id) == order.end()) order.push_back(id);
      return &ecu;
    };
    std::set<std::string> from_v2;
    for (const OtaClientV2::StatusResponseEcuV2& entry : response.ecu_v2()) {
      if (from_v2.contains(entry.ecu_id())) continue;
      if (CachedEcu* ecu = accept(entry.ecu_id())) {
        ecu->v2 = entry;
        from_v2.insert(entry.ecu_id());
      }
    }
    for (const OtaClientV2::StatusResponseEcu& entry : response.ecu()) {
      // Placeholders (result != NO_FAILURE) are the child's own "not heard" reports.
      if (entry.result() != OtaClientV2::NO_FAILURE || !entry.has_status()) continue;
      if (from_v2.contains(entry.ecu_id())) {
        auto it = ecus.find(entry.ecu_id());
        if (it != ecus.end() && it->second.child == index) it->second.v1 = entry;
        continue;
      }
      if (CachedEcu* ecu = accept(entry.ecu_id())) {
        ecu->v2 = V2From(entry);
        ecu->v1 = entry;
      }
    }
    for (const std::string& id : response.available_ecu_ids()) {
      if (!subtree.contains(id) && may_report(id, /*entry=*/false)) subtree.insert(id);
    }
    // Ids of earlier answers stay known, up to the limit; past it, only this answer's count and
    // the cache forgets what only older answers of this child named.
    if (child.subtree) {
      std::set<std::string> known = subtree;
      known.insert(child.subtree->begin(), child.subtree->end());
      if (known.size() <= limits.max_entries) {
        subtree = std::move(known);
      } else {
        log::Warning("secondary's answers name too many ECU ids over time; forgetting older ones",
                     {{"ecu_id", child.ecu_id},
                      {"ids", std::to_string(known.size())},
                      {"limit", std::to_string(limits.max_entries)}});
        for (auto it = ecus.begin(); it != ecus.end();) {
          if (it->second.child == index && !subtree.contains(it->first)) {
            it = ecus.erase(it);
          } else {
            ++it;
          }
        }
      }
    }
    for (const std::string& id : child.order) {
      auto it = ecus.find(id);
      if (it != ecus.end() && it->second.child == index &&
          std::find(order.begin(), order.end(), id) == order.end()) {
        order.push_back(id);
      }
    }
    child.subtree = std::move(subtree);
    child.order = std::move(order);
    child.last_answer = now;
    child.last_answer_poll_start = poll_start;
    if (!ReportedInLatestAnswerLocked(index, child.ecu_id)) {
      log::Warning("secondary's Status answer has no entry for itself",
                   {{"ecu_id", child.ecu_id}, {"target", child.target}});
    }
    LogDropsLocked(index, now);
    cv.notify_all();
  }
};

EcuTree::EcuTree(EcuTreeOptions options, const TransportFactory& factory)
    : options_(std::move(options)), shared_(std::make_shared<Shared>()) {
  shared_->self = options_.self_ecu_id;
  shared_->drop_after = options_.drop_after;
  shared_->poll_interval = options_.poll_interval_idle;
  shared_->status_timeout = options_.status_timeout;
  shared_->limits = options_.answer_limits;
  for (const config::SecondaryEcu& child : options_.children) {
    transports_.push_back(factory(child));
    Shared::ChildState state;
    state.ecu_id = child.ecu_id;
    state.target = SecondaryTarget(child);
    shared_->children.push_back(std::move(state));
  }
}

EcuTree::~EcuTree() { Stop(); }

void EcuTree::Start(std::function<bool()> local_busy) {
  local_busy_ = std::move(local_busy);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->started = Clock::now();
  }
  if (has_children() && !poller_.joinable()) poller_ = std::thread([this] { PollerLoop(); });
}

void EcuTree::Stop() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop = true;
    shared_->cv.notify_all();
  }
  if (poller_.joinable()) poller_.join();
  // Every call has a deadline, so this ends; the cap only guards against a transport bug.
  std::unique_lock<std::mutex> lock(shared_->mu);
  const auto limit = options_.forward_timeout + options_.status_timeout + std::chrono::seconds(5);
  if (!shared_->cv.wait_for(lock, limit, [&] { return shared_->outstanding == 0; })) {
    log::Error("secondary calls still pending at shutdown",
               {{"pending", std::to_string(shared_->outstanding)}});
  }
}

void EcuTree::PollNow() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  for (auto& child : shared_->children) child.poll_now = true;
  shared_->cv.notify_all();
}

void EcuTree::StartPoll(size_t child) {
  const Clock::time_point started = Clock::now();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    ++shared_->outstanding;
  }
  std::shared_ptr<Shared> shared = shared_;
  transports_[child]->Status(options_.status_timeout,
                             [shared, child, started](const grpc::Status& status,
                                                      const OtaClientV2::StatusResponse& response) {
                               shared->OnPollResult(child, started, status, response);
                             });
}

void EcuTree::PollerLoop() {
  std::unique_lock<std::mutex> lock(shared_->mu);
  while (!shared_->stop) {
    lock.unlock();
    const bool local_busy = local_busy_ && local_busy_();
    lock.lock();
    if (shared_->stop) break;
    const Clock::time_point now = Clock::now();
    const milliseconds interval = (local_busy || shared_->AnyBusyLocked(now))
                                      ? options_.poll_interval_active
                                      : options_.poll_interval_idle;
    shared_->poll_interval = interval;
    std::vector<size_t> due;
    Clock::time_point wake = now + std::min(interval, options_.poll_interval_active);
    for (size_t i = 0; i < shared_->children.size(); ++i) {
      auto& child = shared_->children[i];
      if (child.in_flight) continue;
      if (child.poll_now || now >= child.last_completed + interval) {
        child.in_flight = true;
        child.poll_now = false;
        due.push_back(i);
      } else {
        wake = std::min(wake, child.last_completed + interval);
      }
    }
    if (!due.empty()) {
      // Outside the lock: a transport may complete a call inline.
      lock.unlock();
      for (size_t i : due) StartPoll(i);
      lock.lock();
      continue;
    }
    shared_->cv.wait_until(lock, wake, [&] {
      if (shared_->stop) return true;
      for (const auto& child : shared_->children) {
        if (child.poll_now && !child.in_flight) return true;
      }
      return false;
    });
  }
}

void EcuTree::AppendChildrenStatus(OtaClientV2::StatusResponse* response) const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  const Clock::time_point now = Clock::now();
  std::vector<std::string> dropped;
  for (size_t i = 0; i < shared_->children.size(); ++i) {
    const auto& child = shared_->children[i];
    bool child_listed = false;
    for (const std::string& id : child.order) {
      auto it = shared_->ecus.find(id);
      if (it == shared_->ecus.end() || it->second.child != i) continue;
      if (id == child.ecu_id) child_listed = true;
      if (!shared_->Fresh(it->second, now)) {
        dropped.push_back(id);
        continue;
      }
      *response->add_ecu_v2() = it->second.v2;
      *response->add_ecu() = it->second.v1 ? *it->second.v1 : V1From(it->second.v2);
    }
    if (!child_listed) dropped.push_back(child.ecu_id);
  }
  for (const std::string& id : dropped) {
    OtaClientV2::StatusResponseEcu* placeholder = response->add_ecu();
    placeholder->set_ecu_id(id);
    placeholder->set_result(OtaClientV2::RECOVERABLE);
  }
}

void EcuTree::WaitForChildren() {
  if (!has_children()) return;
  const Clock::time_point wait_start = Clock::now();
  PollNow();
  std::unique_lock<std::mutex> lock(shared_->mu);
  std::set<std::string> given_up;
  // True (and logged once) when `id`, last heard at `heard`, has been silent too long to wait
  // for. `where`: {"target", address} for a direct child, {"via", child} for an ECU below one.
  auto silent_too_long = [&](const std::string& id, const log::Field& where,
                             Clock::time_point heard, Clock::time_point now) {
    if (now - heard <= options_.unreachable_grace) return false;
    if (given_up.insert(id).second) {
      log::Warning("not waiting any longer for an unreachable secondary",
                   {{"ecu_id", id},
                    where,
                    {"silent_ms", std::to_string(Millis(now - heard))},
                    {"grace_ms", std::to_string(options_.unreachable_grace.count())}});
    }
    return true;
  };
  Clock::time_point next_log = wait_start + kWaitLogEvery;
  std::string logged_list;
  while (!shared_->stop) {
    const Clock::time_point now = Clock::now();
    std::vector<std::string> waiting;
    for (size_t i = 0; i < shared_->children.size(); ++i) {
      const auto& child = shared_->children[i];
      if (silent_too_long(child.ecu_id, {"target", child.target},
                          child.last_answer.value_or(shared_->started), now)) {
        continue;
      }
      if (!child.last_answer || child.last_answer_poll_start < wait_start) {
        waiting.push_back(StrCat(child.ecu_id, " (no fresh status yet)"));
        continue;
      }
      // The child and every ECU ever reported through it must be in its latest answer, none
      // busy: an ECU the answer leaves out is not known to be done (the child restarted and
      // has not heard from it yet, or has not for its drop time).
      std::vector<std::string> ids = {child.ecu_id};
      for (const std::string& id : child.order) {
        if (id != child.ecu_id) ids.push_back(id);
      }
      for (const std::string& id : ids) {
        const bool itself = id == child.ecu_id;
        if (const Shared::CachedEcu* ecu = shared_->ReportedInLatestAnswerLocked(i, id)) {
          if (IsBusy(ecu->v2.ota_status())) {
            waiting.push_back(StrCat(id, " (", OtaClientV2::StatusOta_Name(ecu->v2.ota_status()),
                                     itself ? "" : StrCat(" via ", child.ecu_id), ")"));
          }
          continue;
        }
        auto it = shared_->ecus.find(id);
        // Reported by another child since (a moved ECU): that child's answer covers it.
        if (it != shared_->ecus.end() && it->second.child != i) continue;
        const log::Field where =
            itself ? log::Field{"target", child.target} : log::Field{"via", child.ecu_id};
        const Clock::time_point heard =
            it != shared_->ecus.end() ? it->second.heard : shared_->started;
        if (silent_too_long(id, where, heard, now)) continue;
        waiting.push_back(StrCat(id, " (not in ", child.ecu_id, "'s latest Status answer)"));
      }
    }
    if (waiting.empty()) {
      log::Info("secondaries done; this ECU may reboot",
                {{"waited_ms", std::to_string(Millis(now - wait_start))}});
      return;
    }
    std::string list;
    for (const std::string& w : waiting) StrAppend(&list, list.empty() ? "" : ", ", w);
    if (list != logged_list || now >= next_log) {
      log::Info("waiting for secondaries before rebooting", {{"waiting_for", list}});
      logged_list = std::move(list);
      next_log = now + kWaitLogEvery;
    }
    shared_->cv.wait_for(lock, std::chrono::seconds(1));
  }
}

template <typename Request, typename Response>
std::vector<std::pair<size_t, ChildResult<Response>>> EcuTree::Forward(
    const Request& request, const std::string& rpc, const std::vector<ChildView>& views,
    const std::vector<size_t>& targets,
    void (SecondaryTransport::*call)(const Request&, milliseconds, Done<Response>),
    const std::function<void()>& meanwhile) {
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<ChildResult<Response>> results;
    size_t remaining = 0;
  };
  auto pending = std::make_shared<Pending>();
  pending->results.resize(targets.size());
  pending->remaining = targets.size();
  const Clock::time_point start = Clock::now();
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->outstanding += static_cast<int>(targets.size());
  }
  std::shared_ptr<Shared> shared = shared_;
  for (size_t k = 0; k < targets.size(); ++k) {
    log::Info("forwarding request to secondary", {{"rpc", rpc},
                                                  {"request_id", request.request_id()},
                                                  {"secondary", views[targets[k]].ecu_id},
                                                  {"target", views[targets[k]].target}});
    (transports_[targets[k]].get()->*call)(
        request, options_.forward_timeout,
        [pending, shared, k](const grpc::Status& status, Response response) {
          // A garbage or huge answer is that child's failure: dropped here, only the reason
          // is kept (child_answer.h).
          std::string refused;
          if (status.ok()) {
            if (absl::Status bad = CheckChildAnswer(response, shared->limits); !bad.ok()) {
              refused = std::string(bad.message());
              response = Response();
            }
          }
          {
            std::lock_guard<std::mutex> lock(pending->mu);
            pending->results[k] = {true, status, std::move(response), std::move(refused)};
            --pending->remaining;
            pending->cv.notify_all();
          }
          std::lock_guard<std::mutex> lock(shared->mu);
          --shared->outstanding;
          shared->cv.notify_all();
        });
  }

  meanwhile();

  std::vector<std::pair<size_t, ChildResult<Response>>> forwarded;
  {
    std::unique_lock<std::mutex> lock(pending->mu);
    pending->cv.wait_until(lock, start + options_.forward_timeout + kCallbackSlack,
                           [&] { return pending->remaining == 0; });
    for (size_t k = 0; k < targets.size(); ++k) {
      forwarded.emplace_back(targets[k], pending->results[k]);
    }
  }
  for (const auto& [index, result] : forwarded) {
    if (!result.ok()) {
      log::Warning(
          "secondary did not take the request",
          {{"rpc", rpc},
           {"request_id", request.request_id()},
           {"secondary", views[index].ecu_id},
           {"error", ChildFailureMessage(views[index], rpc, result,
                                         static_cast<long>(options_.forward_timeout.count()))}});
    }
  }
  if (!targets.empty()) PollNow();
  return forwarded;
}

std::vector<ChildView> EcuTree::ChildViews() const {
  std::vector<ChildView> views;
  std::lock_guard<std::mutex> lock(shared_->mu);
  for (const auto& child : shared_->children) {
    views.push_back({child.ecu_id, child.target, child.subtree});
  }
  return views;
}

template <typename Request, typename Response, typename Entry>
Response EcuTree::FanOut(const Request& request, const std::string& rpc, int failure_result,
                         void (SecondaryTransport::*call)(const Request&, milliseconds,
                                                          Done<Response>),
                         const std::function<void(Response*)>& local) {
  std::vector<std::string> requested;
  for (const auto& entry : request.ecu()) requested.push_back(entry.ecu_id());
  const std::vector<ChildView> views = ChildViews();
  const std::vector<size_t> targets = ForwardTargets(options_.self_ecu_id, views, requested);
  Response response;
  const auto forwarded =
      Forward<Request, Response>(request, rpc, views, targets, call, [&] { local(&response); });
  MergeChildAnswers<Entry, Response>(options_.self_ecu_id, views, requested, forwarded, rpc,
                                     static_cast<long>(options_.forward_timeout.count()),
                                     failure_result, response.mutable_ecu());
  return response;
}

OtaClientV2::UpdateResponse EcuTree::Update(
    const OtaClientV2::UpdateRequest& request,
    const std::function<void(OtaClientV2::UpdateResponse*)>& local) {
  OtaClientV2::UpdateResponse response =
      FanOut<OtaClientV2::UpdateRequest, OtaClientV2::UpdateResponse,
             OtaClientV2::UpdateResponseEcu>(request, "Update", OtaClientV2::RECOVERABLE,
                                             &SecondaryTransport::Update, local);
  // ECUs below that accepted are UPDATING from now on, before the next poll confirms it.
  std::lock_guard<std::mutex> lock(shared_->mu);
  const Clock::time_point now = Clock::now();
  for (const OtaClientV2::UpdateResponseEcu& answer : response.ecu()) {
    if (answer.result() != OtaClientV2::NO_FAILURE || answer.ecu_id() == options_.self_ecu_id) {
      continue;
    }
    auto it = shared_->ecus.find(answer.ecu_id());
    if (it == shared_->ecus.end()) continue;  // shows up with the next poll
    std::string version;
    for (const auto& entry : request.ecu()) {
      if (entry.ecu_id() == answer.ecu_id()) version = entry.version();
    }
    OtaClientV2::StatusResponseEcuV2& v2 = it->second.v2;
    v2.set_ota_status(OtaClientV2::UPDATING);
    v2.set_failure_type(OtaClientV2::NO_FAILURE);  // as every entry carries them
    v2.set_failure_reason("");
    v2.clear_failure_traceback();
    v2.mutable_update_status()->Clear();
    v2.mutable_update_status()->set_update_firmware_version(version);
    it->second.v1 = V1From(v2);
    it->second.heard = now;
  }
  return response;
}

OtaClientV2::UpdateResponse EcuTree::ClientUpdate(
    const OtaClientV2::UpdateRequest& request,
    const std::function<void(OtaClientV2::UpdateResponse*)>& local) {
  return FanOut<OtaClientV2::UpdateRequest, OtaClientV2::UpdateResponse,
                OtaClientV2::UpdateResponseEcu>(request, "ClientUpdate", OtaClientV2::RECOVERABLE,
                                                &SecondaryTransport::ClientUpdate, local);
}

OtaClientV2::AbortResponse EcuTree::Abort(
    const OtaClientV2::AbortRequest& request,
    const std::function<void(OtaClientV2::AbortResponse*)>& local) {
  const std::vector<ChildView> views = ChildViews();
  std::vector<size_t> everyone(views.size());
  for (size_t i = 0; i < views.size(); ++i) everyone[i] = i;
  OtaClientV2::AbortResponse own;
  const auto forwarded = Forward<OtaClientV2::AbortRequest, OtaClientV2::AbortResponse>(
      request, "Abort", views, everyone, &SecondaryTransport::Abort, [&] { local(&own); });
  OtaClientV2::AbortResponse response;
  MergeAbortAnswers(views, forwarded, static_cast<long>(options_.forward_timeout.count()),
                    response.mutable_ecu());
  for (const OtaClientV2::AbortResponseEcu& entry : own.ecu()) *response.add_ecu() = entry;
  return response;
}

OtaClientV2::RollbackResponse EcuTree::Rollback(
    const OtaClientV2::RollbackRequest& request,
    const std::function<void(OtaClientV2::RollbackResponse*)>& local) {
  return FanOut<OtaClientV2::RollbackRequest, OtaClientV2::RollbackResponse,
                OtaClientV2::RollbackResponseEcu>(request, "Rollback", OtaClientV2::RECOVERABLE,
                                                  &SecondaryTransport::Rollback, local);
}

}  // namespace ota::ecu
