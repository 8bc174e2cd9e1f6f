// deis: the multistep exponential integrators: DDIM, tAB-DEIS, rhoAB-DEIS and iPNDM, with
// an optional corrector, noise or data prediction, and stochastic forms (DDIM with eta > 0,
// the SDE form of the data-prediction integrator).
//
// Every step of these solvers has the form
//
//     x_{k+1} = a_k x_k + sum_{j=0..r_k} c_kj h_{k-j}   (+ g_k z_k when stochastic)
//
// where h_m is the network's prediction (eps, or x0 with prediction::data) at grid time t_m,
// newest first, and z_k fresh standard normal noise. With noise prediction the exact
// solution of the probability-flow ODE is
// x_{k+1} = (alpha_{k+1}/alpha_k) x_k + alpha_{k+1} integral_{rho_k}^{rho_{k+1}} eps drho,
// and with data prediction, in u = 1/rho = alpha/sigma,
// x_{k+1} = (sigma_{k+1}/sigma_k) x_k + sigma_{k+1} integral_{u_k}^{u_{k+1}} x0 du.
// The solvers replace eps (or x0) by the Lagrange polynomial through the r_k + 1 newest
// predictions, in t (tAB) or in rho (rhoAB), and integrate its basis once, when the solver
// is built (see detail/lagrange.hpp). tAB's variable may instead be the VP-linear clock
// (tab_clock::vp_linear): the time tau(rho) of the VP-linear schedule (beta 0.1 to 20) with
// the same rho. The data-prediction integrator depends on the schedule only through rho and
// the polynomial's variable, so tAB with this clock on a VE or EDM schedule takes, from the
// same rho grid, the steps of tAB on the VP-linear schedule, up to the scale alpha of x.
//
// Ends of the time range. Data prediction may start at alpha = 0 (rho = inf, u = 0: pure
// noise, t = 1 of flow matching) with tAB, iPNDM or DDIM, and every method may end at sigma = 0
// (clean data): with data prediction the last step is then the limit sigma_{k+1} -> 0 of the
// formula above, x_{k+1} = alpha_{k+1} P(t_{k+1}), P the extrapolated data prediction; with
// noise prediction the integral to rho = 0 is regular. DDIM starting at alpha = 0 runs in the
// data form whatever `predict` says (DDIM is the same method in both). Noise prediction,
// rhoAB (a polynomial in rho, infinite there) and Runge-Kutta cannot start at alpha = 0 and
// are rejected there with a message saying so.
//
// Stochastic sampling (DESIGN.md section 9), with lambda = log(alpha/sigma) and
// h = lambda_{k+1} - lambda_k:
// - DDIM with eta in (0, 1]: x_{k+1} = alpha_{k+1} x0 + sqrt(sigma_{k+1}^2 - g^2) eps + g z,
//   g = eta sigma_{k+1} sqrt(1 - e^{-2h}); eta = 1 is ancestral (DDPM) sampling;
// - `sde` with data prediction: the reverse SDE with its linear part solved exactly,
//   x_{k+1} = (sigma_{k+1}/sigma_k) e^{-h} x_k
//             + 2 alpha_{k+1} integral e^{-2 (lambda_{k+1} - lambda)} x0(lambda) dlambda
//             + sigma_{k+1} sqrt(1 - e^{-2h}) z,
//   with x0 replaced by its Lagrange polynomial (order 0: SDE-DPM-Solver++ 1; order 1 uses
//   two points like SDE-DPM-Solver++(2M), with the exact weighted integrals).
//
// The grid is the one of grid.hpp: grid[0] = t_max > ... > grid[N] = t_end, N steps, step k
// going from grid[k] to grid[k+1]; with `invert` it runs the other way, from data to noise.
// A run makes N network calls, at grid[0..N-1].
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "deis/detail/check_state.hpp"
#include "deis/detail/error.hpp"
#include "deis/detail/evaluate.hpp"
#include "deis/detail/lagrange.hpp"
#include "deis/detail/notify.hpp"
#include "deis/detail/schedule_traits.hpp"
#include "deis/detail/state_of.hpp"
#include "deis/detail/step_checks.hpp"
#include "deis/grid.hpp"
#include "deis/model_output.hpp"
#include "deis/noise.hpp"
#include "deis/observer.hpp"
#include "deis/result.hpp"
#include "deis/schedule.hpp"
#include "deis/state.hpp"

