// The otaclient version reported in StatusResponseEcuV2.otaclient_version (the CMake project
// version).
#pragma once

#include <string_view>

namespace ota::service {

std::string_view OtaClientVersion();

}  // namespace ota::service
