// The noise schedules: closed forms written here independently of the library, the inverse
// t(rho), and monotonicity of rho.
#include <algorithm>
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
constexpr double pi = 3.141592653589793238462643383279502884;

// Times spread over [a, b]: both end points, 400 uniform points, and points approaching
// each end geometrically, down to distances 1e-15 (b - a) (or, at a = 0, down to t = 1e-12).
std::vector<double> times(double a, double b) {
    std::vector<double> ts{a, b, std::nextafter(b, a)};
    const int n = 400;
    for (int i = 1; i < n; ++i) ts.push_back(a + (b - a) * double(i) / n);
    for (int k = 1; k <= 15; ++k) {
        const double d = (b - a) * std::pow(10.0, -k);
        ts.push_back(b - d);
        if (a > 0) ts.push_back(a + d);
    }
    if (a == 0)
        for (int k = 1; k <= 12; ++k) ts.push_back(std::pow(10.0, -k));
    else
        ts.push_back(std::nextafter(a, b));
    return ts;
}

// t_from_rho(rho(t)) == t to `rel` relative for every t >= t_rel, and to `abs_tol` absolute
// below it. Returns the worst relative error over t >= t_rel.
template <class Schedule>
double check_round_trip(const Schedule& s, const std::vector<double>& ts, double rel, double t_rel = 0.0,
                        double abs_tol = 0.0) {
    double worst = 0.0;
    for (double t : ts) {
        const double back = s.t_from_rho(s.rho(t));
        CAPTURE(t, back, s.rho(t));
        if (t >= t_rel && t > 0.0) {
            const double e = rel_diff(back, t);
            CHECK(e <= rel);
            worst = std::max(worst, e);
        } else {
            CHECK(std::abs(back - t) <= abs_tol);
        }
    }
    return worst;
}

template <class Schedule>
void check_rho_increasing(const Schedule& s) {
    const int n = 20000;
    double prev = s.rho(s.t_min());
    CHECK(prev >= 0.0);
    for (int i = 1; i <= n; ++i) {
        const double t = s.t_min() + (s.t_max() - s.t_min()) * double(i) / n;
        const double r = s.rho(t);
        CAPTURE(t, r, prev);
        REQUIRE(r > prev);
        prev = r;
    }
    CHECK(std::isfinite(prev));
}

// alpha^2 + sigma^2 = 1 and rho = sigma/alpha. `log_alpha_abs_err` is the absolute
// rounding error of the schedule's log alpha: 0 where log alpha is computed from t with
// relative accuracy (vp_linear, vp_discrete), ~eps where it is the log of a rounded cosine
// (vp_cosine). sigma comes from 1 - alpha^2 = -expm1(2 log alpha) and so inherits that
// error relative to |log alpha|, which matters where alpha is within 1e-4 of 1.
template <class Schedule>
void check_variance_preserving(const Schedule& s, double log_alpha_abs_err = 0.0) {
    double worst = 0.0;
    for (double t : times(s.t_min(), s.t_max())) {
        const double a = s.alpha(t), g = s.sigma(t);
        CAPTURE(t, a, g);
        // alpha and sigma are each within a few ulps: the sum of squares within 4 eps
        worst = std::max(worst, std::abs(a * a + g * g - 1.0));
        // rho against sigma / alpha: a few ulps each (8 eps), plus the above
        if (t > s.t_min()) {
            const double tol = 8 * eps + (log_alpha_abs_err > 0 ? log_alpha_abs_err / std::abs(std::log(a)) : 0.0);
            CHECK(rel_diff(s.rho(t), g / a) <= tol);
        }
    }
    CHECK(worst <= 4 * eps);
}

std::vector<double> linspace(double a, double b, int n) {
    std::vector<double> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) v[std::size_t(i)] = a + (b - a) * double(i) / double(n - 1);
    return v;
}

std::vector<double> cumprod_one_minus(const std::vector<double>& betas) {
    std::vector<double> out(betas.size());
    double p = 1.0;
    for (std::size_t i = 0; i < betas.size(); ++i) out[i] = p *= (1.0 - betas[i]);
    return out;
}

}  // namespace

// ---- round trip t -> rho -> t ---------------------------------------------------------