namespace deis {

/// The multistep methods.
enum class multistep_method {
    ddim,   ///< DDIM: the order-0 exponential integrator (one history point)
    tab,    ///< tAB-DEIS: Lagrange extrapolation in t, orders 0-3
    rhoab,  ///< rhoAB-DEIS: Lagrange extrapolation in rho (with either prediction)
    ipndm   ///< iPNDM: the DDIM coefficient times the classical Adams-Bashforth weights
};

/// The variable of tAB's Lagrange polynomial (multistep_method::tab only).
enum class tab_clock {
    schedule,  ///< the schedule's own t (tAB-DEIS as published)
    /// tau(rho) = 2L / (0.1 + sqrt(0.01 + 39.8 L)), L = log(1 + rho^2): the time of
    /// vp_linear(0.1, 20) at which rho is reached. On vp_linear(0.1, 20) it is t itself; on VE
    /// (t = log sigma up to an affine map) and EDM it runs fast near the data and slowly near
    /// the noise, as the VP time does. Needs a finite rho at every grid time (no start at pure
    /// noise).
    vp_linear
};

namespace detail {
/// The schedule whose time is tab_clock::vp_linear: vp_linear(0.1, 20).
inline vp_linear vp_clock() { return vp_linear(0.1, 20.0); }
}  // namespace detail

/// Dynamic thresholding of the data prediction (Imagen): for every sample, s is the
/// `percentile` quantile of |x0| over the sample's entries, clamped to [1, max_value], and
/// x0 becomes clamp(x0, -s, s) / s. Off while percentile == 0.
struct thresholding {
    double percentile = 0.0;  ///< in (0, 1] to enable, e.g. 0.995
    double max_value = 1.0;   ///< >= 1: the largest s (diffusers' sample_max_value)
    bool enabled() const { return percentile != 0.0; }
};

/// Options of a multistep solver; every field is checked when the solver is built, and every
/// fault is reported in one message (see multistep_faults). Every field has a default that is
/// valid whichever other single field is set: the defaults of `method`, `order` and
/// `predict` follow from the other fields.
struct multistep_options {
    /// Unset: DDIM when eta > 0, tAB otherwise.
    std::optional<multistep_method> method;
    /// Maximum order r (r + 1 history points), 0..3. -1 picks the method's default:
    /// 3, 2 with sde (which accepts 0..2), or 0 for DDIM (which accepts only 0).
    int order = -1;
    /// Step k uses order min(k, order): the warm start needs no extra network call.
    /// The last `final_steps` steps use order min(k, order, final_order); final_order in 0..3
    /// is checked only when final_steps > 0.
    int final_steps = 0;
    int final_order = 1;
    /// Unset: data prediction with sde or thresholding (which need it), noise prediction
    /// otherwise.
    std::optional<prediction> predict;
    /// tAB's polynomial variable (see tab_clock); other values than tab_clock::schedule need
    /// method tab.
    tab_clock clock = tab_clock::schedule;
    model_output output = model_output::eps;
    /// Exponential Adams-Moulton corrector, free of network calls: after the predictor gives
    /// x_{k+1}, the network is called there (that call is needed by the next step anyway),
    /// and x_{k+1} is recomputed from x_k with the Lagrange polynomial through the new
    /// prediction and the min(r_k + 1, 3) newest old ones. The new prediction (at the
    /// uncorrected point) is kept in the history. No corrector on the last step. Not
    /// available for iPNDM nor with stochastic sampling. Memory: a workspace then holds (at
    /// most) order + 2 history buffers and the predicted state (without the corrector:
    /// order + 1 history buffers).
    bool corrector = false;
    /// DDIM only: eta in [0, 1]; > 0 makes the sampler stochastic (1: ancestral sampling).
    double eta = 0.0;
    /// The SDE form of the data-prediction integrator (stochastic): needs prediction::data,
    /// method tab, rhoab or ddim, order <= 2, no corrector.
    bool sde = false;
    /// Seed of the default noise (deis::gaussian_noise) of a stochastic run when sample() is
    /// given no noise source; the same seed gives the same samples, sample by sample.
    std::uint64_t seed = 2022;
    /// Dynamic thresholding of x0 after every network call (prediction::data only).
    deis::thresholding threshold{};
    /// Integrate from data to noise (an inversion): the grid runs upwards (check_grid with
    /// direction::inversion). Deterministic methods only.
    bool invert = false;
};

/// The options with every default filled in: method, order and predict set as documented in
/// multistep_options. The other fields are unchanged. Checks nothing.
inline multistep_options resolve_defaults(multistep_options o) {
    if (!o.method) o.method = o.eta > 0.0 ? multistep_method::ddim : multistep_method::tab;
    if (!o.predict) o.predict = o.sde || o.threshold.enabled() ? prediction::data : prediction::noise;
    if (o.order == -1) o.order = *o.method == multistep_method::ddim ? 0 : o.sde ? 2 : 3;
    return o;
}

/// Every fault of the options (after resolve_defaults), one sentence each, as
/// "order = 3 must be 0 for DDIM"; empty when they are valid. The solver joins them into the
/// message of the std::invalid_argument it throws.
inline std::vector<std::string> multistep_faults(const multistep_options& options) {
    const multistep_options o = resolve_defaults(options);
    std::vector<std::string> f;
    auto fault = [&f](const std::string& what, const std::string& value, const std::string& expected) {
        f.push_back(what + " = " + value + " " + expected);
    };
    const auto num = [](double v) { return detail::format_double(v); };
    const bool ddim = o.method == multistep_method::ddim, ipndm = o.method == multistep_method::ipndm;
    if (int(*o.method) < 0 || int(*o.method) > int(multistep_method::ipndm))
        fault("method", std::to_string(int(*o.method)), "is not a multistep_method");
    if (ddim && o.order != 0) fault("order", std::to_string(o.order), "must be 0 for DDIM");
    if (o.order < 0 || o.order > (o.sde ? 2 : 3))
        fault("order", std::to_string(o.order), o.sde ? "must lie in 0..2 with sde" : "must lie in 0..3");
    if (o.final_steps < 0) fault("final_steps", std::to_string(o.final_steps), "must be >= 0");
    if (o.final_steps > 0 && (o.final_order < 0 || o.final_order > 3))
        fault("final_order", std::to_string(o.final_order), "must lie in 0..3");
    if (o.corrector && ipndm) fault("corrector", "true", "is not available for iPNDM");
    if (o.clock != tab_clock::schedule && o.method != multistep_method::tab)
        fault("clock", "vp_linear", "is tAB's polynomial variable: it needs method tab");
    if (!(o.eta >= 0.0 && o.eta <= 1.0)) fault("eta", num(o.eta), "must lie in [0, 1]");
    if (o.eta > 0.0 && !ddim) fault("eta", num(o.eta), "applies to DDIM only (use sde for the others)");
    if (o.sde) {
        if (o.predict != prediction::data) fault("sde", "true", "needs predict = prediction::data");
        if (ipndm) fault("sde", "true", "is available for tab, rhoab and ddim, not iPNDM");
        if (o.eta > 0.0) fault("eta", num(o.eta), "and sde exclude each other");
    }
    const bool stochastic = o.sde || o.eta > 0.0;
    if (stochastic && o.corrector)
        fault("corrector", "true", "is not available with stochastic sampling (eta > 0 or sde)");
    if (stochastic && o.invert) fault("invert", "true", "is for the deterministic solvers (eta = 0, no sde)");
    if (o.threshold.enabled()) {
        if (!(o.threshold.percentile > 0.0 && o.threshold.percentile <= 1.0))
            fault("threshold.percentile", num(o.threshold.percentile), "must lie in (0, 1] (0: off)");
        if (!(o.threshold.max_value >= 1.0 && std::isfinite(o.threshold.max_value)))
            fault("threshold.max_value", num(o.threshold.max_value), "must be finite and >= 1");
        if (o.predict != prediction::data)
            fault("threshold", "on", "thresholds x0: it needs predict = prediction::data");
    }
    return f;
}

/// One row of a solver's coefficient table: step k maps x(t_from) to x(t_to) by
/// x_to = x_coef * x_from + sum_{j <= order} c[j] h_{k-j} (+ noise * z, fresh standard normal
/// noise, for a stochastic solver) (c[0] multiplies the prediction made at t_from), and, when
/// corrector_order >= 0, corrects it by
/// x_to = x_coef * x_from + d[0] h_new + sum_{1 <= j <= corrector_order} d[j] h_{k+1-j},
/// h_new being the prediction made at the uncorrected x_to. Unused entries are 0.
struct step_coefficients {
    double t_from = 0.0, t_to = 0.0;
    double x_coef = 0.0;
    int order = 0;
    std::array<double, detail::max_nodes> c{};
    int corrector_order = -1;
    std::array<double, detail::max_nodes> d{};
    double noise = 0.0;
};

template <class T>
class multistep_workspace;

/// A multistep solver for one schedule and one grid. Building it computes every
/// coefficient (O(N) work, a few microseconds a step, about 200 bytes a step); afterwards it
/// is immutable: sample() is const, and one solver may be shared by any number of threads,
/// each with its own workspace and state.
class multistep_solver {
public:
    /// Validates the options (every fault in one message, see multistep_faults) and the grid
    /// against the schedule (see check_grid), then computes the coefficient table. Throws
    /// std::invalid_argument naming the bad argument,
    /// and naming the step when the table would not give meaningful results: a weight that is
    /// not finite, a step whose weights sum in magnitude to more than 1e8 times their sum
    /// (grid points too close together for the order), or noise prediction on a grid along
    /// which alpha grows by more than 1e8 (deis/detail/step_checks.hpp).
    template <class Schedule>
    multistep_solver(const Schedule& schedule, std::vector<double> grid, multistep_options options = {})
        : opt_(options) {
        check_options();
        grid_ = check_grid(schedule, std::move(grid), opt_.invert ? direction::inversion : direction::sampling);
        build(schedule);
    }

