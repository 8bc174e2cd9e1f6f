// Classifier-free guidance (deis/guidance.hpp) and dynamic thresholding of the data prediction
// (multistep_options::threshold).
//
// The guided problem is exact: the unconditional model is the reference 8-component ring
// mixture, the conditional one its component 0 alone (a subset of one; the adaptors are also
// checked with the subset {0, 1, 2}),
// so eps_u and eps_c are the exact noise predictions of deis/research/gmm.hpp and the guided eps
// u + w (c - u) is known exactly at every (x, t). Its probability-flow ODE is solved by
// reference_solution (the adaptive Fehlberg 7(8) integrator), which takes any network.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <vector>

#include "catch.hpp"
#include "deis/deis.hpp"
#include "deis/research/reference.hpp"
#include "support.hpp"

namespace {

// The mixture of the components `keep` of m, weights renormalised by gaussian_mixture.
deis::gaussian_mixture sub_mixture(const deis::gaussian_mixture& m, const std::vector<int>& keep) {
    Eigen::VectorXd w(Eigen::Index(keep.size()));
    Eigen::MatrixXd mu(m.dim(), Eigen::Index(keep.size())), s(m.dim(), Eigen::Index(keep.size()));
    for (std::size_t j = 0; j < keep.size(); ++j) {
        w[Eigen::Index(j)] = m.weights()[keep[j]];
        mu.col(Eigen::Index(j)) = m.means().col(keep[j]);
        s.col(Eigen::Index(j)) = m.stds().col(keep[j]);
    }
    return deis::gaussian_mixture(w, mu, s);
}

struct guided_problem {
    deis::vp_linear schedule{};
    deis::gaussian_mixture uncond = deis_test::reference_mixture();
    deis::gaussian_mixture cond;
    deis::gmm_eps<deis::vp_linear> eps_u{uncond, schedule};
    deis::gmm_eps<deis::vp_linear> eps_c;
    explicit guided_problem(const std::vector<int>& keep = {0})
        : cond(sub_mixture(uncond, keep)), eps_c(cond, schedule) {}
};

// The guided eps computed directly, u + w (c - u): the oracle of the adaptors, and the network
// of the reference solution. Allocates per call.
struct direct_guided {
    const guided_problem* p;
    double w;
    void operator()(const deis::state<double>& x, double t, deis::state<double>& out) const {
        deis::state<double> u, c;
        p->eps_u(x, t, u);
        p->eps_c(x, t, c);
        out = u + w * (c - u);
    }
};

// The p-quantile of the entries of v with linear interpolation between order statistics
// (numpy's default), computed by a full sort: the oracle of the thresholding.
double quantile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const double pos = p * double(v.size() - 1);
    const auto lo = std::size_t(std::floor(pos));
    if (lo + 1 >= v.size()) return v[lo];
    return v[lo] + (pos - double(lo)) * (v[lo + 1] - v[lo]);
}

// Imagen's dynamic thresholding of one sample, directly from its definition.
Eigen::VectorXd thresholded(const Eigen::VectorXd& x0, double p, double max_value) {
    std::vector<double> a(std::size_t(x0.size()));
    for (Eigen::Index i = 0; i < x0.size(); ++i) a[std::size_t(i)] = std::abs(x0[i]);
    const double s = std::min(std::max(quantile(a, p), 1.0), max_value);
    Eigen::VectorXd out(x0.size());
    for (Eigen::Index i = 0; i < x0.size(); ++i) out[i] = std::min(std::max(x0[i], -s), s) / s;
    return out;
}

}  // namespace

