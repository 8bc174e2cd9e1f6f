# Empty compiler generated dependencies file for deis-bench.
# This may be replaced when dependencies are built.
