// deis: noise schedules.
//
// A schedule describes the forward process x_t = alpha(t) x_0 + sigma(t) eps. The solvers
// integrate the probability-flow ODE with rho(t) = sigma(t)/alpha(t) as the clock, so a
// schedule must also invert rho.
//
// The Schedule concept. A type S is a schedule when, for `const S s`, `double t, r`:
//
//   | expression        | returns | meaning                                             |
//   |-------------------|---------|-----------------------------------------------------|
//   | s.alpha(t)        | double  | mean coefficient, > 0 (0 allowed at the noise end)   |
//   | s.sigma(t)        | double  | noise standard deviation, > 0 (0 allowed at the data |
//   |                   |         | end)                                                |
//   | s.rho(t)          | double  | sigma(t)/alpha(t), strictly increasing in t; +inf    |
//   |                   |         | where alpha = 0, 0 where sigma = 0                   |
//   | s.t_from_rho(r)   | double  | the inverse of rho: s.t_from_rho(s.rho(t)) == t, also|
//   |                   |         | for r = 0 and r = +inf where the domain has them     |
//   | s.t_min()         | double  | smallest time of the domain                         |
//   | s.t_max()         | double  | largest time of the domain                          |
//
// Optional members, detected at compile time:
// - `s.rho_knots()` returning a sorted std::vector<double> of rho values where t_from_rho is
//   not smooth (vp_discrete's table entries); the coefficient quadrature is then split there.
//   Without it t_from_rho must be smooth (analytic) on the domain for the coefficients to
//   reach full double accuracy.
// - `s.alpha_dot(t)` and `s.sigma_dot(t)`, the derivatives in t: needed to read a network
//   that returns the velocity dx/dt (model_output::velocity).
//
// All of them are called with times inside [t_min(), t_max()] (and t_from_rho with rho
// values of such times) when a solver is built; none is called while sampling. Every time
// of a solver's grid must lie in the domain (see check_grid for rho at the ends). The member
// functions must be const and safe to call from several threads at once. The built-in
// schedules below are small immutable values: copy them freely.
//
// Which built-in schedules reach clean data (sigma = 0) at t = 0: vp_linear, vp_cosine
// normalised, vp_discrete, flow_matching and edm. The unnormalised vp_cosine (the official
// DEIS form) has sigma(0) > 0, and ve has sigma(0) = sigma_min > 0 by construction; a VE model
// is sampled down to sigma = 0 with the edm schedule, which is the same process with sigma as
// the clock.
//
// The built-in schedules compute rho and t_from_rho in closed form from log alpha, so that
// the round trip t_from_rho(rho(t)) holds to a few ulps even where alpha is close to 1.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "deis/detail/error.hpp"

namespace deis {

namespace detail {

// rho from log alpha for a variance-preserving process (alpha^2 + sigma^2 = 1):
// rho^2 = 1/alpha^2 - 1 = expm1(-2 log alpha), exact for alpha near 1.
inline double vp_rho_from_log_alpha(double log_alpha) { return std::sqrt(std::expm1(-2.0 * log_alpha)); }

inline double vp_sigma_from_log_alpha(double log_alpha) { return std::sqrt(-std::expm1(2.0 * log_alpha)); }

// -log alpha from rho for a variance-preserving process: 0.5 log(1 + rho^2), written to
// neither lose small rho nor overflow large rho.
inline double vp_neg_log_alpha_from_rho(double rho) {
    if (rho <= 1.0) return 0.5 * std::log1p(rho * rho);
    return std::log(rho) + 0.5 * std::log1p(1.0 / (rho * rho));
}

}  // namespace detail

/// VP schedule with linear beta(t) = beta_min + t (beta_max - beta_min), t in [0, t_max]:
/// log alpha(t) = -t^2 (beta_max - beta_min)/4 - t beta_min/2. The inverse of rho is in
/// closed form: with L = log(1 + rho^2), t = 2L / (beta_min + sqrt(beta_min^2 + 2 (beta_max -
/// beta_min) L)).
class vp_linear {
public:
    /// Requires 0 <= beta_min < beta_max (both finite) and t_max > 0 finite.
    explicit vp_linear(double beta_min = 0.1, double beta_max = 20.0, double t_max = 1.0)
        : b0_(beta_min), b1_(beta_max), t_max_(t_max) {
        detail::require_finite("vp_linear", "beta_min", beta_min);
        detail::require_finite("vp_linear", "beta_max", beta_max);
        detail::require_finite("vp_linear", "t_max", t_max);
        if (!(beta_min >= 0.0))
            detail::fail("vp_linear", "beta_min", beta_min, "must be >= 0");
        if (!(beta_max > beta_min))
            detail::fail("vp_linear", "beta_max", beta_max,
                         "must be greater than beta_min = " + detail::format_double(beta_min));
        if (!(t_max > 0.0)) detail::fail("vp_linear", "t_max", t_max, "must be > 0");
    }

