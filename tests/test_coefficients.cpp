// The coefficient tables of the multistep solvers: against the reference tables of the
// official DEIS code (recomputed there with exact quadrature), against identities that hold
// for every grid and schedule, and against an independent, much finer quadrature.
#include <boost/math/quadrature/gauss.hpp>
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <cmath>
#include <deis/deis.hpp>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using deis_test::column;
using deis_test::rel_diff;

namespace {

using deis_test::eps;

// The reference problem: vp_linear defaults, T = 1, t_end = 1e-3, quadratic grid, 10 steps.
using deis_test::ref_schedule;

std::vector<double> ref_grid() { return deis::power_t_grid(ref_schedule, 10, 1.0, 1e-3, 2.0); }


std::string coef_file(const char* method, int order) {
    return std::string("coef/") + method + "_order" + std::to_string(order) + "_t2_n10.csv";
}

}  // namespace

TEST_CASE("the quadratic grid of 10 steps matches the reference grid", "[coefficients][grid]") {
    const auto grid = ref_grid();
    const auto tab = deis_test::read_reference_table("coef/grid_t2_n10.csv");
    const auto t = column(tab, "t"), abar = column(tab, "alphabar"), rho = column(tab, "rho");
    REQUIRE(grid.size() == t.size());
    double worst_t = 0, worst_abar = 0, worst_rho = 0;
    for (std::size_t i = 0; i < grid.size(); ++i) {
        worst_t = std::max(worst_t, rel_diff(grid[i], t[i]));
        const double a = ref_schedule.alpha(grid[i]);
        worst_abar = std::max(worst_abar, rel_diff(a * a, abar[i]));
        // The reference's rho = sqrt((1 - alphabar)/alphabar) loses eps/(1 - alphabar) ~
        // eps/rho^2 relative to the subtraction at small t; ours uses expm1 and does not.
        const double e_rho = rel_diff(ref_schedule.rho(grid[i]), rho[i]);
        CAPTURE(i, e_rho, rho[i]);
        CHECK(e_rho <= 4 * eps * (1.0 + 1.0 / (rho[i] * rho[i])));
        worst_rho = std::max(worst_rho, e_rho * rho[i] * rho[i] / (1.0 + rho[i] * rho[i]));
    }
    // Both sides evaluate (sqrt(T) + i/N (sqrt(t_end) - sqrt(T)))^2 in double: a few roundings.
    CHECK(worst_t <= 8 * eps);
    // alphabar = exp(2 log alpha) with |2 log alpha| <= 10: the exponent's rounding is
    // amplified by at most 10, hence 1e-14; rho = sqrt(1/alphabar - 1) inherits it.
    CHECK(worst_abar <= 1e-14);
    CHECK(worst_rho <= 4 * eps);  // the rho error in units of eps/(1 - alphabar)
}

TEST_CASE("tAB-DEIS coefficients match the reference tables", "[coefficients]") {
    const int order = GENERATE(0, 1, 2, 3);
    CAPTURE(order);
    const deis::multistep_solver solver(ref_schedule, ref_grid(), deis::parse_multistep("tab" + std::to_string(order)));
    const auto tab = deis_test::read_reference_table(coef_file("tab", order));
    const auto& table = solver.table();
    REQUIRE(table.size() == tab.rows.size());
    const auto used = column(tab, "used_order"), x_coef = column(tab, "x_coef"), t_cur = column(tab, "t_cur"),
               t_next = column(tab, "t_next");
    double worst_c = 0, worst_x = 0;
    for (std::size_t k = 0; k < table.size(); ++k) {
        CAPTURE(k);
        CHECK(table[k].order == int(used[k]));
        CHECK(rel_diff(table[k].t_from, t_cur[k]) <= 8 * eps);
        CHECK(rel_diff(table[k].t_to, t_next[k]) <= 8 * eps);
        worst_x = std::max(worst_x, rel_diff(table[k].x_coef, x_coef[k]));
        for (int j = 0; j < 4; ++j) {
            const double ours = table[k].c[std::size_t(j)];
            if (j > order) {
                CHECK(ours == 0.0);
                continue;
            }
            const double ref = column(tab, "c" + std::to_string(j) + "_exact")[k];
            if (j > table[k].order) {
                CHECK(ref == 0.0);
                CHECK(ours == 0.0);
            } else {
                worst_c = std::max(worst_c, rel_diff(ours, ref));
            }
        }
    }
    // The reference integrals are accurate to ~5e-15 relative (README), ours to ~1e-15:
    // 1e-12 leaves room for nothing but round-off.
    CHECK(worst_c <= 1e-12);
    // x_coef = alpha_next / alpha_cur = exp(log alpha_next - log alpha_cur) on both sides.
    CHECK(worst_x <= 1e-14);
}

