# Empty compiler generated dependencies file for deis_micro_bench.
# This may be replaced when dependencies are built.