// 1e-12 relative: t_from_rho inverts rho in closed form (or exactly on a linear piece), so
// the round trip costs the rounding of rho (a few ulps) times the relative condition number
// of t(rho), d log t / d log rho, which is <= ~2 for vp_linear and vp_discrete on the whole
// domain. Measured worst errors are ~1e-15.
TEST_CASE("vp_linear: t_from_rho inverts rho", "[schedule]") {
    SECTION("defaults") { CHECK(check_round_trip(deis::vp_linear{}, times(0.0, 1.0), 1e-12) <= 1e-12); }
    SECTION("beta_min = 0, t > 0") {
        // t = 0 in the next test
        auto ts = times(0.0, 2.0);
        ts.erase(std::remove(ts.begin(), ts.end(), 0.0), ts.end());
        CHECK(check_round_trip(deis::vp_linear(0.0, 10.0, 2.0), ts, 1e-12) <= 1e-12);
    }
    SECTION("other betas and a long domain") {
        CHECK(check_round_trip(deis::vp_linear(1.0, 5.0, 4.0), times(0.0, 4.0), 1e-12) <= 1e-12);
    }
}

// With beta_min = 0 the closed form 2L / (b0 + sqrt(b0^2 + 2 (b1 - b0) L)) is 0/0 at rho = 0,
// although t = 0 (rho = 0) is in the domain.
TEST_CASE("vp_linear with beta_min = 0: t_from_rho(0) is 0", "[schedule]") {
    const deis::vp_linear s(0.0, 10.0, 2.0);
    CHECK(s.rho(0.0) == 0.0);
    CHECK(s.t_from_rho(0.0) == 0.0);
}

// vp_cosine and ve have rho'(t) t / rho -> 0 at t = 0 (rho(0) > 0), so rho barely moves with
// t there and no inverse can recover t to a relative precision better than
// ulp(rho) / (rho' t) ~ eps / (t d log rho / dt): 1e-12 relative holds for t >= 1e-4
// (d log rho / dt >= 8.5 for ve, ~125 for vp_cosine near 0); below, the error is absolute,
// ~eps / (d log rho / dt) <= 3e-17, and 1e-15 is required.
TEST_CASE("vp_cosine: t_from_rho inverts rho", "[schedule]") {
    SECTION("unnormalised") {
        const deis::vp_cosine s{};
        CHECK(check_round_trip(s, times(0.0, s.t_max()), 1e-12, 1e-4, 1e-15) <= 1e-12);
    }
    SECTION("t_max close to 1") {
        const deis::vp_cosine s(0.008, 0.9999);
        CHECK(check_round_trip(s, times(0.0, s.t_max()), 1e-12, 1e-4, 1e-15) <= 1e-12);
    }
    SECTION("normalised, t >= 1e-2") {
        // see the next test for t < 1e-2
        const deis::vp_cosine s(0.008, 0.9946, true);
        std::vector<double> ts;
        for (double t : times(0.0, s.t_max()))
            if (t >= 1e-2) ts.push_back(t);
        CHECK(check_round_trip(s, ts, 1e-12) <= 1e-12);
    }
}

// Normalised, rho(t) ~ sqrt(t) near 0, so t(rho) is well conditioned (d log t / d log rho = 2)
// and must round trip to 1e-12 relative even at tiny t: log alpha and t(rho) are computed
// without differences of nearly equal numbers (a naive log cos(theta) - log cos(theta0) gave
// 2.5e-12 at t = 1e-3 and 2.7e-9 at t = 1e-9).
TEST_CASE("vp_cosine normalised: t_from_rho inverts rho near t = 0", "[schedule]") {
    const deis::vp_cosine s(0.008, 0.9946, true);
    std::vector<double> ts;
    for (double t : times(0.0, s.t_max()))
        if (t > 0.0 && t < 1e-2) ts.push_back(t);
    CHECK(check_round_trip(s, ts, 1e-12) <= 1e-12);
}

TEST_CASE("ve: t_from_rho inverts rho", "[schedule]") {
    for (auto s : {deis::ve{}, deis::ve(0.002, 80.0)}) {
        CHECK(check_round_trip(s, times(0.0, 1.0), 1e-12, 1e-4, 1e-15) <= 1e-12);
    }
}

