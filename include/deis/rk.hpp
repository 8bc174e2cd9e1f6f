// deis: rhoRK-DEIS, explicit Runge-Kutta methods on the probability-flow ODE written in rho.
//
// With y = x/alpha and rho = sigma/alpha as the clock the ODE is exactly
//
//     dy/drho = eps(alpha(t(rho)) y, t(rho)),
//
// and rhoRK-DEIS applies an explicit Runge-Kutta tableau (c, a, b) to it. Step k goes from
// grid[k] to grid[k+1] with h = rho_{k+1} - rho_k (negative); stage i sits at
// rho_k + c_i h, at the time t_i = t(rho_k + c_i h) of that rho, where alpha_i = alpha(t_i).
// The solver works on x directly: with eps_j the network's noise prediction at stage j,
//
//     x_i     = (alpha_i / alpha_k) x_k + alpha_i h sum_{j < i} a_ij eps_j    (stage i)
//     x_{k+1} = (alpha_{k+1} / alpha_k) x_k + alpha_{k+1} h sum_j b_j eps_j
//
// which is the Runge-Kutta step on y, multiplied through by alpha. Every coefficient is
// computed when the solver is built, and each stage state and each update is one fused pass
// over memory (terms with a zero tableau entry are left out at compile time).
//
// Stage times: a stage with c_i = 0 is evaluated at grid[k] and one with c_i = 1 at
// grid[k+1] exactly; every other stage at schedule.t_from_rho(rho_k + c_i h). A run calls
// the network `stages` times a step, also when a stage falls on the end of a step (there is
// no first-same-as-last reuse), so nfe() = stages * steps; the last step's c_i = 1 stages
// call the network at grid.back() = t_end. With rk_options::final_euler a step that ends at
// sigma = 0 is one Euler step instead (one call).
//
// The tableaux (the Tableau concept, the built-in ones, with_tableau) are in deis/tableau.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "deis/detail/check_state.hpp"
#include "deis/detail/error.hpp"
#include "deis/detail/evaluate.hpp"
#include "deis/detail/notify.hpp"
#include "deis/detail/schedule_traits.hpp"
#include "deis/detail/state_of.hpp"
#include "deis/detail/step_checks.hpp"
#include "deis/grid.hpp"
#include "deis/model_output.hpp"
#include "deis/observer.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"
#include "deis/tableau.hpp"
#include "deis/workspace.hpp"

namespace deis {

/// Options of a Runge-Kutta solver.
struct rk_options {
    /// What the network returns; converted to eps at every stage (exact, see model_output.hpp).
    model_output output = model_output::eps;
    /// Integrate from data to noise (an inversion): the grid runs upwards (check_grid with
    /// direction::inversion).
    bool invert = false;
    /// A step that ends at sigma = 0 takes one Euler step (the tableau's first stage only,
    /// one network call) instead of the tableau, as the Heun sampler of Karras et al. does:
    /// the other stages would call the network at sigma = 0.
    bool final_euler = false;
};

/// One row of an rk_solver's coefficient table: step k from t_from to t_to, in x-space.
/// Stage i is evaluated at stage_t[i] on the state
/// stage_x_coef[i] * x_from + sum_{j < i} stage_c[i][j] eps_j, and
/// x_to = x_coef * x_from + sum_j b_c[j] eps_j.
template <int Stages>
struct rk_step {
    double t_from = 0.0, t_to = 0.0;
    double h = 0.0;  ///< rho(t_to) - rho(t_from), negative when sampling
    std::array<double, Stages> stage_t{};
    std::array<double, Stages> stage_x_coef{};                 ///< alpha_i / alpha_k
    std::array<std::array<double, Stages>, Stages> stage_c{};  ///< alpha_i h a_ij
    double x_coef = 0.0;                                       ///< alpha_{k+1} / alpha_k
    std::array<double, Stages> b_c{};                          ///< alpha_{k+1} h b_j
    /// One Euler step (rk_options::final_euler at sigma = 0): stage 0 only, b_c = {alpha_{k+1} h}.
    bool euler = false;
};

/// rhoRK-DEIS with the explicit Runge-Kutta tableau `Tableau` (see the Tableau concept in
/// tableau.hpp), for one schedule and one grid. Building it computes every stage time and
/// coefficient (O(stages^2 N) work and stages * N calls of t_from_rho; 8 (stages + 1)^2 bytes
/// a step); afterwards it is immutable: sample() is const, and one solver may be shared by
/// any number of threads, each with its own workspace and state.
///
/// rhoRK integrates in rho, so it cannot start where alpha = 0 (rho infinite); it may end at
/// sigma = 0 (rho = 0), where its last stage calls the network: that needs an output that
/// determines eps there (eps, v, velocity; not x0 or score).
template <class Tableau>
class rk_solver {
    static_assert(Tableau::stages >= 1 && Tableau::stages <= rk_max_stages,
                  "Tableau::stages must lie in 1..deis::rk_max_stages");
    static_assert(Tableau::order >= 1, "Tableau::order must be >= 1");
    static_assert(detail::rk_explicit<Tableau>(),
                  "Tableau::a must be strictly lower triangular (a[i][j] == 0 for j >= i): only explicit "
                  "methods are supported");
    static_assert(detail::rk_nodes_in_step<Tableau>(), "every Tableau::c[i] must lie in [0, 1]");
    static_assert(detail::rk_row_sums<Tableau>(),
                  "every Tableau::c[i] must equal the row sum a[i][0] + ... + a[i][i-1] (so c[0] == 0)");
    static_assert(detail::rk_consistent<Tableau>(), "the weights Tableau::b must sum to 1");

public:
    using tableau_type = Tableau;
    static constexpr int stages = Tableau::stages;
    static constexpr int order = Tableau::order;
    using step_type = rk_step<stages>;

