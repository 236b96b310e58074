# One line per fuzz target; each parser module adds its own.
ota_add_fuzzer(list_lines_fuzz SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/list_lines_fuzz.cc LIBS ota_image)
ota_add_fuzzer(config_ecu_info_fuzz SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/config_ecu_info_fuzz.cc LIBS ota_config ota_log)
ota_add_fuzzer(config_proxy_info_fuzz SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/config_proxy_info_fuzz.cc LIBS ota_config ota_log)
ota_add_fuzzer(metadata_jwt_fuzz SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/metadata_jwt_fuzz.cc LIBS ota_image)
ota_add_fuzzer(otactl_request_fuzz SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/otactl_request_fuzz.cc LIBS otactl_lib)
ota_add_fuzzer(cookies_fuzz SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/cookies_fuzz.cc LIBS ota_http)
ota_add_fuzzer(update_idmap_fuzz SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/update_idmap_fuzz.cc LIBS ota_update)
