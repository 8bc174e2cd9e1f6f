// A consumer of the installed package that samples torch tensors: exact eps of N(0, I) data
// under the VP linear schedule (eps = sigma x), so the result is known in closed form:
// x_0 = x_T * sqrt(alpha_0^2 + sigma_0^2) / sqrt(alpha_T^2 + sigma_T^2) = x_T for a variance-
// preserving schedule. Exits 1 if the samples are off.
#include <deis/deis.hpp>
#include <deis/torch.hpp>
#include <torch/torch.h>

#include <iostream>

int main() {
    const deis::vp_linear schedule;
    const deis::multistep_solver solver(schedule, deis::power_t_grid(schedule, 10, 1.0, 1e-3),
                                        deis::recommended_options(schedule, deis::power_t_grid(schedule, 10, 1.0, 1e-3)));
    torch::Tensor x = torch::randn({4, 3, 8, 8}, torch::kFloat64);
    const torch::Tensor x_T = x.clone();
    auto net = [&](const torch::Tensor& in, double t, torch::Tensor& out) { out.copy_(schedule.sigma(t) * in); };
    const deis::sample_result r = solver.sample(net, x);
    const double err = (x - x_T).abs().max().item<double>();
    std::cout << "consumer (torch): " << deis::to_string(r.status) << ", nfe " << r.nfe << ", max |x_0 - x_T| = " << err
              << '\n';
    return r.ok() && err < 1e-6 ? 0 : 1;
}
