// Stochastic sampling (multistep_options::eta and ::sde, noise.hpp): the coefficients in
// closed form, weak convergence on Gaussian data, the component proportions on a mixture,
// reproducibility by seed and per sample.
//
// Gaussian data, and why its moments need no Monte Carlo. For data N(m, diag(s^2)) the exact
// noise prediction eps(x, t) = sigma (x - alpha m) / (alpha^2 s^2 + sigma^2) is affine in x, so
// every step of a stochastic solver is affine in the state and the noise, and the whole run is
//     x_out = c + M x_T + sum_k G_k z_k        (componentwise: M, G_k diagonal)
// With x_T ~ N(alpha_T m, v_T) and independent standard normal z_k, the output is Gaussian with
//     mean = c + M alpha_T m,   variance = M^2 v_T + sum_k G_k^2.
// All of c, M and the G_k come out of ONE deterministic run of the solver itself on a batch
// with a noise source of our own: column 0 starts at alpha_T m with no noise (its result is the
// mean), column 1 at alpha_T m + 1 with no noise (minus column 0: M), and column 2 + k at
// alpha_T m with noise 1 at step k only (minus column 0: G_k). The moments of the sampler are
// thus computed exactly (to round-off), and their errors against the exact marginal at t_end,
// N(alpha_e m, alpha_e^2 s^2 + sigma_e^2), show the weak order without sampling noise. A Monte
// Carlo run with the default noise then checks that it really draws the distribution so
// computed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "catch.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support.hpp"

namespace {

const deis::vp_linear sch{};

struct stochastic_gaussian {
    Eigen::Vector3d m{1.5, -0.5, 0.25};
    Eigen::Vector3d s{0.5, 1.0, 0.2};
    Eigen::Array3d var(double t) const {
        const double a = sch.alpha(t), g = sch.sigma(t);
        return a * a * s.array().square() + g * g;
    }
    // the exact eps, in closed form
    void operator()(const deis::state<double>& x, double t, deis::state<double>& out) const {
        const double a = sch.alpha(t), g = sch.sigma(t);
        const Eigen::Array3d inv = var(t).inverse();
        out.resize(x.rows(), x.cols());
        for (Eigen::Index j = 0; j < x.cols(); ++j) out.col(j) = (g * (x.col(j) - a * m).array() * inv).matrix();
    }
};

// Noise 1 in column 2 + step at that step, 0 elsewhere: the impulse responses G_k.
struct impulse_noise {
    void operator()(deis::state<double>& z, int step) const {
        z.setZero();
        z.col(2 + step).setOnes();
    }
};

struct moments {
    Eigen::Array3d mean, var;
};

// The exact output moments of `solver` for x_T ~ N(alpha_T m, v_T) (see the top of the file).
moments sampler_moments(const deis::multistep_solver& solver, const stochastic_gaussian& data) {
    const int n = solver.steps();
    const double t0 = solver.grid().front();
    deis::state<double> x(3, n + 2);
    x.colwise() = (sch.alpha(t0) * data.m).eval();
    x.col(1).array() += 1.0;
    deis::multistep_workspace<double> ws(solver, x);
    impulse_noise noise;
    const auto r = solver.sample(data, x, ws, deis::detail::no_observer{}, noise);
    REQUIRE(r.ok());
    moments mo;
    mo.mean = x.col(0).array();
    const Eigen::Array3d M = x.col(1).array() - mo.mean;
    mo.var = M.square() * data.var(t0);
    for (int k = 0; k < n; ++k) mo.var += (x.col(2 + k).array() - mo.mean).square();
    return mo;
}

// The largest error of the sampler's mean and variance against the exact marginal at t_end.
double moment_error(const deis::multistep_options& o, int steps, const stochastic_gaussian& data) {
    const auto grid = deis::power_t_grid(sch, steps, 1.0, 1e-3);
    const deis::multistep_solver solver(sch, grid, o);
    const moments mo = sampler_moments(solver, data);
    const double te = grid.back();
    const double mean_err = (mo.mean - sch.alpha(te) * data.m.array()).abs().maxCoeff();
    const double var_err = (mo.var - data.var(te)).abs().maxCoeff();
    return std::max(mean_err, var_err);
}

deis::multistep_options ddim_eta(double eta) {
    deis::multistep_options o;
    o.method = deis::multistep_method::ddim;
    o.eta = eta;
    return o;
}

deis::multistep_options sde(deis::multistep_method m, int order) {
    deis::multistep_options o;
    o.method = m;
    o.order = order;
    o.predict = deis::prediction::data;
    o.sde = true;
    return o;
}

}  // namespace

