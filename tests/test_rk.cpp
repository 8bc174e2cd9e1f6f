// rhoRK-DEIS (rk.hpp): the official DEIS samples of its Runge-Kutta sampler, the order
// conditions of every built-in tableau, convergence slopes against the exact flow of
// Gaussian data, identities (Euler = DDIM, exact model-output conversions), the coefficient
// table, and bad input.
#include <algorithm>
#include <cmath>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support/csv_io.hpp"
#include "support.hpp"
#include "support/mixture_io.hpp"

namespace {

using deis_test::reference_mixture;
using deis_test::reference_samples;

// The reference problem: vp_linear defaults, T = 1, t_end = 1e-3.
using deis_test::ref_schedule;
using deis_test::T;
using deis_test::t_end;

// A network that counts its calls and, from call number `nan_from` on (1-based), returns NaN.
template <class Net>
struct counting {
    Net inner;
    int calls = 0;
    int nan_from = std::numeric_limits<int>::max();
    std::vector<double> times{};

    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) {
        ++calls;
        times.push_back(t);
        inner(x, t, out);
        if (calls >= nan_from) out(0, 0) = std::numeric_limits<Scalar>::quiet_NaN();
    }
};

// A single Gaussian N(mu, diag(s^2)) in 2-D: its exact eps is the network, gaussian_flow the
// oracle. The stds straddle 1 so that both growing and shrinking directions are tested.
struct single_gaussian {
    Eigen::VectorXd mu, s;
    deis::gmm_eps<deis::vp_linear> net;

    single_gaussian()
        : mu((Eigen::VectorXd(2) << 0.5, -1.0).finished()),
          s((Eigen::VectorXd(2) << 0.7, 1.3).finished()),
          net(deis::gaussian_mixture(Eigen::VectorXd::Ones(1), mu, s), ref_schedule) {}

    static Eigen::MatrixXd x_T() {
        Eigen::MatrixXd x(2, 4);
        x << 1.0, 2.0, -3.0, 0.3, -1.0, 0.5, 0.2, 2.5;
        return x;
    }

    Eigen::MatrixXd exact() const { return deis::gaussian_flow(ref_schedule, mu, s, x_T(), T, t_end); }
};

// Checks that f() throws std::invalid_argument with `part` in its message.
template <class F>
void check_invalid_argument(F&& f, const std::string& part) {
    std::string what = "(no std::invalid_argument)";
    try {
        f();
    } catch (const std::invalid_argument& e) {
        what = e.what();
    }
    INFO("message: " << what);
    CHECK(what.find(part) != std::string::npos);
}

// Max abs error at t_end of a run with `steps` steps of the quadratic grid.
template <class Tableau>
double error_at(const single_gaussian& g, int steps) {
    const deis::rk_solver<Tableau> solver(ref_schedule, deis::power_t_grid(ref_schedule, steps, T, t_end, 2.0));
    deis::state<double> x = single_gaussian::x_T();
    const auto r = solver.sample(g.net, x);
    REQUIRE(r.ok());
    return (x - g.exact()).cwiseAbs().maxCoeff();
}

// Observed order from the finest pair of the halving sequence 10, 20, 40, 80.
template <class Tableau>
double observed_slope(const single_gaussian& g, double& e_coarse, double& e_fine) {
    e_coarse = error_at<Tableau>(g, 40);
    e_fine = error_at<Tableau>(g, 80);
    return std::log2(e_coarse / e_fine);
}

}  // namespace

// ---- The official samples ---------------------------------------------------------------

