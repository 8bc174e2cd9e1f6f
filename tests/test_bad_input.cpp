// Bad input: every rejected argument throws std::invalid_argument naming the argument and
// its value, before any network call and without touching the caller's state; and the
// failures a network can cause while a run is under way.
#include <cmath>
#include <cstring>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace {

constexpr double qnan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

// A network that counts its calls and returns a finite, shape-correct output.
struct counting_net {
    int calls = 0;
    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) {
        ++calls;
        out = Scalar(0.5 * (1.0 + t)) * x;
    }
};

deis::state<double> batch() {
    deis::state<double> x(2, 5);
    x << 0.5, -1.0, 2.0, 0.25, -0.75,  //
        1.5, 0.0, -2.5, 1.0, 0.125;
    return x;
}

// Bitwise equality, so that NaN entries compare equal to themselves.
bool same_bits(const deis::state<double>& a, const deis::state<double>& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(double) * std::size_t(a.size())) == 0);
}

using pipeline = std::function<void(counting_net&, deis::state<double>&)>;

// Runs `run` (which builds whatever it needs and samples) on a fresh counting network and
// the state `x0`; it must throw std::invalid_argument whose message contains every part,
// having called the network never and left x bit-for-bit as it was.
void expect_rejected(const pipeline& run, const std::vector<std::string>& parts,
                     const deis::state<double>& x0 = batch()) {
    for (const auto& part : parts) {
        CAPTURE(part);
        counting_net net;
        deis::state<double> x = x0;
        REQUIRE_THROWS_AS(run(net, x), std::invalid_argument);
        CHECK_THROWS_WITH(run(net, x), deis_test::contains(part));
        CHECK(net.calls == 0);
        CHECK(same_bits(x, x0));
    }
}

deis::multistep_options opts(deis::multistep_method m, int order) {
    deis::multistep_options o;
    o.method = m;
    o.order = order;
    return o;
}

// The usual pipeline from a schedule and a grid.
template <class Schedule>
pipeline run_on(Schedule s, std::vector<double> grid, deis::multistep_options o = {}) {
    return [s, grid, o](counting_net& net, deis::state<double>& x) {
        const deis::multistep_solver solver(s, grid, o);
        solver.sample(net, x);
    };
}

// The usual pipeline with a schedule made inside it (so that its constructor's throw counts).
template <class MakeSchedule>
pipeline run_with_schedule(MakeSchedule make) {
    return [make](counting_net& net, deis::state<double>& x) {
        const auto s = make();
        const deis::multistep_solver solver(s, deis::power_t_grid(s, 5, s.t_max(), 0.5 * s.t_max(), 2.0));
        solver.sample(net, x);
    };
}

const deis::vp_linear vpl{};

}  // namespace

TEST_CASE("bad grids", "[bad_input]") {
    SECTION("not decreasing") { expect_rejected(run_on(vpl, {1.0, 0.5, 0.75, 0.25}), {"t[2] = 0.75", "t[1] = 0.5"}); }
    SECTION("a repeated time") { expect_rejected(run_on(vpl, {1.0, 0.5, 0.5, 0.25}), {"t[2] = 0.5"}); }
    SECTION("outside the domain") {
        expect_rejected(run_on(vpl, {1.5, 0.5, 0.25}), {"t[0] = 1.5", "[0, 1]"});
        expect_rejected(run_on(vpl, {1.0, 0.5, -0.25}), {"t[2] = -0.25"});
        expect_rejected(run_on(deis::ve{}, {1.0, 0.5, -0.25}), {"t[2] = -0.25"});
        expect_rejected(run_on(deis::vp_discrete::from_betas(deis::beta_schedule::linear), {1.0, 0.5, -1e-3}),
                        {"t[2] = -0.001"});
    }
    SECTION("rho = 0 (sigma = 0) anywhere but at the data end") {
        // t = 0 of vp_linear is clean data: the last point of a sampling grid may be there
        // (tested in test_clean_ends.cpp), no other
        expect_rejected(run_on(vpl, {0.5, 0.0, 0.25}), {"t[1] = 0 ", "rho"});
        expect_rejected(run_on(vpl, {0.0, 0.5, 0.25}), {"t[0] = 0 ", "rho = 0"});
    }
    SECTION("rho = inf (alpha = 0) anywhere but at the noise end") {
        const deis::flow_matching flow;
        expect_rejected(run_on(flow, {0.5, 1.0, 0.25}), {"t[1] = 1 "});
        expect_rejected(run_on(flow, {0.9, 0.5, 1.0}), {"t[2] = 1 "});
    }
    SECTION("NaN and Inf") {
        expect_rejected(run_on(vpl, {1.0, qnan, 0.25}), {"t[1] = nan"});
        expect_rejected(run_on(vpl, {inf, 0.5, 0.25}), {"t[0] = inf"});
    }
    SECTION("N < 1: a single point, or none") {
        expect_rejected(run_on(vpl, {0.5}), {"size = 1"});
        expect_rejected(run_on(vpl, {}), {"size = 0"});
    }
}

