// No success with garbage: a solver refuses, when it is built, a coefficient table that would
// make its results meaningless (deis/detail/step_checks.hpp), and the forms it accepts stay
// accurate at the edges of the schedules' ranges (VP-linear beta_max 1000, VE sigma_max 1e8).
#include <Eigen/Core>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support.hpp"

namespace step_checks_test {


// A single Gaussian N(mu, diag(s^2)): its exact eps is the network, gaussian_flow the oracle.
struct gaussian {
    Eigen::VectorXd mu = (Eigen::VectorXd(2) << 0.5, -1.0).finished();
    Eigen::VectorXd s = (Eigen::VectorXd(2) << 0.7, 1.3).finished();
    deis::gaussian_mixture mixture() const { return deis::gaussian_mixture(Eigen::VectorXd::Ones(1), mu, s); }
    static Eigen::MatrixXd x_T(double scale) {
        Eigen::MatrixXd x(2, 3);
        x << 1.0, 2.0, -3.0, -1.0, 0.5, 0.2;
        return scale * x;
    }
};

// Max abs error at the grid's end of a run from x_T(scale) with `options`.
template <class Schedule>
double max_error(const Schedule& sch, const std::vector<double>& grid, const deis::multistep_options& options,
                 double scale) {
    const gaussian g;
    const deis::multistep_solver solver(sch, grid, options);
    const deis::gmm_eps<Schedule> net(g.mixture(), sch);
    Eigen::MatrixXd x = gaussian::x_T(scale);
    REQUIRE(solver.sample(net, x).ok());
    return (x - deis::gaussian_flow(sch, g.mu, g.s, gaussian::x_T(scale), grid.front(), grid.back()))
        .cwiseAbs()
        .maxCoeff();
}

}  // namespace step_checks_test

TEST_CASE("a grid whose points are 1e-15 apart is refused for extrapolation, not for DDIM", "[numerics][grid]") {
    const deis::vp_linear sch;
    const std::vector<double> grid = {1.0, 0.5, 0.5 - 1e-15, 0.2, 1e-3};
    // order 0 (DDIM): one weight per step, nothing to amplify
    CHECK(deis_test::refusal([&] { deis::multistep_solver(sch, grid, deis::parse_multistep("tab0")); }).empty());
    for (int order = 1; order <= 3; ++order) {
        CAPTURE(order);
        // without the check these weights reach 2.5e14-3.3e14 and the run reports success
        const std::string what = deis_test::refusal([&] { deis::multistep_solver(sch, grid, deis::parse_multistep("tab" + std::to_string(order))); });
        CHECK_THAT(what, deis_test::contains("step 2 (t = 0.499999999999999 -> 0.20000000000000001)"));
        CHECK_THAT(what, deis_test::contains("too close together"));
        CHECK_THAT(deis_test::refusal([&] { deis::multistep_solver(sch, grid, deis::parse_multistep("tab" + std::to_string(order) + "+data")); }),
                   deis_test::contains("too close together"));
    }
}

TEST_CASE("noise prediction is refused where alpha grows by more than 1e8 along the grid", "[numerics][schedule]") {
    for (const double beta_max : {300.0, 1000.0}) {
        CAPTURE(beta_max);
        const deis::vp_linear sch(0.1, beta_max);
        const auto grid = deis::power_t_grid(sch, 20, 1.0, 1e-3, 2.0);
        // without the check: tAB3 ended 4.9e6 (beta_max 300) and 3.7e78 (1000) from the
        // exact solution, with status success
        for (const auto m : {deis::multistep_method::ddim, deis::multistep_method::tab, deis::multistep_method::rhoab,
                             deis::multistep_method::ipndm}) {
            deis::multistep_options o = deis::parse_multistep(m == deis::multistep_method::ddim ? "ddim" : "tab3");
            o.method = m;
            CAPTURE(int(m));
            CHECK_THAT(deis_test::refusal([&] { deis::multistep_solver(sch, grid, o); }),
                       deis_test::contains("use data prediction"));
        }
        CHECK_THAT(deis_test::refusal([&] { deis::rk_solver<deis::tableau::heun2>(sch, grid); }),
                   deis_test::contains("use data prediction"));
    }
    // the default schedule, whose alpha grows by 150 from t = 1 to 1e-3, is accepted
    CHECK(deis_test::refusal([] {
              const deis::vp_linear sch;
              deis::multistep_solver(sch, deis::power_t_grid(sch, 10, 1.0, 1e-3, 2.0), deis::parse_multistep("tab3"));
          }).empty());
}

TEST_CASE("data prediction stays accurate at beta_max = 1000: the error falls with the steps", "[numerics][schedule]") {
    const deis::vp_linear sch(0.1, 1000.0);
    const auto o = deis::parse_multistep("tab3+data");
    const double e20 = step_checks_test::max_error(sch, deis::power_t_grid(sch, 20, 1.0, 1e-3, 2.0), o, 1.0);
    const double e50 = step_checks_test::max_error(sch, deis::power_t_grid(sch, 50, 1.0, 1e-3, 2.0), o, 1.0);
    const double e200 = step_checks_test::max_error(sch, deis::power_t_grid(sch, 200, 1.0, 1e-3, 2.0), o, 1.0);
    CAPTURE(e20, e50, e200);
    // measured 7.7e-2, 1.9e-3, 7.1e-6 at 20, 50, 200 steps: fast convergence once the steps
    // resolve the schedule; a broken table gives errors of 1 or more and no decrease
    CHECK(e50 < 0.1 * e20);
    CHECK(e200 < 0.05 * e50);
    CHECK(e200 < 1e-4);
}

TEST_CASE("VE with sigma_max = 1e8 keeps noise prediction accurate: the error falls with the steps", "[numerics][schedule]") {
    const deis::ve sch(0.01, 1e8);
    const auto o = deis::parse_multistep("tab3");
    const double e20 = step_checks_test::max_error(sch, deis::log_rho_grid(sch, 20, 1.0, 0.0), o, 1e8);
    const double e50 = step_checks_test::max_error(sch, deis::log_rho_grid(sch, 50, 1.0, 0.0), o, 1e8);
    const double e200 = step_checks_test::max_error(sch, deis::log_rho_grid(sch, 200, 1.0, 0.0), o, 1e8);
    CAPTURE(e20, e50, e200);
    // measured 6.6e-3, 2.1e-3, 1.5e-5 at 20, 50, 200 steps (data of size 1 under noise of 1e8)
    CHECK(e50 < 0.5 * e20);
    CHECK(e200 < 0.1 * e50);
}

#ifdef DEIS_SAMPLE_EXE
#include "cli_support.hpp"

TEST_CASE("deis-sample --beta-max 1000: noise prediction is refused with no output, data prediction runs",
          "[cli][numerics]") {
    using namespace deis_cli_test;
    scratch s;
    inputs in(s);
    // without the check: exit 0 and samples of size 1e78
    const args_t b = add(set(in.base(), "--steps", "20"), {"--beta-max", "1000"});
    require_failure(run_program(b), exit_usage, {"alpha", "use data prediction"});
    CHECK(s.out_files().empty());
    require_success(run_program(add(b, {"--predict", "data"})), 20);
    CHECK(read(s.out_path()).allFinite());
}
#endif