TEST_CASE("rhoRK-DEIS reproduces the official samples of every reference file", "[rk][reference]") {
    const deis::gmm_eps<deis::vp_linear> net(reference_mixture(), ref_schedule);
    const Eigen::MatrixXd x_T = reference_samples("gmm2d_xT.csv");

    struct reference_case {
        const char* tableau;
        const char* file;
        bool log_grid;
        int steps;
    };
    const reference_case cases[] = {
        {"heun2", "samples/deis-official__rho_rk-2heun__o2__t2__s10.csv", false, 10},
        {"kutta3", "samples/deis-official__rho_rk-3kutta__o3__log__s7.csv", true, 7},
        {"kutta3", "samples/deis-official__rho_rk-3kutta__o3__t2__s5.csv", false, 5},
        {"rk4", "samples/deis-official__rho_rk-4rk__o4__t2__s5.csv", false, 5},
    };
    for (const auto& c : cases) {
        INFO(c.file);
        const auto grid = c.log_grid ? deis::log_rho_grid(ref_schedule, c.steps, T, t_end)
                                     : deis::power_t_grid(ref_schedule, c.steps, T, t_end, 2.0);
        const Eigen::MatrixXd expected = reference_samples(c.file);
        REQUIRE(expected.rows() == x_T.rows());
        REQUIRE(expected.cols() == x_T.cols());
        using deis::tableau::heun2, deis::tableau::kutta3, deis::tableau::rk4;  // the cases' tableaux
        deis_test::with_tableau_of<heun2, kutta3, rk4>(c.tableau, [&](auto tab) {
            using Tab = decltype(tab);
            const deis::rk_solver<Tab> solver(ref_schedule, grid);
            counting<const deis::gmm_eps<deis::vp_linear>&> counted{net};
            deis::state<double> x = x_T;
            const auto r = solver.sample(counted, x);
            REQUIRE(r.ok());
            CHECK(r.steps == c.steps);
            CHECK(r.nfe == Tab::stages * c.steps);
            CHECK(solver.nfe() == Tab::stages * c.steps);
            CHECK(counted.calls == r.nfe);
            const double diff = (x - expected).cwiseAbs().maxCoeff();
            INFO("max abs difference " << diff);
            // The official sampler steps on y = x/alpha and converts at the ends, computes
            // its stage times as t(rho(t)) round trips and its grid by linspace: all
            // differences of a few ulps, which the flow (|dx/dx_T| <~ 10 on this problem)
            // amplifies to ~1e-13. 1e-9 is the agreement the reference README promises.
            CHECK(diff < 1e-9);
            return 0;
        });
    }
}

// ---- The tableaux -----------------------------------------------------------------------

