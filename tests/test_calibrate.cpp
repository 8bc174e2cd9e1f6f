// Calibrated grids (deis/research/calibrate.hpp) on the reference ring (VP linear, exact eps):
// - deterministic; a precomputed reference gives the grid of the internal one;
// - the progress callback sees every run and stops the search with the best grid so far;
// - the network calls it reports are the calls it makes;
// - never worse than the initial (recommended) grid on the calibration batch, by construction,
//   and not worse on the reference x_T, which the calibration never sees;
// - at 5 and 10 NFE the median error on the reference x_T at most half the best peer of
//   tests/data/gmm2d_results.csv;
// - generalizes: calibrated on one batch, the error on another batch of the same size stays
//   within a factor 1.3 of the calibration batch's.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <vector>

#include "catch.hpp"
#include "deis/research/calibrate.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support.hpp"

namespace calibrate_test {

// M standard normal 2-D points from the library's counter-based generator (the same on every
// platform), seed `seed`.
deis::state<double> prior_batch(Eigen::Index m, std::uint64_t seed) {
    deis::state<double> z(2, m);
    deis::noise_ops<deis::state<double>>::fill(z, seed, 0);
    return z;
}

struct ring {
    deis::vp_linear s;
    deis::gmm_eps<deis::vp_linear> net{deis_test::reference_mixture(), s};
    Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv");
    Eigen::MatrixXd exact = deis_test::reference_samples("gmm2d_exact.csv");

    double error_on_reference(const std::vector<double>& grid) const {
        const deis::multistep_solver solver(s, grid, deis::recommended_options(s, grid));
        deis::state<double> x = x_T;
        REQUIRE(solver.sample(net, x).ok());
        return deis_test::median(deis_test::sample_errors(x, exact));
    }
};

auto recommended_config(const deis::vp_linear& s) {
    return [s](const std::vector<double>& g) { return deis::recommended_options(s, g); };
}

// A network that counts its calls.
struct counting {
    const deis::gmm_eps<deis::vp_linear>& net;
    long calls = 0;
    void operator()(const deis::state<double>& x, double t, deis::state<double>& out) {
        ++calls;
        net(x, t, out);
    }
};

// The median error of `grid` on the reference's batch, computed here.
double batch_error(const ring& p, const deis::calibration_reference& ref, const std::vector<double>& grid) {
    const deis::multistep_solver solver(p.s, grid, deis::recommended_options(p.s, grid));
    deis::state<double> x = ref.batch();
    REQUIRE(solver.sample(p.net, x).ok());
    return deis_test::median(deis_test::sample_errors(x, ref.solution()));
}

}  // namespace calibrate_test


TEST_CASE("optimize_grid: deterministic, bounded, never worse than its start", "[calibrate]") {
    const calibrate_test::ring p;
    const auto batch = calibrate_test::prior_batch(128, 7);
    deis::calibrate_options opt;
    opt.max_runs = 60;
    opt.candidates = 32;  // a coarse candidate grid keeps the test fast
    const auto a = deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), p.net, batch, 6, opt);
    const auto b = deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), p.net, batch, 6, opt);
    CHECK(a.grid == b.grid);  // bit for bit
    CHECK(a.error == b.error);
    CHECK(a.runs <= 60);
    CHECK(a.error <= a.initial_error);
    REQUIRE(a.grid.size() == 7);
    CHECK(a.grid.front() == 1.0);
    CHECK(a.grid.back() == 1e-3);
    CHECK_NOTHROW(deis::check_grid(p.s, a.grid));
    // the initial error is the recommended grid's on this batch, computed independently
    {
        const auto g = deis::recommended_grid(p.s, 6);
        const deis::multistep_solver solver(p.s, g, deis::recommended_options(p.s, g));
        deis::state<double> x = batch, ref = batch;
        REQUIRE(solver.sample(p.net, x).ok());
        deis::reference_options ro;
        ro.atol = ro.rtol = 1e-11;
        REQUIRE(deis::reference_solution(p.s, p.net, ref, 1.0, 1e-3, ro));
        // both references at 1e-11 differ by ~1e-11, far below the errors (~1e-2)
        CHECK(deis_test::median(deis_test::sample_errors(x, ref)) == Approx(a.initial_error).epsilon(1e-6));
    }
    // a fixed multistep_options works too
    deis::multistep_options tab3;
    tab3.method = deis::multistep_method::tab;
    tab3.order = 3;
    const auto c = deis::optimize_grid(p.s, tab3, p.net, batch, 6, opt);
    CHECK(c.error <= c.initial_error);

    deis::calibrate_options bad;
    bad.max_runs = 0;
    CHECK_THROWS_AS(deis::optimize_grid(p.s, tab3, p.net, batch, 6, bad), std::invalid_argument);
    CHECK_THROWS_AS(deis::optimize_grid(p.s, tab3, p.net, batch, 0), std::invalid_argument);
    CHECK_THROWS_AS(deis::optimize_grid(p.s, tab3, p.net, deis::state<double>(2, 0), 6), std::invalid_argument);
    bad = {};
    bad.initial_grid = {1.0, 0.5, 1e-3};
    CHECK_THROWS_AS(deis::optimize_grid(p.s, tab3, p.net, batch, 6, bad), std::invalid_argument);
}

