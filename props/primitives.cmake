# Tests of the tensor primitives: graphshard_props(<exe> LABELS ... SOURCES ...) calls.
