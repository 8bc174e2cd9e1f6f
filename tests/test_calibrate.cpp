// Calibrated grids (deis/research/calibrate.hpp) on the reference ring (VP linear, exact eps):
// - deterministic;
// - never worse than the initial (recommended) grid on the calibration batch, by construction,
//   and not worse on the reference x_T, which the calibration never sees;
// - at 5 and 10 NFE the median error on the reference x_T at most half the best peer of
//   tests/data/gmm2d_results.csv;
// - generalizes: calibrated on one batch, the error on another batch of the same size stays
//   within a factor 2 of the calibration batch's.
#include <cmath>
#include <vector>

#include "catch.hpp"
#include "deis/research/calibrate.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support.hpp"

namespace {

// M standard normal 2-D points from the library's counter-based generator (the same on every
// platform), seed `seed`.
deis::state<double> prior_batch(Eigen::Index m, std::uint64_t seed) {
    deis::state<double> z(2, m);
    deis::noise_ops<deis::state<double>>::fill(z, seed, 0);
    return z;
}

struct ring {
    deis::vp_linear s;
    deis::gmm_eps<deis::vp_linear> net{deis_test::reference_mixture(), s};
    Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv");
    Eigen::MatrixXd exact = deis_test::reference_samples("gmm2d_exact.csv");

    double error_on_reference(const std::vector<double>& grid) const {
        const deis::multistep_solver solver(s, grid, deis::recommended_options(s, grid));
        deis::state<double> x = x_T;
        REQUIRE(solver.sample(net, x).ok());
        return deis_test::median(deis_test::sample_errors(x, exact));
    }
};

auto recommended_config(const deis::vp_linear& s) {
    return [s](const std::vector<double>& g) { return deis::recommended_options(s, g); };
}

}  // namespace

TEST_CASE("optimize_grid: deterministic, bounded, never worse than its start", "[calibrate]") {
    const ring p;
    const auto batch = prior_batch(128, 7);
    deis::calibrate_options opt;
    opt.max_runs = 60;
    const auto a = deis::optimize_grid(p.s, recommended_config(p.s), p.net, batch, 6, opt);
    const auto b = deis::optimize_grid(p.s, recommended_config(p.s), p.net, batch, 6, opt);
    CHECK(a.grid == b.grid);  // bit for bit
    CHECK(a.error == b.error);
    CHECK(a.runs <= 60);
    CHECK(a.error <= a.initial_error);
    REQUIRE(a.grid.size() == 7);
    CHECK(a.grid.front() == 1.0);
    CHECK(a.grid.back() == 1e-3);
    CHECK_NOTHROW(deis::check_grid(p.s, a.grid));
    // the initial error is the recommended grid's on this batch, computed independently
    {
        const auto g = deis::recommended_grid(p.s, 6);
        const deis::multistep_solver solver(p.s, g, deis::recommended_options(p.s, g));
        deis::state<double> x = batch, ref = batch;
        REQUIRE(solver.sample(p.net, x).ok());
        deis::reference_options ro;
        ro.atol = ro.rtol = 1e-11;
        REQUIRE(deis::reference_solution(p.s, p.net, ref, 1.0, 1e-3, ro));
        // both references at 1e-11 differ by ~1e-11, far below the errors (~1e-2)
        CHECK(deis_test::median(deis_test::sample_errors(x, ref)) == Approx(a.initial_error).epsilon(1e-6));
    }
    // a fixed multistep_options works too
    deis::multistep_options tab3;
    tab3.method = deis::multistep_method::tab;
    tab3.order = 3;
    const auto c = deis::optimize_grid(p.s, tab3, p.net, batch, 6, opt);
    CHECK(c.error <= c.initial_error);

    deis::calibrate_options bad;
    bad.max_runs = 0;
    CHECK_THROWS_AS(deis::optimize_grid(p.s, tab3, p.net, batch, 6, bad), std::invalid_argument);
    CHECK_THROWS_AS(deis::optimize_grid(p.s, tab3, p.net, batch, 0), std::invalid_argument);
    CHECK_THROWS_AS(deis::optimize_grid(p.s, tab3, p.net, deis::state<double>(2, 0), 6), std::invalid_argument);
    bad = {};
    bad.initial_grid = {1.0, 0.5, 1e-3};
    CHECK_THROWS_AS(deis::optimize_grid(p.s, tab3, p.net, batch, 6, bad), std::invalid_argument);
}

TEST_CASE("optimize_grid on the ring: half the best peer at 5 and 10 NFE, generalizes", "[calibrate]") {
    const ring p;
    const auto calib = prior_batch(256, 11), other = prior_batch(256, 12);
    // best peer medians of gmm2d_results.csv: official tAB2 (log) at 5, UniPC bh2 at 10
    const double peer5 = deis_test::reference_result("deis-official", "t_ab", 2, "log", 5, "median_err");
    const double peer10 = deis_test::reference_result("unipc", "unipc-bh2:data_prediction", 2, "t2", 10, "median_err");
    for (int n : {5, 8, 10, 15, 20}) {
        const auto r = deis::optimize_grid(p.s, recommended_config(p.s), p.net, calib, n);
        CHECK(r.runs <= 500);  // the default budget
        const double calibrated = p.error_on_reference(r.grid);
        const double uncalibrated = p.error_on_reference(deis::recommended_grid(p.s, n));
        // the error on another batch of the same size, against its own reference
        deis::state<double> x = other, ref = other;
        deis::reference_options ro;
        ro.atol = ro.rtol = 1e-11;
        REQUIRE(deis::reference_solution(p.s, p.net, ref, 1.0, 1e-3, ro));
        const deis::multistep_solver solver(p.s, r.grid, deis::recommended_options(p.s, r.grid));
        REQUIRE(solver.sample(p.net, x).ok());
        const double on_other = deis_test::median(deis_test::sample_errors(x, ref));
        INFO("NFE " << n << ": calibration batch " << r.initial_error << " -> " << r.error << " (" << r.runs
                    << " runs, " << r.network_calls << " calls, " << r.seconds << " s); reference x_T "
                    << uncalibrated << " -> " << calibrated << "; other batch " << on_other);
        CHECK(calibrated <= uncalibrated);
        // generalization: a median over 256 samples moves by ~10% between batches; a factor
        // 2 leaves room for that and fails when the grid only fits its batch
        CHECK(on_other <= 2.0 * r.error);
        if (n == 5) CHECK(calibrated <= 0.5 * peer5);
        if (n == 10) CHECK(calibrated <= 0.5 * peer10);
    }
}
