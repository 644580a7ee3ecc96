# Sources of core/graph and core/cpu graph kernels (paths relative to core/).
list(APPEND GRAPHSHARD_GRAPH_SOURCES)