    double log_alpha(double t) const { return -0.25 * t * t * (b1_ - b0_) - 0.5 * t * b0_; }
    double alpha(double t) const { return std::exp(log_alpha(t)); }
    double sigma(double t) const { return detail::vp_sigma_from_log_alpha(log_alpha(t)); }
    double rho(double t) const { return detail::vp_rho_from_log_alpha(log_alpha(t)); }
    double t_from_rho(double rho) const {
        const double L = 2.0 * detail::vp_neg_log_alpha_from_rho(rho);  // log(1 + rho^2)
        if (L == 0.0) return 0.0;  // the formula is 0/0 there when beta_min = 0
        return 2.0 * L / (b0_ + std::sqrt(b0_ * b0_ + 2.0 * (b1_ - b0_) * L));
    }
    double t_min() const { return 0.0; }
    double t_max() const { return t_max_; }
    /// alpha'(t) = -alpha beta(t) / 2, sigma'(t) = -alpha alpha' / sigma (infinite at t = 0).
    double alpha_dot(double t) const { return -0.5 * alpha(t) * (b0_ + t * (b1_ - b0_)); }
    double sigma_dot(double t) const { return -alpha(t) * alpha_dot(t) / sigma(t); }

    double beta_min() const { return b0_; }
    double beta_max() const { return b1_; }

private:
    double b0_, b1_, t_max_;
};

/// VP cosine schedule (Nichol & Dhariwal), s = 0.008 by default:
/// alpha(t) = cos(pi/2 (t + s)/(1 + s)), so alphabar = alpha^2 is the official DEIS choice,
/// which is not normalised: alpha(0) = cos(pi/2 s/(1 + s)) < 1. With `normalised = true`,
/// alpha(t) is divided by alpha(0) so that alpha(0) = 1 (the form of improved DDPM).
/// alpha reaches 0 at t = 1, where rho is infinite, so the domain is [0, t_max] with
/// t_max < 1 (default 0.9946, where rho is about 160).
class vp_cosine {
public:
    /// Requires s > 0 and 0 < t_max < 1, both finite.
    explicit vp_cosine(double s = 0.008, double t_max = 0.9946, bool normalised = false)
        : s_(s), t_max_(t_max), normalised_(normalised) {
        detail::require_finite("vp_cosine", "s", s);
        detail::require_finite("vp_cosine", "t_max", t_max);
        if (!(s > 0.0)) detail::fail("vp_cosine", "s", s, "must be > 0");
        if (!(t_max > 0.0 && t_max < 1.0))
            detail::fail("vp_cosine", "t_max", t_max,
                         "must lie in (0, 1): alpha vanishes at t = 1, where rho is infinite");
        const double theta0 = angle(0.0);
        cos0_ = std::cos(theta0);
        tan0_ = std::tan(theta0);
        if (!std::isfinite(rho(t_max)))
            detail::fail("vp_cosine", "t_max", t_max, "gives a rho that is not finite");
    }