TEMPLATE_TEST_CASE("built-in tableaux satisfy the order conditions of their order, and not the next", "[rk][tableau]",
                   deis::tableau::euler, deis::tableau::heun2, deis::tableau::midpoint2, deis::tableau::kutta3,
                   deis::tableau::ral3, deis::tableau::heun3, deis::tableau::vdh3, deis::tableau::ssprk3,
                   deis::tableau::rk4) {
    using Tab = TestType;
    constexpr int S = Tab::stages;
    // Every tableau entry is a ratio of small integers rounded once; sums of at most 4
    // products of them are exact to a few ulps of 1.
    const double tol = 1e-15;

    // row sums: c_i = sum_j a_ij (the stage-time convention), and explicitness
    for (int i = 0; i < S; ++i) {
        double row = 0.0;
        for (int j = 0; j < S; ++j) {
            row += Tab::a[i][j];
            if (j >= i) CHECK(Tab::a[i][j] == 0.0);
        }
        CHECK(std::abs(row - Tab::c[i]) <= tol);
    }

    // Butcher's conditions: residual of each tree up to order 4 (and the bushy and tall
    // trees of order 5), with A c = (sum_j a_ij c_j)_i.
    auto dot_b = [&](auto f) {
        double s = 0.0;
        for (int i = 0; i < S; ++i) s += Tab::b[i] * f(i);
        return s;
    };
    auto Ac = [&](int i, auto g) {
        double s = 0.0;
        for (int j = 0; j < S; ++j) s += Tab::a[i][j] * g(j);
        return s;
    };
    auto c = [&](int i) { return Tab::c[i]; };
    auto c2 = [&](int i) { return Tab::c[i] * Tab::c[i]; };
    auto A_c = [&](int i) { return Ac(i, c); };
    auto A_c2 = [&](int i) { return Ac(i, c2); };
    auto A_A_c = [&](int i) { return Ac(i, A_c); };
    auto A_A_A_c = [&](int i) { return Ac(i, A_A_c); };

    // residuals by order
    std::vector<std::vector<double>> residual(6);
    residual[1] = {dot_b([](int) { return 1.0; }) - 1.0};
    residual[2] = {dot_b(c) - 1.0 / 2};
    residual[3] = {dot_b(c2) - 1.0 / 3, dot_b(A_c) - 1.0 / 6};
    residual[4] = {dot_b([&](int i) { return c2(i) * c(i); }) - 1.0 / 4,
                   dot_b([&](int i) { return c(i) * A_c(i); }) - 1.0 / 8, dot_b(A_c2) - 1.0 / 12,
                   dot_b(A_A_c) - 1.0 / 24};
    residual[5] = {dot_b([&](int i) { return c2(i) * c2(i); }) - 1.0 / 5, dot_b(A_A_A_c) - 1.0 / 120};

    for (int p = 1; p <= Tab::order; ++p)
        for (double r : residual[std::size_t(p)]) {
            INFO(Tab::name << ": order " << p << " residual " << r);
            CHECK(std::abs(r) <= tol);
        }
    // the claimed order is the true order: some condition of the next order fails clearly
    double worst_next = 0.0;
    for (double r : residual[std::size_t(Tab::order + 1)]) worst_next = std::max(worst_next, std::abs(r));
    INFO(Tab::name << ": largest residual of order " << Tab::order + 1 << " is " << worst_next);
    CHECK(worst_next > 1e-3);
}

TEST_CASE("with_tableau finds every built-in tableau by its name and rejects unknown names", "[rk][tableau]") {
    for (const char* name : deis::tableau_names()) {
        const std::string found = deis::with_tableau(name, [](auto t) { return std::string(decltype(t)::name); });
        CHECK(found == name);
    }
    int called = 0;
    try {
        deis::with_tableau("rk5", [&](auto) { return ++called; });
        FAIL("no exception for an unknown tableau");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(what.find("\"rk5\"") != std::string::npos);
        for (const char* name : deis::tableau_names()) CHECK(what.find(name) != std::string::npos);
    }
    CHECK(called == 0);
}

// ---- Convergence on Gaussian data -------------------------------------------------------

TEST_CASE("heun2, kutta3 and rk4 converge at their orders on Gaussian data", "[rk][convergence]") {
    // For Gaussian data the ODE's solution is smooth in rho, so the error at t_end behaves
    // like C h^p once h is small; on the quadratic grid 40 -> 80 steps is asymptotic for
    // every tableau (the 10 -> 20 pair is not, e.g. for kutta3). The errors stay above
    // 1e-6, eight orders above round-off, so the slope is not polluted by it. Bands of
    // +-10% of the order, as is usual for observed orders from one pair.
    const single_gaussian g;
    double e40 = 0, e80 = 0;
    double slope = observed_slope<deis::tableau::heun2>(g, e40, e80);
    INFO("heun2: errors " << e40 << ", " << e80 << ", slope " << slope);
    CHECK(e80 > 1e-6);
    CHECK(slope >= 1.8);
    CHECK(slope <= 2.2);

    slope = observed_slope<deis::tableau::kutta3>(g, e40, e80);
    INFO("kutta3: errors " << e40 << ", " << e80 << ", slope " << slope);
    CHECK(e80 > 1e-6);
    CHECK(slope >= 2.7);
    CHECK(slope <= 3.3);

    slope = observed_slope<deis::tableau::rk4>(g, e40, e80);
    INFO("rk4: errors " << e40 << ", " << e80 << ", slope " << slope);
    CHECK(e80 > 1e-7);
    CHECK(slope >= 3.6);
    CHECK(slope <= 4.4);
}