TEST_CASE("stochastic coefficients in closed form", "[stochastic]") {
    // With lambda = log(alpha/sigma), h = lambda_to - lambda_from (DESIGN.md section 9):
    // DDIM with eta: noise = eta sigma_to sqrt(1 - e^{-2h}), and the deterministic part
    // alpha_to x0 + sqrt(sigma_to^2 - noise^2) eps; SDE: x_coef = (sigma_to/sigma_from) e^{-h},
    // noise = sigma_to sqrt(1 - e^{-2h}), and the x0 weights sum to alpha_to (1 - e^{-2h}) (the
    // Lagrange basis sums to 1).
    const auto grid = deis::power_t_grid(sch, 12, 1.0, 1e-3);
    auto lam = [](double t) { return std::log(sch.alpha(t) / sch.sigma(t)); };
    for (double eta : {0.0, 0.3, 1.0}) {
        const deis::multistep_solver solver(sch, grid, ddim_eta(eta));
        CHECK(solver.stochastic() == (eta > 0.0));
        for (const auto& row : solver.table()) {
            const double h = lam(row.t_to) - lam(row.t_from);
            const double at = sch.alpha(row.t_to), st = sch.sigma(row.t_to);
            const double af = sch.alpha(row.t_from), sf = sch.sigma(row.t_from);
            const double g = eta * st * std::sqrt(1.0 - std::exp(-2.0 * h));
            const double keep = std::sqrt(st * st - g * g);  // the weight of eps
            // x_to = alpha_to x0 + keep eps with x0 = (x - sf eps)/af and eps the network's:
            // in the solver's form x_coef x + c0 h with h = x0 (eta > 0: data form) or eps
            CHECK(row.noise == Approx(g).epsilon(1e-12).margin(1e-300));
            if (eta > 0.0) {
                CHECK(row.x_coef == Approx(keep / sf).epsilon(1e-12));
                CHECK(row.c[0] == Approx(at - keep / sf * af).epsilon(1e-12));
            } else {
                CHECK(row.x_coef == Approx(at / af).epsilon(1e-12));
                CHECK(row.c[0] == Approx(at * (st / at - sf / af)).epsilon(1e-12));
            }
        }
    }
    for (auto m : {deis::multistep_method::tab, deis::multistep_method::rhoab, deis::multistep_method::ddim}) {
        for (int order : {0, 1, 2}) {
            if (m == deis::multistep_method::ddim && order > 0) continue;
            CAPTURE(int(m), order);
            const deis::multistep_solver solver(sch, grid, sde(m, order));
            CHECK(solver.stochastic());
            for (const auto& row : solver.table()) {
                const double h = lam(row.t_to) - lam(row.t_from);
                const double st = sch.sigma(row.t_to), sf = sch.sigma(row.t_from);
                CHECK(row.x_coef == Approx(st / sf * std::exp(-h)).epsilon(1e-12));
                CHECK(row.noise == Approx(st * std::sqrt(1.0 - std::exp(-2.0 * h))).epsilon(1e-12));
                double sum = 0.0;
                for (int j = 0; j <= row.order; ++j) sum += row.c[std::size_t(j)];
                // the Lagrange weights are quadratures (Gauss-Legendre, ~1e-14 relative); their
                // sum cancels for order 2 between terms ~10x larger: 1e-11 relative
                CHECK(sum == Approx(sch.alpha(row.t_to) * (1.0 - std::exp(-2.0 * h))).epsilon(1e-11));
            }
        }
    }
}

