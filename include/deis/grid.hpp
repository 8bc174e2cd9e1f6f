// deis: time grids. A grid is a std::vector<double> of N + 1 times t_0 = t_max > t_1 > ... >
// t_N = t_end (the sampler goes from noise at t_max to data at t_end in N steps). The first
// and last entries are exactly the given t_max and t_end.
//
// Every function validates its arguments and the grid it makes against the schedule
// (see check_grid) and throws std::invalid_argument naming the bad argument.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "deis/detail/error.hpp"

namespace deis {

/// The kinds of grid make_grid knows.
enum class grid_kind {
    power_t,   ///< uniform in t^(1/k): k = 1 uniform, k = 2 quadratic (the DEIS default)
    log_rho,   ///< uniform in log rho (the log-SNR)
    power_rho  ///< uniform in rho^(1/k), mapped back by t(rho): k = 7 is the EDM/Karras grid
};

/// Which way a grid runs: from noise to data (sampling: t decreasing, rho decreasing) or from
/// data to noise (inversion: t and rho increasing).
enum class direction { sampling, inversion };

/// Validates a grid against a schedule and returns it: at least 2 points (N >= 1 steps),
/// every time finite and inside [s.t_min(), s.t_max()], strictly decreasing (increasing for
/// direction::inversion), and rho strictly monotone the same way. rho must be finite and > 0
/// at every point but the two ends: the noise end (the first point when sampling) may have
/// alpha = 0 (rho = +inf, pure noise, e.g. t = 1 of flow matching) and the data end may have
/// sigma = 0 (rho = 0, clean data). Which solvers can start or end there is theirs to say.
template <class Schedule>
std::vector<double> check_grid(const Schedule& s, std::vector<double> ts, direction dir = direction::sampling) {
    if (ts.size() < 2)
        detail::fail("grid", "size", int(ts.size()), "must be >= 2 (N >= 1 steps)");
    const bool down = dir == direction::sampling;
    const std::size_t noise_end = down ? 0 : ts.size() - 1, data_end = down ? ts.size() - 1 : 0;
    double prev_rho = 0.0;
    for (std::size_t i = 0; i < ts.size(); ++i) {
        const std::string name = "t[" + std::to_string(i) + "]";
        detail::require_finite("grid", name, ts[i]);
        if (!(ts[i] >= s.t_min() && ts[i] <= s.t_max()))
            detail::fail("grid", name, ts[i],
                         "must lie in the schedule's domain [" + detail::format_double(s.t_min()) + ", " +
                             detail::format_double(s.t_max()) + "]");
        if (i > 0 && !(down ? ts[i] < ts[i - 1] : ts[i] > ts[i - 1]))
            detail::fail("grid", name, ts[i],
                         std::string("must be ") + (down ? "smaller" : "greater") + " than t[" + std::to_string(i - 1) +
                             "] = " + detail::format_double(ts[i - 1]) +
                             (down ? " (grids run from t_max down to t_end)"
                                   : " (an inversion grid runs from data up to noise)"));
        const double r = s.rho(ts[i]);
        const bool pure_noise = i == noise_end && r == std::numeric_limits<double>::infinity();
        const bool clean_data = i == data_end && r == 0.0;
        if (!(pure_noise || clean_data || (std::isfinite(r) && r > 0.0)))
            detail::fail("grid", name, ts[i],
                         "has rho = " + detail::format_double(r) +
                             ", must be finite and > 0 (rho = inf is allowed at the noise end, 0 at the data end)");
        if (i > 0 && !(down ? r < prev_rho : r > prev_rho))
            detail::fail("grid", name, ts[i],
                         std::string("has rho not ") + (down ? "below" : "above") + " the rho of the time before it");
        prev_rho = r;
    }
    return ts;
}

namespace detail {

inline void check_grid_args(const char* where, int steps, double t_max, double t_end) {
    if (steps < 1) fail(where, "steps", steps, "must be >= 1");
    require_finite(where, "t_max", t_max);
    require_finite(where, "t_end", t_end);
    if (!(t_end < t_max))
        fail(where, "t_end", t_end, "must be smaller than t_max = " + format_double(t_max));
}

inline void check_power(const char* where, double k) {
    if (!(std::isfinite(k) && k > 0.0)) fail(where, "power", k, "must be finite and > 0");
}

// N + 1 points of (a^(1/k) + i/N (b^(1/k) - a^(1/k)))^k with the end points exactly a, b.
inline std::vector<double> power_points(double a, double b, int steps, double k) {
    std::vector<double> v(std::size_t(steps) + 1);
    const double ra = std::pow(a, 1.0 / k), rb = std::pow(b, 1.0 / k);
    for (int i = 0; i <= steps; ++i) v[std::size_t(i)] = std::pow(ra + double(i) / double(steps) * (rb - ra), k);
    v.front() = a;
    v.back() = b;
    return v;
}

}  // namespace detail

/// Power-of-t grid: t_i = (t_max^(1/k) + i/N (t_end^(1/k) - t_max^(1/k)))^k, N = steps.
/// k = 1 is uniform in t, k = 2 quadratic. Requires k > 0, 0 <= t_end < t_max.
template <class Schedule>
std::vector<double> power_t_grid(const Schedule& s, int steps, double t_max, double t_end, double power = 2.0) {
    detail::check_grid_args("power_t_grid", steps, t_max, t_end);
    detail::check_power("power_t_grid", power);
    if (!(t_end >= 0.0)) detail::fail("power_t_grid", "t_end", t_end, "must be >= 0");
    return check_grid(s, detail::power_points(t_max, t_end, steps, power));
}

/// Grid uniform in log rho between rho(t_max) and rho(t_end), mapped back by t(rho).
template <class Schedule>
std::vector<double> log_rho_grid(const Schedule& s, int steps, double t_max, double t_end) {
    detail::check_grid_args("log_rho_grid", steps, t_max, t_end);
    const double la = std::log(s.rho(t_max)), lb = std::log(s.rho(t_end));
    if (!(std::isfinite(la) && std::isfinite(lb)))
        detail::fail("log_rho_grid", "t_end", t_end, "must have a finite log rho (as must t_max)");
    std::vector<double> ts(std::size_t(steps) + 1);
    for (int i = 0; i <= steps; ++i)
        ts[std::size_t(i)] = s.t_from_rho(std::exp(la + double(i) / double(steps) * (lb - la)));
    ts.front() = t_max;
    ts.back() = t_end;
    return check_grid(s, std::move(ts));
}

/// Power-of-rho grid: rho_i = (rho_max^(1/k) + i/N (rho_end^(1/k) - rho_max^(1/k)))^k, mapped
/// back by t(rho). k = 7 is the grid of Karras et al. (EDM).
template <class Schedule>
std::vector<double> power_rho_grid(const Schedule& s, int steps, double t_max, double t_end, double power = 7.0) {
    detail::check_grid_args("power_rho_grid", steps, t_max, t_end);
    detail::check_power("power_rho_grid", power);
    const double ra = s.rho(t_max), rb = s.rho(t_end);
    if (!(std::isfinite(ra) && std::isfinite(rb) && rb >= 0.0))
        detail::fail("power_rho_grid", "t_end", t_end, "must have a finite rho >= 0 (t_max a finite rho)");
    std::vector<double> ts = detail::power_points(ra, rb, steps, power);
    for (auto& t : ts) t = s.t_from_rho(t);
    ts.front() = t_max;
    ts.back() = t_end;
    return check_grid(s, std::move(ts));
}

/// One entry point for the three kinds; `power` is used by power_t and power_rho only.
template <class Schedule>
std::vector<double> make_grid(const Schedule& s, grid_kind kind, int steps, double t_max, double t_end,
                              double power) {
    switch (kind) {
        case grid_kind::power_t: return power_t_grid(s, steps, t_max, t_end, power);
        case grid_kind::log_rho: return log_rho_grid(s, steps, t_max, t_end);
        case grid_kind::power_rho: return power_rho_grid(s, steps, t_max, t_end, power);
    }
    detail::fail("make_grid", "kind", int(kind), "is not a grid_kind");
}


// ---- Time shifts (flow matching) -------------------------------------------------------

/// The SD3 time shift t' = s t / (1 + (s - 1) t), s > 0 (s >= 1 moves steps towards noise).
/// It changes the grid, not the ODE; shift_time(0) = 0 and shift_time(1) = 1.
inline double shift_time(double t, double shift) { return shift * t / (1.0 + (shift - 1.0) * t); }

/// The inverse of shift_time: t = t' / (s - (s - 1) t').
inline double unshift_time(double t, double shift) { return t / (shift - (shift - 1.0) * t); }

/// Flux's dynamic shift s = e^mu, with mu interpolated linearly in the image's token count
/// (image_seq_len = (height / 16) * (width / 16) for Flux): mu = base_shift + (max_shift -
/// base_shift) (image_seq_len - base_seq_len) / (max_seq_len - base_seq_len). The defaults are
/// FLUX.1's (mu = 1.15 at 1024 x 1024). Not clamped, as diffusers does.
inline double flux_shift(double image_seq_len, double base_seq_len = 256.0, double max_seq_len = 4096.0,
                         double base_shift = 0.5, double max_shift = 1.15) {
    const double m = (max_shift - base_shift) / (max_seq_len - base_seq_len);
    return std::exp(base_shift + m * (image_seq_len - base_seq_len));
}

/// A grid of `kind` (make_grid) from t_max to t_end with every point time-shifted by `shift`,
/// keeping the two end points where they were asked: the base grid is made between
/// unshift_time(t_max) and unshift_time(t_end) and every point shifted (the end points are then
/// exactly t_max and t_end). shift = 1 is make_grid itself. Requires shift > 0 finite.
template <class Schedule>
std::vector<double> shifted_grid(const Schedule& s, grid_kind kind, int steps, double t_max, double t_end,
                                 double power, double shift) {
    detail::check_grid_args("shifted_grid", steps, t_max, t_end);
    if (!(std::isfinite(shift) && shift > 0.0)) detail::fail("shifted_grid", "shift", shift, "must be finite and > 0");
    if (shift == 1.0) return make_grid(s, kind, steps, t_max, t_end, power);
    std::vector<double> ts = make_grid(s, kind, steps, unshift_time(t_max, shift), unshift_time(t_end, shift), power);
    for (double& t : ts) t = shift_time(t, shift);
    ts.front() = t_max;
    ts.back() = t_end;
    return check_grid(s, std::move(ts));
}

// ---- Grids given as noise levels (sigma space) -----------------------------------------

/// A grid from noise levels sigma_0 > sigma_1 > ... > sigma_N >= 0 in the EDM sense, the noise
/// of x / alpha: sigma_EDM = sigma/alpha = rho (for the edm and ve schedules simply sigma; for a
/// VP model the sigmas of diffusers and k-diffusion, sqrt((1 - alphabar)/alphabar)). Each is
/// converted with the schedule, t_i = t_from_rho(sigma_i), and the grid validated (check_grid).
/// A first level above the schedule's largest rho by at most 1e-3 relative (published levels
/// are rounded: Align Your Steps' 14.615 against SD's 14.6146) becomes t_max().
template <class Schedule>
std::vector<double> sigma_grid(const Schedule& s, const std::vector<double>& sigmas) {
    if (sigmas.size() < 2) detail::fail("sigma_grid", "sigmas.size()", int(sigmas.size()), "must be >= 2");
    std::vector<double> ts(sigmas.size());
    const double rho_top = s.rho(s.t_max());
    for (std::size_t i = 0; i < sigmas.size(); ++i) {
        const std::string name = "sigmas[" + std::to_string(i) + "]";
        const double v = sigmas[i];
        if (!(v >= 0.0) || std::isnan(v)) detail::fail("sigma_grid", name, v, "must be >= 0");
        if (i == 0 && v > rho_top && v <= rho_top * (1.0 + 1e-3)) {
            ts[i] = s.t_max();
            continue;
        }
        if (v > rho_top)
            detail::fail("sigma_grid", name, v,
                         "is above the schedule's largest noise level rho(t_max) = " + detail::format_double(rho_top));
        ts[i] = s.t_from_rho(v);
    }
    return check_grid(s, std::move(ts));
}

/// Named noise-level schedules for sigma_grid.
enum class noise_levels {
    karras,       ///< rho^(1/7) uniform between sigma_max and sigma_min (Karras et al.)
    exponential,  ///< log-uniform between sigma_max and sigma_min
    ays_sd15,     ///< Align Your Steps, Stable Diffusion 1.5 (published for 10 steps)
    ays_sdxl      ///< Align Your Steps, SDXL (published for 10 steps)
};

/// The published 10-step Align Your Steps levels (Sabour et al. 2024): 11 noise levels from
/// 14.615 to 0.029.
inline const std::vector<double>& ays_levels(noise_levels which) {
    static const std::vector<double> sd15 = {14.615, 6.475, 3.861, 2.697, 1.886, 1.396,
                                             0.963,  0.652, 0.399, 0.152, 0.029};
    static const std::vector<double> sdxl = {14.615, 6.315, 3.771, 2.181, 1.342, 0.862,
                                             0.555,  0.380, 0.234, 0.113, 0.029};
    if (which == noise_levels::ays_sd15) return sd15;
    if (which == noise_levels::ays_sdxl) return sdxl;
    detail::fail("ays_levels", "which", int(which), "is not an Align Your Steps schedule");
}

/// N + 1 noise levels, largest first. Karras and exponential run from sigma_max down to
/// sigma_min (both > 0). Align Your Steps ignores sigma_max and sigma_min: its published levels
/// at N = 10, and for other N the authors' log-linear interpolation (log sigma interpolated
/// linearly, as a function of the position in [0, 1], from the 11 published points to N + 1).
inline std::vector<double> sigma_levels(noise_levels kind, int steps, double sigma_max = 0.0, double sigma_min = 0.0) {
    if (steps < 1) detail::fail("sigma_levels", "steps", steps, "must be >= 1");
    std::vector<double> out(std::size_t(steps) + 1);
    if (kind == noise_levels::karras || kind == noise_levels::exponential) {
        detail::require_finite("sigma_levels", "sigma_max", sigma_max);
        detail::require_finite("sigma_levels", "sigma_min", sigma_min);
        if (!(sigma_min > 0.0)) detail::fail("sigma_levels", "sigma_min", sigma_min, "must be > 0");
        if (!(sigma_max > sigma_min))
            detail::fail("sigma_levels", "sigma_max", sigma_max,
                         "must be greater than sigma_min = " + detail::format_double(sigma_min));
        if (kind == noise_levels::karras) return detail::power_points(sigma_max, sigma_min, steps, 7.0);
        const double a = std::log(sigma_max), b = std::log(sigma_min);
        for (int i = 0; i <= steps; ++i) out[std::size_t(i)] = std::exp(a + (b - a) * double(i) / double(steps));
        out.front() = sigma_max;
        out.back() = sigma_min;
        return out;
    }
    const std::vector<double>& p = ays_levels(kind);
    const int m = int(p.size()) - 1;  // 10 intervals
    for (int i = 0; i <= steps; ++i) {
        const double x = double(i) / double(steps) * double(m);  // position among the published points
        const int j = std::min(int(x), m - 1);
        const double w = x - double(j);
        out[std::size_t(i)] = std::exp(std::log(p[std::size_t(j)]) + w * (std::log(p[std::size_t(j + 1)]) -
                                                                          std::log(p[std::size_t(j)])));
    }
    out.front() = p.front();
    out.back() = p.back();
    return out;
}

}  // namespace deis
