// The stepper (stepper.hpp): misuse (advance after the run, outputs of another shape or not
// finite, a workspace that does not fit), a refused output leaving the run as it was, the
// timestep of a discrete schedule, configurations by name, and the Heun sampler of Karras et
// al. (rk:heun2 with final_euler) against an independent implementation. That the stepper
// equals sample() bit for bit on every backend is in the conformance suite (conformance.hpp).
#include <cmath>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace stepper_test {

using mat = deis::state<double>;

struct ring {
    deis::vp_linear schedule{};
    deis::gmm_eps<deis::vp_linear> eps{deis_test::reference_mixture(), schedule};
    std::vector<double> grid = deis::power_t_grid(schedule, 8, 1.0, 1e-3, 2.0);
    mat x_T = deis_test::reference_samples("gmm2d_xT.csv").leftCols(30);
};

// Runs a stepper to the end with net; returns its nfe.
template <class Solver, class Net>
int drive(const Solver& solver, mat& x, Net& net) {
    deis::stepper st(solver, x);
    mat out(x.rows(), x.cols());
    while (!st.done()) {
        net(st.input(), st.time(), out);
        REQUIRE(st.advance(out) == deis::status::success);
    }
    return st.nfe();
}

}  // namespace stepper_test

using stepper_test::mat;
using stepper_test::ring;

TEST_CASE("stepper: every configuration name gives sample()'s samples, bit for bit", "[stepper]") {
    const ring p;
    for (const char* name : {"tab3+data+corrector", "tab3", "rhoab3", "rhoab2+data+corrector", "ipndm3", "ddim",
                             "ddim+eta=1", "tab2+sde", "tab1+data+final=1:0", "recommended", "rk:heun2", "rk:rk4",
                             "rk:kutta3", "dpmpp_2m", "dpmpp_3m", "uni_pc", "uni_pc_bh2+order=2", "deis", "euler",
                             "ipndm", "heun"}) {
        CAPTURE(name);
        using deis::tableau::heun2, deis::tableau::kutta3, deis::tableau::rk4;  // the names' tableaux
        deis_test::with_solver_of<heun2, kutta3, rk4>(deis::parse_solver_config(name), p.schedule, p.grid,
                                                        [&](const auto& solver) {
            mat a = p.x_T, b = p.x_T;
            const deis::sample_result r = solver.sample(p.eps, a);
            REQUIRE(r.ok());
            CHECK(stepper_test::drive(solver, b, p.eps) == r.nfe);
            CHECK(a == b);
        });
    }
}

TEST_CASE("stepper: input, time, step and the counts follow the run", "[stepper]") {
    const ring p;
    const deis::rk_solver<deis::tableau::heun2> solver(p.schedule, p.grid);
    mat x = p.x_T, out(x.rows(), x.cols());
    deis::stepper st(solver, x);
    CHECK(st.steps() == 8);
    int calls = 0;
    while (!st.done()) {
        CHECK(st.step() == calls / 2);
        CHECK(st.stage() == calls % 2);
        CHECK(st.time() == solver.table()[std::size_t(st.step())].stage_t[std::size_t(st.stage())]);
        if (st.stage() == 0) CHECK(&st.input() == &x);  // the grid-time call is made at x itself
        p.eps(st.input(), st.time(), out);
        REQUIRE(st.advance(out) == deis::status::success);
        ++calls;
        CHECK(st.nfe() == calls);
    }
    CHECK(calls == solver.nfe());
    CHECK(st.result().steps == 8);
    CHECK(st.result().nfe == 16);
    CHECK(st.time() == p.grid.back());
}

TEST_CASE("stepper: data_prediction at every Runge-Kutta stage is the output's x0 there", "[stepper]") {
    const ring p;
    const deis::rk_solver<deis::tableau::rk4> solver(p.schedule, p.grid);
    mat x = p.x_T, out(x.rows(), x.cols()), x0 = out;
    deis::stepper st(solver, x);
    while (!st.done()) {
        p.eps(st.input(), st.time(), out);
        st.data_prediction(out, x0);
        const double a = p.schedule.alpha(st.time()), s = p.schedule.sigma(st.time());
        const mat want = (st.input() - s * out) / a;
        // alpha and rho of a stage come from the step's coefficients, not from the schedule at
        // the stage time: a few roundings, amplified by 1/alpha (<= 150 on this grid)
        CAPTURE(st.step(), st.stage());
        CHECK((x0 - want).cwiseAbs().maxCoeff() <= 1e-12 * (1.0 + want.cwiseAbs().maxCoeff()));
        REQUIRE(st.advance(out) == deis::status::success);
    }
}

