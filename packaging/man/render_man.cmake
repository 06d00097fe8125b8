# cmake -DHETRUN=bin -DHELP2ROFF=bin -DVERSION=v -DOUT=dir -P render_man.cmake
# Writes OUT/man1/hetrun.1 and one OUT/man1/hetrun-<command>.1 per command that
# `hetrun --help` lists, each from the text `--help` prints; then OUT/man.stamp.
file(REMOVE_RECURSE ${OUT}/man1)
file(MAKE_DIRECTORY ${OUT}/man1)
execute_process(COMMAND ${HETRUN} --help OUTPUT_VARIABLE _help RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "render_man: '${HETRUN} --help' exited ${_rc}")
endif()

# The "commands:" block: "  NAME   summary" lines up to the first blank line.
string(REGEX MATCH "commands:\n([^\n]+\n)+" _block "${_help}")
string(REGEX MATCHALL "  [a-z][a-z0-9-]*  +[^\n]+" _rows "${_block}")
if(NOT _rows)
  message(FATAL_ERROR "render_man: no commands listed in '${HETRUN} --help'")
endif()
set(_names "")
foreach(_row IN LISTS _rows)
  string(REGEX REPLACE "^  ([a-z][a-z0-9-]*)  +(.*)$" "\\1" _name "${_row}")
  string(REGEX REPLACE "^  ([a-z][a-z0-9-]*)  +(.*)$" "\\2" _summary "${_row}")
  list(APPEND _names ${_name})
  set(_summary_${_name} "${_summary}")
endforeach()

set(_all "")
foreach(_name IN LISTS _names)
  string(APPEND _all "hetrun-${_name}(1), ")
endforeach()
set(_docs "the README and guides in share/doc/hetrun (docs/jobspec.md, docs/exit-codes.md, docs/backend-guide.md)")

function(render page summary see_also)
  execute_process(COMMAND ${ARGN}
    COMMAND ${HELP2ROFF} --name ${page} --summary ${summary} --version ${VERSION}
            --see-also ${see_also}
    OUTPUT_FILE ${OUT}/man1/${page}.1 RESULTS_VARIABLE _rcs)
  # A command whose --help fails still gets a page; tests/install says which one.
  list(GET _rcs 0 _help_rc)
  list(GET _rcs 1 _roff_rc)
  if(NOT _help_rc EQUAL 0)
    message(WARNING "render_man: ${page}: '${ARGN}' exited ${_help_rc}")
  endif()
  if(NOT _roff_rc EQUAL 0)
    message(FATAL_ERROR "render_man: ${page}: help2roff exited ${_roff_rc}")
  endif()
endfunction()

render(hetrun "run YAML job specs on any accelerator, one MPI rank per device"
  "${_all}${_docs}" ${HETRUN} --help)
foreach(_name IN LISTS _names)
  render(hetrun-${_name} "${_summary_${_name}}" "hetrun(1), ${_docs}"
    ${HETRUN} ${_name} --help)
endforeach()
file(TOUCH ${OUT}/man.stamp)
