// deis-stepper-example: the application owns the loop. A TorchScript module is called by
// this program, step after step, and each output is handed to a deis::stepper; the library
// never sees the module. This is the pattern of an inference pipeline that batches, queues or
// offloads its network calls itself.
//
//   deis-stepper-example [--model FILE] [--method NAME] [--steps N] [--batch B] [--check]
//
// --model: a TorchScript module, forward(x, t) -> eps, x of shape [B, D] float32 (D = --dim),
// t of shape [B] (the vp_linear time); default: a module defined here, the exact eps of
// Gaussian data N(mu, diag(s^2)) in D = 4. --check also runs solver.sample() on the same module and exits 2
// unless the stepper's samples are the same, bit for bit. Exit 1 on a bad command line or a
// failure (one line on stderr).
#include <CLI/CLI.hpp>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deis/deis.hpp>
#include <deis/torch.hpp>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

// The exact eps of N(mu, diag(s^2)) under vp_linear(0.1, 20): sigma (x - alpha mu) /
// (alpha^2 s^2 + sigma^2).
torch::jit::Module gaussian_module() {
    torch::jit::Module m("gaussian_eps");
    m.register_buffer("mu", torch::tensor({0.5, -1.0, 0.25, 2.0}, torch::kFloat32));
    m.register_buffer("s2", torch::tensor({0.09, 0.64, 1.44, 0.25}, torch::kFloat32));
    m.define(R"JIT(
def forward(self, x, t):
    tt = t.reshape([-1, 1])
    log_alpha = -0.25 * tt * tt * (20.0 - 0.1) - 0.5 * tt * 0.1
    alpha = torch.exp(log_alpha)
    sigma = torch.sqrt(-torch.expm1(2.0 * log_alpha))
    return sigma * (x - alpha * self.mu) / (alpha * alpha * self.s2 + sigma * sigma)
)JIT");
    return m;
}

// One forward call: x [B, D] and the time as a [B] tensor of x's dtype.
at::Tensor call(torch::jit::Module& model, const at::Tensor& x, double t) {
    return model.forward({x, at::full({x.size(0)}, t, x.options())}).toTensor();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"deis-stepper-example: a deis::stepper driven from a loop over a TorchScript module"};
    std::string model_file, method = "recommended";
    int steps = 10, batch = 8, dim = 4;
    long seed = 0;
    bool check = false;
    app.add_option("--model", model_file, "TorchScript module: forward(x [B, D], t [B]) -> eps")->check(CLI::ExistingFile);
    app.add_option("--method", method, "a configuration name (docs/solvers.md), e.g. dpmpp_2m, heun")->capture_default_str();
    app.add_option("--steps", steps, "steps of the run")->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_option("--batch", batch, "samples")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--dim", dim, "values per sample (the module's D)")->check(CLI::Range(1, 1 << 24))->capture_default_str();
    app.add_option("--seed", seed, "seed of the initial noise")->capture_default_str();
    app.add_flag("--check", check, "also run solver.sample(); exit 2 unless the samples are identical");
    CLI11_PARSE(app, argc, argv);

    try {
        torch::jit::Module model = model_file.empty() ? gaussian_module() : torch::jit::load(model_file);
        model.eval();
        const c10::InferenceMode inference;
        const deis::solver_config config = deis::parse_solver_config(method);
        const deis::vp_linear schedule{};
        const std::vector<double> grid = deis::power_t_grid(schedule, steps, schedule.t_max(), 1e-3);
        torch::manual_seed(std::uint64_t(seed));
        const at::Tensor x_T = at::randn({batch, dim});

        return deis::with_solver(config, schedule, grid, [&](const auto& solver) {
            at::Tensor x = x_T.clone();
            deis::stepper st(solver, x);
            at::Tensor x0 = at::empty_like(x);
            while (!st.done()) {
                // the application's network call: its own tensors, its own schedule of work
                const at::Tensor out = call(model, st.input(), st.time());
                if (st.stage() == 0) {
                    st.data_prediction(out, x0);  // a preview of the sample
                    std::fprintf(stderr, "step %2d/%d  t = %.4f  |x0| = %.4f\n", st.step() + 1, st.steps(),
                                 st.time(), x0.norm().item<double>() / std::sqrt(double(x0.numel())));
                }
                const deis::status s = st.advance(out);
                if (s != deis::status::success) {
                    std::cerr << "deis-stepper-example: " << deis::to_string(s) << " at t = " << st.time() << "\n";
                    return 1;
                }
            }
            std::printf("%s, %d steps, %d network calls: sample mean per dimension", method.c_str(), steps, st.nfe());
            const at::Tensor mean = x.mean(0);
            for (std::int64_t d = 0; d < mean.numel(); ++d) std::printf(" %.4f", mean[d].template item<double>());
            std::printf("\n");
            if (check) {
                at::Tensor y = x_T.clone();
                auto net = [&](const at::Tensor& in, double t, at::Tensor& out) { out.copy_(call(model, in, t)); };
                if (!solver.sample(net, y).ok() || !at::equal(x, y)) {
                    std::cerr << "deis-stepper-example: the stepper's samples differ from sample()'s\n";
                    return 2;
                }
                std::printf("check: identical to solver.sample()\n");
            }
            return 0;
        });
    } catch (const std::exception& e) {
        std::cerr << "deis-stepper-example: " << e.what() << "\n";
        return 1;
    }
}
