// How a body is compressed on the wire. Below common/http and common/image: the fetcher decodes
// by it and the image lists say it per file (image::Compression is this type).
#pragma once

#include <cstdint>

namespace ota::content {

enum class Compression : uint8_t { kNone = 0, kZstd = 1 };

}  // namespace ota::content
