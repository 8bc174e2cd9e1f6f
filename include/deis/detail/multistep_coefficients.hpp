// deis: the coefficients of the multistep solvers (deis/multistep.hpp), one kind at a time:
// the schedule and the variables at the grid's nodes, the conversions of the network's
// output, and the weights of a step: iPNDM, DDIM with eta, the SDE form, the Lagrange
// predictor, the corrector, and the combinations that apply a correction without forming
// the corrected state. The formulas are those at the top of deis/multistep.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/detail/lagrange.hpp"
#include "deis/detail/schedule_traits.hpp"
#include "deis/model_output.hpp"
#include "deis/multistep_options.hpp"
#include "deis/schedule.hpp"
#include "deis/step_coefficients.hpp"

namespace deis::detail {

// The schedule at the grid's nodes, and the variables the coefficients are integrals in.
struct multistep_nodes {
    std::vector<double> alpha, sigma, rho;
    std::vector<double> s;     // the integration variable: rho, or u = alpha/sigma = 1/rho with data prediction
    std::vector<double> var;   // the polynomial's variable: t, the VP-linear clock or log rho (tAB), rho (rhoAB)
    std::vector<double> cuts;  // where t(rho) has kinks, in the integration variable, ascending
};

// alpha, sigma and rho at every node; with the VP-linear clock every rho must be finite,
// with the log-SNR clock finite and positive.
template <class Schedule>
multistep_nodes schedule_at_nodes(const Schedule& sch, const std::vector<double>& grid, tab_clock clock) {
    const std::size_t nodes = grid.size();
    multistep_nodes nv;
    nv.alpha.resize(nodes);
    nv.sigma.resize(nodes);
    nv.rho.resize(nodes);
    for (std::size_t k = 0; k < nodes; ++k) {
        nv.alpha[k] = sch.alpha(grid[k]);
        nv.sigma[k] = sch.sigma(grid[k]);
        nv.rho[k] = sch.rho(grid[k]);
        if (clock != tab_clock::schedule && !std::isfinite(nv.rho[k]))
            fail("multistep_solver", "grid[" + std::to_string(k) + "]", grid[k],
                 std::string("has alpha = 0 (rho infinite, and so the ") +
                     (clock == tab_clock::vp_linear ? "VP-linear" : "log-SNR") +
                     " clock): use clock = tab_clock::schedule with such a grid");
        if (clock == tab_clock::log_snr && !(nv.rho[k] > 0.0))
            fail("multistep_solver", "grid[" + std::to_string(k) + "]", grid[k],
                 "has sigma = 0 (log rho = -inf, the log-SNR clock's end): end the grid short of "
                 "clean data, or use clock = tab_clock::schedule");
    }
    return nv;
}

// The polynomial's variable as a function of the integration variable. With noise
// prediction rhoAB integrates polynomials, exactly. With data prediction it stays a
// polynomial in rho: one in u would extrapolate x0 across u from ~1e-2 to ~1e2 and is
// unstable.
template <class Schedule>
struct polynomial_variable {
    const Schedule& sch;
    const vp_linear& vp;
    bool data, rhoab;
    tab_clock clock;
    double of_rho(double r) const {
        if (rhoab) return r;
        if (clock == tab_clock::vp_linear) return vp.t_from_rho(r);
        if (clock == tab_clock::log_snr) return std::log(r);
        return sch.t_from_rho(r);
    }
    double operator()(double si) const {
        if (data && clock == tab_clock::log_snr && !rhoab) return -std::log(si);  // log(1/u), exactly
        return of_rho(data ? 1.0 / si : si);
    }
};

// The integration variable s and the polynomial's variable var at every node, and the kinks
// of t(rho).
template <class Schedule>
void integration_variables(multistep_nodes& nv, const std::vector<double>& grid,
                           const polynomial_variable<Schedule>& p) {
    const double inf = std::numeric_limits<double>::infinity();
    const std::size_t nodes = grid.size();
    nv.s.resize(nodes);
    nv.var.resize(nodes);
    for (std::size_t k = 0; k < nodes; ++k) {
        nv.s[k] = p.data ? (nv.sigma[k] == 0.0 ? inf : nv.alpha[k] / nv.sigma[k]) : nv.rho[k];
        nv.var[k] = !p.rhoab && p.clock == tab_clock::schedule ? grid[k] : p.of_rho(nv.rho[k]);
    }
    if constexpr (has_rho_knots<Schedule>::value) {
        for (double r : p.sch.rho_knots()) nv.cuts.push_back(p.data ? 1.0 / r : r);
        std::sort(nv.cuts.begin(), nv.cuts.end());
    }
}

// Per network call (grid[0..N-1]): the conversion of the output into the predicted quantity,
// and x0 = px * state + po * prediction for the observer's preview.
template <class Schedule>
void node_conversions(const Schedule& sch, const std::vector<double>& grid, const multistep_nodes& nv,
                      model_output output, bool data, std::vector<conversion>& conv,
                      std::vector<conversion>& preview) {
    const char* where = "multistep_solver";
    const std::size_t n = grid.size() - 1;
    conv.resize(n);
    preview.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
        const auto [ad, sd] = schedule_derivatives(sch, grid[k]);
        if (output == model_output::velocity && !std::isfinite(ad * sd + 1.0))
            fail(where, "output", "velocity",
                 "needs a schedule with alpha_dot and sigma_dot (finite at t = " + format_double(grid[k]) + ")");
        conv[k] = make_conversion(output, data ? prediction::data : prediction::noise, nv.alpha[k], nv.sigma[k], ad, sd);
        if (!conv[k].finite())
            fail(where, "output", to_string(output),
                 "does not determine the " + std::string(data ? "data" : "noise") + " prediction at t = " +
                     format_double(grid[k]) + " (alpha = " + format_double(nv.alpha[k]) +
                     ", sigma = " + format_double(nv.sigma[k]) +
                     "): use another model output or end the grid short of it");
        preview[k] = data ? conversion{0.0, 1.0} : conversion{1.0 / nv.alpha[k], -nv.sigma[k] / nv.alpha[k]};
    }
}

