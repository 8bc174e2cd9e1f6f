// deis: the rows of the presets (docs/presets.md): the published updates of DPM-Solver++
// (2M, 3M), UniPC (B(h) = h or expm1(h)) and diffusers' DEIS (Lagrange basis in log rho),
// written as rows of the multistep table, and the order each step uses.
//
// With lambda = log(alpha/sigma), a step from s0 = t_k to t = t_{k+1} has h = lambda_t -
// lambda_s0 > 0; m_j is the prediction made at t_{k-j} (x0 for DPM-Solver++ and UniPC, eps for
// DEIS). The rows hold the published formulas expanded into weights on m_0, m_1, ..., so that
// x_t = x_coef x + sum_j c_j m_j is the published update up to the order of the operations.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include "deis/detail/multistep_coefficients.hpp"
#include "deis/multistep_options.hpp"
#include "deis/step_coefficients.hpp"

namespace deis::detail {

// The presets written in lambda = log(alpha/sigma) (dpmpp, uni_pc, deis), and UniPC.
inline bool is_lambda_preset(multistep_method m) { return is_preset(m) && m != multistep_method::euler; }
inline bool is_unipc(multistep_method m) {
    return m == multistep_method::unipc_bh1 || m == multistep_method::unipc_bh2;
}

// The published order p (points of the history) of step k of n, from the largest order p_max:
// the warm start min(k + 1, p_max) and the method's lower orders on the last steps (the last
// step order 1, the second-last at most 2): always for UniPC, when n < 10 for DPM-Solver++ (the
// official code) and when n < 15 for DEIS (diffusers). A DPM-Solver++ or UniPC step that ends at
// sigma = 0 is order 1, the only finite form there.
inline int preset_order(multistep_method m, int p_max, int k, int n, bool to_clean) {
    int p = std::min(k + 1, p_max);
    const bool lower_final = is_unipc(m) || (m == multistep_method::dpmpp && n < 10) ||
                             (m == multistep_method::deis_logrho && n < 15);
    if (lower_final) p = std::min(p, n - k);
    if (to_clean && m != multistep_method::deis_logrho) p = 1;
    return p;
}

// log(alpha/sigma) at every node: -inf at alpha = 0, +inf at sigma = 0.
inline std::vector<double> log_snr(const multistep_nodes& nv) {
    std::vector<double> lambda(nv.alpha.size());
    for (std::size_t k = 0; k < lambda.size(); ++k) lambda[k] = std::log(nv.alpha[k]) - std::log(nv.sigma[k]);
    return lambda;
}

// DPM-Solver++ (data prediction), p = 1, 2 (2M, midpoint form) or 3 (3M, with the published
// D2), from lambda at t and at the nodes k, k-1, k-2 (lam[0], lam[1], lam[2]).
inline void dpmpp_row(step_coefficients& row, int p, const double* lam, double lam_t, double alpha_t) {
    const double h = lam_t - lam[0];
    const double phi1 = std::expm1(-h);
    if (p == 1) {
        row.c[0] = -alpha_t * phi1;
    } else if (p == 2) {
        // - alpha phi1 m0 - alpha phi1 D1 / 2, D1 = (m0 - m1) / r0
        const double r0 = (lam[0] - lam[1]) / h;
        const double w = 0.5 * alpha_t * phi1 / r0;
        row.c[0] = -alpha_t * phi1 - w;
        row.c[1] = w;
    } else {
        // - alpha phi1 m0 + alpha phi2 D1 - alpha phi3 D2 with D1 = D1_0 + q (D1_0 - D1_1),
        // D2 = (D1_0 - D1_1) / (r0 + r1), q = r0 / (r0 + r1), D1_i = (m_i - m_{i+1}) / r_i
        const double r0 = (lam[0] - lam[1]) / h, r1 = (lam[1] - lam[2]) / h;
        const double phi2 = phi1 / h + 1.0, phi3 = phi2 / h - 0.5;
        const double q = r0 / (r0 + r1);
        // D1_0 - D1_1 = m0/r0 - (1/r0 + 1/r1) m1 + m2/r1
        const double d0 = 1.0 / r0, d1 = -(1.0 / r0 + 1.0 / r1), d2 = 1.0 / r1;
        const double a2 = alpha_t * phi2, a3 = alpha_t * phi3 / (r0 + r1);
        row.c[0] = -alpha_t * phi1 + a2 * (1.0 / r0 + q * d0) - a3 * d0;
        row.c[1] = a2 * (-1.0 / r0 + q * d1) - a3 * d1;
        row.c[2] = a2 * q * d2 - a3 * d2;
    }
}

// The solution of sum_j rk[j]^i rho[j] = b[i], i < m, over the m columns j with a finite rk
// (the nodes at lambda = -inf, alpha = 0, drop out: their D1 = (m_j - m0)/rk_j is 0, and their
// weight is the limit 0); rho[j] = 0 for the others. LU with partial pivoting.
inline std::array<double, max_nodes> unipc_solve(const double* rk, int n, const double* b) {
    std::array<double, max_nodes> rho{};
    std::array<int, max_nodes> cols{};
    int m = 0;
    for (int j = 0; j < n; ++j)
        if (std::isfinite(rk[j])) cols[std::size_t(m++)] = j;
    if (m == 0) return rho;
    Eigen::MatrixXd R(m, m);
    Eigen::VectorXd rhs(m);
    for (int i = 0; i < m; ++i) {
        rhs[i] = b[i];
        for (int j = 0; j < m; ++j) R(i, j) = std::pow(rk[cols[std::size_t(j)]], i);
    }
    const Eigen::VectorXd x = R.partialPivLu().solve(rhs);
    for (int j = 0; j < m; ++j) rho[std::size_t(cols[std::size_t(j)])] = x[j];
    return rho;
}

// UniPC (data prediction), p points: the predictor UniP-p into c, and with `corrector` the
// corrector UniC-p into d (d[0] on the prediction at the predicted point, d[1 + j] on m_j).
// B(h) = -h (bh1) or expm1(-h) (bh2), in the published sign convention hh = -h.
inline void unipc_row(step_coefficients& row, int p, bool bh2, bool corrector, const double* lam, double lam_t,
                      double alpha_t) {
    const double h = lam_t - lam[0];
    const double hh = -h;
    const double hphi1 = std::expm1(hh);
    row.c[0] = -alpha_t * hphi1;
    if (p == 1 && !corrector) return;
    const double B = bh2 ? std::expm1(hh) : hh;
    // rk[i] = (lambda_{k-1-i} - lambda_k) / h for the p - 1 old nodes, then 1
    std::array<double, max_nodes> rk{}, b{};
    for (int i = 0; i + 1 < p; ++i) rk[std::size_t(i)] = (lam[i + 1] - lam[0]) / h;
    rk[std::size_t(p - 1)] = 1.0;
    double phik = hphi1 / hh - 1.0, factorial = 1.0;
    for (int i = 1; i <= p; ++i) {
        b[std::size_t(i - 1)] = phik * factorial / B;
        factorial *= i + 1;
        phik = phik / hh - 1.0 / factorial;
    }
    // predictor: - alpha B sum_i rho_p[i] D1_i, D1_i = (m_{i+1} - m0) / rk[i]
    if (p >= 2) {
        std::array<double, max_nodes> rho{};
        if (p == 2)
            rho[0] = std::isfinite(rk[0]) ? 0.5 : 0.0;
        else
            rho = unipc_solve(rk.data(), p - 1, b.data());
        for (int i = 0; i + 1 < p; ++i) {
            const double w = std::isfinite(rk[std::size_t(i)]) ? alpha_t * B * rho[std::size_t(i)] / rk[std::size_t(i)]
                                                               : 0.0;
            row.c[0] += w;
            row.c[std::size_t(i + 1)] = -w;
        }
    }
    if (!corrector) return;
    // corrector: - alpha B (sum_i rho_c[i] D1_i + rho_c[p-1] (m_new - m0))
    std::array<double, max_nodes> rho{};
    if (p == 1)
        rho[0] = 0.5;
    else
        rho = unipc_solve(rk.data(), p, b.data());
    row.corrector_order = p;
    const double last = alpha_t * B * rho[std::size_t(p - 1)];
    row.d[0] = -last;
    row.d[1] = -alpha_t * hphi1 + last;
    for (int i = 0; i + 1 < p; ++i) {
        const double w =
            std::isfinite(rk[std::size_t(i)]) ? alpha_t * B * rho[std::size_t(i)] / rk[std::size_t(i)] : 0.0;
        row.d[1] += w;
        row.d[std::size_t(i + 2)] = -w;
    }
}

// An antiderivative in rho of the Lagrange basis polynomial in y = log rho that is 1 at y_j
// and 0 at the others (nodes `others`, m of them, m <= 2), times the basis' denominator
// prod (y_j - others): rho P(y) with P + P' = prod (y - others), so P = Q - Q' + Q''. Its
// limit at rho = 0 is 0.
inline double log_rho_primitive(double rho, const double* others, int m) {
    if (rho == 0.0) return 0.0;
    const double y = std::log(rho);
    if (m == 0) return rho;
    if (m == 1) return rho * (y - others[0] - 1.0);
    const double a = others[0], c = others[1];
    return rho * ((y - a) * (y - c) - (2.0 * y - a - c) + 2.0);
}

// diffusers' DEIS (noise prediction), p points: eps as the Lagrange polynomial in log rho
// through the nodes k, k-1, ..., integrated exactly over rho from rho_k to rho_t:
// c_j = alpha_t integral l_j(log rho) drho.
inline void deis_logrho_row(step_coefficients& row, int p, const double* rho, double rho_t, double alpha_t) {
    std::array<double, max_nodes> y{};
    for (int j = 0; j < p; ++j) y[std::size_t(j)] = std::log(rho[j]);
    for (int j = 0; j < p; ++j) {
        std::array<double, 2> others{};
        double den = 1.0;
        int m = 0;
        for (int i = 0; i < p; ++i)
            if (i != j) {
                others[std::size_t(m++)] = y[std::size_t(i)];
                den *= y[std::size_t(j)] - y[std::size_t(i)];
            }
        const double integral =
            p == 1 ? rho_t - rho[0]
                   : (log_rho_primitive(rho_t, others.data(), m) - log_rho_primitive(rho[0], others.data(), m)) / den;
        row.c[std::size_t(j)] = alpha_t * integral;
    }
}

// The weights of a lambda preset's step k of n (row.order set), with UniPC's corrector but on
// the last step.
inline void preset_row(step_coefficients& row, multistep_method m, int k, int n, const multistep_nodes& nv,
                       const std::vector<double>& lambda) {
    const auto ku = std::size_t(k);
    const int p = row.order + 1;
    std::array<double, max_nodes> lam{}, rho{};
    for (int j = 0; j < p; ++j) {
        lam[std::size_t(j)] = lambda[ku - std::size_t(j)];
        rho[std::size_t(j)] = nv.rho[ku - std::size_t(j)];
    }
    const double alpha_t = nv.alpha[ku + 1];
    if (m == multistep_method::dpmpp)
        dpmpp_row(row, p, lam.data(), lambda[ku + 1], alpha_t);
    else if (m == multistep_method::deis_logrho)
        deis_logrho_row(row, p, rho.data(), nv.rho[ku + 1], alpha_t);
    else
        unipc_row(row, p, m == multistep_method::unipc_bh2, k < n - 1, lam.data(), lambda[ku + 1], alpha_t);
}

}  // namespace deis::detail
