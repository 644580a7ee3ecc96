# libFuzzer targets (label fuzz) over the two parsers of untrusted input: study configs and
# safetensors graph files. Only a clang build with GRAPHSHARD_FUZZ=ON builds them, from the two
# loader sources alone (no libgraphshard): props/fuzz/run_fuzz.sh BUILD_DIR SECONDS configures,
# builds and runs them. The corpora in props/fuzz/corpus are also a unit test of every build.
option(GRAPHSHARD_FUZZ "Build the libFuzzer targets (clang only)" OFF)
set(GRAPHSHARD_FUZZ_SECONDS 30 CACHE STRING "Seconds each ctest fuzz.* entry fuzzes")

set(GRAPHSHARD_FUZZ_CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus)

# Every corpus file, in any build: valid-* files load, the others raise c10::ValueError (crash
# inputs found by fuzzing stay here as regressions).
graphshard_props(graphshard_fuzz_corpus_tests LABELS unit SOURCES fuzz_corpus_test.cpp)
target_link_libraries(graphshard_fuzz_corpus_tests_cases PUBLIC graphshard_study)
target_compile_definitions(graphshard_fuzz_corpus_tests_cases
                           PRIVATE GRAPHSHARD_FUZZ_CORPUS="${GRAPHSHARD_FUZZ_CORPUS}")

if(GRAPHSHARD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GRAPHSHARD_FUZZ needs clang with libFuzzer (CXX=clang++), got "
                        "${CMAKE_CXX_COMPILER_ID}")
  endif()
  set(sanitizers address,undefined)
  add_library(graphshard_fuzz_loaders STATIC ${PROJECT_SOURCE_DIR}/bench/study_config.cpp
                                             ${PROJECT_SOURCE_DIR}/bench/weather_graphs.cpp)
  target_include_directories(graphshard_fuzz_loaders PUBLIC ${PROJECT_SOURCE_DIR}/bench)
  target_link_libraries(graphshard_fuzz_loaders PUBLIC ${TORCH_LIBRARIES}
                                                       nlohmann_json::nlohmann_json)
  # Undefined behaviour stops the run (a finding), instead of printing and going on.
  target_compile_options(graphshard_fuzz_loaders PUBLIC -fsanitize=fuzzer-no-link,${sanitizers}
                         -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
  target_link_options(graphshard_fuzz_loaders PUBLIC -fsanitize=${sanitizers})

  set(fuzz_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
  foreach(name study_config graph_file)
    add_executable(fuzz_${name} fuzz/fuzz_${name}.cpp)
    target_link_libraries(fuzz_${name} PRIVATE graphshard_fuzz_loaders)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    # New inputs go to the build tree's corpus (the first directory); the seed corpus in the
    # source tree is only read. Crash inputs land in fuzz/artifacts/.
    file(MAKE_DIRECTORY ${fuzz_work}/corpus/${name} ${fuzz_work}/artifacts)
    add_test(NAME fuzz.${name}
             COMMAND fuzz_${name} -max_total_time=${GRAPHSHARD_FUZZ_SECONDS} -rss_limit_mb=4096
                     -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1
                     -dict=${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${name}.dict
                     -artifact_prefix=${fuzz_work}/artifacts/${name}-
                     ${fuzz_work}/corpus/${name} ${GRAPHSHARD_FUZZ_CORPUS}/${name}
             WORKING_DIRECTORY ${fuzz_work})
    math(EXPR fuzz_timeout "${GRAPHSHARD_FUZZ_SECONDS} + 180")
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT ${fuzz_timeout} ENVIRONMENT
                         "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endforeach()
endif()