    // Written without differences of nearly equal numbers near t = 0. With theta = angle(t)
    // and theta0 = angle(0), theta - theta0 = pi/2 t/(1 + s) exactly, and
    // cos(theta)/cos(theta0) = 1 - 2 sin((theta + theta0)/2) sin((theta - theta0)/2)/cos(theta0).
    double log_alpha(double t) const {
        if (!normalised_) return std::log(std::cos(angle(t)));
        const double half_diff = 0.25 * pi * t / (1.0 + s_);
        return std::log1p(-2.0 * std::sin(angle(t) - half_diff) * std::sin(half_diff) / cos0_);
    }
    double alpha(double t) const { return normalised_ ? std::exp(log_alpha(t)) : std::cos(angle(t)); }
    double sigma(double t) const {
        if (!normalised_) return std::sin(angle(t));
        return detail::vp_sigma_from_log_alpha(log_alpha(t));
    }
    double rho(double t) const {
        if (!normalised_) return std::tan(angle(t));  // sigma/alpha = sin/cos
        return detail::vp_rho_from_log_alpha(log_alpha(t));
    }
    double t_from_rho(double rho) const {
        // Unnormalised: tan(theta) = rho. Normalised: cos(theta) = c0 alpha with
        // alpha^2 = 1/(1 + rho^2) and c0 = cos(theta0), hence with A = tan(theta) and
        // B = tan(theta0): A^2 = rho^2/c0^2 + B^2, and theta - theta0 = atan((A - B)/(1 + A B))
        // with A - B = (rho/c0)^2/(A + B).
        if (!normalised_) return std::atan(rho) * 2.0 / pi * (1.0 + s_) - s_;
        const double r = rho / cos0_;
        const double A = std::hypot(r, tan0_);
        const double diff = std::atan(r * r / (A + tan0_) / (1.0 + A * tan0_));
        return diff * 2.0 / pi * (1.0 + s_);
    }
    double t_min() const { return 0.0; }
    double t_max() const { return t_max_; }
    /// With theta = pi/2 (t + s)/(1 + s): alpha' = -sin(theta) theta' / c (c = cos(theta(0))
    /// normalised, else 1), sigma' = -alpha alpha' / sigma.
    double alpha_dot(double t) const {
        const double d = -std::sin(angle(t)) * 0.5 * pi / (1.0 + s_);
        return normalised_ ? d / cos0_ : d;
    }
    double sigma_dot(double t) const {
        if (!normalised_) return std::cos(angle(t)) * 0.5 * pi / (1.0 + s_);
        return -alpha(t) * alpha_dot(t) / sigma(t);
    }
    bool normalised() const { return normalised_; }

private:
    static constexpr double pi = 3.141592653589793238462643383279502884;
    double angle(double t) const { return 0.5 * pi * (t + s_) / (1.0 + s_); }

    double s_, t_max_;
    bool normalised_;
    double cos0_ = 1.0, tan0_ = 0.0;
};

/// How the betas of a discrete (DDPM) schedule are made.
enum class beta_schedule {
    linear,            ///< betas = linspace(beta_start, beta_end, n)
    scaled_linear,     ///< betas = linspace(sqrt(beta_start), sqrt(beta_end), n)^2
    squaredcos_cap_v2  ///< betas from the cosine alphabar, s = 0.008, each capped at 0.999
};

/// VP schedule from a discrete DDPM table alphas_cumprod[0..n-1] (alphabar = alpha^2).
/// Continuous time as in DPM-Solver: table entry j sits at t_j = (j + 1)/n, and log alpha is
/// piecewise linear in t between entries, and from log alpha = 0 (clean data, sigma = 0) at
/// t = 0 to the first entry at t = 1/n; the domain is [0, 1]. The inverse t(rho) is exact:
/// binary search for the segment, then the linear piece solved for t.
///
/// Discrete-timestep networks (DDPM, SD 1.5, SDXL) were trained on the integer timesteps
/// tau = 0..n-1 of the table: the network for time t gets tau = timestep(t) = t n - 1 (an
/// integer at the table's own times, fractional in between; see deis::discrete_timestep_network
/// in diffusers.hpp).
class vp_discrete {
public:
    /// From a given table: every entry in (0, 1] and finite, strictly decreasing, n >= 2.
    explicit vp_discrete(const std::vector<double>& alphas_cumprod) { init(alphas_cumprod); }