TEST_CASE("optimize_grid on the ring: half the best peer at 5 and 10 NFE, generalizes", "[calibrate]") {
    const calibrate_test::ring p;
    const auto calib = calibrate_test::prior_batch(256, 11), other = calibrate_test::prior_batch(256, 12);
    // best peer medians of gmm2d_results.csv: official tAB2 (log) at 5, UniPC bh2 at 10
    const double peer5 = deis_test::reference_result("deis-official", "t_ab", 2, "log", 5, "median_err");
    const double peer10 = deis_test::reference_result("unipc", "unipc-bh2:data_prediction", 2, "t2", 10, "median_err");
    // one reference of the calibration batch for every NFE
    calibrate_test::counting counted{p.net};
    const auto ref = deis::make_calibration_reference(p.s, counted, calib, 1.0, 1e-3);
    CHECK(counted.calls == ref.network_calls);
    // other batch's own reference
    deis::state<double> other_ref = other;
    deis::reference_options ro;
    ro.atol = ro.rtol = 1e-11;
    REQUIRE(deis::reference_solution(p.s, p.net, other_ref, 1.0, 1e-3, ro));
    long total_search_calls = 0;
    for (int n : {5, 8, 10, 15, 20}) {
        counted.calls = 0;
        const auto r = deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), counted, ref, n);
        CHECK(r.runs <= 100);  // the default budget
        CHECK(r.search_calls == long(r.runs) * n);
        CHECK(counted.calls == r.search_calls);
        CHECK(r.reference_calls == 0);  // given, not made
        total_search_calls += r.search_calls;
        CHECK(r.error <= r.start_error);
        CHECK(r.start_error <= r.initial_error);
        const double calibrated = p.error_on_reference(r.grid);
        const double uncalibrated = p.error_on_reference(deis::recommended_grid(p.s, n));
        // the error on another batch of the same size, against its own reference
        deis::state<double> x = other;
        const deis::multistep_solver solver(p.s, r.grid, deis::recommended_options(p.s, r.grid));
        REQUIRE(solver.sample(p.net, x).ok());
        const double on_other = deis_test::median(deis_test::sample_errors(x, other_ref));
        INFO("NFE " << n << ": calibration batch " << r.initial_error << " -> " << r.start_error << " (from dp: "
                    << r.from_dp << ") -> " << r.error << " (" << r.runs << " runs, " << r.search_calls
                    << " calls + the reference's " << ref.network_calls << ", " << r.seconds
                    << " s); reference x_T " << uncalibrated << " -> " << calibrated << "; other batch " << on_other);
        CHECK(calibrated <= uncalibrated);
        // generalization (issue 21's target: within 1.3x on another batch): a median over 256
        // samples moves by ~10% between batches (measured 0.84x-1.11x here); 1.3 leaves room
        // for that and fails when the grid only fits its batch
        CHECK(on_other <= 1.3 * r.error);
        if (n == 5) CHECK(calibrated <= 0.5 * peer5);
        if (n == 10) CHECK(calibrated <= 0.5 * peer10);
    }
    // the cost: one reference (1808 calls measured, against 1313 for the final state alone:
    // the restarts at the 128 candidate times; 2500 leaves room for another platform's
    // round-off in the step-size control) plus at most 100 runs per NFE: 7,538 calls measured
    // for these five NFEs, where the search before re-solved the reference on every call and
    // ran up to 500 runs (27,777 calls; the errors here are 0.75x-1.21x of its)
    CHECK(ref.network_calls <= 2500);
    CHECK(ref.network_calls + total_search_calls <= 2500 + 100 * (5 + 8 + 10 + 15 + 20));
}

