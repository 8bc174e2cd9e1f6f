// deis: the timesteps of diffusers' schedulers (SD 1.5, SD 2.1, SDXL, SD3, Flux and their
// fine-tunes): diffusers' timestep lists, the grids made of them, and a network adaptor that
// hands a network the training timestep it was trained on.
//
// Discrete timesteps. A discrete-timestep network (DDPM, SD 1.5, SDXL) was trained on the
// integer timesteps tau = 0..n-1 of a table alphas_cumprod[0..n-1]. deis::vp_discrete puts
// entry tau at the continuous time t = (tau + 1)/n (so t = 0 is clean data, sigma = 0, and
// t = 1 the last entry); the network called at time t must be given tau = t n - 1.
// timestep_network does that conversion (rounded to the nearest integer, or not), so a
// network written for diffusers' timesteps runs under every solver of the library.
//
// Flow-matching models (SD3, Flux) use deis::flow_matching with t = sigma in [0, 1]; their
// network is given the timestep n t (n = num_train_timesteps = 1000), not rounded.
//
// The facts of diffusers' behaviour reproduced here, and the test tables, are in
// tests/data/diffusers/README.md. Rounding is numpy's: half to even (std::nearbyint in the
// default rounding mode), and integer casts truncate. Everything here is thread-safe in the
// usual sense: const members and free functions may be called from several threads at once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/grid.hpp"
#include "deis/schedule.hpp"