TEST_CASE("guided_network and guided_batch_network compute u + w (c - u)", "[guidance]") {
    const guided_problem p({0, 1, 2});
    const Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv").leftCols(64);
    // (the nets are taken by non-const reference)
    deis::gmm_eps<deis::vp_linear> c = p.eps_c, u = p.eps_u;
    for (double w : {0.0, 1.0, 2.5, 7.5}) {
        CAPTURE(w);
        deis::guided_network guided(c, u, w, x_T);
        CHECK(guided.scale() == w);
        // the doubled batch: the unconditional half first
        auto doubled = [&](const deis::state<double>& x2, double t, deis::state<double>& y2) {
            const Eigen::Index n = x2.cols() / 2;
            REQUIRE(x2.leftCols(n) == x2.rightCols(n));
            deis::state<double> a, b;
            p.eps_u(x2.leftCols(n).eval(), t, a);
            p.eps_c(x2.rightCols(n).eval(), t, b);
            y2.leftCols(n) = a;
            y2.rightCols(n) = b;
        };
        deis::guided_batch_network batch(doubled, w, x_T);
        const direct_guided oracle{&p, w};
        for (double t : {1.0, 0.5, 0.1, 1e-3}) {
            CAPTURE(t);
            const Eigen::MatrixXd x = p.schedule.alpha(t) * x_T * 2.0 + p.schedule.sigma(t) * x_T;
            deis::state<double> a(x.rows(), x.cols()), b(x.rows(), x.cols()), e;
            guided(x, t, a);
            batch(x, t, b);
            oracle(x, t, e);
            // the adaptors form (1 - w) u + w c, the oracle u + w (c - u): the same number up to
            // a few roundings of terms of size (1 + 2w) max|eps|
            const double tol = 8 * 2.2e-16 * (1.0 + 2.0 * w) * std::max(1.0, e.cwiseAbs().maxCoeff());
            CHECK((a - e).cwiseAbs().maxCoeff() <= tol);
            // the two adaptors do the same arithmetic: equal bit for bit
            CHECK(a == b);
        }
    }
    // w = 1 is the conditional model, w = 0 the unconditional one, exactly (1 - w or w is 0)
    deis::state<double> g(x_T.rows(), x_T.cols()), ref;
    deis::guided_network g1(c, u, 1.0, x_T);
    g1(x_T, 0.3, g);
    p.eps_c(x_T, 0.3, ref);
    CHECK(g == ref);
    deis::guided_network g0(c, u, 0.0, x_T);
    g0(x_T, 0.3, g);
    p.eps_u(x_T, 0.3, ref);
    CHECK(g == ref);
}

TEST_CASE("guidance adaptors reject a bad scale and another layout", "[guidance]") {
    guided_problem p;
    const deis::state<double> x = deis::state<double>::Zero(2, 4);
    const double inf = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(deis::guided_network(p.eps_c, p.eps_u, inf, x), deis_test::contains("scale = inf"));
    CHECK_THROWS_WITH(deis::guided_network(p.eps_c, p.eps_u, 1.0, deis::state<double>(2, 0)),
                      deis_test::contains("must hold at least one element"));
    CHECK_THROWS_WITH(deis::guided_batch_network(p.eps_c, std::nan(""), x), deis_test::contains("scale = nan"));
    deis::guided_network g(p.eps_c, p.eps_u, 2.0, x);
    deis::state<double> wrong = deis::state<double>::Zero(2, 5), out(2, 5);
    CHECK_THROWS_WITH(g(wrong, 0.5, out), deis_test::contains("x = 2x5 does not have the layout"));
    // an unconditional network that resizes its output is reported, not followed
    auto resizing = [](const deis::state<double>& in, double, deis::state<double>& o) { o.setZero(in.rows() + 1, 1); };
    deis::guided_network bad(p.eps_c, resizing, 2.0, x);
    deis::state<double> o4(2, 4);
    CHECK_THROWS_WITH(bad(x, 0.5, o4), deis_test::contains("changed the layout"));
    // and the adaptor is usable again afterwards with a well-behaved call
    deis::guided_network good(p.eps_c, p.eps_u, 2.0, x);
    CHECK_NOTHROW(good(x, 0.5, o4));
}

TEST_CASE("guidance applies to every model output alike", "[guidance]") {
    // Guiding x0 (or v) outputs and converting gives the guided eps: the solver's run with the
    // guided x0 model equals the run with the guided eps model up to the round-off of the
    // conversions (x0 = (x - sigma eps)/alpha, amplified by 1/alpha ~ 150 at t = 1).
    guided_problem p;
    const Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv").leftCols(32);
    const auto grid = deis::power_t_grid(p.schedule, 15, 1.0, 1e-3);
    auto o = deis::recommended_options(p.schedule, grid);
    Eigen::MatrixXd x_eps = x_T;
    {
        deis::guided_network g(p.eps_c, p.eps_u, 7.5, x_T);
        REQUIRE(deis::multistep_solver(p.schedule, grid, o).sample(g, x_eps).ok());
    }
    for (auto out : {deis::model_output::x0, deis::model_output::v}) {
        deis::gmm_model<deis::vp_linear> c(p.cond, p.schedule, out), u(p.uncond, p.schedule, out);
        deis::guided_network g(c, u, 7.5, x_T);
        o.output = out;
        Eigen::MatrixXd x = x_T;
        REQUIRE(deis::multistep_solver(p.schedule, grid, o).sample(g, x).ok());
        // the outputs differ from eps by roundings of size 1e-16 * |x| / alpha; the solver
        // combines ~15 of them: 1e-10 leaves a margin of 100 over what was measured (~1e-12)
        CHECK((x - x_eps).cwiseAbs().maxCoeff() < 1e-10);
    }
}