TEST_CASE("optimize_grid: the dynamic programming finds the cheapest path of N jumps", "[calibrate]") {
    const double inf = std::numeric_limits<double>::infinity();
    // 5 candidates; cost[i][j] of a jump i -> j (i < j)
    std::vector<std::vector<double>> cost(5, std::vector<double>(5, inf));
    for (std::size_t i = 0; i < 5; ++i)
        for (std::size_t j = i + 1; j < 5; ++j) cost[i][j] = double((j - i) * (j - i));  // long jumps cost more
    cost[0][3] = 1.0;                                                                   // but this one is cheap
    CHECK(deis::detail::shortest_path(cost, 2, 1.0) == std::vector<std::size_t>{0, 3, 4});
    CHECK(deis::detail::shortest_path(cost, 4, 1.0) == std::vector<std::size_t>{0, 1, 2, 3, 4});
    CHECK(deis::detail::shortest_path(cost, 1, 1.0) == std::vector<std::size_t>{0, 4});
    CHECK(deis::detail::shortest_path(cost, 5, 1.0).empty());  // more jumps than candidates allow
    // 3 jumps: 0-1-2-4, 0-1-3-4 and 0-2-3-4 all cost 6, the least
    const auto three = deis::detail::shortest_path(cost, 3, 1.0);
    REQUIRE(three.size() == 4);
    double total = 0.0;
    for (std::size_t k = 0; k + 1 < three.size(); ++k) total += cost[three[k]][three[k + 1]];
    CHECK(total == 6.0);
    // the costs squared (q = 2): 0-3-4 still, 1 + 1 against 4^2 + 4^2 for 0-2-4
    CHECK(deis::detail::shortest_path(cost, 2, 2.0) == std::vector<std::size_t>{0, 3, 4});
}

TEST_CASE("optimize_grid: a precomputed reference gives the internal one's grid", "[calibrate]") {
    const calibrate_test::ring p;
    const auto batch = calibrate_test::prior_batch(64, 5);
    deis::calibrate_options opt;
    opt.max_runs = 30;
    opt.candidates = 32;
    calibrate_test::counting internal{p.net};
    const auto a = deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), internal, batch, 6, opt);
    // every call counted, in the reference's share and the search's
    CHECK(internal.calls == a.network_calls);
    CHECK(a.network_calls == a.reference_calls + a.search_calls);
    CHECK(a.search_calls == long(a.runs) * 6);
    CHECK(a.reference_calls > 0);

    deis::calibration_reference_options ro;
    ro.candidates = 32;  // as opt.candidates; tol and output are the defaults of both
    calibrate_test::counting made{p.net};
    const auto ref = deis::make_calibration_reference(p.s, made, batch, 1.0, 1e-3, ro);
    CHECK(ref.complete);
    CHECK(made.calls == ref.network_calls);
    CHECK(ref.network_calls == a.reference_calls);
    REQUIRE(ref.times.size() == ref.states.size());
    CHECK(ref.outputs.size() == ref.times.size());
    CHECK(ref.times.front() == 1.0);
    CHECK(ref.times.back() == 1e-3);
    CHECK(ref.batch() == batch);

    calibrate_test::counting given{p.net};
    const auto b = deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), given, ref, 6, opt);
    CHECK(b.grid == a.grid);  // bit for bit
    CHECK(b.error == a.error);
    CHECK(b.runs == a.runs);
    CHECK(b.reference_calls == 0);
    CHECK(given.calls == b.search_calls);
    CHECK(b.search_calls == a.search_calls);
    // the reported error is the grid's, recomputed here
    CHECK(calibrate_test::batch_error(p, ref, b.grid) == b.error);

    // the reference's ends and output must be the grid's and the configuration's
    opt.initial_grid = deis::recommended_grid(p.s, 6, 0.9, 1e-3);
    CHECK_THROWS_AS(deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), p.net, ref, 6, opt),
                    std::invalid_argument);
    opt.initial_grid.clear();
    auto x0 = [&p](const std::vector<double>& g) {
        deis::multistep_options o = deis::recommended_options(p.s, g);
        o.output = deis::model_output::x0;
        return o;
    };
    CHECK_THROWS_AS(deis::optimize_grid(p.s, x0, p.net, ref, 6, opt), std::invalid_argument);
    deis::calibration_reference incomplete = ref;
    incomplete.complete = false;
    CHECK_THROWS_AS(deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), p.net, incomplete, 6, opt),
                    std::invalid_argument);
}

