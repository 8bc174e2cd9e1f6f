// deis-sample's grids of the recommended configuration and the calibrated grids:
// --method recommended without --grid uses deis::recommended_grid (the same samples as the
// library run here), --grid optimized --save-grid writes a grid that --grid-file reuses to the
// same samples, bit for bit; and the new options' misuse fails with a clear message.
// Only for DEIS_SAMPLE_EXE builds (tests/CMakeLists.txt defines it with the examples).
#ifdef DEIS_SAMPLE_EXE

#include <Eigen/Core>
#include <fstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"

using namespace deis_cli_test;

TEST_CASE("deis-sample: --method recommended without --grid uses recommended_grid", "[cli]") {
    scratch s;
    inputs in(s);
    const args_t a = set(drop(drop(in.base(), "--grid"), "--method"), "--method", "recommended");
    require_success(s.run(set(a, "--steps", "6")), 6);
    const Eigen::MatrixXd x = read(s.out_path());
    // the same run in the library
    const deis::vp_linear sch;
    Eigen::MatrixXd mu(2, 2), sd(2, 2);
    mu << -1, 1, 0, 0.5;
    sd << 0.5, 0.4, 0.5, 0.6;
    const deis::gmm_eps<deis::vp_linear> net(deis::gaussian_mixture(Eigen::Vector2d(0.5, 0.5), mu, sd), sch);
    const auto grid = deis::recommended_grid(sch, 6, 1.0, 1e-3);
    const deis::multistep_solver solver(sch, grid, deis::recommended_options(sch, grid));
    deis::state<double> y = read(in.noise);
    REQUIRE(solver.sample(net, y).ok());
    // the files hold 17 significant digits: equal to round-off of the printing
    CHECK((x - y).cwiseAbs().maxCoeff() <= 1e-14 * (1.0 + y.cwiseAbs().maxCoeff()));
}

TEST_CASE("deis-sample: --grid optimized, --save-grid, --grid-file", "[cli]") {
    scratch s;
    inputs in(s);
    const std::string saved = s.path("grid.txt");
    const args_t a = add(set(set(in.base(), "--grid", "optimized"), "--steps", "5"),
                         {"--calibration-samples", "64", "--seed", "3", "--save-grid", saved});
    require_success(s.run(a), 5);
    const Eigen::MatrixXd x = read(s.out_path());
    std::ifstream f(saved);
    std::vector<double> g;
    for (double t; f >> t;) g.push_back(t);
    REQUIRE(g.size() == 6);
    CHECK(g.front() == 1.0);
    CHECK(g.back() == 1e-3);
    // reusing the saved grid gives the same samples bit for bit (17 digits read back exactly)
    require_success(s.run(add(set(drop(drop(drop(drop(a, "--grid"), "--calibration-samples"), "--seed"),
                                       "--save-grid"),
                                  "--steps", "5"),
                              {"--grid-file", saved})),
                    5);
    CHECK(read(s.out_path()) == x);
    // the same seed gives the same grid
    require_success(s.run(set(a, "--save-grid", s.path("grid2.txt"))), 5);
    CHECK(slurp(saved) == slurp(s.path("grid2.txt")));
    // --progress: the calibration's lines (a tenth of either phase each; the search may end
    // before its budget), then the steps'; the same grid
    const cli_result p = s.run(add(set(a, "--save-grid", s.path("grid3.txt")), {"--progress"}));
    INFO("stderr: " << p.err);
    REQUIRE(p.code == 0);
    CHECK(slurp(saved) == slurp(s.path("grid3.txt")));
    CHECK(p.err.find("deis-sample: calibrating the grid: reference 10% (") != std::string::npos);
    const auto ref_done = p.err.find("deis-sample: calibrating the grid: reference 100% (");
    REQUIRE(ref_done != std::string::npos);
    CHECK(p.err.find("deis-sample: calibrating the grid: search ", ref_done) != std::string::npos);
    CHECK(p.err.find("deis-sample: 100% (5 of 5 steps)") > p.err.find("calibrating the grid: search"));

    require_failure(s.run(add(in.base(), {"--grid-file", saved})), exit_usage, {"--grid-file"});
    require_failure(s.run(add(in.base(), {"--calibration-samples", "3"})), exit_usage, {"--calibration-samples"});
    require_failure(s.run(add(drop(in.base(), "--grid"), {"--grid-file", saved})), exit_usage, {"--steps"});
    require_failure(s.run(drop(in.base(), "--grid")), exit_usage, {"--grid"});
}

#endif  // DEIS_SAMPLE_EXE
