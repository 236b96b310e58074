# One line per fuzz target; each parser module adds its own.
ota_add_fuzzer(list_lines_fuzz SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/list_lines_fuzz.cc LIBS ota_image)
