// deis: the multistep exponential integrators: DDIM, tAB-DEIS, rhoAB-DEIS and iPNDM, with
// an optional corrector and noise or data prediction.
//
// Every step of these solvers has the form
//
//     x_{k+1} = a_k x_k + sum_{j=0..r_k} c_kj h_{k-j}
//
// where h_m is the network's prediction (eps, or x0 with prediction::data) at grid time t_m,
// newest first. With noise prediction the exact solution of the probability-flow ODE is
// x_{k+1} = (alpha_{k+1}/alpha_k) x_k + alpha_{k+1} integral_{rho_k}^{rho_{k+1}} eps drho,
// and with data prediction, in u = 1/rho = alpha/sigma,
// x_{k+1} = (sigma_{k+1}/sigma_k) x_k + sigma_{k+1} integral_{u_k}^{u_{k+1}} x0 du.
// The solvers replace eps (or x0) by the Lagrange polynomial through the r_k + 1 newest
// predictions, in t (tAB) or in rho (rhoAB), and integrate its basis once, when the solver
// is built (see detail/lagrange.hpp).
//
// The grid is the one of grid.hpp: grid[0] = t_max > ... > grid[N] = t_end, N steps, step k
// going from grid[k] to grid[k+1]. A run makes N network calls, at grid[0..N-1].
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "deis/common.hpp"
#include "deis/detail/error.hpp"
#include "deis/detail/lagrange.hpp"
#include "deis/detail/update.hpp"
#include "deis/grid.hpp"

namespace deis {

/// The multistep methods.
enum class multistep_method {
    ddim,   ///< DDIM: the order-0 exponential integrator (one history point)
    tab,    ///< tAB-DEIS: Lagrange extrapolation in t, orders 0-3
    rhoab,  ///< rhoAB-DEIS: Lagrange extrapolation in rho (with either prediction)
    ipndm   ///< iPNDM: the DDIM coefficient times the classical Adams-Bashforth weights
};

/// Options of a multistep solver; every field is checked when the solver is built.
struct multistep_options {
    multistep_method method = multistep_method::tab;
    /// Maximum order r (r + 1 history points), 0..3. -1 picks the method's default:
    /// 3, or 0 for DDIM (which accepts only 0).
    int order = -1;
    /// Step k uses order min(k, order): the warm start needs no extra network call.
    /// The last `final_steps` steps use order min(k, order, final_order); final_order in 0..3
    /// is checked only when final_steps > 0.
    int final_steps = 0;
    int final_order = 1;
    prediction predict = prediction::noise;
    model_output output = model_output::eps;
    /// Exponential Adams-Moulton corrector, free of network calls: after the predictor gives
    /// x_{k+1}, the network is called there (that call is needed by the next step anyway),
    /// and x_{k+1} is recomputed from x_k with the Lagrange polynomial through the new
    /// prediction and the min(r_k + 1, 3) newest old ones. The new prediction (at the
    /// uncorrected point) is kept in the history. No corrector on the last step. Not
    /// available for iPNDM. Memory: a workspace then holds (at most) order + 2 history
    /// buffers and the predicted state (without the corrector: order + 1 history buffers).
    bool corrector = false;
};

/// One row of a solver's coefficient table: step k maps x(t_from) to x(t_to) by
/// x_to = x_coef * x_from + sum_{j <= order} c[j] h_{k-j} (c[0] multiplies the prediction
/// made at t_from), and, when corrector_order >= 0, corrects it by
/// x_to = x_coef * x_from + d[0] h_new + sum_{1 <= j <= corrector_order} d[j] h_{k+1-j},
/// h_new being the prediction made at the uncorrected x_to. Unused entries are 0.
struct step_coefficients {
    double t_from = 0.0, t_to = 0.0;
    double x_coef = 0.0;
    int order = 0;
    std::array<double, detail::max_nodes> c{};
    int corrector_order = -1;
    std::array<double, detail::max_nodes> d{};
};

template <class Scalar>
class multistep_workspace;

/// A multistep solver for one schedule and one grid. Building it computes every
/// coefficient (O(N) work, a few microseconds a step); afterwards it is immutable: sample()
/// is const, and one solver may be shared by any number of threads, each with its own
/// workspace and state.
class multistep_solver {
public:
    /// Validates the grid against the schedule (see check_grid) and the options, then
    /// computes the coefficient table. Throws std::invalid_argument naming the bad argument.
    template <class Schedule>
    multistep_solver(const Schedule& schedule, std::vector<double> grid, multistep_options options = {})
        : opt_(options) {
        check_options();
        grid_ = check_grid(schedule, std::move(grid));
        build(schedule);
    }

