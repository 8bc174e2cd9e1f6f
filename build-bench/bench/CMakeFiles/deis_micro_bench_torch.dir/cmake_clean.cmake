file(REMOVE_RECURSE
  "CMakeFiles/deis_micro_bench_torch.dir/micro_torch.cpp.o"
  "CMakeFiles/deis_micro_bench_torch.dir/micro_torch.cpp.o.d"
  "deis_micro_bench_torch"
  "deis_micro_bench_torch.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/deis_micro_bench_torch.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
