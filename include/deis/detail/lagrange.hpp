// deis: integrals of Lagrange basis polynomials, by composite Gauss-Legendre quadrature.
#pragma once

#include <algorithm>
#include <array>
#include <boost/math/quadrature/gauss.hpp>
#include <cmath>

namespace deis::detail {

// Upper bound on the number of Lagrange nodes any solver uses (cubic extrapolation).
inline constexpr int max_nodes = 4;

// For nodes v[0..n-1] (distinct) and j < n, returns I_j = integral from s0 to s1 of
// l_j(var(s)) ds, where l_j(tau) = prod_{m != j} (tau - v[m]) / (v[j] - v[m]).
//
// var maps the integration variable to the variable the polynomial lives in (t(rho) for
// tAB-DEIS, the identity for rhoAB-DEIS). The interval is cut into pieces whose end points
// differ by at most a factor 2 (when s0, s1 > 0), and each piece gets a 30-point
// Gauss-Legendre rule. The integrands are analytic with singularities (of t(rho), at
// rho = +-i for VP schedules) at a distance comparable to the piece's size, so each piece
// converges geometrically to round-off; polynomials of degree <= 59 are integrated exactly.
template <class Var>
std::array<double, max_nodes> lagrange_integrals(const double* v, int n, double s0, double s1, Var&& var) {
    std::array<double, max_nodes> out{};
    if (n == 1) {  // l_0 = 1: exact
        out[0] = s1 - s0;
        return out;
    }
    std::array<double, max_nodes> inv_den{};
    for (int j = 0; j < n; ++j) {
        double den = 1.0;
        for (int m = 0; m < n; ++m)
            if (m != j) den *= v[j] - v[m];
        inv_den[std::size_t(j)] = 1.0 / den;
    }
    auto basis_at = [&](double s, double w) {
        const double tau = var(s);
        std::array<double, max_nodes> d{};
        for (int m = 0; m < n; ++m) d[std::size_t(m)] = tau - v[m];
        for (int j = 0; j < n; ++j) {
            double p = inv_den[std::size_t(j)];
            for (int m = 0; m < n; ++m)
                if (m != j) p *= d[std::size_t(m)];
            out[std::size_t(j)] += w * p;
        }
    };

    using rule = boost::math::quadrature::gauss<double, 30>;
    const auto& x = rule::abscissa();
    const auto& w = rule::weights();

    int pieces = 1;
    const double lo = std::fmin(s0, s1), hi = std::fmax(s0, s1);
    if (lo > 0.0) pieces = std::max(1, int(std::ceil(std::log2(hi / lo) - 1e-12)));
    const double ratio = lo > 0.0 ? std::pow(s1 / s0, 1.0 / pieces) : 1.0;
    double a = s0;
    for (int p = 0; p < pieces; ++p) {
        // geometric cut points when both ends are positive, else one piece
        const double b = (p == pieces - 1) ? s1 : a * ratio;
        const double half = 0.5 * (b - a), mid = 0.5 * (a + b);
        for (std::size_t i = 0; i < x.size(); ++i) {
            if (x[i] == 0.0) {
                basis_at(mid, half * w[i]);
            } else {
                basis_at(mid - half * x[i], half * w[i]);
                basis_at(mid + half * x[i], half * w[i]);
            }
        }
        a = b;
    }
    return out;
}

}  // namespace deis::detail
