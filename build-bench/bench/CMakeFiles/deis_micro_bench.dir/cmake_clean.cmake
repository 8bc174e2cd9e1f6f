file(REMOVE_RECURSE
  "CMakeFiles/deis_micro_bench.dir/micro_coefficients.cpp.o"
  "CMakeFiles/deis_micro_bench.dir/micro_coefficients.cpp.o.d"
  "CMakeFiles/deis_micro_bench.dir/micro_sampling.cpp.o"
  "CMakeFiles/deis_micro_bench.dir/micro_sampling.cpp.o.d"
  "CMakeFiles/deis_micro_bench.dir/micro_update.cpp.o"
  "CMakeFiles/deis_micro_bench.dir/micro_update.cpp.o.d"
  "deis_micro_bench"
  "deis_micro_bench.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/deis_micro_bench.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
