// deis-torch-example: the compared solvers, the distances, and the torch-versus-Eigen check.
#include <algorithm>
#include <cmath>
#include <deis/deis.hpp>
#include <deis/torch.hpp>
#include <iomanip>
#include <iostream>
#include <stdexcept>

#include "torch_example.hpp"

namespace deis_torch_example {

const std::vector<int>& nfe_budgets() {
    static const std::vector<int> b = {5, 10, 20, 50};
    return b;
}

const std::vector<std::string>& solver_names() {
    static const std::vector<std::string> n = {"ddim", "tab3", "rk:rk4", "recommended"};
    return n;
}

namespace {

void require_ok(const deis::sample_result& r, const std::string& what) {
    if (!r.ok()) throw std::runtime_error(what + ": " + deis::to_string(r.status));
}

}  // namespace

int sample_with(const std::string& name, int nfe, const deis::vp_linear& schedule, double t_end,
                const tensor_network& net, torch::Tensor& x) {
    const std::string what = name + " at NFE " + std::to_string(nfe);
    const deis::solver_config config = deis::parse_solver_config(name);
    const int steps = nfe / deis::calls_per_step(config);
    if (steps < 1) throw std::runtime_error(what + ": below one step");
    return deis::with_solver(config, schedule, deis::power_t_grid(schedule, steps, 1.0, t_end, 2.0),
                             [&](const auto& solver) {
                                 const deis::sample_result r = solver.sample(net, x);
                                 require_ok(r, what);
                                 return r.nfe;
                             });
}

double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int directions) {
    if (a.sizes() != b.sizes() || a.dim() != 2 || a.size(1) != 2)
        throw std::invalid_argument("sliced_wasserstein: two [n, 2] tensors of the same size");
    const torch::Tensor angle =
        (torch::arange(directions, torch::kDouble) + 0.5) * (std::acos(-1.0) / double(directions));
    const torch::Tensor dirs = torch::stack({torch::cos(angle), torch::sin(angle)}, 0);  // [2, L]
    const torch::Tensor pa = std::get<0>(torch::sort(a.to(torch::kDouble).matmul(dirs), 0));
    const torch::Tensor pb = std::get<0>(torch::sort(b.to(torch::kDouble).matmul(dirs), 0));
    return std::sqrt((pa - pb).square().mean().item<double>());
}

double median_l2(const torch::Tensor& a, const torch::Tensor& b) {
    std::vector<double> e(std::size_t(a.size(0)));
    const torch::Tensor d = (a.to(torch::kDouble) - b.to(torch::kDouble)).norm(2, 1).contiguous();
    std::copy(d.data_ptr<double>(), d.data_ptr<double>() + d.numel(), e.begin());
    const auto mid = e.begin() + std::ptrdiff_t(e.size() / 2);
    std::nth_element(e.begin(), mid, e.end());
    if (e.size() % 2 == 1) return *mid;
    return 0.5 * (*mid + *std::max_element(e.begin(), mid));
}

double torch_vs_eigen(const deis::vp_linear& schedule, double t_end, const mlp& model, const torch::Tensor& x_T,
                      int nfe) {
    const tensor_network tnet{model};
    const eigen_network enet{model};
    double worst = 0.0;
    auto compare = [&](const std::string& name, const auto& solver) {
        torch::Tensor xt = x_T.to(torch::kDouble).clone();
        deis::state<double> xe = to_state(x_T);
        require_ok(solver.sample(tnet, xt), name + " (torch)");
        require_ok(solver.sample(enet, xe), name + " (Eigen)");
        const deis::state<double> from_torch = to_state(xt);
        const double rel = (from_torch - xe).cwiseAbs().maxCoeff() / xe.cwiseAbs().maxCoeff();
        worst = std::max(worst, rel);
        std::cout << "  " << std::left << std::setw(34) << name << " max |torch - Eigen| / max |Eigen| = "
                  << std::setprecision(3) << rel << '\n';
    };
    const std::vector<double> grid = deis::power_t_grid(schedule, nfe, 1.0, t_end, 2.0);
    for (const char* name : {"ddim", "tab3", "rhoab3", "ipndm3", "tab2+data+corrector"})
        compare(name, deis::multistep_solver(schedule, grid, deis::parse_multistep(name)));
    compare("recommended", deis::multistep_solver(schedule, grid, deis::recommended_options(schedule, grid)));
    const std::vector<double> rk_grid = deis::power_t_grid(schedule, std::max(1, nfe / 4), 1.0, t_end, 2.0);
    compare("rhoRK rk4", deis::rk_solver<deis::tableau::rk4>(schedule, rk_grid));
    compare("rhoRK heun2", deis::rk_solver<deis::tableau::heun2>(schedule, rk_grid));
    return worst;
}

}  // namespace deis_torch_example
