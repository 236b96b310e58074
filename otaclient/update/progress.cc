#include "otaclient/update/progress.h"

namespace ota::update {

std::string_view OtaImageFormatName(OtaImageFormat format) {
  switch (format) {
    case OtaImageFormat::kUnknown:
      return "";
    case OtaImageFormat::kLegacy:
      return "legacy";
    case OtaImageFormat::kV1:
      return "v1";
  }
  return "";
}

void ProgressCounters::Reset() {
  for (std::atomic<uint64_t>* c : {&total_files_num,
                                   &total_files_size,
                                   &total_download_files_num,
                                   &total_download_files_size,
                                   &downloaded_files_num,
                                   &downloaded_files_size,
                                   &downloaded_bytes,
                                   &downloading_errors,
                                   &processed_files_num,
                                   &processed_files_size,
                                   &files_copy,
                                   &size_copy,
                                   &files_link,
                                   &size_link,
                                   &files_download,
                                   &size_download,
                                   &copy_elapsed_ns,
                                   &link_elapsed_ns,
                                   &delta_files_hashed,
                                   &delta_bytes_hashed,
                                   &delta_reused,
                                   &delta_resumed,
                                   &delta_from_standby,
                                   &in_place_kept,
                                   &in_place_removed,
                                   &in_place_rehashed,
                                   &total_directories_num,
                                   &total_symlinks_num}) {
    c->store(0, std::memory_order_relaxed);
  }
  in_place.store(false, std::memory_order_relaxed);
  image_format.store(OtaImageFormat::kUnknown, std::memory_order_relaxed);
}

void ProgressCounters::FillCounters(Progress& out) const {
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  out.total_files_num = get(total_files_num);
  out.total_files_size = get(total_files_size);
  out.total_download_files_num = get(total_download_files_num);
  out.total_download_files_size = get(total_download_files_size);
  out.downloaded_files_num = get(downloaded_files_num);
  out.downloaded_files_size = get(downloaded_files_size);
  out.downloaded_bytes = get(downloaded_bytes);
  out.downloading_errors = get(downloading_errors);
  out.processed_files_num = get(processed_files_num);
  out.processed_files_size = get(processed_files_size);
  out.files_copy = get(files_copy);
  out.size_copy = get(size_copy);
  out.files_link = get(files_link);
  out.size_link = get(size_link);
  out.files_download = get(files_download);
  out.size_download = get(size_download);
  out.copy_elapsed_ms = get(copy_elapsed_ns) / 1000000;
  out.link_elapsed_ms = get(link_elapsed_ns) / 1000000;
  out.total_directories_num = get(total_directories_num);
  out.total_symlinks_num = get(total_symlinks_num);
  out.image_format = image_format.load(std::memory_order_relaxed);
  out.in_place = in_place.load(std::memory_order_relaxed);
  out.in_place_rehashed = get(in_place_rehashed);
  out.delta_files_hashed = get(delta_files_hashed);
}

void ProgressCounters::AddProcessed(Op op, uint64_t size, uint64_t elapsed_ns) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  switch (op) {
    case Op::kCopy:
      files_copy.fetch_add(1, kRelaxed);
      size_copy.fetch_add(size, kRelaxed);
      copy_elapsed_ns.fetch_add(elapsed_ns, kRelaxed);
      break;
    case Op::kLink:
      files_link.fetch_add(1, kRelaxed);
      size_link.fetch_add(size, kRelaxed);
      link_elapsed_ns.fetch_add(elapsed_ns, kRelaxed);
      break;
    case Op::kDownload:
      files_download.fetch_add(1, kRelaxed);
      size_download.fetch_add(size, kRelaxed);
      // Placing a downloaded file is a local copy/rename; its time counts with the copies.
      copy_elapsed_ns.fetch_add(elapsed_ns, kRelaxed);
      break;
  }
  processed_files_size.fetch_add(size, kRelaxed);
  processed_files_num.fetch_add(1, kRelaxed);
}

}  // namespace ota::update