TEST_CASE("rhoAB-DEIS coefficients match the reference tables", "[coefficients]") {
    const int order = GENERATE(0, 1, 2, 3);
    CAPTURE(order);
    const deis::multistep_solver solver(ref_schedule, ref_grid(), deis::parse_multistep("rhoab" + std::to_string(order)));
    const auto tab = deis_test::read_reference_table(coef_file("rhoab", order));
    const auto grid_tab = deis_test::read_reference_table("coef/grid_t2_n10.csv");
    const auto abar = column(grid_tab, "alphabar");
    const auto& table = solver.table();
    REQUIRE(table.size() == tab.rows.size());
    const auto used = column(tab, "used_order"), x_coef_ref = column(tab, "x_coef");
    double worst_c = 0, worst_x = 0;
    for (std::size_t k = 0; k < table.size(); ++k) {
        CAPTURE(k);
        CHECK(table[k].order == int(used[k]));
        // The reference works on v = x / alpha (x_coef 1); on x, x_coef = alpha_next/alpha_cur.
        CHECK(x_coef_ref[k] == 1.0);
        worst_x = std::max(worst_x, rel_diff(table[k].x_coef, std::sqrt(abar[k + 1] / abar[k])));
        const double alpha_next = ref_schedule.alpha(table[k].t_to);
        for (int j = 0; j <= order; ++j) {
            const double ref = column(tab, "c" + std::to_string(j) + "_exact")[k];
            const double ours = table[k].c[std::size_t(j)];
            if (j > table[k].order) {
                CHECK(ours == 0.0);
            } else {
                worst_c = std::max(worst_c, rel_diff(ours, alpha_next * ref));
            }
        }
    }
    // As for tAB; the rhoAB integrals are polynomials, integrated exactly on both sides.
    CHECK(worst_c <= 1e-12);
    // alphabar of the reference file against exp(log alpha) of ours (see the grid test).
    CHECK(worst_x <= 1e-14);
}

