// Time grids: shape, end points, monotonicity, and the spacing that defines each kind.
#include <cmath>
#include <deis/deis.hpp>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using deis_test::rel_diff;

namespace {

using deis_test::eps;

template <class Schedule>
void check_shape(const Schedule& s, const std::vector<double>& g, int steps, double t_max, double t_end) {
    REQUIRE(g.size() == std::size_t(steps) + 1);
    CHECK(g.front() == t_max);  // exactly the arguments, not recomputed
    CHECK(g.back() == t_end);
    for (std::size_t i = 1; i < g.size(); ++i) {
        CAPTURE(i, g[i - 1], g[i]);
        CHECK(g[i] < g[i - 1]);
        CHECK(s.rho(g[i]) < s.rho(g[i - 1]));
    }
}

// The checks every kind must pass, for one schedule.
template <class Schedule>
void check_kinds(const Schedule& s, double t_max, double t_end) {
    for (int steps : {1, 2, 7, 10, 50}) {
        CAPTURE(steps);
        for (double k : {1.0, 2.0, 3.0})
            check_shape(s, deis::power_t_grid(s, steps, t_max, t_end, k), steps, t_max, t_end);
        check_shape(s, deis::log_rho_grid(s, steps, t_max, t_end), steps, t_max, t_end);
        for (double k : {1.0, 7.0})
            check_shape(s, deis::power_rho_grid(s, steps, t_max, t_end, k), steps, t_max, t_end);
        // make_grid dispatches to the same functions
        CHECK(deis::make_grid(s, deis::grid_kind::power_t, steps, t_max, t_end, 2.0) ==
              deis::power_t_grid(s, steps, t_max, t_end, 2.0));
        CHECK(deis::make_grid(s, deis::grid_kind::log_rho, steps, t_max, t_end, 0.0) ==
              deis::log_rho_grid(s, steps, t_max, t_end));
        CHECK(deis::make_grid(s, deis::grid_kind::power_rho, steps, t_max, t_end, 7.0) ==
              deis::power_rho_grid(s, steps, t_max, t_end, 7.0));
    }
}

// The spacing of one grid: consecutive differences of f(grid point) against their mean.
// Returns the worst deviation relative to the mean difference.
template <class F>
double spacing_error(const std::vector<double>& g, F f) {
    const double step = (f(g.back()) - f(g.front())) / double(g.size() - 1);
    double worst = 0.0;
    for (std::size_t i = 1; i < g.size(); ++i) worst = std::max(worst, std::abs((f(g[i]) - f(g[i - 1])) - step));
    return worst / std::abs(step);
}

}  // namespace

TEST_CASE("every grid kind has N + 1 strictly decreasing points and exact end points", "[grid]") {
    SECTION("vp_linear") { check_kinds(deis::vp_linear{}, 1.0, 1e-3); }
    SECTION("vp_cosine") { check_kinds(deis::vp_cosine{}, 0.9946, 1e-3); }
    SECTION("vp_discrete") { check_kinds(deis::vp_discrete::from_betas(deis::beta_schedule::linear), 1.0, 1e-3); }
    SECTION("ve") { check_kinds(deis::ve{}, 1.0, 0.0); }
}

TEST_CASE("power_t grids: k = 1 uniform, k = 2 the quadratic formula", "[grid]") {
    const deis::vp_linear s{};
    for (int steps : {1, 5, 10, 33}) {
        CAPTURE(steps);
        const auto g1 = deis::power_t_grid(s, steps, 1.0, 1e-3, 1.0);
        for (int i = 0; i <= steps; ++i) {
            const double expected = 1.0 + double(i) / steps * (1e-3 - 1.0);
            // pow(x, 1) is exact; the only rounding is in the linear formula: a few ulps of 1
            CHECK(std::abs(g1[std::size_t(i)] - expected) <= 4 * eps);
        }
        const auto g2 = deis::power_t_grid(s, steps, 1.0, 1e-3, 2.0);
        const auto g2b = deis::power_t_grid(s, steps, 0.8, 1e-4, 2.0);
        for (int i = 0; i <= steps; ++i) {
            const double a = std::sqrt(1.0) + double(i) / steps * (std::sqrt(1e-3) - std::sqrt(1.0));
            const double b = std::sqrt(0.8) + double(i) / steps * (std::sqrt(1e-4) - std::sqrt(0.8));
            // squaring doubles the relative rounding of the base (a few ulps): 8 eps relative
            CHECK(rel_diff(g2[std::size_t(i)], a * a) <= 8 * eps);
            CHECK(rel_diff(g2b[std::size_t(i)], b * b) <= 8 * eps);
        }
    }
}

TEST_CASE("log_rho grids are uniform in log rho", "[grid]") {
    auto check = [](const auto& s, double t_max, double t_end) {
        for (int steps : {1, 4, 10, 40}) {
            CAPTURE(steps);
            const auto g = deis::log_rho_grid(s, steps, t_max, t_end);
            // log rho(t(rho)) differs from the planned log rho by the round trip
            // (~1e-15 relative in rho, i.e. ~1e-15 absolute in log rho) against steps of
            // (log rho_max - log rho_end)/N >= 0.2: ~1e-14 relative at most.
            CHECK(spacing_error(g, [&](double t) { return std::log(s.rho(t)); }) <= 1e-12);
        }
    };
    SECTION("vp_linear") { check(deis::vp_linear{}, 1.0, 1e-3); }
    SECTION("vp_cosine") { check(deis::vp_cosine{}, 0.9946, 1e-3); }
    SECTION("vp_discrete") { check(deis::vp_discrete::from_betas(deis::beta_schedule::linear), 1.0, 1e-3); }
    SECTION("ve") { check(deis::ve{}, 1.0, 0.0); }
}

TEST_CASE("power_rho grids are uniform in rho^(1/k)", "[grid]") {
    auto check = [](const auto& s, double t_max, double t_end) {
        for (double k : {7.0, 5.0}) {
            for (int steps : {1, 4, 10, 40}) {
                CAPTURE(k, steps);
                const auto g = deis::power_rho_grid(s, steps, t_max, t_end, k);
                // Storing a grid point as t rounds it by eps t, which moves rho by
                // eps rho (d log rho / d log t); that factor reaches ~190 for vp_cosine near
                // T = 0.9946, where rho = 119. In rho^(1/k) it is divided by k: with k >= 5
                // and steps of rho^(1/k) >= 0.03, the spacing holds to ~5e-13 relative at
                // worst. (At k = 1 the top steps of vp_cosine would see ~2e-12.)
                CHECK(spacing_error(g, [&](double t) { return std::pow(s.rho(t), 1.0 / k); }) <= 1e-12);
            }
        }
    };
    SECTION("vp_linear") { check(deis::vp_linear{}, 1.0, 1e-3); }
    SECTION("vp_cosine") { check(deis::vp_cosine{}, 0.9946, 1e-3); }
    SECTION("vp_discrete") { check(deis::vp_discrete::from_betas(deis::beta_schedule::linear), 1.0, 1e-3); }
    SECTION("ve") { check(deis::ve{}, 1.0, 0.0); }
}

TEST_CASE("check_grid accepts a valid user grid unchanged", "[grid]") {
    const deis::vp_linear s{};
    const std::vector<double> g = {1.0, 0.5, 0.25, 0.01, 1e-3};
    CHECK(deis::check_grid(s, g) == g);
}
