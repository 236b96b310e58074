# Jetson CBoot backend (included from this directory's CMakeLists.txt).
add_library(ota_boot_cboot STATIC
  ${CMAKE_CURRENT_LIST_DIR}/nvbootctrl.cc
  ${CMAKE_CURRENT_LIST_DIR}/extlinux.cc
  ${CMAKE_CURRENT_LIST_DIR}/cboot_boot_controller.cc)
target_link_libraries(ota_boot_cboot PUBLIC ota_boot ota_fs ota_log ota_util absl::status
                                            absl::statusor)
