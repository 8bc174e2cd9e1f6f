// deis-bench: the log-log plots of median error versus NFE (a gnuplot script, run when
// gnuplot is installed).
#pragma once

#include <string>
#include <vector>

#include "records.hpp"

namespace deis_bench {

// s in single quotes for /bin/sh.
std::string shell_quote(const std::string& s);

// Writes plot.gp into out_dir and runs gnuplot there; returns the PNGs written (none, with a
// note on stderr, when gnuplot is missing or fails).
std::vector<std::string> plot(const std::string& out_dir, const std::string& case_title,
                              const std::vector<run_record>& rs, const std::vector<solver_spec>& solvers,
                              const std::vector<grid_spec>& grids, double y_clip);

}  // namespace deis_bench
