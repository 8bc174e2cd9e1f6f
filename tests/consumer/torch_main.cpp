// A consumer of the installed package that samples torch tensors and checks them against the
// same solver run on an Eigen matrix of the same numbers: the torch backend (float64, CPU)
// must give the Eigen path's samples to round-off. The network is the exact eps of N(0, I)
// data under the VP linear schedule (eps = sigma x). Exits 1 if the two disagree.
#include <deis/deis.hpp>
#include <deis/torch.hpp>
#include <torch/torch.h>

#include <iostream>

int main() {
    const deis::vp_linear schedule;
    const auto grid = deis::power_t_grid(schedule, 10, 1.0, 1e-3);
    const deis::multistep_solver solver(schedule, grid, deis::recommended_options(schedule, grid));

    torch::manual_seed(1);
    torch::Tensor x = torch::randn({4, 3, 8, 8}, torch::kFloat64);
    // The same numbers as an Eigen matrix with one column per sample (row-major tensor
    // [4, 192] = column-major [192, 4]).
    Eigen::MatrixXd y = Eigen::Map<const Eigen::MatrixXd>(x.data_ptr<double>(), 192, 4);

    auto net_torch = [&](const torch::Tensor& in, double t, torch::Tensor& out) { out.copy_(schedule.sigma(t) * in); };
    auto net_eigen = [&](const Eigen::MatrixXd& in, double t, Eigen::MatrixXd& out) { out = schedule.sigma(t) * in; };
    const deis::sample_result r = solver.sample(net_torch, x);
    const deis::sample_result re = solver.sample(net_eigen, y);

    const Eigen::Map<const Eigen::MatrixXd> xt(x.data_ptr<double>(), 192, 4);
    const double diff = (xt - y).cwiseAbs().maxCoeff();
    const double scale = y.cwiseAbs().maxCoeff();
    std::cout << "consumer (torch): " << deis::to_string(r.status) << ", nfe " << r.nfe
              << ", max |torch - eigen| = " << diff << " (samples up to " << scale << ")\n";
    // 1e-12 relative: the two backends evaluate the same combinations in double precision
    return r.ok() && re.ok() && r.nfe == re.nfe && diff <= 1e-12 * scale ? 0 : 1;
}
