// deis: the state type of a workspace template argument.
#pragma once

#include <type_traits>

#include "deis/state.hpp"

namespace deis::detail {

// The state type of a workspace template argument: a scalar stands for deis::state<Scalar>
// (multistep_workspace<double> is the workspace of deis::state<double>); any other type is
// the state type itself.
template <class T>
struct state_of {
    using type = std::conditional_t<std::is_arithmetic_v<T>, state<T>, T>;
};
template <class T>
using state_of_t = typename state_of<T>::type;

}  // namespace deis::detail
