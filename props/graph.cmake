# Tests of the graph functions: graphshard_props(<exe> LABELS ... SOURCES ...) calls.
graphshard_props(graphshard_graph_props LABELS props
                 SOURCES graph_props.cpp graph_errors_props.cpp graph_dist_props.cpp
                         sharded_layer_props.cpp)
# graph_errors_props.cpp draws the violations of the bad-input catalogue (badinput.cmake).
target_link_libraries(graphshard_graph_props_cases PUBLIC graphshard_badinput)