TEST_CASE("DDIM with eta = 1 is the first-order SDE form", "[stochastic]") {
    // Both are x_to = (sigma_to/sigma_from) e^{-h} x + alpha_to (1 - e^{-2h}) x0
    // + sigma_to sqrt(1 - e^{-2h}) z, computed by different code paths of the solver.
    const auto grid = deis::power_t_grid(sch, 9, 1.0, 1e-3);
    const deis::multistep_solver a(sch, grid, ddim_eta(1.0)), b(sch, grid, sde(deis::multistep_method::tab, 0));
    for (std::size_t k = 0; k < a.table().size(); ++k) {
        CAPTURE(k);
        CHECK(a.table()[k].x_coef == Approx(b.table()[k].x_coef).epsilon(1e-13));
        CHECK(a.table()[k].c[0] == Approx(b.table()[k].c[0]).epsilon(1e-13));
        CHECK(a.table()[k].noise == Approx(b.table()[k].noise).epsilon(1e-13));
    }
}

TEST_CASE("stochastic options are checked", "[stochastic]") {
    const auto grid = deis::power_t_grid(sch, 10, 1.0, 1e-3);
    auto rejected = [&](deis::multistep_options o, const char* part) {
        CHECK_THROWS_WITH(deis::multistep_solver(sch, grid, o), deis_test::contains(part));
    };
    rejected(ddim_eta(1.5), "eta = 1.5 must lie in [0, 1]");
    rejected(ddim_eta(-0.1), "eta = -0.1");
    auto tab_eta = ddim_eta(0.5);
    tab_eta.method = deis::multistep_method::tab;
    tab_eta.order = 1;
    rejected(tab_eta, "applies to DDIM only");
    auto noise_sde = sde(deis::multistep_method::tab, 1);
    noise_sde.predict = deis::prediction::noise;
    rejected(noise_sde, "needs predict = prediction::data");
    rejected(sde(deis::multistep_method::tab, 3), "order = 3 must lie in 0..2 with sde");
    rejected(sde(deis::multistep_method::ipndm, 1), "not iPNDM");
    auto corr = sde(deis::multistep_method::tab, 1);
    corr.corrector = true;
    rejected(corr, "not available with stochastic sampling");
}

TEST_CASE("sde with data prediction and every other field at its default builds, at order 2", "[stochastic]") {
    // the default order used to be 3 whatever sde said: "order = 3 must lie in 0..2 with sde"
    deis::multistep_options o;
    o.sde = true;
    o.predict = deis::prediction::data;
    const deis::multistep_solver solver(sch, deis::power_t_grid(sch, 10, 1.0, 1e-3), o);
    CHECK(solver.options().order == 2);
    CHECK(solver.stochastic());
    CHECK(solver.table().back().order == 2);
}

TEST_CASE("on Gaussian data the sampler's mean and variance converge with the weak order", "[stochastic]") {
    const stochastic_gaussian data;
    struct row {
        const char* name;
        deis::multistep_options o;
        double slope;  // expected weak order
    };
    const std::vector<row> rows = {
        {"DDIM eta = 0 (the ODE)", ddim_eta(0.0), 1.0},
        {"DDIM eta = 0.5", ddim_eta(0.5), 1.0},
        {"DDIM eta = 1 (ancestral)", ddim_eta(1.0), 1.0},
        {"SDE order 1 (tab 0)", sde(deis::multistep_method::tab, 0), 1.0},
        {"SDE order 2 (tab 1, 2M)", sde(deis::multistep_method::tab, 1), 2.0},
        {"SDE order 2 (rhoab 1)", sde(deis::multistep_method::rhoab, 1), 2.0},
        {"SDE tab 2", sde(deis::multistep_method::tab, 2), 2.0},
    };
    const std::vector<int> steps = {20, 40, 80, 160, 320};
    for (const row& r : rows) {
        CAPTURE(r.name);
        std::vector<double> e;
        for (int n : steps) e.push_back(moment_error(r.o, n, data));
        std::printf("%-26s", r.name);
        for (std::size_t i = 0; i < e.size(); ++i) std::printf(" N=%d %.3e", steps[i], e[i]);
        // the observed order from the last two doublings (the first ones are pre-asymptotic)
        const double slope = std::log2(e[e.size() - 3] / e.back()) / 2.0;
        std::printf("  slope %.2f\n", slope);
        CHECK(e.back() < e.front());
        // within 0.3 of the expected order: the slope of a method of order p on these grids
        // settles to p +- 0.1 by N = 80 (measured); a method of a lower order is off by >= 0.7
        CHECK(slope > r.slope - 0.3);
        CHECK(slope < r.slope + 0.6);
    }
}

