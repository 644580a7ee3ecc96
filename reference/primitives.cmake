# Reference sources for the primitives (relative to reference/).
list(APPEND GRAPHSHARD_REFERENCE_SOURCES primitives.cpp)
