// deis: classifier-free guidance, as a network adaptor.
//
// Classifier-free guidance with scale w combines a conditional prediction c and an
// unconditional one u of the same model into
//
//     guided = u + w (c - u) = (1 - w) u + w c
//
// (w = 0: the unconditional model, w = 1: the conditional one, w > 1: guidance; 5 to 10 are
// usual for images). The adaptors below are Networks (see model_output.hpp) that a solver calls like
// any other; they form the combination in whatever model_output the wrapped model gives, eps,
// x0, v, score or velocity. This is the same guidance in every output: every conversion of
// model_output.hpp is h = px x + po out with px, po depending on t only, and the weights 1 - w and w
// sum to 1, so converting the guided output gives the guided prediction of the converted
// quantity, (1 - w) h_u + w h_c. Declare the model's output in the solver's options as usual.
//
// Two forms:
// - guided_network: two networks (or the same one twice with its conditioning switched by the
//   caller), called one after the other on x, two calls per solver call;
// - guided_batch_network: one network called once on a doubled batch holding x twice, the
//   unconditional copy first (samples [0, n)) and the conditional copy second ([n, 2n)), as
//   inference code usually batches the two passes. The network must know which half gets
//   which conditioning.
//
// Memory. Each adaptor makes its buffers once, in its constructor, from a state of the run's
// layout (one state-sized buffer for guided_network; a doubled input and a doubled output for
// guided_batch_network), so a call allocates nothing on the Eigen backends (a test proves it
// under EIGEN_RUNTIME_NO_MALLOC); it is one fused pass over memory besides the network calls.
// Because of these buffers an adaptor serves one run at a time: make one per thread.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "deis/detail/error.hpp"
#include "deis/detail/evaluate.hpp"
#include "deis/model_output.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"

namespace deis {

/// Classifier-free guidance from two networks: out = u + w (c - u) with c = cond(x, t) and
/// u = uncond(x, t). A Network (model_output.hpp) for the state type S, which may be any model of the
/// State backend concept (state.hpp).
///
/// Holds references to both networks (never copies them: they must outlive the adaptor) and one
/// state-sized buffer made from `like` in the constructor. Calls cond first, writing into the
/// solver's output, then uncond into the buffer, then combines them in one pass; nothing is
/// allocated per call on the Eigen backends. Not to be used by two runs at the same time.
template <class Cond, class Uncond, class S>
class guided_network {
public:
    /// `like` is a state of the layout the solver will pass (the caller's x). Throws
    /// std::invalid_argument when the scale is not finite or `like` is empty.
    guided_network(Cond& cond, Uncond& uncond, double scale, const S& like)
        : cond_(cond), uncond_(uncond), w_(check_scale("guided_network", scale)), u_(make(like)) {}

    /// Writes the guided prediction for x at t into out (x's layout). Throws
    /// std::invalid_argument when x does not have the layout the adaptor was made for, and
    /// std::runtime_error when the unconditional network changes the layout of its output;
    /// an exception of either network propagates. Non-finite values pass through to the
    /// solver, which stops the run on them.
    void operator()(const S& x, double t, S& out) {
        S& u = ops::view(u_);
        if (!ops::same_layout(u, x))
            detail::fail("guided_network", "x", ops::describe(x),
                         "does not have the layout the adaptor was made for (" + ops::describe(u) + ")");
        cond_(x, t, out);
        if (!ops::same_layout(out, x)) return;  // the solver reports status::bad_output_shape
        uncond_(x, t, u);
        if (!ops::same_layout(u, x)) {
            detail::restore_layout(u, x);
            throw std::runtime_error("deis::guided_network: the unconditional network changed the layout of its "
                                     "output (to " + ops::describe(u) + ")");
        }
        // out = w c + (1 - w) u, c being out itself (the output may be the combination's x)
        const double c = 1.0 - w_;
        const S* h = &u;
        ops::combine(out, w_, out, &c, &h, 1);
    }

    double scale() const { return w_; }

private:
    using ops = state_ops<S>;

    static double check_scale(const char* where, double w) {
        if (!std::isfinite(w)) detail::fail(where, "scale", w, "must be finite");
        return w;
    }
    static typename ops::buffer make(const S& like) {
        static_assert(detail::has_state_ops<S>::value,
                      "deis::guided_network: the state type does not model the State backend concept (state.hpp)");
        if (ops::empty(like)) detail::fail("guided_network", "like", ops::describe(like), "must hold at least one element");
        return ops::like(like);
    }

