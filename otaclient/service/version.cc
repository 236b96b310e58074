#include "otaclient/service/version.h"

namespace ota::service {

std::string_view OtaClientVersion() { return OTA_PROJECT_VERSION; }

}  // namespace ota::service
