# What `hetrun --version` says about this build: the commit (git describe at configure time;
# HETRUN_BUILD_COMMIT overrides it, e.g. for a release tarball or a Spack build; "unknown"
# outside git), the build type, the compiler and the backend modules built. Written to
# generated/hetrun_build_info.h, which only launcher/main.c includes, so a new commit
# recompiles one file.
set(HETRUN_BUILD_COMMIT "" CACHE STRING "Commit --version reports (empty: git describe)")
set(_commit "${HETRUN_BUILD_COMMIT}")
if(NOT _commit)
  set(_commit unknown)
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} describe --always --dirty --tags
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out
      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --absolute-git-dir
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} RESULT_VARIABLE _rc_dir OUTPUT_VARIABLE _gitdir
      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(_rc EQUAL 0 AND _out)
      set(_commit "${_out}")
    endif()
    # Configure again when HEAD moves (a commit, a checkout), so the commit stays current.
    if(_rc_dir EQUAL 0 AND EXISTS "${_gitdir}/logs/HEAD")
      set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
        "${_gitdir}/logs/HEAD")
    endif()
  endif()
endif()

set(_backends "")
foreach(_b cpu opencl cuda)
  if(TARGET hetrun_backend_${_b})
    string(APPEND _backends " ${_b}")
  endif()
endforeach()
string(STRIP "${_backends}" HETRUN_BUILD_BACKENDS)
set(HETRUN_BUILD_COMMIT_TEXT "${_commit}")
if(CMAKE_CONFIGURATION_TYPES)
  set(HETRUN_BUILD_TYPE_TEXT "multi-config")
else()
  set(HETRUN_BUILD_TYPE_TEXT "${CMAKE_BUILD_TYPE}")
endif()
if(HETRUN_SANITIZE)
  string(APPEND HETRUN_BUILD_TYPE_TEXT ", ASan+UBSan")
endif()
set(HETRUN_BUILD_COMPILER_TEXT "${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER_VERSION}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/hetrun_build_info.h.in
  ${CMAKE_BINARY_DIR}/generated/hetrun_build_info.h @ONLY)
message(STATUS "hetrun build: commit ${_commit}, ${HETRUN_BUILD_TYPE_TEXT}, backends ${HETRUN_BUILD_BACKENDS}")