TEST_CASE("vp_discrete: t_from_rho inverts rho", "[schedule]") {
    using deis::beta_schedule;
    std::vector<std::pair<std::string, deis::vp_discrete>> cases = {
        {"linear", deis::vp_discrete::from_betas(beta_schedule::linear)},
        {"scaled_linear", deis::vp_discrete::from_betas(beta_schedule::scaled_linear)},
        {"squaredcos_cap_v2", deis::vp_discrete::from_betas(beta_schedule::squaredcos_cap_v2)},
        {"linear, 50 entries", deis::vp_discrete::from_betas(beta_schedule::linear, 50, 1e-3, 0.2)},
        {"given table", deis::vp_discrete({0.99, 0.9, 0.5, 0.1, 1e-3})},
    };
    for (const auto& [name, s] : cases) {
        CAPTURE(name);
        auto ts = times(s.t_min(), s.t_max());
        // the table times themselves, where t(rho) changes pieces
        const int n = int(s.log_alpha_table().size());
        for (int j = 0; j < n; ++j) ts.push_back(double(j + 1) / n);
        CHECK(check_round_trip(s, ts, 1e-12) <= 1e-12);
    }
}

// ---- closed forms -----------------------------------------------------------------------

TEST_CASE("vp_linear: alpha in closed form, variance preserving", "[schedule]") {
    for (auto [b0, b1] : {std::pair{0.1, 20.0}, std::pair{0.0, 10.0}, std::pair{1.0, 5.0}}) {
        const deis::vp_linear s(b0, b1, 2.0);
        CAPTURE(b0, b1);
        CHECK(s.t_min() == 0.0);
        CHECK(s.t_max() == 2.0);
        for (double t : times(0.0, 2.0)) {
            const double expected = std::exp(-t * t * (b1 - b0) / 4.0 - t * b0 / 2.0);
            // one exp of an argument of size <= 21 rounded differently: 21 eps relative
            CHECK(rel_diff(s.alpha(t), expected) <= 32 * eps);
        }
        check_variance_preserving(s);
        check_rho_increasing(s);
    }
}

TEST_CASE("vp_cosine: alpha in closed form, normalised or not", "[schedule]") {
    const double sc = 0.008;
    const deis::vp_cosine plain(sc, 0.9946, false), norm(sc, 0.9946, true);
    const double c0 = std::cos(pi / 2 * sc / (1 + sc));
    for (double t : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.9946}) {
        CAPTURE(t);
        const double expected = std::cos(pi / 2 * (t + sc) / (1 + sc));
        // alpha = exp(log(cos)) costs a few ulps of log(cos) <= 5: 1e-14 relative
        CHECK(rel_diff(plain.alpha(t), expected) <= 1e-14);
        CHECK(rel_diff(norm.alpha(t), expected / c0) <= 1e-14);
    }
    CHECK(plain.alpha(0.0) < 1.0);
    CHECK(rel_diff(plain.alpha(0.0), c0) <= 4 * eps);
    CHECK(std::abs(norm.alpha(0.0) - 1.0) <= 2 * eps);
    CHECK(norm.sigma(0.0) <= 1e-7);  // sqrt of a few ulps of 1 - alpha^2
    check_variance_preserving(plain, eps);
    check_variance_preserving(norm, eps);
    check_rho_increasing(plain);
    check_rho_increasing(norm);
}

