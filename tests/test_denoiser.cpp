// The sigma-space face (denoiser.hpp): a denoiser callback on float memory owned by another
// library, shaped like stable-diffusion.cpp's (a tensor pointer, a float sigma and the step in,
// a tensor of the same shape out), gives the samples of the EDM path (edm schedule, x0 output,
// sigma_grid) bit for bit, for the recommended, preset and library configurations.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <functional>
#include <stdexcept>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace denoiser_test {

// Another library's tensor: float32 host memory, ne[0] the fastest dimension (as ggml).
struct foreign_tensor {
    std::array<std::int64_t, 4> ne{};
    std::vector<float> data;
    std::int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};
// That library's sampler callback: the denoised tensor at (x, sigma), owned by the callee.
using denoise_cb_t = std::function<foreign_tensor*(foreign_tensor*, float, int)>;
// The denoiser handed to sample_denoiser by both tests: one type, one instantiation of its
// ten solvers.
using denoise_fn = std::function<void(const float*, double, float*)>;

// The denoiser of the ring mixture under the edm schedule, in that library's terms: x0 of
// each sample (ne[0] = 2 values), computed in double at the float sigma it is given.
struct ring_model {
    deis::gmm_model<deis::edm> model{deis_test::reference_mixture(), deis::edm(80.0), deis::model_output::x0};
    foreign_tensor result;
    int calls = 0;
    foreign_tensor* operator()(foreign_tensor* x, float sigma, int /*step*/) {
        ++calls;
        const Eigen::Index n = Eigen::Index(x->elements() / 2);
        const deis::state<double> in = Eigen::Map<const deis::state<float>>(x->data.data(), 2, n).cast<double>();
        deis::state<double> out(2, n);
        model(in, double(sigma), out);
        result.ne = x->ne;
        result.data.resize(std::size_t(x->elements()));
        Eigen::Map<deis::state<float>>(result.data.data(), 2, n) = out.cast<float>();
        return &result;
    }
};

std::vector<double> karras(int n, double smin, double smax) {
    std::vector<double> s;
    for (int i = 0; i < n; ++i) {
        const double r = double(i) / (n - 1);
        s.push_back(std::pow(std::pow(smax, 1 / 7.0) + r * (std::pow(smin, 1 / 7.0) - std::pow(smax, 1 / 7.0)), 7.0));
    }
    s.push_back(0.0);
    return s;
}

}  // namespace denoiser_test

TEST_CASE("sample_denoiser: a stable-diffusion.cpp-style callback on foreign float memory is the EDM path",
          "[denoiser]") {
    using denoiser_test::foreign_tensor;
    const std::vector<double> sigmas = denoiser_test::karras(10, 0.002, 80.0);
    const Eigen::MatrixXd noise = deis_test::reference_samples("gmm2d_xT.csv").leftCols(40);
    for (const char* name : {"recommended", "heun", "ddim", "tab3+data+corrector", "rhoab2+data", "dpmpp_2m",
                             "dpmpp_3m", "uni_pc_bh2", "euler"}) {
        CAPTURE(name);
        const deis::solver_config config = deis::parse_solver_config(name);
        // the application's side: its latent tensor, its callback
        denoiser_test::ring_model ring;
        denoiser_test::denoise_cb_t callback = std::ref(ring);
        foreign_tensor latent;
        latent.ne = {2, 1, 1, 40};
        latent.data.resize(80);
        Eigen::Map<deis::state<float>>(latent.data.data(), 2, 40) = (80.0 * noise).cast<float>();
        const std::vector<float> initial = latent.data;
        foreign_tensor scratch{latent.ne, std::vector<float>(80)};
        int step = 0;
        const denoiser_test::denoise_fn denoise = [&](const float* in, double sigma, float* out) {
            std::memcpy(scratch.data.data(), in, 80 * sizeof(float));
            const foreign_tensor* d = callback(&scratch, float(sigma), step++);
            std::memcpy(out, d->data.data(), 80 * sizeof(float));
        };
        const deis::sample_result r = deis::sample_denoiser(config, sigmas, denoise, latent.data.data(), 2, 40);
        REQUIRE(r.ok());
        CHECK(r.nfe == ring.calls);
        CHECK(r.nfe == (std::string(name) == "heun" ? 2 * 10 - 1 : 10));  // heun's last step: Euler

        // the EDM path: the edm schedule, x0 output, the sigma grid, an owning float state and a
        // network that rounds sigma to float as the callback's signature does
        const deis::edm schedule(80.0);
        deis::solver_config c = config;
        c.multistep.output = deis::model_output::x0;
        c.rk.output = deis::model_output::x0;
        deis::state<float> x = Eigen::Map<const deis::state<float>>(initial.data(), 2, 40);
        denoiser_test::ring_model again;
        auto net = [&](const deis::state<float>& in, double sigma, deis::state<float>& out) {
            foreign_tensor t{{2, 1, 1, 40}, std::vector<float>(in.data(), in.data() + 80)};
            out = Eigen::Map<const deis::state<float>>(again(&t, float(sigma), 0)->data.data(), 2, 40);
        };
        deis_test::with_solver_of<deis::tableau::heun2>(c, schedule, deis::sigma_grid(schedule, sigmas),
                          [&](const auto& solver) { REQUIRE(solver.sample(net, x).ok()); });
        CHECK(Eigen::Map<const deis::state<float>>(latent.data.data(), 2, 40) == x);

        // and it samples: within float round-off of the same run in double (the sample's scale
        // is 4; float carries 6e-8 relative per operation over 10-19 calls)
        deis::state<double> xd = Eigen::Map<const deis::state<float>>(initial.data(), 2, 40).cast<double>();
        deis_test::with_solver_of<deis::tableau::heun2>(c, schedule, deis::sigma_grid(schedule, sigmas),
                          [&](const auto& solver) { REQUIRE(solver.sample(ring.model, xd).ok()); });
        CHECK((x.cast<double>() - xd).cwiseAbs().maxCoeff() <= 1e-4);
    }
}

TEST_CASE("sample_denoiser: bad input is refused before any call", "[denoiser]") {
    int calls = 0;
    const denoiser_test::denoise_fn denoise = [&](const float*, double, float* out) {
        ++calls;
        out[0] = 0.0f;
    };
    std::vector<float> x(8, 1.0f);
    const deis::solver_config c = deis::parse_solver_config("recommended");
    const std::vector<double> sigmas = {10.0, 1.0, 0.0};
    CHECK_THAT(deis_test::refusal([&] { deis::sample_denoiser(c, sigmas, denoise, (float*)nullptr, 2, 4); }),
               deis_test::contains("x = nullptr"));
    CHECK_THAT(deis_test::refusal([&] { deis::sample_denoiser(c, sigmas, denoise, x.data(), 0, 4); }),
               deis_test::contains("shape = 0 x 4"));
    CHECK_THAT(deis_test::refusal([&] { deis::sample_denoiser(c, {10.0}, denoise, x.data(), 2, 4); }),
               deis_test::contains("sigmas.size()"));
    CHECK_THAT(deis_test::refusal([&] { deis::sample_denoiser(c, {1.0, 10.0, 0.0}, denoise, x.data(), 2, 4); }),
               deis_test::contains("grid"));
    CHECK_THAT(deis_test::refusal([&] {
                   deis::sample_denoiser(deis::parse_solver_config("rk:heun2"), sigmas, denoise, x.data(), 2, 4);
               }),
               deis_test::contains("does not determine eps"));
    CHECK(calls == 0);
    CHECK(x == std::vector<float>(8, 1.0f));
}