TEST_CASE("stepper: a refused output changes nothing, and the run goes on to sample()'s result", "[stepper]") {
    const ring p;
    const deis::multistep_solver multistep(p.schedule, p.grid, deis::parse_multistep("tab3+data+corrector"));
    const deis::rk_solver<deis::tableau::heun2> rk(p.schedule, p.grid);
    auto check = [&](const auto& solver) {
        {
            mat want = p.x_T;
            REQUIRE(solver.sample(p.eps, want).ok());
            mat x = p.x_T, out(x.rows(), x.cols());
            deis::stepper st(solver, x);
            int call = 0;
            while (!st.done()) {
                p.eps(st.input(), st.time(), out);
                if (call == 3) {
                    const mat before = x, input = st.input();
                    const double t = st.time();
                    mat bad = out;
                    bad(1, 4) = std::numeric_limits<double>::quiet_NaN();
                    CHECK(st.advance(bad) == deis::status::non_finite_output);
                    mat wide(x.rows(), x.cols() + 1);
                    wide.setZero();
                    CHECK(st.advance(wide) == deis::status::bad_output_shape);
                    // a network that resizes the stepper's own buffer
                    st.output().resize(3, 3);
                    st.output().setZero();
                    CHECK(st.advance() == deis::status::bad_output_shape);
                    CHECK(st.output().rows() == x.rows());
                    CHECK(st.output().cols() == x.cols());
                    CHECK(st.nfe() == 3);
                    CHECK(st.time() == t);
                    CHECK(st.input() == input);
                    CHECK(x == before);
                }
                REQUIRE(st.advance(out) == deis::status::success);
                ++call;
            }
            CHECK(x == want);
        }
    };
    check(multistep);
    check(rk);
}

TEST_CASE("stepper: advance after the run is an error, as are a bad state and workspace", "[stepper]") {
    const ring p;
    const deis::multistep_solver solver(p.schedule, p.grid, deis::parse_multistep("tab3"));
    mat x = p.x_T, out(x.rows(), x.cols());
    deis::stepper st(solver, x);
    while (!st.done()) {
        p.eps(st.input(), st.time(), out);
        REQUIRE(st.advance(out) == deis::status::success);
    }
    CHECK_THAT(deis_test::refusal<std::logic_error>([&] { (void)st.advance(out); }),
               deis_test::contains("the run is complete (8 steps)"));
    CHECK_THROWS_AS((void)st.advance(), std::logic_error);
    CHECK_THROWS_AS(st.data_prediction(out, out), std::logic_error);

    mat nan = p.x_T;
    nan(0, 2) = std::numeric_limits<double>::infinity();
    CHECK_THAT(deis_test::refusal([&] { deis::stepper st2(solver, nan); }), deis_test::contains("deis::stepper"));
    mat small = p.x_T.leftCols(5);
    deis::workspace<double> ws(solver, small);
    mat y = p.x_T;
    CHECK_THAT(deis_test::refusal([&] { deis::stepper st3(solver, y, ws); }), deis_test::contains("does not fit"));
    CHECK(y == p.x_T);
}

TEST_CASE("stepper: a workspace of the caller's, and the noise of a stochastic run", "[stepper]") {
    const ring p;
    const deis::multistep_solver solver(p.schedule, p.grid, deis::parse_multistep("ddim+eta=1"));
    mat a = p.x_T, b = p.x_T, c = p.x_T, out(a.rows(), a.cols());
    deis::workspace<double> ws(solver, a);
    REQUIRE(solver.sample(p.eps, a, ws, deis::detail::no_observer{}, deis::gaussian_noise(11)).ok());
    deis::stepper st(solver, b, ws, deis::gaussian_noise(11));
    while (!st.done()) {
        p.eps(st.input(), st.time(), out);
        REQUIRE(st.advance(out) == deis::status::success);
    }
    CHECK(a == b);
    // the default noise is the solver's seed, as in sample()
    mat d = p.x_T;
    REQUIRE(solver.sample(p.eps, d).ok());
    stepper_test::drive(solver, c, p.eps);
    CHECK(c == d);
    CHECK(c != a);  // another seed, other samples
}

