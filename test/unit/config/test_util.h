// Shared assertions for the config tests.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace ota::config::testing {

// The error must be kInvalidArgument, start with `where` ("f.yml:3: field \"x\": ") and
// contain `reason`.
template <typename T>
::testing::AssertionResult IsConfigError(const absl::StatusOr<T>& result, std::string_view where,
                                         std::string_view reason) {
  if (result.ok()) return ::testing::AssertionFailure() << "parsed OK, expected an error";
  const absl::Status& status = result.status();
  std::string message(status.message().data(), status.message().size());
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "code " << status.code() << ": " << message;
  }
  if (message.rfind(where, 0) != 0) {
    return ::testing::AssertionFailure()
           << "message does not start with [" << where << "]: [" << message << "]";
  }
  if (message.find(reason) == std::string::npos) {
    return ::testing::AssertionFailure() << "message lacks [" << reason << "]: [" << message << "]";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace ota::config::testing