TEMPLATE_TEST_CASE("every built-in tableau's observed slope is near its order", "[rk][convergence]",
                   deis::tableau::euler, deis::tableau::heun2, deis::tableau::midpoint2, deis::tableau::kutta3,
                   deis::tableau::ral3, deis::tableau::heun3, deis::tableau::vdh3, deis::tableau::ssprk3,
                   deis::tableau::rk4) {
    using Tab = TestType;
    // Expected slope: the order, except for the explicit midpoint rule. On single-Gaussian
    // data the ODE is y' = f(rho) (y - mu) componentwise with f = rho/(s^2 + rho^2), and the
    // h^3 term of the midpoint rule's local error is (f''/24 + f f'/4 + f^3/6) h^3 (y - mu),
    // which vanishes identically for this f (put q = s^2 + rho^2: f' = (s^2 - rho^2)/q^2,
    // f'' = (2 rho^3 - 6 rho s^2)/q^3, and the three terms sum to 0). So midpoint2, of order
    // 2 in general (its order-3 residual b.c^2 - 1/3 = -1/12, checked above), converges at
    // order 3 here.
    const bool midpoint = std::string(Tab::name) == "midpoint2";
    const double expected = midpoint ? 3.0 : double(Tab::order);
    const single_gaussian g;
    double e40 = 0, e80 = 0;
    const double slope = observed_slope<Tab>(g, e40, e80);
    INFO(Tab::name << ": errors " << e40 << " (40 steps), " << e80 << " (80 steps), slope " << slope);
    CHECK(e80 > 1e-7);  // far above round-off (~1e-14)
    CHECK(slope >= 0.9 * expected);
    CHECK(slope <= 1.1 * expected);
}

// ---- Identities -------------------------------------------------------------------------

TEST_CASE("rhoRK with the Euler tableau is DDIM", "[rk][identity]") {
    const single_gaussian g;
    const auto grid = deis::power_t_grid(ref_schedule, 12, T, t_end, 2.0);
    const deis::rk_solver<deis::tableau::euler> euler(ref_schedule, grid);
    deis::multistep_options o;
    o.method = deis::multistep_method::ddim;
    const deis::multistep_solver ddim(ref_schedule, grid, o);
    for (int k = 0; k < euler.steps(); ++k) {
        const auto& e = euler.table()[std::size_t(k)];
        const auto& d = ddim.table()[std::size_t(k)];
        // both are alpha_{k+1}/alpha_k and alpha_{k+1} (rho_{k+1} - rho_k), computed the same way
        CHECK(e.x_coef == Approx(d.x_coef).epsilon(1e-15));
        CHECK(e.b_c[0] == Approx(d.c[0]).epsilon(1e-15));
    }
    deis::state<double> x1 = single_gaussian::x_T(), x2 = x1;
    REQUIRE(euler.sample(g.net, x1).ok());
    REQUIRE(ddim.sample(g.net, x2).ok());
    // 12 steps of equal arithmetic: a few ulps of |x| ~ 3
    CHECK((x1 - x2).cwiseAbs().maxCoeff() < 1e-13);
}

