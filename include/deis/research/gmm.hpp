// deis: toy models with exact noise prediction, so that every solver's error can be measured
// against the true probability-flow ODE solution.
//
// Data p_0 = sum_k w_k N(mu_k, diag(s_k^2)). Under any schedule, p_t = sum_k w_k
// N(alpha mu_k, diag(alpha^2 s_k^2 + sigma^2)), and the exact noise prediction is
// eps(x, t) = -sigma grad log p_t(x) = sigma sum_k r_k(x) (x - alpha mu_k) / (alpha^2 s_k^2 + sigma^2)
// with responsibilities r_k computed by log-sum-exp (stable far from every component and
// for tiny sigma).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "deis/detail/error.hpp"
#include "deis/detail/schedule_traits.hpp"
#include "deis/model_output.hpp"
#include "deis/state.hpp"

namespace deis {

/// A Gaussian mixture with diagonal covariances: weights (K), means and stds (D x K, one
/// column per component). Weights are normalised to sum 1. Immutable after construction.
class gaussian_mixture {
public:
    /// Requires K >= 1, D >= 1, matching shapes, weights > 0, stds > 0, everything finite.
    gaussian_mixture(Eigen::VectorXd weights, Eigen::MatrixXd means, Eigen::MatrixXd stds)
        : w_(std::move(weights)), mu_(std::move(means)), s_(std::move(stds)) {
        const char* where = "gaussian_mixture";
        if (w_.size() < 1) detail::fail(where, "weights.size()", 0, "must be >= 1");
        if (mu_.rows() < 1) detail::fail(where, "means.rows()", 0, "must be >= 1 (the dimension)");
        if (mu_.cols() != w_.size())
            detail::fail(where, "means.cols()", int(mu_.cols()),
                         "must equal the number of weights (" + std::to_string(w_.size()) + ")");
        if (s_.rows() != mu_.rows() || s_.cols() != mu_.cols())
            detail::fail(where, "stds.shape", std::to_string(s_.rows()) + "x" + std::to_string(s_.cols()),
                         "must equal means.shape (" + std::to_string(mu_.rows()) + "x" +
                             std::to_string(mu_.cols()) + ")");
        for (Eigen::Index k = 0; k < w_.size(); ++k) {
            const std::string wk = "weights[" + std::to_string(k) + "]";
            detail::require_finite(where, wk, w_[k]);
            if (!(w_[k] > 0.0)) detail::fail(where, wk, w_[k], "must be > 0");
            for (Eigen::Index d = 0; d < mu_.rows(); ++d) {
                const std::string at = "(" + std::to_string(d) + ", " + std::to_string(k) + ")";
                detail::require_finite(where, "means" + at, mu_(d, k));
                detail::require_finite(where, "stds" + at, s_(d, k));
                if (!(s_(d, k) > 0.0)) detail::fail(where, "stds" + at, s_(d, k), "must be > 0");
            }
        }
        w_ /= w_.sum();
        log_w_ = w_.array().log();
    }

    Eigen::Index dim() const { return mu_.rows(); }
    Eigen::Index components() const { return mu_.cols(); }
    const Eigen::VectorXd& weights() const { return w_; }
    const Eigen::MatrixXd& means() const { return mu_; }
    const Eigen::MatrixXd& stds() const { return s_; }

    /// Exact eps of the marginal at a time with the given alpha and sigma, for every column
    /// of x; out is resized to x's shape if needed. Computed in double whatever Scalar is.
    /// O(rows * cols * K). Thread-safe.
    template <class Scalar>
    void eps(const state<Scalar>& x, double alpha, double sigma, state<Scalar>& out) const {
        posterior<Scalar>(x, alpha, sigma, &out, nullptr);
    }

    /// Exact data prediction E[x0 | x_t] at the given alpha and sigma:
    /// sum_k r_k (mu_k + alpha s_k^2 (x - alpha mu_k) / (alpha^2 s_k^2 + sigma^2)), finite at
    /// alpha = 0 (the mixture's mean) and at sigma = 0 (x itself, for alpha = 1). As eps.
    template <class Scalar>
    void x0(const state<Scalar>& x, double alpha, double sigma, state<Scalar>& out) const {
        posterior<Scalar>(x, alpha, sigma, nullptr, &out);
    }