TEST_CASE("at w = 7.5 data prediction stays accurate where noise prediction degrades", "[guidance]") {
    guided_problem p;
    const double w = 7.5;
    const Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv").leftCols(200);
    // the reference: the guided ODE by the adaptive integrator; its own accuracy is checked by
    // a solve at a 10 times looser tolerance, which must agree to 1e-7 (measured: 2e-9), far
    // below every error compared here (> 1e-5)
    Eigen::MatrixXd exact = x_T, loose = x_T;
    deis::reference_options ro;
    ro.atol = ro.rtol = 1e-12;
    REQUIRE(deis::reference_solution(p.schedule, direct_guided{&p, w}, exact, 1.0, 1e-3, ro).status ==
            deis::status::success);
    ro.atol = ro.rtol = 1e-11;
    REQUIRE(deis::reference_solution(p.schedule, direct_guided{&p, w}, loose, 1.0, 1e-3, ro).status ==
            deis::status::success);
    std::printf("reference: tolerance 1e-12 against 1e-11: max difference %.2e\n",
                (exact - loose).cwiseAbs().maxCoeff());
    REQUIRE((exact - loose).cwiseAbs().maxCoeff() < 1e-7);

    std::printf("guided mixture (ring, conditional = component 0), w = 7.5, median error over 200 samples:\n");
    std::printf("| NFE | recommended (data, tAB r + corrector) | the same with noise prediction | ratio | tAB3, noise, "
                "no corrector |\n|---:|---:|---:|---:|---:|\n");
    for (int steps : {10, 20, 50}) {
        CAPTURE(steps);
        const auto grid = deis::power_t_grid(p.schedule, steps, 1.0, 1e-3);
        const deis::multistep_options data = deis::recommended_options(p.schedule, grid);
        deis::multistep_options noise = data;
        noise.predict = deis::prediction::noise;
        deis::multistep_options tab3 = deis::parse_multistep("tab3");
        auto error = [&](const deis::multistep_options& o) {
            deis::guided_network g(p.eps_c, p.eps_u, w, x_T);
            const deis::multistep_solver solver(p.schedule, grid, o);
            deis::multistep_workspace<double> ws(solver, x_T);
            Eigen::MatrixXd x = x_T;
            const auto r = solver.sample(g, x, ws);
            REQUIRE(r.ok());
            return deis_test::median(deis_test::sample_errors(x, exact));
        };
        const double e_data = error(data), e_noise = error(noise), e_tab3 = error(tab3);
        std::printf("| %d | %.3e (r = %d) | %.3e | %.0f | %.3e |\n", steps, e_data, data.order, e_noise, e_noise / e_data,
                    e_tab3);
        INFO("data " << e_data << ", noise " << e_noise);
        // the claim of the issue, as a ratio: noise prediction with the same solver at least 3
        // times worse at every NFE (measured on 400 samples: 122x at 10, 2500x at 20, 5x at
        // 50 NFE). Plain tAB3 with noise prediction (no corrector) is printed for comparison:
        // it is the corrector that noise prediction does not survive here.
        CHECK(e_noise > 3.0 * e_data);
        CHECK(e_data < (steps == 10 ? 0.1 : steps == 20 ? 1e-2 : 1e-4));  // and data prediction is accurate
    }
}

TEST_CASE("dynamic thresholding against a direct computation", "[guidance][threshold]") {
    using ops = deis::state_ops<deis::state<double>>;
    // a crafted batch: 9 entries per sample, different spreads per sample
    deis::state<double> x0(9, 4);
    x0.col(0) << 0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8, 0.9;  // all below 1: s = 1, unchanged
    x0.col(1) << 3.0, -2.0, 1.5, 0.5, -0.25, 4.0, -6.0, 2.5, 1.0;
    x0.col(2) << 100.0, -50.0, 20.0, 10.0, -5.0, 2.0, 1.0, 0.5, -0.1;
    x0.col(3) << -1.1, 1.2, -1.3, 1.4, -1.5, 1.6, -1.7, 1.8, -1.9;
    deis::state<double> scratch(9, 4);
    for (double pct : {0.5, 0.8, 0.995, 1.0}) {
        for (double s_max : {1.0, 1.5, 3.0, 1e3}) {
            CAPTURE(pct, s_max);
            deis::state<double> y = x0;
            ops::threshold(y, scratch, pct, s_max);
            for (Eigen::Index j = 0; j < x0.cols(); ++j) {
                CAPTURE(j);
                const Eigen::VectorXd e = thresholded(x0.col(j), pct, s_max);
                // the same operations but the interpolation, which rounds differently: a few ulps
                CHECK((y.col(j) - e).cwiseAbs().maxCoeff() <= 4 * 2.2e-16);
            }
            // a sample whose entries are all within [-1, 1] is left exactly as it was
            CHECK(y.col(0) == x0.col(0));
        }
    }
    // per sample: sample 2 with its own s = quantile_0.75(|x|) = 20 (the 7th of its 9 sorted
    // |entries|), not the batch's
    deis::state<double> y = x0;
    ops::threshold(y, scratch, 0.75, 1e3);
    CHECK(y(0, 2) == Approx(1.0).margin(1e-15));
    CHECK(y(2, 2) == Approx(1.0).margin(1e-15));
    CHECK(y(3, 2) == Approx(0.5).margin(1e-15));
}

