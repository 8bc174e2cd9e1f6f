// Shared helpers of the deis tests: where the reference data lives, how to read it, and the
// error measure of the reference README. Not part of the library.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "deis/multistep.hpp"
#include "deis/solver_config.hpp"
#include "deis/tableau.hpp"
#include "support/csv_io.hpp"
#include "support/mixture_io.hpp"

#ifndef DEIS_REFERENCE_DIR
#error "DEIS_REFERENCE_DIR must name the directory of the reference data (tests/data) (set by tests/CMakeLists.txt)"
#endif

namespace deis_test {

/// The reference problem of the tests: vp_linear with its defaults, from T = 1 to t_end = 1e-3.
inline const deis::vp_linear ref_schedule{};
inline constexpr double T = 1.0, t_end = 1e-3;
/// The machine epsilon of double, the unit of the tolerances stated in eps.
inline constexpr double eps = std::numeric_limits<double>::epsilon();

// Catch2 prints doubles in fixed notation with 10 decimals, which shows every tolerance of
// these tests as 0.0; 17 decimals make the expansions of failed checks readable.
inline const bool catch_precision_set = (Catch::StringMaker<double>::precision = 17, true);

/// A Catch2 matcher: the string contains `part` (Catch2 v2 and v3 spell it differently).
inline auto contains(const std::string& part) {
#ifdef DEIS_CATCH2_V3
    return Catch::Matchers::ContainsSubstring(part);
#else
    return Catch::Matchers::Contains(part);
#endif
}

/// The message of the exception of type E that f() throws ("" when it throws none).
template <class E = std::invalid_argument, class F>
std::string refusal(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "";
}

/// Path of a file of the reference data, e.g. reference_path("coef/grid_t2_n10.csv").
inline std::string reference_path(const std::string& relative) {
    return std::string(DEIS_REFERENCE_DIR) + "/" + relative;
}

/// A reference CSV file with a header line.
inline deis_tools::csv_table read_reference_table(const std::string& relative) {
    return deis_tools::read_csv(reference_path(relative), true);
}

/// The column of a table with a header, by name; throws when there is none.
inline std::vector<double> column(const deis_tools::csv_table& t, const std::string& name) {
    const auto it = std::find(t.header.begin(), t.header.end(), name);
    if (it == t.header.end()) throw std::runtime_error("reference table has no column '" + name + "'");
    const auto j = std::size_t(it - t.header.begin());
    std::vector<double> out;
    out.reserve(t.rows.size());
    for (const auto& r : t.rows) out.push_back(r[j]);
    return out;
}

inline bool has_column(const deis_tools::csv_table& t, const std::string& name) {
    return std::find(t.header.begin(), t.header.end(), name) != t.header.end();
}

/// A numeric field of gmm2d_results.csv (which mixes text and numbers, so the strict numeric
/// reader does not apply): the `field` of the first row with the given impl, method, order,
/// grid and steps. Throws when there is no such row.
inline double reference_result(const std::string& impl, const std::string& method, int order, const std::string& grid,
                               int steps, const std::string& field) {
    const std::string path = reference_path("gmm2d_results.csv");
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open file for reading");
    std::string line;
    if (!std::getline(in, line)) throw std::runtime_error(path + ": empty file");
    std::vector<std::string> header;
    for (auto& c : deis_tools::split_csv_line(line)) header.push_back(deis_tools::trim(c));
    const auto col = std::size_t(std::find(header.begin(), header.end(), field) - header.begin());
    if (col == header.size()) throw std::runtime_error(path + ": no column '" + field + "'");
    while (std::getline(in, line)) {
        const auto cells = deis_tools::split_csv_line(line);
        if (cells.size() != header.size()) continue;
        if (deis_tools::trim(cells[0]) == impl && deis_tools::trim(cells[1]) == method &&
            deis_tools::trim(cells[2]) == std::to_string(order) && deis_tools::trim(cells[3]) == grid &&
            deis_tools::trim(cells[4]) == std::to_string(steps))
            return std::stod(cells[col]);
    }
    throw std::runtime_error(path + ": no row " + impl + "," + method + "," + std::to_string(order) + "," + grid + "," +
                             std::to_string(steps));
}

/// The 8-component 2-D mixture of the reference data.
inline deis::gaussian_mixture reference_mixture() {
    return deis_tools::read_mixture_csv(reference_path("gmm2d_components.csv"));
}

/// Reference samples (one per row in the file) as a 2 x n matrix, one sample per column.
inline Eigen::MatrixXd reference_samples(const std::string& relative) {
    return deis_tools::read_samples(reference_path(relative));
}

/// Per-sample error of the reference README: e_i = ||x_i - x_exact_i|| / sqrt(dim)
/// (dim = 2 for the reference mixture).
inline std::vector<double> sample_errors(const Eigen::MatrixXd& x, const Eigen::MatrixXd& exact) {
    if (x.rows() != exact.rows() || x.cols() != exact.cols()) throw std::runtime_error("sample_errors: shapes differ");
    std::vector<double> e(std::size_t(x.cols()));
    const double scale = std::sqrt(double(x.rows()));
    for (Eigen::Index i = 0; i < x.cols(); ++i) e[std::size_t(i)] = (x.col(i) - exact.col(i)).norm() / scale;
    return e;
}

/// The median as numpy computes it (mean of the two middle values for an even count).
inline double median(std::vector<double> v) {
    if (v.empty()) throw std::runtime_error("median of nothing");
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// |a - b| / |b|, or |a - b| when b == 0.
inline double rel_diff(double a, double b) {
    const double d = std::abs(a - b);
    return b == 0.0 ? d : d / std::abs(b);
}

/// deis::with_tableau(name, f) with f instantiated for the listed tableaux only (a test's
/// solvers cost compile time per tableau); another built-in name throws std::logic_error.
template <class... Tableaux, class F>
decltype(auto) with_tableau_of(const std::string& name, F&& f) {
    using result = decltype(f(std::tuple_element_t<0, std::tuple<Tableaux...>>{}));
    return deis::with_tableau(name, [&](auto t) -> result {
        if constexpr ((std::is_same_v<decltype(t), Tableaux> || ...))
            return f(t);
        else
            throw std::logic_error(std::string("the test builds no solver of tableau ") + decltype(t)::name);
    });
}

/// deis::with_solver(c, schedule, grid, f) with f instantiated for the multistep solver and
/// the Runge-Kutta solvers of the listed tableaux only; another tableau throws std::logic_error.
template <class... Tableaux, class Schedule, class F>
decltype(auto) with_solver_of(const deis::solver_config& c, const Schedule& schedule, std::vector<double> grid,
                              F&& f) {
    using result = decltype(f(std::declval<const deis::multistep_solver&>()));
    return deis::with_solver(c, schedule, std::move(grid), [&](const auto& solver) -> result {
        using solver_type = std::decay_t<decltype(solver)>;
        if constexpr (std::is_same_v<solver_type, deis::multistep_solver> ||
                      (std::is_same_v<solver_type, deis::rk_solver<Tableaux>> || ...))
            return f(solver);
        else
            throw std::logic_error("the test builds no solver of tableau " + c.tableau);
    });
}

}  // namespace deis_test
