// Data-prediction multistep coefficients (issue 9, item 7).
//
// With data prediction (multistep.hpp, DESIGN.md section 7) a step from t_k to t_{k+1} is,
// in u = alpha/sigma = 1/rho,
//
//     x_{k+1} = (sigma_{k+1}/sigma_k) x_k + sigma_{k+1} integral_{u_k}^{u_{k+1}} x0 du,
//
// and the solvers replace x0 by the Lagrange polynomial through the newest predictions, in t
// (tAB) or in rho (rhoAB), so that
//
//     c_j = sigma_{k+1} integral_{u_k}^{u_{k+1}} l_j(tau(u)) du,  tau(u) = t(1/u) or 1/u,
//
// with the nodes t_k, t_{k-1}, ... (predictor) or t_{k+1}, t_k, ... (corrector) in that
// variable. Here every such coefficient is recomputed from this formula alone: the schedules'
// alpha, sigma and t(rho) written again in long double from their definitions, the Lagrange
// basis from its definition, and adaptive Gauss-Kronrod quadrature in long double, split at
// the kinks of vp_discrete's t(rho) placed in u. Nothing of the library's quadrature
// (detail/lagrange.hpp) is used. The sum of the coefficients, which the other tests check, is
// the DDIM coefficient whatever the split of the quadrature; these values are not.
//
// Second part: rhoAB with data prediction converges at the order of its polynomial, on a
// Gaussian whose exact flow is known in closed form.
#include <algorithm>
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <cmath>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace {

using ld = long double;
using deis::multistep_method;
using deis::prediction;

const ld pi_l = 3.141592653589793238462643383279502884L;

// A schedule written again from its definition, in long double: alpha(t), sigma(t), the
// inverse t(rho) of rho = sigma/alpha, and the values of u where t(1/u) has kinks
// (ascending; empty where t(rho) is analytic).
struct independent_schedule {
    std::string name;
    std::function<ld(ld)> alpha, sigma, t_of_rho;
    std::vector<ld> kinks_u;
};

independent_schedule vp_linear_def(ld b0 = 0.1L, ld b1 = 20.0L) {
    auto log_alpha = [=](ld t) { return -t * t * (b1 - b0) / 4 - t * b0 / 2; };
    return {"vp_linear",
            [=](ld t) { return std::exp(log_alpha(t)); },
            [=](ld t) { return std::sqrt(-std::expm1(2 * log_alpha(t))); },
            // the positive root of (b1-b0)/4 t^2 + b0/2 t - log(1 + rho^2)/2 = 0
            [=](ld rho) {
                const ld L = std::log1p(rho * rho);
                return 2 * L / (b0 + std::sqrt(b0 * b0 + 2 * (b1 - b0) * L));
            },
            {}};
}

independent_schedule vp_cosine_def(ld s = 0.008L) {
    auto theta = [=](ld t) { return pi_l / 2 * (t + s) / (1 + s); };
    return {"vp_cosine", [=](ld t) { return std::cos(theta(t)); }, [=](ld t) { return std::sin(theta(t)); },
            [=](ld rho) { return std::atan(rho) * 2 / pi_l * (1 + s) - s; }, {}};
}

independent_schedule ve_def(ld smin = 0.01L, ld smax = 50.0L) {
    return {"ve", [](ld) { return ld(1); }, [=](ld t) { return smin * std::pow(smax / smin, t); },
            [=](ld rho) { return std::log(rho / smin) / std::log(smax / smin); }, {}};
}

independent_schedule flow_matching_def() {
    return {"flow_matching", [](ld t) { return 1 - t; }, [](ld t) { return t; },
            [](ld rho) { return rho / (1 + rho); }, {}};
}

independent_schedule edm_def() {
    return {"edm", [](ld) { return ld(1); }, [](ld t) { return t; }, [](ld rho) { return rho; }, {}};
}

// vp_discrete: log alpha piecewise linear in t through 0 at t = 0 and the table entry j at
// t = (j + 1)/n. t(rho): log alpha = -log(1 + rho^2)/2, then the linear piece solved for t.
// The kinks of t(rho) are at the table entries: u_j = 1/rho_j = 1/sqrt(exp(-2 la_j) - 1).
independent_schedule vp_discrete_def(const std::string& name, const std::vector<double>& table) {
    std::vector<ld> la{0};  // la[i] at t = i/n
    for (double v : table) la.push_back(v);
    const ld n = ld(table.size());
    auto log_alpha = [la, n](ld t) {
        const ld pos = t * n;
        std::size_t i = std::min(std::size_t(pos), la.size() - 2);
        return la[i] + (pos - ld(i)) * (la[i + 1] - la[i]);
    };
    auto t_of_rho = [la, n](ld rho) {
        const ld target = -std::log1p(rho * rho) / 2;
        // la decreasing: the first i with la[i + 1] <= target
        const auto it = std::lower_bound(la.begin() + 1, la.end(), target, [](ld a, ld b) { return a > b; });
        const std::size_t i = std::min(std::size_t(it - la.begin()) - 1, la.size() - 2);
        return (ld(i) + (target - la[i]) / (la[i + 1] - la[i])) / n;
    };
    std::vector<ld> kinks;
    for (std::size_t i = 1; i < la.size(); ++i) kinks.push_back(1 / std::sqrt(std::expm1(-2 * la[i])));
    std::sort(kinks.begin(), kinks.end());
    return {name, [=](ld t) { return std::exp(log_alpha(t)); },
            [=](ld t) { return std::sqrt(-std::expm1(2 * log_alpha(t))); }, t_of_rho, kinks};
}

// l_j(tau) for the nodes v, from the definition.
ld basis(const std::vector<ld>& v, std::size_t j, ld tau) {
    ld p = 1;
    for (std::size_t m = 0; m < v.size(); ++m)
        if (m != j) p *= (tau - v[m]) / (v[j] - v[m]);
    return p;
}

// integral_{u0}^{u1} f(u) du, split at the kinks inside, adaptive 61-point Gauss-Kronrod on
// each smooth piece, in long double (relative tolerance 1e-18 per piece; at most 4 levels of
// bisection, since a piece whose integral nearly cancels cannot meet a relative tolerance).
// Adds the rule's error estimate to `error`. That estimate, |Kronrod - Gauss|, is the error of
// the 30-point Gauss rule and says little about the Kronrod result returned; what shows the
// reference converged is that it and the library's composite Gauss-Legendre rule, different
// rules on different pieces, agree to 2.4e-14 at worst (vp_cosine, from its alpha's rounding)
// and to ~1e-15 elsewhere.
template <class F>
ld integrate(F f, ld u0, ld u1, const std::vector<ld>& kinks, ld& error) {
    const ld lo = std::min(u0, u1), hi = std::max(u0, u1);
    std::vector<ld> cuts{lo};
    for (ld c : kinks)
        if (c > lo && c < hi) cuts.push_back(c);
    cuts.push_back(hi);
    ld total = 0;
    for (std::size_t p = 0; p + 1 < cuts.size(); ++p) {
        ld e = 0;
        total += boost::math::quadrature::gauss_kronrod<ld, 61>::integrate(f, cuts[p], cuts[p + 1], 4, 1e-18L, &e);
        error += e;
    }
    return u1 >= u0 ? total : -total;
}

// Checks every predictor and corrector coefficient and x_coef of a data-prediction solver
// against the formula at the top; returns the worst error relative to the step's largest
// coefficient.
template <class Schedule>
double check_data_coefficients(const Schedule& sch, const independent_schedule& def, const std::vector<double>& grid,
                               multistep_method method, int order,
                               deis::tab_clock tclock = deis::tab_clock::schedule) {
    const bool vp_clock = tclock == deis::tab_clock::vp_linear, log_clock = tclock == deis::tab_clock::log_snr;
    auto opt = deis::parse_multistep(deis::to_string(method) + std::to_string(order) + "+data+corrector");
    opt.output = deis::model_output::x0;  // defined at alpha = 0 too; the coefficients do not depend on it
    opt.clock = tclock;
    const deis::multistep_solver solver(sch, grid, opt);
    const bool rhoab = method == multistep_method::rhoab;
    // tab_clock::vp_linear: the polynomial's variable is the time of vp_linear(0.1, 20) at rho
    const auto clock = vp_linear_def().t_of_rho;
    const std::size_t nodes = grid.size();
    std::vector<ld> alpha(nodes), sigma(nodes), u(nodes), var(nodes);
    for (std::size_t k = 0; k < nodes; ++k) {
        const ld t = grid[k];
        alpha[k] = def.alpha(t);
        sigma[k] = def.sigma(t);
        u[k] = sigma[k] == 0 ? std::numeric_limits<ld>::infinity() : alpha[k] / sigma[k];
        var[k] = rhoab       ? sigma[k] / alpha[k]
                 : vp_clock  ? clock(sigma[k] / alpha[k])
                 : log_clock ? std::log(sigma[k] / alpha[k])
                             : t;
        // the definitions written here are the library's schedules, to rounding: a few ulps,
        // or ~1e-16 absolute where alpha = cos(theta) nears its zero (vp_cosine at t = 0.9946,
        // alpha = 8e-3: measured 3e-14 relative)
        CHECK(std::abs(double(alpha[k]) - sch.alpha(grid[k])) <= 1e-13 * double(alpha[k]));
        CHECK(std::abs(double(sigma[k]) - sch.sigma(grid[k])) <= 1e-13 * double(sigma[k]));
    }
    auto tau = [&](ld uu) {
        return rhoab ? 1 / uu : vp_clock ? clock(1 / uu) : log_clock ? -std::log(uu) : def.t_of_rho(1 / uu);
    };

    double worst = 0.0;
    REQUIRE(solver.table().size() + 1 == nodes);
    for (std::size_t k = 0; k + 1 < nodes; ++k) {
        const auto& row = solver.table()[k];
        CAPTURE(def.name, rhoab, to_string(tclock), order, k, row.order, row.corrector_order, grid[k], grid[k + 1]);
        REQUIRE(row.order == std::min(int(k), order));
        // the state's coefficient: a ratio of two sigmas, a few ulps
        CHECK(std::abs(row.x_coef - double(sigma[k + 1] / sigma[k])) <= 1e-14 * double(sigma[k + 1] / sigma[k]));
        auto compare = [&](const std::vector<ld>& v, const double* c) {
            std::vector<ld> ref(v.size());
            ld scale = 0, error = 0;
            for (std::size_t j = 0; j < v.size(); ++j) {
                if (sigma[k + 1] == 0)  // the limit sigma_{k+1} -> 0: alpha_{k+1} P(t_{k+1})
                    ref[j] = alpha[k + 1] * basis(v, j, var[k + 1]);
                else
                    ref[j] = sigma[k + 1] * integrate([&](ld uu) { return basis(v, j, tau(uu)); }, u[k], u[k + 1],
                                                      def.kinks_u, error);
                scale = std::max(scale, std::abs(ref[j]));
            }
            for (std::size_t j = 0; j < v.size(); ++j) {
                const double e = double(std::abs(ld(c[j]) - ref[j]) / scale);
                CAPTURE(j, v.size(), c[j], double(ref[j]), e);
                // The documented accuracy of the coefficients is ~1e-14 relative (README);
                // the reference is exact to ~1e-17. 1e-13 of the step's largest coefficient
                // leaves room for the rounding of the double nodes and limits (an error of
                // 1 ulp in u_k moves c_j by |u_k / (u_{k+1} - u_k)| ulps, <= ~20 on these
                // grids) and is still 10^5 times below the 2e-8 of a quadrature split at the
                // wrong points.
                CHECK(e <= 1e-13);
                worst = std::max(worst, e);
            }
        };
        std::vector<ld> v;
        for (int j = 0; j <= row.order; ++j) v.push_back(var[k - std::size_t(j)]);
        compare(v, row.c.data());
        if (row.corrector_order >= 0) {
            v.clear();
            for (int j = 0; j <= row.corrector_order; ++j) v.push_back(var[k + 1 - std::size_t(j)]);
            compare(v, row.d.data());
        }
    }
    return worst;
}

// Every method, every order, on each grid.
template <class Schedule>
void check_all(const Schedule& sch, const independent_schedule& def, const std::vector<std::vector<double>>& grids,
               bool rhoab_too = true) {
    for (const auto& g : grids) {
        for (auto m : {multistep_method::tab, multistep_method::rhoab}) {
            if (m == multistep_method::rhoab && !rhoab_too) continue;
            for (int order = 0; order <= 3; ++order) {
                const double worst = check_data_coefficients(sch, def, g, m, order);
                INFO(def.name << (m == multistep_method::tab ? " tab" : " rhoab") << order << ": worst " << worst);
                CHECK(worst <= 1e-13);
            }
        }
    }
}

}  // namespace