TEST_CASE("Monte Carlo: the default noise draws the distribution the linear recurrence gives", "[stochastic]") {
    // 20000 samples, fixed seeds; each sample moment within 5 standard errors of the exact
    // moments of the sampler (sampler_moments). Standard errors: sqrt(var/B) for the mean,
    // var sqrt(2/(B - 1)) for the variance, sqrt(var_i var_j / B) for a covariance (0 here:
    // the components are independent). A wrong noise scale (say noise missing at one step of
    // 20) moves the variance by more than 5 standard errors (~5%).
    const stochastic_gaussian data;
    const Eigen::Index B = 20000;
    for (const auto& o : {ddim_eta(1.0), sde(deis::multistep_method::tab, 1)}) {
        const auto grid = deis::power_t_grid(sch, 20, 1.0, 1e-3);
        const deis::multistep_solver solver(sch, grid, o);
        const moments exact = sampler_moments(solver, data);
        deis::state<double> x(3, B);
        deis::gaussian_noise(99)(x, 0);  // x_T ~ N(alpha_T m, v_T) from noise of another seed
        const Eigen::Array3d sd = data.var(1.0).sqrt();
        for (Eigen::Index j = 0; j < B; ++j) x.col(j) = (sch.alpha(1.0) * data.m.array() + sd * x.col(j).array()).matrix();
        REQUIRE(solver.sample(data, x).ok());
        const Eigen::Vector3d mean = x.rowwise().mean();
        const Eigen::MatrixXd c = x.colwise() - mean;
        const Eigen::Matrix3d cov = c * c.transpose() / double(B - 1);
        for (int i = 0; i < 3; ++i) {
            CAPTURE(i);
            CHECK(std::abs(mean[i] - exact.mean[i]) < 5.0 * std::sqrt(exact.var[i] / double(B)));
            CHECK(std::abs(cov(i, i) - exact.var[i]) < 5.0 * exact.var[i] * std::sqrt(2.0 / double(B - 1)));
            for (int k = 0; k < i; ++k) CHECK(std::abs(cov(i, k)) < 5.0 * std::sqrt(exact.var[i] * exact.var[k] / double(B)));
        }
    }
}

