// The Gaussian-mixture toy model: its exact eps against a closed form (one component) and
// against finite differences of log p_t written here (a mixture), in extreme regimes, under
// every kind of schedule; and the component classifier.
#include <cmath>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <limits>
#include <random>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace {

using deis_test::eps;

// A 3-D mixture of three components with unequal weights and stds.
deis::gaussian_mixture mixture3() {
    Eigen::VectorXd w(3);
    w << 0.5, 0.3, 0.2;
    Eigen::MatrixXd mu(3, 3), s(3, 3);
    mu << 1.0, -1.5, 0.0,  //
        0.5, 1.0, -2.0,    //
        -1.0, 0.0, 1.5;
    s << 0.5, 0.8, 0.3,  //
        0.4, 1.0, 0.6,   //
        0.7, 0.5, 0.9;
    return deis::gaussian_mixture(w, mu, s);
}

// log p_t(y) of the mixture at a time with the given alpha, sigma, written from the
// definition in long double, with the largest component factored out of the sum.
long double log_p(const deis::gaussian_mixture& g, const std::vector<long double>& y, double alpha, double sigma) {
    const long double two_pi = 6.283185307179586476925286766559L;
    std::vector<long double> lp(std::size_t(g.components()));
    long double m = -std::numeric_limits<long double>::infinity();
    for (Eigen::Index k = 0; k < g.components(); ++k) {
        long double v = std::log(static_cast<long double>(g.weights()[k]));
        for (Eigen::Index d = 0; d < g.dim(); ++d) {
            const long double sd = g.stds()(d, k);
            const long double var = (long double)alpha * alpha * sd * sd + (long double)sigma * sigma;
            const long double diff = y[std::size_t(d)] - (long double)alpha * g.means()(d, k);
            v -= 0.5L * (diff * diff / var + std::log(two_pi * var));
        }
        lp[std::size_t(k)] = v;
        m = std::max(m, v);
    }
    long double z = 0;
    for (long double v : lp) z += std::exp(v - m);
    return m + std::log(z);
}

// eps = -sigma grad log p_t by central differences with step h in every coordinate.
Eigen::MatrixXd eps_by_differences(const deis::gaussian_mixture& g, const Eigen::MatrixXd& x, double alpha,
                                   double sigma, double h = 1e-5) {
    Eigen::MatrixXd out(x.rows(), x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
        std::vector<long double> y(std::size_t(x.rows()));
        for (Eigen::Index d = 0; d < x.rows(); ++d) y[std::size_t(d)] = x(d, j);
        for (Eigen::Index d = 0; d < x.rows(); ++d) {
            auto yp = y, ym = y;
            yp[std::size_t(d)] += h;
            ym[std::size_t(d)] -= h;
            const long double score = (log_p(g, yp, alpha, sigma) - log_p(g, ym, alpha, sigma)) / (2.0L * h);
            out(d, j) = double(-(long double)sigma * score);
        }
    }
    return out;
}

Eigen::MatrixXd random_points(Eigen::Index dim, Eigen::Index n, double scale, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal;
    Eigen::MatrixXd x(dim, n);
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index i = 0; i < dim; ++i) x(i, j) = scale * normal(rng);
    return x;
}

// Central differences with h = 1e-5 have truncation error h^2/6 |d^3 log p| (measured
// 2e-10 at worst on these mixtures and times, and shrinking 100-fold when h shrinks
// 10-fold) and, in long double (eps 1e-19; 2e-16 where long double is double), rounding
// ~eps |log p| / h <= 2e-10. 1e-8 relative to 1 + |eps| covers both with a margin of 50.
constexpr double fd_tol = 1e-8;

template <class Schedule>
void check_mixture_against_differences(const Schedule& sch, const std::vector<double>& ts) {
    const auto g = mixture3();
    const deis::gmm_eps<Schedule> net(g, sch);
    const Eigen::MatrixXd x = random_points(3, 20, 1.5, 11);
    for (double t : ts) {
        CAPTURE(t);
        deis::state<double> out;
        net(x, t, out);
        const Eigen::MatrixXd fd = eps_by_differences(g, x, sch.alpha(t), sch.sigma(t));
        REQUIRE(out.rows() == x.rows());
        REQUIRE(out.cols() == x.cols());
        const double worst = ((out - fd).array().abs() / (1.0 + fd.array().abs())).maxCoeff();
        CHECK(worst <= fd_tol);
    }
}

}  // namespace