    /// Both at once.
    template <class Scalar>
    void eps_and_x0(const state<Scalar>& x, double alpha, double sigma, state<Scalar>& eps_out,
                    state<Scalar>& x0_out) const {
        posterior(x, alpha, sigma, &eps_out, &x0_out);
    }

    /// The component with the largest posterior for a data point x (a column of length
    /// dim()): argmax_k log w_k + log N(x; mu_k, diag(s_k^2)).
    template <class Derived>
    Eigen::Index most_likely_component(const Eigen::MatrixBase<Derived>& x) const {
        Eigen::Index best = 0;
        double best_lp = -std::numeric_limits<double>::infinity();
        for (Eigen::Index k = 0; k < components(); ++k) {
            double lp = log_w_[k];
            for (Eigen::Index d = 0; d < dim(); ++d) {
                const double z = (double(x(d)) - mu_(d, k)) / s_(d, k);
                lp -= 0.5 * z * z + std::log(s_(d, k));
            }
            if (lp > best_lp) {
                best_lp = lp;
                best = k;
            }
        }
        return best;
    }

private:
    // The responsibilities r_k(x) by log-sum-exp, then eps = sigma sum_k r_k (x - alpha mu_k)/v_k
    // and x0 = sum_k r_k (mu_k + alpha s_k^2 (x - alpha mu_k)/v_k), v_k = alpha^2 s_k^2 + sigma^2.
    template <class Scalar>
    void posterior(const state<Scalar>& x, double alpha, double sigma, state<Scalar>* eps_out,
                   state<Scalar>* x0_out) const {
        const Eigen::Index D = dim(), K = components();
        if (x.rows() != D)
            detail::fail("gaussian_mixture::eps", "x.rows()", int(x.rows()),
                         "must equal the mixture's dimension (" + std::to_string(D) + ")");
        if (eps_out) eps_out->resize(x.rows(), x.cols());
        if (x0_out) x0_out->resize(x.rows(), x.cols());
        const Eigen::MatrixXd var = (alpha * alpha) * s_.array().square() + sigma * sigma;
        const Eigen::MatrixXd inv_var = var.cwiseInverse();
        const Eigen::MatrixXd amu = alpha * mu_;
        const Eigen::VectorXd log_norm = log_w_ - 0.5 * var.array().log().colwise().sum().transpose().matrix();
        Eigen::VectorXd lp(K);
        Eigen::VectorXd acc(D), acc0(D);
        for (Eigen::Index b = 0; b < x.cols(); ++b) {
            double m = -std::numeric_limits<double>::infinity();
            for (Eigen::Index k = 0; k < K; ++k) {
                double q = 0.0;
                for (Eigen::Index d = 0; d < D; ++d) {
                    const double diff = double(x(d, b)) - amu(d, k);
                    q += diff * diff * inv_var(d, k);
                }
                lp[k] = log_norm[k] - 0.5 * q;
                m = std::max(m, lp[k]);
            }
            double z = 0.0;
            acc.setZero();
            acc0.setZero();
            for (Eigen::Index k = 0; k < K; ++k) {
                const double r = std::exp(lp[k] - m);
                z += r;
                for (Eigen::Index d = 0; d < D; ++d) {
                    const double g = (double(x(d, b)) - amu(d, k)) * inv_var(d, k);
                    acc[d] += r * g;
                    acc0[d] += r * (mu_(d, k) + alpha * s_(d, k) * s_(d, k) * g);
                }
            }
            for (Eigen::Index d = 0; d < D; ++d) {
                if (eps_out) (*eps_out)(d, b) = Scalar(sigma * acc[d] / z);
                if (x0_out) (*x0_out)(d, b) = Scalar(acc0[d] / z);
            }
        }
    }