    /// The options, with their defaults filled in (resolve_defaults).
    const multistep_options& options() const { return opt_; }
    /// The grid, t_max first (t_start first with `invert`).
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
    /// Whether runs draw noise (DDIM with eta > 0, or sde); a workspace then holds one
    /// buffer for it.
    bool stochastic() const { return stochastic_; }

    /// Integrates the batch x (at grid()[0]) to grid().back() in place, calling `net` once per
    /// step (see model_output.hpp for the Network concept). x is any model of the State backend
    /// concept (state.hpp): deis::state<Scalar>, an Eigen::Map over the caller's memory, a
    /// torch::Tensor with <deis/torch.hpp>. The workspace must have been made for this solver
    /// and x's layout. The optional observer (see step_info in observer.hpp) sees every step and
    /// may stop the run; the optional noise source (see noise.hpp) replaces the default
    /// seeded noise of a stochastic solver.
    /// Throws std::invalid_argument, before any network call and without touching x, when x
    /// is empty or not finite or the workspace does not fit. A non-finite network output ends
    /// the run, an exception from the network propagates: see sample_result for the state
    /// then. Allocates nothing (on the Eigen backends; torch allocates what its operations do).
    template <class Network, class S, class W, class Observer = detail::no_observer,
              class Noise = gaussian_noise>
    sample_result sample(Network&& net, S& x, multistep_workspace<W>& ws, Observer&& observer = Observer{},
                         Noise&& noise = Noise{}) const;