    /// From betas made by `kind` with n = num_train_steps entries. Defaults of each kind:
    /// linear 1e-4..0.02, scaled_linear 0.00085..0.012 (pass them explicitly to change);
    /// squaredcos_cap_v2 ignores beta_start and beta_end.
    static vp_discrete from_betas(beta_schedule kind, int num_train_steps = 1000,
                                  double beta_start = -1.0, double beta_end = -1.0) {
        if (num_train_steps < 2)
            detail::fail("vp_discrete", "num_train_steps", num_train_steps, "must be >= 2");
        const auto n = static_cast<std::size_t>(num_train_steps);
        std::vector<double> betas(n);
        if (kind == beta_schedule::squaredcos_cap_v2) {
            const double pi = 3.141592653589793238462643383279502884;
            auto abar = [pi](double t) {
                const double c = std::cos((t + 0.008) / 1.008 * pi / 2.0);
                return c * c;
            };
            for (std::size_t i = 0; i < n; ++i) {
                const double t1 = double(i) / double(n), t2 = double(i + 1) / double(n);
                betas[i] = std::min(1.0 - abar(t2) / abar(t1), 0.999);
            }
        } else {
            const bool scaled = kind == beta_schedule::scaled_linear;
            if (beta_start < 0.0) beta_start = scaled ? 0.00085 : 1e-4;
            if (beta_end < 0.0) beta_end = scaled ? 0.012 : 0.02;
            detail::require_finite("vp_discrete", "beta_start", beta_start);
            detail::require_finite("vp_discrete", "beta_end", beta_end);
            if (!(beta_start > 0.0 && beta_start < 1.0))
                detail::fail("vp_discrete", "beta_start", beta_start, "must lie in (0, 1)");
            if (!(beta_end > 0.0 && beta_end < 1.0))
                detail::fail("vp_discrete", "beta_end", beta_end, "must lie in (0, 1)");
            const double a = scaled ? std::sqrt(beta_start) : beta_start;
            const double b = scaled ? std::sqrt(beta_end) : beta_end;
            for (std::size_t i = 0; i < n; ++i) {
                const double v = a + (b - a) * double(i) / double(n - 1);
                betas[i] = scaled ? v * v : v;
            }
        }
        return from_beta_values(betas);
    }

    /// From explicit betas: every beta in (0, 1), n >= 2.
    static vp_discrete from_beta_values(const std::vector<double>& betas) {
        if (betas.size() < 2)
            detail::fail("vp_discrete", "betas.size()", double(betas.size()), "must be >= 2");
        std::vector<double> abar(betas.size());
        double log_abar = 0.0;
        for (std::size_t i = 0; i < betas.size(); ++i) {
            if (!(betas[i] > 0.0 && betas[i] < 1.0))
                detail::fail("vp_discrete", "betas[" + std::to_string(i) + "]", betas[i],
                             "must lie in (0, 1)");
            log_abar += std::log1p(-betas[i]);
            abar[i] = std::exp(log_abar);
        }
        return vp_discrete(abar);
    }

