#include "otaclient/service/status_mapping.h"

#include <string>

namespace ota::service {
namespace {

OtaClientV2::StatusOta ToWire(update::OtaStatus status) {
  return static_cast<OtaClientV2::StatusOta>(static_cast<int>(status));
}

OtaClientV2::FailureType FailureTypeToWire(int failure_type) {
  if (!OtaClientV2::FailureType_IsValid(failure_type)) return OtaClientV2::UNRECOVERABLE;
  return static_cast<OtaClientV2::FailureType>(failure_type);
}

// Like upstream, only a failed operation carries its failure; every other status reports
// NO_FAILURE and "" (an aborted update included: ABORTED says it all).
bool CarriesFailure(update::OtaStatus status) {
  return status == update::OtaStatus::kFailure || status == update::OtaStatus::kRollbackFailure;
}

void FillUpdateStatus(const update::Progress& p, OtaClientV2::UpdateStatus* out) {
  out->set_update_firmware_version(p.update_firmware_version);
  out->set_total_files_size_uncompressed(p.total_files_size);
  out->set_total_files_num(p.total_files_num);
  out->set_update_start_timestamp(p.update_start_timestamp);
  out->set_phase(static_cast<OtaClientV2::UpdatePhase>(static_cast<int>(p.phase)));
  out->set_total_download_files_num(p.total_download_files_num);
  out->set_total_download_files_size(p.total_download_files_size);
  out->set_downloaded_files_num(p.downloaded_files_num);
  out->set_downloaded_bytes(p.downloaded_bytes);
  out->set_downloaded_files_size(p.downloaded_files_size);
  out->set_downloading_errors(p.downloading_errors);
  // The engine writes a fresh standby and never removes files one by one.
  out->set_total_remove_files_num(0);
  out->set_removed_files_num(0);
  out->set_processed_files_num(p.processed_files_num);
  out->set_processed_files_size(p.processed_files_size);
  MillisToDuration(p.total_elapsed_ms, out->mutable_total_elapsed_time());
  MillisToDuration(p.delta_elapsed_ms, out->mutable_delta_generating_elapsed_time());
  MillisToDuration(p.download_elapsed_ms, out->mutable_downloading_elapsed_time());
  MillisToDuration(p.apply_elapsed_ms, out->mutable_update_applying_elapsed_time());
}

void FillStatusProgress(const update::Progress& p, OtaClientV2::StatusProgress* out) {
  out->set_phase(static_cast<OtaClientV2::StatusProgressPhase>(static_cast<int>(p.v1_phase)));
  out->set_total_regular_files(p.total_files_num);
  out->set_regular_files_processed(p.processed_files_num);
  out->set_files_processed_copy(p.files_copy);
  out->set_files_processed_link(p.files_link);
  out->set_files_processed_download(p.files_download);
  out->set_file_size_processed_copy(p.size_copy);
  out->set_file_size_processed_link(p.size_link);
  out->set_file_size_processed_download(p.size_download);
  MillisToDuration(p.copy_elapsed_ms, out->mutable_elapsed_time_copy());
  MillisToDuration(p.link_elapsed_ms, out->mutable_elapsed_time_link());
  MillisToDuration(p.download_elapsed_ms, out->mutable_elapsed_time_download());
  out->set_errors_download(p.downloading_errors);
  out->set_total_regular_file_size(p.total_files_size);
  MillisToDuration(p.total_elapsed_ms, out->mutable_total_elapsed_time());
  out->set_download_bytes(p.downloaded_bytes);
}

}  // namespace

void MillisToDuration(uint64_t millis, google::protobuf::Duration* out) {
  out->set_seconds(static_cast<int64_t>(millis / 1000));
  out->set_nanos(static_cast<int32_t>((millis % 1000) * 1000000));
}

OtaClientV2::StatusResponseEcuV2 ToEcuStatusV2(const update::StatusSnapshot& snapshot,
                                               std::string_view ecu_id,
                                               std::string_view otaclient_version) {
  OtaClientV2::StatusResponseEcuV2 out;
  out.set_ecu_id(std::string(ecu_id));
  out.set_firmware_version(snapshot.firmware_version);
  out.set_otaclient_version(std::string(otaclient_version));
  out.set_release_name(snapshot.release_name);
  out.set_release_id(snapshot.release_id);
  out.set_image_id(snapshot.image_id);
  out.set_ota_status(ToWire(snapshot.status));
  // Set on every entry, as upstream does (fleets read them without checking presence).
  const bool failed = CarriesFailure(snapshot.status);
  out.set_failure_type(failed ? FailureTypeToWire(snapshot.failure_type) : OtaClientV2::NO_FAILURE);
  out.set_failure_reason(failed ? snapshot.failure_reason : std::string());
  if (snapshot.status == update::OtaStatus::kUpdating) {
    FillUpdateStatus(snapshot.progress, out.mutable_update_status());
  }
  return out;
}

OtaClientV2::StatusResponseEcu ToEcuStatusV1(const update::StatusSnapshot& snapshot,
                                             std::string_view ecu_id) {
  OtaClientV2::StatusResponseEcu out;
  out.set_ecu_id(std::string(ecu_id));
  out.set_result(OtaClientV2::NO_FAILURE);
  OtaClientV2::Status* status = out.mutable_status();
  status->set_status(ToWire(snapshot.status));
  const bool failed = CarriesFailure(snapshot.status);
  status->set_failure(failed ? FailureTypeToWire(snapshot.failure_type) : OtaClientV2::NO_FAILURE);
  status->set_failure_reason(failed ? snapshot.failure_reason : std::string());
  status->set_version(snapshot.firmware_version);
  FillStatusProgress(snapshot.progress, status->mutable_progress());
  return out;
}

}  // namespace ota::service
