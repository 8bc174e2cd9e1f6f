// deis-bench: what its parts share (the settings, the solver and grid entries, the record of
// one run, the problem description) and the number format of the reports.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <deis/multistep.hpp>
#include <deis/solver_config.hpp>
#include <deis/grid.hpp>
#include <optional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace deis_bench {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0);

// A solver of the sweep: a configuration of deis/solver_config.hpp and the row's name, which
// is the configuration's name (to_string) except for two rows: "euler" on flow matching (ddim+data,
// which is the Euler method in t there) and "recommended+calibrated" (recommended on the grid
// deis::optimize_grid makes from the rec grid). `family` chooses the panel of the plots.
struct solver_spec {
    std::string name;
    std::string family;
    deis::solver_config config;
    int stages = 1;           // network calls per step
    bool calibrated = false;
};

// A grid of the sweep: deis::make_grid's kind and power, by name, and a time shift
// t' = s t / (1 + (s - 1) t) applied by deis::shifted_grid when shift != 1.
struct grid_spec {
    std::string name;
    deis::grid_kind kind;
    double power;
    std::string description;
    double shift = 1.0;
    bool recommended = false;  // deis::recommended_grid instead of make_grid
};

// The command line of deis-bench.
struct settings {
    std::string case_name = "ring2d";
    std::string mixture_file;
    std::vector<int> nfe = {5, 6, 8, 10, 12, 15, 20, 30, 50};
    long samples = 1000;
    std::uint64_t seed = 2022;
    std::string out_dir = "bench-out";
    std::vector<std::string> solvers, grids;
    double ref_tol = 1e-12;
    long ref_block = 100;
    std::string check_dir;
    bool samples_given = false;
    bool stochastic = false;  // --stochastic: the stochastic samplers by distribution distance (stochastic.hpp)
};

// The errors of one run against the reference solution (see measure in runs.hpp).
struct error_stats {
    double median = NAN, rms = NAN, max = NAN;
    long mode_switches = 0;
};

// One solver on one grid at one NFE budget.
struct run_record {
    std::string solver, family, grid;
    int budget = 0, nfe = 0, steps = 0;
    std::string status = "ok";  // ok, or why the run has no numbers
    error_stats err;
    bool ok() const { return status == "ok"; }
};

// The title and the description lines of the report.
struct problem_info {
    std::string title;             // one line
    std::vector<std::string> lines;  // description, bullet points
    std::string baseline;          // a solver the others are compared with ("": none)
    // solvers left out because they cannot start at the problem's first time (name, why)
    std::vector<std::pair<std::string, std::string>> not_run;
    // the ring only: the best median error of any row of gmm2d_results.csv (the official DEIS,
    // DPM-Solver, UniPC) at each NFE, and where those numbers come from ("": no peers)
    std::map<int, double> peer_best;
    std::string peer_note;
};

// v in scientific notation with `digits` decimals; "-" when v is not finite.
std::string sci(double v, int digits = 2);

}  // namespace deis_bench
