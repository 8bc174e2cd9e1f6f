// deis: time grids calibrated on the model. optimize_grid chooses the interior times of a grid
// so that the final error of one exact solver configuration on a calibration batch, against a
// tight reference solution of that batch, is as small as it can find.
//
// Reference (make_calibration_reference, computed once, reusable for every N and every
// configuration with the same ends and model output): the batch is integrated by
// reference_solution (rkf78, atol = rtol = tol) through a fine candidate grid c_0 = t_max >
// c_1 > ... > c_K = t_end, one adaptive solve per interval, keeping the reference state X_k at
// every c_k and the network output at (X_k, c_k) (the first stage of the interval's first
// step, so no extra call; one call at t_end).
//
// Search (deterministic):
// 1. Dynamic programming (GITS, Chen et al. 2024): the cost of a one-step jump from c_i to c_j
//    is the batch mean of ||F(X_i; c_i -> c_j) - X_j|| / sqrt(D), F an exponential integrator
//    step on the cached outputs (dp_order 2, the default: the trapezoidal rule on the data
//    prediction; 1: DDIM), with no network call; for each power q of dp_powers the N-edge path
//    from c_0 to c_K minimising sum cost^q is a candidate grid.
// 2. Each candidate grid, each power-of-t grid of start_powers and the initial grid (by default
//    recommended_grid) is run once on the batch with the real solver; the best is the start of
// 3. a pattern search on the true final error: each sweep visits t_1..t_{N-1} in order and
//    tries to move t_i a fraction f of the way to each neighbour (first towards the side of its
//    last kept move); a move is kept when it lowers the error; a sweep that keeps nothing
//    halves f; the search ends when f < min_fraction or max_runs runs (steps 2 and 3
//    together) are spent.
// The error is the median over the batch of ||x_i - x_ref_i|| / sqrt(D). Only improvements
// are kept, so on the calibration batch the result is never worse than the initial grid.
//
// Cost, in network calls on the whole batch: the reference (the adaptive solve plus the
// restarts at the K candidate times) and N calls a run of the search.
//
// optimize_configuration chooses among several configurations too: steps 1-2 for each, then
// step 3 for the best, within one budget of runs.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/detail/schedule_traits.hpp"
#include "deis/grid.hpp"
#include "deis/model_output.hpp"
#include "deis/multistep.hpp"
#include "deis/recommended.hpp"
#include "deis/research/reference.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"

namespace deis {

/// Where a calibration is (see calibrate_progress).
enum class calibrate_phase {
    reference,  ///< the reference solution of the batch: `segments` of `total_segments` done
    search      ///< the search: `runs` of `max_runs` done
};

/// What a progress callback sees; returning false from it stops the calibration.
struct calibrate_progress {
    calibrate_phase phase = calibrate_phase::reference;
    int segments = 0;        ///< intervals of the candidate grid solved (reference phase)
    int total_segments = 0;  ///< all of them
    int runs = 0;            ///< runs of the batch made (search phase)
    int max_runs = 0;        ///< the budget of runs
    double best_error = std::numeric_limits<double>::quiet_NaN();  ///< lowest error so far (search)
    long network_calls = 0;  ///< calls on the batch so far, the reference's included
};

/// Called after each interval of the reference and each run of the search; false stops.
using calibrate_callback = std::function<bool(const calibrate_progress&)>;

/// Options of make_calibration_reference; checked on every call.
struct calibration_reference_options {
    /// atol = rtol of reference_solution (> 0).
    double tol = 1e-11;
    reference_method method = reference_method::rkf78;
    /// What the network returns.
    model_output output = model_output::eps;
    /// Intervals K of the candidate grid (>= 0): K/2 uniform in log rho (when rho is finite
    /// at both ends) merged with the rest uniform in sqrt(t). 0 stores no trajectory (the
    /// search then starts from the initial grid only).
    int candidates = 128;
    calibrate_callback progress;
};

/// The reference solution of a calibration batch and its trajectory on the candidate grid.
/// Memory: 2 (K + 1) states of the batch.
struct calibration_reference {
    std::vector<double> times;           ///< the candidate times, t_max first, t_end last
    std::vector<state<double>> states;   ///< the reference state at each time (states[0]: the batch)
    std::vector<state<double>> outputs;  ///< the network output at (states[k], times[k]), k < K
    model_output output = model_output::eps;
    double tol = 0.0;
    long network_calls = 0;  ///< calls on the whole batch
    double seconds = 0.0;
    bool complete = false;  ///< false: stopped by the callback (unusable)