TEST_CASE("vp_discrete: the table at its own times, and the betas", "[schedule]") {
    using deis::beta_schedule;
    SECTION("a given table is reproduced at t_j = (j + 1)/n") {
        const std::vector<double> abar = {0.999, 0.98, 0.9, 0.6, 0.2, 0.01, 1e-4};
        const deis::vp_discrete s(abar);
        const int n = int(abar.size());
        // the domain reaches clean data at t = 0, where log alpha is interpolated from 0 to the
        // first entry: alpha(0) = 1, sigma(0) = 0, and halfway alpha = abar[0]^(1/4)
        CHECK(s.t_min() == 0.0);
        CHECK(s.t_max() == 1.0);
        CHECK(s.alpha(0.0) == 1.0);
        CHECK(s.sigma(0.0) == 0.0);
        CHECK(s.rho(0.0) == 0.0);
        CHECK(s.t_from_rho(0.0) == 0.0);
        CHECK(rel_diff(s.alpha(0.5 / n), std::pow(abar[0], 0.25)) <= 1e-15);
        // a table that starts at alpha = 1 keeps the domain from its first entry on
        CHECK(deis::vp_discrete({1.0, 0.5, 0.1}).t_min() == 1.0 / 3);
        for (int j = 0; j < n; ++j) {
            const double t = double(j + 1) / n;
            CAPTURE(j);
            // t_j * n - 1 lands on j to an ulp: the interpolation weight is off by ~1e-16,
            // times a jump of log alpha <= 2.3 between entries: 1e-14 relative
            CHECK(rel_diff(s.alpha(t), std::sqrt(abar[std::size_t(j)])) <= 1e-14);
        }
        // between entries, log alpha is the straight line between its neighbours
        const double t = (2.0 + 0.25) / n;  // a quarter of the way from entry 1 to entry 2
        const double la = 0.75 * 0.5 * std::log(abar[1]) + 0.25 * 0.5 * std::log(abar[2]);
        CHECK(rel_diff(s.alpha(t), std::exp(la)) <= 1e-14);
        check_variance_preserving(s);
        check_rho_increasing(s);
    }
    auto check_betas = [](const deis::vp_discrete& s, const std::vector<double>& betas) {
        const auto abar = cumprod_one_minus(betas);
        const int n = int(abar.size());
        REQUIRE(int(s.log_alpha_table().size()) == n);
        double worst = 0.0;
        for (int j = 0; j < n; ++j) {
            const double a = s.alpha(double(j + 1) / n);
            worst = std::max(worst, rel_diff(a * a, abar[std::size_t(j)]));
        }
        // n = 1000 products here against a sum of log1p there: each side accumulates up to
        // ~n eps/2 of rounding in the worst case (random-walk ~sqrt(n) eps in practice).
        CHECK(worst <= 1e-12);
        check_variance_preserving(s);
        check_rho_increasing(s);
    };
    SECTION("linear betas: alphas_cumprod is the cumulative product") {
        check_betas(deis::vp_discrete::from_betas(beta_schedule::linear), linspace(1e-4, 0.02, 1000));
        check_betas(deis::vp_discrete::from_betas(beta_schedule::linear, 200, 1e-3, 0.05), linspace(1e-3, 0.05, 200));
    }
    SECTION("scaled_linear betas") {
        auto b = linspace(std::sqrt(0.00085), std::sqrt(0.012), 1000);
        for (auto& v : b) v *= v;
        check_betas(deis::vp_discrete::from_betas(beta_schedule::scaled_linear), b);
    }
    SECTION("squaredcos_cap_v2 betas") {
        const int n = 1000;
        auto abar = [](double t) {
            const double c = std::cos((t + 0.008) / 1.008 * pi / 2);
            return c * c;
        };
        std::vector<double> b(n);
        for (int i = 0; i < n; ++i)
            b[std::size_t(i)] = std::min(1.0 - abar(double(i + 1) / n) / abar(double(i) / n), 0.999);
        check_betas(deis::vp_discrete::from_betas(beta_schedule::squaredcos_cap_v2), b);
    }
    SECTION("from_beta_values") {
        const std::vector<double> b = {0.01, 0.05, 0.2, 0.5, 0.9};
        check_betas(deis::vp_discrete::from_beta_values(b), b);
    }
}

TEST_CASE("ve: sigma in closed form", "[schedule]") {
    for (auto [lo, hi] : {std::pair{0.01, 50.0}, std::pair{0.002, 80.0}}) {
        const deis::ve s(lo, hi);
        CHECK(s.t_min() == 0.0);
        CHECK(s.t_max() == 1.0);
        for (double t : times(0.0, 1.0)) {
            CAPTURE(t);
            CHECK(s.alpha(t) == 1.0);
            // pow against exp(t log ratio): the exponent is <= 10.6, so a few ulps of it
            // become ~10 eps relative
            CHECK(rel_diff(s.sigma(t), lo * std::pow(hi / lo, t)) <= 32 * eps);
            CHECK(s.rho(t) == s.sigma(t));
        }
        CHECK(rel_diff(s.sigma(0.0), lo) <= 2 * eps);
        CHECK(rel_diff(s.sigma(1.0), hi) <= 32 * eps);
        check_rho_increasing(s);
    }
}
