# Reference sources for the graph functions (relative to reference/).
list(APPEND GRAPHSHARD_REFERENCE_SOURCES graph.cpp halo.cpp)