namespace deis {

// ---- Timestep spacings ------------------------------------------------------------------

/// diffusers' `timestep_spacing`: how N inference timesteps are chosen among the n training
/// ones.
enum class timestep_spacing {
    linspace,  ///< evenly spaced from n - 1 down to 0, rounded (not rounded in the euler family)
    leading,   ///< i (n div N) + steps_offset, i = N-1..0: never reaches n - 1 unless N divides n
    trailing   ///< round(n - i n/N) - 1, i = 0..N-1: starts at n - 1 for every N
};

/// Which of diffusers' two formulas a scheduler class uses for its timesteps.
enum class timestep_family {
    ddim,      ///< N points (DDIM, PNDM's base list, DDPM, DDIMInverse), integers
    euler,     ///< as ddim, but linspace is not rounded; float32 values (Euler, LMS, Heun)
    multistep  ///< N + 1 points, the last (0) dropped (DPMSolverMultistep, DEIS, UniPC), integers
};

/// Where a discrete-timestep run ends after its last timestep (diffusers' `final_sigmas_type`,
/// and `set_alpha_to_one` of DDIM/PNDM).
enum class final_sigma {
    zero,      ///< at t = 0, sigma = 0: clean data ("zero", set_alpha_to_one = true)
    sigma_min  ///< at tau = 0, t = 1/n, the table's smallest noise ("sigma_min", set_alpha_to_one = false)
};

namespace detail {

// numpy's linspace(a, b, n): element i = i step + a, the last set to b.
inline std::vector<double> np_linspace(double a, double b, int n) {
    std::vector<double> v(std::size_t(std::max(n, 0)));
    if (n == 1) v[0] = a;
    if (n < 2) return v;
    const double step = (b - a) / double(n - 1);
    for (int i = 0; i < n; ++i) v[std::size_t(i)] = double(i) * step + a;
    v.back() = b;
    return v;
}

// numpy's arange(start, stop, step) with a float step: ceil((stop - start)/step) elements,
// element i = start + i d with d = (start + step) - start.
inline std::vector<double> np_arange(double start, double stop, double step) {
    const double len = std::ceil((stop - start) / step);
    std::vector<double> v;
    if (!(len > 0.0)) return v;
    v.resize(std::size_t(len));
    const double d = (start + step) - start;
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = start + double(i) * d;
    return v;
}

inline const char* to_string(timestep_spacing s) {
    switch (s) {
        case timestep_spacing::linspace: return "linspace";
        case timestep_spacing::leading: return "leading";
        case timestep_spacing::trailing: return "trailing";
    }
    return "unknown";
}

}  // namespace detail

/// The timesteps diffusers' `set_timesteps(steps)` lists, in the order a pipeline runs them
/// (descending), for n = train_steps training timesteps: exactly diffusers' values,
/// including its flaws (for compatibility tests: duplicates of the multistep family at
/// steps = n, timestep n with leading and steps_offset 1 at steps = n, the trailing lists
/// that end with an extra -1 for some N, e.g. N = 61). The euler family's values are the
/// float32 values diffusers stores, as doubles. For a grid to sample with use
/// discrete_grid, which refuses or trims those.
/// Requires 1 <= steps (<= train_steps for the ddim and euler families, as diffusers),
/// train_steps >= 2, steps_offset >= 0; throws std::invalid_argument naming the argument.
/// O(steps) time and memory.
inline std::vector<double> diffusers_timesteps(timestep_spacing spacing, timestep_family family, int steps,
                                               int train_steps = 1000, int steps_offset = 0) {
    const char* where = "diffusers_timesteps";
    if (train_steps < 2) detail::fail(where, "train_steps", train_steps, "must be >= 2");
    if (steps < 1) detail::fail(where, "steps", steps, "must be >= 1");
    if (family != timestep_family::multistep && steps > train_steps)
        detail::fail(where, "steps", steps,
                     "must be <= train_steps = " + std::to_string(train_steps) + " (diffusers refuses more)");
    if (family == timestep_family::multistep && steps > 100 * train_steps)
        detail::fail(where, "steps", steps, "must be <= 100 train_steps");
    if (steps_offset < 0) detail::fail(where, "steps_offset", steps_offset, "must be >= 0");
    const double n = double(train_steps);
    const bool ms = family == timestep_family::multistep;
    std::vector<double> v;
    switch (spacing) {
        case timestep_spacing::linspace: {
            v = detail::np_linspace(0.0, n - 1.0, ms ? steps + 1 : steps);
            if (family != timestep_family::euler)
                for (double& x : v) x = std::nearbyint(x);
            std::reverse(v.begin(), v.end());
            if (ms) v.pop_back();
            break;
        }
        case timestep_spacing::leading: {
            const int m = ms ? steps + 1 : steps;
            const long long r = train_steps / m;
            for (int i = m - 1; i >= 0; --i) v.push_back(double(i * r));
            if (ms) v.pop_back();
            for (double& x : v) x += double(steps_offset);
            break;
        }
        case timestep_spacing::trailing: {
            v = detail::np_arange(n, 0.0, -n / double(steps));
            for (double& x : v) x = std::nearbyint(x) - 1.0;
            break;
        }
    }
    if (family == timestep_family::euler)
        for (double& x : v) x = double(static_cast<float>(x));
    return v;
}

/// The time t = (tau + 1)/n of training timestep tau of a vp_discrete schedule, and back.
/// (The same as vp_discrete::time_of_timestep and vp_discrete::timestep.)
inline double time_of_timestep(const vp_discrete& s, double tau) { return s.time_of_timestep(tau); }

namespace detail {

// Appends the end point and validates: the times of `taus` (descending) then the end.
inline std::vector<double> times_with_end(const vp_discrete& s, const std::vector<double>& taus, final_sigma end) {
    std::vector<double> ts;
    ts.reserve(taus.size() + 1);
    for (double tau : taus) ts.push_back(s.time_of_timestep(tau));
    const double t_end = end == final_sigma::zero ? s.t_min() : s.time_of_timestep(0.0);
    if (!ts.empty() && ts.back() <= t_end) {
        // the last timestep is the end point itself (tau = 0 with sigma_min): it becomes the end
        ts.back() = t_end;
    } else {
        ts.push_back(t_end);
    }
    return ts;
}

}  // namespace detail

/// The grid of diffusers' timesteps for `steps` network calls on schedule s (n = s.train_steps()),
/// ready for a solver: the times t = (tau + 1)/n of diffusers_timesteps(spacing, family,
/// steps, n, steps_offset), descending, then the end point (final_sigma: t = 0 for zero,
/// t = 1/n for sigma_min). A timestep equal to the end point (tau = 0 with sigma_min, the
/// last timestep of linspace in the ddim family) is not called: the grid then ends there and
/// has `steps` points, one network call fewer (diffusers makes that call and takes a step of
/// length zero). A trailing list with diffusers' extra value -1 (N = 61, 103, ...) is trimmed
/// to the N timesteps asked for.
/// Throws std::invalid_argument naming `steps` (or steps_offset) when diffusers' list would
/// repeat a timestep (the multistep family at steps = n) or leave 0..n-1 (leading with an
/// offset that reaches n): never a duplicated time. O(steps).
inline std::vector<double> discrete_grid(const vp_discrete& s, timestep_spacing spacing, timestep_family family,
                                         int steps, int steps_offset = 0, final_sigma end = final_sigma::zero) {
    const char* where = "discrete_grid";
    const int n = s.train_steps();
    std::vector<double> taus = diffusers_timesteps(spacing, family, steps, n, steps_offset);
    while (spacing == timestep_spacing::trailing && !taus.empty() && taus.back() < 0.0 &&
           int(taus.size()) > steps)
        taus.pop_back();
    for (std::size_t i = 0; i < taus.size(); ++i) {
        if (!(taus[i] >= 0.0 && taus[i] <= double(n - 1)))
            detail::fail(where, "steps", steps,
                         std::string("gives the timestep ") + detail::format_double(taus[i]) + " outside 0.." +
                             std::to_string(n - 1) + " with " + detail::to_string(spacing) +
                             " spacing and steps_offset " + std::to_string(steps_offset) +
                             " (use fewer steps or trailing spacing)");
        if (i > 0 && !(taus[i] < taus[i - 1]))
            detail::fail(where, "steps", steps,
                         std::string("repeats the timestep ") + detail::format_double(taus[i]) + " with " +
                             detail::to_string(spacing) +
                             " spacing (use fewer steps or trailing spacing)");
    }
    return check_grid(s, detail::times_with_end(s, taus, end));
}

// ---- The network's timestep ---------------------------------------------------------------

/// How time t maps to the timestep a network was trained with: tau = scale t + offset,
/// rounded to the nearest integer (half to even) when `round`.
/// vp_discrete with n entries: scale n, offset -1 (tau = t n - 1); flow matching with n
/// training timesteps: scale n, offset 0 (tau = 1000 t for SD3 and Flux).
struct timestep_map {
    double scale = 1.0;
    double offset = 0.0;
    bool round = false;
    double operator()(double t) const {
        const double tau = scale * t + offset;
        return round ? std::nearbyint(tau) : tau;
    }
};

/// The map of a vp_discrete schedule: tau = t n - 1, rounded when `round` (the integer
/// timesteps of a discrete-timestep network; grids of discrete_grid hit integers anyway,
/// noise-level grids such as Karras fall between them, and diffusers' DPM-Solver rounds
/// there while its Euler passes the fraction).
inline timestep_map discrete_timesteps(const vp_discrete& s, bool round = true) {
    return {double(s.train_steps()), -1.0, round};
}

/// A Network (see model_output.hpp) made from a network that takes the training timestep instead
/// of the time: it calls net(x, map(t), out). With discrete_timesteps(s) the wrapped network
/// receives the integer tau = t n - 1 of vp_discrete's table (t = (tau + 1)/n), exactly
/// what diffusers gives a UNet at that noise level. Holds a reference to `net`, which must
/// outlive it; adds no allocation and no state; as thread-safe as `net`.
template <class Net>
class timestep_network {
public:
    timestep_network(Net& net, timestep_map map) : net_(&net), map_(map) {}

    template <class S>
    void operator()(const S& x, double t, S& out) const {
        (*net_)(x, map_(t), out);
    }

    /// The timestep the network is given at time t.
    double timestep(double t) const { return map_(t); }
    const timestep_map& map() const { return map_; }

private:
    Net* net_;
    timestep_map map_;
};

}  // namespace deis
