// deis: the Network concept (how a solver calls the network) and how its output is read:
// model_output, prediction, and the exact conversions between them.
//
// The Network concept. The network is any callable `net` (a functor, a lambda) that a solver
// calls as
//
//     net(const S& x, double t, S& out)
//
// with S the caller's state type (deis::state<Scalar>, an Eigen::Map, a torch::Tensor: any
// model of the State backend concept of state.hpp), x a batch of states at time t, and `out`
// a state of x's layout, already allocated, to be overwritten with the network's prediction
// for every sample. What `out` holds is declared by `model_output` in the solver's options
// (eps by default). The solver takes the network by reference and never copies it; calls are
// made one after another from the thread that called sample(). The network must not change
// the layout of `out` (a run stops with status::bad_output_shape if it does). An exception
// thrown by the network propagates out of sample() unchanged, with the state left as for a
// failed call (see sample_result in result.hpp) and the workspace reusable.
//
// With deis::state<Scalar> (an Eigen column-major matrix) a batch holds one sample per column.
#pragma once

#include <cmath>
#include <limits>

namespace deis {

/// What the user's network returns, with x_t = alpha x0 + sigma eps.
enum class model_output {
    eps,      ///< the noise eps
    x0,       ///< the clean data x0
    v,        ///< v = alpha eps - sigma x0 (v-prediction, as SD 2.x)
    score,    ///< the score grad log p_t(x) = -eps / sigma
    velocity  ///< dx/dt = alpha'(t) x0 + sigma'(t) eps; with flow matching eps - x0 (SD3, Flux).
              ///< Needs a schedule with alpha_dot and sigma_dot (schedule.hpp)
};

/// What the multistep solvers extrapolate: the noise (eps, the DEIS form) or the data
/// (x0 = (x - sigma eps)/alpha, the form that stays stable under strong guidance).
enum class prediction { noise, data };

namespace detail {

// h = px * x + po * out turns the network's output into the predicted quantity.
struct conversion {
    double px = 0.0, po = 1.0;
    bool identity() const { return px == 0.0 && po == 1.0; }
    bool finite() const { return std::isfinite(px) && std::isfinite(po); }
};

// Exact conversions from x = alpha x0 + sigma eps, v = alpha eps - sigma x0 and
// velocity = alpha' x0 + sigma' eps:
//   from v:        eps = (alpha v + sigma x)/(alpha^2 + sigma^2), x0 = (alpha x - sigma v)/(alpha^2 + sigma^2)
//   from velocity: eps = (alpha vel - alpha' x)/D, x0 = (sigma' x - sigma vel)/D,
//                  D = alpha sigma' - sigma alpha'
// (the first denominator is 1 for a variance-preserving schedule, D is 1 for flow matching).
// A coefficient is infinite where the output does not determine the prediction (eps at
// alpha = 0 for data prediction, x0 at sigma = 0 for noise prediction); the solvers reject
// those when they are built.
inline conversion make_conversion(model_output out, prediction pred, double alpha, double sigma,
                                  double alpha_dot = std::numeric_limits<double>::quiet_NaN(),
                                  double sigma_dot = std::numeric_limits<double>::quiet_NaN()) {
    const double n2 = alpha * alpha + sigma * sigma;
    const double D = alpha * sigma_dot - sigma * alpha_dot;
    const double inf = std::numeric_limits<double>::infinity();
    auto div = [inf](double a, double b) { return b == 0.0 ? (a == 0.0 ? 0.0 : inf) : a / b; };
    if (pred == prediction::noise) {
        switch (out) {
            case model_output::eps: return {0.0, 1.0};
            case model_output::x0: return {div(1.0, sigma), div(-alpha, sigma)};
            case model_output::v: return {sigma / n2, alpha / n2};
            case model_output::score: return {0.0, -sigma};
            case model_output::velocity: return {-alpha_dot / D, alpha / D};
        }
    } else {
        switch (out) {
            case model_output::eps: return {div(1.0, alpha), div(-sigma, alpha)};
            case model_output::x0: return {0.0, 1.0};
            case model_output::v: return {alpha / n2, -sigma / n2};
            case model_output::score: return {div(1.0, alpha), div(sigma * sigma, alpha)};
            case model_output::velocity: return {sigma_dot / D, -sigma / D};
        }
    }
    return {};
}

inline const char* to_string(model_output out) {
    switch (out) {
        case model_output::eps: return "eps";
        case model_output::x0: return "x0";
        case model_output::v: return "v";
        case model_output::score: return "score";
        case model_output::velocity: return "velocity";
    }
    return "unknown";
}

}  // namespace detail
}  // namespace deis
