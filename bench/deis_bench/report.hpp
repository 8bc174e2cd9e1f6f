// deis-bench: the reports (markdown tables, results.csv, the check against the reference
// data of tests/data) and the writing of every output of a run.
#pragma once

#include <Eigen/Core>
#include <map>
#include <string>
#include <vector>

#include "records.hpp"

namespace deis_bench {

// geometric mean of the median errors over the budgets where the run succeeded (lower is better)
double score(const std::vector<run_record>& rs, const std::string& solver, const std::string& grid);

// The grid of the lowest score for the solver; "" when it has no successful run.
std::string best_grid(const std::vector<run_record>& rs, const std::string& solver,
                      const std::vector<grid_spec>& grids);

// The record of solver x grid x budget, or nullptr.
const run_record* find_run(const std::vector<run_record>& rs, const std::string& solver, const std::string& grid,
                           int budget);

// The markdown report: best per budget, each solver on its best grid, then per grid the
// median, RMS and mode-switch tables.
std::string markdown_report(const problem_info& info, const std::vector<run_record>& rs,
                            const std::vector<solver_spec>& solvers, const std::vector<grid_spec>& grids,
                            const std::vector<int>& budgets);

// The best (smallest) median error of any row of a gmm2d_results.csv at each NFE.
std::map<int, double> best_peer_medians(const std::string& results_csv);

// The same from any CSV with the columns nfe and median_err (named in its header; others
// ignored): the smallest finite median_err at each nfe, rows with an empty one skipped.
std::map<int, double> read_peer_medians(const std::string& path);

// A mode-switch count, or "n/a" for -1 (no mixture).
std::string switches_text(long n);

void write_csv(const std::string& path, const std::string& case_name, const std::vector<run_record>& rs);

// The check passes when our reference solution is within 1e-9 of gmm2d_exact.csv (both
// solve the ODE to ~1e-11), every matched median and RMS error agrees to 1e-5 relative
// (the file prints 7 significant digits, a rounding of <= 5e-7 relative; a reference off
// by 1e-11 moves errors >= 1e-5 by <= 1e-6 relative), and every mode-switch count is equal.
struct check_outcome {
    std::string report;
    bool passed = true;
};

check_outcome check_against_reference(const std::string& dir, const Eigen::MatrixXd& ref,
                                      const std::vector<run_record>& rs);

// The flow case: the reference solution against flow/gmm2d_flow_exact.csv (within 1e-9) and
// Euler's median errors (t1, t1s3 at 5, 10, 20, 50 steps) against the independent numbers of
// issue 11, to 5e-4 relative.
check_outcome check_flow_against_reference(const std::string& dir, const Eigen::MatrixXd& ref,
                                           const std::vector<run_record>& rs);

// Writes the report to stdout and table.md, results.csv and the plots into cfg.out_dir, the
// check against cfg.check_dir when given, and a summary on stderr; returns the exit status
// (2 when the check failed).
int write_outputs(const settings& cfg, const problem_info& info, const Eigen::MatrixXd& ref,
                  const std::vector<run_record>& rs, const std::vector<solver_spec>& solvers,
                  const std::vector<grid_spec>& grids, clock_type::time_point t_start);

}  // namespace deis_bench
