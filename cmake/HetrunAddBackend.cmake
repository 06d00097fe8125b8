# hetrun_add_backend(<name> [SOURCES] <source>... [NO_INSTALL] [DESTINATION <dir>]
#                    [VERSION <version>])
#
# Builds the backend module libhetrun_backend_<name>.so (target hetrun_backend_<name>) the way
# the launcher expects it: a MODULE exporting only hetrun_backend_entry (hidden visibility,
# static libraries' symbols excluded), no undefined symbols left for load time, C11, linked
# with the reference library (hetrun/reference.h). HETRUN_VERSION is defined to VERSION, or
# to the calling project's version, for the module's `version` string.
#
# Installs it into DESTINATION, by default <libdir>/hetrun under the caller's prefix (point
# HETRUN_BACKEND_PATH there, or register it); HETRUN_MODULE_DIR (from find_package(hetrun))
# is hetrun's own module folder. The same file serves hetrun's tree and the installed SDK
# (lib/cmake/hetrun): in the tree, HETRUN_MODULE_OUTPUT_DIR, HETRUN_MODULE_INSTALL_SUBDIR and
# HETRUN_BACKEND_PRIVATE_INCLUDES are set by the top-level CMakeLists.txt.
function(hetrun_add_backend name)
  cmake_parse_arguments(B "NO_INSTALL" "DESTINATION;VERSION" "SOURCES" ${ARGN})
  set(_sources ${B_SOURCES} ${B_UNPARSED_ARGUMENTS})
  if(NOT name MATCHES "^[A-Za-z0-9_]+$")
    message(FATAL_ERROR "hetrun_add_backend: name '${name}' must be letters, digits or '_' "
                        "(it is the module's file name and the backend name jobs use)")
  endif()
  if(NOT _sources)
    message(FATAL_ERROR "hetrun_add_backend(${name}): no SOURCES")
  endif()
  set(_t hetrun_backend_${name})
  add_library(${_t} MODULE ${_sources})
  set_target_properties(${_t} PROPERTIES
    PREFIX "lib"
    C_STANDARD 11
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(HETRUN_MODULE_OUTPUT_DIR)
    set_target_properties(${_t} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${HETRUN_MODULE_OUTPUT_DIR})
  endif()
  set(_version "${B_VERSION}")
  if(NOT _version)
    set(_version "${PROJECT_VERSION}")
  endif()
  if(NOT _version)
    set(_version "0")
  endif()
  target_compile_definitions(${_t} PRIVATE HETRUN_VERSION="${_version}")
  target_link_libraries(${_t} PRIVATE hetrun::reference)
  if(TARGET hetrun_warnings) # hetrun's own tree: its warning flags
    target_link_libraries(${_t} PRIVATE hetrun_warnings)
  endif()
  if(HETRUN_BACKEND_PRIVATE_INCLUDES)
    target_include_directories(${_t} PRIVATE ${HETRUN_BACKEND_PRIVATE_INCLUDES})
  endif()
  target_link_options(${_t} PRIVATE -Wl,--no-undefined -Wl,--exclude-libs,ALL)
  if(NOT B_NO_INSTALL)
    set(_dest "${B_DESTINATION}")
    if(NOT _dest AND HETRUN_MODULE_INSTALL_SUBDIR)
      set(_dest "${HETRUN_MODULE_INSTALL_SUBDIR}")
    elseif(NOT _dest AND CMAKE_INSTALL_LIBDIR)
      set(_dest "${CMAKE_INSTALL_LIBDIR}/hetrun")
    elseif(NOT _dest)
      set(_dest "lib/hetrun")
    endif()
    install(TARGETS ${_t} LIBRARY DESTINATION ${_dest})
  endif()
endfunction()

# hetrun_add_conformance_test(<name> [ARGS <arg>...])
#
# A ctest test, <name>_conformance, that certifies the module of hetrun_add_backend(<name>)
# with hetrun's conformance command (HETRUN_CONFORMANCE_COMMAND, set by find_package(hetrun)),
# the module's build folder first on HETRUN_BACKEND_PATH. Exit 77 (no device) is a skip.
# The cache variable HETRUN_CONFORMANCE_ARGS adds arguments to every such test (--quick).
function(hetrun_add_conformance_test name)
  cmake_parse_arguments(C "" "" "ARGS" ${ARGN})
  if(NOT HETRUN_CONFORMANCE_COMMAND)
    message(FATAL_ERROR "hetrun_add_conformance_test(${name}): HETRUN_CONFORMANCE_COMMAND is "
                        "not set (find_package(hetrun) sets it from the installed hetrun)")
  endif()
  set(HETRUN_CONFORMANCE_ARGS "" CACHE STRING "Extra arguments of the conformance tests")
  add_test(NAME ${name}_conformance
    COMMAND ${HETRUN_CONFORMANCE_COMMAND} --backend ${name} ${C_ARGS} ${HETRUN_CONFORMANCE_ARGS})
  set_tests_properties(${name}_conformance PROPERTIES SKIP_RETURN_CODE 77
    ENVIRONMENT "HETRUN_BACKEND_PATH=$<TARGET_FILE_DIR:hetrun_backend_${name}>")
endfunction()