    const multistep_options& options() const { return opt_; }
    /// The grid, t_max first.
    const std::vector<double>& grid() const { return grid_; }
    int steps() const { return int(grid_.size()) - 1; }
    /// The coefficient table, one row per step.
    const std::vector<step_coefficients>& table() const { return table_; }
    /// Network calls a complete run makes (one per step).
    int nfe() const { return steps(); }
    /// Number of state-sized history buffers a workspace holds.
    int history_size() const { return history_; }
    /// Whether a workspace also holds a buffer for the uncorrected state.
    bool uses_corrector() const { return any_corrector_; }

    /// Integrates the batch x (one sample per column, at grid()[0]) to grid().back() in
    /// place, calling `net` once per step (see common.hpp for the Network concept).
    /// The workspace must have been made for this solver and x's shape.
    /// Throws std::invalid_argument, before any network call and without touching x, when x
    /// is empty or not finite or the workspace does not fit. A non-finite network output
    /// ends the run: see sample_result. Allocates nothing.
    template <class Network, class Scalar>
    sample_result sample(Network&& net, state<Scalar>& x, multistep_workspace<Scalar>& ws) const;

    /// The same with a workspace allocated for this call.
    template <class Network, class Scalar>
    sample_result sample(Network&& net, state<Scalar>& x) const;

private:
    void check_options() {
        const char* where = "multistep_options";
        const bool ddim = opt_.method == multistep_method::ddim;
        if (opt_.order == -1) opt_.order = ddim ? 0 : 3;
        if (ddim && opt_.order != 0) detail::fail(where, "order", opt_.order, "must be 0 for DDIM");
        if (opt_.order < 0 || opt_.order > 3) detail::fail(where, "order", opt_.order, "must lie in 0..3");
        if (opt_.final_steps < 0) detail::fail(where, "final_steps", opt_.final_steps, "must be >= 0");
        if (opt_.final_steps > 0 && (opt_.final_order < 0 || opt_.final_order > 3))
            detail::fail(where, "final_order", opt_.final_order, "must lie in 0..3");
        if (opt_.corrector && opt_.method == multistep_method::ipndm)
            detail::fail(where, "corrector", "true", "is not available for iPNDM");
    }

