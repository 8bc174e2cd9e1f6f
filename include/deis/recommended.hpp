// deis: the library's recommended configuration: a grid and multistep options per schedule
// family, chosen from the schedule and the step count only (never from the data).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/grid.hpp"
#include "deis/multistep.hpp"

namespace deis {

/// The schedule families the recommendation distinguishes, read from the schedule's values:
enum class schedule_family {
    vp,          ///< alpha(t_max) > 0 and alpha(t_min) != alpha(t_max) (vp_linear, vp_cosine, vp_discrete)
    sigma_space, ///< alpha = 1 at both ends of the domain (ve, edm): x = x0 + sigma eps
    flow         ///< alpha(t_max) = 0: the domain reaches pure noise (flow_matching)
};

/// The family of a schedule (see schedule_family). O(1), no allocation.
template <class Schedule>
schedule_family family_of(const Schedule& s) {
    const double a_hi = s.alpha(s.t_max()), a_lo = s.alpha(s.t_min());
    if (a_hi == 0.0) return schedule_family::flow;
    if (a_hi == 1.0 && a_lo == 1.0) return schedule_family::sigma_space;
    return schedule_family::vp;
}

/// Mean step of a grid in log rho (the log-SNR up to a factor -2):
/// log(rho(grid[i0]) / rho(grid[i1])) / (i1 - i0), with i0 = 0 and i1 = N, except that a first
/// point at pure noise (rho = inf) and a last point on clean data (rho = 0) are left out of the
/// mean (i0 = 1, i1 = N - 1): their log rho is infinite. Returns +inf when no finite step is
/// left (e.g. N = 1 from pure noise). Validates the grid (check_grid; throws
/// std::invalid_argument).
template <class Schedule>
double mean_log_rho_step(const Schedule& schedule, const std::vector<double>& grid) {
    const std::vector<double> g = check_grid(schedule, grid);
    std::size_t i0 = 0, i1 = g.size() - 1;
    if (!std::isfinite(schedule.rho(g[i0]))) ++i0;
    if (schedule.rho(g[i1]) == 0.0 && i1 > 0) --i1;
    if (i1 <= i0) return std::numeric_limits<double>::infinity();
    return std::log(schedule.rho(g[i0]) / schedule.rho(g[i1])) / double(i1 - i0);
}

/// Thresholds of the rule below, in mean log-rho step h (see recommended_options); VP and sigma
/// space share them.
inline constexpr double recommended_cubic_max_step = 0.75;  ///< VP: cubic predictor at h <= this
inline constexpr double recommended_rhoab_min_step = 1.0;   ///< VP: rhoAB on the cubic grid above this
inline constexpr double recommended_rhoab2_min_step = 1.3;  ///< VP: rhoAB order 2 above this
inline constexpr double recommended_flow_cubic_max_step = 0.7;  ///< flow: cubic predictor at h <= this
inline constexpr double recommended_sigma_karras_min_step = 0.65;  ///< VE/EDM: tAB2 on the Karras grid above this
inline constexpr double recommended_sigma_karras_max_step = 0.9;   ///< VE/EDM: ... up to this
inline constexpr double recommended_power_ramp_min_step = 0.5;   ///< VP, VE/EDM: grid power above 2 for h above this
inline constexpr double recommended_power_ramp_max_step = 0.65;  ///< ... up to this (power 2.6 there)

namespace detail {
/// VE/EDM: the band of h where the rule is tAB2 with noise prediction on the Karras grid.
inline bool in_sigma_karras_band(double h) {
    return h > recommended_sigma_karras_min_step && h <= recommended_sigma_karras_max_step;
}
/// VP and VE/EDM outside the Karras band: the power of the grid (in t for VP, in the VP clock
/// for sigma space) for a mean log-rho step h: 3 for h > 1, 2 + 4 (h - 0.5) for 0.5 < h <= 0.65
/// (2 to 2.6), else 2.
inline double recommended_power(double h) {
    if (h > recommended_rhoab_min_step) return 3.0;
    if (h > recommended_power_ramp_min_step && h <= recommended_power_ramp_max_step)
        return 2.0 + 4.0 * (h - recommended_power_ramp_min_step);
    return 2.0;
}
}  // namespace detail

/// The recommended multistep configuration for a grid, from the schedule's family
/// (family_of) and the grid's mean log-rho step h (mean_log_rho_step), with exact coefficients:
///
/// - VP (x = alpha x0 + sigma eps, alpha < 1): data prediction and the exponential
///   Adams-Moulton corrector (no extra network call), the predictor chosen by h:
///   h > 1.3: rhoAB order 2; 1.0 < h <= 1.3: rhoAB order 1; 0.75 < h <= 1.0: tAB order 1;
///   h <= 0.75: tAB order 3. From t = 1 to 1e-3 on the usual schedules (log-rho range about
///   9.6) that is rhoAB2 up to 7 steps, rhoAB1 at 8-9, tAB1 at 10-12, tAB3 from 13.
/// - sigma space (VE, EDM: alpha = 1): the same rule, tAB on the VP-linear clock
///   (tab_clock::vp_linear), except for 0.65 < h <= 0.9: tAB order 2 with noise prediction and
///   no corrector (on the Karras grid, see recommended_grid). The data-prediction integrator
///   sees the schedule only through rho and the polynomial's variable, so outside that band
///   this is the VP rule applied to the VP problem with the same rho (x scaled by alpha). From
///   sigma 50 to 0.01 (log-rho range 8.5): rhoAB2 up to 6 steps, rhoAB1 at 7-8, tAB1 at 9,
///   tAB2 (noise, Karras) at 10-13, tAB3 from 14.
/// - flow matching (the run starts at pure noise, alpha = 0): data prediction (the only form
///   that starts there) with tAB; h > 0.7: order 1 without corrector, h <= 0.7: order 3 with
///   the corrector. h leaves out the first step from pure noise (see mean_log_rho_step).
///
/// Why: a multistep predictor extrapolates the network's prediction over h in log-SNR, the
/// variable in which it changes on a scale of about one unit; where steps are large
/// (h above about 1) a low-order extrapolation is the more accurate one, and on VP the
/// polynomial in rho (rhoAB) is better there than the one in t. The corrector gains one order at
/// no cost where steps are small. The measurements behind the thresholds are in docs/recommended.md
/// ("Recommended configuration"). The grid that goes with it is recommended_grid.
///
/// Throws std::invalid_argument for a grid that check_grid rejects. O(N), allocates a copy of
/// the grid. Thread-safe.
template <class Schedule>
multistep_options recommended_options(const Schedule& schedule, const std::vector<double>& grid) {
    const double h = mean_log_rho_step(schedule, grid);
    multistep_options o;
    o.method = multistep_method::tab;
    const schedule_family family = family_of(schedule);
    switch (family) {
        case schedule_family::vp:
        case schedule_family::sigma_space:
            if (family == schedule_family::sigma_space && detail::in_sigma_karras_band(h)) {
                o.predict = prediction::noise;
                o.order = 2;
                break;
            }
            o.predict = prediction::data;
            o.corrector = true;
            if (h > recommended_rhoab_min_step) {
                o.method = multistep_method::rhoab;
                o.order = h > recommended_rhoab2_min_step ? 2 : 1;
            } else {
                o.order = h > recommended_cubic_max_step ? 1 : 3;
                if (family == schedule_family::sigma_space) o.clock = tab_clock::vp_linear;
            }
            break;
        case schedule_family::flow:
            o.predict = prediction::data;
            o.corrector = h <= recommended_flow_cubic_max_step;
            o.order = o.corrector ? 3 : 1;
            break;
    }
    return o;
}

namespace detail {
// `steps` steps between t_max and t_end equally spaced in tau^(1/power), tau the time of
// vp_linear(0.1, 20) at the same rho (tab_clock::vp_linear), mapped back by t_from_rho; the
// ends are exactly t_max and t_end. Not checked.
template <class Schedule>
std::vector<double> vp_clock_power_points(const Schedule& schedule, double t_max, double t_end, int steps, double power) {
    const vp_linear clock = vp_clock();
    std::vector<double> g =
        power_points(clock.t_from_rho(schedule.rho(t_max)), clock.t_from_rho(schedule.rho(t_end)), steps, power);
    for (double& t : g) t = schedule.t_from_rho(clock.rho(t));
    g.front() = t_max;  // whatever the round trip through rho gives
    g.back() = t_end;
    return g;
}
}  // namespace detail

/// The recommended grid of `steps` steps between t_max and t_end, per family (with
/// h = log(rho(t_max)/rho(t_end))/steps, the first step from pure noise and a last step to
/// clean data left out as in mean_log_rho_step):
/// - VP: power_t_grid with power 3 when h > 1.0 (coarse grids: a long first step where the data
///   prediction is still close to the data mean, more steps near the data), 2 + 4 (h - 0.5)
///   for 0.5 < h <= 0.65 (2 to 2.6: 15-19 steps from t = 1 to 1e-3), else 2 (quadratic);
/// - sigma space (VE, EDM): the VP grid on the VP-linear clock: the power as above, in the
///   time tau(rho) of vp_linear(0.1, 20) (see tab_clock::vp_linear) between tau(rho(t_max)) and
///   tau(rho(t_end)), mapped back to the schedule's t by t_from_rho; an end at sigma = 0 (EDM's
///   t = 0) gets this grid to sigma = 0.002 (the EDM paper's sigma_min) in steps - 1 steps
///   and a last step to 0. For 0.65 < h <= 0.9 the Karras grid (power_rho_grid, power 7)
///   instead, over the same range (to sigma = 0.002 and a last step to 0 for such an end);
/// - flow: power_t_grid with power 2 when the quadratic grid's h is above 0.7, else power 1.5.
/// Requires steps >= 1 and a range that check_grid accepts; throws std::invalid_argument.
/// O(steps), allocates the grid. Thread-safe.
template <class Schedule>
std::vector<double> recommended_grid(const Schedule& schedule, int steps, double t_max, double t_end) {
    detail::check_grid_args("recommended_grid", steps, t_max, t_end);
    switch (family_of(schedule)) {
        case schedule_family::vp: {
            std::vector<double> q = power_t_grid(schedule, steps, t_max, t_end, 2.0);
            const double power = detail::recommended_power(mean_log_rho_step(schedule, q));
            return power == 2.0 ? q : power_t_grid(schedule, steps, t_max, t_end, power);
        }
        case schedule_family::sigma_space: {
            // the VP grid in the VP-linear clock; an end at sigma = 0 gets it down to the EDM
            // paper's sigma_min = 0.002 and one step to 0
            const bool to_zero = schedule.rho(t_end) == 0.0;
            const int n = to_zero ? steps - 1 : steps;
            if (n < 1) return check_grid(schedule, {t_max, t_end});
            const double lo = to_zero ? schedule.t_from_rho(0.002) : t_end;
            const double h = std::log(schedule.rho(t_max) / schedule.rho(lo)) / double(n);
            std::vector<double> g;
            if (detail::in_sigma_karras_band(h)) {
                g = power_rho_grid(schedule, n, t_max, lo, 7.0);
            } else {
                g = detail::vp_clock_power_points(schedule, t_max, lo, n, detail::recommended_power(h));
            }
            g.front() = t_max;
            g.back() = lo;
            if (to_zero) g.push_back(t_end);
            return check_grid(schedule, std::move(g));
        }
        case schedule_family::flow: {
            const std::vector<double> q = power_t_grid(schedule, steps, t_max, t_end, 2.0);
            if (mean_log_rho_step(schedule, q) > recommended_flow_cubic_max_step) return q;
            return power_t_grid(schedule, steps, t_max, t_end, 1.5);
        }
    }
    detail::fail("recommended_grid", "schedule", "?", "has no known family");
}

/// recommended_grid between the family's usual ends: VP from t_max() to 1e-3 (or t_min() if
/// larger), sigma space from t_max() to t_min() (VE: sigma_min; EDM: the level 0.002 of the
/// EDM paper when t_min() has sigma = 0), flow from t_max() = 1 (pure noise) to 1e-3.
template <class Schedule>
std::vector<double> recommended_grid(const Schedule& schedule, int steps) {
    const double t_max = schedule.t_max();
    switch (family_of(schedule)) {
        case schedule_family::vp:
        case schedule_family::flow:
            return recommended_grid(schedule, steps, t_max, std::max(1e-3, schedule.t_min()));
        case schedule_family::sigma_space: {
            const double lo = schedule.t_min();
            return recommended_grid(schedule, steps, t_max, schedule.rho(lo) > 0.0 ? lo : schedule.t_from_rho(0.002));
        }
    }
    detail::fail("recommended_grid", "schedule", "?", "has no known family");
}

}  // namespace deis
