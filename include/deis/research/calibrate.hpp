// deis: time grids calibrated on the model. optimize_grid moves the interior times of a grid
// so that the final error of one exact solver configuration on a calibration batch, against
// a tight reference solution of that batch, is as small as it can find.
//
// Method (deterministic): the reference solution of the batch is computed once
// (reference_solution, rkf78 at opt.reference_tol). Starting from the initial grid (by
// default recommended_grid), a pattern search on the true final error: each sweep visits the
// interior times t_1..t_{N-1} in order and tries to move t_i a fraction f of the way to each
// neighbour (t_{i-1} or t_{i+1}); a move is kept when it lowers the error. A sweep that keeps
// nothing halves f; the search ends when f < opt.min_fraction or the budget of runs is spent.
// The error is the median over the batch of e_i = ||x_i - x_ref_i|| / sqrt(D) (the measure
// of the reference tables). Only improvements are kept, so on the calibration batch the result
// is never worse than the initial grid.
//
// Cost: one run of the calibration batch = N network calls on M samples. Default budget 500
// runs (500 N batch calls), plus the reference (a few hundred calls on blocks of the batch). On
// the 2-D ring with M = 256 and N = 10, about 0.5 s. Worth it when the same model is sampled
// many times at a small fixed budget (5-10 calls), where the grid matters most.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/grid.hpp"
#include "deis/multistep.hpp"
#include "deis/recommended.hpp"
#include "deis/research/reference.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"

