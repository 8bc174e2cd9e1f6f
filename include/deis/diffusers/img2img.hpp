// deis: img2img with models from diffusers: a run started from data noised to a time of the
// grid chosen by a strength, as diffusers' pipelines choose it.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/state.hpp"

namespace deis {

/// How a strength in (0, 1] chooses the steps an img2img run keeps of an N-step grid.
enum class strength_rule {
    steps,  ///< SD 1.5 / SDXL pipelines: keep int(N strength) steps (truncated)
    flow    ///< SD3 / Flux pipelines: skip int(N - N strength) steps, keep the rest
};

/// The tail of `grid` (N + 1 points, N steps) that an img2img run at `strength` integrates,
/// as diffusers' pipelines choose it: the first t_start = N - kept steps are skipped, and
/// the run starts at grid[t_start] with the data noised to that time (noise_data). The
/// start is an index, never searched by value, and the grid keeps its points (no duplicated
/// first time; diffusers issues 9366, 3116). strength 1 keeps the whole grid.
/// Throws std::invalid_argument naming `strength` when it is outside (0, 1] or keeps no step
/// (N strength < 1 under the steps rule), and naming `grid` when it has fewer than 2 points.
inline std::vector<double> img2img_grid(const std::vector<double>& grid, double strength,
                                        strength_rule rule = strength_rule::steps) {
    const char* where = "img2img_grid";
    if (grid.size() < 2) detail::fail(where, "grid.size()", int(grid.size()), "must be >= 2");
    if (!(strength > 0.0 && strength <= 1.0)) detail::fail(where, "strength", strength, "must lie in (0, 1]");
    const int n = int(grid.size()) - 1;
    int t_start = 0;
    if (rule == strength_rule::steps) {
        const int init = std::min(int(double(n) * strength), n);
        t_start = std::max(n - init, 0);
    } else {
        const double init = std::min(double(n) * strength, double(n));
        t_start = int(double(n) - init);
    }
    if (t_start >= n)
        detail::fail(where, "strength", strength,
                     "keeps no step of the " + std::to_string(n) + "-step grid (raise it or the steps)");
    return std::vector<double>(grid.begin() + t_start, grid.end());
}

/// Noises data to time t of a schedule: out = alpha(t) x0 + sigma(t) eps, the start of an
/// img2img run at img2img_grid(...)[0] (for flow matching (1 - t) x0 + t eps). x0, eps and
/// out share one layout (any State backend of state.hpp; out may alias x0, not eps).
/// Throws std::invalid_argument naming the argument when t is outside the schedule's domain,
/// or the layouts differ, before writing anything. One pass over memory; allocates nothing.
template <class Schedule, class S>
void noise_data(const Schedule& s, double t, const S& x0, const S& eps, S& out) {
    const char* where = "noise_data";
    detail::require_finite(where, "t", t);
    if (!(t >= s.t_min() && t <= s.t_max()))
        detail::fail(where, "t", t,
                     "must lie in the schedule's domain [" + detail::format_double(s.t_min()) + ", " +
                         detail::format_double(s.t_max()) + "]");
    using ops = state_ops<S>;
    if (!ops::same_layout(x0, eps)) detail::fail(where, "eps.shape", ops::describe(eps), "must equal x0.shape");
    if (!ops::same_layout(x0, out)) detail::fail(where, "out.shape", ops::describe(out), "must equal x0.shape");
    const double sig = s.sigma(t);
    const S* h = &eps;
    ops::combine(out, s.alpha(t), x0, &sig, &h, 1);
}

}  // namespace deis
