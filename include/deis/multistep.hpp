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
// the same rho, or log rho (tab_clock::log_snr, the variable of DPM-Solver++ and UniPC). The
// data-prediction integrator depends on the schedule only through rho and the polynomial's
// variable, so tAB with either clock on a VE or EDM schedule takes, from the same rho grid,
// the steps of tAB on the VP-linear schedule, up to the scale alpha of x.
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
#include <tuple>
#include <utility>
#include <vector>

#include "deis/detail/check_state.hpp"
#include "deis/detail/error.hpp"
#include "deis/detail/evaluate.hpp"
#include "deis/detail/inversion_check.hpp"
#include "deis/detail/lagrange.hpp"
#include "deis/detail/multistep_coefficients.hpp"
#include "deis/detail/notify.hpp"
#include "deis/detail/preset_coefficients.hpp"
#include "deis/detail/schedule_traits.hpp"
#include "deis/detail/state_of.hpp"
#include "deis/detail/step_checks.hpp"
#include "deis/grid.hpp"
#include "deis/model_output.hpp"
#include "deis/multistep_options.hpp"
#include "deis/noise.hpp"
#include "deis/observer.hpp"
#include "deis/result.hpp"
#include "deis/schedule.hpp"
#include "deis/state.hpp"
#include "deis/step_coefficients.hpp"
#include "deis/workspace.hpp"

