# Jetson backends (included from this directory's CMakeLists.txt): the shared slot layer, CBoot
# (with BUP firmware through nv_update_engine) and UEFI (with capsule firmware and the BSP guard).
add_library(ota_boot_jetson STATIC
  ${CMAKE_CURRENT_LIST_DIR}/nvbootctrl.cc
  ${CMAKE_CURRENT_LIST_DIR}/extlinux.cc
  ${CMAKE_CURRENT_LIST_DIR}/firmware_package.cc
  ${CMAKE_CURRENT_LIST_DIR}/efi_var.cc
  ${CMAKE_CURRENT_LIST_DIR}/bup_updater.cc
  ${CMAKE_CURRENT_LIST_DIR}/capsule_updater.cc
  ${CMAKE_CURRENT_LIST_DIR}/jetson_common.cc
  ${CMAKE_CURRENT_LIST_DIR}/cboot_boot_controller.cc
  ${CMAKE_CURRENT_LIST_DIR}/jetson_uefi_boot_controller.cc)
target_link_libraries(ota_boot_jetson PUBLIC ota_boot ota_fs ota_log ota_util absl::status
                                             absl::statusor
                                      PRIVATE ota_config yaml-cpp OpenSSL::Crypto)
