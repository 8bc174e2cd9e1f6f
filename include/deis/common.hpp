// deis: what every solver shares: the state type, the network's calling convention, how
// the network's output is read, and the result of a run.
//
// The Network concept. The network is any callable `net` (a functor, a lambda) that a solver
// calls as
//
//     net(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out)
//
// with x a batch of states (one sample per column) at time t, and `out` a matrix of the same
// shape, already allocated, to be overwritten with the network's prediction for every
// column. What `out` holds is declared by `model_output` in the solver's options (eps by
// default). The solver takes the network by reference and never copies it; calls are made
// one after another from the thread that called sample(). The network must not resize `out`
// (a run stops with status::bad_output_shape if it does).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <string>

#include "deis/detail/error.hpp"

namespace deis {

/// A batch of states: one sample per column, column-major. Scalar is float or double; all
/// coefficient math is done in double and each coefficient is rounded to Scalar once.
template <class Scalar>
using state = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// What the user's network returns, with x_t = alpha x0 + sigma eps.
enum class model_output {
    eps,   ///< the noise eps
    x0,    ///< the clean data x0
    v,     ///< v = alpha eps - sigma x0
    score  ///< the score grad log p_t(x) = -eps / sigma
};

/// What the multistep solvers extrapolate: the noise (eps, the DEIS form) or the data
/// (x0 = (x - sigma eps)/alpha, the form that stays stable under strong guidance).
enum class prediction { noise, data };

/// How a run ended.
enum class status {
    success,            ///< all steps done
    non_finite_output,  ///< the network returned NaN or Inf; the run stopped
    bad_output_shape    ///< the network resized its output; the run stopped
};

/// What a run reports. On failure, `failed_time` is the time of the rejected network call,
/// `steps` the number of steps completed before it, and the state is finite: for the
/// multistep solvers it is the input of that call (the state at failed_time); for
/// rk_solver, whose calls are made at stage states, it is the state at the start of the
/// failed step, grid()[steps].
struct sample_result {
    deis::status status = status::success;
    int nfe = 0;    ///< network calls made
    int steps = 0;  ///< steps completed
    double failed_time = std::numeric_limits<double>::quiet_NaN();

    bool ok() const { return status == status::success; }
    explicit operator bool() const { return ok(); }
};

inline const char* to_string(status s) {
    switch (s) {
        case status::success: return "success";
        case status::non_finite_output: return "the network returned a non-finite value";
        case status::bad_output_shape: return "the network changed the shape of its output";
    }
    return "unknown status";
}

namespace detail {

// h = px * x + po * out turns the network's output into the predicted quantity.
struct conversion {
    double px = 0.0, po = 1.0;
    bool identity() const { return px == 0.0 && po == 1.0; }
};

// Exact conversions from x = alpha x0 + sigma eps and v = alpha eps - sigma x0, so that
// eps = (alpha v + sigma x)/(alpha^2 + sigma^2) and x0 = (alpha x - sigma v)/(alpha^2 + sigma^2)
// (the denominators are 1 for a variance-preserving schedule).
inline conversion make_conversion(model_output out, prediction pred, double alpha, double sigma) {
    const double n2 = alpha * alpha + sigma * sigma;
    if (pred == prediction::noise) {
        switch (out) {
            case model_output::eps: return {0.0, 1.0};
            case model_output::x0: return {1.0 / sigma, -alpha / sigma};
            case model_output::v: return {sigma / n2, alpha / n2};
            case model_output::score: return {0.0, -sigma};
        }
    } else {
        switch (out) {
            case model_output::eps: return {1.0 / alpha, -sigma / alpha};
            case model_output::x0: return {0.0, 1.0};
            case model_output::v: return {alpha / n2, -sigma / n2};
            case model_output::score: return {1.0 / alpha, sigma * sigma / alpha};
        }
    }
    return {};
}

// Whether every entry of m is finite, in one vectorised pass: m - m is exactly 0 for a
// finite entry and NaN for an infinite or NaN one, so the sum is 0 exactly when all are
// finite. (Eigen's allFinite() ends in a per-entry branch; this is about 5x faster, which
// matters since it runs on every network output.) Under -ffast-math, where m - m may fold to
// 0, it falls back to allFinite().
template <class Derived>
bool all_finite(const Eigen::MatrixBase<Derived>& m) {
#ifdef __FAST_MATH__
    return m.allFinite();
#else
    return (m - m).sum() == typename Derived::Scalar(0);
#endif
}

// One network call at (x, t) into `out`, converted to the predicted quantity. Returns the
// status of the call; counts it in r.nfe.
template <class Network, class Scalar>
status evaluate(Network& net, const state<Scalar>& x, double t, state<Scalar>& out, const conversion& conv,
                sample_result& r) {
    net(x, t, out);
    ++r.nfe;
    if (out.rows() != x.rows() || out.cols() != x.cols()) {
        out.resize(x.rows(), x.cols());  // give the buffer back its shape for the next run
        return status::bad_output_shape;
    }
    if (!all_finite(out)) return status::non_finite_output;
    if (!conv.identity()) out = Scalar(conv.px) * x + Scalar(conv.po) * out;
    return status::success;
}

// Validates the caller's batch before anything is touched.
template <class Scalar>
void check_state(const char* where, const state<Scalar>& x) {
    if (x.rows() < 1 || x.cols() < 1)
        fail(where, "x.shape", std::to_string(x.rows()) + "x" + std::to_string(x.cols()),
             "must have at least one row and one column");
    if (!all_finite(x)) {
        for (Eigen::Index j = 0; j < x.cols(); ++j)
            for (Eigen::Index i = 0; i < x.rows(); ++i)
                if (!std::isfinite(double(x(i, j))))
                    fail(where, "x(" + std::to_string(i) + ", " + std::to_string(j) + ")", double(x(i, j)),
                         "must be finite");
    }
}

}  // namespace detail
}  // namespace deis