    /// The same with a workspace allocated for this call.
    template <class Network, class S>
    sample_result sample(Network&& net, S& x) const;

private:
    friend struct multistep_access;

    void check_options() {
        const std::vector<std::string> faults = multistep_faults(opt_);
        if (!faults.empty()) detail::fail_all("multistep_options", faults);
        opt_ = resolve_defaults(opt_);
        stochastic_ = opt_.sde || opt_.eta > 0.0;
    }

    template <class Schedule>
    void build(const Schedule& sch) {
        const char* where = "multistep_solver";
        const int n = steps();
        const std::size_t nodes = grid_.size();
        const double inf = std::numeric_limits<double>::infinity();
        std::vector<double> alpha(nodes), sigma(nodes), rho(nodes);
        for (std::size_t k = 0; k < nodes; ++k) {
            alpha[k] = sch.alpha(grid_[k]);
            sigma[k] = sch.sigma(grid_[k]);
            rho[k] = sch.rho(grid_[k]);
            if (opt_.clock == tab_clock::vp_linear && !std::isfinite(rho[k]))
                detail::fail(where, "grid[" + std::to_string(k) + "]", grid_[k],
                             "has alpha = 0 (rho infinite, and so the VP-linear clock): use clock = "
                             "tab_clock::schedule with such a grid");
        }
        // the noise end, when it is pure noise (alpha = 0): only data prediction starts there
        if (alpha.front() == 0.0 && !opt_.invert) {
            if (opt_.method == multistep_method::ddim) data_ = true;  // the same method in the data form
            if (opt_.predict == prediction::noise && opt_.method != multistep_method::ddim)
                detail::fail(where, "grid[0]", grid_[0],
                             "has alpha = 0 (pure noise, rho infinite): noise prediction cannot start there; use "
                             "predict = prediction::data (or DDIM)");
            if (opt_.method == multistep_method::rhoab)
                detail::fail(where, "grid[0]", grid_[0],
                             "has alpha = 0 (rho infinite): rhoAB's polynomial in rho cannot start there; use tab");
        }
        if (opt_.invert && alpha.back() == 0.0 && opt_.predict == prediction::noise &&
            opt_.method != multistep_method::ddim)
            detail::fail(where, "grid.back()", grid_.back(),
                         "has alpha = 0: noise prediction cannot integrate to rho = inf; use prediction::data");
        if (opt_.invert && sigma.front() == 0.0 && (data_ || opt_.predict == prediction::data))
            detail::fail(where, "grid[0]", grid_[0],
                         "has sigma = 0: data prediction cannot start at clean data; use prediction::noise");
        data_ = data_ || opt_.predict == prediction::data || stochastic_;
        const bool data = data_;
        const bool rhoab = opt_.method == multistep_method::rhoab;
        const bool vp_clock = opt_.clock == tab_clock::vp_linear;
        const vp_linear clock_schedule = detail::vp_clock();

        // the integration variable s (rho, or u = alpha/sigma = 1/rho with data prediction),
        // and the variable of the polynomial (t or the VP-linear clock for tAB, rho for rhoAB)
        std::vector<double> s(nodes), var(nodes);
        for (std::size_t k = 0; k < nodes; ++k) {
            s[k] = data ? (sigma[k] == 0.0 ? inf : alpha[k] / sigma[k]) : rho[k];
            var[k] = rhoab ? rho[k] : vp_clock ? clock_schedule.t_from_rho(rho[k]) : grid_[k];
        }
        conv_.resize(std::size_t(n));
        preview_.resize(std::size_t(n));
        for (int k = 0; k < n; ++k) {
            const auto ku = std::size_t(k);
            const auto [ad, sd] = detail::schedule_derivatives(sch, grid_[ku]);
            if (opt_.output == model_output::velocity && !std::isfinite(ad * sd + 1.0))
                detail::fail(where, "output", "velocity",
                             "needs a schedule with alpha_dot and sigma_dot (finite at t = " +
                                 detail::format_double(grid_[ku]) + ")");
            conv_[ku] = detail::make_conversion(opt_.output, data ? prediction::data : prediction::noise, alpha[ku],
                                                sigma[ku], ad, sd);
            if (!conv_[ku].finite())
                detail::fail(where, "output", detail::to_string(opt_.output),
                             "does not determine the " + std::string(data ? "data" : "noise") +
                                 " prediction at t = " + detail::format_double(grid_[ku]) + " (alpha = " +
                                 detail::format_double(alpha[ku]) + ", sigma = " + detail::format_double(sigma[ku]) +
                                 "): use another model output or end the grid short of it");
            // x0 = px * in + po * h for the observer's preview
            preview_[ku] = data ? detail::conversion{0.0, 1.0}
                                : detail::conversion{1.0 / alpha[ku], -sigma[ku] / alpha[ku]};
        }

        // the polynomial's variable as a function of the integration variable. With noise
        // prediction rhoAB integrates polynomials, exactly. With data prediction it stays a
        // polynomial in rho: one in u would extrapolate x0 across u from ~1e-2 to ~1e2 and is
        // unstable.
        auto var_of = [&](double si) {
            const double r = data ? 1.0 / si : si;
            return rhoab ? r : vp_clock ? clock_schedule.t_from_rho(r) : sch.t_from_rho(r);
        };

        // where t(rho) has kinks, in the integration variable, ascending
        std::vector<double> cuts;
        if constexpr (detail::has_rho_knots<Schedule>::value) {
            for (double r : sch.rho_knots()) cuts.push_back(data ? 1.0 / r : r);
            std::sort(cuts.begin(), cuts.end());
        }

        // integral_{s_k}^{s_{k+1}} weight(s) l_j(var(s)) ds for the nodes v[0..m-1]; at an end
        // with sigma = 0 (s = inf, data prediction) the caller takes the limit instead
        auto lagrange_at_end = [&](const double* v, int m, double x) {
            std::array<double, detail::max_nodes> l{};
            for (int j = 0; j < m; ++j) {
                double p = 1.0;
                for (int i = 0; i < m; ++i)
                    if (i != j) p *= (x - v[i]) / (v[j] - v[i]);
                l[std::size_t(j)] = p;
            }
            return l;
        };

        table_.assign(std::size_t(n), step_coefficients{});
        if (opt_.corrector) {
            after_corrector_.assign(std::size_t(n), combination{});
            correction_.assign(std::size_t(n), combination{});
        }
        history_ = 1;
        any_corrector_ = false;
        for (int k = 0; k < n; ++k) {
            const auto ku = std::size_t(k);
            step_coefficients& row = table_[ku];
            row.t_from = grid_[ku];
            row.t_to = grid_[ku + 1];
            const bool to_clean = data && sigma[ku + 1] == 0.0;  // the limit sigma_{k+1} -> 0
            const double scale = data ? sigma[ku + 1] : alpha[ku + 1];
            row.x_coef = data ? sigma[ku + 1] / sigma[ku] : alpha[ku + 1] / alpha[ku];
            if (!std::isfinite(row.x_coef))
                detail::fail(where, "grid", "step " + std::to_string(k),
                             "has x_coef = " + detail::format_double(row.x_coef) + " (from t = " +
                                 detail::format_double(row.t_from) + "): the " + (data ? "data" : "noise") +
                                 " prediction form cannot start there");

            int r = std::min(k, opt_.order);
            if (k >= n - opt_.final_steps) r = std::min(r, opt_.final_order);
            row.order = r;
            history_ = std::max(history_, r + 1);

            // the DDIM coefficient of this step, in the chosen form (its limit at sigma = 0)
            const double ddim = to_clean ? alpha[ku + 1] : scale * (s[ku + 1] - s[ku]);

            if (opt_.method == multistep_method::ipndm) {
                static constexpr double w[4][4] = {{1.0, 0, 0, 0},
                                                   {3.0 / 2, -1.0 / 2, 0, 0},
                                                   {23.0 / 12, -16.0 / 12, 5.0 / 12, 0},
                                                   {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24}};
                for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = ddim * w[r][j];
                continue;
            }

            // predictor: nodes k, k-1, ..., k-r
            std::array<double, detail::max_nodes> v{};
            for (int j = 0; j <= r; ++j) v[std::size_t(j)] = var[ku - std::size_t(j)];
            if (opt_.eta > 0.0) {
                // DDIM with eta, in the data form (see the top of this header)
                const double q = s[ku] / s[ku + 1];  // e^{-h}, 0 at alpha_k = 0 and at sigma_{k+1} = 0
                const double keep = std::sqrt(1.0 - opt_.eta * opt_.eta * (1.0 - q * q));
                row.x_coef = sigma[ku + 1] * keep / sigma[ku];
                row.c[0] = alpha[ku + 1] - row.x_coef * alpha[ku];
                row.noise = opt_.eta * sigma[ku + 1] * std::sqrt(1.0 - q * q);
                continue;
            }
            if (opt_.sde) {
                // x_coef = (sigma_{k+1}/sigma_k) e^{-h}, c_j = (2 alpha_{k+1}/u_{k+1}^2) int u l_j du,
                // noise sigma_{k+1} sqrt(1 - e^{-2h})
                const double q = s[ku] / s[ku + 1];
                row.x_coef = sigma[ku + 1] / sigma[ku] * q;
                row.noise = sigma[ku + 1] * std::sqrt(1.0 - q * q);
                if (to_clean) {
                    const auto l = lagrange_at_end(v.data(), r + 1, var[ku + 1]);
                    for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = alpha[ku + 1] * l[std::size_t(j)];
                } else {
                    const double u1 = s[ku + 1];
                    const auto I = detail::lagrange_integrals(v.data(), r + 1, s[ku], u1, var_of, cuts,
                                                              [u1](double u) { return u / u1; });
                    // (2 alpha/u1^2) int u l = (2 alpha/u1) int (u/u1) l
                    for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = 2.0 * alpha[ku + 1] / u1 * I[std::size_t(j)];
                }
                continue;
            }
            if (to_clean) {
                const auto l = lagrange_at_end(v.data(), r + 1, var[ku + 1]);
                for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = alpha[ku + 1] * l[std::size_t(j)];
                row.x_coef = 0.0;
            } else {
                const auto I = detail::lagrange_integrals(v.data(), r + 1, s[ku], s[ku + 1], var_of, cuts);
                for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = scale * I[std::size_t(j)];
            }
            if (k > 0 && table_[ku - 1].corrector_order >= 0) {
                // x_k = predicted + sum e h, so x_{k+1} = x_coef predicted + sum f h with
                // f[m] = x_coef e[m] + c[m]: one combination, x_k never formed
                const combination& e = correction_[ku - 1];
                combination& p = after_corrector_[ku];
                p.terms = std::max(e.terms, r + 1);
                for (int m = 0; m < p.terms; ++m)
                    p.f[std::size_t(m)] = row.x_coef * e.f[std::size_t(m)] + (m <= r ? row.c[std::size_t(m)] : 0.0);
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
                combination& e = correction_[ku];
                e.terms = std::max(q, r + 1) + 1;
                for (int m = 0; m < e.terms; ++m)
                    e.f[std::size_t(m)] =
                        (m <= q ? row.d[std::size_t(m)] : 0.0) - (m >= 1 ? row.c[std::size_t(m - 1)] : 0.0);
                history_ = std::max(history_, e.terms);
                any_corrector_ = true;
            }
        }
        check_table(alpha);
    }

