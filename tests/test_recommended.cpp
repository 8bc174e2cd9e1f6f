// The recommended configuration (recommended.hpp): its rule, and its accuracy against
// checked-in data:
// - on the reference 2-D ring (VP), at every NFE from 5 to 50 of tests/data/gmm2d_results.csv,
//   at or below the best median error any peer reached there (read from the file), and
//   decreasing in NFE;
// - on the ring under flow matching (tests/data/flow), 10 times better than the best Euler run
//   at 10 NFE and 33 times at 20 (Euler computed here, as DDIM with the velocity, which is the
//   Euler method step for step: see test_flow.cpp);
// - on the VE ring (tests/data/ve), against tAB2 and tAB3 + corrector with noise prediction on
//   the log-rho grid.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "catch.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "deis/recommended.hpp"
#include "support.hpp"

namespace {

// The best (smallest) median error of any row of gmm2d_results.csv at each NFE.
std::map<int, double> best_peer_medians() {
    const std::string path = deis_test::reference_path("gmm2d_results.csv");
    std::ifstream in(path);
    REQUIRE(in);
    std::string line;
    REQUIRE(std::getline(in, line));
    std::vector<std::string> header;
    for (auto& c : deis_tools::split_csv_line(line)) header.push_back(deis_tools::trim(c));
    const auto col = [&](const std::string& n) {
        const auto it = std::find(header.begin(), header.end(), n);
        REQUIRE(it != header.end());
        return std::size_t(it - header.begin());
    };
    const std::size_t nfe = col("nfe"), med = col("median_err");
    std::map<int, double> best;
    while (std::getline(in, line)) {
        const auto cells = deis_tools::split_csv_line(line);
        if (cells.size() != header.size()) continue;
        const int n = std::stoi(cells[nfe]);
        const double m = std::stod(cells[med]);
        const auto it = best.find(n);
        if (it == best.end() || m < it->second) best[n] = m;
    }
    return best;
}

template <class Schedule, class Net>
double median_error(const Schedule& s, const Net& net, const std::vector<double>& grid, deis::multistep_options o,
                    const Eigen::MatrixXd& x_T, const Eigen::MatrixXd& exact) {
    deis::multistep_solver solver(s, grid, o);
    deis::state<double> x = x_T;
    const auto r = solver.sample(net, x);
    REQUIRE(r.ok());
    REQUIRE(r.nfe == solver.steps());
    return deis_test::median(deis_test::sample_errors(x, exact));
}

}  // namespace

