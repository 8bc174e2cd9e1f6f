# The C++ snippets of the documentation (README.md and docs/*.md), extracted so that the test
# build compiles them.
#
# Convention, for whoever writes documentation:
# - Every block fenced with ```cpp is one complete translation unit: it includes what it uses.
#   A block that defines `int main(` is built as a program and run by ctest
#   (doc_snippet_<file>_<line>, which fails when the program exits with a non-zero code); any
#   other block is compiled only (it may declare functions it never defines).
# - ```cpp torch: the same, compiled only when LibTorch is found (DEIS_HAVE_TORCH).
# - Any other fence (```sh, ```cmake, ```text, a bare ```) is not compiled. To show C++ that is
#   not meant to compile, fence it without the cpp tag. Another word after cpp is an error, and
#   only ``` fences are read (not ~~~).
# Snippets are compiled like the tests (-Wall -Wextra -Wpedantic, -Werror with DEIS_WERROR),
# one translation unit each (no unity build), against deis, Eigen, Boost and nlohmann-json.
# Each generated file starts with a #line directive, so a compiler error names the markdown
# file and line.
#
# Two uses:
# - include()d by tests/CMakeLists.txt at configure time: deis_extract_snippets() writes the
#   files and returns their list; the markdown files are configure dependencies, so editing
#   one re-extracts at the next build.
# - cmake -DDEIS_SOURCE_DIR=<repo> -P tests/doc_snippets.cmake (the ctest test doc_snippets):
#   counts the snippets again, fails when there are none, and fails when the README's
#   complete example (the block that starts with "// Quickstart") differs from
#   examples/quickstart.cpp, the program ctest runs as example_quickstart.

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  cmake_minimum_required(VERSION 3.16)  # the policies of the project (while(TRUE), ...)
endif()

# deis_extract_snippets(<source dir> <output dir or ""> <result var>): the result is a list of
# "<kind>|<generated file>|<markdown file>:<line>" with kind cpp or torch. An empty output dir
# only counts. Writes a file only when its content changes, and removes snippet files of
# earlier runs that no longer exist.
function(deis_extract_snippets source_dir out_dir result_var)
  file(GLOB _docs "${source_dir}/docs/*.md")
  list(SORT _docs)
  set(_markdown "${source_dir}/README.md" ${_docs})
  set(_result "")
  set(_written "")
  foreach(_md IN LISTS _markdown)
    file(RELATIVE_PATH _rel "${source_dir}" "${_md}")
    string(MAKE_C_IDENTIFIER "${_rel}" _stem)
    file(READ "${_md}" _text)
    # A leading newline: every line of the file now starts after a "\n", and the number of
    # newlines up to and including the one before a line is that line's number.
    set(_full "\n${_text}")
    set(_offset 0)
    while(TRUE)
      string(SUBSTRING "${_full}" ${_offset} -1 _rest)
      string(REGEX MATCH "\n[ ]*```cpp( [a-z]+)?[ ]*\n" _open "${_rest}")
      if(NOT _open)
        break()
      endif()
      string(FIND "${_rest}" "${_open}" _at)
      math(EXPR _at "${_offset} + ${_at}")
      math(EXPR _upto "${_at} + 1")
      string(SUBSTRING "${_full}" 0 ${_upto} _before)
      string(REGEX REPLACE "[^\n]" "" _nl "${_before}")
      string(LENGTH "${_nl}" _fence_line)
      set(_kind cpp)
      if(_open MATCHES "```cpp torch")
        set(_kind torch)
      elseif(_open MATCHES "```cpp [a-z]")
        string(STRIP "${_open}" _open)
        message(FATAL_ERROR "${_rel}:${_fence_line}: unknown snippet tag in '${_open}' (tests/doc_snippets.cmake: ```cpp or ```cpp torch)")
      endif()
      string(LENGTH "${_open}" _len)
      math(EXPR _body_at "${_at} + ${_len}")
      string(SUBSTRING "${_full}" ${_body_at} -1 _tail)
      # The closing fence: the first line of the body that starts with ``` (indented or not).
      string(REGEX MATCH "\n[ ]*```" _close "\n${_tail}")
      if(NOT _close)
        message(FATAL_ERROR "${_rel}:${_fence_line}: ```cpp block without a closing fence")
      endif()
      string(FIND "\n${_tail}" "${_close}" _end)
      set(_body "")
      if(_end GREATER 0)
        string(SUBSTRING "${_tail}" 0 ${_end} _body)  # up to and with the body's last newline
      endif()
      math(EXPR _body_line "${_fence_line} + 1")
      set(_file "")
      if(out_dir)
        set(_file "${out_dir}/${_stem}_${_fence_line}.cpp")
        set(_content "// Extracted from ${_rel}:${_fence_line} by tests/doc_snippets.cmake; edit the markdown, not this file.\n#line ${_body_line} \"${_md}\"\n${_body}")
        set(_old "")
        if(EXISTS "${_file}")
          file(READ "${_file}" _old)
        endif()
        if(NOT _old STREQUAL _content)
          file(WRITE "${_file}" "${_content}")
        endif()
        list(APPEND _written "${_file}")
      endif()
      if(_kind STREQUAL "cpp" AND _body MATCHES "^// Quickstart")
        set(DEIS_SNIPPET_QUICKSTART "${_body}" PARENT_SCOPE)
      endif()
      list(APPEND _result "${_kind}|${_file}|${_rel}:${_fence_line}")
      # Go on from the closing fence's line: it does not start with a "\n" in the text searched
      # next, so it cannot be taken for an opening fence.
      math(EXPR _offset "${_body_at} + ${_end}")
    endwhile()
  endforeach()
  if(out_dir)
    file(GLOB _old_files "${out_dir}/*.cpp")
    foreach(_f IN LISTS _old_files)
      if(NOT _f IN_LIST _written)
        file(REMOVE "${_f}")
      endif()
    endforeach()
  endif()
  set(${result_var} "${_result}" PARENT_SCOPE)
endfunction()

# Script mode: the ctest check.
if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  if(NOT DEIS_SOURCE_DIR)
    message(FATAL_ERROR "usage: cmake -DDEIS_SOURCE_DIR=<repository> -P tests/doc_snippets.cmake")
  endif()
  set(DEIS_SNIPPET_QUICKSTART "")
  deis_extract_snippets("${DEIS_SOURCE_DIR}" "" _snippets)
  list(LENGTH _snippets _count)
  if(_count EQUAL 0)
    message(FATAL_ERROR "doc snippets: no ```cpp block in README.md or docs/*.md")
  endif()
  file(READ "${DEIS_SOURCE_DIR}/examples/quickstart.cpp" _example)
  if(NOT DEIS_SNIPPET_QUICKSTART)
    message(FATAL_ERROR "doc snippets: README.md has no ```cpp block starting with '// Quickstart' (the content of examples/quickstart.cpp)")
  endif()
  if(NOT DEIS_SNIPPET_QUICKSTART STREQUAL _example)
    message(FATAL_ERROR "doc snippets: README.md's complete example differs from examples/quickstart.cpp; keep them equal")
  endif()
  foreach(_s IN LISTS _snippets)
    string(REPLACE "|" ";" _parts "${_s}")
    list(GET _parts 0 _kind)
    list(GET _parts 2 _where)
    message(STATUS "snippet ${_where} (${_kind})")
  endforeach()
  message(STATUS "doc snippets: ${_count} C++ blocks")
endif()