TEST_CASE("the coefficient table follows the tableau", "[rk][table]") {
    const auto grid = deis::log_rho_grid(ref_schedule, 6, T, t_end);
    const deis::rk_solver<deis::tableau::vdh3> solver(ref_schedule, grid);
    using Tab = deis::tableau::vdh3;
    REQUIRE(solver.table().size() == 6);
    for (int k = 0; k < solver.steps(); ++k) {
        const auto& row = solver.table()[std::size_t(k)];
        CHECK(row.t_from == grid[std::size_t(k)]);
        CHECK(row.t_to == grid[std::size_t(k) + 1]);
        const double rho0 = ref_schedule.rho(row.t_from), rho1 = ref_schedule.rho(row.t_to);
        const double a0 = ref_schedule.alpha(row.t_from), a1 = ref_schedule.alpha(row.t_to);
        CHECK(row.h == Approx(rho1 - rho0).epsilon(1e-15));
        CHECK(row.x_coef == Approx(a1 / a0).epsilon(1e-15));
        CHECK(row.stage_t[0] == row.t_from);
        for (int i = 0; i < Tab::stages; ++i) {
            const auto iu = std::size_t(i);
            const double t = row.stage_t[iu];
            CHECK(t <= row.t_from);
            CHECK(t >= row.t_to);
            // the stage sits at rho_k + c_i h: t_from_rho is exact to a few ulps
            CHECK(ref_schedule.rho(t) == Approx(rho0 + Tab::c[i] * row.h).epsilon(1e-13));
            const double ai = ref_schedule.alpha(t);
            CHECK(row.stage_x_coef[iu] == Approx(ai / a0).epsilon(1e-14));
            for (int j = 0; j < i; ++j)
                CHECK(row.stage_c[iu][std::size_t(j)] == Approx(ai * row.h * Tab::a[i][j]).epsilon(1e-14));
            CHECK(row.b_c[iu] == Approx(a1 * row.h * Tab::b[i]).epsilon(1e-14));
        }
    }
}

TEST_CASE("rhoRK calls the network once per stage, at the stage times, ending at t_end", "[rk][nfe]") {
    const single_gaussian g;
    const auto grid = deis::power_t_grid(ref_schedule, 3, T, t_end, 2.0);
    const deis::rk_solver<deis::tableau::rk4> solver(ref_schedule, grid);
    counting<const deis::gmm_eps<deis::vp_linear>&> counted{g.net};
    deis::state<double> x = single_gaussian::x_T();
    const auto r = solver.sample(counted, x);
    REQUIRE(r.ok());
    CHECK(r.nfe == 12);
    CHECK(r.steps == 3);
    REQUIRE(counted.times.size() == 12);
    for (std::size_t k = 0; k < 3; ++k)
        for (std::size_t i = 0; i < 4; ++i) CHECK(counted.times[4 * k + i] == solver.table()[k].stage_t[i]);
    // rk4's last stage (c = 1) of the last step is at t_end exactly, with no reuse
    CHECK(counted.times.back() == t_end);
    CHECK(counted.times[3] == grid[1]);
    CHECK(counted.times[4] == grid[1]);
}

TEST_CASE("rhoRK accepts every model output and float states", "[rk][output]") {
    const single_gaussian g;
    const auto grid = deis::power_t_grid(ref_schedule, 8, T, t_end, 2.0);
    const deis::rk_solver<deis::tableau::kutta3> eps_solver(ref_schedule, grid);
    deis::state<double> x_eps = single_gaussian::x_T();
    REQUIRE(eps_solver.sample(g.net, x_eps).ok());

    // the same network expressed as the score and as x0
    auto score_net = [&](const deis::state<double>& x, double t, deis::state<double>& out) {
        g.net(x, t, out);
        out /= -ref_schedule.sigma(t);
    };
    auto x0_net = [&](const deis::state<double>& x, double t, deis::state<double>& out) {
        g.net(x, t, out);
        out = (x - ref_schedule.sigma(t) * out) / ref_schedule.alpha(t);
    };
    deis::rk_options o;
    o.output = deis::model_output::score;
    const deis::rk_solver<deis::tableau::kutta3> score_solver(ref_schedule, grid, o);
    deis::state<double> x_score = single_gaussian::x_T();
    REQUIRE(score_solver.sample(score_net, x_score).ok());
    // -sigma * (-eps/sigma): a few ulps per call, 24 calls
    CHECK((x_score - x_eps).cwiseAbs().maxCoeff() < 1e-13);

    o.output = deis::model_output::x0;
    const deis::rk_solver<deis::tableau::kutta3> x0_solver(ref_schedule, grid, o);
    deis::state<double> x_x0 = single_gaussian::x_T();
    REQUIRE(x0_solver.sample(x0_net, x_x0).ok());
    // eps = (x - alpha x0)/sigma cancels: relative round-off of x (~1e-16 * 3) times
    // 1/sigma (<= 1/sigma(t_end) ~ 22) per call, times alpha h ~ sigma per use
    CHECK((x_x0 - x_eps).cwiseAbs().maxCoeff() < 1e-12);

    // float states: coefficients rounded once to float, the network computes in double
    deis::state<float> xf = single_gaussian::x_T().cast<float>();
    REQUIRE(eps_solver.sample(g.net, xf).ok());
    // 24 stage updates with float round-off (6e-8 relative of |x| ~ 3)
    CHECK((xf.cast<double>() - x_eps).cwiseAbs().maxCoeff() < 1e-5);
}