    // Refuses a table that round-off has made meaningless (deis/detail/step_checks.hpp).
    void check_table(const std::vector<double>& alpha) const {
        const char* where = "multistep_solver";
        for (std::size_t k = 0; k < table_.size(); ++k) {
            const step_coefficients& row = table_[k];
            const int step = int(k);
            detail::check_weights(where, step, row.t_from, row.t_to, "c", row.c.data(), row.order + 1);
            if (row.corrector_order >= 0)
                detail::check_weights(where, step, row.t_from, row.t_to, "d", row.d.data(), row.corrector_order + 1);
            detail::check_weights(where, step, row.t_from, row.t_to, "noise", &row.noise, 1);
        }
        if (!data_) detail::check_noise_form(where, grid_, alpha);
    }

    template <class Network, class S, class W, class Observer, class Noise>
    sample_result run(Network& net, S& x, multistep_workspace<W>& ws, Observer& observer, Noise& noise) const;

    multistep_options opt_;
    std::vector<double> grid_;
    std::vector<step_coefficients> table_;
    std::vector<detail::conversion> conv_;     // per network call, grid[0..N-1]
    std::vector<detail::conversion> preview_;  // x0 = px * state + po * prediction, per call
    // A combination sum_{m < terms} f[m] h_{k-m} of the history, newest first:
    // - after_corrector_[k]: the predictor of step k when step k - 1 was corrected, applied to
    //   the predicted state: x_{k+1} = x_coef predicted + sum f h (see build());
    // - correction_[k]: the correction of step k, x_{k+1} = predicted + sum f h.
    struct combination {
        int terms = 0;
        std::array<double, detail::max_nodes + 1> f{};
    };
    std::vector<combination> after_corrector_, correction_;  // per step, with the corrector only
    int history_ = 1;
    bool any_corrector_ = false;
    bool stochastic_ = false;
    bool data_ = false;  // the form the run computes in (predict, or data for DDIM from pure noise)
};

/// The memory a run needs besides the state: history_size() state-sized buffers (one per
/// history point), one more when the corrector is on, one for the noise of a stochastic
/// solver and one for the scratch of thresholding. Made once, reused by any number of runs
/// of the solver it was made for, on batches of the same layout. Not to be shared by two
/// runs at the same time.
///
/// T is the state type (any model of the State backend concept, state.hpp), or a scalar
/// type standing for deis::state<T>: multistep_workspace<double> is the workspace of
/// deis::state<double>.
template <class T>
class multistep_workspace {
public:
    using state_type = detail::state_of_t<T>;

