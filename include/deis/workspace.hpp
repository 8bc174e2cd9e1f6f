// deis: the workspace of a run, for every solver family: the state-sized buffers a run needs
// besides the state, and the loop every solver's sample() runs.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "deis/detail/check_state.hpp"
#include "deis/detail/error.hpp"
#include "deis/detail/state_of.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"

namespace deis {

/// The memory a run needs besides the state: solver.workspace_size() buffers of the state's
/// layout (for a multistep solver its history, the uncorrected state with the corrector, the
/// noise of a stochastic run and the scratch of thresholding; for a Runge-Kutta solver one
/// network output per stage and the stage state). Made once, reused by any number of runs of
/// any solver that needs at most as many buffers, on batches of the same layout. Not to be
/// shared by two runs at the same time.
///
/// T is the state type (any model of the State backend concept, state.hpp), or a scalar
/// type standing for deis::state<T>: workspace<double> is the workspace of deis::state<double>.
template <class T>
class workspace {
public:
    using state_type = detail::state_of_t<T>;

    /// The buffers `solver` needs, of x's layout (shape, and element type and device where
    /// the type has them). Solver: any solver of the library (it provides workspace_size()).
    template <class Solver>
    workspace(const Solver& solver, const state_type& x) {
        make(solver.workspace_size(), x);
    }

    /// For Eigen matrices: buffers of rows x cols.
    template <class Solver, class U = state_type,
              class = std::enable_if_t<std::is_base_of_v<Eigen::PlainObjectBase<U>, U>>>
    workspace(const Solver& solver, Eigen::Index rows, Eigen::Index cols) {
        if (rows < 1 || cols < 1)
            detail::fail("workspace", "shape", std::to_string(rows) + "x" + std::to_string(cols),
                         "must have at least one row and one column");
        make(solver.workspace_size(), U(rows, cols));
    }

    /// The number of buffers.
    int size() const { return int(buffers_.size()); }
    /// The layout the workspace was made for (as state_ops::describe says it).
    std::string describe() const { return ops::describe(view(buffers_.front())); }
    template <class U = state_type, class = std::enable_if_t<std::is_base_of_v<Eigen::MatrixBase<U>, U>>>
    Eigen::Index rows() const {
        return view(buffers_.front()).rows();
    }
    template <class U = state_type, class = std::enable_if_t<std::is_base_of_v<Eigen::MatrixBase<U>, U>>>
    Eigen::Index cols() const {
        return view(buffers_.front()).cols();
    }

    /// Whether a run of `solver` on x may use this workspace.
    template <class Solver>
    bool fits(const Solver& solver, const state_type& x) const {
        return size() >= solver.workspace_size() && ops::same_layout(view(buffers_.front()), x);
    }

    /// Buffer i, 0 <= i < size(): the solvers' access (which buffer holds what is the solver's
    /// business).
    state_type& buffer(int i) { return ops::view(buffers_[std::size_t(i)]); }

private:
    using ops = state_ops<state_type>;
    using stored = typename ops::buffer;

    static const state_type& view(const stored& b) { return ops::view(const_cast<stored&>(b)); }

    void make(int n, const state_type& x) {
        static_assert(detail::has_state_ops<state_type>::value,
                      "deis::workspace: the state type does not model the State backend concept (deis/state.hpp)");
        if (ops::empty(x)) detail::fail("workspace", "shape", ops::describe(x), "must hold at least one element");
        buffers_.reserve(std::size_t(n));
        for (int i = 0; i < n; ++i) buffers_.push_back(ops::like(x));
    }

    std::vector<stored> buffers_;
};

/// The workspace of a multistep solver and of a Runge-Kutta solver: one type.
template <class T>
using multistep_workspace = workspace<T>;
template <class T>
using rk_workspace = workspace<T>;

namespace detail {

/// The run every solver's sample() makes: checks x (check_state) and that ws fits the solver
/// and x, then check() (the solver's own checks), all before any network call and without
/// touching x; then step(k, r) for k = 0, ..., steps() - 1 until one returns false. A step
/// that returns false has set r.status and r.failed_time; r.steps is then k, and steps() after
/// a complete run.
template <class Solver, class S, class W, class Check, class Step>
sample_result run_steps(const char* where, const Solver& solver, S& x, const workspace<W>& ws, Check&& check,
                        Step&& step) {
    static_assert(std::is_same_v<typename workspace<W>::state_type, S>,
                  "deis: the workspace was made for another state type");
    check_state(where, x);
    if (!ws.fits(solver, x))
        fail(where, "workspace", ws.describe() + " with " + std::to_string(ws.size()) + " buffers",
             "does not fit this solver (" + std::to_string(solver.workspace_size()) + " buffers) and x (" +
                 state_ops<S>::describe(x) + "): make it with workspace(solver, x)");
    check();
    const typename scope_of<S>::type scope{};
    (void)scope;
    sample_result r;
    const int n = solver.steps();
    for (int k = 0; k < n; ++k) {
        if (!step(k, r)) {
            r.steps = k;
            return r;
        }
    }
    r.steps = n;
    return r;
}

}  // namespace detail
}  // namespace deis