TEST_CASE("mean_log_rho_step and the rule", "[recommended]") {
    const deis::vp_linear s;
    const double range = std::log(s.rho(1.0) / s.rho(1e-3));  // 9.58
    // the grid's power for a mean log-rho step h: 3 above 1, rising from 2 at h = 0.5 to 2.6 at
    // 0.65 (2 + 4 (h - 0.5)), 2 elsewhere
    const auto power = [](double h) { return h > 1.0 ? 3.0 : h > 0.5 && h <= 0.65 ? 2.0 + 4.0 * (h - 0.5) : 2.0; };
    for (int n : {5, 7, 8, 9, 10, 12, 13, 14, 15, 16, 18, 19, 20, 50}) {
        const auto grid = deis::recommended_grid(s, n);
        CHECK(grid.front() == 1.0);
        CHECK(grid.back() == 1e-3);
        const double h = range / n;
        CHECK(deis::mean_log_rho_step(s, grid) == Approx(h).epsilon(1e-14));
        const auto o = deis::recommended_options(s, grid);
        CHECK(o.predict == deis::prediction::data);
        CHECK(o.corrector);
        // h = 9.58 / n: rhoAB2 up to 7 steps (h > 1.3), rhoAB1 at 8-9 (h > 1), tAB1 at 10-12
        // (h > 0.75), tAB3 from 13 on
        CHECK(o.method == (n <= 9 ? deis::multistep_method::rhoab : deis::multistep_method::tab));
        CHECK(o.order == (n <= 7 ? 2 : n <= 12 ? 1 : 3));
        // power of t: 3 up to 9 steps, 2 + 4 (h - 0.5) at 15-19 steps (2.56 to 2.02), else 2
        const double k = power(h);
        CHECK(k == (n <= 9 ? 3.0 : n >= 15 && n <= 19 ? 2.0 + 4.0 * (h - 0.5) : 2.0));
        CHECK(grid[1] == Approx(std::pow(1.0 - (1.0 - std::pow(1e-3, 1.0 / k)) / n, k)).epsilon(1e-12));
    }
    // first step from pure noise and a last step to clean data are left out of the mean
    const deis::flow_matching f;
    const std::vector<double> g = {1.0, 0.5, 0.25, 0.0};
    CHECK(deis::mean_log_rho_step(f, g) == Approx(std::log(1.0 / (0.25 / 0.75))).epsilon(1e-14));
    CHECK(std::isinf(deis::mean_log_rho_step(f, std::vector<double>{1.0, 0.0})));
    CHECK(deis::family_of(s) == deis::schedule_family::vp);
    CHECK(deis::family_of(f) == deis::schedule_family::flow);
    CHECK(deis::family_of(deis::ve(0.01, 50.0)) == deis::schedule_family::sigma_space);
    CHECK(deis::family_of(deis::edm()) == deis::schedule_family::sigma_space);
    const auto fo = deis::recommended_options(f, deis::recommended_grid(f, 10));
    CHECK(fo.predict == deis::prediction::data);  // the only form that starts at alpha = 0
    CHECK(fo.method == deis::multistep_method::tab);
    // VE from t = 1 to 1e-3 (sigma 50 to 0.0101, log-rho range 8.51): the VP rule on the
    // VP-linear clock, except tAB2 with noise prediction on the Karras grid for 0.65 < h <= 0.9
    const deis::ve v(0.01, 50.0);
    const deis::vp_linear clock(0.1, 20.0);
    for (int n : {5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 20, 50}) {
        CAPTURE(n);
        const auto grid = deis::recommended_grid(v, n, 1.0, 1e-3);
        const auto o = deis::recommended_options(v, grid);
        const bool karras = n >= 10 && n <= 13;
        CHECK(o.predict == (karras ? deis::prediction::noise : deis::prediction::data));
        CHECK(o.corrector == !karras);
        CHECK(o.method == (n <= 8 ? deis::multistep_method::rhoab : deis::multistep_method::tab));
        CHECK(o.order == (n <= 6 ? 2 : n <= 9 ? 1 : karras ? 2 : 3));
        CHECK(o.clock == (n >= 9 && !karras ? deis::tab_clock::vp_linear : deis::tab_clock::schedule));
        // the grid: power 7 in rho, or in the clock power 3 (h > 1), 2 + 4 (h - 0.5) at 14-17
        // steps (h = 0.61 to 0.5005), else 2
        const double h = std::log(v.rho(1.0) / v.rho(1e-3)) / n;
        const double k = karras ? 7.0 : power(h);
        CHECK(k == (n <= 8 ? 3.0 : n >= 14 && n <= 17 ? 2.0 + 4.0 * (h - 0.5) : karras ? 7.0 : 2.0));
        auto var = [&](double t) { return karras ? v.rho(t) : clock.t_from_rho(v.rho(t)); };
        const double a = std::pow(var(1.0), 1.0 / k), b = std::pow(var(1e-3), 1.0 / k);
        for (int i = 0; i <= n; ++i)
            CHECK(var(grid[std::size_t(i)]) == Approx(std::pow(a + i * (b - a) / n, k)).epsilon(1e-12));
    }
    // EDM to sigma = 0: the rule's grid to 0.002, then 0
    const deis::edm e;
    const auto eg = deis::recommended_grid(e, 10, e.t_max(), 0.0);
    REQUIRE(eg.size() == 11);
    CHECK(eg[9] == Approx(0.002).epsilon(1e-12));
    CHECK(eg[10] == 0.0);
    // ... on every branch of the rule, so that recommended_options sees the h the grid was
    // chosen with (the Karras band: 13-17 steps from 80)
    for (int n = 2; n <= 40; ++n) {
        CAPTURE(n);
        const auto g = deis::recommended_grid(e, n, e.t_max(), 0.0);
        REQUIRE(g.size() == std::size_t(n) + 1);
        CHECK(g[std::size_t(n) - 1] == Approx(0.002).epsilon(1e-12));
        const double h = std::log(e.t_max() / 0.002) / double(n - 1);
        CHECK(deis::mean_log_rho_step(e, g) == Approx(h).epsilon(1e-12));
        const bool karras = h > 0.65 && h <= 0.9;
        CHECK(deis::recommended_options(e, g).predict == (karras ? deis::prediction::noise : deis::prediction::data));
    }
    CHECK_THROWS_AS(deis::recommended_options(s, std::vector<double>{0.5, 0.7}), std::invalid_argument);
    CHECK_THROWS_AS(deis::recommended_grid(s, 0), std::invalid_argument);
}

