# Rank faults in every primitive and in shard_graph_to_local (SPEC §5), label `faults`.
# The steps and their inputs (faults_cases.cpp) are shared by the simulated tests (one ctest
# entry per gtest test) and the Gloo tests (one launch of 3 processes per fault: the world is
# broken afterwards on purpose).
add_library(graphshard_faults_cases STATIC faults_cases.cpp)
target_link_libraries(graphshard_faults_cases PUBLIC graphshard_props_common)

add_executable(graphshard_faults_tests faults_sim_test.cpp)
target_link_libraries(graphshard_faults_tests PRIVATE graphshard_faults_cases GTest::gtest_main)
gtest_discover_tests(graphshard_faults_tests PROPERTIES LABELS faults TIMEOUT 120
                     DISCOVERY_TIMEOUT 120 DISCOVERY_MODE PRE_TEST)

# The Gloo twin is its own small binary: gloo_main.cpp (it registers the replay of the
# properties linked beside it, none here) plus the fault tests, so it builds without the
# property objects of graphshard_gloo_tests (declared after this file is included).
add_executable(graphshard_faults_gloo_tests gloo_main.cpp faults_gloo.cpp)
target_link_libraries(graphshard_faults_gloo_tests PRIVATE graphshard_faults_cases)

# Every step of fault_steps() dies over Gloo (about 1.5 s a launch). A stall costs two timeouts
# (the step's, then gloo_main's final barrier in the broken world: about 7.5 s a launch), so
# stalls run for one step per collective the primitives issue (all-gather, all-reduce in an
# autograd backward, reduce-scatter, all-to-all) plus shard_graph_to_local's backward; the
# simulated tests stall every step.
set(faults_gloo_steps
    gather_tensor reduce_tensor sync_tensor_forward sync_tensor_backward shard_tensor_backward
    reduce_shard_tensor_forward reduce_shard_tensor_backward all_to_all_transpose_forward
    all_to_all_transpose_backward ensure_sharded_backward shard_graph_to_local_forward
    shard_graph_to_local_backward)
set(faults_gloo_stall_steps gather_tensor sync_tensor_backward reduce_shard_tensor_forward
    all_to_all_transpose_forward shard_graph_to_local_backward)
# The Gloo entries are named here by hand; a simulated test checks that they are every step.
string(REPLACE ";" " " faults_gloo_steps_str "${faults_gloo_steps}")
target_compile_definitions(graphshard_faults_tests
                           PRIVATE GRAPHSHARD_FAULTS_GLOO_STEPS="${faults_gloo_steps_str}")
foreach(fault Dies Stalls)
  if(fault STREQUAL "Dies")
    set(steps ${faults_gloo_steps})
    set(test SurvivorsRaiseWhenARankDiesInTheStep)
  else()
    set(steps ${faults_gloo_stall_steps})
    set(test SurvivorsTimeOutWhenARankStallsInTheStep)
  endif()
  foreach(step ${steps})
    set(name gloo.faults.${step}.${fault}.W3)
    add_test(NAME ${name}
             COMMAND $<TARGET_FILE:graphshard_cli> launch -n 3 --timeout 120 --
                     $<TARGET_FILE:graphshard_faults_gloo_tests>
                     --gtest_filter=Primitives/FaultsGloo.${test}/${step})
    # A filter that matches nothing would pass silently: fail on an empty run instead.
    set_tests_properties(${name} PROPERTIES LABELS "gloo;faults" TIMEOUT 180
                         ENVIRONMENT GRAPHSHARD_GLOO_TIMEOUT_MS=3000
                         FAIL_REGULAR_EXPRESSION "Running 0 tests")
  endforeach()
endforeach()