TEST_CASE("bad arguments of the grid functions", "[bad_input]") {
    auto grid_then_sample = [](std::function<std::vector<double>()> make) -> pipeline {
        return [make](counting_net& net, deis::state<double>& x) {
            const deis::multistep_solver solver(vpl, make());
            solver.sample(net, x);
        };
    };
    SECTION("steps < 1") {
        expect_rejected(grid_then_sample([] { return deis::power_t_grid(vpl, 0, 1.0, 1e-3); }), {"steps = 0"});
        expect_rejected(grid_then_sample([] { return deis::log_rho_grid(vpl, -3, 1.0, 1e-3); }), {"steps = -3"});
        expect_rejected(grid_then_sample([] { return deis::power_rho_grid(vpl, 0, 1.0, 1e-3); }), {"steps = 0"});
        expect_rejected(
            grid_then_sample([] { return deis::make_grid(vpl, deis::grid_kind::log_rho, 0, 1.0, 1e-3, 0.0); }),
            {"steps = 0"});
    }
    SECTION("power <= 0") {
        expect_rejected(grid_then_sample([] { return deis::power_t_grid(vpl, 10, 1.0, 1e-3, 0.0); }), {"power = 0"});
        expect_rejected(grid_then_sample([] { return deis::power_t_grid(vpl, 10, 1.0, 1e-3, -2.0); }), {"power = -2"});
        expect_rejected(grid_then_sample([] { return deis::power_rho_grid(vpl, 10, 1.0, 1e-3, -1.0); }),
                        {"power = -1"});
        expect_rejected(grid_then_sample([] { return deis::power_rho_grid(vpl, 10, 1.0, 1e-3, qnan); }),
                        {"power = nan"});
    }
    SECTION("t_end >= t_max") {
        expect_rejected(grid_then_sample([] { return deis::power_t_grid(vpl, 10, 0.5, 0.5); }), {"t_end = 0.5"});
        expect_rejected(grid_then_sample([] { return deis::log_rho_grid(vpl, 10, 0.5, 0.75); }), {"t_end = 0.75"});
        expect_rejected(grid_then_sample([] { return deis::power_rho_grid(vpl, 10, 0.5, 0.75); }), {"t_end = 0.75"});
    }
    SECTION("t_end < 0, t_max beyond the domain, NaN") {
        expect_rejected(grid_then_sample([] { return deis::power_t_grid(vpl, 10, 1.0, -0.5); }), {"t_end = -0.5"});
        expect_rejected(grid_then_sample([] { return deis::power_t_grid(vpl, 10, 2.0, 1e-3); }), {"t[0] = 2"});
        expect_rejected(grid_then_sample([] { return deis::log_rho_grid(vpl, 10, qnan, 1e-3); }), {"t_max = nan"});
        // log rho of t_end = 0 is -inf
        expect_rejected(grid_then_sample([] { return deis::log_rho_grid(vpl, 10, 1.0, 0.0); }), {"t_end = 0 "});
    }
}

