// deis: the library's recommended multistep configuration.
#pragma once

#include <cmath>
#include <vector>

#include "deis/grid.hpp"
#include "deis/multistep.hpp"

namespace deis {

/// Mean step of a grid in log rho (the log-SNR up to a factor -2):
/// log(rho(grid[0]) / rho(grid[N])) / N. Validates the grid (check_grid).
template <class Schedule>
double mean_log_rho_step(const Schedule& schedule, const std::vector<double>& grid) {
    const std::vector<double> g = check_grid(schedule, grid);
    return std::log(schedule.rho(g.front()) / schedule.rho(g.back())) / double(g.size() - 1);
}

/// The largest mean log-rho step at which recommended_options still picks the cubic
/// predictor (see below).
inline constexpr double recommended_cubic_max_step = 0.75;

/// The recommended multistep configuration for a grid (the quadratic grid
/// power_t_grid(schedule, steps, t_max, t_end, 2.0) is the recommended one):
///
///   tAB-DEIS with data prediction and the exponential Adams-Moulton corrector (no extra
///   network call), exact Gauss-Legendre coefficients, with the predictor's order chosen
///   from the grid's mean step h in log rho:
///   - h > 0.75 (coarse grids; for the usual VP and VE schedules from t = 1 to 1e-3, fewer
///     than 13 steps): linear predictor (order 1) and quadratic corrector, order 3 overall;
///   - h <= 0.75: cubic predictor (order 3) and cubic corrector, order 4 overall.
///
/// Why: data prediction extrapolates x0, which stays bounded where eps does not, and is the
/// form that stays stable under guidance; the corrector gains one order at no cost. A
/// multistep predictor extrapolates over h in log-SNR, the variable in which the network's
/// prediction changes on a scale of about one unit; past h ~ 0.75 cubic extrapolation across
/// the steps where trajectories choose their mode overshoots and the linear one is more
/// accurate, below it the higher order wins. The measurements behind the threshold are in
/// README.md ("Recommended configuration").
template <class Schedule>
multistep_options recommended_options(const Schedule& schedule, const std::vector<double>& grid) {
    multistep_options o;
    o.method = multistep_method::tab;
    o.order = mean_log_rho_step(schedule, grid) > recommended_cubic_max_step ? 1 : 3;
    o.predict = prediction::data;
    o.corrector = true;
    return o;
}

}  // namespace deis
