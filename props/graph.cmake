# Tests of the graph functions: graphshard_props(<exe> LABELS ... SOURCES ...) calls.