TEST_CASE("data-prediction coefficients equal an independent fine quadrature in u: vp_linear", "[coefficients][data]") {
    const deis::vp_linear s{};
    check_all(s, vp_linear_def(), {deis::power_t_grid(s, 10, 1.0, 1e-3, 2.0), deis::log_rho_grid(s, 8, 1.0, 1e-3)});
}

TEST_CASE("data-prediction coefficients equal an independent fine quadrature in u: vp_cosine", "[coefficients][data]") {
    const deis::vp_cosine s{};
    check_all(s, vp_cosine_def(),
              {deis::power_t_grid(s, 10, 0.9946, 1e-3, 2.0), deis::log_rho_grid(s, 8, 0.9946, 1e-3)});
}

TEST_CASE("data-prediction coefficients equal an independent fine quadrature in u: ve", "[coefficients][data]") {
    const deis::ve s{};
    check_all(s, ve_def(), {deis::power_t_grid(s, 10, 1.0, 1e-3, 2.0), deis::log_rho_grid(s, 8, 1.0, 1e-3)});
}

TEST_CASE("data-prediction coefficients equal an independent fine quadrature in u: vp_discrete",
          "[coefficients][data]") {
    // t(rho) has a kink at each of the 1000 table entries; every step of these grids spans
    // from 17 to ~200 of them, so a quadrature split at the wrong places integrates across
    // kinks on every step.
    SECTION("linear betas") {
        const auto s = deis::vp_discrete::from_betas(deis::beta_schedule::linear);
        check_all(s, vp_discrete_def("vp_discrete linear", s.log_alpha_table()),
                  {deis::power_t_grid(s, 10, 1.0, 2e-3, 2.0), deis::log_rho_grid(s, 8, 1.0, 2e-3)});
    }
    SECTION("squaredcos_cap_v2 betas") {
        const auto s = deis::vp_discrete::from_betas(deis::beta_schedule::squaredcos_cap_v2);
        check_all(s, vp_discrete_def("vp_discrete squaredcos_cap_v2", s.log_alpha_table()),
                  {deis::power_t_grid(s, 10, 0.99, 2e-3, 2.0)});
    }
}

