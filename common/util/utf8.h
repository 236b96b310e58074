// UTF-8 validation: the one implementation (config values, JSON written for the fleet).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ota {

// Length (1-4) of the valid UTF-8 sequence that starts `text`, or 0 when it starts with none: a
// stray continuation byte, an invalid lead byte, a sequence cut short, an overlong form, a
// surrogate (U+D800-U+DFFF) or a code point beyond U+10FFFF. 0 for empty `text`.
size_t Utf8SequenceLength(std::string_view text);

// True when `text` is well-formed UTF-8 throughout.
bool IsValidUtf8(std::string_view text);

// `text` made fit for a message that goes into a protobuf string field: every byte that is not
// part of a valid UTF-8 sequence becomes U+FFFD, and the result is cut at a character boundary
// to at most `max_bytes` bytes (ending with "..." when cut; max_bytes >= 3).
std::string ValidUtf8Prefix(std::string_view text, size_t max_bytes);

}  // namespace ota
