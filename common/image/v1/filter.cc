#include "common/image/v1/filter.h"

#include <limits>

#include "common/image/v1/msgpack.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {
namespace {

constexpr size_t kMaxFilterBytes = 1 << 20;

absl::StatusOr<int64_t> ReadId(MsgpackReader& reader) {
  OTA_ASSIGN_OR_RETURN(uint64_t v, reader.ReadUint());
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(StrCat("resource id ", v, " out of range"));
  }
  return static_cast<int64_t>(v);
}

absl::StatusOr<ResourceFilter> Parse(char code, std::string_view packed) {
  MsgpackReader reader(packed);
  OTA_ASSIGN_OR_RETURN(uint32_t n, reader.ReadArrayHeader());
  ResourceFilter f;
  switch (code) {
    case 'b': {
      if (n != 3) return absl::InvalidArgumentError(StrCat("bundle filter with ", n, " fields"));
      f.kind = ResourceFilter::Kind::kBundle;
      OTA_ASSIGN_OR_RETURN(f.ref, ReadId(reader));
      OTA_ASSIGN_OR_RETURN(f.offset, reader.ReadUint());
      OTA_ASSIGN_OR_RETURN(f.length, reader.ReadUint());
      if (f.offset > std::numeric_limits<uint64_t>::max() - f.length) {
        return absl::InvalidArgumentError("bundle filter: offset + len overflows");
      }
      break;
    }
    case 'c': {
      if (n != 2) return absl::InvalidArgumentError(StrCat("compress filter with ", n, " fields"));
      f.kind = ResourceFilter::Kind::kCompressed;
      OTA_ASSIGN_OR_RETURN(f.ref, ReadId(reader));
      OTA_ASSIGN_OR_RETURN(std::string_view alg, reader.ReadStr());
      if (alg != "zstd") {
        return absl::InvalidArgumentError(
            StrCat("compress filter: unsupported algorithm '", alg, "' (only zstd)"));
      }
      break;
    }
    case 's': {
      if (n == 0) return absl::InvalidArgumentError("slice filter with no slices");
      f.kind = ResourceFilter::Kind::kSliced;
      f.slices.reserve(n);
      for (uint32_t i = 0; i < n; ++i) {
        OTA_ASSIGN_OR_RETURN(int64_t id, ReadId(reader));
        f.slices.push_back(id);
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(
          StrCat("unknown filter code '", std::string(1, code), "' (b, c or s)"));
  }
  if (!reader.AtEnd()) {
    return absl::InvalidArgumentError(StrCat(reader.remaining(), " trailing bytes"));
  }
  return f;
}

}  // namespace

absl::StatusOr<ResourceFilter> ParseResourceFilter(std::optional<std::string_view> blob) {
  if (!blob.has_value()) return ResourceFilter{};
  if (blob->size() > kMaxFilterBytes) {
    return absl::InvalidArgumentError(
        StrCat("filter_applied: ", blob->size(), " bytes (max 1 MiB)"));
  }
  if (blob->size() < 3 || (*blob)[1] != ':') {
    return absl::InvalidArgumentError("filter_applied: not '<code>:<msgpack>'");
  }
  absl::StatusOr<ResourceFilter> f = Parse((*blob)[0], blob->substr(2));
  if (!f.ok()) return WithContext(f.status(), "filter_applied");
  return f;
}

std::string EncodeBundleFilter(int64_t bundle_id, uint64_t offset, uint64_t length) {
  std::string out = "b:";
  MsgpackAppendArrayHeader(out, 3);
  MsgpackAppendUint(out, static_cast<uint64_t>(bundle_id));
  MsgpackAppendUint(out, offset);
  MsgpackAppendUint(out, length);
  return out;
}

std::string EncodeCompressFilter(int64_t compressed_id) {
  std::string out = "c:";
  MsgpackAppendArrayHeader(out, 2);
  MsgpackAppendUint(out, static_cast<uint64_t>(compressed_id));
  MsgpackAppendStr(out, "zstd");
  return out;
}

std::string EncodeSliceFilter(const std::vector<int64_t>& ids) {
  std::string out = "s:";
  MsgpackAppendArrayHeader(out, static_cast<uint32_t>(ids.size()));
  for (int64_t id : ids) MsgpackAppendUint(out, static_cast<uint64_t>(id));
  return out;
}

}  // namespace ota::image::v1
