// Writing JSON by hand where the field order is part of the format (the fleet's log lines and
// metrics records): string escaping that always yields valid JSON and valid UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace ota {

// Appends `text` as a JSON string literal, quotes included: '"' and '\' escaped, control
// characters as \n \r \t \b \f or \u00XX, DEL as \u007f; valid UTF-8 is kept as is and every
// byte that is not part of a valid UTF-8 sequence becomes U+FFFD (so the result is valid UTF-8,
// which protobuf string fields and CloudWatch require).
void AppendJsonString(std::string* out, std::string_view text);

}  // namespace ota
