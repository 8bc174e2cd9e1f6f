// deis: calling the observer of a run (deis/observer.hpp), or nothing without one.
#pragma once

#include <type_traits>

#include "deis/observer.hpp"

namespace deis::detail {

// The observer of a run without one: nothing is called, nothing is formed.
struct no_observer {};

template <class Observer>
inline constexpr bool has_observer = !std::is_same_v<std::decay_t<Observer>, no_observer>;

// Calls the observer; whether to go on.
template <class Observer, class S>
bool notify(Observer& obs, const step_info<S>& info) {
    if constexpr (std::is_void_v<decltype(obs(info))>) {
        obs(info);
        return true;
    } else {
        return static_cast<bool>(obs(info));
    }
}

}  // namespace deis::detail