// The Lagrange basis of the nodes v[0..m-1] at x: the limit of a step that ends at sigma = 0
// (s = inf, data prediction), where the integral is replaced by the value there.
inline std::array<double, max_nodes> lagrange_at(const double* v, int m, double x) {
    std::array<double, max_nodes> l{};
    for (int j = 0; j < m; ++j) {
        double p = 1.0;
        for (int i = 0; i < m; ++i)
            if (i != j) p *= (x - v[i]) / (v[j] - v[i]);
        l[std::size_t(j)] = p;
    }
    return l;
}

// The predictor's nodes k, k-1, ..., k-r, in the polynomial's variable.
inline std::array<double, max_nodes> predictor_nodes(const multistep_nodes& nv, std::size_t k, int r) {
    std::array<double, max_nodes> v{};
    for (int j = 0; j <= r; ++j) v[std::size_t(j)] = nv.var[k - std::size_t(j)];
    return v;
}

// iPNDM: the DDIM coefficient of the step times the classical Adams-Bashforth weights.
inline void ipndm_row(step_coefficients& row, int r, double ddim) {
    static constexpr double w[4][4] = {{1.0, 0, 0, 0},
                                       {3.0 / 2, -1.0 / 2, 0, 0},
                                       {23.0 / 12, -16.0 / 12, 5.0 / 12, 0},
                                       {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24}};
    for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = ddim * w[r][j];
}

// DDIM with eta > 0, in the data form.
inline void ddim_eta_row(step_coefficients& row, const multistep_nodes& nv, std::size_t k, double eta) {
    const double q = nv.s[k] / nv.s[k + 1];  // e^{-h}, 0 at alpha_k = 0 and at sigma_{k+1} = 0
    const double keep = std::sqrt(1.0 - eta * eta * (1.0 - q * q));
    row.x_coef = nv.sigma[k + 1] * keep / nv.sigma[k];
    row.c[0] = nv.alpha[k + 1] - row.x_coef * nv.alpha[k];
    row.noise = eta * nv.sigma[k + 1] * std::sqrt(1.0 - q * q);
}

