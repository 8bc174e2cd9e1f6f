// deis: the run of a multistep solver: the definitions of multistep_solver::sample() and of
// the functions of its loop (declared in deis/multistep.hpp, which includes this header at
// its end).
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>

#include "deis/multistep.hpp"

namespace deis {

template <class Network, class S, class W, class Observer, class Noise>
sample_result multistep_solver::sample(Network&& net, S& x, workspace<W>& ws, Observer&& observer,
                                       Noise&& noise) const {
    static_assert(std::is_same_v<typename workspace<W>::state_type, S>,
                  "deis::multistep_solver::sample: the workspace was made for another state type");
    if constexpr (std::is_same_v<std::decay_t<Noise>, gaussian_noise>) {
        // the default noise source: seeded from the options unless the caller passed one
        if (!noise.seeded()) {
            gaussian_noise seeded(opt_.seed);
            return run(net, x, ws, observer, seeded);
        }
    }
    return run(net, x, ws, observer, noise);
}

template <class S, class W>
multistep_solver::run_buffers<S> multistep_solver::take_buffers(workspace<W>& ws) const {
    run_buffers<S> b;
    for (int j = 0; j < history_; ++j) b.hist[std::size_t(j)] = &ws.buffer(j);
    if (any_corrector_) b.predicted = &ws.buffer(predicted_index());
    if (stochastic_) b.z = &ws.buffer(noise_index());
    if (opt_.threshold.enabled()) b.scratch = &ws.buffer(scratch_index());
    return b;
}

template <class Network, class S, class W, class Observer, class Noise>
sample_result multistep_solver::run(Network& net, S& x, workspace<W>& ws, Observer& observer, Noise& noise) const {
    run_buffers<S> b;
    auto check = [&] {
        check_run<Noise, S>();
        b = take_buffers<S>(ws);
    };
    auto step = [&](int k, sample_result& r) {
        // the call at grid[k], at x or at the state the predictor of step k - 1 wrote, into
        // the oldest history buffer
        const bool corrected = after_correction(k);
        const status st = call(net, k, call_input(k, x, b), *b.fresh(history_), corrected ? &x : nullptr, r);
        if (st != status::success) return stopped(r, st, k);
        return after_call(k, x, b, observer, noise, r);
    };
    return detail::run_steps("multistep_solver::sample", *this, x, ws, check, step);
}

template <class S>
const S& multistep_solver::call_input(int k, const S& x, const run_buffers<S>& b) const {
    return after_correction(k) ? *b.predicted : x;
}

template <class S, class Observer, class Noise>
bool multistep_solver::after_call(int k, S& x, run_buffers<S>& b, Observer& observer, Noise& noise,
                                  sample_result& r) const {
    using ops = state_ops<S>;
    const int nh = history_;
    auto& hist = b.hist;
    const bool corrected = after_correction(k);
    const S& in = call_input(k, x, b);
    // the oldest buffer is free when the call is made: step k - 1's predictor has used it,
    // and its corrector and step k's predictor need at most the nh - 1 newest old predictions
    S* const fresh = b.fresh(nh);
    if constexpr (detail::has_threshold<S>::value) {
        if (opt_.threshold.enabled()) ops::threshold(*fresh, *b.scratch, opt_.threshold.percentile, opt_.threshold.max_value);
    }
    for (int j = nh - 1; j > 0; --j) hist[std::size_t(j)] = hist[std::size_t(j - 1)];
    hist[0] = fresh;

    // x holds the state at grid[k] unless step k - 1 was corrected: then it is the
    // predicted state corrected, which is formed only for an observer
    bool formed = !corrected;
    if constexpr (detail::has_observer<Observer>) {
        if (corrected) {
            const combination& e = correction_[std::size_t(k) - 1];
            ops::combine(x, 1.0, *b.predicted, e.f.data(), hist.data(), e.terms);
            formed = true;
        }
        if (!observe(observer, k, x, in, *hist[0], r)) return stopped(r, status::cancelled, k);
    }
    (void)observer;
    (void)in;
    predict(k, x, b.predicted, b.z, hist, formed, noise);
    return true;
}

template <class Noise, class S>
void multistep_solver::check_run() const {
    if constexpr (!std::is_invocable_v<Noise&, S&, int>) {
        if (stochastic_)
            detail::fail("multistep_solver::sample", "noise", "the default",
                         "has no generator for this state type: pass a noise source (see noise.hpp)");
    }
    if constexpr (!detail::has_threshold<S>::value) {
        if (opt_.threshold.enabled())
            detail::fail("multistep_solver::sample", "threshold", "on",
                         "is not available for this state type (state_ops has no threshold)");
    }
}

template <class Network, class S>
status multistep_solver::call(Network& net, int k, const S& in, S& out, S* restore, sample_result& r) const {
    using ops = state_ops<S>;
    const auto ku = std::size_t(k);
    status st;
    try {
        st = detail::evaluate(net, in, grid_[ku], out, conv_[ku], r);
    } catch (...) {
        if (restore) ops::copy(*restore, in);  // x: the input of the failed call
        throw;
    }
    if (st != status::success && restore) ops::copy(*restore, in);
    return st;
}

template <class Observer, class S>
bool multistep_solver::observe(Observer& observer, int k, const S& x, const S& in, const S& h,
                               const sample_result& r) const {
    const auto ku = std::size_t(k);
    step_info<S> info(x, in, h, preview_[ku].px, preview_[ku].po);
    info.step = k;
    info.steps = steps();
    info.t = grid_[ku];
    info.nfe = r.nfe;
    return detail::notify(observer, info);
}

inline bool multistep_solver::stopped(sample_result& r, status st, int k) const {
    r.status = st;
    r.failed_time = grid_[std::size_t(k)];
    return false;
}

// The predictor of step k, into x, or into the predicted state when step k has a corrector.
// After a corrected step the state at grid[k] is the predicted state corrected, which is not
// formed without an observer: the predictor is applied to the predicted state with
// coefficients that include the correction (see build_row()). One pass over memory.
template <class S, class Noise>
void multistep_solver::predict(int k, S& x, S* predicted, S* z, const std::array<S*, detail::max_nodes + 1>& hist,
                               bool formed, Noise& noise) const {
    using ops = state_ops<S>;
    const auto ku = std::size_t(k);
    const step_coefficients& step = table_[ku];
    S& target = step.corrector_order >= 0 ? *predicted : x;
    if (!formed) {
        const combination& p = after_corrector_[ku];
        ops::combine(target, step.x_coef, *predicted, p.f.data(), hist.data(), p.terms);
    } else if (stochastic_) {
        if constexpr (std::is_invocable_v<Noise&, S&, int>) noise(*z, k);
        std::array<const S*, detail::max_nodes + 1> terms{};
        std::array<double, detail::max_nodes + 1> coef{};
        const int m = step.order + 1;
        for (int j = 0; j < m; ++j) {
            terms[std::size_t(j)] = hist[std::size_t(j)];
            coef[std::size_t(j)] = step.c[std::size_t(j)];
        }
        terms[std::size_t(m)] = z;
        coef[std::size_t(m)] = step.noise;
        ops::combine(target, step.x_coef, x, coef.data(), terms.data(), m + 1);
    } else {
        ops::combine(target, step.x_coef, x, step.c.data(), hist.data(), step.order + 1);
    }
    (void)z;
    (void)noise;
}

template <class Network, class S>
sample_result multistep_solver::sample(Network&& net, S& x) const {
    detail::check_state("multistep_solver::sample", x);
    workspace<S> ws(*this, x);
    return sample(net, x, ws);
}

}  // namespace deis
