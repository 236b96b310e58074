// Builds the UpdateRequest that `otactl update` sends: from --ecu groups on the command line or
// from a YAML file. Errors are kInvalidArgument naming the argument, or the file, line and field.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/otaclient_v2.pb.h"

namespace ota::otactl {

// `args` are the update options in order, e.g. {"--ecu", "a", "--version", "1", "--url", "U",
// "--ecu", "b", ...}. Each --ecu starts a new entry that takes the --version, --url, --cookies,
// --release-name, --release-id and --image-id following it. "--opt=value" is accepted too.
// --cookies "@path" reads the JSON from a file. Options not listed here are an error.
absl::StatusOr<OtaClientV2::UpdateRequest> UpdateRequestFromArgs(
    const std::vector<std::string>& args);

// A YAML list of {ecu_id, version, url, cookies, release_name, release_id, image_id}; cookies is
// a JSON string or a YAML mapping of strings. `file_name` is used in messages.
absl::StatusOr<OtaClientV2::UpdateRequest> UpdateRequestFromYaml(std::string_view text,
                                                                 std::string_view file_name);

// Checks one entry: ecu_id, version and url present, url http(s), cookies "" or a JSON object of
// strings. `where` prefixes the message (an argument position or file:line).
absl::Status ValidateEntry(const OtaClientV2::UpdateRequestEcu& entry, std::string_view where);

}  // namespace ota::otactl
