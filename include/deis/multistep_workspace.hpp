// deis: the workspace of a multistep solver (deis/multistep.hpp): the state-sized buffers a
// run needs besides the state.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/detail/state_of.hpp"
#include "deis/state.hpp"

namespace deis {

class multistep_solver;

/// The memory a run needs besides the state: history_size() state-sized buffers (one per
/// history point), one more when the corrector is on, one for the noise of a stochastic
/// solver and one for the scratch of thresholding. Made once, reused by any number of runs
/// of the solver it was made for, on batches of the same layout. Not to be shared by two
/// runs at the same time.
///
/// T is the state type (any model of the State backend concept, state.hpp), or a scalar
/// type standing for deis::state<T>: multistep_workspace<double> is the workspace of
/// deis::state<double>.
template <class T>
class multistep_workspace {
public:
    using state_type = detail::state_of_t<T>;

    /// Buffers of x's layout (shape, and element type and device where the type has them).
    multistep_workspace(const multistep_solver& solver, const state_type& x) { make(solver, x); }

    /// For Eigen matrices: buffers of rows x cols.
    template <class U = state_type, class = std::enable_if_t<std::is_base_of_v<Eigen::PlainObjectBase<U>, U>>>
    multistep_workspace(const multistep_solver& solver, Eigen::Index rows, Eigen::Index cols) {
        if (rows < 1 || cols < 1)
            detail::fail("multistep_workspace", "shape", std::to_string(rows) + "x" + std::to_string(cols),
                         "must have at least one row and one column");
        make(solver, U(rows, cols));
    }

    /// The layout the workspace was made for (as state_ops::describe says it).
    std::string describe() const { return ops::describe(ops::view(const_cast<buffer&>(history_.front()))); }
    template <class U = state_type, class = std::enable_if_t<std::is_base_of_v<Eigen::MatrixBase<U>, U>>>
    Eigen::Index rows() const {
        return view(history_.front()).rows();
    }
    template <class U = state_type, class = std::enable_if_t<std::is_base_of_v<Eigen::MatrixBase<U>, U>>>
    Eigen::Index cols() const {
        return view(history_.front()).cols();
    }

private:
    friend class multistep_solver;
    using ops = state_ops<state_type>;
    using buffer = typename ops::buffer;

    static const state_type& view(const buffer& b) { return ops::view(const_cast<buffer&>(b)); }

    // Solver is multistep_solver, declared only here: complete where a workspace is made.
    template <class Solver>
    void make(const Solver& solver, const state_type& x) {
        static_assert(detail::has_state_ops<state_type>::value,
                      "deis::multistep_workspace: the state type does not model the State backend concept "
                      "(deis/state.hpp)");
        if (ops::empty(x))
            detail::fail("multistep_workspace", "shape", ops::describe(x), "must hold at least one element");
        history_.reserve(std::size_t(solver.history_size()));
        for (int j = 0; j < solver.history_size(); ++j) history_.push_back(ops::like(x));
        if (solver.uses_corrector()) predicted_.emplace(ops::like(x));
        if (solver.stochastic()) noise_.emplace(ops::like(x));
        if (solver.options().threshold.enabled()) scratch_.emplace(ops::like(x));
    }

    // whether the workspace fits the solver and x
    template <class Solver>
    bool fits(const Solver& solver, const state_type& x) const {
        if (history_.size() < std::size_t(solver.history_size())) return false;
        if (solver.uses_corrector() && !predicted_) return false;
        if (solver.stochastic() && !noise_) return false;
        if (solver.options().threshold.enabled() && !scratch_) return false;
        return ops::same_layout(view(history_.front()), x);
    }

    std::vector<buffer> history_;
    std::optional<buffer> predicted_, noise_, scratch_;
};

}  // namespace deis