TEST_CASE("thresholding in the solver: a no-op below the limit, the direct computation above", "[threshold]") {
    // A network of x0 outputs; one-step and multi-step runs with threshold on equal those of a
    // network that thresholds its own output (the direct computation) with threshold off.
    const deis::vp_linear sch;
    const auto grid = deis::power_t_grid(sch, 8, 1.0, 1e-3);
    const double pct = 0.9, s_max = 2.5;
    for (double scale : {0.5, 4.0}) {  // |x0| <= 1 everywhere (no-op), then well above
        CAPTURE(scale);
        auto net = [scale](const deis::state<double>& x, double t, deis::state<double>& out) {
            out = (scale * (x.array() * (1.0 + t)).sin()).matrix();
        };
        auto self_thresholded = [&](const deis::state<double>& x, double t, deis::state<double>& out) {
            net(x, t, out);
            for (Eigen::Index j = 0; j < out.cols(); ++j) out.col(j) = thresholded(out.col(j), pct, s_max);
        };
        deis::multistep_options o;
        o.method = deis::multistep_method::tab;
        o.order = 2;
        o.predict = deis::prediction::data;
        o.output = deis::model_output::x0;
        deis::state<double> x_T(16, 5);
        for (Eigen::Index j = 0; j < x_T.cols(); ++j)
            for (Eigen::Index i = 0; i < x_T.rows(); ++i) x_T(i, j) = std::cos(double(3 * i + 7 * j));
        deis::state<double> a = x_T, b = x_T, c = x_T;
        REQUIRE(deis::multistep_solver(sch, grid, o).sample(self_thresholded, b).ok());
        REQUIRE(deis::multistep_solver(sch, grid, o).sample(net, c).ok());
        o.threshold.percentile = pct;
        o.threshold.max_value = s_max;
        REQUIRE(deis::multistep_solver(sch, grid, o).sample(net, a).ok());
        // a few ulps of the thresholded x0 (see above), times coefficients of size <= 1
        CHECK((a - b).cwiseAbs().maxCoeff() <= 1e-14);
        if (scale < 1.0)
            CHECK(a == c);  // below the limit: exactly the run without thresholding
        else
            CHECK((a - c).cwiseAbs().maxCoeff() > 0.1);  // above: it changes the samples
    }
}

TEST_CASE("guided_network works on another State backend (Eigen::Map)", "[guidance]") {
    // The two-network adaptor goes through state_ops only: on Eigen::Map states over the
    // caller's memory it gives the run of the Eigen matrices, bit for bit (the same kernels).
    using map_t = Eigen::Map<deis::state<double>>;
    guided_problem p;
    const Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv").leftCols(16);
    const auto grid = deis::power_t_grid(p.schedule, 12, 1.0, 1e-3);
    const deis::multistep_solver solver(p.schedule, grid, deis::recommended_options(p.schedule, grid));
    auto on_map = [](const deis::gmm_eps<deis::vp_linear>& net) {
        return [&net](const map_t& x, double t, map_t& out) {
            deis::state<double> in = x, e;
            net(in, t, e);
            out = e;
        };
    };
    auto c = on_map(p.eps_c), u = on_map(p.eps_u);
    std::vector<double> memory(x_T.data(), x_T.data() + x_T.size());
    map_t x(memory.data(), x_T.rows(), x_T.cols());
    deis::guided_network g_map(c, u, 7.5, x);
    REQUIRE(solver.sample(g_map, x).ok());
    Eigen::MatrixXd y = x_T;
    deis::guided_network g(p.eps_c, p.eps_u, 7.5, y);
    REQUIRE(solver.sample(g, y).ok());
    CHECK(Eigen::MatrixXd(x) == y);
}