    double log_alpha(double t) const {
        const double n = double(log_alpha_.size());
        // position in table units: entry j at t = (j + 1)/n; before entry 0, from 0 at t = 0
        if (t * n < 1.0) return t * n * log_alpha_[0];
        double pos = t * n - 1.0;
        std::size_t j = std::min(std::size_t(pos), log_alpha_.size() - 2);
        const double w = pos - double(j);
        return log_alpha_[j] + w * (log_alpha_[j + 1] - log_alpha_[j]);
    }
    double alpha(double t) const { return std::exp(log_alpha(t)); }
    double sigma(double t) const { return detail::vp_sigma_from_log_alpha(log_alpha(t)); }
    double rho(double t) const { return detail::vp_rho_from_log_alpha(log_alpha(t)); }
    double t_from_rho(double rho) const {
        const double la = -detail::vp_neg_log_alpha_from_rho(rho);
        const double n = double(log_alpha_.size());
        if (la > log_alpha_[0]) return la / log_alpha_[0] / n;  // before the first entry
        // log_alpha_ is strictly decreasing: find j with log_alpha_[j] >= la > log_alpha_[j+1]
        auto it = std::upper_bound(log_alpha_.begin(), log_alpha_.end(), la, std::greater<double>());
        std::size_t j = std::size_t(it - log_alpha_.begin());
        j = j == 0 ? 0 : std::min(j - 1, log_alpha_.size() - 2);
        const double w = (la - log_alpha_[j]) / (log_alpha_[j + 1] - log_alpha_[j]);
        return (double(j) + 1.0 + w) / double(log_alpha_.size());
    }
    /// 0, or 1/n for a table whose first entry is 1 (clean data already there).
    double t_min() const { return log_alpha_[0] == 0.0 ? 1.0 / double(log_alpha_.size()) : 0.0; }
    double t_max() const { return 1.0; }

    /// The number of training timesteps n (the table's size).
    int train_steps() const { return int(log_alpha_.size()); }
    /// The training timestep of time t: tau = t n - 1 (entry tau of the table sits at t).
    double timestep(double t) const { return t * double(log_alpha_.size()) - 1.0; }
    /// The time of training timestep tau: t = (tau + 1) / n.
    double time_of_timestep(double tau) const { return (tau + 1.0) / double(log_alpha_.size()); }

    /// The table of log alpha = log(alphas_cumprod)/2, entry j at t = (j + 1)/n.
    const std::vector<double>& log_alpha_table() const { return log_alpha_; }

    /// rho at the table entries, ascending: t(rho) has a kink at each, and the solvers'
    /// quadrature splits there (the optional `rho_knots()` of the Schedule concept).
    const std::vector<double>& rho_knots() const { return rho_knots_; }

private:
    void init(const std::vector<double>& abar) {
        if (abar.size() < 2)
            detail::fail("vp_discrete", "alphas_cumprod.size()", double(abar.size()), "must be >= 2");
        log_alpha_.resize(abar.size());
        for (std::size_t i = 0; i < abar.size(); ++i) {
            const std::string name = "alphas_cumprod[" + std::to_string(i) + "]";
            detail::require_finite("vp_discrete", name.c_str(), abar[i]);
            if (!(abar[i] > 0.0 && abar[i] <= 1.0))
                detail::fail("vp_discrete", name, abar[i], "must lie in (0, 1]");
            if (i > 0 && !(abar[i] < abar[i - 1]))
                detail::fail("vp_discrete", name, abar[i],
                             "must be smaller than the entry before it (" +
                                 detail::format_double(abar[i - 1]) + ")");
            log_alpha_[i] = 0.5 * std::log(abar[i]);
        }
        rho_knots_.resize(log_alpha_.size());
        for (std::size_t i = 0; i < log_alpha_.size(); ++i)
            rho_knots_[i] = detail::vp_rho_from_log_alpha(log_alpha_[i]);
    }

