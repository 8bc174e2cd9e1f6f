// deis: detection of the optional members of the Schedule concept (schedule.hpp).
#pragma once

#include <limits>
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

// alpha'(t) and sigma'(t) of a schedule, or NaN where it has none (only a velocity output
// needs them).
template <class Schedule>
std::pair<double, double> schedule_derivatives(const Schedule& sch, double t) {
    if constexpr (has_derivatives<Schedule>::value) {
        return {sch.alpha_dot(t), sch.sigma_dot(t)};
    } else {
        (void)sch;
        (void)t;
        const double nan = std::numeric_limits<double>::quiet_NaN();
        return {nan, nan};
    }
}

}  // namespace deis::detail
