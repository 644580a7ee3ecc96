# GPU tests (label gpu): device parity of every graph function and primitive on CUDA tensors,
# and the native NCCL engine. Without a CUDA device each test is skipped, and ctest reports it
# as skipped rather than passed.
add_executable(graphshard_gpu_tests cuda_props.cpp nccl_test.cpp)
target_link_libraries(graphshard_gpu_tests PRIVATE graphshard_props_common GTest::gtest_main)
gtest_discover_tests(graphshard_gpu_tests PROPERTIES LABELS gpu TIMEOUT 600
                     SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
                     DISCOVERY_TIMEOUT 120 DISCOVERY_MODE PRE_TEST)
