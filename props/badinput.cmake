# The bad-input catalogue (SPEC §5; badinput_catalogue.h): every precondition of every public
# function violated on purpose, on simulated ranks (W = 1..4) and over Gloo processes (W = 2).
# The case lists are a library of their own: the random bad-input properties of
# primitives_errors_props.cpp and graph_errors_props.cpp draw the same violations.
add_library(graphshard_badinput STATIC badinput_catalogue.cpp badinput_primitive_cases.cpp
            badinput_graph_cases.cpp badinput_shapes_cases.cpp)
# graphshard_study: its CountingCommunicator counts the collectives of a case over Gloo.
target_link_libraries(graphshard_badinput PUBLIC graphshard_props_common graphshard_study)

# BadInput.* on simulated ranks; the same objects register BadInput.CatalogueOverGloo in the Gloo
# binary (so gloo.properties.W* run it too).
graphshard_props(graphshard_badinput_tests LABELS badinput SOURCES badinput_test.cpp)
target_link_libraries(graphshard_badinput_tests_cases PUBLIC graphshard_badinput)

# Over real processes. A case where the ranks fell out of step would leave a collective
# half-entered: the short Gloo timeout turns that into an error, the launcher's into a failure.
add_test(NAME badinput.gloo.W2
         COMMAND $<TARGET_FILE:graphshard_cli> launch -n 2 --timeout 300 --
                 $<TARGET_FILE:graphshard_gloo_tests> --gtest_filter=BadInput.CatalogueOverGloo)
set_tests_properties(badinput.gloo.W2 PROPERTIES LABELS "badinput;gloo" TIMEOUT 360
                     ENVIRONMENT GRAPHSHARD_GLOO_TIMEOUT_MS=10000)