TEST_CASE("recommended beats the best peer of gmm2d_results.csv at every NFE from 5 to 50", "[recommended]") {
    const deis::vp_linear s;
    const deis::gmm_eps<deis::vp_linear> net(deis_test::reference_mixture(), s);
    const Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv");
    const Eigen::MatrixXd exact = deis_test::reference_samples("gmm2d_exact.csv");
    const auto best = best_peer_medians();
    std::vector<std::pair<int, double>> ours;
    for (const auto& [nfe, peer] : best) {
        if (nfe < 5 || nfe > 50) continue;
        const auto grid = deis::recommended_grid(s, nfe);
        const double e = median_error(s, net, grid, deis::recommended_options(s, grid), x_T, exact);
        // gmm2d_exact.csv is accurate to ~1e-13, far below every value compared here
        INFO("NFE " << nfe << ": recommended " << e << ", best peer " << peer);
        CHECK(e <= peer);
        ours.emplace_back(nfe, e);
    }
    REQUIRE(ours.size() >= 10);  // 5, 6, 8, 9, 10, 14, 15, 16, 20, 21, 48, 50
    // strictly decreasing in NFE (the closest pairs, measured: 7.23e-3 at 8 and 7.18e-3 at 9,
    // 3.55e-3 at 10 and 3.22e-3 at 14)
    for (std::size_t i = 1; i < ours.size(); ++i) {
        INFO("NFE " << ours[i - 1].first << ": " << ours[i - 1].second << ", NFE " << ours[i].first << ": "
                    << ours[i].second);
        CHECK(ours[i].second < ours[i - 1].second);
    }
    // no worse than the configuration before this rule (tAB1/tAB3 + corrector on the quadratic
    // grid: 3.55e-3, 3.88e-4, 9.49e-6 at 10, 20, 50; the same solver on the same grid there)
    for (const auto& [nfe, e] : ours) {
        if (nfe == 10) CHECK(e <= 3.55e-3 * 1.001);
        if (nfe == 20) CHECK(e <= 3.88e-4 * 1.001);
        if (nfe == 50) CHECK(e <= 9.49e-6 * 1.001);
    }
}

TEST_CASE("recommended on flow matching: 10x Euler's best at 10 NFE, 33x at 20", "[recommended][flow]") {
    const deis::flow_matching f;
    const deis::gmm_model<deis::flow_matching> v(deis_test::reference_mixture(), f, deis::model_output::velocity);
    const Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv");
    const Eigen::MatrixXd exact = deis_test::reference_samples("flow/gmm2d_flow_exact.csv");
    deis::multistep_options euler;
    euler.method = deis::multistep_method::ddim;
    euler.order = 0;
    euler.predict = deis::prediction::data;
    euler.output = deis::model_output::velocity;
    for (const auto& [nfe, factor] : {std::pair<int, double>{10, 10.0}, {20, 33.0}}) {
        // Euler's best over the SD3 shifts 1..6 on the uniform grid from 1 to 1e-3 (issue 11:
        // 7.38e-2 at 10 and 4.06e-2 at 20 with shift 3)
        double best_euler = 1e300;
        for (double shift : {1.0, 2.0, 3.0, 4.0, 5.0, 6.0})
            best_euler = std::min(best_euler, median_error(f, v, deis::shifted_grid(f, deis::grid_kind::power_t, nfe,
                                                                                    1.0, 1e-3, 1.0, shift),
                                                           euler, x_T, exact));
        const auto grid = deis::recommended_grid(f, nfe);
        REQUIRE(grid.front() == 1.0);  // from pure noise
        auto o = deis::recommended_options(f, grid);
        o.output = deis::model_output::velocity;
        const double e = median_error(f, v, grid, o, x_T, exact);
        INFO("NFE " << nfe << ": recommended " << e << ", best Euler " << best_euler);
        CHECK(e * factor <= best_euler);
    }
}

TEST_CASE("recommended on the VE ring: within 2x of tAB2 and of tAB3 + corrector on the log grid", "[recommended]") {
    const deis::ve s(0.01, 50.0);
    const deis::gmm_eps<deis::ve> net(deis_test::reference_mixture(), s);
    const Eigen::MatrixXd x_T = deis_test::reference_samples("ve/gmm2d_ve_xT.csv");
    const Eigen::MatrixXd exact = deis_test::reference_samples("ve/gmm2d_ve_exact.csv");
    for (int nfe : {5, 10, 15, 20, 30, 50}) {
        const auto grid = deis::recommended_grid(s, nfe, 1.0, 1e-3);
        const double e = median_error(s, net, grid, deis::recommended_options(s, grid), x_T, exact);
        const auto log_grid = deis::log_rho_grid(s, nfe, 1.0, 1e-3);
        const double tab2 = median_error(s, net, log_grid, deis::parse_multistep("tab2"), x_T, exact);
        const double tab3c =
            median_error(s, net, log_grid, deis::parse_multistep("tab3+corrector"), x_T, exact);
        INFO("NFE " << nfe << ": recommended " << e << ", tAB2 (log) " << tab2 << ", tAB3 + corrector (log) " << tab3c);
        // tAB2 on the log grid was the best of the library at 5 NFE, tAB3 + corrector at 30
        // and 40 (deis-bench --case ve); a factor 2 is the acceptance of issue 13 against the
        // library's best configuration. Ratios to the smaller measured by deis-bench --case ve
        // (its own 1000 x_T): 0.38 at 5, 0.14 to 0.56 from 10 to 50.
        CHECK(e <= 2.0 * std::min(tab2, tab3c));
    }
}