TEST_CASE("data-prediction coefficients equal an independent fine quadrature in u: flow_matching",
          "[coefficients][data]") {
    const deis::flow_matching s{};
    check_all(s, flow_matching_def(), {deis::power_t_grid(s, 10, 0.99, 1e-3, 1.0), deis::log_rho_grid(s, 8, 0.99, 1e-3)});
    // from pure noise (u = 0; tAB only, rhoAB's polynomial in rho cannot start there) and to
    // clean data (sigma = 0: the last row is the limit alpha_end l_j(t_end))
    check_all(s, flow_matching_def(), {deis::power_t_grid(s, 10, 1.0, 0.0, 1.0)}, false);
    check_all(s, flow_matching_def(), {deis::power_t_grid(s, 10, 0.99, 0.0, 1.0)});
}

TEST_CASE("data-prediction coefficients equal an independent fine quadrature in u: edm", "[coefficients][data]") {
    const deis::edm s{};
    check_all(s, edm_def(),
              {deis::power_rho_grid(s, 10, 80.0, 0.002, 7.0), deis::power_rho_grid(s, 10, 80.0, 0.0, 7.0)});
}

// ---- tAB on the VP-linear clock (tab_clock::vp_linear) ---------------------------------------

namespace {

// tAB of every order on `clock` against the independent quadrature in that clock's variable.
template <class Schedule>
void check_tab_on_clock(const Schedule& sch, const independent_schedule& def, const std::vector<double>& grid,
                        deis::tab_clock clock) {
    for (int order = 0; order <= 3; ++order) {
        const double worst = check_data_coefficients(sch, def, grid, multistep_method::tab, order, clock);
        INFO(def.name << " tab" << order << " on the clock " << to_string(clock) << ": worst " << worst);
        CHECK(worst <= 1e-13);  // as in check_data_coefficients
    }
}

}  // namespace

