// deis: sampling with a denoiser in sigma space (the convention of k-diffusion, ComfyUI and
// stable-diffusion.cpp), on memory someone else owns.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/grid.hpp"
#include "deis/result.hpp"
#include "deis/schedule.hpp"
#include "deis/solver_config.hpp"

namespace deis {

/// Samples with a denoiser D(x, sigma) -> x0, where x = x0 + sigma n: the edm schedule
/// (alpha = 1, t = sigma) with model_output::x0, on host memory the caller owns.
///
/// - config: any configuration (parse_solver_config): "recommended", a preset such as
///   "dpmpp_2m" or "heun", or a library configuration such as "tab3+data+corrector"; its model
///   output is set to x0 here.
/// - sigmas: sigma_0 > sigma_1 > ... > sigma_N >= 0, usually ending in 0 (k-diffusion's
///   get_sigmas_karras, a scheduler's sigmas, or a calibrated grid of the edm schedule, whose
///   times are sigmas). N network calls per step of the configuration.
/// - x: dim * batch values, sample j at x + j * dim; on entry the state at sigma_0 (noise
///   times sigma_0 when generating), on return the sample. Scalar: float or double.
/// - denoise(const Scalar* in, double sigma, Scalar* out): writes D(in, sigma) for the whole
///   batch into out (dim * batch values, same layout). in and out are the library's buffers
///   (or x), valid during the call only.
///
/// Throws std::invalid_argument, before any call, for a null x, a shape below 1 x 1, sigmas
/// that are not a descending list of at least two noise levels, or a configuration that
/// cannot run on them (every fault in one message). Allocates the workspace of the run (a
/// few states); thread-safe as the denoiser is.
template <class Scalar, class Denoiser>
sample_result sample_denoiser(const solver_config& config, const std::vector<double>& sigmas, Denoiser&& denoise,
                              Scalar* x, std::ptrdiff_t dim, std::ptrdiff_t batch) {
    static_assert(std::is_floating_point_v<Scalar>, "deis::sample_denoiser: Scalar must be float or double");
    static_assert(std::is_invocable_v<Denoiser&, const Scalar*, double, Scalar*>,
                  "deis::sample_denoiser: denoise must be callable as denoise(const Scalar* in, double sigma, "
                  "Scalar* out)");
    const char* where = "sample_denoiser";
    if (!x) detail::fail(where, "x", "nullptr", "must point to dim * batch values");
    if (dim < 1 || batch < 1)
        detail::fail(where, "shape", std::to_string(dim) + " x " + std::to_string(batch),
                     "must have dim >= 1 and batch >= 1");
    if (sigmas.size() < 2) detail::fail(where, "sigmas.size()", int(sigmas.size()), "must be >= 2");
    if (!(sigmas.front() > 0.0)) detail::fail(where, "sigmas[0]", sigmas.front(), "must be > 0");
    const edm schedule(sigmas.front());
    std::vector<double> grid = sigma_grid(schedule, sigmas);
    solver_config c = config;
    c.multistep.output = model_output::x0;
    c.rk.output = model_output::x0;
    using map = Eigen::Map<state<Scalar>>;
    map xs(x, Eigen::Index(dim), Eigen::Index(batch));
    auto net = [&denoise](const map& in, double sigma, map& out) {
        denoise(static_cast<const Scalar*>(in.data()), sigma, out.data());
    };
    return with_solver(c, schedule, std::move(grid), [&](const auto& solver) { return solver.sample(net, xs); });
}

}  // namespace deis
