# Tests of the tensor primitives: graphshard_props(<exe> LABELS ... SOURCES ...) calls.
graphshard_props(graphshard_primitive_props LABELS props
                 SOURCES primitives_props.cpp primitives_errors_props.cpp)
# primitives_errors_props.cpp draws the violations of the bad-input catalogue (badinput.cmake).
target_link_libraries(graphshard_primitive_props_cases PUBLIC graphshard_badinput)
graphshard_props(graphshard_primitive_tests LABELS unit SOURCES primitives_test.cpp)