TEST_CASE("bad solver options", "[bad_input]") {
    const auto grid = deis::power_t_grid(vpl, 10, 1.0, 1e-3);
    using M = deis::multistep_method;
    SECTION("order beyond what is supported") {
        expect_rejected(run_on(vpl, grid, opts(M::tab, 4)), {"order = 4"});
        expect_rejected(run_on(vpl, grid, opts(M::rhoab, -2)), {"order = -2"});
        expect_rejected(run_on(vpl, grid, opts(M::ipndm, 7)), {"order = 7"});
    }
    SECTION("DDIM with order 1") { expect_rejected(run_on(vpl, grid, opts(M::ddim, 1)), {"order = 1"}); }
    SECTION("final steps and orders") {
        auto o = opts(M::tab, 3);
        o.final_steps = -1;
        expect_rejected(run_on(vpl, grid, o), {"final_steps = -1"});
        o.final_steps = 2;
        o.final_order = 5;
        expect_rejected(run_on(vpl, grid, o), {"final_order = 5"});
    }
    SECTION("a corrector for iPNDM") {
        auto o = opts(M::ipndm, 3);
        o.corrector = true;
        expect_rejected(run_on(vpl, grid, o), {"corrector = true"});
    }
}

TEST_CASE("bad schedules", "[bad_input]") {
    SECTION("vp_linear: beta_max <= beta_min") {
        expect_rejected(run_with_schedule([] { return deis::vp_linear(0.5, 0.25); }), {"beta_max = 0.25", "0.5"});
        expect_rejected(run_with_schedule([] { return deis::vp_linear(1.0, 1.0); }), {"beta_max = 1 "});
    }
    SECTION("vp_linear: negative beta_min, bad t_max, NaN") {
        expect_rejected(run_with_schedule([] { return deis::vp_linear(-0.5, 20.0); }), {"beta_min = -0.5"});
        expect_rejected(run_with_schedule([] { return deis::vp_linear(0.1, 20.0, 0.0); }), {"t_max = 0 "});
        expect_rejected(run_with_schedule([] { return deis::vp_linear(qnan, 20.0); }), {"beta_min = nan"});
        expect_rejected(run_with_schedule([] { return deis::vp_linear(0.1, inf); }), {"beta_max = inf"});
    }
    SECTION("ve: sigma_max <= sigma_min, sigma_min <= 0") {
        expect_rejected(run_with_schedule([] { return deis::ve(1.0, 0.5); }), {"sigma_max = 0.5"});
        expect_rejected(run_with_schedule([] { return deis::ve(2.0, 2.0); }), {"sigma_max = 2 "});
        expect_rejected(run_with_schedule([] { return deis::ve(0.0, 50.0); }), {"sigma_min = 0 "});
        expect_rejected(run_with_schedule([] { return deis::ve(-1.0, 50.0); }), {"sigma_min = -1"});
    }
    SECTION("vp_cosine: t_max >= 1, s <= 0") {
        expect_rejected(run_with_schedule([] { return deis::vp_cosine(0.008, 1.0); }), {"t_max = 1 "});
        expect_rejected(run_with_schedule([] { return deis::vp_cosine(0.008, 1.5); }), {"t_max = 1.5"});
        expect_rejected(run_with_schedule([] { return deis::vp_cosine(0.0); }), {"s = 0 "});
    }
    SECTION("vp_discrete: empty, non-positive, not decreasing, out of range") {
        using V = std::vector<double>;
        expect_rejected(run_with_schedule([] { return deis::vp_discrete(V{}); }), {"alphas_cumprod.size() = 0"});
        expect_rejected(run_with_schedule([] { return deis::vp_discrete(V{0.5}); }), {"alphas_cumprod.size() = 1"});
        expect_rejected(run_with_schedule([] { return deis::vp_discrete(V{0.5, 0.0}); }), {"alphas_cumprod[1] = 0 "});
        expect_rejected(run_with_schedule([] {
                            return deis::vp_discrete(V{0.5, -0.25});
                        }),
                        {"alphas_cumprod[1] = -0.25"});
        expect_rejected(run_with_schedule([] {
                            return deis::vp_discrete(V{0.5, 0.75});
                        }),
                        {"alphas_cumprod[1] = 0.75"});
        expect_rejected(run_with_schedule([] { return deis::vp_discrete(V{0.5, 0.5}); }), {"alphas_cumprod[1] = 0.5"});
        expect_rejected(run_with_schedule([] { return deis::vp_discrete(V{1.5, 0.5}); }), {"alphas_cumprod[0] = 1.5"});
        expect_rejected(run_with_schedule([] { return deis::vp_discrete(V{0.5, qnan}); }), {"alphas_cumprod[1] = nan"});
    }
    SECTION("vp_discrete: betas outside (0, 1)") {
        using V = std::vector<double>;
        using deis::beta_schedule;
        expect_rejected(run_with_schedule([] {
                            return deis::vp_discrete::from_beta_values(V{0.25, 1.0});
                        }),
                        {"betas[1] = 1 "});
        expect_rejected(run_with_schedule([] {
                            return deis::vp_discrete::from_beta_values(V{0.0, 0.5});
                        }),
                        {"betas[0] = 0 "});
        expect_rejected(run_with_schedule([] {
                            return deis::vp_discrete::from_beta_values(V{0.25, qnan});
                        }),
                        {"betas[1] = nan"});
        expect_rejected(
            run_with_schedule([] { return deis::vp_discrete::from_betas(beta_schedule::linear, 1000, 1.5, 0.02); }),
            {"beta_start = 1.5"});
        expect_rejected(run_with_schedule([] {
                            return deis::vp_discrete::from_betas(beta_schedule::scaled_linear, 1000, 0.001, 0.0);
                        }),
                        {"beta_end = 0 "});
        expect_rejected(run_with_schedule([] { return deis::vp_discrete::from_betas(beta_schedule::linear, 1); }),
                        {"num_train_steps = 1"});
    }
}