    template <class Schedule>
    void build(const Schedule& sch) {
        const int n = steps();
        const bool data = opt_.predict == prediction::data;
        const std::size_t nodes = grid_.size();
        std::vector<double> alpha(nodes), sigma(nodes), s(nodes), var(nodes);
        conv_.resize(std::size_t(n));
        for (std::size_t k = 0; k < nodes; ++k) {
            const double t = grid_[k];
            alpha[k] = sch.alpha(t);
            sigma[k] = sch.sigma(t);
            const double rho = sch.rho(t);
            s[k] = data ? 1.0 / rho : rho;
            var[k] = opt_.method == multistep_method::rhoab ? rho : t;
            if (k < std::size_t(n)) conv_[k] = detail::make_conversion(opt_.output, opt_.predict, alpha[k], sigma[k]);
        }
        // the polynomial's variable (rho for rhoAB, t for tAB) as a function of the integration
        // variable (rho, or u = 1/rho with data prediction). With noise prediction rhoAB
        // integrates polynomials, exactly. With data prediction it stays a polynomial in rho:
        // one in u would extrapolate x0 across u from ~1e-2 to ~1e2 and is unstable.
        auto var_of = [&](double si) {
            const double rho = data ? 1.0 / si : si;
            return opt_.method == multistep_method::rhoab ? rho : sch.t_from_rho(rho);
        };

        // where t(rho) has kinks, in the integration variable, ascending
        std::vector<double> cuts;
        if constexpr (detail::has_rho_knots<Schedule>::value) {
            for (double r : sch.rho_knots()) cuts.push_back(data ? 1.0 / r : r);
            std::sort(cuts.begin(), cuts.end());
        }

        table_.assign(std::size_t(n), step_coefficients{});
        after_corrector_.assign(std::size_t(n), predictor_from_predicted{});
        history_ = 1;
        any_corrector_ = false;
        int e_terms = 0;  // the corrector of the previous step, as below
        std::array<double, detail::max_nodes + 1> e{};
        for (int k = 0; k < n; ++k) {
            const auto ku = std::size_t(k);
            step_coefficients& row = table_[ku];
            row.t_from = grid_[ku];
            row.t_to = grid_[ku + 1];
            const double scale = data ? sigma[ku + 1] : alpha[ku + 1];
            row.x_coef = data ? sigma[ku + 1] / sigma[ku] : alpha[ku + 1] / alpha[ku];

            int r = std::min(k, opt_.order);
            if (k >= n - opt_.final_steps) r = std::min(r, opt_.final_order);
            row.order = r;
            history_ = std::max(history_, r + 1);

            if (opt_.method == multistep_method::ipndm) {
                static constexpr double w[4][4] = {{1.0, 0, 0, 0},
                                                   {3.0 / 2, -1.0 / 2, 0, 0},
                                                   {23.0 / 12, -16.0 / 12, 5.0 / 12, 0},
                                                   {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24}};
                const double ddim = scale * (s[ku + 1] - s[ku]);
                for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = ddim * w[r][j];
                continue;
            }

            // predictor: nodes k, k-1, ..., k-r
            std::array<double, detail::max_nodes> v{};
            for (int j = 0; j <= r; ++j) v[std::size_t(j)] = var[ku - std::size_t(j)];
            const auto I = detail::lagrange_integrals(v.data(), r + 1, s[ku], s[ku + 1], var_of, cuts);
            for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = scale * I[std::size_t(j)];
            if (k > 0 && table_[ku - 1].corrector_order >= 0) {
                // x_k = predicted + sum e h, so x_{k+1} = x_coef predicted + sum f h with
                // f[m] = x_coef e[m] + c[m]: one combination, x_k never formed
                predictor_from_predicted& p = after_corrector_[ku];
                p.terms = std::max(e_terms, r + 1);
                for (int m = 0; m < p.terms; ++m)
                    p.f[std::size_t(m)] = row.x_coef * e[std::size_t(m)] + (m <= r ? row.c[std::size_t(m)] : 0.0);
                history_ = std::max(history_, p.terms);
            }

            // corrector: nodes k+1, k, ..., k+1-q with q = min(r + 1, 3)
            if (opt_.corrector && k < n - 1) {
                const int q = std::min(r + 1, detail::max_nodes - 1);
                for (int j = 0; j <= q; ++j) v[std::size_t(j)] = var[ku + 1 - std::size_t(j)];
                const auto J = detail::lagrange_integrals(v.data(), q + 1, s[ku], s[ku + 1], var_of, cuts);
                row.corrector_order = q;
                for (int j = 0; j <= q; ++j) row.d[std::size_t(j)] = scale * J[std::size_t(j)];
                // x_to from the predicted state, in which x_coef x_k cancels:
                // x_to = predicted + sum_{m <= r + 1} e[m] h_{k+1-m}, e[m] = d[m] - c[m - 1]
                // (zero beyond either order). Its nodes run from k + 1 down to k - r: one more
                // than the corrector's when r = 3.
                e_terms = std::max(q, r + 1) + 1;
                e = {};
                for (int m = 0; m < e_terms; ++m)
                    e[std::size_t(m)] =
                        (m <= q ? row.d[std::size_t(m)] : 0.0) - (m >= 1 ? row.c[std::size_t(m - 1)] : 0.0);
                any_corrector_ = true;
            }
        }
    }

