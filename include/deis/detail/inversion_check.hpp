// deis: the Gaussian probe of an inverting solver. For data N(mu, s^2) (each coordinate) the
// probability-flow ODE is affine, x(t) - alpha(t) mu = (x(t0) - alpha(t0) mu) sd(t) / sd(t0)
// with sd(t) = sqrt(alpha(t)^2 s^2 + sigma(t)^2), and eps = sigma (x - alpha mu) / sd^2,
// x0 = mu + alpha s^2 (x - alpha mu) / sd^2 are exact. A solver run on a row of such
// problems, s log-spaced over the grid's finite rho > 0, measures how far its table misses
// the exact map: explicit extrapolation from the small steps near the data to the large ones
// near the noise can amplify without bound, which sampling (contracting) never shows.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "deis/model_output.hpp"
#include "deis/state.hpp"

namespace deis::detail {

/// What multistep_solver throws for an unstable inversion (an std::invalid_argument).
struct unstable_inversion : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

/// What the probe found for an inverting multistep solver (zeros when it was not probed).
struct inversion_probe {
    double error = 0.0;       ///< the solver's largest miss, in standard deviations
    double s = 0.0;           ///< the standard deviation of the data where it occurs
    double ddim_error = 0.0;  ///< DDIM's largest miss on the same grid
};

/// Reads a multistep_solver's inversion_probe (defined after multistep_solver).
struct inversion_access;

/// The largest error of `solver` (its model output eps or x0) on its grid over the Gaussian
/// problems above, in units of the exact end's standard deviation sqrt(alpha^2 s^2 +
/// sigma^2), and the s where it occurs. Two runs per s: mean 0 from one standard deviation
/// (x(t) is that standard deviation), and mean 1 from its mean (x(t) = alpha(t)).
template <class Solver, class Schedule>
std::pair<double, double> gaussian_probe(const Solver& solver, const Schedule& sch) {
    const std::vector<double>& grid = solver.grid();
    const model_output output = solver.options().output;
    const double inf = std::numeric_limits<double>::infinity();
    double lo = inf, hi = 0.0;
    for (double t : grid) {
        const double r = sch.sigma(t) / sch.alpha(t);
        if (std::isfinite(r) && r > 0.0) lo = std::min(lo, r), hi = std::max(hi, r);
    }
    if (!(lo <= hi)) return {0.0, std::numeric_limits<double>::quiet_NaN()};
    const double decades = std::log10(hi / lo);
    const int m = 2 + int(std::ceil(8.0 * decades));  // 8 per decade, both ends
    std::vector<double> s(static_cast<std::size_t>(m));
    for (int j = 0; j < m; ++j) s[std::size_t(j)] = lo * std::pow(10.0, decades * j / (m - 1));
    // column 2j: mean 0, column 2j + 1: mean 1, both of standard deviation s[j]
    auto net = [&](const state<double>& x, double t, state<double>& out) {
        const double a = sch.alpha(t), sg = sch.sigma(t);
        out.resize(1, x.cols());
        for (Eigen::Index c = 0; c < x.cols(); ++c) {
            const double sj = s[std::size_t(c / 2)], mu = double(c % 2), v = a * a * sj * sj + sg * sg;
            const double d = x(0, c) - a * mu;
            out(0, c) = output == model_output::x0 ? mu + a * sj * sj * d / v : sg * d / v;
        }
    };
    const double a0 = sch.alpha(grid.front()), s0 = sch.sigma(grid.front());
    const double a1 = sch.alpha(grid.back()), s1 = sch.sigma(grid.back());
    auto sd = [](double a, double sg, double sj) { return std::sqrt(a * a * sj * sj + sg * sg); };
    state<double> x(1, 2 * m);
    for (int j = 0; j < m; ++j) x(0, 2 * j) = sd(a0, s0, s[std::size_t(j)]), x(0, 2 * j + 1) = a0;
    if (!solver.sample(net, x).ok()) return {inf, s.front()};
    std::pair<double, double> worst{0.0, s.front()};
    for (int j = 0; j < m; ++j) {
        const double end = sd(a1, s1, s[std::size_t(j)]);
        for (int c : {2 * j, 2 * j + 1}) {
            const double exact = c % 2 ? a1 : end;
            const double e = std::abs(x(0, c) - exact) / end;
            if (!(e <= worst.first)) worst = {e, s[std::size_t(j)]};  // NaN counts as worst
        }
    }
    return worst;
}

}  // namespace deis::detail
