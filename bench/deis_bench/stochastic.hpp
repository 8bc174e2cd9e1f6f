// deis-bench: the stochastic samplers (DDIM with eta, the SDE form), measured by a distance
// between distributions, since they do not follow the ODE solution of their x_T: the sliced
// Wasserstein distance between their samples and exact samples of the data at t_end.
//
// SW1(X, Y) = mean over L random directions theta of W1(theta . X, theta . Y), with W1 of two
// 1-D samples of equal size n the mean absolute difference of their sorted values. (W1 rather
// than W2: with well-separated modes the binomial fluctuation of the mass per mode, moved
// across the distance between modes, dominates W2 of finite samples; W1 weighs it linearly.) Exact
// samples: component k with probability w_k, then alpha mu_k + sqrt(alpha^2 s_k^2 + sigma^2) z
// (the marginal at t_end). A second exact set gives the floor: the distance two exact sample
// sets of this size already have (the Monte Carlo noise of the measurement).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <deis/research/gmm.hpp>
#include <string>
#include <vector>

#include "records.hpp"

namespace deis_bench {

// n exact samples (D x n) of the mixture's marginal with the given alpha and sigma, from
// std::mt19937_64(seed).
Eigen::MatrixXd exact_samples(const deis::gaussian_mixture& mix, double alpha, double sigma, Eigen::Index n,
                              std::uint64_t seed);

// SW1 of two sample sets of the same size over `directions` random unit directions drawn from
// std::mt19937_64(seed) (the same directions for every call with that seed).
double sliced_wasserstein(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, int directions, std::uint64_t seed);

// One row of the stochastic table: a solver and its distance at every NFE budget.
struct stochastic_row {
    std::string solver;
    std::vector<double> distance;  // per budget, NaN when rejected
};

// The markdown table (stdout and stochastic.md) and stochastic.csv in cfg.out_dir.
void write_stochastic(const settings& cfg, const problem_info& info, const std::vector<stochastic_row>& rows,
                      double floor);

}  // namespace deis_bench

#include <deis/multistep.hpp>
#include <deis/recommended.hpp>
#include <deis/solver_config.hpp>
#include <limits>

namespace deis_bench {

// The stochastic sweep (deis-bench --stochastic): every sampler below on the quadratic grid
// (power of t, k = 2) at every NFE budget, from x_T, each sample set against the same exact
// samples (seed cfg.seed + 1) over 64 directions (seed cfg.seed + 2); the samplers' noise is
// deis::gaussian_noise with seed cfg.seed. The deterministic ddim and recommended rows show
// what the ODE solvers give under the same measure.
template <class Schedule>
int run_stochastic(const settings& cfg, const Schedule& sch, const deis::gaussian_mixture& mix, double t_max,
                   double t_end, const Eigen::MatrixXd& x_T, problem_info info) {
    struct entry {
        std::string name;    // the row of the report
        const char* config;  // its configuration (deis/solver_config.hpp)
    };
    const std::vector<entry> samplers = {
        {"ddim (ODE)", "ddim"},
        {"recommended (ODE)", "recommended"},
        {"ddim eta=0.5", "ddim+eta=0.5"},
        {"ddim eta=1 (ancestral = sde tab0)", "ddim+eta=1"},
        {"sde tab1 (2M)", "tab1+data+sde"},
        {"sde rhoab1", "rhoab1+data+sde"},
        {"sde tab2", "tab2+data+sde"},
    };
    const deis::gmm_eps<Schedule> net(mix, sch);
    const Eigen::Index n = x_T.cols();
    const int directions = 64;
    const Eigen::MatrixXd exact = exact_samples(mix, sch.alpha(t_end), sch.sigma(t_end), n, cfg.seed + 1);
    const double floor = sliced_wasserstein(exact_samples(mix, sch.alpha(t_end), sch.sigma(t_end), n, cfg.seed + 3),
                                            exact, directions, cfg.seed + 2);
    std::vector<stochastic_row> rows;
    for (const entry& s : samplers) {
        stochastic_row row{s.name, {}};
        for (int budget : cfg.nfe) {
            const auto grid = deis::power_t_grid(sch, budget, t_max, t_end, 2.0);
            double d = std::numeric_limits<double>::quiet_NaN();
            try {
                deis::solver_config config = deis::parse_solver_config(s.config);
                config.multistep.seed = cfg.seed;
                const deis::multistep_solver solver(sch, grid, deis::resolve(config, sch, grid));
                Eigen::MatrixXd x = x_T;
                if (solver.sample(net, x).ok()) d = sliced_wasserstein(x, exact, directions, cfg.seed + 2);
            } catch (const std::invalid_argument& e) {
                std::cerr << "deis-bench: " << s.name << " at NFE " << budget << ": rejected: " << e.what() << '\n';
            }
            row.distance.push_back(d);
        }
        rows.push_back(row);
    }
    info.lines.push_back("grid: power of t, k = 2 (t2); sliced Wasserstein SW1 over " + std::to_string(directions) +
                         " directions against " + std::to_string(n) + " exact samples of the marginal at t_end; "
                         "sampler noise: deis::gaussian_noise, seed " + std::to_string(cfg.seed));
    write_stochastic(cfg, info, rows, floor);
    return 0;
}

}  // namespace deis_bench