    std::vector<double> log_alpha_, rho_knots_;
};

/// Variance-exploding schedule: alpha = 1, sigma(t) = sigma_min (sigma_max/sigma_min)^t,
/// rho = sigma, t in [0, 1].
class ve {
public:
    /// Requires 0 < sigma_min < sigma_max, both finite.
    explicit ve(double sigma_min = 0.01, double sigma_max = 50.0) : smin_(sigma_min), smax_(sigma_max) {
        detail::require_finite("ve", "sigma_min", sigma_min);
        detail::require_finite("ve", "sigma_max", sigma_max);
        if (!(sigma_min > 0.0)) detail::fail("ve", "sigma_min", sigma_min, "must be > 0");
        if (!(sigma_max > sigma_min))
            detail::fail("ve", "sigma_max", sigma_max,
                         "must be greater than sigma_min = " + detail::format_double(sigma_min));
        log_ratio_ = std::log(sigma_max / sigma_min);
    }

    double alpha(double) const { return 1.0; }
    double sigma(double t) const { return smin_ * std::exp(t * log_ratio_); }
    double rho(double t) const { return sigma(t); }
    double t_from_rho(double rho) const { return std::log(rho / smin_) / log_ratio_; }
    double t_min() const { return 0.0; }
    double t_max() const { return 1.0; }
    double alpha_dot(double) const { return 0.0; }
    double sigma_dot(double t) const { return sigma(t) * log_ratio_; }

    double sigma_min() const { return smin_; }
    double sigma_max() const { return smax_; }

private:
    double smin_, smax_, log_ratio_;
};

/// Flow matching (rectified flow; SD3, Flux): x_t = (1 - t) x0 + t eps on t in [0, 1], so
/// alpha = 1 - t, sigma = t, rho = t/(1 - t), t(rho) = rho/(1 + rho). Not variance preserving.
/// t = 1 is pure noise (alpha = 0, rho = +inf) and t = 0 clean data (sigma = 0): a run may
/// start at t = 1 with data prediction (tAB, iPNDM, DDIM) and end at t = 0 with any solver. The
/// network usually returns the velocity dx/dt = eps - x0 (model_output::velocity); SD3 and
/// Flux feed it the time as 1000 t. Time shifts change the grid, not the schedule (see
/// shift_time in grid.hpp).
class flow_matching {
public:
    double alpha(double t) const { return 1.0 - t; }
    double sigma(double t) const { return t; }
    double rho(double t) const { return t == 1.0 ? std::numeric_limits<double>::infinity() : t / (1.0 - t); }
    /// 1 / (1 + 1/rho): exact at rho = 0 and rho = +inf.
    double t_from_rho(double rho) const { return 1.0 / (1.0 + 1.0 / rho); }
    double t_min() const { return 0.0; }
    double t_max() const { return 1.0; }
    double alpha_dot(double) const { return -1.0; }
    double sigma_dot(double) const { return 1.0; }
};

/// The EDM / sigma-space schedule (Karras et al. 2022): alpha = 1, sigma = t, rho = t, on
/// t in [0, sigma_max]. The network is usually a denoiser D(x; sigma) = x0
/// (model_output::x0), given sigma = t. t = 0 is clean data. The Karras grid is
/// power_rho_grid with power 7; named noise levels (Align Your Steps) in grid.hpp.
class edm {
public:
    /// Requires sigma_max > 0 finite (default 80, the EDM paper's).
    explicit edm(double sigma_max = 80.0) : smax_(sigma_max) {
        detail::require_finite("edm", "sigma_max", sigma_max);
        if (!(sigma_max > 0.0)) detail::fail("edm", "sigma_max", sigma_max, "must be > 0");
    }
    double alpha(double) const { return 1.0; }
    double sigma(double t) const { return t; }
    double rho(double t) const { return t; }
    double t_from_rho(double rho) const { return rho; }
    double t_min() const { return 0.0; }
    double t_max() const { return smax_; }
    double alpha_dot(double) const { return 0.0; }
    double sigma_dot(double) const { return 1.0; }
    double sigma_max() const { return smax_; }

private:
    double smax_;
};

}  // namespace deis