    /// Buffers of x's layout (shape, and element type and device where the type has them).
    multistep_workspace(const multistep_solver& solver, const state_type& x) { make(solver, x); }

    /// For Eigen matrices: buffers of rows x cols.
    template <class U = state_type, class = std::enable_if_t<std::is_base_of_v<Eigen::PlainObjectBase<U>, U>>>
    multistep_workspace(const multistep_solver& solver, Eigen::Index rows, Eigen::Index cols) {
        if (rows < 1 || cols < 1)
            detail::fail("multistep_workspace", "shape", std::to_string(rows) + "x" + std::to_string(cols),
                         "must have at least one row and one column");
        make(solver, U(rows, cols));
    }

    /// The layout the workspace was made for (as state_ops::describe says it).
    std::string describe() const { return ops::describe(ops::view(const_cast<buffer&>(history_.front()))); }
    template <class U = state_type, class = std::enable_if_t<std::is_base_of_v<Eigen::MatrixBase<U>, U>>>
    Eigen::Index rows() const {
        return view(history_.front()).rows();
    }
    template <class U = state_type, class = std::enable_if_t<std::is_base_of_v<Eigen::MatrixBase<U>, U>>>
    Eigen::Index cols() const {
        return view(history_.front()).cols();
    }

private:
    friend class multistep_solver;
    using ops = state_ops<state_type>;
    using buffer = typename ops::buffer;

