// The multistep solvers' warm start and their lower order on the last steps
// (multistep_options::final_steps, final_order): the order of every step, the coefficients
// of the reduced steps, and the network calls.
#include <algorithm>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <string>
#include <vector>

#include "catch.hpp"

namespace {

const deis::vp_linear schedule{};

deis::multistep_options make(deis::multistep_method m, int order, int final_steps = 0, int final_order = 1) {
    deis::multistep_options o;
    o.method = m;
    o.order = order;
    o.final_steps = final_steps;
    o.final_order = final_order;
    return o;
}

const char* method_name(deis::multistep_method m) {
    switch (m) {
        case deis::multistep_method::ddim:
            return "ddim";
        case deis::multistep_method::tab:
            return "tab";
        case deis::multistep_method::rhoab:
            return "rhoab";
        case deis::multistep_method::ipndm:
            return "ipndm";
        default:  // the presets
            break;
    }
    return "?";
}

}  // namespace

TEST_CASE("step k uses order min(k, order), and min(that, final_order) on the last final_steps steps",
          "[multistep][options]") {
    const int n = 8;
    const auto grid = deis::power_t_grid(schedule, n, 1.0, 1e-3, 2.0);
    for (auto m : {deis::multistep_method::tab, deis::multistep_method::rhoab, deis::multistep_method::ipndm}) {
        for (int order = 0; order <= 3; ++order) {
            for (int final_steps : {0, 1, 2, 3, n, n + 5}) {
                for (int final_order = 0; final_order <= 3; ++final_order) {
                    const deis::multistep_solver s(schedule, grid, make(m, order, final_steps, final_order));
                    INFO(method_name(m) << " order " << order << ", final_steps " << final_steps << ", final_order "
                                        << final_order);
                    REQUIRE(s.table().size() == std::size_t(n));
                    CHECK(s.nfe() == n);
                    for (int k = 0; k < n; ++k) {
                        int expected = std::min(k, order);
                        if (k >= n - final_steps) expected = std::min(expected, final_order);
                        INFO("step " << k);
                        CHECK(s.table()[std::size_t(k)].order == expected);
                    }
                }
            }
        }
    }
}

TEST_CASE("a concrete ramp: tAB order 3 with the last 2 steps at order 1", "[multistep][options]") {
    const auto grid = deis::power_t_grid(schedule, 8, 1.0, 1e-3, 2.0);
    const deis::multistep_solver s(schedule, grid, make(deis::multistep_method::tab, 3, 2, 1));
    const std::vector<int> expected = {0, 1, 2, 3, 3, 3, 1, 1};
    std::vector<int> got;
    for (const auto& row : s.table()) got.push_back(row.order);
    CHECK(got == expected);
}

TEST_CASE("a reduced step has the coefficients of the lower-order method", "[multistep][options]") {
    // Step k of (order r, final order q) uses the newest min(k, r, q) + 1 points; the solver
    // of maximum order q computes the same integrals there with the same code, so the rows
    // agree to round-off (they are in fact bitwise equal; 1e-15 relative leaves room for a
    // compiler's different contraction of the same expressions).
    const int n = 7;
    const auto grid = deis::log_rho_grid(schedule, n, 1.0, 1e-3);
    for (auto m : {deis::multistep_method::tab, deis::multistep_method::rhoab, deis::multistep_method::ipndm}) {
        const deis::multistep_solver mixed(schedule, grid, make(m, 3, 3, 1));
        const deis::multistep_solver low(schedule, grid, make(m, 1));
        const deis::multistep_solver high(schedule, grid, make(m, 3));
        for (int k = 0; k < n; ++k) {
            const auto& row = mixed.table()[std::size_t(k)];
            const auto& ref = (k >= n - 3 ? low : high).table()[std::size_t(k)];
            INFO(method_name(m) << " step " << k);
            REQUIRE(row.order == ref.order);
            CHECK(row.x_coef == Approx(ref.x_coef).epsilon(1e-15));
            for (std::size_t j = 0; j < row.c.size(); ++j) CHECK(row.c[j] == Approx(ref.c[j]).epsilon(1e-15).margin(0));
        }
    }
}

TEST_CASE("final_order is checked only when final_steps > 0", "[multistep][options][bad-input]") {
    const auto grid = deis::power_t_grid(schedule, 4, 1.0, 1e-3, 2.0);
    CHECK_NOTHROW(deis::multistep_solver(schedule, grid, make(deis::multistep_method::tab, 3, 0, 7)));
    CHECK_THROWS_AS(deis::multistep_solver(schedule, grid, make(deis::multistep_method::tab, 3, 1, 4)),
                    std::invalid_argument);
    CHECK_THROWS_AS(deis::multistep_solver(schedule, grid, make(deis::multistep_method::tab, 3, 1, -1)),
                    std::invalid_argument);
    CHECK_THROWS_AS(deis::multistep_solver(schedule, grid, make(deis::multistep_method::tab, 3, -1, 1)),
                    std::invalid_argument);
}

TEST_CASE("the reduced final steps cost no extra network calls", "[multistep][options]") {
    const auto grid = deis::power_t_grid(schedule, 6, 1.0, 1e-3, 2.0);
    const deis::multistep_solver s(schedule, grid, make(deis::multistep_method::tab, 3, 2, 0));
    Eigen::VectorXd w(1);
    w << 1.0;
    Eigen::MatrixXd mu(1, 1), sd(1, 1);
    mu << 0.3;
    sd << 0.8;
    const deis::gmm_eps<deis::vp_linear> inner(deis::gaussian_mixture(w, mu, sd), schedule);
    int calls = 0;
    auto net = [&](const deis::state<double>& x, double t, deis::state<double>& out) {
        ++calls;
        inner(x, t, out);
    };
    deis::state<double> x(1, 3);
    x << -1.0, 0.0, 2.0;
    const auto r = s.sample(net, x);
    REQUIRE(r.ok());
    CHECK(r.nfe == 6);
    CHECK(calls == 6);
    CHECK(r.steps == 6);
}
