// deis: what every solver shares: the default state type, the network's calling convention,
// how the network's output is read, the per-step observer, and the result of a run.
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
// failed call (see sample_result) and the workspace reusable.
//
// With deis::state<Scalar> (an Eigen column-major matrix) a batch holds one sample per column.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "deis/detail/error.hpp"
#include "deis/state.hpp"

namespace deis {

/// A batch of states: one sample per column, column-major. Scalar is float or double; all
/// coefficient math is done in double and each coefficient is rounded to Scalar once.
template <class Scalar>
using state = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

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

/// How a run ended.
enum class status {
    success,            ///< all steps done
    non_finite_output,  ///< the network returned NaN or Inf; the run stopped
    bad_output_shape,   ///< the network changed the layout of its output; the run stopped
    cancelled           ///< the observer asked to stop; the run stopped
};

/// What a run reports. On a failed call (non_finite_output, bad_output_shape; or an
/// exception from the network, which propagates), `failed_time` is the time of the rejected
/// network call, `steps` the number of steps completed before it, and the state is finite:
/// for the multistep solvers it is the input of that call (the state at failed_time; with
/// the corrector, the predicted state there, before its correction); for rk_solver, whose
/// calls are made at stage states, it is the state at the start of the failed step,
/// grid()[steps]. When cancelled, the state is the one the observer saw last, at grid time
/// grid()[steps] = failed_time.
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
        case status::cancelled: return "cancelled by the observer";
    }
    return "unknown status";
}

/// What an observer is shown after each network call at a grid time.
///
/// The Observer concept: an optional callable `obs` passed to sample(), called as
/// `obs(const step_info<S>& info)` after the network call at grid()[step] for step = 0 ..
/// steps - 1 (for rk_solver, the call of the step's first stage, which is made at that grid
/// time), in order, from the thread that runs sample(). It returns bool: true to go on, false
/// to stop the run (status::cancelled, the state left at grid()[step]); or void (always go
/// on). The references in `info` are valid during the call only; the observer must not
/// modify the state. Without an observer a run has no per-step cost for it.
template <class S>
class step_info {
public:
    int step = 0;   ///< the grid index of the state: grid()[step]
    int steps = 0;  ///< steps of the whole run
    double t = 0.0; ///< grid()[step]
    int nfe = 0;    ///< network calls made so far

    /// The state at grid()[step]. With the corrector it is the corrected state, which the
    /// solver forms for the observer (one extra pass over memory per step, only then).
    const S& x() const { return *x_; }

    /// Writes the data prediction x0 of the network call just made into `out` (a state of
    /// x's layout that the observer owns; one pass over memory): a preview of the sample.
    /// With the corrector the call was made at the predicted state, so x0 is the network's
    /// prediction there.
    void data_prediction(S& out) const {
        const S* h = h_;
        state_ops<S>::combine(out, px_, *in_, &po_, &h, 1);
    }

    step_info(const S& x, const S& in, const S& h, double px, double po) : x_(&x), in_(&in), h_(&h), px_(px), po_(po) {}

private:
    const S* x_;
    const S* in_;
    const S* h_;
    double px_, po_;  // x0 = px * in + po * h
};

namespace detail {

// The observer of a run without one: nothing is called, nothing is formed.
struct no_observer {};

template <class Observer>
inline constexpr bool has_observer = !std::is_same_v<std::decay_t<Observer>, no_observer>;

// Calls the observer; whether to go on.
template <class Observer, class S>
bool notify(Observer& obs, const step_info<S>& info) {
    if constexpr (std::is_void_v<decltype(obs(info))>) {
        obs(info);
        return true;
    } else {
        return static_cast<bool>(obs(info));
    }
}

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

// Gives a buffer that a network resized its shape back, for the next run (only owning
// buffers can change shape; a Map cannot).
template <class S>
void restore_layout(S& out, const S& like) {
    if constexpr (std::is_same_v<typename state_ops<S>::buffer, S>) out = state_ops<S>::like(like);
}

// One network call at (x, t) into `out`, converted to the predicted quantity. Returns the
// status of the call; counts it in r.nfe.
template <class Network, class S>
status evaluate(Network& net, const S& x, double t, S& out, const conversion& conv, sample_result& r) {
    using ops = state_ops<S>;
    net(x, t, out);
    ++r.nfe;
    if (!ops::same_layout(out, x)) {
        restore_layout(out, x);
        return status::bad_output_shape;
    }
    if (!ops::all_finite(out)) return status::non_finite_output;
    if (!conv.identity()) {
        const S* in = &x;
        ops::combine(out, conv.po, out, &conv.px, &in, 1);
    }
    return status::success;
}

// The position of the first non-finite entry of an Eigen state, for the message of
// check_state; other backends say only that there is one.
template <class S>
std::string first_non_finite(const S& x) {
    if constexpr (std::is_base_of_v<Eigen::MatrixBase<S>, S>) {
        for (Eigen::Index j = 0; j < x.cols(); ++j)
            for (Eigen::Index i = 0; i < x.rows(); ++i)
                if (!std::isfinite(double(x(i, j))))
                    return "x(" + std::to_string(i) + ", " + std::to_string(j) + ") = " +
                           format_double(double(x(i, j)));
    }
    (void)x;
    return "x";
}

// Whether state_ops<S> has the optional check(where, x) of its own calling convention.
template <class S, class = void>
struct has_state_check : std::false_type {};
template <class S>
struct has_state_check<S, std::void_t<decltype(state_ops<S>::check("", std::declval<const S&>()))>>
    : std::true_type {};

// Validates the caller's batch before anything is touched.
template <class S>
void check_state(const char* where, const S& x) {
    static_assert(has_state_ops<S>::value,
                  "deis: the state type does not model the State backend concept: specialise deis::state_ops for it "
                  "(see deis/state.hpp), or include <deis/torch.hpp> for torch::Tensor");
    using ops = state_ops<S>;
    if constexpr (has_state_check<S>::value) ops::check(where, x);
    if (ops::empty(x)) fail(where, "x.shape", ops::describe(x), "must hold at least one element");
    if (!ops::all_finite(x)) {
        std::string at = first_non_finite(x);
        throw std::invalid_argument("deis::" + std::string(where) + ": " + at + " must be finite" +
                                    (at == "x" ? " (it holds NaN or Inf)" : ""));
    }
}

// The state type of a workspace template argument: a scalar stands for deis::state<Scalar>
// (multistep_workspace<double> is the workspace of deis::state<double>); any other type is
// the state type itself.
template <class T>
struct state_of {
    using type = std::conditional_t<std::is_arithmetic_v<T>, state<T>, T>;
};
template <class T>
using state_of_t = typename state_of<T>::type;

}  // namespace detail
}  // namespace deis
