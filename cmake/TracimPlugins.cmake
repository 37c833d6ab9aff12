# tracim_plugin_folder(<name> MANIFEST <plugin.json> [TARGETS <t>...]
#                      [FILES <f>...] [OUTPUT_DIR <dir>])
# Assembles a deployable plugin folder <dir>/tracim_backend_<name>/ holding
# plugin.json, the built TARGETS (executables or shared libraries) and FILES,
# exactly as it would be deployed under plugin.folder_path.
# OUTPUT_DIR defaults to TRACIM_PLUGIN_OUTPUT_DIR (build/plugins).
function(tracim_plugin_folder name)
  cmake_parse_arguments(ARG "" "MANIFEST;OUTPUT_DIR" "TARGETS;FILES" ${ARGN})
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${TRACIM_PLUGIN_OUTPUT_DIR})
  endif()
  set(dir ${ARG_OUTPUT_DIR}/tracim_backend_${name})
  file(MAKE_DIRECTORY ${dir})
  configure_file(${ARG_MANIFEST} ${dir}/plugin.json COPYONLY)
  foreach(f ${ARG_FILES})
    get_filename_component(base ${f} NAME)
    configure_file(${f} ${dir}/${base} COPYONLY)
  endforeach()
  foreach(t ${ARG_TARGETS})
    set_target_properties(${t} PROPERTIES
      RUNTIME_OUTPUT_DIRECTORY ${dir}
      LIBRARY_OUTPUT_DIRECTORY ${dir})
  endforeach()
endfunction()

# tracim_add_unit_test(<name> SOURCES <src>... LIBS <lib>...)
# A GoogleTest binary registered with ctest (one ctest entry per TEST).
include(GoogleTest)
function(tracim_add_unit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR})
  tracim_target_warnings(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120)
endfunction()

# tracim_link_grpc_statically(<target>)
# Links gRPC, protobuf, Abseil and their dependencies into <target> from
# Debian's static archives (shipped by the same -dev packages). A C++ plugin
# executable linked this way starts in ~3 ms instead of ~20 ms: with the
# shared libraries, the dynamic loader's symbol lookups for gRPC's and
# protobuf's relocations dominate a plugin's spawn-to-ready time
# (docs/performance.md). Use with tracim_proto_static and
# tracim_plugin_sdk_static, never with their shared variants (two protobuf
# runtimes in one process would register every descriptor twice).
function(tracim_link_grpc_statically target)
  set(archives)
  foreach(lib grpc++ grpc gpr upb address_sorting protobuf re2 cares ssl crypto z)
    find_library(TRACIM_STATIC_${lib} NAMES lib${lib}.a REQUIRED)
    list(APPEND archives ${TRACIM_STATIC_${lib}})
  endforeach()
  file(GLOB absl_archives /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/libabsl_*.a)
  if(NOT absl_archives)
    message(FATAL_ERROR "no static Abseil archives (libabsl-dev) under /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}")
  endif()
  find_library(TRACIM_SYSTEMD systemd REQUIRED)
  target_link_libraries(${target} PRIVATE
    -Wl,--start-group ${archives} ${absl_archives} -Wl,--end-group
    ${TRACIM_SYSTEMD} Threads::Threads ${CMAKE_DL_LIBS})
endfunction()

# tracim_add_static_plugin(<target> SOURCES <src>...)
# A C++ plugin executable (TRACIM_PLUGIN_MAIN) with the SDK, the generated
# protocol code, gRPC, protobuf and Abseil linked statically: no shared
# library but libc, libstdc++ and Boost.JSON to load at each launch.
function(tracim_add_static_plugin target)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_executable(${target} ${ARG_SOURCES})
  target_include_directories(${target} PRIVATE
    ${CMAKE_SOURCE_DIR}/sdk_cpp/include ${CMAKE_SOURCE_DIR}/proto/include ${TRACIM_PROTO_GEN_DIR})
  add_dependencies(${target} tracim_plugin_sdk_static tracim_proto_static tracim_contract)
  # Archive files, not targets: the targets would bring the shared
  # libraries' usage requirements (a second protobuf and Abseil) along.
  target_link_libraries(${target} PRIVATE
    $<TARGET_FILE:tracim_plugin_sdk_static> $<TARGET_FILE:tracim_contract>
    $<TARGET_FILE:tracim_proto_static> Boost::json)
  tracim_link_grpc_statically(${target})
  tracim_target_warnings(${target})
endfunction()