TEST_CASE("optimize_grid: the progress callback sees every run and can stop it", "[calibrate]") {
    const calibrate_test::ring p;
    const auto batch = calibrate_test::prior_batch(64, 6);
    deis::calibration_reference_options ro;
    ro.candidates = 32;
    int segments = 0;
    ro.progress = [&](const deis::calibrate_progress& q) {
        CHECK(q.phase == deis::calibrate_phase::reference);
        CHECK(q.segments == ++segments);
        return true;
    };
    const auto ref = deis::make_calibration_reference(p.s, p.net, batch, 1.0, 1e-3, ro);
    CHECK(segments == int(ref.times.size()) - 1);

    std::vector<double> seen;  // best_error after each run
    deis::calibrate_options opt;
    opt.max_runs = 40;
    opt.progress = [&](const deis::calibrate_progress& q) {
        CHECK(q.phase == deis::calibrate_phase::search);
        CHECK(q.runs == int(seen.size()) + 1);
        CHECK(q.max_runs == 40);
        CHECK(q.network_calls == long(q.runs) * 6);
        seen.push_back(q.best_error);
        return true;
    };
    const auto full = deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), p.net, ref, 6, opt);
    CHECK_FALSE(full.stopped);
    CHECK(int(seen.size()) == full.runs);
    CHECK(seen.back() == full.error);
    CHECK(std::is_sorted(seen.rbegin(), seen.rend()));  // the best never rises

    // stopped after the 7th run: the best of those 7, as the callback saw it
    REQUIRE(full.runs > 7);
    opt.progress = [](const deis::calibrate_progress& q) { return q.runs < 7; };
    const auto cut = deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), p.net, ref, 6, opt);
    CHECK(cut.stopped);
    CHECK(cut.runs == 7);
    CHECK(cut.error == seen[6]);
    CHECK(calibrate_test::batch_error(p, ref, cut.grid) == cut.error);

    // stopped during the reference: the initial grid, no error measured
    opt.progress = [](const deis::calibrate_progress& q) { return q.phase != deis::calibrate_phase::reference; };
    opt.candidates = 32;
    const auto early = deis::optimize_grid(p.s, calibrate_test::recommended_config(p.s), p.net, batch, 6, opt);
    CHECK(early.stopped);
    CHECK(early.runs == 0);
    CHECK(early.grid == deis::recommended_grid(p.s, 6));
    CHECK(std::isnan(early.error));
    CHECK(early.reference_calls > 0);
}

