// Whole runs on the reference 2-D mixture: sample by sample against the official DEIS
// sampler with exact coefficients, float against double, and the error measure of the
// reference results table.
#include <algorithm>
#include <cmath>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace {

using deis_test::ref_schedule;  // the reference problem: defaults, T = 1, t_end = 1e-3

std::vector<double> grid_of(const std::string& name, int steps) {
    if (name == "t2") return deis::power_t_grid(ref_schedule, steps, 1.0, 1e-3, 2.0);
    return deis::log_rho_grid(ref_schedule, steps, 1.0, 1e-3);
}

deis::multistep_options plain_options(deis::multistep_method m, int order) {
    deis::multistep_options o;
    o.method = m;
    o.order = order;
    return o;
}

const deis::gaussian_mixture& mixture() {
    static const deis::gaussian_mixture m = deis_test::reference_mixture();
    return m;
}

const Eigen::MatrixXd& x_T() {
    static const Eigen::MatrixXd x = deis_test::reference_samples("gmm2d_xT.csv");
    return x;
}

}  // namespace

TEST_CASE("tAB and rhoAB runs match the official sampler with exact coefficients", "[samples]") {
    const std::string method = GENERATE(as<std::string>{}, "t_ab", "rho_ab");
    const int order = GENERATE(0, 1, 2, 3);
    const std::string grid_name = GENERATE(as<std::string>{}, "t2", "log");
    const int steps = GENERATE(10, 20);
    CAPTURE(method, order, grid_name, steps);

    const auto m = method == "t_ab" ? deis::multistep_method::tab : deis::multistep_method::rhoab;
    const deis::multistep_solver solver(ref_schedule, grid_of(grid_name, steps), plain_options(m, order));
    const deis::gmm_eps<deis::vp_linear> net(mixture(), ref_schedule);

    deis::state<double> x = x_T();
    REQUIRE(x.rows() == 2);
    REQUIRE(x.cols() == 1000);
    const auto result = solver.sample(net, x);
    REQUIRE(result.ok());
    CHECK(result.nfe == steps);
    CHECK(result.steps == steps);

    const Eigen::MatrixXd ref =
        deis_test::reference_samples("samples/deis-exactcoef__" + method + "__o" + std::to_string(order) + "__" +
                                     grid_name + "__s" + std::to_string(steps) + ".csv");
    REQUIRE(ref.rows() == x.rows());
    REQUIRE(ref.cols() == x.cols());
    const double max_abs = (x - ref).cwiseAbs().maxCoeff();
    // The reference coefficients agree with ours to ~2e-13 relative and the samples are
    // O(4): after 10-20 steps the difference is ~1e-12 (measured 5.9e-13 at worst; the
    // README expects about 1e-10 of a correct implementation). 1e-9 is the bound required
    // of the library.
    CHECK(max_abs <= 1e-9);
}

TEST_CASE("float states agree with double states", "[samples][float]") {
    const deis::multistep_solver solver(ref_schedule, grid_of("t2", 10), plain_options(deis::multistep_method::tab, 3));
    const deis::gmm_eps<deis::vp_linear> net(mixture(), ref_schedule);

    deis::state<double> xd = x_T();
    deis::state<float> xf = x_T().cast<float>();
    REQUIRE(solver.sample(net, xd).ok());
    REQUIRE(solver.sample(net, xf).ok());

    // Relative to the sample norm, over the whole batch: ||X_float - X_double||_F /
    // ||X_double||_F (the final samples sit near radius 4, so the norm is never small). Float
    // rounds every update (a few terms of size <= ~10 |x|) at 6e-8 relative, plus the input
    // and the coefficients once: ~1e-6 after 10 steps (measured 5.9e-7). 1e-5 is the bound
    // required.
    const double batch = (xf.cast<double>() - xd).norm() / xd.norm();
    CHECK(batch <= 1e-5);

    // Per sample, e_i = ||x_float_i - x_double_i|| / ||x_double_i||. The typical sample is
    // ~1e-7 (measured median 9e-8). A sample that ends between two components sits where the
    // flow amplifies every perturbation ~30-fold: rounding x_T alone to float moves the
    // double-precision result of the worst sample by 1.6e-6 relative. The worst e_i
    // (measured 1.1e-5) thus measures the problem's conditioning more than the solver; it
    // gets 10 times the batch bound.
    std::vector<double> e(std::size_t(xd.cols()));
    for (Eigen::Index i = 0; i < xd.cols(); ++i)
        e[std::size_t(i)] = (xf.col(i).cast<double>() - xd.col(i)).norm() / xd.col(i).norm();
    CHECK(deis_test::median(e) <= 1e-6);
    CHECK(*std::max_element(e.begin(), e.end()) <= 1e-4);
}

TEST_CASE("median errors at 10 steps reproduce the reference results table", "[samples]") {
    // DDIM is order 0 (deis-exactcoef t_ab o0 in the table); tAB order 3 on the same grid.
    const auto [m, order] =
        GENERATE(std::make_pair(deis::multistep_method::ddim, 0), std::make_pair(deis::multistep_method::tab, 3));
    CAPTURE(int(m), order);
    const deis::multistep_solver solver(ref_schedule, grid_of("t2", 10), plain_options(m, order));
    const deis::gmm_eps<deis::vp_linear> net(mixture(), ref_schedule);
    deis::state<double> x = x_T();
    REQUIRE(solver.sample(net, x).ok());

    const Eigen::MatrixXd exact = deis_test::reference_samples("gmm2d_exact.csv");
    const double ours = deis_test::median(deis_test::sample_errors(x, exact));
    const double ref = deis_test::reference_result("deis-exactcoef", "t_ab", order, "t2", 10, "median_err");
    CAPTURE(ours, ref);
    // The table prints 7 significant digits and our samples agree with the ones behind it to
    // ~1e-12: the medians agree to ~1e-6 relative. 1% only checks the error definition
    // (norm / sqrt(2), the median of 1000 values).
    CHECK(std::abs(ours - ref) <= 0.01 * ref);
}