namespace {

// The sum of the coefficients of every step against the DDIM coefficient, and tAB/rhoAB
// order 0 against DDIM, for one schedule.
template <class Schedule>
void check_identities(const Schedule& s, double t_max, double t_end) {
    struct grid_case {
        const char* name;
        deis::grid_kind kind;
        double power;
    };
    const grid_case grids[] = {{"power_t k=1", deis::grid_kind::power_t, 1.0},
                               {"power_t k=2", deis::grid_kind::power_t, 2.0},
                               {"log_rho", deis::grid_kind::log_rho, 0.0},
                               {"power_rho k=7", deis::grid_kind::power_rho, 7.0}};
    double worst_sum = 0.0, worst_cancel = 0.0, worst_corr = 0.0;
    for (const auto& g : grids) {
        for (int steps : {3, 10, 25}) {
            const auto grid = deis::make_grid(s, g.kind, steps, t_max, t_end, g.power);
            for (auto pred : {deis::prediction::noise, deis::prediction::data}) {
                const bool data = pred == deis::prediction::data;
                // Order 0 of every method is DDIM. All four compute alpha_next (rho_next -
                // rho_cur) (or sigma_next (u_next - u_cur)) as one difference and one product
                // of the same doubles: bit-identical, 0 ulps.
                const deis::multistep_solver ddim(s, grid, deis::parse_multistep(std::string("ddim") + (pred == deis::prediction::data ? "+data" : "+noise")));
                for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
                    // DDIM itself against the formula evaluated here from the schedule: the
                    // same operations on the same doubles, 4 ulps allowed for reordering
                    const double t0 = grid[k], t1 = grid[k + 1];
                    // (u = alpha / sigma, the data form's variable, as the solver forms it)
                    const double c = data ? s.sigma(t1) * (s.alpha(t1) / s.sigma(t1) - s.alpha(t0) / s.sigma(t0))
                                          : s.alpha(t1) * (s.rho(t1) - s.rho(t0));
                    CHECK(rel_diff(ddim.table()[k].c[0], c) <= 4 * eps);
                }
                for (auto m :
                     {deis::multistep_method::tab, deis::multistep_method::rhoab, deis::multistep_method::ipndm}) {
                    const deis::multistep_solver zero(s, grid, deis::parse_multistep(deis::to_string(m) + std::string("0") + (pred == deis::prediction::data ? "+data" : "+noise")));
                    for (std::size_t k = 0; k < grid.size() - 1; ++k) {
                        CHECK(zero.table()[k].c[0] == ddim.table()[k].c[0]);
                        CHECK(zero.table()[k].x_coef == ddim.table()[k].x_coef);
                    }
                }
                for (auto m : {deis::multistep_method::tab, deis::multistep_method::rhoab}) {
                    for (int order = 0; order <= 3; ++order) {
                        const deis::multistep_solver solver(s, grid, deis::parse_multistep(deis::to_string(m) + std::to_string(order) + (pred == deis::prediction::data ? "+data" : "+noise") + "+corrector"));
                        for (std::size_t k = 0; k < grid.size() - 1; ++k) {
                            const auto& row = solver.table()[k];
                            CAPTURE(g.name, steps, data, int(m), order, k);
                            // DDIM's coefficient from the schedule, in the test's own words
                            const double t0 = grid[k], t1 = grid[k + 1];
                            const double ddim_c = data ? s.sigma(t1) * (1.0 / s.rho(t1) - 1.0 / s.rho(t0))
                                                       : s.alpha(t1) * (s.rho(t1) - s.rho(t0));
                            double sum = 0.0, abs_sum = 0.0;
                            for (int j = 0; j <= row.order; ++j) {
                                sum += row.c[std::size_t(j)];
                                abs_sum += std::abs(row.c[std::size_t(j)]);
                            }
                            // sum_j l_j = 1 at every quadrature node, so the sum of the
                            // integrals is the DDIM coefficient up to the rounding of the
                            // basis values: ~eps sum_j |c_j|, i.e. eps times the
                            // cancellation factor sum|c_j| / |sum c_j| relative to DDIM.
                            // That factor stays below ~250 on these grids (measured 232),
                            // and 1e-13 relative holds (measured 3.8e-14 at worst).
                            const double e = std::abs(sum - ddim_c) / std::abs(ddim_c);
                            const double cancel = abs_sum / std::abs(ddim_c);
                            CAPTURE(cancel);
                            CHECK(e <= 1e-13);
                            worst_sum = std::max(worst_sum, e);
                            worst_cancel = std::max(worst_cancel, cancel);
                            if (row.corrector_order >= 0) {
                                double dsum = 0.0;
                                for (int j = 0; j <= row.corrector_order; ++j) dsum += row.d[std::size_t(j)];
                                double dabs = 0.0;
                                for (int j = 0; j <= row.corrector_order; ++j) dabs += std::abs(row.d[std::size_t(j)]);
                                const double ec = std::abs(dsum - ddim_c) / std::abs(ddim_c);
                                worst_corr = std::max(worst_corr, ec);
                                CAPTURE(dabs / std::abs(ddim_c));
                                CHECK(ec <= 1e-13);
                            }
                        }
                    }
                }
            }
        }
    }
    // the worst cases (run with -s to see the measured values)
    CHECK(worst_sum <= 1e-13);
    CHECK(worst_corr <= 1e-13);
    // the premise of the tolerance: no step cancels so much that 1e-13 would be round-off
    CHECK(worst_cancel <= 300);
}

}  // namespace

TEST_CASE("coefficients of every step sum to the DDIM coefficient, and order 0 is DDIM", "[coefficients]") {
    SECTION("vp_linear") { check_identities(deis::vp_linear{}, 1.0, 1e-3); }
    SECTION("vp_linear, other betas") { check_identities(deis::vp_linear(0.5, 12.0, 1.5), 1.5, 1e-4); }
    SECTION("vp_cosine") { check_identities(deis::vp_cosine{}, 0.9946, 1e-3); }
    SECTION("vp_cosine normalised") { check_identities(deis::vp_cosine(0.008, 0.99, true), 0.99, 1e-3); }
    SECTION("vp_discrete linear") {
        check_identities(deis::vp_discrete::from_betas(deis::beta_schedule::linear), 1.0, 2e-3);
    }
    SECTION("vp_discrete squaredcos_cap_v2") {
        check_identities(deis::vp_discrete::from_betas(deis::beta_schedule::squaredcos_cap_v2), 0.99, 2e-3);
    }
    SECTION("ve") { check_identities(deis::ve{}, 1.0, 1e-3); }
}

