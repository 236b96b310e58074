// Fuzzes the OTA image v1 msgpack subset: resource-table filter strings (ParseResourceFilter)
// and file-table xattrs (DecodeXattrs). Beyond "no crash": what parses re-encodes to bytes that
// parse to the same value (the encoders write the smallest forms, so bytes may differ).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/image/v1/filter.h"
#include "common/image/v1/msgpack.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::image::v1;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto f = ParseResourceFilter(input); f.ok()) {
    std::string again;
    switch (f->kind) {
      case ResourceFilter::Kind::kBundle:
        again = EncodeBundleFilter(f->ref, f->offset, f->length);
        break;
      case ResourceFilter::Kind::kCompressed:
        again = EncodeCompressFilter(f->ref);
        break;
      case ResourceFilter::Kind::kSliced:
        again = EncodeSliceFilter(f->slices);
        break;
      case ResourceFilter::Kind::kLeaf:
        Check(false);  // only NULL is a leaf
    }
    auto g = ParseResourceFilter(again);
    Check(g.ok() && g->kind == f->kind && g->ref == f->ref && g->offset == f->offset &&
          g->length == f->length && g->slices == f->slices);
  }
  if (auto x = DecodeXattrs(input); x.ok()) {
    std::string packed;
    MsgpackAppendMapHeader(packed, static_cast<uint32_t>(x->size()));
    for (const auto& [name, value] : *x) {
      MsgpackAppendStr(packed, name);
      MsgpackAppendBin(packed, value);
    }
    auto y = DecodeXattrs(packed);
    Check(y.ok() && *y == *x);
  }
  return 0;
}