    const state<double>& batch() const { return states.front(); }
    const state<double>& solution() const { return states.back(); }
    double t_max() const { return times.front(); }
    double t_end() const { return times.back(); }
};

/// Options of optimize_grid; checked on every call.
struct calibrate_options {
    /// Ends of the grid; NaN (the default) takes those of recommended_grid(schedule, steps)
    /// (with a given reference: the reference's ends).
    double t_max = std::numeric_limits<double>::quiet_NaN();
    double t_end = std::numeric_limits<double>::quiet_NaN();
    /// The starting grid (N + 1 times, with the ends above); empty: recommended_grid.
    std::vector<double> initial_grid;
    /// Most runs of the calibration batch (>= 1), the start grids' included.
    int max_runs = 100;
    /// First move, as a fraction of the gap to a neighbour, in (0, 1); halved after a sweep
    /// that keeps no move; the search stops below min_fraction (> 0).
    double initial_fraction = 0.125;
    double min_fraction = 1.0 / 128.0;
    /// Powers q of the dynamic programming (each > 0; empty: no dynamic programming), one
    /// candidate grid (one run) each.
    std::vector<double> dp_powers = {1.0, 2.0, 3.0};
    /// The jump of the dynamic programming's cost: 1, first order (DDIM, as GITS); 2, the
    /// exponential trapezoidal rule on the cached data predictions (closer to the library's
    /// multistep solvers of order 2-3, the default).
    int dp_order = 2;
    /// Powers k of power_t_grid (each > 0) also tried as starts, one run each.
    std::vector<double> start_powers = {1.0, 1.5, 2.0, 2.5, 3.0};
    /// Of the reference computed from a batch: tolerance and candidate intervals (see
    /// calibration_reference_options).
    double reference_tol = 1e-11;
    int candidates = 128;
    /// Progress and stop (see calibrate_progress); empty: none.
    calibrate_callback progress;
};

/// What optimize_grid returns.
struct optimized_grid {
    std::vector<double> grid;    ///< the N + 1 times, t_max first
    double initial_error = 0.0;  ///< median error of the initial grid on the calibration batch
    double start_error = 0.0;    ///< that of the grid the pattern search started from
    double error = 0.0;          ///< median error of `grid` on the calibration batch
    bool from_dp = false;        ///< the pattern search started from a dynamic-programming grid
    bool stopped = false;        ///< the callback stopped it: `grid` is the best so far
    int runs = 0;                ///< runs of the calibration batch made
    long reference_calls = 0;    ///< network calls of the reference (0 when it was given)
    long search_calls = 0;       ///< network calls of the runs
    long network_calls = 0;      ///< their sum; every call is on the whole batch
    double seconds = 0.0;        ///< wall time (the reference's included when computed here)
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

// The candidate grid between t_from > t_to: k/2 points uniform in log rho (if finite at both
// ends), the rest uniform in sqrt(t), merged, ends exact.
template <class Schedule>
std::vector<double> candidate_times(const Schedule& s, double t_from, double t_to, int k) {
    std::vector<double> ts{t_from, t_to};
    if (k < 2) return ts;
    const double r0 = s.rho(t_from), r1 = s.rho(t_to);
    const bool log_rho = std::isfinite(r0) && std::isfinite(r1) && r1 > 0.0;
    const int n_rho = log_rho ? k / 2 : 0, n_t = k - n_rho;
    for (int i = 1; i < n_rho; ++i) {
        const double l = std::log(r0) + double(i) / double(n_rho) * (std::log(r1) - std::log(r0));
        ts.push_back(s.t_from_rho(std::exp(l)));
    }
    const double a = std::sqrt(t_from), b = std::sqrt(t_to);
    for (int i = 1; i < n_t; ++i) {
        const double u = a + double(i) / double(n_t) * (b - a);
        ts.push_back(u * u);
    }
    std::sort(ts.begin(), ts.end(), std::greater<double>());
    std::vector<double> out;
    for (double t : ts) {
        if (!(t <= t_from && t >= t_to)) continue;
        // drop near-duplicates: the time must be strictly inside and rho strictly monotone
        if (!out.empty() && !(t < out.back() * (1.0 - 1e-9) && s.rho(t) < s.rho(out.back()))) continue;
        out.push_back(t);
    }
    if (out.back() != t_to) {
        if (out.size() > 1 && !(t_to < out.back() * (1.0 - 1e-9))) out.back() = t_to;
        else out.push_back(t_to);
    }
    return out;
}

// The x_j of a first-order exponential-integrator step from (x_i, t_i) with the network output
// `o` at it: in the data form x_j = (sigma_j/sigma_i) x_i + (alpha_j - sigma_j alpha_i/sigma_i) x0,
// else in the noise form x_j = (alpha_j/alpha_i) x_i + alpha_j (rho_j - rho_i) eps. Returns
// (a, b) with x_j = a x_i + b o; NaN if neither form is finite.
template <class Schedule>
std::pair<double, double> first_order_jump(const Schedule& s, model_output output, double ti, double tj) {
    const double ai = s.alpha(ti), si = s.sigma(ti), aj = s.alpha(tj), sj = s.sigma(tj);
    const auto [ad, sd] = schedule_derivatives(s, ti);
    if (si > 0.0) {
        const conversion c = make_conversion(output, prediction::data, ai, si, ad, sd);
        const double b = aj - sj * ai / si;
        if (c.finite()) return {sj / si + b * c.px, b * c.po};
    }
    if (ai > 0.0 && std::isfinite(s.rho(ti)) && std::isfinite(s.rho(tj))) {
        const conversion c = make_conversion(output, prediction::noise, ai, si, ad, sd);
        const double b = aj * (s.rho(tj) - s.rho(ti));
        if (c.finite()) return {aj / ai + b * c.px, b * c.po};
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return {nan, nan};
}

// The x_j of an exponential trapezoidal step in the data form (x0 linear in lambda = log(alpha/
// sigma) between the cached x0_i and x0_j): x_j = (sigma_j/sigma_i) x_i + (I0 - I1) x0_i + I1 x0_j,
// I0 = alpha_j (1 - e^-h), I1 = alpha_j (h - 1 + e^-h)/h, h = lambda_j - lambda_i. Returns the
// coefficients of (x_i, o_i, o_j); NaN where the data form is not finite.
template <class Schedule>
std::array<double, 3> trapezoid_jump(const Schedule& s, model_output output, double ti, double tj) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double ai = s.alpha(ti), si = s.sigma(ti), aj = s.alpha(tj), sj = s.sigma(tj);
    if (!(si > 0.0 && sj > 0.0 && aj > 0.0)) return {nan, nan, nan};
    const auto [adi, sdi] = schedule_derivatives(s, ti);
    const auto [adj, sdj] = schedule_derivatives(s, tj);
    const conversion ci = make_conversion(output, prediction::data, ai, si, adi, sdi);
    const conversion cj = make_conversion(output, prediction::data, aj, sj, adj, sdj);
    if (!ci.finite() || !cj.finite()) return {nan, nan, nan};
    const double emh = (ai * sj) / (si * aj);  // e^-h
    const double h = -std::log(emh);
    const double i0 = aj * (1.0 - emh);
    const double i1 = std::isfinite(h) ? aj * (h - 1.0 + emh) / h : aj;  // h = inf: alpha_i = 0
    // x_j = (sj/si) x_i + (i0 - i1) (px_i x_i + po_i o_i) + i1 (px_j x_j + po_j o_j); the x_j term
    // is moved to the left: x_j (1 - i1 px_j) = ...
    const double d = 1.0 - i1 * cj.px;
    return {(sj / si + (i0 - i1) * ci.px) / d, (i0 - i1) * ci.po / d, i1 * cj.po / d};
}

// cost[i][j], i < j: batch mean of the error of a jump from candidate i to j on the cached
// trajectory (order 1: first_order_jump; order 2: trapezoid_jump).
template <class Schedule>
std::vector<std::vector<double>> jump_costs(const Schedule& s, const calibration_reference& ref, int order) {
    const std::size_t n = ref.times.size();
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<std::vector<double>> cost(n, std::vector<double>(n, inf));
    const double scale = std::sqrt(double(ref.batch().rows()));
    state<double> d;
    for (std::size_t i = 0; i + 1 < n; ++i) {
        for (std::size_t j = i + 1; j < n; ++j) {
            if (order == 1) {
                const auto [a, b] = first_order_jump(s, ref.output, ref.times[i], ref.times[j]);
                if (!(std::isfinite(a) && std::isfinite(b))) continue;
                d = a * ref.states[i] + b * ref.outputs[i] - ref.states[j];
            } else {
                const auto c = trapezoid_jump(s, ref.output, ref.times[i], ref.times[j]);
                if (!(std::isfinite(c[0]) && std::isfinite(c[1]) && std::isfinite(c[2]))) continue;
                d = c[0] * ref.states[i] + c[1] * ref.outputs[i] + c[2] * ref.outputs[j] - ref.states[j];
            }
            const double c = d.colwise().norm().mean() / scale;
            if (std::isfinite(c)) cost[i][j] = c;
        }
    }
    return cost;
}

// The candidate indices of the N-edge path from 0 to n - 1 minimising sum cost^q; empty if
// none is finite.
inline std::vector<std::size_t> shortest_path(const std::vector<std::vector<double>>& cost, int steps, double q) {
    const std::size_t n = cost.size(), N = std::size_t(steps);
    const double inf = std::numeric_limits<double>::infinity();
    if (n < N + 1) return {};
    // best[m][j]: least cost of m edges from 0 to j; from[m][j] the previous candidate
    std::vector<std::vector<double>> best(N + 1, std::vector<double>(n, inf));
    std::vector<std::vector<std::size_t>> from(N + 1, std::vector<std::size_t>(n, 0));
    best[0][0] = 0.0;
    for (std::size_t m = 1; m <= N; ++m)
        for (std::size_t j = m; j < n; ++j)
            for (std::size_t i = m - 1; i < j; ++i) {
                if (best[m - 1][i] == inf || cost[i][j] == inf) continue;
                const double c = best[m - 1][i] + std::pow(cost[i][j], q);
                if (c < best[m][j]) best[m][j] = c, from[m][j] = i;
            }
    if (best[N][n - 1] == inf) return {};
    std::vector<std::size_t> path(N + 1);
    path[N] = n - 1;
    for (std::size_t m = N; m > 0; --m) path[m - 1] = from[m][path[m]];
    return path;
}

}  // namespace detail

/// The reference solution of a calibration batch (one sample per column, at time t_max) down
/// to t_end, with its trajectory on the candidate grid (see the top of this header), for
/// optimize_grid. `net` is a Network for state<double> returning opt.output. Every network call
/// is on the whole batch; network_calls counts them.
///
/// Throws std::invalid_argument before any network call for bad options, times or batch;
/// std::runtime_error when the solve fails (non-finite network output, step-size underflow).
/// A callback returning false stops it: the result has complete = false.
template <class Schedule, class Network>
calibration_reference make_calibration_reference(const Schedule& schedule, Network&& net, const state<double>& batch,
                                                 double t_max, double t_end,
                                                 const calibration_reference_options& opt = {}) {
    const char* where = "make_calibration_reference";
    const auto t0 = std::chrono::steady_clock::now();
    if (!(opt.tol > 0.0 && std::isfinite(opt.tol))) detail::fail(where, "tol", opt.tol, "must be finite and > 0");
    if (opt.candidates < 0) detail::fail(where, "candidates", opt.candidates, "must be >= 0");
    if (batch.size() == 0) detail::fail(where, "batch", "empty", "must hold at least one sample");
    if (!batch.allFinite()) detail::fail(where, "batch", "not finite", "must be finite");
    check_grid(schedule, std::vector<double>{t_max, t_end});

    calibration_reference ref;
    ref.output = opt.output;
    ref.tol = opt.tol;
    ref.times = opt.candidates == 0 ? std::vector<double>{t_max, t_end}
                                    : detail::candidate_times(schedule, t_max, t_end, opt.candidates);
    const bool keep = opt.candidates > 0;
    reference_options ro;
    ro.atol = ro.rtol = opt.tol;
    ro.method = opt.method;
    ro.output = opt.output;
    ro.block_columns = batch.cols();  // one block: every call is on the whole batch
    ro.initial_step = 1.0;            // an interval is short: try it in one step first

    state<double>* capture = nullptr;  // where the first call of an interval goes
    auto counted = [&](const state<double>& x, double t, state<double>& out) {
        net(x, t, out);
        ++ref.network_calls;
        if (capture != nullptr) {
            *capture = out;
            capture = nullptr;
        }
    };
    ref.states.push_back(batch);
    const int segments = int(ref.times.size()) - 1;
    for (int k = 0; k < segments; ++k) {
        state<double> x = ref.states.back();
        if (keep) {
            ref.outputs.emplace_back();
            capture = &ref.outputs.back();
        }
        const reference_result rr =
            reference_solution(schedule, counted, x, ref.times[std::size_t(k)], ref.times[std::size_t(k) + 1], ro);
        capture = nullptr;
        if (!rr)
            throw std::runtime_error(std::string("deis::make_calibration_reference: the reference solution failed at t = ") +
                                     detail::format_double(rr.failed_time) + ": " + to_string(rr.status));
        if (keep || k + 1 == segments) ref.states.push_back(std::move(x));
        else ref.states.back() = std::move(x);
        if (opt.progress) {
            calibrate_progress p;
            p.phase = calibrate_phase::reference;
            p.segments = k + 1;
            p.total_segments = segments;
            p.network_calls = ref.network_calls;
            if (!opt.progress(p)) {
                ref.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                return ref;  // complete = false
            }
        }
    }
    if (keep) {  // the output at t_end too (one call), for the second-order jumps
        ref.outputs.emplace_back(batch.rows(), batch.cols());
        counted(ref.states.back(), ref.times.back(), ref.outputs.back());
        if (!detail::all_finite(ref.outputs.back()))
            throw std::runtime_error("deis::make_calibration_reference: non-finite network output at t_end");
    }
    ref.complete = true;
    ref.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return ref;
}

namespace detail {

// Checks the options of optimize_grid (before any network call).
inline void check_calibrate_options(const char* where, int steps, const calibrate_options& opt) {
    if (steps < 1) fail(where, "steps", steps, "must be >= 1");
    if (opt.max_runs < 1) fail(where, "max_runs", opt.max_runs, "must be >= 1");
    if (!(opt.initial_fraction > 0.0 && opt.initial_fraction < 1.0))
        fail(where, "initial_fraction", opt.initial_fraction, "must lie in (0, 1)");
    if (!(opt.min_fraction > 0.0 && std::isfinite(opt.min_fraction)))
        fail(where, "min_fraction", opt.min_fraction, "must be finite and > 0");
    for (double q : opt.dp_powers)
        if (!(q > 0.0 && std::isfinite(q))) fail(where, "dp_powers", q, "must be finite and > 0");
    if (opt.dp_order != 1 && opt.dp_order != 2) fail(where, "dp_order", opt.dp_order, "must be 1 or 2");
    for (double k : opt.start_powers)
        if (!(k > 0.0 && std::isfinite(k))) fail(where, "start_powers", k, "must be finite and > 0");
    if (!(opt.reference_tol > 0.0 && std::isfinite(opt.reference_tol)))
        fail(where, "reference_tol", opt.reference_tol, "must be finite and > 0");
    if (opt.candidates < 0) fail(where, "candidates", opt.candidates, "must be >= 0");
    if (std::isnan(opt.t_max) != std::isnan(opt.t_end))
        fail(where, "t_max", opt.t_max, "and t_end must be given together (or both NaN)");
}

// The initial grid of optimize_grid: opt.initial_grid, checked, or recommended_grid between
// opt's ends, else between (t_max, t_end) (NaN: the schedule's default ends).
template <class Schedule>
std::vector<double> calibrate_start_grid(const char* where, const Schedule& schedule, int steps,
                                         const calibrate_options& opt, double t_max, double t_end) {
    if (opt.initial_grid.empty()) {
        if (!std::isnan(opt.t_max)) return recommended_grid(schedule, steps, opt.t_max, opt.t_end);
        return std::isnan(t_max) ? recommended_grid(schedule, steps) : recommended_grid(schedule, steps, t_max, t_end);
    }
    std::vector<double> grid = check_grid(schedule, opt.initial_grid);
    if (int(grid.size()) != steps + 1)
        fail(where, "initial_grid.size()", int(grid.size()), "must be steps + 1 = " + std::to_string(steps + 1));
    if (!std::isnan(opt.t_max) && grid.front() != opt.t_max) fail(where, "initial_grid[0]", grid.front(), "must equal t_max");
    if (!std::isnan(opt.t_end) && grid.back() != opt.t_end)
        fail(where, "initial_grid.back()", grid.back(), "must equal t_end");
    return grid;
}

// optimize_grid against `ref`, whose calls (reference_calls) were made by the caller.
template <class Schedule, class Config, class Network>
optimized_grid optimize_grid_on(const Schedule& schedule, const Config& config, Network&& net,
                                const calibration_reference& ref, int steps, const calibrate_options& opt,
                                long reference_calls) {
    const char* where = "optimize_grid";
    const auto t0 = std::chrono::steady_clock::now();
    check_calibrate_options(where, steps, opt);
    if (!ref.complete || ref.states.size() < 2 || ref.states.size() != ref.times.size())
        fail(where, "reference", "incomplete", "must be a complete make_calibration_reference");

    auto options_for = [&](const std::vector<double>& g) -> multistep_options {
        if constexpr (std::is_invocable_r_v<multistep_options, const Config&, const std::vector<double>&>)
            return config(g);
        else
            return config;
    };

    std::vector<double> grid = calibrate_start_grid(where, schedule, steps, opt, ref.t_max(), ref.t_end());
    if (grid.front() != ref.t_max()) fail(where, "grid[0]", grid.front(), "must equal the reference's t_max");
    if (grid.back() != ref.t_end()) fail(where, "grid.back()", grid.back(), "must equal the reference's t_end");
    // the configuration must be valid on the initial grid: let the solver say so before any call
    {
        const multistep_options o = options_for(grid);
        if (o.output != ref.output)
            fail(where, "output", to_string(o.output),
                         std::string("must be the reference's (") + to_string(ref.output) + ")");
        const multistep_solver check(schedule, grid, o);
    }

    optimized_grid out;
    const state<double>& batch = ref.batch();
    const state<double>& solution = ref.solution();
    state<double> x(batch.rows(), batch.cols());
    double best = std::numeric_limits<double>::infinity();
    auto error_of = [&](const std::vector<double>& g) {
        ++out.runs;
        x = batch;
        sample_result r;
        try {
            const multistep_solver solver(schedule, g, options_for(g));
            r = solver.sample(net, x);
        } catch (const std::invalid_argument&) {
            return std::numeric_limits<double>::infinity();  // e.g. a configuration this grid cannot have
        }
        out.search_calls += r.nfe;
        if (!r.ok()) return std::numeric_limits<double>::infinity();
        return median_column_error(x, solution);
    };
    // after each run: the callback; true when it asks to stop
    auto stop = [&]() {
        if (!opt.progress) return false;
        calibrate_progress p;
        p.phase = calibrate_phase::search;
        p.runs = out.runs;
        p.max_runs = opt.max_runs;
        p.best_error = best;
        p.network_calls = reference_calls + out.search_calls;
        return !opt.progress(p);
    };
    auto finish = [&]() {
        out.grid = grid;
        out.error = best;
        out.reference_calls = reference_calls;
        out.network_calls = out.reference_calls + out.search_calls;
        out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return out;
    };

    best = error_of(grid);
    if (!std::isfinite(best))
        throw std::runtime_error("optimize_grid: the run on the initial grid failed (non-finite network output)");
    out.initial_error = out.start_error = best;
    if (stop()) return out.stopped = true, finish();

    // other starts, one run each: the grids of dynamic programming on the cached trajectory,
    // then the power-of-t grids between the same ends
    std::vector<std::vector<double>> starts;
    std::vector<bool> dp;
    if (!opt.dp_powers.empty() && ref.outputs.size() == ref.times.size() && ref.times.size() > 2) {
        const auto cost = jump_costs(schedule, ref, opt.dp_order);
        for (double q : opt.dp_powers) {
            const auto path = shortest_path(cost, steps, q);
            if (path.empty()) continue;
            std::vector<double> g(path.size());
            for (std::size_t k = 0; k < path.size(); ++k) g[k] = ref.times[path[k]];
            starts.push_back(std::move(g));
            dp.push_back(true);
        }
    }
    for (double k : opt.start_powers) {
        try {
            starts.push_back(power_t_grid(schedule, steps, grid.front(), grid.back(), k));
            dp.push_back(false);
        } catch (const std::invalid_argument&) {
            // no such grid on this schedule
        }
    }
    std::vector<std::vector<double>> tried{grid};
    for (std::size_t k = 0; k < starts.size() && out.runs < opt.max_runs; ++k) {
        if (std::find(tried.begin(), tried.end(), starts[k]) != tried.end()) continue;
        tried.push_back(starts[k]);
        const double e = error_of(starts[k]);
        if (e < best) best = e, grid = starts[k], out.from_dp = dp[k];
        if (stop()) return out.start_error = best, out.stopped = true, finish();
    }
    out.start_error = best;

    double f = opt.initial_fraction;
    std::vector<int> first(std::size_t(steps), -1);  // the side of t_i's last kept move, tried first
    while (f >= opt.min_fraction && out.runs < opt.max_runs) {
        bool improved = false;
        for (int i = 1; i < steps && out.runs < opt.max_runs; ++i) {
            for (int side : {first[std::size_t(i)], -first[std::size_t(i)]}) {
                if (out.runs >= opt.max_runs) break;
                std::vector<double> trial = grid;
                const double t_nb = grid[std::size_t(i + side)];
                trial[std::size_t(i)] = grid[std::size_t(i)] + f * (t_nb - grid[std::size_t(i)]);
                if (!(trial[std::size_t(i)] < trial[std::size_t(i - 1)] && trial[std::size_t(i)] > trial[std::size_t(i + 1)]))
                    continue;  // below round-off: no room
                const double e = error_of(trial);
                const bool better = e < best;
                if (better) best = e, grid = std::move(trial), improved = true, first[std::size_t(i)] = side;
                if (stop()) return out.stopped = true, finish();
                if (better) break;  // the other side from the new position in the next sweep
            }
        }
        if (!improved) f *= 0.5;
    }
    return finish();
}

}  // namespace detail

/// A grid of `steps` steps calibrated for one solver configuration on one network, against a
/// reference made by make_calibration_reference (see the top of this header for the method;
/// the reference is only read, so one serves every N and configuration with its ends and
/// output). `config` is either a multistep_options or a callable taking the grid (const
/// std::vector<double>&) and returning the multistep_options for it (e.g. a lambda calling
/// recommended_options, so that the options follow each trial grid); its `output` must be the
/// reference's. Deterministic: the same arguments give the same grid. reference_calls is 0.
///
/// Throws std::invalid_argument before any network call for bad options, steps < 1, an
/// incomplete reference or one of other ends or output, an initial grid of the wrong size or
/// ends, or a configuration the solver rejects; std::runtime_error when the initial grid's run
/// fails (non-finite network output). Thread-safe if `net` is.
template <class Schedule, class Config, class Network>
optimized_grid optimize_grid(const Schedule& schedule, const Config& config, Network&& net,
                             const calibration_reference& ref, int steps, const calibrate_options& opt = {}) {
    return detail::optimize_grid_on(schedule, config, net, ref, steps, opt, 0L);
}

/// optimize_grid on a batch (one sample per column, at the grid's first time, drawn for
/// calibration only): makes the reference (make_calibration_reference with opt.reference_tol,
/// opt.candidates and the configuration's output; its calls are reference_calls), then
/// calibrates against it. A callback that stops it during the reference returns the initial
/// grid with stopped = true and NaN errors. Throws as both.
template <class Schedule, class Config, class Network>
optimized_grid optimize_grid(const Schedule& schedule, const Config& config, Network&& net, const state<double>& batch,
                             int steps, const calibrate_options& opt = {}) {
    const char* where = "optimize_grid";
    const auto t0 = std::chrono::steady_clock::now();
    detail::check_calibrate_options(where, steps, opt);
    if (batch.size() == 0) detail::fail(where, "batch", "empty", "must hold at least one sample");
    if (!batch.allFinite()) detail::fail(where, "batch", "not finite", "must be finite");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::vector<double> grid = detail::calibrate_start_grid(where, schedule, steps, opt, nan, nan);
    const multistep_options o = [&]() -> multistep_options {
        if constexpr (std::is_invocable_r_v<multistep_options, const Config&, const std::vector<double>&>)
            return config(grid);
        else
            return config;
    }();
    { const multistep_solver check(schedule, grid, o); }  // before any call

    calibration_reference_options ro;
    ro.tol = opt.reference_tol;
    ro.output = o.output;
    ro.candidates = opt.dp_powers.empty() ? 0 : opt.candidates;
    ro.progress = opt.progress;
    const calibration_reference ref = make_calibration_reference(schedule, net, batch, grid.front(), grid.back(), ro);
    if (!ref.complete) {
        optimized_grid out;
        out.grid = grid;
        out.initial_error = out.start_error = out.error = std::numeric_limits<double>::quiet_NaN();
        out.stopped = true;
        out.reference_calls = out.network_calls = ref.network_calls;
        out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return out;
    }
    calibrate_options o2 = opt;
    o2.initial_grid = grid;
    optimized_grid out = detail::optimize_grid_on(schedule, config, net, ref, steps, o2, ref.network_calls);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

/// What optimize_configuration returns: the chosen configuration and its calibrated grid.
struct optimized_configuration {
    std::size_t index = 0;              ///< of the chosen configuration in `configs`
    optimized_grid result;              ///< its grid; runs and calls count the screening too
    std::vector<double> screen_errors;  ///< per configuration, its best start grid's error
};

/// A solver configuration and a grid chosen together: each configuration of `configs` (each a
/// multistep_options or a callable as for optimize_grid) is screened on its start grids (the
/// initial grid, the dynamic-programming grids and the power-of-t grids of opt, no pattern
/// search; at most max(1, opt.max_runs / (2 configs.size())) runs each), then the pattern
/// search of optimize_grid refines the best start of the configuration with the lowest error,
/// with the runs left of opt.max_runs. Same reference, errors and stop as optimize_grid (the
/// callback's runs count from the first screening run; a stop during the screening returns
/// the best start so far). Throws as optimize_grid, and std::invalid_argument for an empty
/// `configs` or opt.max_runs < 2 configs.size().
template <class Schedule, class Config, class Network>
optimized_configuration optimize_configuration(const Schedule& schedule, const std::vector<Config>& configs,
                                               Network&& net, const calibration_reference& ref, int steps,
                                               const calibrate_options& opt = {}) {
    const char* where = "optimize_configuration";
    const auto t0 = std::chrono::steady_clock::now();
    detail::check_calibrate_options(where, steps, opt);
    if (configs.empty()) detail::fail(where, "configs", "empty", "must hold at least one configuration");
    if (opt.max_runs < 2 * int(configs.size()))
        detail::fail(where, "max_runs", opt.max_runs,
                     "must be at least twice the number of configurations (" + std::to_string(configs.size()) + ")");
    optimized_configuration out;
    int runs = 0;
    long calls = 0;
    bool stopped = false;
    // the caller's callback, with the runs and calls of the earlier phases added
    auto offset_progress = [&](calibrate_options& o) {
        if (!opt.progress) return;
        o.progress = [&opt, &runs, &calls](const calibrate_progress& p) {
            calibrate_progress q = p;
            q.runs += runs;
            q.max_runs = opt.max_runs;
            q.network_calls += calls;
            return opt.progress(q);
        };
    };
    calibrate_options screen = opt;
    screen.max_runs = std::max(1, opt.max_runs / (2 * int(configs.size())));
    screen.min_fraction = 1.0;  // above initial_fraction: no pattern search
    offset_progress(screen);
    std::vector<optimized_grid> starts;
    for (const Config& c : configs) {
        starts.push_back(detail::optimize_grid_on(schedule, c, net, ref, steps, screen, 0L));
        out.screen_errors.push_back(starts.back().error);
        runs += starts.back().runs;
        calls += starts.back().search_calls;
        if (starts.back().stopped) {
            stopped = true;
            break;
        }
    }
    out.index = std::size_t(std::min_element(out.screen_errors.begin(), out.screen_errors.end()) -
                            out.screen_errors.begin());
    const optimized_grid& chosen = starts[out.index];
    if (stopped) {  // the stop may have come in another configuration's screening than the chosen one
        out.result = chosen;
        out.result.stopped = true;
        out.result.runs = runs;
        out.result.search_calls = calls;
    } else {
        calibrate_options refine = opt;
        refine.initial_grid = chosen.grid;
        refine.dp_powers.clear();
        refine.start_powers.clear();
        refine.max_runs = opt.max_runs - runs;  // >= opt.max_runs / 2
        offset_progress(refine);
        out.result = detail::optimize_grid_on(schedule, configs[out.index], net, ref, steps, refine, 0L);
        out.result.start_error = chosen.error;
        out.result.from_dp = chosen.from_dp;
        out.result.runs += runs;
        out.result.search_calls += calls;
    }
    out.result.initial_error = chosen.initial_error;  // the chosen configuration's initial grid
    out.result.reference_calls = 0;
    out.result.network_calls = out.result.search_calls;
    out.result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

}  // namespace deis