namespace deis {

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
    /// which alpha grows by more than 1e8 (deis/detail/step_checks.hpp). With `invert`, also
    /// an inversion whose extrapolation is unstable on this grid: on Gaussian data, whose
    /// inversion is exact in closed form, off by more than the exact end's standard deviation
    /// and by more than twice DDIM (deis/detail/inversion_check.hpp; microseconds a step).
    template <class Schedule>
    multistep_solver(const Schedule& schedule, std::vector<double> grid, multistep_options options = {})
        : opt_(options) {
        check_options();
        grid_ = check_grid(schedule, std::move(grid), opt_.invert ? direction::inversion : direction::sampling);
        build(schedule);
        if (opt_.invert) check_inversion(schedule);
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
    /// State-sized buffers a run needs (workspace.hpp): history_size(), one for the
    /// uncorrected state with the corrector, one for the noise of a stochastic run, one for
    /// the scratch of thresholding.
    int workspace_size() const { return scratch_index() + (opt_.threshold.enabled() ? 1 : 0); }

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
    sample_result sample(Network&& net, S& x, workspace<W>& ws, Observer&& observer = Observer{},
                         Noise&& noise = Noise{}) const;

    /// The same with a workspace allocated for this call.
    template <class Network, class S>
    sample_result sample(Network&& net, S& x) const;

private:
    friend struct multistep_access;
    friend struct detail::inversion_access;

    void check_options() {
        const std::vector<std::string> faults = multistep_faults(opt_);
        if (!faults.empty()) detail::fail_all("multistep_options", faults);
        opt_ = resolve_defaults(opt_);
        stochastic_ = opt_.sde || opt_.eta > 0.0;
    }

    template <class Schedule>
    void build(const Schedule& sch) {
        detail::multistep_nodes nv = detail::schedule_at_nodes(sch, grid_, opt_.clock);
        check_ends(nv);
        const vp_linear clock_schedule = detail::vp_clock();
        const detail::polynomial_variable<Schedule> var_of{sch, clock_schedule, data_,
                                                           opt_.method == multistep_method::rhoab, opt_.clock};
        detail::integration_variables(nv, grid_, var_of);
        detail::node_conversions(sch, grid_, nv, opt_.output, data_, conv_, preview_);

        table_.assign(std::size_t(steps()), step_coefficients{});
        if (opt_.corrector || detail::is_unipc(*opt_.method)) {
            after_corrector_.assign(std::size_t(steps()), combination{});
            correction_.assign(std::size_t(steps()), combination{});
        }
        history_ = 1;
        any_corrector_ = false;
        // log(alpha/sigma) at the nodes, for the presets that step in it
        const std::vector<double> lambda = detail::is_lambda_preset(*opt_.method) ? detail::log_snr(nv)
                                                                                   : std::vector<double>{};
        for (int k = 0; k < steps(); ++k) build_row(k, nv, var_of, lambda);
        check_table(nv.alpha);
    }

    // The ends of the time range: pure noise (alpha = 0), where only data prediction starts
    // (DDIM and Euler run in the data form there), and the ends an inversion cannot start or
    // reach. Sets the form the run computes in.
    void check_ends(const detail::multistep_nodes& nv) {
        const char* where = "multistep_solver";
        const bool ddim = opt_.method == multistep_method::ddim || opt_.method == multistep_method::euler;
        if (nv.alpha.front() == 0.0 && !opt_.invert) {
            if (ddim) data_ = true;  // the same method in the data form
            if (opt_.predict == prediction::noise && !ddim)
                detail::fail(where, "grid[0]", grid_[0],
                             is_preset(*opt_.method)
                                 ? "has alpha = 0 (pure noise, rho infinite): the preset " +
                                       preset_name(*opt_.method, opt_.order) +
                                       " is noise prediction and cannot start there; use a data-prediction "
                                       "preset (dpmpp_2m, dpmpp_3m, uni_pc_bh2, euler)"
                                 : std::string("has alpha = 0 (pure noise, rho infinite): noise prediction cannot "
                                               "start there; use predict = prediction::data (or DDIM)"));
            if (opt_.method == multistep_method::rhoab)
                detail::fail(where, "grid[0]", grid_[0],
                             "has alpha = 0 (rho infinite): rhoAB's polynomial in rho cannot start there; use tab");
            if (opt_.method == multistep_method::unipc_bh1)
                detail::fail(where, "grid[0]", grid_[0],
                             "has alpha = 0 (lambda = -inf): the corrector of uni_pc (B(h) = h) is infinite on "
                             "the first step; use uni_pc_bh2 (B(h) = e^h - 1)");
        }
        if (opt_.invert && nv.alpha.back() == 0.0 && opt_.predict == prediction::noise && !ddim)
            detail::fail(where, "grid.back()", grid_.back(),
                         "has alpha = 0: noise prediction cannot integrate to rho = inf; use prediction::data");
        if (opt_.invert && nv.sigma.front() == 0.0 && (data_ || opt_.predict == prediction::data))
            detail::fail(where, "grid[0]", grid_[0],
                         "has sigma = 0: data prediction cannot start at clean data; use prediction::noise");
        data_ = data_ || opt_.predict == prediction::data || stochastic_;
    }

    // Row k of the table: x_coef and the order, then the weights of the method (one kind of
    // row each, deis/detail/multistep_coefficients.hpp and preset_coefficients.hpp), and with
    // a corrector its weights and the combinations that apply it.
    template <class Var>
    void build_row(int k, const detail::multistep_nodes& nv, const Var& var_of, const std::vector<double>& lambda) {
        const int n = steps();
        const auto ku = std::size_t(k);
        const bool data = data_;
        step_coefficients& row = table_[ku];
        row.t_from = grid_[ku];
        row.t_to = grid_[ku + 1];
        const bool to_clean = data && nv.sigma[ku + 1] == 0.0;  // the limit sigma_{k+1} -> 0
        const double scale = data ? nv.sigma[ku + 1] : nv.alpha[ku + 1];
        row.x_coef = data ? nv.sigma[ku + 1] / nv.sigma[ku] : nv.alpha[ku + 1] / nv.alpha[ku];
        if (!std::isfinite(row.x_coef))
            detail::fail("multistep_solver", "grid", "step " + std::to_string(k),
                         "has x_coef = " + detail::format_double(row.x_coef) + " (from t = " +
                             detail::format_double(row.t_from) + "): the " + (data ? "data" : "noise") +
                             " prediction form cannot start there");
        const bool preset = detail::is_lambda_preset(*opt_.method), unipc = detail::is_unipc(*opt_.method);
        int r = std::min(k, opt_.order);
        if (preset)
            r = detail::preset_order(*opt_.method, opt_.order + 1, k, n, nv.sigma[ku + 1] == 0.0) - 1;
        else if (k >= n - opt_.final_steps)
            r = std::min(r, opt_.final_order);
        row.order = r;
        history_ = std::max(history_, r + 1);

        if (opt_.method == multistep_method::ipndm) {
            // the DDIM coefficient of this step, in the chosen form (its limit at sigma = 0)
            const double ddim = to_clean ? nv.alpha[ku + 1] : scale * (nv.s[ku + 1] - nv.s[ku]);
            return detail::ipndm_row(row, r, ddim);
        }
        if (opt_.eta > 0.0) return detail::ddim_eta_row(row, nv, ku, opt_.eta);
        if (opt_.sde) return detail::sde_row(row, nv, ku, r, to_clean, var_of);
        if (preset)
            detail::preset_row(row, *opt_.method, k, n, nv, lambda);
        else
            detail::predictor_row(row, nv, ku, r, to_clean, scale, var_of);
        if (k > 0 && table_[ku - 1].corrector_order >= 0) {
            after_corrector_[ku] = detail::after_correction(correction_[ku - 1], row);
            history_ = std::max(history_, after_corrector_[ku].terms);
        }
        if ((opt_.corrector || unipc) && k < n - 1) {
            if (opt_.corrector) detail::corrector_row(row, nv, ku, r, scale, var_of);
            correction_[ku] = detail::correction_of(row);
            history_ = std::max(history_, correction_[ku].terms);
            any_corrector_ = true;
        }
    }

    // Refuses an inversion whose table misses the exact map of Gaussian data
    // (detail/inversion_check.hpp) by more than the end's standard deviation and more than
    // twice as much as DDIM on the same grid: its extrapolation amplifies instead of
    // integrating. DDIM and Euler are the baseline and are not probed.
    template <class Schedule>
    void check_inversion(const Schedule& sch) {
        if (opt_.method == multistep_method::ddim || opt_.method == multistep_method::euler) return;
        const model_output probe_output = data_ ? model_output::x0 : model_output::eps;
        multistep_solver probe = *this;
        probe.opt_.output = probe_output;
        probe.opt_.threshold = thresholding{};
        detail::node_conversions(sch, grid_, detail::schedule_at_nodes(sch, grid_, opt_.clock), probe_output, data_,
                                 probe.conv_, probe.preview_);
        multistep_options first;
        first.method = multistep_method::ddim;
        first.predict = data_ ? prediction::data : prediction::noise;
        first.output = probe_output;
        first.invert = true;
        const multistep_solver ddim(sch, grid_, first);
        std::tie(probe_.error, probe_.s) = detail::gaussian_probe(probe, sch);
        probe_.ddim_error = detail::gaussian_probe(ddim, sch).first;
        if (probe_.error > 1.0 && !(probe_.error <= 2.0 * probe_.ddim_error))
            throw detail::unstable_inversion(
                "deis::multistep_solver: invert = true is unstable with this configuration on this grid: on "
                "Gaussian data of standard deviation " +
                detail::format_double(probe_.s) + " its inversion misses by " + detail::format_double(probe_.error) +
                " standard deviations (DDIM on the same grid: " + detail::format_double(probe_.ddim_error) +
                "): use more steps, a lower order, data prediction or DDIM");
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

    // The workspace's buffers: the history first, then the uncorrected state, the noise and
    // the scratch, each when the run needs it.
    int predicted_index() const { return history_; }
    int noise_index() const { return predicted_index() + (any_corrector_ ? 1 : 0); }
    int scratch_index() const { return noise_index() + (stochastic_ ? 1 : 0); }

    // The run and the parts of its loop (deis/detail/multistep_run.hpp), shared by sample()
    // and stepper.
    template <class, class, class>
    friend class stepper;
    // The buffers of a run: hist[j] holds the prediction j steps old (newest first); the
    // uncorrected state, the noise and the scratch when the run needs them.
    template <class S>
    struct run_buffers {
        std::array<S*, detail::max_nodes + 1> hist{};
        S *predicted = nullptr, *z = nullptr, *scratch = nullptr;
        S* fresh(int history) const { return hist[std::size_t(history - 1)]; }  // the next call's output
    };
    template <class S, class W>
    run_buffers<S> take_buffers(workspace<W>& ws) const;
    // Whether the call at grid[k] is made at the predicted state of a corrected step k - 1.
    bool after_correction(int k) const { return k > 0 && table_[std::size_t(k) - 1].corrector_order >= 0; }
    // The state the call at grid[k] is made at: x, or the predicted state after a corrected step.
    template <class S>
    const S& call_input(int k, const S& x, const run_buffers<S>& b) const;
    // After the call at grid[k] wrote its converted output into b.fresh(): thresholding, the
    // history, the observer and the predictor of step k. False when the observer stopped the run.
    template <class S, class Observer, class Noise>
    bool after_call(int k, S& x, run_buffers<S>& b, Observer& observer, Noise& noise, sample_result& r) const;
    template <class Network, class S, class W, class Observer, class Noise>
    sample_result run(Network& net, S& x, workspace<W>& ws, Observer& observer, Noise& noise) const;
    // The checks of sample()'s arguments that are the multistep solver's own.
    template <class Noise, class S>
    void check_run() const;
    // The network call at grid[k] on `in` into `out`; on a failure (a status, or an exception
    // that propagates) `restore`, when given, is set to `in`.
    template <class Network, class S>
    status call(Network& net, int k, const S& in, S& out, S* restore, sample_result& r) const;
    // The observer after the call at grid[k]; whether to go on.
    template <class Observer, class S>
    bool observe(Observer& observer, int k, const S& x, const S& in, const S& h, const sample_result& r) const;
    // Records in r a run stopped at grid[k] with status st; false.
    bool stopped(sample_result& r, status st, int k) const;
    // The predictor of step k.
    template <class S, class Noise>
    void predict(int k, S& x, S* predicted, S* z, const std::array<S*, detail::max_nodes + 1>& hist, bool formed,
                 Noise& noise) const;

    multistep_options opt_;
    std::vector<double> grid_;
    std::vector<step_coefficients> table_;
    std::vector<detail::conversion> conv_;     // per network call, grid[0..N-1]
    std::vector<detail::conversion> preview_;  // x0 = px * state + po * prediction, per call
    // A combination sum_{m < terms} f[m] h_{k-m} of the history, newest first:
    // - after_corrector_[k]: the predictor of step k when step k - 1 was corrected, applied to
    //   the predicted state: x_{k+1} = x_coef predicted + sum f h (see build_row());
    // - correction_[k]: the correction of step k, x_{k+1} = predicted + sum f h.
    using combination = detail::multistep_combination;
    std::vector<combination> after_corrector_, correction_;  // per step, with the corrector only
    int history_ = 1;
    bool any_corrector_ = false;
    bool stochastic_ = false;
    bool data_ = false;  // the form the run computes in (predict, or data for DDIM from pure noise)
    detail::inversion_probe probe_;  // with invert (check_inversion)
};

namespace detail {
struct inversion_access {
    static const inversion_probe& probe(const multistep_solver& s) { return s.probe_; }
};
}  // namespace detail

}  // namespace deis

// the definitions of sample() and of the functions of its loop
#include "deis/detail/multistep_run.hpp"
