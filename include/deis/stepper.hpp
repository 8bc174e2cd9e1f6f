// deis: the stepper, a run the application drives: it calls its network itself and hands
// each output to the stepper.
//
//     deis::stepper st(solver, x);            // x: any State backend; integrated in place
//     while (!st.done()) {
//         model(st.input(), st.time(), out);  // the state and time of the next network call
//         if (st.advance(out) != deis::status::success) { /* out was refused; x unchanged */ }
//     }
//
// The stepper makes the same network calls as solver.sample(net, x) (same states, same times,
// same order) and leaves the same x, bit for bit, for every configuration of either family
// (multistep_solver, rk_solver<T>). sample() with an observer forms the corrected state of
// the corrector for it, which may change the last bits; the stepper follows sample() without
// an observer.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "deis/detail/check_state.hpp"
#include "deis/detail/evaluate.hpp"
#include "deis/diffusers/timesteps.hpp"
#include "deis/multistep.hpp"
#include "deis/noise.hpp"
#include "deis/result.hpp"
#include "deis/rk.hpp"
#include "deis/state.hpp"
#include "deis/workspace.hpp"

namespace deis {

/// A run of `Solver` (multistep_solver or rk_solver<Tableau>) on a state of type S, one
/// network call at a time, the loop being the application's:
///
/// - input() is the state the network must see next (x itself, or for the corrector the
///   predicted state, for a Runge-Kutta stage the stage state), time() its time (the
///   schedule's t; timestep(map) the network's timestep, e.g. diffusers' tau);
/// - advance(out) consumes the network's output at input() (the model output of the
///   solver's options, of x's layout). An output of another layout, or not finite, is refused
///   with status::bad_output_shape or status::non_finite_output and changes nothing: the
///   same call may be made again. advance() after done() throws std::logic_error.
/// - output() is a buffer of the stepper's that the network may write instead, consumed by
///   advance() without argument (no copy).
///
/// Lifetime: the solver, x (and a workspace given to the constructor) must outlive the
/// stepper; x is integrated in place and holds the sample once done() (before that it is
/// not necessarily the state at a grid time: with the corrector the predicted state lives in
/// the workspace). Threads: one stepper is used by one thread at a time; any number of
/// steppers may share a solver. Memory: the constructor without a workspace makes one
/// (solver.workspace_size() states); nothing is allocated afterwards on the Eigen backends.
/// Noise (multistep only): the source of a stochastic run's noise (noise.hpp); the default
/// uses the solver's seed, as sample() does.
template <class Solver, class S, class Noise = gaussian_noise>
class stepper;

namespace detail {

// What the steppers of both families share: the state, the workspace, the counts, and the
// calls built on Derived's input(), output(), time() and consume().
template <class Derived, class S>
class stepper_core {
public:
    /// The network's timestep at time(), e.g. timestep(discrete_timesteps(schedule)).
    double timestep(const timestep_map& map) const { return map(self().time()); }

    /// Consumes the network's output at input(), copying it; then the next stage is formed
    /// (Runge-Kutta) or the step is made.
    [[nodiscard]] status advance(const S& out) {
        const status st = accepts("advance", out, self().input());
        if (st != status::success) return st;
        ops::copy(self().output(), out);
        return self().consume();
    }
    /// Consumes output(), which the network has written.
    [[nodiscard]] status advance() {
        S& out = self().output();
        const status st = accepts("advance", out, self().input());
        if (st == status::bad_output_shape) restore_layout(out, self().input());
        if (st != status::success) return st;
        return self().consume();
    }

    /// Whether every step is done (x holds the sample).
    bool done() const { return step_ == steps_; }
    /// The step the next call belongs to, 0 .. steps() - 1 (steps() when done).
    int step() const { return step_; }
    int steps() const { return steps_; }
    /// Network outputs consumed so far.
    int nfe() const { return nfe_; }
    /// The result of the run so far (status::success; steps and nfe done).
    sample_result result() const {
        sample_result r;
        r.steps = step_;
        r.nfe = nfe_;
        return r;
    }
    stepper_core(const stepper_core&) = delete;
    stepper_core& operator=(const stepper_core&) = delete;
    stepper_core(stepper_core&&) = default;
    stepper_core& operator=(stepper_core&&) = default;

protected:
    using ops = state_ops<S>;