TEST_CASE("one component: eps in closed form", "[gmm]") {
    Eigen::VectorXd w(1);
    w << 2.5;  // normalised to 1
    Eigen::MatrixXd mu(2, 1), s(2, 1);
    mu << 1.5, -3.0;
    s << 0.2, 1.7;
    const deis::gaussian_mixture g(w, mu, s);
    CHECK(g.weights()[0] == 1.0);
    const deis::vp_linear sch{};
    Eigen::MatrixXd x = random_points(2, 50, 2.0, 5);
    for (double t : {1e-5, 1e-3, 0.1, 0.5, 1.0}) {
        CAPTURE(t);
        const double a = sch.alpha(t), sg = sch.sigma(t);
        x.col(0) = a * mu.col(0);  // exactly at the mean: eps = 0
        deis::state<double> out;
        g.eps(x, a, sg, out);
        CHECK(out.col(0).cwiseAbs().maxCoeff() == 0.0);
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            for (Eigen::Index d = 0; d < 2; ++d) {
                const double var = a * a * s(d) * s(d) + sg * sg;
                const double expected = sg * (x(d, j) - a * mu(d)) / var;
                // the same few operations in another order: a few ulps of the terms
                CHECK(std::abs(out(d, j) - expected) <= 8 * eps * sg * (std::abs(x(d, j)) + std::abs(a * mu(d))) / var);
            }
        }
    }
}

TEST_CASE("a mixture: eps = -sigma grad log p_t", "[gmm]") {
    SECTION("vp_linear") { check_mixture_against_differences(deis::vp_linear{}, {1e-3, 0.02, 0.1, 0.3, 0.6, 1.0}); }
    SECTION("vp_cosine") { check_mixture_against_differences(deis::vp_cosine{}, {1e-3, 0.3, 0.9}); }
    SECTION("vp_discrete") {
        check_mixture_against_differences(deis::vp_discrete::from_betas(deis::beta_schedule::linear),
                                          {1e-3, 0.05, 0.5, 1.0});
    }
    SECTION("ve") { check_mixture_against_differences(deis::ve{}, {0.0, 0.3, 0.7, 1.0}); }
}

TEST_CASE("far-away points and tiny sigma give finite, correct eps", "[gmm]") {
    const auto g = mixture3();
    const deis::vp_linear sch{};
    Eigen::MatrixXd far = random_points(3, 30, 1.0, 17);
    for (Eigen::Index j = 0; j < far.cols(); ++j) far.col(j) *= 1e3 / far.col(j).norm();
    SECTION("|x| = 1e3: finite, and as the differences say") {
        for (double t : {1e-5, 0.1, 1.0}) {
            CAPTURE(t);
            deis::state<double> out;
            g.eps(far, sch.alpha(t), sch.sigma(t), out);
            REQUIRE(out.allFinite());
            // |log p| ~ 1e6 here: the rounding of the differences grows to ~1e-19 1e6 / h
            // = 1e-8 in the score, ~1e-11 relative to |eps| ~ 1e3, and the truncation stays
            // as above, so fd_tol holds. (Where long double is only double, the rounding
            // would approach fd_tol: this check assumes x87 or quad long double.)
            const Eigen::MatrixXd fd = eps_by_differences(g, far, sch.alpha(t), sch.sigma(t));
            CHECK(((out - fd).array().abs() / (1.0 + fd.array().abs())).maxCoeff() <= fd_tol);
        }
    }
    SECTION("|x| = 1e3 with unequal variances: one component takes all the weight") {
        // Where the components' variances alpha^2 s^2 + sigma^2 differ (t <= 0.1), the
        // quadratic terms of the log densities differ by >= 1e4 at |x| = 1e3: the most
        // likely component has responsibility 1 to all digits.
        const Eigen::MatrixXd& x = far;
        for (double t : {1e-5, 0.1}) {
            CAPTURE(t);
            const double a = sch.alpha(t), sg = sch.sigma(t);
            deis::state<double> out;
            g.eps(x, a, sg, out);
            REQUIRE(out.allFinite());
            for (Eigen::Index j = 0; j < x.cols(); ++j) {
                Eigen::Index best = 0;
                long double best_lp = -std::numeric_limits<long double>::infinity();
                for (Eigen::Index k = 0; k < g.components(); ++k) {
                    Eigen::VectorXd w1 = Eigen::VectorXd::Ones(1);
                    const deis::gaussian_mixture one(w1, g.means().col(k), g.stds().col(k));
                    std::vector<long double> y(3);
                    for (int d = 0; d < 3; ++d) y[std::size_t(d)] = x(d, j);
                    const long double lp = std::log((long double)g.weights()[k]) + log_p(one, y, a, sg);
                    if (lp > best_lp) {
                        best_lp = lp;
                        best = k;
                    }
                }
                for (Eigen::Index d = 0; d < 3; ++d) {
                    const double sd = g.stds()(d, best);
                    const double var = a * a * sd * sd + sg * sg;
                    const double expected = sg * (x(d, j) - a * g.means()(d, best)) / var;
                    // a handful of roundings, 1e3-sized terms: 1e-12 relative
                    CHECK(std::abs(out(d, j) - expected) <= 1e-12 * std::abs(expected));
                }
            }
        }
    }
    SECTION("t = 1e-5: sigma = 1e-3") {
        const double t = 1e-5;
        const Eigen::MatrixXd x = random_points(3, 20, 1.5, 23);
        deis::state<double> out;
        g.eps(x, sch.alpha(t), sch.sigma(t), out);
        REQUIRE(out.allFinite());
        const Eigen::MatrixXd fd = eps_by_differences(g, x, sch.alpha(t), sch.sigma(t));
        CHECK(((out - fd).array().abs() / (1.0 + fd.array().abs())).maxCoeff() <= fd_tol);
    }
    SECTION("far away and tiny sigma at once") {
        deis::state<double> out;
        g.eps(far, sch.alpha(1e-5), sch.sigma(1e-5), out);
        CHECK(out.allFinite());
    }
}