TEST_CASE("tAB on the VP-linear clock: coefficients equal the independent quadrature in that variable",
          "[coefficients][data][clock]") {
    auto check = [](const auto& sch, const independent_schedule& def, const std::vector<double>& grid) {
        check_tab_on_clock(sch, def, grid, deis::tab_clock::vp_linear);
    };
    const deis::ve v{};
    check(v, ve_def(), deis::recommended_grid(v, 12));
    check(v, ve_def(), deis::log_rho_grid(v, 8, 1.0, 1e-3));
    const deis::edm e{};
    check(e, edm_def(), deis::power_rho_grid(e, 10, 80.0, 0.002, 7.0));
    check(e, edm_def(), deis::power_rho_grid(e, 10, 80.0, 0.0, 7.0));  // to sigma = 0: the limit row
}

TEST_CASE("tAB on the VP-linear clock: on VE the steps of tAB on vp_linear with the same rho, x scaled by alpha",
          "[coefficients][data][clock]") {
    // x_vp = alpha_vp x_ve for the same rho (DESIGN.md section 2: the ODE depends on rho only),
    // so x_ve' = (a_k/a_{k+1}) x_vp-coefficient x_ve + (c_vp/a_{k+1}) h: x_coef_ve = x_coef_vp
    // a_k/a_{k+1}, c_ve = c_vp/a_{k+1}, and the same for the corrector's d.
    const deis::ve v{};
    const deis::vp_linear p{};
    const std::vector<double> g_ve = deis::log_rho_grid(v, 12, 1.0, 1e-3);
    std::vector<double> g_vp;
    for (double t : g_ve) g_vp.push_back(p.t_from_rho(v.rho(t)));
    for (bool corrector : {false, true}) {
        for (int order = 0; order <= 3; ++order) {
            auto o = deis::parse_multistep("tab" + std::to_string(order) + "+data" + (corrector ? "+corrector" : ""));
            const deis::multistep_solver sp(p, g_vp, o);
            o.clock = deis::tab_clock::vp_linear;
            const deis::multistep_solver sv(v, g_ve, o);
            for (std::size_t k = 0; k < sv.table().size(); ++k) {
                const auto &a = sv.table()[k], &b = sp.table()[k];
                const double ak = p.alpha(g_vp[k]), ak1 = p.alpha(g_vp[k + 1]);
                CAPTURE(corrector, order, k);
                REQUIRE(a.order == b.order);
                REQUIRE(a.corrector_order == b.corrector_order);
                // the two sides differ by the rounding of rho's round trip through t (a few
                // ulps), amplified by the Lagrange basis as in check_data_coefficients: 1e-12
                // relative to the step's largest coefficient
                CHECK(a.x_coef == Approx(b.x_coef * ak / ak1).epsilon(1e-12));
                double scale = 0.0;
                for (int j = 0; j <= b.order; ++j) scale = std::max(scale, std::abs(b.c[std::size_t(j)] / ak1));
                for (int j = 0; j <= b.order; ++j)
                    CHECK(std::abs(a.c[std::size_t(j)] - b.c[std::size_t(j)] / ak1) <= 1e-12 * scale);
                scale = 0.0;
                for (int j = 0; j <= b.corrector_order; ++j) scale = std::max(scale, std::abs(b.d[std::size_t(j)] / ak1));
                for (int j = 0; j <= b.corrector_order; ++j)
                    CHECK(std::abs(a.d[std::size_t(j)] - b.d[std::size_t(j)] / ak1) <= 1e-12 * scale);
            }
        }
    }
}