TEST_CASE("bad mixtures", "[bad_input]") {
    // A pipeline that builds the mixture, then its network, then samples with it.
    auto with_mixture = [](Eigen::VectorXd w, Eigen::MatrixXd mu, Eigen::MatrixXd s) -> pipeline {
        return [w, mu, s](counting_net& net, deis::state<double>& x) {
            const deis::gmm_eps<deis::vp_linear> model(deis::gaussian_mixture(w, mu, s), vpl);
            auto counted = [&](const deis::state<double>& y, double t, deis::state<double>& out) {
                net(y, t, out);
                model(y, t, out);
            };
            const deis::multistep_solver solver(vpl, deis::power_t_grid(vpl, 5, 1.0, 1e-3));
            solver.sample(counted, x);
        };
    };
    Eigen::VectorXd w(2);
    w << 0.25, 0.75;
    Eigen::MatrixXd mu(2, 2), s(2, 2);
    mu << 1.0, -1.0, 0.5, 2.0;
    s << 0.5, 0.25, 1.0, 2.0;
    SECTION("shapes") {
        expect_rejected(with_mixture(w, Eigen::MatrixXd::Zero(2, 3), Eigen::MatrixXd::Ones(2, 3)),
                        {"means.cols() = 3"});
        expect_rejected(with_mixture(w, mu, Eigen::MatrixXd::Ones(2, 3)), {"stds.shape = 2x3"});
        expect_rejected(with_mixture(w, mu, Eigen::MatrixXd::Ones(3, 2)), {"stds.shape = 3x2"});
        expect_rejected(with_mixture(Eigen::VectorXd(0), Eigen::MatrixXd(2, 0), Eigen::MatrixXd(2, 0)),
                        {"weights.size() = 0"});
    }
    SECTION("non-positive stds and weights") {
        Eigen::VectorXd w0 = w;
        w0[1] = 0.0;
        expect_rejected(with_mixture(w0, mu, s), {"weights[1] = 0 "});
        w0[1] = -2.0;
        expect_rejected(with_mixture(w0, mu, s), {"weights[1] = -2"});
        Eigen::MatrixXd s0 = s;
        s0(1, 0) = -0.5;
        expect_rejected(with_mixture(w, mu, s0), {"stds(1, 0) = -0.5"});
        s0(1, 0) = 0.0;
        expect_rejected(with_mixture(w, mu, s0), {"stds(1, 0) = 0 "});
    }
    SECTION("NaN and Inf") {
        Eigen::MatrixXd m0 = mu;
        m0(0, 1) = qnan;
        expect_rejected(with_mixture(w, m0, s), {"means(0, 1) = nan"});
        Eigen::MatrixXd s0 = s;
        s0(1, 1) = inf;
        expect_rejected(with_mixture(w, mu, s0), {"stds(1, 1) = inf"});
        Eigen::VectorXd w0 = w;
        w0[0] = qnan;
        expect_rejected(with_mixture(w0, mu, s), {"weights[0] = nan"});
    }
    SECTION("a state of the wrong dimension is refused by the first network call") {
        // The mixture cannot see the state before the solver calls it: the first call throws,
        // and x, the input of that call, is untouched.
        const deis::gmm_eps<deis::vp_linear> model(deis::gaussian_mixture(w, mu, s), vpl);
        int calls = 0;
        auto counted = [&](const deis::state<double>& y, double t, deis::state<double>& out) {
            ++calls;
            model(y, t, out);
        };
        const deis::multistep_solver solver(vpl, deis::power_t_grid(vpl, 5, 1.0, 1e-3));
        deis::state<double> x = deis::state<double>::Ones(3, 4);
        const deis::state<double> x0 = x;
        CHECK_THROWS_WITH(solver.sample(counted, x), deis_test::contains("x.rows() = 3"));
        CHECK(calls == 1);
        CHECK(same_bits(x, x0));
    }
}