    /// Validates the grid against the schedule (see check_grid), then computes the stage
    /// times and coefficients. Throws std::invalid_argument naming the bad argument, and when
    /// alpha grows by more than 1e8 along the grid (rhoRK is a noise-prediction form; see
    /// deis/detail/step_checks.hpp).
    template <class Schedule>
    rk_solver(const Schedule& schedule, std::vector<double> grid, rk_options options = {}) : opt_(options) {
        grid_ = check_grid(schedule, std::move(grid), opt_.invert ? direction::inversion : direction::sampling);
        build(schedule);
    }

    const rk_options& options() const { return opt_; }
    /// The grid, t_max first (t_start first with `invert`).
    const std::vector<double>& grid() const { return grid_; }
    int steps() const { return int(grid_.size()) - 1; }
    /// Network calls a complete run makes: stages per step (one for an Euler step, see
    /// rk_options::final_euler).
    int nfe() const { return nfe_; }
    /// The coefficient table, one row per step.
    const std::vector<step_type>& table() const { return table_; }
    static const char* name() { return Tableau::name; }
    /// State-sized buffers a run needs (workspace.hpp): one network output per stage and,
    /// with more than one stage, the stage state.
    static constexpr int workspace_size() { return stages + (stages > 1 ? 1 : 0); }

    /// Integrates the batch x (at grid()[0]) to grid().back() in place, calling `net` `stages`
    /// times per step (see model_output.hpp for the Network concept). x is any model of the State
    /// backend concept (state.hpp). The workspace must have been made for this solver's
    /// tableau and x's layout. The optional observer (step_info, observer.hpp) is called after
    /// each step's first call, made at the grid time grid()[step] on the state there.
    /// Throws std::invalid_argument, before any network call and without touching x, when x
    /// is empty or not finite or the workspace does not fit. Allocates nothing (Eigen).
    ///
    /// A non-finite (or reshaped) network output ends the run, and an exception from the
    /// network propagates. The stages of a step are not states of the grid, so then x holds
    /// the state at the start of the failed step, grid()[result.steps] (result.steps = steps
    /// completed), while result.failed_time is the time of the rejected call (a stage time of
    /// that step, see table()) and result.nfe counts every call made, the rejected one
    /// included.
    template <class Network, class S, class W, class Observer = detail::no_observer>
    sample_result sample(Network&& net, S& x, workspace<W>& ws, Observer&& observer = Observer{}) const;