    template <class Solver, class W>
    stepper_core(const char* where, const Solver& solver, S& x, workspace<W>* ws) : x_(&x), steps_(solver.steps()) {
        static_assert(std::is_same_v<typename workspace<W>::state_type, S>,
                      "deis::stepper: the workspace was made for another state type");
        check_state(where, x);
        if (!ws) {
            own_.emplace(solver, x);
            return;
        }
        if (!ws->fits(solver, x))
            fail(where, "workspace", ws->describe() + " with " + std::to_string(ws->size()) + " buffers",
                 "does not fit this solver (" + std::to_string(solver.workspace_size()) + " buffers) and x (" +
                     ops::describe(x) + "): make it with workspace(solver, x)");
    }

    // Throws std::logic_error when the run is complete.
    void require_call(const char* where) const {
        if (done())
            throw std::logic_error(std::string("deis::stepper::") + where + ": the run is complete (" +
                                   std::to_string(steps_) + " steps): there is no network call left");
    }
    // Whether `out`, the output of the call at `in`, may be consumed; throws after the run.
    status accepts(const char* where, const S& out, const S& in) const {
        require_call(where);
        if (!ops::same_layout(out, in)) return status::bad_output_shape;
        if (!ops::all_finite(out)) return status::non_finite_output;
        return status::success;
    }

    // x0 = preview of the raw output `out` at `in`: converted to the predicted quantity, then to x0.
    static void to_data(S& x0, const S& out, const S& in, const conversion& conv, const conversion& preview) {
        const S* p = &in;
        ops::combine(x0, conv.po, out, &conv.px, &p, 1);
        ops::combine(x0, preview.po, x0, &preview.px, &p, 1);
    }

    std::optional<workspace<S>> own_;
    S* x_;
    int step_ = 0, steps_ = 0, nfe_ = 0;

private:
    Derived& self() { return static_cast<Derived&>(*this); }
    const Derived& self() const { return static_cast<const Derived&>(*this); }
};

}  // namespace detail

/// The stepper of a multistep solver (see stepper above): one network call per step.
template <class S, class Noise>
class stepper<multistep_solver, S, Noise> : public detail::stepper_core<stepper<multistep_solver, S, Noise>, S> {
    using core = detail::stepper_core<stepper, S>;
    friend core;

public:
    using state_type = S;

    stepper(const multistep_solver& solver, S& x, Noise noise = Noise{})
        : stepper(solver, x, static_cast<workspace<S>*>(nullptr), std::move(noise), 0) {}
    template <class W>
    stepper(const multistep_solver& solver, S& x, workspace<W>& ws, Noise noise = Noise{})
        : stepper(solver, x, &ws, std::move(noise), 0) {}

    /// The stage of the next call: 0, one call per step (as for Runge-Kutta steppers).
    int stage() const { return 0; }
    /// The state the next network call is made at (valid while not done()).
    const S& input() const { return solver_->call_input(this->step_, *this->x_, b_); }
    /// The time of the next call: grid()[step()].
    double time() const { return solver_->grid()[std::size_t(this->done() ? this->steps_ : this->step_)]; }
    /// A buffer of x's layout the network may write its output at input() into, for advance().
    S& output() { return *b_.fresh(solver_->history_); }
    /// Writes the data prediction x0 that the network output `out` at input() implies into x0
    /// (a state of x's layout; before thresholding): the preview of the sample. Call it
    /// before advance(out).
    void data_prediction(const S& out, S& x0) const {
        this->require_call("data_prediction");
        const auto k = std::size_t(this->step_);
        core::to_data(x0, out, input(), solver_->conv_[k], solver_->preview_[k]);
    }

private:
    template <class W>
    stepper(const multistep_solver& solver, S& x, workspace<W>* ws, Noise noise, int)
        : core("stepper", solver, x, ws), solver_(&solver), noise_(seeded(solver, std::move(noise))) {
        solver.check_run<Noise, S>();
        if (ws)
            b_ = solver.take_buffers<S>(*ws);
        else
            b_ = solver.take_buffers<S>(*this->own_);
    }

    static Noise seeded(const multistep_solver& solver, Noise noise) {
        if constexpr (std::is_same_v<Noise, gaussian_noise>) {
            if (!noise.seeded()) return gaussian_noise(solver.options().seed);
        }
        (void)solver;
        return noise;
    }

    status consume() {
        const typename detail::scope_of<S>::type scope{};
        (void)scope;
        const int k = this->step_;
        detail::convert(output(), input(), solver_->conv_[std::size_t(k)]);
        ++this->nfe_;
        sample_result r;
        detail::no_observer none;
        solver_->after_call(k, *this->x_, b_, none, noise_, r);
        ++this->step_;
        return status::success;
    }

