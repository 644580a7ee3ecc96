# Long-run leak check (label soak): 10,000 steps of the sharded layer on 4 simulated ranks kept
# alive in a SimPool (graphshard_study); RSS, fds and threads flat after warm-up. Fewer steps:
# GRAPHSHARD_SOAK_STEPS in the test's environment.
add_executable(graphshard_soak_test soak_test.cpp)
target_link_libraries(graphshard_soak_test PRIVATE graphshard_study GTest::gtest_main)
add_test(NAME soak.ShardedLayer COMMAND graphshard_soak_test)
set_tests_properties(soak.ShardedLayer PROPERTIES LABELS soak TIMEOUT 300)