    /// The same with a workspace allocated for this call.
    template <class Network, class S>
    sample_result sample(Network&& net, S& x) const;

private:
    template <class Schedule>
    void build(const Schedule& sch) {
        const int n = steps();
        std::vector<double> alpha(grid_.size());
        for (std::size_t k = 0; k < grid_.size(); ++k) alpha[k] = sch.alpha(grid_[k]);
        detail::check_noise_form("rk_solver", grid_, alpha);  // rhoRK is a noise-prediction form
        table_.assign(std::size_t(n), step_type{});
        conv_.assign(std::size_t(n) * std::size_t(stages), detail::conversion{});
        preview_.assign(std::size_t(n), detail::conversion{});
        nfe_ = 0;
        for (int k = 0; k < n; ++k) {
            const auto ku = std::size_t(k);
            step_type& row = table_[ku];
            row.t_from = grid_[ku];
            row.t_to = grid_[ku + 1];
            const double rho0 = sch.rho(row.t_from), rho1 = sch.rho(row.t_to);
            const double alpha0 = alpha[ku], alpha1 = alpha[ku + 1];
            if (!(std::isfinite(rho0) && std::isfinite(rho1)))
                detail::fail("rk_solver", "grid[" + std::to_string(std::isfinite(rho0) ? k + 1 : k) + "]",
                             std::isfinite(rho0) ? row.t_to : row.t_from,
                             "has alpha = 0 (rho infinite): rhoRK integrates in rho and cannot reach it; use a "
                             "multistep solver with data prediction");
            row.h = rho1 - rho0;
            row.x_coef = alpha1 / alpha0;
            row.euler = opt_.final_euler && sch.sigma(row.t_to) == 0.0;
            preview_[ku] = {1.0 / alpha0, -sch.sigma(row.t_from) / alpha0};
            const int calls = row.euler ? 1 : stages;
            nfe_ += calls;
            const double lo = std::min(row.t_from, row.t_to), hi = std::max(row.t_from, row.t_to);
            for (int i = 0; i < calls; ++i) {
                const auto iu = std::size_t(i);
                const double c = Tableau::c[i];
                double t = c == 0.0 ? row.t_from : c == 1.0 ? row.t_to : sch.t_from_rho(rho0 + c * row.h);
                // rho is monotone, so the stage time lies in the step; t_from_rho may miss it by
                // round-off near the ends (c close to 0 or 1), which is clamped away
                const double slack = 1e-9 * (hi - lo);
                if (!(std::isfinite(t) && t >= lo - slack && t <= hi + slack))
                    detail::fail("rk_solver",
                                 "stage time t(rho) of step " + std::to_string(k) + ", stage " + std::to_string(i), t,
                                 "must lie in the step [" + detail::format_double(lo) + ", " +
                                     detail::format_double(hi) +
                                     "]: the schedule's t_from_rho does not invert its rho");
                t = std::min(std::max(t, lo), hi);
                const double alpha = sch.alpha(t), sigma = sch.sigma(t);
                row.stage_t[iu] = t;
                row.stage_x_coef[iu] = alpha / alpha0;
                for (int j = 0; j < i; ++j) row.stage_c[iu][std::size_t(j)] = alpha * row.h * Tableau::a[i][j];
                row.b_c[iu] = alpha1 * row.h * (row.euler ? 1.0 : Tableau::b[i]);
                const auto [ad, sd] = detail::schedule_derivatives(sch, t);
                if (opt_.output == model_output::velocity && !std::isfinite(ad * sd + 1.0))
                    detail::fail("rk_solver", "output", "velocity",
                                 "needs a schedule with alpha_dot and sigma_dot (finite at t = " +
                                     detail::format_double(t) + ")");
                detail::conversion& cv = conv_[ku * std::size_t(stages) + iu];
                cv = detail::make_conversion(opt_.output, prediction::noise, alpha, sigma, ad, sd);
                if (!cv.finite())
                    detail::fail("rk_solver", "output", detail::to_string(opt_.output),
                                 "does not determine eps at the stage time t = " + detail::format_double(t) +
                                     " (sigma = " + detail::format_double(sigma) +
                                     "): use model_output::eps (or v, velocity), or end the grid short of it");
            }
        }
    }

    template <class, class, class>
    friend class stepper;

    template <int I, class Network, class S, class W, class Observer>
    bool run_stage(Network& net, S& x, workspace<W>& ws, const std::array<const S*, stages>& eps, int k,
                   Observer& observer, sample_result& r) const;

    template <class Network, class S, class W, class Observer, std::size_t... I>
    bool run_step(Network& net, S& x, workspace<W>& ws, const std::array<const S*, stages>& eps, int k,
                  Observer& observer, sample_result& r, std::index_sequence<I...>) const;

    // out = a x + sum over the nonzero entries of row Row (compile-time list) of coef[j] eps[j]
    template <int Row, class S>
    static void combine_row(S& out, double a, const S& x, const double* coef, const std::array<const S*, stages>& eps) {
        using nz = detail::rk_nonzero<Tableau, Row>;
        constexpr int m = nz::count();
        constexpr auto idx = nz::indices();
        std::array<double, std::size_t(m > 0 ? m : 1)> c{};
        std::array<const S*, std::size_t(m > 0 ? m : 1)> h{};
        for (int q = 0; q < m; ++q) {
            c[std::size_t(q)] = coef[idx[std::size_t(q)]];
            h[std::size_t(q)] = eps[idx[std::size_t(q)]];
        }
        state_ops<S>::combine(out, a, x, c.data(), h.data(), m);
    }

