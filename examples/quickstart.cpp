// Quickstart: sample a 2-D mixture of two Gaussians in 10 network calls.
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>

#include <iostream>
#include <random>
#include <vector>

int main() {
    // The "network": exact noise prediction of a mixture of two Gaussians in 2-D.
    Eigen::VectorXd weights(2);
    Eigen::MatrixXd means(2, 2), stds(2, 2);  // one column per component
    weights << 0.5, 0.5;
    means << -2.0, 2.0,
              0.0, 1.0;
    stds << 0.5, 0.5,
            0.5, 0.5;
    const deis::vp_linear schedule;  // beta from 0.1 to 20, t in [0, 1]
    const deis::gmm_eps<deis::vp_linear> net(deis::gaussian_mixture(weights, means, stds), schedule);

    // Quadratic time grid of 10 steps from t = 1 down to 1e-3, and the recommended solver
    // for it: tAB-DEIS with data prediction and the corrector. (For plain tAB-DEIS of order
    // 3: deis::multistep_options with method = multistep_method::tab and order = 3.)
    const std::vector<double> grid = deis::power_t_grid(schedule, 10, 1.0, 1e-3);
    const deis::multistep_solver solver(schedule, grid, deis::recommended_options(schedule, grid));

    // A batch of 4 samples (one per column) of noise from N(0, I), integrated in place.
    std::mt19937 rng(42);
    std::normal_distribution<double> normal;
    deis::state<double> x(2, 4);
    for (double& v : x.reshaped()) v = normal(rng);
    const deis::sample_result result = solver.sample(net, x);

    std::cout << "status: " << deis::to_string(result.status) << ", nfe: " << result.nfe << "\n"
              << "samples (one per column):\n" << x << "\n";
    return result.ok() ? 0 : 1;
}
