// deis: the checks of a built coefficient table. A solver is never built with coefficients
// that make its result meaningless: every weight is finite, and neither a step's weights nor
// the form of the update amplify errors by more than max_amplification.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "deis/detail/error.hpp"

namespace deis::detail {

/// The largest factor by which a step may amplify the relative rounding errors of x and of
/// the network outputs: 1e8 leaves at least 8 correct digits of a double.
inline constexpr double max_amplification = 1e8;

inline std::string step_name(int step, double t_from, double t_to) {
    return "step " + std::to_string(step) + " (t = " + format_double(t_from) + " -> " + format_double(t_to) + ")";
}

/// Refuses weights w[0..n) of one step that are not finite, or whose absolute sum exceeds
/// max_amplification times their sum. The weights of an extrapolation sum to its plain value
/// (the DDIM coefficient: the Lagrange basis sums to 1); their growth beyond it multiplies the
/// errors of the network outputs, and comes from nodes much closer together than the step
/// is long.
inline void check_weights(const char* where, int step, double t_from, double t_to, const char* what,
                          const double* w, int n) {
    double sum = 0.0, abs_sum = 0.0;
    for (int j = 0; j < n; ++j) {
        if (!std::isfinite(w[j]))
            fail(where, step_name(step, t_from, t_to) + ": " + what + "[" + std::to_string(j) + "]", w[j],
                 "is not finite: the grid's steps are too short or too uneven to compute it");
        sum += w[j];
        abs_sum += std::fabs(w[j]);
    }
    if (abs_sum > max_amplification * std::fabs(sum))
        fail(where, step_name(step, t_from, t_to) + ": " + what + " weights", format_double(abs_sum),
             "(sum of magnitudes) exceed " + format_double(max_amplification) + " times their sum " +
                 format_double(sum) +
                 ": the grid's points are too close together for this order (make the steps more even, or "
                 "lower the order)");
}

/// Refuses the noise-prediction form, x_to = (alpha_to/alpha_from) x_from + ..., on a grid
/// along which alpha grows by more than max_amplification (from any point to a later one,
/// alpha[k] at grid[k]). That form scales x by the growth of alpha and relies on the network's
/// outputs to cancel what it scaled; beyond it the errors of an extrapolated output are
/// amplified past any accuracy (a VP-linear schedule with beta_max of a few hundred). The
/// data-prediction form, x_to = (sigma_to/sigma_from) x_from + ..., never scales x up.
inline void check_noise_form(const char* where, const std::vector<double>& grid, const std::vector<double>& alpha) {
    std::size_t low = 0;  // the point of smallest alpha so far
    for (std::size_t k = 1; k < alpha.size(); ++k) {
        if (alpha[k] < alpha[low]) low = k;
        const double growth = alpha[k] / alpha[low];
        if (!(growth <= max_amplification))
            fail(where, "alpha", format_double(alpha[low]) + " at t = " + format_double(grid[low]) + " -> " +
                                     format_double(alpha[k]) + " at t = " + format_double(grid[k]),
                 "grows by " + format_double(growth) + " > " + format_double(max_amplification) +
                     " along the grid: the noise-prediction form would amplify the errors of the network "
                     "outputs by as much; use data prediction (prediction::data), or start the grid where "
                     "alpha is larger");
    }
}

}  // namespace deis::detail
