# Finds a CBLAS, preferring OpenBLAS (for openblas_set_num_threads).
# Sets HETRUN_CBLAS_FOUND, target hetrun::cblas (for tools that link it), HETRUN_HAVE_OPENBLAS,
# and HETRUN_OPENBLAS_SONAME: the runtime library the CPU backend dlopen()s (it does not link
# it, so that it can choose OpenBLAS's kernels from CPUID before the library loads).
find_path(HETRUN_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread)
find_library(HETRUN_OPENBLAS_LIB NAMES openblas)
set(HETRUN_CBLAS_FOUND OFF)
if(HETRUN_CBLAS_INCLUDE AND HETRUN_OPENBLAS_LIB)
  set(HETRUN_CBLAS_FOUND ON)
  add_library(hetrun::cblas INTERFACE IMPORTED)
  set_target_properties(hetrun::cblas PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES ${HETRUN_CBLAS_INCLUDE}
    INTERFACE_LINK_LIBRARIES ${HETRUN_OPENBLAS_LIB}
    INTERFACE_COMPILE_DEFINITIONS HETRUN_HAVE_OPENBLAS=1)
  # The versioned name next to the development link (Debian's alternatives pick the variant).
  get_filename_component(_blas_dir ${HETRUN_OPENBLAS_LIB} DIRECTORY)
  if(EXISTS ${_blas_dir}/libopenblas.so.0)
    set(HETRUN_OPENBLAS_SONAME ${_blas_dir}/libopenblas.so.0)
  else()
    set(HETRUN_OPENBLAS_SONAME ${HETRUN_OPENBLAS_LIB})
  endif()
  message(STATUS "CBLAS: OpenBLAS ${HETRUN_OPENBLAS_LIB} (${HETRUN_CBLAS_INCLUDE}), "
                 "loaded at run time as ${HETRUN_OPENBLAS_SONAME}")
endif()