TEST_CASE("a workspace is reused across runs and gives the same result", "[rk][workspace]") {
    const single_gaussian g;
    const auto grid = deis::power_t_grid(ref_schedule, 6, T, t_end, 2.0);
    const deis::rk_solver<deis::tableau::ssprk3> solver(ref_schedule, grid);
    deis::rk_workspace<double> ws(solver, 2, 4);
    CHECK(ws.size() == 4);  // one output per stage and the stage state
    deis::state<double> a = single_gaussian::x_T(), b = a, c = a;
    REQUIRE(solver.sample(g.net, a, ws).ok());
    REQUIRE(solver.sample(g.net, b, ws).ok());
    REQUIRE(solver.sample(g.net, c).ok());
    CHECK(a == b);
    CHECK(a == c);
}

// ---- Bad input and failed runs ----------------------------------------------------------

TEST_CASE("rk_solver rejects bad grids", "[rk][bad-input]") {
    using solver = deis::rk_solver<deis::tableau::heun2>;
    CHECK_THROWS_AS(solver(ref_schedule, {1.0}), std::invalid_argument);
    CHECK_THROWS_AS(solver(ref_schedule, {1.0, 0.5, 0.6}), std::invalid_argument);
    CHECK_THROWS_AS(solver(ref_schedule, {1.5, 0.5}), std::invalid_argument);  // beyond t_max = 1
    CHECK_THROWS_AS(solver(ref_schedule, {1.0, std::nan(""), 0.1}), std::invalid_argument);
    CHECK_THROWS_AS(solver(ref_schedule, {0.5, 0.0, 0.2}), std::invalid_argument);  // rho(0) = 0 inside
    // rho = inf (alpha = 0) at the start: rhoRK integrates in rho
    check_invalid_argument([&] { (void)solver(deis::flow_matching(), {1.0, 0.5, 0.1}); }, "alpha = 0");
    check_invalid_argument([&] { (void)solver(ref_schedule, {1.0, 0.5, 0.6}); }, "t[2]");
}

TEST_CASE("rk_solver::sample validates before any network call and leaves x untouched", "[rk][bad-input]") {
    const single_gaussian g;
    const auto grid = deis::power_t_grid(ref_schedule, 4, T, t_end, 2.0);
    const deis::rk_solver<deis::tableau::rk4> solver(ref_schedule, grid);
    counting<const deis::gmm_eps<deis::vp_linear>&> counted{g.net};

    SECTION("NaN in x") {
        deis::state<double> x = single_gaussian::x_T();
        x(1, 2) = std::nan("");
        const deis::state<double> before = x;
        check_invalid_argument([&] { (void)solver.sample(counted, x); }, "x(1, 2)");
        CHECK(counted.calls == 0);
        CHECK(std::isnan(x(1, 2)));
        x(1, 2) = 0.0;
        deis::state<double> b2 = before;
        b2(1, 2) = 0.0;
        CHECK(x == b2);
    }
    SECTION("empty x") {
        deis::state<double> x(2, 0);
        CHECK_THROWS_AS(solver.sample(counted, x), std::invalid_argument);
        CHECK(counted.calls == 0);
    }
    SECTION("workspace of another shape") {
        deis::rk_workspace<double> ws(solver, 2, 3);
        deis::state<double> x = single_gaussian::x_T();
        const deis::state<double> before = x;
        check_invalid_argument([&] { (void)solver.sample(counted, x, ws); }, "workspace");
        CHECK(counted.calls == 0);
        CHECK(x == before);
    }
    SECTION("workspace with too few buffers (made for a solver with fewer stages)") {
        const deis::rk_solver<deis::tableau::euler> euler(ref_schedule, grid);
        deis::rk_workspace<double> ws(euler, 2, 4);
        deis::state<double> x = single_gaussian::x_T();
        const deis::state<double> before = x;
        // rk4: one output per stage and the stage state, 5 buffers; euler's workspace has 1
        check_invalid_argument([&] { (void)solver.sample(counted, x, ws); }, "(5 buffers)");
        CHECK(counted.calls == 0);
        CHECK(x == before);
    }
    SECTION("empty workspace shape") {
        check_invalid_argument([&] { (void)deis::rk_workspace<double>(solver, 0, 4); }, "shape = 0x4");
    }
}