namespace deis {

/// Options of optimize_grid; checked on every call.
struct calibrate_options {
    /// Ends of the grid; NaN (the default) takes those of recommended_grid(schedule, steps).
    double t_max = std::numeric_limits<double>::quiet_NaN();
    double t_end = std::numeric_limits<double>::quiet_NaN();
    /// The starting grid (N + 1 times, with the ends above); empty: recommended_grid.
    std::vector<double> initial_grid;
    /// Most runs of the calibration batch (>= 1), the initial grid's included.
    int max_runs = 500;
    /// First move, as a fraction of the gap to a neighbour, in (0, 1); halved after a sweep
    /// that keeps no move; the search stops below min_fraction (> 0).
    double initial_fraction = 0.25;
    double min_fraction = 1.0 / 128.0;
    /// atol = rtol of the reference solution of the batch (> 0).
    double reference_tol = 1e-11;
};

/// What optimize_grid returns.
struct optimized_grid {
    std::vector<double> grid;    ///< the N + 1 times, t_max first
    double initial_error = 0.0;  ///< median error of the initial grid on the calibration batch
    double error = 0.0;          ///< median error of `grid` on the calibration batch
    int runs = 0;                ///< runs of the calibration batch made (N network calls each)
    long network_calls = 0;      ///< all network calls, reference solution included
    double seconds = 0.0;        ///< wall time
};

namespace detail {

inline double median_column_error(const state<double>& x, const state<double>& ref) {
    std::vector<double> e(std::size_t(x.cols()));
    const double scale = std::sqrt(double(x.rows()));
    for (Eigen::Index j = 0; j < x.cols(); ++j) e[std::size_t(j)] = (x.col(j) - ref.col(j)).norm() / scale;
    const std::size_t n = e.size(), m = n / 2;
    std::nth_element(e.begin(), e.begin() + std::ptrdiff_t(m), e.end());
    const double upper = e[m];
    if (n % 2 == 1) return upper;
    return 0.5 * (*std::max_element(e.begin(), e.begin() + std::ptrdiff_t(m)) + upper);
}

}  // namespace detail

/// A grid of `steps` steps calibrated for one solver configuration on one network (see the top
/// of this header for the method and its cost). `config` is either a multistep_options or a
/// callable taking the grid (const std::vector<double>&) and returning the multistep_options
/// for it (e.g. a lambda calling recommended_options, so that the options follow each trial
/// grid); its `output` says what `net` returns. `batch` is the calibration batch at the grid's
/// first time (one sample per column), drawn for calibration only, never the samples to be
/// evaluated. Deterministic: the same arguments give the same grid.
///
/// Throws std::invalid_argument before any network call for bad options, steps < 1, an empty
/// or non-finite batch, an initial grid of the wrong size or ends, or a configuration the
/// solver rejects; std::runtime_error when the reference solution or the initial grid's run
/// fails (non-finite network output). Allocates: the reference and a few state-sized buffers.
/// Thread-safe if `net` is.
template <class Schedule, class Config, class Network>
optimized_grid optimize_grid(const Schedule& schedule, const Config& config, Network&& net, const state<double>& batch,
                             int steps, const calibrate_options& opt = {}) {
    const char* where = "optimize_grid";
    const auto t0 = std::chrono::steady_clock::now();
    if (steps < 1) detail::fail(where, "steps", steps, "must be >= 1");
    if (opt.max_runs < 1) detail::fail(where, "max_runs", opt.max_runs, "must be >= 1");
    if (!(opt.initial_fraction > 0.0 && opt.initial_fraction < 1.0))
        detail::fail(where, "initial_fraction", opt.initial_fraction, "must lie in (0, 1)");
    if (!(opt.min_fraction > 0.0 && std::isfinite(opt.min_fraction)))
        detail::fail(where, "min_fraction", opt.min_fraction, "must be finite and > 0");
    if (!(opt.reference_tol > 0.0 && std::isfinite(opt.reference_tol)))
        detail::fail(where, "reference_tol", opt.reference_tol, "must be finite and > 0");
    if (batch.size() == 0) detail::fail(where, "batch", "empty", "must hold at least one sample");
    if (!batch.allFinite()) detail::fail(where, "batch", "not finite", "must be finite");

    auto options_for = [&](const std::vector<double>& g) -> multistep_options {
        if constexpr (std::is_invocable_r_v<multistep_options, const Config&, const std::vector<double>&>)
            return config(g);
        else
            return config;
    };

    std::vector<double> grid;
    if (opt.initial_grid.empty()) {
        if (std::isnan(opt.t_max) != std::isnan(opt.t_end))
            detail::fail(where, "t_max", opt.t_max, "and t_end must be given together (or both NaN)");
        grid = std::isnan(opt.t_max) ? recommended_grid(schedule, steps)
                                     : recommended_grid(schedule, steps, opt.t_max, opt.t_end);
    } else {
        grid = check_grid(schedule, opt.initial_grid);
        if (int(grid.size()) != steps + 1)
            detail::fail(where, "initial_grid.size()", int(grid.size()), "must be steps + 1 = " + std::to_string(steps + 1));
        if (!std::isnan(opt.t_max) && grid.front() != opt.t_max)
            detail::fail(where, "initial_grid[0]", grid.front(), "must equal t_max");
        if (!std::isnan(opt.t_end) && grid.back() != opt.t_end)
            detail::fail(where, "initial_grid.back()", grid.back(), "must equal t_end");
    }
    // the configuration must be valid on the initial grid: let the solver say so before any call
    { const multistep_solver check(schedule, grid, options_for(grid)); }

    optimized_grid out;
    // the reference solution of the batch
    state<double> ref = batch;
    reference_options ro;
    ro.atol = ro.rtol = opt.reference_tol;
    ro.output = options_for(grid).output;
    ro.block_columns = std::min<long>(long(batch.cols()), 64L);
    const reference_result rr = reference_solution(schedule, net, ref, grid.front(), grid.back(), ro);
    if (!rr) throw std::runtime_error(std::string("optimize_grid: the reference solution failed: ") + to_string(rr.status));
    out.network_calls += rr.nfe;

    state<double> x(batch.rows(), batch.cols());
    auto error_of = [&](const std::vector<double>& g) {
        ++out.runs;
        out.network_calls += steps;
        multistep_solver solver = [&]() -> multistep_solver { return multistep_solver(schedule, g, options_for(g)); }();
        x = batch;
        const sample_result r = solver.sample(net, x);
        if (!r.ok()) return std::numeric_limits<double>::infinity();
        return detail::median_column_error(x, ref);
    };
    double best = error_of(grid);
    if (!std::isfinite(best))
        throw std::runtime_error("optimize_grid: the run on the initial grid failed (non-finite network output)");
    out.initial_error = best;

    double f = opt.initial_fraction;
    while (f >= opt.min_fraction && out.runs < opt.max_runs) {
        bool improved = false;
        for (int i = 1; i < steps && out.runs < opt.max_runs; ++i) {
            for (int side : {-1, 1}) {
                if (out.runs >= opt.max_runs) break;
                std::vector<double> trial = grid;
                const double t_nb = grid[std::size_t(i + side)];
                trial[std::size_t(i)] = grid[std::size_t(i)] + f * (t_nb - grid[std::size_t(i)]);
                if (!(trial[std::size_t(i)] < trial[std::size_t(i - 1)] && trial[std::size_t(i)] > trial[std::size_t(i + 1)]))
                    continue;  // below round-off: no room
                double e;
                try {
                    e = error_of(trial);
                } catch (const std::invalid_argument&) {
                    continue;  // e.g. rho not strictly monotone after the move
                }
                if (e < best) {
                    best = e;
                    grid = std::move(trial);
                    improved = true;
                    break;  // the other side from the new position in the next sweep
                }
            }
        }
        if (!improved) f *= 0.5;
    }
    out.grid = std::move(grid);
    out.error = best;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

}  // namespace deis
