// deis: integrals of Lagrange basis polynomials, by composite Gauss-Legendre quadrature.
#pragma once

#include <algorithm>
#include <array>
#include <boost/math/quadrature/gauss.hpp>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

namespace deis::detail {

// Upper bound on the number of Lagrange nodes any solver uses (cubic extrapolation).
inline constexpr int max_nodes = 4;

// For nodes v[0..n-1] (distinct) and j < n, returns I_j = integral from s0 to s1 of
// l_j(var(s)) ds, where l_j(tau) = prod_{m != j} (tau - v[m]) / (v[j] - v[m]).
//
// var maps the integration variable (rho, or 1/rho with data prediction) to the variable
// the polynomial lives in (t for tAB-DEIS, rho for rhoAB-DEIS). The interval is cut into pieces whose end points
// differ by at most a factor 2 (when s0, s1 > 0), and each piece gets a 30-point
// Gauss-Legendre rule. The integrands are analytic with singularities (of t(rho), at
// rho = +-i for VP schedules) at a distance comparable to the piece's size, so each piece
// converges geometrically to round-off; polynomials of degree <= 59 are integrated exactly.
//
// `cuts` (sorted ascending, may be empty) are values of the integration variable where var
// is not smooth (the table entries of a discrete schedule): the interval is split there
// first, so that every Gauss-Legendre piece sees a smooth integrand.
//
// `weight` (optional) multiplies the integrand: I_j = integral of weight(s) l_j(var(s)) ds
// (the stochastic solvers' exponential weight, a polynomial in u). s0 and s1 must be finite.
struct unit_weight {
    constexpr double operator()(double) const { return 1.0; }
};

template <class Var, class Weight = unit_weight>
std::array<double, max_nodes> lagrange_integrals(const double* v, int n, double s0, double s1, Var&& var,
                                                 const std::vector<double>& cuts = {}, Weight&& weight = {}) {
    std::array<double, max_nodes> out{};
    if (n == 1 && std::is_same_v<std::decay_t<Weight>, unit_weight>) {  // l_0 = 1: exact
        out[0] = s1 - s0;
        return out;
    }
    // Accumulated in long double: a step of a discrete schedule is cut into many pieces, and
    // the sum over them should not add their rounding errors.
    std::array<long double, max_nodes> acc{};
    std::array<double, max_nodes> inv_den{};
    for (int j = 0; j < n; ++j) {
        double den = 1.0;
        for (int m = 0; m < n; ++m)
            if (m != j) den *= v[j] - v[m];
        inv_den[std::size_t(j)] = 1.0 / den;
    }
    auto basis_at = [&](double s, double w) {
        w *= weight(s);
        const double tau = var(s);
        std::array<double, max_nodes> d{};
        for (int m = 0; m < n; ++m) d[std::size_t(m)] = tau - v[m];
        for (int j = 0; j < n; ++j) {
            double p = inv_den[std::size_t(j)];
            for (int m = 0; m < n; ++m)
                if (m != j) p *= d[std::size_t(m)];
            acc[std::size_t(j)] += static_cast<long double>(w * p);
        }
    };

    using rule = boost::math::quadrature::gauss<double, 30>;
    const auto& x = rule::abscissa();
    const auto& w = rule::weights();

    // one smooth stretch [a, b]: geometric cut points when both ends are positive
    auto stretch = [&](double a, double b) {
        int pieces = 1;
        const double lo = std::fmin(a, b), hi = std::fmax(a, b);
        if (lo > 0.0) pieces = std::max(1, int(std::ceil(std::log2(hi / lo) - 1e-12)));
        const double ratio = lo > 0.0 ? std::pow(b / a, 1.0 / pieces) : 1.0;
        for (int p = 0; p < pieces; ++p) {
            const double e = (p == pieces - 1) ? b : a * ratio;
            const double half = 0.5 * (e - a), mid = 0.5 * (a + e);
            for (std::size_t i = 0; i < x.size(); ++i) {
                if (x[i] == 0.0) {
                    basis_at(mid, half * w[i]);
                } else {
                    basis_at(mid - half * x[i], half * w[i]);
                    basis_at(mid + half * x[i], half * w[i]);
                }
            }
            a = e;
        }
    };

    // the cuts strictly inside, in the direction from s0 to s1
    const double lo = std::fmin(s0, s1), hi = std::fmax(s0, s1);
    auto first = std::upper_bound(cuts.begin(), cuts.end(), lo);
    auto last = std::lower_bound(first, cuts.end(), hi);
    double a = s0;
    if (s0 < s1) {
        for (auto it = first; it != last; ++it) {
            stretch(a, *it);
            a = *it;
        }
    } else {
        for (auto it = last; it != first; --it) {
            stretch(a, *(it - 1));
            a = *(it - 1);
        }
    }
    stretch(a, s1);
    for (int j = 0; j < n; ++j) out[std::size_t(j)] = static_cast<double>(acc[std::size_t(j)]);
    return out;
}

}  // namespace deis::detail