TEST_CASE("bad states and workspaces", "[bad_input]") {
    const deis::multistep_solver tab3(vpl, deis::power_t_grid(vpl, 5, 1.0, 1e-3), opts(deis::multistep_method::tab, 3));
    auto sample = [&tab3](counting_net& net, deis::state<double>& x) { tab3.sample(net, x); };
    SECTION("NaN or Inf in x") {
        deis::state<double> x = batch();
        x(1, 2) = qnan;
        expect_rejected(sample, {"x(1, 2) = nan"}, x);
        x(1, 2) = 0.0;
        x(0, 4) = -inf;
        expect_rejected(sample, {"x(0, 4) = -inf"}, x);
    }
    SECTION("empty x") {
        expect_rejected(sample, {"x.shape = 2x0"}, deis::state<double>(2, 0));
        expect_rejected(sample, {"x.shape = 0x3"}, deis::state<double>(0, 3));
        expect_rejected(sample, {"x.shape = 0x0"}, deis::state<double>());
    }
    SECTION("a workspace of the wrong shape") {
        auto with_ws = [&tab3](Eigen::Index rows, Eigen::Index cols) -> pipeline {
            return [&tab3, rows, cols](counting_net& net, deis::state<double>& x) {
                deis::multistep_workspace<double> ws(tab3, rows, cols);
                tab3.sample(net, x, ws);
            };
        };
        expect_rejected(with_ws(2, 4), {"workspace = 2x4", "2x5"});
        expect_rejected(with_ws(3, 5), {"workspace = 3x5"});
        expect_rejected(with_ws(0, 5), {"shape = 0x5"});
    }
    SECTION("a workspace made for another solver") {
        const deis::multistep_solver ddim(vpl, tab3.grid(), opts(deis::multistep_method::ddim, 0));
        auto corr = opts(deis::multistep_method::tab, 3);
        corr.corrector = true;
        const deis::multistep_solver with_corrector(vpl, tab3.grid(), corr);
        // DDIM keeps one history buffer, tAB3 four
        expect_rejected(
            [&](counting_net& net, deis::state<double>& x) {
                deis::multistep_workspace<double> ws(ddim, x.rows(), x.cols());
                tab3.sample(net, x, ws);
            },
            {"workspace = 2x5"});
        // no buffer for the uncorrected state
        expect_rejected(
            [&](counting_net& net, deis::state<double>& x) {
                deis::multistep_workspace<double> ws(tab3, x.rows(), x.cols());
                with_corrector.sample(net, x, ws);
            },
            {"workspace = 2x5"});
    }
}

// ---- failures during a run -----------------------------------------------------------