TEST_CASE("optimize_configuration: the configuration and the grid together, within one budget", "[calibrate]") {
    const calibrate_test::ring p;
    const auto batch = calibrate_test::prior_batch(128, 8);
    deis::calibration_reference_options ro;
    ro.candidates = 32;  // a coarse candidate grid keeps the test fast
    const auto ref = deis::make_calibration_reference(p.s, p.net, batch, 1.0, 1e-3, ro);
    using config_fn = std::function<deis::multistep_options(const std::vector<double>&)>;
    const std::vector<config_fn> configs = {
        [](const std::vector<double>&) { return deis::parse_multistep("ddim"); },
        calibrate_test::recommended_config(p.s),
        [](const std::vector<double>&) { return deis::parse_multistep("tab3+data+corrector"); },
    };
    const int steps = 8;
    deis::calibrate_options opt;
    opt.max_runs = 60;
    std::vector<int> seen;
    opt.progress = [&](const deis::calibrate_progress& q) {
        seen.push_back(q.runs);
        CHECK(q.max_runs == 60);
        CHECK(q.network_calls == long(q.runs) * steps);  // every run of these makes N calls
        return true;
    };
    const deis::optimized_configuration c = deis::optimize_configuration(p.s, configs, p.net, ref, steps, opt);
    INFO("index " << c.index << ", error " << c.result.error << ", runs " << c.result.runs);
    REQUIRE(c.screen_errors.size() == 3);
    CHECK(c.index == std::size_t(std::min_element(c.screen_errors.begin(), c.screen_errors.end()) -
                                 c.screen_errors.begin()));
    CHECK(c.index != 0);  // DDIM at 8 steps is an order of magnitude behind the others on the ring
    CHECK(c.result.runs <= 60);
    CHECK(c.result.search_calls == long(c.result.runs) * steps);
    CHECK(c.result.network_calls == c.result.search_calls);
    CHECK(c.result.error <= c.result.start_error);
    CHECK(c.result.start_error == c.screen_errors[c.index]);
    // the callback saw every run, in order
    REQUIRE(int(seen.size()) == c.result.runs);
    for (std::size_t k = 0; k < seen.size(); ++k) CHECK(seen[k] == int(k) + 1);
    // the error is the chosen configuration's on the returned grid, computed here, and no more
    // than any configuration's error on the initial (recommended) grid
    const auto run = [&](const config_fn& f, const std::vector<double>& g) {
        const deis::multistep_solver solver(p.s, g, f(g));
        deis::state<double> x = ref.batch();
        REQUIRE(solver.sample(p.net, x).ok());
        return deis_test::median(deis_test::sample_errors(x, ref.solution()));
    };
    CHECK(run(configs[c.index], c.result.grid) == c.result.error);
    for (const auto& f : configs) CHECK(c.result.error <= run(f, deis::recommended_grid(p.s, steps)));
    // deterministic
    opt.progress = nullptr;
    const deis::optimized_configuration d = deis::optimize_configuration(p.s, configs, p.net, ref, steps, opt);
    CHECK(d.index == c.index);
    CHECK(d.result.grid == c.result.grid);
    // stopped during the screening: the best start so far, its runs
    opt.progress = [](const deis::calibrate_progress& q) { return q.runs < 4; };
    const deis::optimized_configuration e = deis::optimize_configuration(p.s, configs, p.net, ref, steps, opt);
    CHECK(e.result.stopped);
    CHECK(e.result.runs == 4);
    CHECK(run(configs[e.index], e.result.grid) == e.result.error);
    // stopped in the screening of the second configuration (DDIM, far behind): the first
    // (recommended) is chosen and the result still says it was stopped, every run counted
    {
        const std::vector<config_fn> two = {configs[1], configs[0]};
        deis::calibrate_options starts_only = opt;  // the first one's screening: its start grids
        starts_only.progress = nullptr;
        starts_only.min_fraction = 1.0;
        const int first = deis::optimize_grid(p.s, two[0], p.net, ref, steps, starts_only).runs;
        REQUIRE(first < 15);  // within the screening budget of 60 / (2 x 2) runs
        opt.progress = [&](const deis::calibrate_progress& q) { return q.runs < first + 2; };
        const deis::optimized_configuration f = deis::optimize_configuration(p.s, two, p.net, ref, steps, opt);
        CHECK(f.result.stopped);
        CHECK(f.result.runs == first + 2);
        CHECK(f.result.search_calls == long(first + 2) * steps);
        CHECK(f.screen_errors.size() == 2);
        CHECK(f.index == 0);
        CHECK(run(two[0], f.result.grid) == f.result.error);
    }

    opt.progress = nullptr;
    CHECK_THROWS_AS(deis::optimize_configuration(p.s, std::vector<config_fn>{}, p.net, ref, steps, opt),
                    std::invalid_argument);
    opt.max_runs = 5;  // fewer than 2 runs a configuration
    CHECK_THROWS_AS(deis::optimize_configuration(p.s, configs, p.net, ref, steps, opt), std::invalid_argument);
}