TEST_CASE("float states get the double computation rounded once", "[gmm]") {
    const auto g = mixture3();
    const deis::vp_linear sch{};
    const deis::state<float> xf = random_points(3, 40, 1.5, 31).cast<float>();
    const deis::state<double> xd = xf.cast<double>();
    deis::state<float> of;
    deis::state<double> od;
    g.eps(xf, sch.alpha(0.3), sch.sigma(0.3), of);
    g.eps(xd, sch.alpha(0.3), sch.sigma(0.3), od);
    // the same double arithmetic on the same (float-representable) inputs
    CHECK((of.cast<double>() - od.cast<float>().cast<double>()).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("most_likely_component", "[gmm]") {
    SECTION("each mean belongs to its own component") {
        const auto g = mixture3();
        for (Eigen::Index k = 0; k < g.components(); ++k) CHECK(g.most_likely_component(g.means().col(k)) == k);
    }
    SECTION("the reference mixture classifies its own means") {
        const auto g = deis_test::reference_mixture();
        REQUIRE(g.components() == 8);
        for (Eigen::Index k = 0; k < 8; ++k) CHECK(g.most_likely_component(g.means().col(k) * 1.1) == k);
    }
    // Two 1-D components at -1 and +1.
    auto pair = [](double w0, double w1, double s0, double s1) {
        Eigen::VectorXd w(2);
        w << w0, w1;
        Eigen::MatrixXd mu(1, 2), s(1, 2);
        mu << -1.0, 1.0;
        s << s0, s1;
        return deis::gaussian_mixture(w, mu, s);
    };
    SECTION("weights break a tie of distance") {
        Eigen::VectorXd mid = Eigen::VectorXd::Zero(1);
        CHECK(pair(0.7, 0.3, 1.0, 1.0).most_likely_component(mid) == 0);
        CHECK(pair(0.3, 0.7, 1.0, 1.0).most_likely_component(mid) == 1);
    }
    SECTION("a wide component wins far out, a narrow one near its mean") {
        const auto g = pair(0.5, 0.5, 0.2, 2.0);
        Eigen::VectorXd x(1);
        x << -1.1;
        CHECK(g.most_likely_component(x) == 0);
        x << -5.0;  // closer to component 0's mean, but 20 of its stds away
        CHECK(g.most_likely_component(x) == 1);
    }
}