namespace {

// Two solvers whose polynomial variables are the same function of rho, computed two ways:
// equal tables, to a few ulps of the nodes amplified by the Lagrange basis as in
// check_data_coefficients: 1e-12 of the step's largest coefficient.
void check_same_tables(const deis::multistep_solver& a, const deis::multistep_solver& b) {
    REQUIRE(a.table().size() == b.table().size());
    for (std::size_t k = 0; k < a.table().size(); ++k) {
        const auto &ra = a.table()[k], &rb = b.table()[k];
        double scale = 0.0;
        for (std::size_t j = 0; j < 4; ++j) scale = std::max({scale, std::abs(ra.c[j]), std::abs(ra.d[j])});
        for (std::size_t j = 0; j < 4; ++j) {
            CAPTURE(k, j, ra.c[j], rb.c[j], ra.d[j], rb.d[j]);
            CHECK(std::abs(rb.c[j] - ra.c[j]) <= 1e-12 * scale);
            CHECK(std::abs(rb.d[j] - ra.d[j]) <= 1e-12 * scale);
        }
    }
}

}  // namespace

TEST_CASE("tAB on the VP-linear clock: the identity on vp_linear(0.1, 20); refused where it cannot apply",
          "[coefficients][clock]") {
    const deis::vp_linear p{};
    const auto g = deis::power_t_grid(p, 10, 1.0, 1e-3, 2.0);
    for (auto pred : {prediction::noise, prediction::data}) {
        auto o = deis::parse_multistep(std::string("tab3") + (pred == deis::prediction::data ? "+data" : "+noise") + "+corrector");
        const deis::multistep_solver a(p, g, o);
        o.clock = deis::tab_clock::vp_linear;
        const deis::multistep_solver b(p, g, o);
        CAPTURE(int(pred));
        // the clock is t itself here, computed back from rho
        check_same_tables(a, b);
    }
    auto o = deis::parse_multistep("rhoab2+data");
    o.clock = deis::tab_clock::vp_linear;
    CHECK_THROWS_WITH(deis::multistep_solver(p, g, o), Catch::Contains("needs method tab"));
    // from pure noise (flow matching's t = 1: rho infinite, so is the clock)
    const deis::flow_matching f{};
    auto of = deis::parse_multistep("tab2+data");
    of.clock = deis::tab_clock::vp_linear;
    CHECK_THROWS_WITH(deis::multistep_solver(f, deis::power_t_grid(f, 10, 1.0, 1e-3, 2.0), of),
                      Catch::Contains("VP-linear clock"));
    CHECK_NOTHROW(deis::multistep_solver(f, deis::power_t_grid(f, 10, 0.99, 1e-3, 2.0), of));
}

