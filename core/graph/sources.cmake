# Sources of core/graph and core/cpu graph kernels (paths relative to core/).
list(APPEND GRAPHSHARD_GRAPH_SOURCES
  graph/graph_checks.cpp
  graph/halo.cpp
  graph/partition.cpp
  graph/partition_scheme.cpp
  graph/partition_schemes.cpp
  graph/partitioners.cpp
  graph/sharding.cpp
  cpu/graph_kernels.cpp
)
