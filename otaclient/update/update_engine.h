// The single-ECU update: one session at a time, run on its own thread, driven by the explicit
// state machine in update_session.h. The gRPC service talks only to this class.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "otaclient/update/status_snapshot.h"

namespace ota::update {

struct UpdateRequestParams {
  std::string version;
  std::string url;           // image base URL, http(s)
  std::string cookies_json;  // "" or a JSON object
  std::string release_name, release_id, image_id;
  std::string request_id;
};

class UpdateEngine {
 public:
  virtual ~UpdateEngine() = default;
  // Validates and starts an update in the background; returns within milliseconds.
  // kFailedPrecondition when busy (nothing changes), kInvalidArgument for a bad request
  // (nothing changes either: a bad request never disturbs a running update).
  virtual absl::Status StartUpdate(const UpdateRequestParams& request) = 0;
  virtual StatusSnapshot Snapshot() const = 0;
};

}  // namespace ota::update