// ---- tAB on the log-SNR clock (tab_clock::log_snr) -------------------------------------------

TEST_CASE("tAB on the log-SNR clock: coefficients equal the independent quadrature in log rho",
          "[coefficients][data][clock]") {
    auto check = [](const auto& sch, const independent_schedule& def, const std::vector<double>& grid) {
        check_tab_on_clock(sch, def, grid, deis::tab_clock::log_snr);
    };
    const deis::vp_linear p{};
    check(p, vp_linear_def(), deis::power_t_grid(p, 5, 1.0, 1e-3, 1.0));  // long steps: h up to 4
    check(p, vp_linear_def(), deis::recommended_grid(p, 15));
    const deis::vp_cosine c{};
    check(c, vp_cosine_def(), deis::power_t_grid(c, 10, 0.99, 1e-3, 2.0));
    const deis::edm e{};
    check(e, edm_def(), deis::power_rho_grid(e, 10, 80.0, 0.002, 7.0));
}

TEST_CASE("tAB on the log-SNR clock: on VE it is tAB in t; refused at rho = 0, rho = inf and off tAB",
          "[coefficients][clock]") {
    // ve's t is log sigma = log rho: the two clocks are the same variable
    const deis::ve v{};
    const auto g = deis::log_rho_grid(v, 10, 1.0, 1e-3);
    for (const char* name : {"tab3+data+corrector", "tab2+noise+corrector"}) {
        auto o = deis::parse_multistep(name);
        const deis::multistep_solver a(v, g, o);
        o.clock = deis::tab_clock::log_snr;
        const deis::multistep_solver b(v, g, o);
        CAPTURE(name);
        check_same_tables(a, b);  // log rho against ve's t(rho)
    }
    CHECK_THROWS_WITH(deis::parse_multistep("rhoab2+data+clock=logsnr"),
                      Catch::Contains("clock = log_snr is tAB's polynomial variable: it needs method tab"));
    auto o = deis::parse_multistep("rhoab2+data");
    o.clock = deis::tab_clock::log_snr;
    const deis::vp_linear p{};
    CHECK_THROWS_WITH(deis::multistep_solver(p, deis::power_t_grid(p, 10, 1.0, 1e-3, 2.0), o),
                      Catch::Contains("clock = log_snr is tAB's polynomial variable: it needs method tab"));
    const deis::flow_matching f{};
    const auto of = deis::parse_multistep("tab2+data+clock=logsnr");
    CHECK_THROWS_WITH(deis::multistep_solver(f, deis::power_t_grid(f, 10, 1.0, 1e-3, 2.0), of),
                      Catch::Contains("log-SNR clock"));
    CHECK_NOTHROW(deis::multistep_solver(f, deis::power_t_grid(f, 10, 0.99, 1e-3, 2.0), of));
    const deis::edm e{};
    CHECK_THROWS_WITH(deis::multistep_solver(e, deis::power_rho_grid(e, 10, 80.0, 0.0, 7.0), of),
                      Catch::Contains("sigma = 0"));
}