TEST_CASE("stepper: timestep() maps the time to a discrete network's timestep", "[stepper]") {
    const deis::vp_discrete schedule = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    const std::vector<double> grid =
        deis::discrete_grid(schedule, deis::timestep_spacing::leading, deis::timestep_family::ddim, 10, 1);
    const deis::multistep_solver solver(schedule, grid, deis::parse_multistep("ddim"));
    mat x = mat::Ones(4, 3);
    deis::stepper st(solver, x);
    const deis::timestep_map map = deis::discrete_timesteps(schedule);
    CHECK(st.timestep(map) == std::nearbyint(grid[0] * 1000 - 1));
    CHECK(st.timestep(map) == 901.0);  // leading spacing, 10 steps, offset 1: 900 + 1
}

TEST_CASE("stepper: heun (rk:heun2 with final_euler) is the Heun sampler of Karras et al.", "[stepper][rk]") {
    // k-diffusion's sample_heun on x0 = D(x, sigma), written here from the paper: d = (x - D)/sigma;
    // a step to sigma' = 0 is Euler, the others Heun's trapezoid.
    const deis::edm schedule(80.0);
    const deis::gmm_model<deis::edm> model(deis_test::reference_mixture(), schedule, deis::model_output::x0);
    std::vector<double> sigmas;
    const int n = 6;
    for (int i = 0; i < n; ++i) {
        const double r = double(i) / (n - 1);
        sigmas.push_back(std::pow(std::pow(80.0, 1 / 7.0) + r * (std::pow(0.002, 1 / 7.0) - std::pow(80.0, 1 / 7.0)), 7.0));
    }
    sigmas.push_back(0.0);
    const mat x_T = 80.0 * deis_test::reference_samples("gmm2d_xT.csv").leftCols(20);

    mat want = x_T, d(want.rows(), want.cols()), d2 = d, den = d;
    int calls = 0;
    for (std::size_t i = 0; i + 1 < sigmas.size(); ++i) {
        const double s = sigmas[i], sn = sigmas[i + 1];
        model(want, s, den);
        ++calls;
        d = (want - den) / s;
        if (sn == 0.0) {
            want += (sn - s) * d;
            continue;
        }
        const mat x2 = want + (sn - s) * d;
        model(x2, sn, den);
        ++calls;
        d2 = (x2 - den) / sn;
        want += (sn - s) * 0.5 * (d + d2);
    }

    deis::solver_config c;
    c.kind = deis::solver_kind::runge_kutta;
    c.tableau = "heun2";
    c.rk.output = deis::model_output::x0;
    c.rk.final_euler = true;
    CHECK(deis::to_string(c) == "heun");
    {
        const deis::rk_solver<deis::tableau::heun2> solver(schedule, sigmas, c.rk);
        CHECK(solver.nfe() == 2 * n - 1);
        CHECK(solver.nfe() == calls);
        mat x = x_T, y = x_T;
        const deis::sample_result r = solver.sample(model, x);
        REQUIRE(r.ok());
        CHECK(r.nfe == calls);
        // the same arithmetic in another order (y/alpha, eps from x0, rho = sigma): a few
        // roundings per step on values of size 80
        CHECK((x - want).cwiseAbs().maxCoeff() <= 1e-12 * (1.0 + want.cwiseAbs().maxCoeff()));
        CHECK(stepper_test::drive(solver, y, model) == calls);
        CHECK(x == y);
    }
    // without final_euler the last step's second stage would call the network at sigma = 0,
    // where x0 does not determine eps: refused
    c.rk.final_euler = false;
    CHECK_THAT(deis_test::refusal([&] { deis::rk_solver<deis::tableau::heun2> solver(schedule, sigmas, c.rk); }),
               deis_test::contains("does not determine eps"));
}