TEST_CASE("a non-finite network output stops the run at the start of the failed step", "[rk][failure]") {
    const single_gaussian g;
    const auto grid = deis::power_t_grid(ref_schedule, 5, T, t_end, 2.0);
    const deis::rk_solver<deis::tableau::kutta3> solver(ref_schedule, grid);

    SECTION("in the middle of a step") {
        // call 8 is step 2 (calls 7, 8, 9), stage 1
        counting<const deis::gmm_eps<deis::vp_linear>&> counted{g.net};
        counted.nan_from = 8;
        deis::state<double> x = single_gaussian::x_T();
        const auto r = solver.sample(counted, x);
        CHECK_FALSE(r.ok());
        CHECK(r.status == deis::status::non_finite_output);
        CHECK(r.nfe == 8);
        CHECK(counted.calls == 8);
        CHECK(r.steps == 2);
        CHECK(r.failed_time == solver.table()[2].stage_t[1]);
        // x is the state after two complete steps: the same arithmetic as a run on the
        // first three grid points, hence bitwise equal
        const deis::rk_solver<deis::tableau::kutta3> prefix(ref_schedule, {grid[0], grid[1], grid[2]});
        deis::state<double> y = single_gaussian::x_T();
        REQUIRE(prefix.sample(g.net, y).ok());
        CHECK(x == y);
        CHECK(x.allFinite());
    }
    SECTION("at the first call") {
        counting<const deis::gmm_eps<deis::vp_linear>&> counted{g.net};
        counted.nan_from = 1;
        deis::state<double> x = single_gaussian::x_T();
        const auto r = solver.sample(counted, x);
        CHECK(r.status == deis::status::non_finite_output);
        CHECK(r.nfe == 1);
        CHECK(r.steps == 0);
        CHECK(r.failed_time == T);
        CHECK(x == single_gaussian::x_T());
    }
    SECTION("at the last call") {
        counting<const deis::gmm_eps<deis::vp_linear>&> counted{g.net};
        counted.nan_from = solver.nfe();
        deis::state<double> x = single_gaussian::x_T();
        const auto r = solver.sample(counted, x);
        CHECK(r.status == deis::status::non_finite_output);
        CHECK(r.nfe == 15);
        CHECK(r.steps == 4);
        CHECK(r.failed_time == t_end);  // kutta3's c_3 = 1 on the last step
    }
    SECTION("a network that resizes its output") {
        auto bad = [](const deis::state<double>& x, double, deis::state<double>& out) {
            out.setZero(x.rows() + 1, x.cols());
        };
        deis::state<double> x = single_gaussian::x_T();
        const auto r = solver.sample(bad, x);
        CHECK(r.status == deis::status::bad_output_shape);
        CHECK(r.nfe == 1);
        CHECK(r.steps == 0);
        CHECK(x == single_gaussian::x_T());
    }
}