    const multistep_solver* solver_;
    Noise noise_;
    multistep_solver::run_buffers<S> b_;
};

/// The stepper of a Runge-Kutta solver (see stepper above): stages calls per step (one for
/// an Euler step); input() is the stage state.
template <class Tableau, class S, class Noise>
class stepper<rk_solver<Tableau>, S, Noise>
    : public detail::stepper_core<stepper<rk_solver<Tableau>, S, Noise>, S> {
    using core = detail::stepper_core<stepper, S>;
    friend core;
    using solver_type = rk_solver<Tableau>;
    static constexpr int stages = solver_type::stages;

public:
    using state_type = S;

    stepper(const solver_type& solver, S& x) : core("stepper", solver, x, static_cast<workspace<S>*>(nullptr)), solver_(&solver) {
        take(*this->own_);
    }
    template <class W>
    stepper(const solver_type& solver, S& x, workspace<W>& ws) : core("stepper", solver, x, &ws), solver_(&solver) {
        take(ws);
    }

    /// The stage of the next call, 0 .. stages - 1.
    int stage() const { return stage_; }
    /// The state the next network call is made at: x at stage 0, the stage state after.
    const S& input() const { return stage_ == 0 ? *this->x_ : *stage_state_; }
    /// The time of the next call: the stage time (grid()[step()] at stage 0).
    double time() const {
        if (this->done()) return solver_->grid().back();
        return row().stage_t[std::size_t(stage_)];
    }
    /// A buffer of x's layout the network may write its output at input() into, for advance().
    S& output() { return *out_[std::size_t(stage_)]; }
    /// Writes the data prediction x0 that the network output `out` at input() implies into x0
    /// (a state of x's layout): the preview of the sample. Call it before advance(out).
    void data_prediction(const S& out, S& x0) const {
        this->require_call("data_prediction");
        const std::size_t call = std::size_t(this->step_) * std::size_t(stages) + std::size_t(stage_);
        // x0 = x / alpha_i - rho_i eps at the stage (at stage 0 the grid time's own preview):
        // alpha_i = stage_x_coef alpha_k and rho_i = rho_k + c_i h
        detail::conversion p = solver_->preview_[std::size_t(this->step_)];
        if (stage_ > 0) {
            const double alpha = row().stage_x_coef[std::size_t(stage_)] / p.px;
            p = {1.0 / alpha, p.po - Tableau::c[stage_] * row().h};
        }
        core::to_data(x0, out, input(), solver_->conv_[call], p);
    }

private:
    const typename solver_type::step_type& row() const { return solver_->table_[std::size_t(this->step_)]; }

    template <class W>
    void take(workspace<W>& ws) {
        for (int i = 0; i < stages; ++i) {
            out_[std::size_t(i)] = &ws.buffer(i);
            eps_[std::size_t(i)] = out_[std::size_t(i)];
        }
        if constexpr (stages > 1) stage_state_ = &ws.buffer(stages);
    }

    template <std::size_t... I>
    void form(int i, std::index_sequence<I...>) {
        const auto& r = row();
        ((i == int(I) ? solver_type::template form_stage<int(I)>(*stage_state_, *this->x_, r, eps_) : void()), ...);
    }

    status consume() {
        const typename detail::scope_of<S>::type scope{};
        (void)scope;
        const auto& r = row();
        const std::size_t call = std::size_t(this->step_) * std::size_t(stages) + std::size_t(stage_);
        detail::convert(output(), input(), solver_->conv_[call]);
        ++this->nfe_;
        const int calls = r.euler ? 1 : stages;
        if (++stage_ < calls) {
            form(stage_, std::make_index_sequence<std::size_t(stages)>{});
            return status::success;
        }
        solver_type::finish_step(*this->x_, r, eps_);
        stage_ = 0;
        ++this->step_;
        return status::success;
    }

    const solver_type* solver_;
    int stage_ = 0;
    std::array<S*, std::size_t(stages)> out_{};
    std::array<const S*, std::size_t(stages)> eps_{};
    S* stage_state_ = nullptr;
};

template <class Solver, class S>
stepper(const Solver&, S&) -> stepper<Solver, S>;
template <class Solver, class S, class W>
stepper(const Solver&, S&, workspace<W>&) -> stepper<Solver, S>;
template <class Solver, class S, class Noise>
stepper(const Solver&, S&, Noise) -> stepper<Solver, S, Noise>;
template <class Solver, class S, class W, class Noise>
stepper(const Solver&, S&, workspace<W>&, Noise) -> stepper<Solver, S, Noise>;

}  // namespace deis