namespace {

// A network with a fault at one call: NaN in one entry, or an output of the wrong shape.
struct faulty_net {
    enum class fault { none, non_finite, resize };
    fault kind = fault::none;
    int at_call = 0;
    int calls = 0;
    deis::gmm_eps<deis::vp_linear> model;

    faulty_net(fault f, int at) : kind(f), at_call(at), model(deis_test::reference_mixture(), deis::vp_linear{}) {}

    void operator()(const deis::state<double>& x, double t, deis::state<double>& out) {
        ++calls;
        model(x, t, out);
        if (calls != at_call) return;
        if (kind == fault::non_finite) out(1, 3) = qnan;
        if (kind == fault::resize) out.resize(x.rows() + 1, x.cols());
    }
};

deis::state<double> reference_batch() { return deis_test::reference_samples("gmm2d_xT.csv").leftCols(20); }

}  // namespace

TEST_CASE("a non-finite network output stops the run at the state before it", "[bad_input][runtime]") {
    const bool corrector = GENERATE(false, true);
    CAPTURE(corrector);
    auto o = opts(deis::multistep_method::tab, 3);
    o.corrector = corrector;
    const auto grid = deis::power_t_grid(vpl, 10, 1.0, 1e-3);
    const deis::multistep_solver solver(vpl, grid, o);

    faulty_net net(faulty_net::fault::non_finite, 3);
    deis::state<double> x = reference_batch();
    const deis::sample_result r = solver.sample(net, x);
    CHECK_FALSE(r.ok());
    CHECK(r.status == deis::status::non_finite_output);
    CHECK(r.nfe == 3);
    CHECK(r.steps == 2);
    CHECK(r.failed_time == grid[2]);
    CHECK(x.allFinite());

    // The state at grid[2] from a clean run over the first three grid points: the same two
    // steps with the same coefficients (coefficients of a step depend only on the grid up to
    // its end; with the corrector, the truncated run's last step is uncorrected, which is
    // what the stopped run hands back too) - the same arithmetic, so bit-identical.
    const deis::multistep_solver head(vpl, {grid[0], grid[1], grid[2]}, o);
    faulty_net clean(faulty_net::fault::none, 0);
    deis::state<double> x2 = reference_batch();
    const auto r2 = head.sample(clean, x2);
    REQUIRE(r2.ok());
    CHECK(r2.nfe == 2);
    CHECK(same_bits(x, x2));
}

TEST_CASE("a network that resizes its output stops the run", "[bad_input][runtime]") {
    const auto grid = deis::power_t_grid(vpl, 10, 1.0, 1e-3);
    const deis::multistep_solver solver(vpl, grid, opts(deis::multistep_method::tab, 2));
    SECTION("at the first call") {
        faulty_net net(faulty_net::fault::resize, 1);
        deis::state<double> x = reference_batch();
        const deis::state<double> x0 = x;
        const auto r = solver.sample(net, x);
        CHECK(r.status == deis::status::bad_output_shape);
        CHECK(r.nfe == 1);
        CHECK(r.steps == 0);
        CHECK(r.failed_time == grid[0]);
        CHECK(same_bits(x, x0));
    }
    SECTION("at the second call, with a reused workspace") {
        deis::multistep_workspace<double> ws(solver, 2, 20);
        faulty_net net(faulty_net::fault::resize, 2);
        deis::state<double> x = reference_batch();
        const auto r = solver.sample(net, x, ws);
        CHECK(r.status == deis::status::bad_output_shape);
        CHECK(r.nfe == 2);
        CHECK(r.steps == 1);
        CHECK(r.failed_time == grid[1]);
        // the state at grid[1], as a clean one-step run gives it
        const deis::multistep_solver head(vpl, {grid[0], grid[1]}, opts(deis::multistep_method::tab, 2));
        faulty_net clean(faulty_net::fault::none, 0);
        deis::state<double> x1 = reference_batch();
        REQUIRE(head.sample(clean, x1).ok());
        CHECK(same_bits(x, x1));
        // the workspace is still usable: a clean run with it succeeds
        faulty_net again(faulty_net::fault::none, 0);
        deis::state<double> y = reference_batch();
        CHECK(solver.sample(again, y, ws).ok());
    }
}