// ---- quadrature accuracy against an independent, much finer rule ------------------------

namespace {

// l_j(tau) for nodes v[0..n-1], written directly from the definition.
double lagrange_basis(const std::vector<double>& v, std::size_t j, double tau) {
    double p = 1.0;
    for (std::size_t m = 0; m < v.size(); ++m)
        if (m != j) p *= (tau - v[m]) / (v[j] - v[m]);
    return p;
}

// integral over [r0, r1] of l_j(t(rho)) drho. Without `breaks`: adaptive Gauss-Kronrod
// (61 points) at relative tolerance 1e-15 (bisection depth <= 12). With `breaks` (points
// where t(rho) is not smooth): a 30-point Gauss-Legendre rule on each piece between
// consecutive breaks, where t(rho) is analytic with its singularities (rho = +-i) far away
// compared to the piece; `order15` swaps in the 15-point rule to show that it is converged.
double fine_integral(const std::function<double(double)>& t_of_rho, const std::vector<double>& nodes, std::size_t j,
                     double r0, double r1, const std::vector<double>& breaks = {}, bool order15 = false) {
    auto f = [&](double rho) { return lagrange_basis(nodes, j, t_of_rho(rho)); };
    const double lo = std::min(r0, r1), hi = std::max(r0, r1);
    double total = 0.0;
    if (breaks.empty()) {
        total = boost::math::quadrature::gauss_kronrod<double, 61>::integrate(f, lo, hi, 12, 1e-15);
    } else {
        std::vector<double> cuts{lo};
        for (double b : breaks)
            if (b > lo && b < hi) cuts.push_back(b);
        cuts.push_back(hi);
        std::sort(cuts.begin(), cuts.end());
        for (std::size_t p = 0; p + 1 < cuts.size(); ++p)
            total += order15 ? boost::math::quadrature::gauss<double, 15>::integrate(f, cuts[p], cuts[p + 1])
                             : boost::math::quadrature::gauss<double, 30>::integrate(f, cuts[p], cuts[p + 1]);
    }
    return r1 >= r0 ? total : -total;
}

// Checks every predictor and corrector coefficient of a tAB solver (noise prediction)
// against fine_integral; returns the worst error relative to the step's largest coefficient.
template <class Schedule>
double check_against_fine_rule(const Schedule& s, const std::vector<double>& grid,
                               const std::function<double(double)>& t_of_rho, const std::vector<double>& breaks = {}) {
    const deis::multistep_solver solver(s, grid, deis::parse_multistep("tab3+corrector"));
    double worst = 0.0;
    for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
        const auto& row = solver.table()[k];
        const double r0 = s.rho(grid[k]), r1 = s.rho(grid[k + 1]), a1 = s.alpha(grid[k + 1]);
        auto compare = [&](const std::vector<double>& nodes, const double* c) {
            double scale = 0.0;
            std::vector<double> fine(nodes.size());
            for (std::size_t j = 0; j < nodes.size(); ++j) {
                fine[j] = a1 * fine_integral(t_of_rho, nodes, j, r0, r1, breaks);
                scale = std::max(scale, std::abs(fine[j]));
                if (!breaks.empty()) {
                    // the piecewise rule is converged: halving its order changes it only by the
                    // rounding of a sum over ~100 pieces (measured 7e-14 relative)
                    const double coarse = a1 * fine_integral(t_of_rho, nodes, j, r0, r1, breaks, true);
                    CHECK(std::abs(coarse - fine[j]) <= 1e-13 * std::abs(fine[j]));
                }
            }
            for (std::size_t j = 0; j < nodes.size(); ++j) {
                CAPTURE(k, j, nodes.size(), c[j], fine[j]);
                const double e = std::abs(c[j] - fine[j]) / scale;
                // Both rules are converged far below 1e-15 relative; what is left is the
                // rounding of the basis values (cancellation factor <= ~1e3 only on the
                // extreme extrapolations below, times eps) - 1e-13 of the step's largest
                // coefficient.
                CHECK(e <= 1e-13);
                worst = std::max(worst, e);
            }
        };
        std::vector<double> nodes;
        for (int j = 0; j <= row.order; ++j) nodes.push_back(grid[k - std::size_t(j)]);
        compare(nodes, row.c.data());
        if (row.corrector_order >= 0) {
            nodes.clear();
            for (int j = 0; j <= row.corrector_order; ++j) nodes.push_back(grid[k + 1 - std::size_t(j)]);
            compare(nodes, row.d.data());
        }
    }
    return worst;
}

}  // namespace

