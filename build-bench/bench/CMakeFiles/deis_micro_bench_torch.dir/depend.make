# Empty dependencies file for deis_micro_bench_torch.
# This may be replaced when dependencies are built.
