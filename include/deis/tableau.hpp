// deis: the explicit Runge-Kutta tableaux of rhoRK-DEIS (deis/rk.hpp): the Tableau concept,
// the built-in tableaux and their lookup by name.
//
// The Tableau concept. A type T is a tableau when, for constant indices i, j:
//
//   | expression   | type                   | requirement                                   |
//   |--------------|------------------------|-----------------------------------------------|
//   | T::stages    | static constexpr int   | 1 <= stages <= rk_max_stages                   |
//   | T::order     | static constexpr int   | >= 1, the classical order (documentation and   |
//   |              |                        | the tests' convergence checks)                 |
//   | T::name      | static constexpr const | a short name, e.g. "rk4"                       |
//   |              | char*                  |                                               |
//   | T::c[i]      | static constexpr       | nodes, 0 <= c_i <= 1 (so every stage time lies |
//   |              | double[stages]         | in the step), c_0 = 0                          |
//   | T::a[i][j]   | static constexpr       | explicit: a_ij = 0 for j >= i; row sums        |
//   |              | double[stages][stages] | sum_j a_ij = c_i (to 1e-14)                    |
//   | T::b[i]      | static constexpr       | weights, sum_i b_i = 1 (to 1e-14)              |
//   |              | double[stages]         |                                               |
//
// Each requirement is checked by a static_assert with a message when rk_solver<T> is
// instantiated. The row-sum condition makes c_0 = 0 follow from a_0j = 0: the first stage
// is the state at the start of the step itself. A user tableau is written like the built-in
// ones below, e.g.
//
//     struct ralston2 {
//         static constexpr int stages = 2, order = 2;
//         static constexpr const char* name = "ralston2";
//         static constexpr double c[stages] = {0.0, 2.0 / 3};
//         static constexpr double a[stages][stages] = {{0.0, 0.0}, {2.0 / 3, 0.0}};
//         static constexpr double b[stages] = {0.25, 0.75};
//     };
//     deis::rk_solver<ralston2> solver(schedule, grid);
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "deis/detail/error.hpp"