// ---- rhoAB with data prediction: convergence at the order of its polynomial ----------------

namespace {

// Gaussian data N(mu, diag s^2) under vp_linear: the exact probability-flow solution is, per
// component, x_t = alpha_t mu + sqrt(alpha_t^2 s^2 + sigma_t^2) (x_T - alpha_T mu) /
// sqrt(alpha_T^2 s^2 + sigma_T^2) (DESIGN.md section 2), written here directly. Stds <= 0.5
// so that the high orders leave the start-up steps behind at these N (as in
// test_prediction.cpp).
struct gaussian_case {
    deis::vp_linear schedule{};
    Eigen::VectorXd mu = (Eigen::VectorXd(3) << 1.2, -0.7, 0.4).finished();
    Eigen::VectorXd s = (Eigen::VectorXd(3) << 0.3, 0.5, 0.2).finished();
    deis::gmm_eps<deis::vp_linear> net{deis::gaussian_mixture(Eigen::VectorXd::Ones(1), mu, s), schedule};
    Eigen::MatrixXd x_T = start();

    static Eigen::MatrixXd start() {
        Eigen::MatrixXd x(3, 6);
        for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = 1.1 * std::cos(0.3 + 0.9 * double(i));
        return x;
    }
    Eigen::MatrixXd exact(double t_from, double t_to) const {
        const double a0 = schedule.alpha(t_from), s0 = schedule.sigma(t_from);
        const double a1 = schedule.alpha(t_to), s1 = schedule.sigma(t_to);
        Eigen::MatrixXd x(x_T.rows(), x_T.cols());
        for (Eigen::Index i = 0; i < x.rows(); ++i) {
            const double f = std::sqrt(a1 * a1 * s(i) * s(i) + s1 * s1) / std::sqrt(a0 * a0 * s(i) * s(i) + s0 * s0);
            for (Eigen::Index c = 0; c < x.cols(); ++c) x(i, c) = a1 * mu(i) + f * (x_T(i, c) - a0 * mu(i));
        }
        return x;
    }
    // RMS error at t_end = 1e-3 after `steps` steps on the quadratic grid from t = 1
    double error(int order, int steps) const {
        const deis::multistep_solver solver(schedule, deis::power_t_grid(schedule, steps, 1.0, 1e-3, 2.0),
                                            deis::parse_multistep("rhoab" + std::to_string(order) + "+data"));
        Eigen::MatrixXd x = x_T;
        REQUIRE(solver.sample(net, x).ok());
        return (x - exact(1.0, 1e-3)).norm() / std::sqrt(double(x.size()));
    }
};

}  // namespace

TEST_CASE("rhoAB with data prediction converges at order r + 1", "[prediction][convergence][data]") {
    const gaussian_case p;
    for (int r = 1; r <= 3; ++r) {
        const double e1 = p.error(r, 160), e2 = p.error(r, 320);
        const double slope = std::log2(e1 / e2);
        INFO("rhoAB" << r << " data: error " << e1 << " at 160 steps, " << e2 << " at 320, slope " << slope);
        // measured: slopes 1.98, 2.98, 3.66 (errors 3.9e-6, 2.3e-7, 2.5e-8 at 320 steps); r = 3
        // is still short of its asymptotic 4 here, as tAB3 with data prediction. The bounds
        // r + 1 - 0.5 .. r + 1 + 0.6 separate neighbouring orders; extrapolating x0 in the wrong
        // variable leaves no convergence at all (the run blows up).
        CHECK(e2 <= 1e-5);
        CHECK(slope >= r + 1 - 0.5);
        CHECK(slope <= r + 1 + 0.6);
    }
}
