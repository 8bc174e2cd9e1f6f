// deis: the checks of the caller's batch before a run touches it.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "deis/detail/error.hpp"
#include "deis/state.hpp"

namespace deis::detail {

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

}  // namespace deis::detail