namespace deis {

/// The largest number of stages a tableau may have.
inline constexpr int rk_max_stages = 16;

/// The built-in explicit Runge-Kutta tableaux (see the Tableau concept above). The set of
/// the official DEIS code plus the explicit midpoint rule.
namespace tableau {

/// Forward Euler: rhoRK with it is DDIM.
struct euler {
    static constexpr int stages = 1, order = 1;
    static constexpr const char* name = "euler";
    static constexpr double c[stages] = {0.0};
    static constexpr double a[stages][stages] = {{0.0}};
    static constexpr double b[stages] = {1.0};
};

/// Heun's second-order method (explicit trapezoidal rule).
struct heun2 {
    static constexpr int stages = 2, order = 2;
    static constexpr const char* name = "heun2";
    static constexpr double c[stages] = {0.0, 1.0};
    static constexpr double a[stages][stages] = {{0.0, 0.0}, {1.0, 0.0}};
    static constexpr double b[stages] = {0.5, 0.5};
};

/// The explicit midpoint rule.
struct midpoint2 {
    static constexpr int stages = 2, order = 2;
    static constexpr const char* name = "midpoint2";
    static constexpr double c[stages] = {0.0, 0.5};
    static constexpr double a[stages][stages] = {{0.0, 0.0}, {0.5, 0.0}};
    static constexpr double b[stages] = {0.0, 1.0};
};

/// Kutta's third-order method.
struct kutta3 {
    static constexpr int stages = 3, order = 3;
    static constexpr const char* name = "kutta3";
    static constexpr double c[stages] = {0.0, 0.5, 1.0};
    static constexpr double a[stages][stages] = {{0.0, 0.0, 0.0}, {0.5, 0.0, 0.0}, {-1.0, 2.0, 0.0}};
    static constexpr double b[stages] = {1.0 / 6, 2.0 / 3, 1.0 / 6};
};

/// Ralston's third-order method.
struct ral3 {
    static constexpr int stages = 3, order = 3;
    static constexpr const char* name = "ral3";
    static constexpr double c[stages] = {0.0, 0.5, 0.75};
    static constexpr double a[stages][stages] = {{0.0, 0.0, 0.0}, {0.5, 0.0, 0.0}, {0.0, 0.75, 0.0}};
    static constexpr double b[stages] = {2.0 / 9, 1.0 / 3, 4.0 / 9};
};

/// Heun's third-order method.
struct heun3 {
    static constexpr int stages = 3, order = 3;
    static constexpr const char* name = "heun3";
    static constexpr double c[stages] = {0.0, 1.0 / 3, 2.0 / 3};
    static constexpr double a[stages][stages] = {{0.0, 0.0, 0.0}, {1.0 / 3, 0.0, 0.0}, {0.0, 2.0 / 3, 0.0}};
    static constexpr double b[stages] = {0.25, 0.0, 0.75};
};

/// Van der Houwen's (Wray's) third-order method.
struct vdh3 {
    static constexpr int stages = 3, order = 3;
    static constexpr const char* name = "vdh3";
    static constexpr double c[stages] = {0.0, 8.0 / 15, 2.0 / 3};
    static constexpr double a[stages][stages] = {{0.0, 0.0, 0.0}, {8.0 / 15, 0.0, 0.0}, {0.25, 5.0 / 12, 0.0}};
    static constexpr double b[stages] = {0.25, 0.0, 0.75};
};

/// The third-order strong-stability-preserving method (Shu and Osher).
struct ssprk3 {
    static constexpr int stages = 3, order = 3;
    static constexpr const char* name = "ssprk3";
    static constexpr double c[stages] = {0.0, 1.0, 0.5};
    static constexpr double a[stages][stages] = {{0.0, 0.0, 0.0}, {1.0, 0.0, 0.0}, {0.25, 0.25, 0.0}};
    static constexpr double b[stages] = {1.0 / 6, 1.0 / 6, 2.0 / 3};
};

/// The classical fourth-order Runge-Kutta method.
struct rk4 {
    static constexpr int stages = 4, order = 4;
    static constexpr const char* name = "rk4";
    static constexpr double c[stages] = {0.0, 0.5, 0.5, 1.0};
    static constexpr double a[stages][stages] = {
        {0.0, 0.0, 0.0, 0.0}, {0.5, 0.0, 0.0, 0.0}, {0.0, 0.5, 0.0, 0.0}, {0.0, 0.0, 1.0, 0.0}};
    static constexpr double b[stages] = {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6};
};

}  // namespace tableau

/// The names of the built-in tableaux, in the order of with_tableau's lookup.
inline const std::array<const char*, 9>& tableau_names() {
    static const std::array<const char*, 9> names = {
        tableau::euler::name,  tableau::heun2::name,  tableau::midpoint2::name,
        tableau::kutta3::name, tableau::ral3::name,   tableau::heun3::name,
        tableau::vdh3::name,   tableau::ssprk3::name, tableau::rk4::name};
    return names;
}

namespace detail {
/// Whether `name` is one of tableau_names().
inline bool is_tableau_name(const std::string& name) {
    for (const char* n : tableau_names())
        if (name == n) return true;
    return false;
}

/// tableau_names() as "euler, heun2, ..." (for messages).
inline std::string tableau_list() {
    std::string known;
    for (const char* n : tableau_names()) known += std::string(known.empty() ? "" : ", ") + n;
    return known;
}
}  // namespace detail

/// Calls f(T{}) with T the built-in tableau called `name` (one of tableau_names()) and
/// returns what it returns; f must return the same type for every tableau (a generic lambda
/// usually does). Throws std::invalid_argument naming the unknown name and listing the
/// known ones.
template <class F>
decltype(auto) with_tableau(const std::string& name, F&& f) {
    if (name == tableau::euler::name) return f(tableau::euler{});
    if (name == tableau::heun2::name) return f(tableau::heun2{});
    if (name == tableau::midpoint2::name) return f(tableau::midpoint2{});
    if (name == tableau::kutta3::name) return f(tableau::kutta3{});
    if (name == tableau::ral3::name) return f(tableau::ral3{});
    if (name == tableau::heun3::name) return f(tableau::heun3{});
    if (name == tableau::vdh3::name) return f(tableau::vdh3{});
    if (name == tableau::ssprk3::name) return f(tableau::ssprk3{});
    if (name == tableau::rk4::name) return f(tableau::rk4{});
    detail::fail("with_tableau", "name", "\"" + name + "\"",
                 "is not a built-in tableau (known: " + detail::tableau_list() + ")");
}

namespace detail {

// Compile-time checks of the Tableau concept, and the terms of a tableau row.

template <class T>
constexpr bool rk_explicit() {
    for (int i = 0; i < T::stages; ++i)
        for (int j = i; j < T::stages; ++j)
            if (T::a[i][j] != 0.0) return false;
    return true;
}

template <class T>
constexpr bool rk_nodes_in_step() {
    for (int i = 0; i < T::stages; ++i)
        if (!(T::c[i] >= 0.0 && T::c[i] <= 1.0)) return false;
    return true;
}

constexpr double rk_abs(double v) { return v < 0.0 ? -v : v; }

template <class T>
constexpr bool rk_row_sums() {
    for (int i = 0; i < T::stages; ++i) {
        double s = 0.0;
        for (int j = 0; j < T::stages; ++j) s += T::a[i][j];
        if (rk_abs(s - T::c[i]) > 1e-14) return false;
    }
    return true;
}

template <class T>
constexpr bool rk_consistent() {
    double s = 0.0;
    for (int i = 0; i < T::stages; ++i) s += T::b[i];
    return rk_abs(s - 1.0) <= 1e-14;
}

// The indices j of the nonzero entries of row `Row` of a (Row < stages) or of b
// (Row == stages), known at compile time: the terms of that combination.
template <class T, int Row>
struct rk_nonzero {
    static constexpr double entry(int j) { return Row < T::stages ? T::a[Row < T::stages ? Row : 0][j] : T::b[j]; }
    static constexpr int count() {
        int n = 0;
        for (int j = 0; j < T::stages; ++j)
            if (entry(j) != 0.0) ++n;
        return n;
    }
    static constexpr std::array<std::size_t, rk_max_stages> indices() {
        std::array<std::size_t, rk_max_stages> idx{};
        int n = 0;
        for (int j = 0; j < T::stages; ++j)
            if (entry(j) != 0.0) idx[std::size_t(n++)] = std::size_t(j);
        return idx;
    }
};

}  // namespace detail
}  // namespace deis
