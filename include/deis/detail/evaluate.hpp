// deis: one network call of a run (the Network concept of deis/model_output.hpp): the call,
// the checks of its output and its conversion to the predicted quantity.
#pragma once

#include <type_traits>

#include "deis/model_output.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"

namespace deis::detail {

// Gives a buffer that a network resized its shape back, for the next run (only owning
// buffers can change shape; a Map cannot).
template <class S>
void restore_layout(S& out, const S& like) {
    if constexpr (std::is_same_v<typename state_ops<S>::buffer, S>) out = state_ops<S>::like(like);
}

// The network's output `out` at x converted in place to the predicted quantity.
template <class S>
void convert(S& out, const S& x, const conversion& conv) {
    if (!conv.identity()) {
        const S* in = &x;
        state_ops<S>::combine(out, conv.po, out, &conv.px, &in, 1);
    }
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
    convert(out, x, conv);
    return status::success;
}

}  // namespace deis::detail