    // The state of stage I of a step starting at x.
    template <int I, class S>
    static void form_stage(S& stage, const S& x, const step_type& row, const std::array<const S*, stages>& eps) {
        combine_row<I>(stage, row.stage_x_coef[I], x, row.stage_c[I].data(), eps);
    }
    // The end of the step: x = x_coef x + sum_j b_c[j] eps_j (the Euler step: eps_0 only).
    template <class S>
    static void finish_step(S& x, const step_type& row, const std::array<const S*, stages>& eps) {
        if (row.euler)
            state_ops<S>::combine(x, row.x_coef, x, row.b_c.data(), eps.data(), 1);
        else
            combine_row<stages>(x, row.x_coef, x, row.b_c.data(), eps);
    }

    rk_options opt_;
    int nfe_ = 0;
    std::vector<double> grid_;
    std::vector<step_type> table_;
    std::vector<detail::conversion> conv_;     // per network call: step k, stage i at k * stages + i
    std::vector<detail::conversion> preview_;  // per step: x0 = px x + po eps at grid[k]
};

template <class Tableau>
template <int I, class Network, class S, class W, class Observer>
bool rk_solver<Tableau>::run_stage(Network& net, S& x, workspace<W>& ws, const std::array<const S*, stages>& eps,
                                   int k, Observer& observer, sample_result& r) const {
    const step_type& row = table_[std::size_t(k)];
    const S* in = &x;  // stage 0 is the state at the start of the step (c_0 = 0)
    if constexpr (I > 0) {
        S& stage = ws.buffer(stages);
        form_stage<I>(stage, x, row, eps);
        in = &stage;
    }
    const double t = row.stage_t[I];
    S& out = ws.buffer(I);
    const status st =
        detail::evaluate(net, *in, t, out, conv_[std::size_t(k) * std::size_t(stages) + std::size_t(I)], r);
    if (st != status::success) {
        r.status = st;
        r.failed_time = t;
        return false;
    }
    if constexpr (I == 0 && detail::has_observer<Observer>) {
        // x0 = (x - sigma eps) / alpha at the step's start
        const detail::conversion& p = preview_[std::size_t(k)];
        step_info<S> info(x, x, out, p.px, p.po);
        info.step = k;
        info.steps = steps();
        info.t = t;
        info.nfe = r.nfe;
        if (!detail::notify(observer, info)) {
            r.status = status::cancelled;
            r.failed_time = t;
            return false;
        }
    }
    return true;
}

template <class Tableau>
template <class Network, class S, class W, class Observer, std::size_t... I>
bool rk_solver<Tableau>::run_step(Network& net, S& x, workspace<W>& ws, const std::array<const S*, stages>& eps,
                                  int k, Observer& observer, sample_result& r, std::index_sequence<I...>) const {
    // the stages in order, stopping at the first failed call
    const step_type& row = table_[std::size_t(k)];
    if (row.euler) {
        if (!run_stage<0>(net, x, ws, eps, k, observer, r)) return false;
    } else if (!(run_stage<int(I)>(net, x, ws, eps, k, observer, r) && ...)) {
        return false;
    }
    finish_step(x, row, eps);
    return true;
}

template <class Tableau>
template <class Network, class S, class W, class Observer>
sample_result rk_solver<Tableau>::sample(Network&& net, S& x, workspace<W>& ws, Observer&& observer) const {
    static_assert(std::is_same_v<typename workspace<W>::state_type, S>,
                  "deis::rk_solver::sample: the workspace was made for another state type");
    std::array<const S*, stages> eps{};
    auto check = [&] {
        for (int i = 0; i < stages; ++i) eps[std::size_t(i)] = &ws.buffer(i);
    };
    auto step = [&](int k, sample_result& r) {
        return run_step(net, x, ws, eps, k, observer, r, std::make_index_sequence<std::size_t(stages)>{});
    };
    return detail::run_steps("rk_solver::sample", *this, x, ws, check, step);
}

template <class Tableau>
template <class Network, class S>
sample_result rk_solver<Tableau>::sample(Network&& net, S& x) const {
    detail::check_state("rk_solver::sample", x);
    workspace<S> ws(*this, x);
    return sample(net, x, ws);
}

}  // namespace deis