    Eigen::VectorXd w_;
    Eigen::MatrixXd mu_, s_;
    Eigen::VectorXd log_w_;
};

/// The exact noise predictor of a mixture under a schedule: a Network (see model_output.hpp).
/// Holds copies of both; thread-safe; allocates O(D K) scratch per call.
template <class Schedule>
class gmm_eps {
public:
    gmm_eps(gaussian_mixture mixture, Schedule schedule)
        : mix_(std::move(mixture)), sch_(std::move(schedule)) {}

    template <class Scalar>
    void operator()(const state<Scalar>& x, double t, state<Scalar>& out) const {
        mix_.eps(x, sch_.alpha(t), sch_.sigma(t), out);
    }

    const gaussian_mixture& mixture() const { return mix_; }
    const Schedule& schedule() const { return sch_; }

private:
    gaussian_mixture mix_;
    Schedule sch_;
};

/// The exact model of a mixture under a schedule, returning any model_output (model_output.hpp):
/// eps and x0 from the mixture's posterior (finite at both ends of the time range: x0 at
/// alpha = 0, eps at sigma = 0), v = alpha eps - sigma x0, score = -eps / sigma, and velocity =
/// alpha' x0 + sigma' eps (needs a schedule with alpha_dot and sigma_dot). A Network (see
/// model_output.hpp); holds copies of both; thread-safe; allocates per call.
template <class Schedule>
class gmm_model {
public:
    gmm_model(gaussian_mixture mixture, Schedule schedule, model_output output)
        : mix_(std::move(mixture)), sch_(std::move(schedule)), out_(output) {}

    template <class Scalar>
    void operator()(const state<Scalar>& x, double t, state<Scalar>& out) const {
        const double a = sch_.alpha(t), s = sch_.sigma(t);
        switch (out_) {
            case model_output::eps: mix_.eps(x, a, s, out); return;
            case model_output::x0: mix_.x0(x, a, s, out); return;
            case model_output::score:
                mix_.eps(x, a, s, out);
                out = Scalar(-1.0 / s) * out;
                return;
            case model_output::v:
            case model_output::velocity: {
                state<Scalar> e;
                mix_.eps_and_x0(x, a, s, e, out);
                double ce = a, c0 = -s;
                if (out_ == model_output::velocity) {
                    if constexpr (detail::has_derivatives<Schedule>::value) {
                        ce = sch_.sigma_dot(t);
                        c0 = sch_.alpha_dot(t);
                    } else {
                        detail::fail("gmm_model", "output", "velocity", "needs a schedule with alpha_dot and sigma_dot");
                    }
                }
                out = Scalar(c0) * out + Scalar(ce) * e;
                return;
            }
        }
    }

    const gaussian_mixture& mixture() const { return mix_; }
    const Schedule& schedule() const { return sch_; }
    model_output output() const { return out_; }

private:
    gaussian_mixture mix_;
    Schedule sch_;
    model_output out_;
};

/// The exact probability-flow ODE solution for Gaussian data N(mu, diag(s^2)):
/// x_to = alpha_to mu + sqrt(alpha_to^2 s^2 + sigma_to^2) (x_from - alpha_from mu) /
/// sqrt(alpha_from^2 s^2 + sigma_from^2), componentwise, for every column of x_from.
template <class Schedule>
Eigen::MatrixXd gaussian_flow(const Schedule& sch, const Eigen::VectorXd& mu, const Eigen::VectorXd& s,
                              const Eigen::MatrixXd& x_from, double t_from, double t_to) {
    const double af = sch.alpha(t_from), sf = sch.sigma(t_from);
    const double at = sch.alpha(t_to), st = sch.sigma(t_to);
    const Eigen::ArrayXd scale =
        ((at * at) * s.array().square() + st * st).sqrt() / ((af * af) * s.array().square() + sf * sf).sqrt();
    Eigen::MatrixXd out = x_from;
    for (Eigen::Index b = 0; b < out.cols(); ++b)
        out.col(b) = (at * mu.array() + scale * (x_from.col(b).array() - af * mu.array())).matrix();
    return out;
}

}  // namespace deis
