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
    std::string noise_file;      // --noise: x_T, one sample per row (else drawn from --seed)
    std::string reference_file;  // --reference: the reference solution, one row per sample (else integrated)
    std::string peers_file;      // --peers: columns nfe, median_err; the best per NFE is the "best peer"
    // --model (model.hpp): a TorchScript network in place of the mixture
    std::string model_file, dtype = "float32", device = "cpu", model_output = "eps", schedule = "vp-linear";
    long batch = 0;           // --batch: at most this many samples a call (0: all)
    std::vector<long> shape;  // --shape: one sample's shape (empty: [D])
    long dim = 0;             // --dim: D of the drawn x_T without --noise (else the product of --shape)
    long calibration_samples = 256;  // --calibration-samples: the batch of recommended+calibrated
    // the case that chooses the solvers and grids (solver_table, grid_table): flow matching's
    // own for the flow case and a model under --schedule flow
    std::string table_case() const {
        return model_file.empty() ? case_name : schedule == "flow" ? "flow" : "ring2d";
    }
    // the case column of results.csv
    std::string csv_case() const { return model_file.empty() ? case_name : "model"; }
};

// The errors of one run against the reference solution (see measure in runs.hpp).
struct error_stats {
    double median = NAN, rms = NAN, max = NAN;
    long mode_switches = 0;  // -1: n/a (no mixture)
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
    // the ring (or --peers): the best median error of any row of gmm2d_results.csv (the official
    // DEIS, DPM-Solver, UniPC) at each NFE, and where those numbers come from ("": no peers)
    std::map<int, double> peer_best;
    std::string peer_note;
    std::string peer_source = "gmm2d_results.csv";  // the file named in the report's row
    bool mixture = true;  // false: a model, no mode switches
};

// v in scientific notation with `digits` decimals; "-" when v is not finite.
std::string sci(double v, int digits = 2);

}  // namespace deis_bench
