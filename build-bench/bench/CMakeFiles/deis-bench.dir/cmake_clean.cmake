file(REMOVE_RECURSE
  "CMakeFiles/deis-bench.dir/deis_bench.cpp.o"
  "CMakeFiles/deis-bench.dir/deis_bench.cpp.o.d"
  "deis-bench"
  "deis-bench.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/deis-bench.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
