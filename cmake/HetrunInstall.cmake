# What `cmake --install` puts under the prefix besides the binaries and modules (those are
# installed where they are built):
#   include/hetrun/                 backend.h, ops.h, reference.h
#   lib/libhetrun_reference.a       the op table and reference kernels (hetrun::reference)
#   lib/cmake/hetrun/               find_package(hetrun): hetrun::headers, hetrun::reference,
#                                   hetrun_add_backend()
#   lib/pkgconfig/hetrun.pc
#   share/hetrun/template/          the template backend, buildable out of tree
#   share/hetrun/examples/, share/hetrun/bench/   job specs, data, bench suites, plot.py
#   share/doc/hetrun/               README, LICENSE, docs/ (backend guide, op table, ...)
#   share/man/man1/                 hetrun(1), hetrun-<command>(1) (packaging/man)
#   share/modulefiles/hetrun/       <version>.lua (Lmod) and <version> (Tcl modules)
include(CMakePackageConfigHelpers)
set(HETRUN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/hetrun)
set(HETRUN_DATA_DIR ${CMAKE_INSTALL_DATADIR}/hetrun)

# ---- the SDK ----
install(DIRECTORY include/hetrun DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS hetrun_headers hetrun_kernels EXPORT hetrunTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT hetrunTargets NAMESPACE hetrun:: DESTINATION ${HETRUN_CMAKE_DIR})

# The ABI a module built against these headers declares, read from the header itself.
file(STRINGS include/hetrun/backend.h _abi REGEX "^#define HETRUN_ABI_(MAJOR|MINOR) [0-9]+")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*" "\\1.\\2" HETRUN_ABI_VERSION "${_abi}")
configure_package_config_file(cmake/hetrunConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/hetrunConfig.cmake INSTALL_DESTINATION ${HETRUN_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR HETRUN_MODULE_INSTALL_SUBDIR
            HETRUN_DATA_DIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/hetrunConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/hetrunConfig.cmake
  ${CMAKE_BINARY_DIR}/cmake/hetrunConfigVersion.cmake cmake/HetrunAddBackend.cmake
  DESTINATION ${HETRUN_CMAKE_DIR})

install(FILES backends/template/CMakeLists.txt backends/template/template_backend.c
  backends/template/README.md DESTINATION ${HETRUN_DATA_DIR}/template)

# ---- docs, examples, bench suites ----
install(FILES README.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
# docs/ kept as a folder, so the README's links work in the installed copy too.
install(DIRECTORY docs DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Examples as in the tree, without what running them in place leaves behind.
install(DIRECTORY examples/ DESTINATION ${HETRUN_DATA_DIR}/examples
  PATTERN "*.tok" EXCLUDE PATTERN "*-checkpoints" EXCLUDE PATTERN "*report*.json" EXCLUDE
  PATTERN "*report*.csv" EXCLUDE)
install(DIRECTORY bench/suites DESTINATION ${HETRUN_DATA_DIR}/bench)
install(PROGRAMS bench/plot.py DESTINATION ${HETRUN_DATA_DIR}/bench)

# ---- files that name the install prefix: written at install time, so that
# `cmake --install --prefix P` (Spack, packaging into DESTDIR) gets P, not the configure-time
# prefix ----
set(_at_install "")
foreach(_f IN ITEMS
    "cmake/hetrun.pc.in|${CMAKE_INSTALL_LIBDIR}/pkgconfig/hetrun.pc"
    "packaging/modulefiles/hetrun.lua.in|${CMAKE_INSTALL_DATADIR}/modulefiles/hetrun/${PROJECT_VERSION}.lua"
    "packaging/modulefiles/hetrun.tcl.in|${CMAKE_INSTALL_DATADIR}/modulefiles/hetrun/${PROJECT_VERSION}")
  string(REPLACE "|" ";" _pair "${_f}")
  list(GET _pair 0 _in)
  list(GET _pair 1 _out)
  string(APPEND _at_install "
    message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${_out}\")
    configure_file(\"${PROJECT_SOURCE_DIR}/${_in}\"
      \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${_out}\" @ONLY)")
endforeach()
install(CODE "
  set(HETRUN_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(HETRUN_VERSION \"${PROJECT_VERSION}\")
  set(HETRUN_ABI_VERSION \"${HETRUN_ABI_VERSION}\")
  set(HETRUN_BACKENDS \"${HETRUN_BUILD_BACKENDS}\")
  set(HETRUN_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(HETRUN_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(HETRUN_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(HETRUN_MANDIR \"${CMAKE_INSTALL_MANDIR}\")
  set(HETRUN_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
  set(HETRUN_DATADIR \"${HETRUN_DATA_DIR}\")
  set(HETRUN_MODULEDIR \"${HETRUN_MODULE_INSTALL_SUBDIR}\")
  ${_at_install}")