    multistep_options opt_;
    std::vector<double> grid_;
    std::vector<step_coefficients> table_;
    std::vector<detail::conversion> conv_;  // per network call, grid[0..N-1]
    // The predictor of a step that follows a corrected one, as the run applies it:
    // x_{k+1} = x_coef predicted + sum_{m < terms} f[m] h_{k-m} (see build()).
    struct predictor_from_predicted {
        int terms = 0;
        std::array<double, detail::max_nodes + 1> f{};
    };
    std::vector<predictor_from_predicted> after_corrector_;  // per step
    int history_ = 1;
    bool any_corrector_ = false;
};

/// The memory a run needs besides the state: history_size() state-sized buffers (one per
/// history point) and one more when the corrector is on. Made once, reused by any number of
/// runs of the solver it was made for, on batches of the same shape. Not to be shared by
/// two runs at the same time.
template <class Scalar>
class multistep_workspace {
public:
    multistep_workspace(const multistep_solver& solver, Eigen::Index rows, Eigen::Index cols)
        : history_(std::size_t(solver.history_size())) {
        if (rows < 1 || cols < 1)
            detail::fail("multistep_workspace", "shape", std::to_string(rows) + "x" + std::to_string(cols),
                         "must have at least one row and one column");
        for (auto& h : history_) h.resize(rows, cols);
        if (solver.uses_corrector()) predicted_.resize(rows, cols);
    }

    Eigen::Index rows() const { return history_.front().rows(); }
    Eigen::Index cols() const { return history_.front().cols(); }

private:
    friend class multistep_solver;
    std::vector<state<Scalar>> history_;
    state<Scalar> predicted_;
};

template <class Network, class Scalar>
sample_result multistep_solver::sample(Network&& net, state<Scalar>& x, multistep_workspace<Scalar>& ws) const {
    detail::check_state("multistep_solver::sample", x);
    if (ws.history_.size() < std::size_t(history_) || (any_corrector_ && ws.predicted_.size() != x.size()) ||
        ws.rows() != x.rows() || ws.cols() != x.cols())
        detail::fail("multistep_solver::sample", "workspace",
                     std::to_string(ws.rows()) + "x" + std::to_string(ws.cols()),
                     "does not fit this solver and x (" + std::to_string(x.rows()) + "x" +
                         std::to_string(x.cols()) + "): make it with multistep_workspace(solver, x.rows(), x.cols())");

    sample_result r;
    const int n = steps();
    const int nh = history_;
    // hist[j] is the buffer holding the prediction j steps old (newest first)
    std::array<state<Scalar>*, detail::max_nodes + 1> hist{};
    for (int j = 0; j < nh; ++j) hist[std::size_t(j)] = &ws.history_[std::size_t(j)];

    for (int k = 0; k < n; ++k) {
        // the call at grid[k], at x or at the state the predictor of step k - 1 wrote; the
        // oldest buffer is free: step k - 1's predictor has used it, and its corrector and
        // step k's predictor need at most the nh - 1 newest old predictions
        const bool corrected = k > 0 && table_[std::size_t(k - 1)].corrector_order >= 0;
        const state<Scalar>& in = corrected ? ws.predicted_ : x;
        state<Scalar>* fresh = hist[std::size_t(nh - 1)];
        const double t = grid_[std::size_t(k)];
        if (status st = detail::evaluate(net, in, t, *fresh, conv_[std::size_t(k)], r); st != status::success) {
            if (corrected) x = ws.predicted_;
            r.status = st;
            r.failed_time = t;
            r.steps = k;
            return r;
        }
        for (int j = nh - 1; j > 0; --j) hist[std::size_t(j)] = hist[std::size_t(j - 1)];
        hist[0] = fresh;

        // the predictor of step k, into x, or into ws.predicted_ when step k has a corrector.
        // After a corrected step the state at grid[k] is the predicted state corrected, which
        // is never formed: the predictor is applied to the predicted state with coefficients
        // that include the correction (see build()). One pass over memory.
        const step_coefficients& step = table_[std::size_t(k)];
        state<Scalar>& target = step.corrector_order >= 0 ? ws.predicted_ : x;
        if (corrected) {
            const predictor_from_predicted& p = after_corrector_[std::size_t(k)];
            detail::fused_update<Scalar>(target, ws.predicted_, step.x_coef, p.f.data(), hist.data(), p.terms);
        } else {
            detail::fused_update<Scalar>(target, x, step.x_coef, step.c.data(), hist.data(), step.order + 1);
        }
    }
    r.steps = n;
    return r;
}

template <class Network, class Scalar>
sample_result multistep_solver::sample(Network&& net, state<Scalar>& x) const {
    detail::check_state("multistep_solver::sample", x);
    multistep_workspace<Scalar> ws(*this, x.rows(), x.cols());
    return sample(net, x, ws);
}

}  // namespace deis
