# Sources of core/primitives (paths relative to core/).
list(APPEND GRAPHSHARD_PRIMITIVES_SOURCES
  primitives/arguments.cpp
  primitives/collectives.cpp
  primitives/autograd.cpp
)