    static const state_type& view(const buffer& b) { return ops::view(const_cast<buffer&>(b)); }

    void make(const multistep_solver& solver, const state_type& x) {
        static_assert(detail::has_state_ops<state_type>::value,
                      "deis::multistep_workspace: the state type does not model the State backend concept "
                      "(deis/state.hpp)");
        if (ops::empty(x))
            detail::fail("multistep_workspace", "shape", ops::describe(x), "must hold at least one element");
        history_.reserve(std::size_t(solver.history_size()));
        for (int j = 0; j < solver.history_size(); ++j) history_.push_back(ops::like(x));
        if (solver.uses_corrector()) predicted_.emplace(ops::like(x));
        if (solver.stochastic()) noise_.emplace(ops::like(x));
        if (solver.options().threshold.enabled()) scratch_.emplace(ops::like(x));
    }

    // whether the workspace fits the solver and x
    bool fits(const multistep_solver& solver, const state_type& x) const {
        if (history_.size() < std::size_t(solver.history_size())) return false;
        if (solver.uses_corrector() && !predicted_) return false;
        if (solver.stochastic() && !noise_) return false;
        if (solver.options().threshold.enabled() && !scratch_) return false;
        return ops::same_layout(view(history_.front()), x);
    }

    std::vector<buffer> history_;
    std::optional<buffer> predicted_, noise_, scratch_;
};

template <class Network, class S, class W, class Observer, class Noise>
sample_result multistep_solver::sample(Network&& net, S& x, multistep_workspace<W>& ws, Observer&& observer,
                                       Noise&& noise) const {
    static_assert(std::is_same_v<typename multistep_workspace<W>::state_type, S>,
                  "deis::multistep_solver::sample: the workspace was made for another state type");
    if constexpr (std::is_same_v<std::decay_t<Noise>, gaussian_noise>) {
        // the default noise source: seeded from the options unless the caller passed one
        if (!noise.seeded()) {
            gaussian_noise seeded(opt_.seed);
            return run(net, x, ws, observer, seeded);
        }
    }
    return run(net, x, ws, observer, noise);
}

template <class Network, class S, class W, class Observer, class Noise>
sample_result multistep_solver::run(Network& net, S& x, multistep_workspace<W>& ws, Observer& observer,
                                    Noise& noise) const {
    using ops = state_ops<S>;
    detail::check_state("multistep_solver::sample", x);
    if (!ws.fits(*this, x))
        detail::fail("multistep_solver::sample", "workspace", ws.describe(),
                     "does not fit this solver and x (" + ops::describe(x) +
                         "): make it with multistep_workspace(solver, x)");
    if constexpr (!std::is_invocable_v<Noise&, S&, int>) {
        if (stochastic_)
            detail::fail("multistep_solver::sample", "noise", "the default",
                         "has no generator for this state type: pass a noise source (see noise.hpp)");
    }
    if constexpr (!detail::has_threshold<S>::value) {
        if (opt_.threshold.enabled())
            detail::fail("multistep_solver::sample", "threshold", "on",
                         "is not available for this state type (state_ops has no threshold)");
    }
    const typename detail::scope_of<S>::type scope{};
    (void)scope;

    sample_result r;
    const int n = steps();
    const int nh = history_;
    // hist[j] is the buffer holding the prediction j steps old (newest first)
    std::array<S*, detail::max_nodes + 1> hist{};
    for (int j = 0; j < nh; ++j) hist[std::size_t(j)] = &ops::view(ws.history_[std::size_t(j)]);
    S* const predicted = ws.predicted_ ? &ops::view(*ws.predicted_) : nullptr;
    S* const z = ws.noise_ ? &ops::view(*ws.noise_) : nullptr;

    for (int k = 0; k < n; ++k) {
        const auto ku = std::size_t(k);
        // the call at grid[k], at x or at the state the predictor of step k - 1 wrote; the
        // oldest buffer is free: step k - 1's predictor has used it, and its corrector and
        // step k's predictor need at most the nh - 1 newest old predictions
        const bool corrected = k > 0 && table_[ku - 1].corrector_order >= 0;
        const S& in = corrected ? *predicted : x;
        S* const fresh = hist[std::size_t(nh - 1)];
        const double t = grid_[ku];
        status st;
        try {
            st = detail::evaluate(net, in, t, *fresh, conv_[ku], r);
        } catch (...) {
            if (corrected) ops::copy(x, *predicted);  // x: the input of the failed call
            throw;
        }
        if (st != status::success) {
            if (corrected) ops::copy(x, *predicted);
            r.status = st;
            r.failed_time = t;
            r.steps = k;
            return r;
        }
        if constexpr (detail::has_threshold<S>::value) {
            if (opt_.threshold.enabled())
                ops::threshold(*fresh, ops::view(*ws.scratch_), opt_.threshold.percentile, opt_.threshold.max_value);
        }
        for (int j = nh - 1; j > 0; --j) hist[std::size_t(j)] = hist[std::size_t(j - 1)];
        hist[0] = fresh;

        // x holds the state at grid[k] unless step k - 1 was corrected: then it is the
        // predicted state corrected, which is formed only for an observer
        bool formed = !corrected;
        if constexpr (detail::has_observer<Observer>) {
            if (corrected) {
                const combination& e = correction_[ku - 1];
                ops::combine(x, 1.0, *predicted, e.f.data(), hist.data(), e.terms);
                formed = true;
            }
            step_info<S> info(x, in, *hist[0], preview_[ku].px, preview_[ku].po);
            info.step = k;
            info.steps = n;
            info.t = t;
            info.nfe = r.nfe;
            if (!detail::notify(observer, info)) {
                r.status = status::cancelled;
                r.failed_time = t;
                r.steps = k;
                return r;
            }
        }

        // the predictor of step k, into x, or into the predicted state when step k has a
        // corrector. After a corrected step the state at grid[k] is the predicted state
        // corrected, which is not formed without an observer: the predictor is applied to the
        // predicted state with coefficients that include the correction (see build()). One
        // pass over memory.
        const step_coefficients& step = table_[ku];
        S& target = step.corrector_order >= 0 ? *predicted : x;
        if (!formed) {
            const combination& p = after_corrector_[ku];
            ops::combine(target, step.x_coef, *predicted, p.f.data(), hist.data(), p.terms);
        } else if (stochastic_) {
            if constexpr (std::is_invocable_v<Noise&, S&, int>) noise(*z, k);
            std::array<const S*, detail::max_nodes + 1> terms{};
            std::array<double, detail::max_nodes + 1> coef{};
            const int m = step.order + 1;
            for (int j = 0; j < m; ++j) {
                terms[std::size_t(j)] = hist[std::size_t(j)];
                coef[std::size_t(j)] = step.c[std::size_t(j)];
            }
            terms[std::size_t(m)] = z;
            coef[std::size_t(m)] = step.noise;
            ops::combine(target, step.x_coef, x, coef.data(), terms.data(), m + 1);
        } else {
            ops::combine(target, step.x_coef, x, step.c.data(), hist.data(), step.order + 1);
        }
    }
    r.steps = n;
    return r;
}

template <class Network, class S>
sample_result multistep_solver::sample(Network&& net, S& x) const {
    detail::check_state("multistep_solver::sample", x);
    multistep_workspace<S> ws(*this, x);
    return sample(net, x, ws);
}

}  // namespace deis
