// deis: the per-step observer of a run: step_info and the Observer concept.
//
// The Observer concept: an optional callable `obs` passed to sample(), called as
// `obs(const step_info<S>& info)` after the network call at grid()[step] for step = 0 ..
// steps - 1 (for rk_solver, the call of the step's first stage, which is made at that grid
// time), in order, from the thread that runs sample(). It returns bool: true to go on, false
// to stop the run (status::cancelled, the state left at grid()[step]); or void (always go
// on). The references in `info` are valid during the call only; the observer must not
// modify the state. Without an observer a run has no per-step cost for it.
#pragma once

#include "deis/state.hpp"

namespace deis {

/// What an observer is shown after each network call at a grid time (see the Observer
/// concept above).
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

}  // namespace deis