// The SDE form: x_coef = (sigma_{k+1}/sigma_k) e^{-h}, c_j = (2 alpha_{k+1}/u_{k+1}^2) int u l_j du,
// noise sigma_{k+1} sqrt(1 - e^{-2h}).
template <class Var>
void sde_row(step_coefficients& row, const multistep_nodes& nv, std::size_t k, int r, bool to_clean,
             const Var& var_of) {
    const auto v = predictor_nodes(nv, k, r);
    const double q = nv.s[k] / nv.s[k + 1];
    row.x_coef = nv.sigma[k + 1] / nv.sigma[k] * q;
    row.noise = nv.sigma[k + 1] * std::sqrt(1.0 - q * q);
    if (to_clean) {
        const auto l = lagrange_at(v.data(), r + 1, nv.var[k + 1]);
        for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = nv.alpha[k + 1] * l[std::size_t(j)];
    } else {
        const double u1 = nv.s[k + 1];
        const auto I = lagrange_integrals(v.data(), r + 1, nv.s[k], u1, var_of, nv.cuts,
                                          [u1](double u) { return u / u1; });
        // (2 alpha/u1^2) int u l = (2 alpha/u1) int (u/u1) l
        for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = 2.0 * nv.alpha[k + 1] / u1 * I[std::size_t(j)];
    }
}

// The Lagrange predictor of order r (tAB, rhoAB, DDIM): c_j = scale integral l_j, scale =
// alpha_{k+1} (noise prediction) or sigma_{k+1} (data prediction); at sigma_{k+1} = 0 with
// data prediction, its limit alpha_{k+1} l_j(var_{k+1}), and x_coef 0.
template <class Var>
void predictor_row(step_coefficients& row, const multistep_nodes& nv, std::size_t k, int r, bool to_clean,
                   double scale, const Var& var_of) {
    const auto v = predictor_nodes(nv, k, r);
    if (to_clean) {
        const auto l = lagrange_at(v.data(), r + 1, nv.var[k + 1]);
        for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = nv.alpha[k + 1] * l[std::size_t(j)];
        row.x_coef = 0.0;
    } else {
        const auto I = lagrange_integrals(v.data(), r + 1, nv.s[k], nv.s[k + 1], var_of, nv.cuts);
        for (int j = 0; j <= r; ++j) row.c[std::size_t(j)] = scale * I[std::size_t(j)];
    }
}

// The corrector of step k (predictor order r): nodes k+1, k, ..., k+1-q with
// q = min(r + 1, 3); sets d and corrector_order.
template <class Var>
void corrector_row(step_coefficients& row, const multistep_nodes& nv, std::size_t k, int r, double scale,
                   const Var& var_of) {
    const int q = std::min(r + 1, max_nodes - 1);
    std::array<double, max_nodes> v{};
    for (int j = 0; j <= q; ++j) v[std::size_t(j)] = nv.var[k + 1 - std::size_t(j)];
    const auto J = lagrange_integrals(v.data(), q + 1, nv.s[k], nv.s[k + 1], var_of, nv.cuts);
    row.corrector_order = q;
    for (int j = 0; j <= q; ++j) row.d[std::size_t(j)] = scale * J[std::size_t(j)];
}

// A combination sum_{m < terms} f[m] h_{k-m} of the history, newest first.
struct multistep_combination {
    int terms = 0;
    std::array<double, max_nodes + 1> f{};
};

// The correction of a corrected step, from the predicted state, in which x_coef x_k
// cancels: x_to = predicted + sum_{m <= r + 1} e[m] h_{k+1-m}, e[m] = d[m] - c[m - 1] (zero
// beyond either order). Its nodes run from k + 1 down to k - r: one more than the
// corrector's when r = 3.
inline multistep_combination correction_of(const step_coefficients& row) {
    const int q = row.corrector_order, r = row.order;
    multistep_combination e;
    e.terms = std::max(q, r + 1) + 1;
    for (int m = 0; m < e.terms; ++m)
        e.f[std::size_t(m)] = (m <= q ? row.d[std::size_t(m)] : 0.0) - (m >= 1 ? row.c[std::size_t(m - 1)] : 0.0);
    return e;
}

// The predictor of a step that follows a corrected one, applied to the predicted state: x_k =
// predicted + sum e h, so x_{k+1} = x_coef predicted + sum f h with f[m] = x_coef e[m] + c[m]:
// one combination, x_k never formed.
inline multistep_combination after_correction(const multistep_combination& e, const step_coefficients& row) {
    const int r = row.order;
    multistep_combination p;
    p.terms = std::max(e.terms, r + 1);
    for (int m = 0; m < p.terms; ++m)
        p.f[std::size_t(m)] = row.x_coef * e.f[std::size_t(m)] + (m <= r ? row.c[std::size_t(m)] : 0.0);
    return p;
}

}  // namespace deis::detail
