#include "otaproxy/server/relay.h"

#include <utility>

#include "common/log/log.h"
#include "common/util/strings.h"

namespace ota::proxy {

class Relay::Source : public ResponseSource {
 public:
  Source(std::shared_ptr<Relay> relay, UpstreamClient& upstream, UpstreamClient::TransferId id,
         std::string echo, bool keep_alive)
      : relay_(std::move(relay)),
        upstream_(upstream),
        id_(id),
        echo_(std::move(echo)),
        keep_alive_(keep_alive) {}
  ~Source() override {
    if (!ended_) upstream_.Cancel(id_);  // the client went away: stop fetching for it
  }
  Fill FillQueue(OutputQueue& out, const Waker& waker) override;

 private:
  const std::shared_ptr<Relay> relay_;
  UpstreamClient& upstream_;
  const UpstreamClient::TransferId id_;
  const std::string echo_;
  const bool keep_alive_;
  bool head_sent_ = false;
  bool chunked_ = false;
  bool ended_ = false;
};

std::unique_ptr<ResponseSource> Relay::Start(UpstreamClient& upstream,
                                             const UpstreamRequest& request, std::string echo,
                                             bool keep_alive, Counters& counters) {
  counters.upstream_fetches++;
  auto relay = std::shared_ptr<Relay>(new Relay(counters));
  const UpstreamClient::TransferId id = upstream.Start(request, relay);
  return std::make_unique<Source>(std::move(relay), upstream, id, std::move(echo), keep_alive);
}

bool Relay::OnHead(const UpstreamHead& head) {
  if (head.cdn_hit && head.status == 200) counters_.cdn_hits++;
  Waker waiter;
  {
    std::lock_guard lock(mu_);
    head_ = head;
    head_known_ = true;
    std::swap(waiter, waiter_);
  }
  waiter.Wake();
  return true;
}

UpstreamSink::Take Relay::OnBody(std::string_view data) {
  Waker waiter;
  {
    std::lock_guard lock(mu_);
    if (buffer_.size() >= kRelayBuffer) {
      paused_ = true;  // the client takes the buffer, then resumes the transfer
      return Take::kPause;
    }
    buffer_.append(data);
    std::swap(waiter, waiter_);
  }
  waiter.Wake();
  return Take::kTaken;
}

void Relay::OnDone(absl::Status status, bool /*head_delivered: head_known_ says it*/) {
  Waker waiter;
  {
    std::lock_guard lock(mu_);
    done_ = true;
    status_ = std::move(status);
    std::swap(waiter, waiter_);
  }
  waiter.Wake();
}

ResponseSource::Fill Relay::Source::FillQueue(OutputQueue& out, const Waker& waker) {
  Relay& r = *relay_;
  std::string data;
  bool resume = false;
  Fill result = Fill::kMore;
  {
    std::lock_guard lock(r.mu_);
    if (!head_sent_) {
      if (!r.head_known_ && !r.done_) {
        r.waiter_ = waker;
        return Fill::kWait;
      }
      if (!r.head_known_) {
        // No response at all.
        ended_ = true;
        r.counters_.upstream_failures++;
        log::Warning("upstream request failed", {{"error", std::string(r.status_.message())}});
        out.Add(FormatSimple(r.status_.code() == absl::StatusCode::kCancelled ? 503 : 502,
                             StrCat("otaproxy: ", r.status_.message(), "\n"), keep_alive_));
        return Fill::kLast;
      }
      ResponseHead head;
      head.status = r.head_.status;
      head.content_length = r.head_.content_length;
      chunked_ = !r.head_.content_length.has_value();
      head.content_type = CleanHeaderValue(r.head_.content_type);
      head.content_encoding = CleanHeaderValue(r.head_.content_encoding);
      // What a client needs to resume (and a 206's range), passed back as upstream said them.
      for (const auto& [name, value] :
           {std::pair<const char*, const std::string&>{"Content-Range", r.head_.content_range},
            {"ETag", r.head_.etag},
            {"Last-Modified", r.head_.last_modified},
            {"Accept-Ranges", r.head_.accept_ranges}}) {
        std::string clean = CleanHeaderValue(value);
        if (!clean.empty()) head.extra.emplace_back(name, std::move(clean));
      }
      if (r.head_.status == 200 || r.head_.status == 206) {
        // Behind an upper otaproxy its echo says what the body is (it may have answered a
        // plain request with a .zst blob from an external cache); else ours.
        const std::string upper_echo = CleanHeaderValue(r.head_.cache_control);
        head.cache_control_echo = upper_echo.empty() ? echo_ : upper_echo;
      }
      head.cache_state = "relay";
      head.keep_alive = keep_alive_;
      out.Add(FormatHead(head));
      head_sent_ = true;
    }
    if (!r.buffer_.empty()) {
      data.swap(r.buffer_);
      resume = std::exchange(r.paused_, false);
    } else if (r.done_) {
      ended_ = true;
      if (r.status_.ok()) {
        if (chunked_) out.Add(std::string(kLastChunk));
        result = Fill::kLast;
      } else {
        r.counters_.upstream_failures++;
        log::Warning("upstream transfer broke, client connection closed",
                     {{"error", std::string(r.status_.message())}});
        result = Fill::kAbort;  // a truncated body: only closing tells the client
      }
    } else if (out.empty()) {
      r.waiter_ = waker;
      return Fill::kWait;
    }
  }
  if (resume) upstream_.Resume(id_);
  if (!data.empty()) {
    if (chunked_) out.Add(ChunkHeader(data.size()));
    out.Add(std::move(data));
    if (chunked_) out.Add(std::string(kChunkEnd));
  }
  return result;
}

}  // namespace ota::proxy