    Cond& cond_;
    Uncond& uncond_;
    double w_;
    typename ops::buffer u_;
};

/// How guided_batch_network doubles a batch of the state type S: specialised for Eigen
/// matrices and Eigen::Map (one sample per column). A backend of one's own enables the
/// doubled-batch form by specialising it with
///   buffer                     owning storage of a doubled state
///   like_doubled(x)            a buffer for 2n samples of x's kind (set-up only)
///   view(b)                    the doubled state stored in b
///   duplicate(x2, x)           x2 = [x, x] (samples [0, n) and [n, 2n))
///   combine_halves(out, y2, w) out = y2[0, n) + w (y2[n, 2n) - y2[0, n)), one pass
///   doubles(y2, x)             whether y2 has the layout of [x, x]
template <class S, class Enable = void>
struct batch_ops;

namespace detail {

template <class S>
struct eigen_batch_ops {
    using plain = Eigen::Matrix<typename S::Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    using buffer = plain;
    static buffer like_doubled(const S& x) { return buffer(x.rows(), 2 * x.cols()); }
    static plain& view(buffer& b) { return b; }
    static void duplicate(plain& x2, const S& x) {
        x2.leftCols(x.cols()) = x;
        x2.rightCols(x.cols()) = x;
    }
    static void combine_halves(S& out, const plain& y2, double w) {
        using Scalar = typename S::Scalar;
        const Eigen::Index n = out.cols();
        out = Scalar(1.0 - w) * y2.leftCols(n) + Scalar(w) * y2.rightCols(n);
    }
    static bool doubles(const plain& y2, const S& x) { return y2.rows() == x.rows() && y2.cols() == 2 * x.cols(); }
};

}  // namespace detail

/// Eigen matrices with one sample per column; the network sees deis::state<Scalar> of 2n
/// columns.
template <class Scalar, int Rows, int Cols, int Options, int MaxRows, int MaxCols>
struct batch_ops<Eigen::Matrix<Scalar, Rows, Cols, Options, MaxRows, MaxCols>>
    : detail::eigen_batch_ops<Eigen::Matrix<Scalar, Rows, Cols, Options, MaxRows, MaxCols>> {};

/// Eigen::Map states: the doubled batch is an owning deis::state<Scalar> of 2n columns (the
/// network is then called with that type, not with a Map).
template <class Plain, int MapOptions>
struct batch_ops<Eigen::Map<Plain, MapOptions>> : detail::eigen_batch_ops<Eigen::Map<Plain, MapOptions>> {};

/// Classifier-free guidance from one network called once on a doubled batch: x2 = [x, x]
/// (the unconditional copy first), y2 = net(x2, t), out = u + w (c - u) with u = y2[0, n) and
/// c = y2[n, 2n). A Network (model_output.hpp) for S; the network is called with
/// batch_ops<S>::view's type (deis::state<Scalar> for the Eigen backends).
///
/// Holds a reference to the network (never copies it) and a doubled input and output made from
/// `like` in the constructor (two buffers of twice x's size); nothing is allocated per call on
/// the Eigen backends. One copy of x into both halves and one pass to combine per call. Not to
/// be used by two runs at the same time.
template <class Net, class S>
class guided_batch_network {
public:
    /// As guided_network's constructor.
    guided_batch_network(Net& net, double scale, const S& like)
        : net_(net), w_(check(scale, like)), x2_(bops::like_doubled(like)), y2_(bops::like_doubled(like)) {}

    /// Writes the guided prediction for x at t into out. Throws std::invalid_argument when x
    /// does not have the layout the adaptor was made for, and std::runtime_error when the
    /// network changes the layout of its (doubled) output; an exception of the network
    /// propagates.
    void operator()(const S& x, double t, S& out) {
        auto& x2 = bops::view(x2_);
        auto& y2 = bops::view(y2_);
        if (!bops::doubles(x2, x))
            detail::fail("guided_batch_network", "x", state_ops<S>::describe(x),
                         "does not have the layout the adaptor was made for");
        bops::duplicate(x2, x);
        net_(static_cast<const std::decay_t<decltype(x2)>&>(x2), t, y2);
        if (!bops::doubles(y2, x)) {
            y2_ = bops::like_doubled(x);
            throw std::runtime_error("deis::guided_batch_network: the network changed the layout of its doubled output");
        }
        bops::combine_halves(out, y2, w_);
    }

    double scale() const { return w_; }

private:
    using bops = batch_ops<S>;

    static double check(double w, const S& like) {
        if (!std::isfinite(w)) detail::fail("guided_batch_network", "scale", w, "must be finite");
        if (state_ops<S>::empty(like))
            detail::fail("guided_batch_network", "like", state_ops<S>::describe(like), "must hold at least one element");
        return w;
    }

    Net& net_;
    double w_;
    typename bops::buffer x2_, y2_;
};

}  // namespace deis