TEST_CASE("on a mixture the component proportions match the weights (chi-square)", "[stochastic]") {
    // 1-D, three well-separated components (means 7.5 stds apart, so classifying a sample by
    // its most likely component errs with probability < 2e-4); 6000 samples, 200 steps, fixed
    // seeds. (With 50 steps the first-order samplers are visibly biased: 1089 of the expected
    // 1200 samples in component 0, chi-square 16.6; their moment error on Gaussian data is
    // still ~0.1 there, see above.)
    // Pearson's statistic sum (O - E)^2 / E with 2 degrees of freedom stays below 13.816 (the
    // 0.999 quantile, -2 ln 0.001) for the right weights and exceeds it by far for slightly
    // wrong ones (0.25, 0.3, 0.45), which shows the test can fail.
    Eigen::VectorXd w(3);
    Eigen::MatrixXd mu(1, 3), s(1, 3);
    w << 0.2, 0.3, 0.5;
    mu << -3.0, 0.0, 3.0;
    s << 0.4, 0.4, 0.4;
    const deis::gaussian_mixture mix(w, mu, s);
    const deis::gmm_eps<deis::vp_linear> net(mix, sch);
    const Eigen::Index B = 6000;
    const auto grid = deis::power_t_grid(sch, 200, 1.0, 1e-3);
    auto chi2 = [](const std::vector<double>& counts, const Eigen::VectorXd& weights) {
        double n = 0.0, x2 = 0.0;
        for (double c : counts) n += c;
        for (std::size_t k = 0; k < counts.size(); ++k) {
            const double e = n * weights[Eigen::Index(k)];
            x2 += (counts[k] - e) * (counts[k] - e) / e;
        }
        return x2;
    };
    Eigen::VectorXd wrong(3);
    wrong << 0.25, 0.3, 0.45;
    for (const auto& o : {ddim_eta(1.0), ddim_eta(0.5), sde(deis::multistep_method::tab, 0),
                          sde(deis::multistep_method::tab, 1), sde(deis::multistep_method::rhoab, 2)}) {
        CAPTURE(o.eta, o.sde, deis::to_string(*deis::resolve_defaults(o).method), o.order);
        deis::state<double> x(1, B);
        deis::gaussian_noise(5)(x, 0);
        REQUIRE(deis::multistep_solver(sch, grid, o).sample(net, x).ok());
        std::vector<double> counts(3, 0.0);
        for (Eigen::Index j = 0; j < B; ++j) counts[std::size_t(mix.most_likely_component(x.col(j)))] += 1.0;
        const double good = chi2(counts, w), bad = chi2(counts, wrong);
        INFO("counts " << counts[0] << " " << counts[1] << " " << counts[2] << ", chi2 " << good << " / " << bad);
        std::printf("mixture proportions, eta %.1f sde %d method %d order %d: counts %g %g %g, chi2 %.2f (wrong weights %.1f)\n",
                    o.eta, int(o.sde), int(*deis::resolve_defaults(o).method), o.order, counts[0], counts[1], counts[2], good, bad);
        CHECK(good < 13.816);
        CHECK(bad > 13.816);
    }
}

TEST_CASE("stochastic runs are reproducible by seed and per sample", "[stochastic]") {
    const deis::gmm_eps<deis::vp_linear> net(deis_test::reference_mixture(), sch);
    const Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv").leftCols(13);
    const auto grid = deis::power_t_grid(sch, 15, 1.0, 1e-3);
    for (auto o : {ddim_eta(1.0), sde(deis::multistep_method::tab, 1)}) {
        CAPTURE(o.sde);
        auto run = [&](const Eigen::MatrixXd& start, std::uint64_t seed) {
            auto opt = o;
            opt.seed = seed;
            Eigen::MatrixXd x = start;
            REQUIRE(deis::multistep_solver(sch, grid, opt).sample(net, x).ok());
            return x;
        };
        const Eigen::MatrixXd a = run(x_T, 7), b = run(x_T, 7), c = run(x_T, 8);
        CHECK(a == b);                                      // same seed: the same bits
        CHECK((a - c).cwiseAbs().minCoeff() > 0.0);         // another seed: every entry differs
        // an explicit gaussian_noise(seed) is the same as the options' seed
        {
            const deis::multistep_solver solver(sch, grid, o);
            Eigen::MatrixXd x = x_T;
            deis::multistep_workspace<double> ws(solver, x);
            REQUIRE(solver.sample(net, x, ws, deis::detail::no_observer{}, deis::gaussian_noise(7)).ok());
            CHECK(x == a);
        }
        // per sample (noise.hpp: a function of seed, step, sample index and entry only): the
        // first 8 samples of the batch of 13 equal a batch of 8, and sample 0 a batch of 1,
        // bit for bit (every operation is per column)
        const Eigen::MatrixXd a8 = run(x_T.leftCols(8), 7), a1 = run(x_T.leftCols(1), 7);
        CHECK(a8 == a.leftCols(8));
        CHECK(a1 == a.leftCols(1));
        // and the sample does not depend on the other samples' values
        Eigen::MatrixXd other = x_T.leftCols(8);
        other.rightCols(7).setConstant(0.5);
        CHECK(run(other, 7).col(0) == a.col(0));
    }
}
