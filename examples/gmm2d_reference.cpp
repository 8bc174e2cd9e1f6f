// gmm2d-reference: samples the reference 2-D Gaussian mixture (8 components on a circle of
// radius 4) from the 1000 reference noise points with DDIM and with tAB-DEIS of order 3, on
// the quadratic time grid of 10 steps (vp_linear, T = 1 down to t_end = 1e-3), and prints
// the median and RMS error against the exact probability-flow solution, with
// e_i = ||x_i - x_exact_i|| / sqrt(2), and the number of network evaluations.
//
// Usage: gmm2d-reference [reference_dir]
// reference_dir holds gmm2d_components.csv, gmm2d_xT.csv and gmm2d_exact.csv; by default the
// directory the build was configured with (DEIS_REFERENCE_DIR).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <exception>
#include <string>
#include <vector>

#include "support/csv_io.hpp"
#include "support/mixture_io.hpp"

#ifndef DEIS_REFERENCE_DIR
#define DEIS_REFERENCE_DIR "tests/data"
#endif

namespace {

struct errors {
    double median = 0.0, rms = 0.0;
};

// e_i = ||x_i - x_exact_i|| / sqrt(dim) over the columns; median and root mean square.
errors measure(const Eigen::MatrixXd& x, const Eigen::MatrixXd& exact) {
    std::vector<double> e(std::size_t(x.cols()));
    double sum_sq = 0.0;
    for (Eigen::Index i = 0; i < x.cols(); ++i) {
        e[std::size_t(i)] = (x.col(i) - exact.col(i)).norm() / std::sqrt(double(x.rows()));
        sum_sq += e[std::size_t(i)] * e[std::size_t(i)];
    }
    std::sort(e.begin(), e.end());
    const std::size_t n = e.size();
    errors r;
    r.median = n % 2 == 1 ? e[n / 2] : 0.5 * (e[n / 2 - 1] + e[n / 2]);
    r.rms = std::sqrt(sum_sq / double(n));
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Samples the reference 2-D Gaussian mixture with DDIM and tAB-DEIS (order 3), 10 steps"};
    std::string dir = DEIS_REFERENCE_DIR;
    app.add_option("reference_dir", dir, "Directory with gmm2d_components.csv, gmm2d_xT.csv, gmm2d_exact.csv")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    try {
        const deis::gaussian_mixture mixture = deis_tools::read_mixture_csv(dir + "/gmm2d_components.csv");
        const Eigen::MatrixXd x_T = deis_tools::read_samples(dir + "/gmm2d_xT.csv");
        const Eigen::MatrixXd exact = deis_tools::read_samples(dir + "/gmm2d_exact.csv");
        if (x_T.rows() != mixture.dim() || exact.rows() != x_T.rows() || exact.cols() != x_T.cols()) {
            std::fprintf(stderr, "gmm2d-reference: error: %s: the samples do not match the mixture or each other\n",
                         dir.c_str());
            return 2;
        }

        const deis::vp_linear schedule;  // beta_min = 0.1, beta_max = 20, T = 1
        const std::vector<double> grid = deis::power_t_grid(schedule, 10, 1.0, 1e-3, 2.0);
        const deis::gmm_eps<deis::vp_linear> net(mixture, schedule);

        std::printf("%d samples of the %d-component mixture; vp_linear, quadratic grid, %d steps from t = 1 to 1e-3\n",
                    int(x_T.cols()), int(mixture.components()), int(grid.size()) - 1);
        std::printf("%-14s %4s %14s %14s\n", "method", "NFE", "median error", "RMS error");

        struct method {
            const char* name;
            deis::multistep_method kind;
            int order;
        };
        for (const method& m : {method{"DDIM", deis::multistep_method::ddim, 0},
                                method{"tAB-DEIS r=3", deis::multistep_method::tab, 3}}) {
            deis::multistep_options options;
            options.method = m.kind;
            options.order = m.order;
            const deis::multistep_solver solver(schedule, grid, options);
            deis::state<double> x = x_T;
            const deis::sample_result result = solver.sample(net, x);
            if (!result) {
                std::fprintf(stderr, "gmm2d-reference: error: %s stopped at t = %g: %s\n", m.name, result.failed_time,
                             deis::to_string(result.status));
                return 3;
            }
            const errors e = measure(x, exact);
            std::printf("%-14s %4d %14.6e %14.6e\n", m.name, result.nfe, e.median, e.rms);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gmm2d-reference: error: %s\n", e.what());
        return 2;
    }
    return 0;
}