TEST_CASE("tAB quadrature agrees with adaptive Gauss-Kronrod at 1e-15", "[coefficients][quadrature]") {
    SECTION("vp_linear") {
        const deis::vp_linear s{};
        // t(rho) in closed form, written here from log alpha = -t^2 (b1-b0)/4 - t b0/2:
        // the positive root of (b1-b0)/4 t^2 + b0/2 t - log(1+rho^2)/2 = 0.
        auto t_of_rho = [](double rho) {
            const double b0 = 0.1, b1 = 20.0, L = std::log1p(rho * rho);
            return 2.0 * L / (b0 + std::sqrt(b0 * b0 + 2.0 * (b1 - b0) * L));
        };
        const double t003 = t_of_rho(0.03);
        // t(rho) has a square-root branch point at rho = +-0.0158i, close to the small-rho
        // end: these grids make single steps span rho from ~150 down to 0.03.
        const std::vector<std::vector<double>> grids = {
            deis::power_t_grid(s, 10, 1.0, 1e-3, 2.0),
            deis::log_rho_grid(s, 6, 1.0, 1e-3),
            {1.0, t003, 1e-3},         // step 0 (with its corrector): rho 152 -> 0.03
            {1.0, 0.999, t003, 1e-3},  // step 1, order 1 + corrector: rho 150 -> 0.03
            {1.0, 0.9995, 0.999, t003, 1e-3},
        };
        for (const auto& g : grids) CHECK(check_against_fine_rule(s, g, t_of_rho) <= 1e-13);
    }
    SECTION("vp_cosine") {
        const deis::vp_cosine s{};
        auto t_of_rho = [](double rho) {
            const double pi = 3.141592653589793238462643383279502884, sc = 0.008;
            return std::atan(rho) * 2.0 / pi * (1.0 + sc) - sc;
        };
        const double t003 = t_of_rho(0.03);
        const std::vector<std::vector<double>> grids = {
            deis::power_t_grid(s, 10, 0.9946, 1e-3, 2.0),
            {0.9946, t003, 1e-3},
            {0.9946, 0.994, t003, 1e-3},
        };
        for (const auto& g : grids) CHECK(check_against_fine_rule(s, g, t_of_rho) <= 1e-13);
    }
}

// vp_discrete's t(rho) has a kink at every table entry (log alpha is piecewise linear in t).
// The library splits its quadrature there (vp_discrete::rho_knots); a rule that integrated
// across the kinks would be off by ~4e-6 relative on these grids (measured before the split
// was added).
TEST_CASE("tAB quadrature agrees with a piecewise rule split at vp_discrete's table entries",
          "[coefficients][quadrature]") {
    const auto s = deis::vp_discrete::from_betas(deis::beta_schedule::linear);
    // log alpha is linear in t between table entries: t(rho) is smooth there and has a
    // kink at each entry, so the fine rule is applied between entries.
    std::vector<double> breaks;
    for (double la : s.log_alpha_table()) breaks.push_back(std::sqrt(std::expm1(-2.0 * la)));
    auto t_of_rho = [&s](double rho) { return s.t_from_rho(rho); };
    const double t003 = s.t_from_rho(0.03);
    const std::vector<std::vector<double>> grids = {
        deis::power_t_grid(s, 10, 1.0, 2e-3, 2.0),
        {1.0, t003, 2e-3},
        {1.0, 0.999, t003, 2e-3},
    };
    for (const auto& g : grids) CHECK(check_against_fine_rule(s, g, t_of_rho, breaks) <= 1e-13);
}
