// deis: detection of the optional members of the Schedule concept (schedule.hpp).
#pragma once

#include <type_traits>
#include <utility>

namespace deis::detail {

// Whether a schedule lists the rho values where its t(rho) is not smooth (`rho_knots()`).
template <class S, class = void>
struct has_rho_knots : std::false_type {};
template <class S>
struct has_rho_knots<S, std::void_t<decltype(std::declval<const S&>().rho_knots())>> : std::true_type {};

// Whether a schedule has the derivatives alpha_dot(t) and sigma_dot(t) (needed to read a
// velocity output).
template <class S, class = void>
struct has_derivatives : std::false_type {};
template <class S>
struct has_derivatives<S, std::void_t<decltype(std::declval<const S&>().alpha_dot(0.0)),
                                      decltype(std::declval<const S&>().sigma_dot(0.0))>> : std::true_type {};

}  // namespace deis::detail
