// deis-bench --suite: the choice of a rule from the suite's table of errors, and its
// leave-one-out judgement. Header-only and free of the library so that the tests can check it
// on tables whose answer is known (tests/test_suite_selection.cpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

namespace deis_bench {

// err[p][c][n]: median error of candidate c on problem p at the n-th NFE (NaN: rejected or
// failed); family[p]: the problem's family. Every problem of a family has the same candidates.
struct suite_table {
    std::vector<std::string> family;
    std::vector<std::vector<std::vector<double>>> err;
};

// best[p][n]: the lowest finite error of any candidate (the library's best); NaN if none.
inline std::vector<std::vector<double>> library_best(const suite_table& t) {
    std::vector<std::vector<double>> best(t.err.size());
    for (std::size_t p = 0; p < t.err.size(); ++p) {
        const std::size_t nn = t.err[p].empty() ? 0 : t.err[p].front().size();
        best[p].assign(nn, std::numeric_limits<double>::quiet_NaN());
        for (const auto& row : t.err[p])
            for (std::size_t n = 0; n < nn; ++n)
                if (std::isfinite(row[n]) && !(row[n] >= best[p][n])) best[p][n] = row[n];
    }
    return best;
}

// The candidate of `family` at NFE index n with the lowest geometric mean of its ratio to the
// library's best over the family's problems other than `excluded` (pass err.size() to keep
// all); a candidate that failed on one of them is never chosen. Ties go to the lower index.
// Returns the index, or std::size_t(-1) when no candidate ran on all of them.
inline std::size_t choose_candidate(const suite_table& t, const std::vector<std::vector<double>>& best,
                                    const std::string& family, std::size_t n, std::size_t excluded) {
    std::size_t arg = std::size_t(-1);
    double lowest = std::numeric_limits<double>::infinity();
    std::size_t candidates = 0;
    for (std::size_t p = 0; p < t.err.size(); ++p)
        if (t.family[p] == family) candidates = t.err[p].size();
    for (std::size_t c = 0; c < candidates; ++c) {
        double sum = 0.0;
        int count = 0;
        for (std::size_t p = 0; p < t.err.size(); ++p) {
            if (t.family[p] != family || p == excluded) continue;
            sum += std::log(t.err[p][c][n] / best[p][n]);  // NaN for a failed run: never below
            ++count;
        }
        if (count > 0 && sum / count < lowest) {
            lowest = sum / count;
            arg = c;
        }
    }
    return arg;
}

// loo[p][n]: the ratio to the library's best, on problem p, of the candidate chosen without p
// (infinity when none could be chosen).
inline std::vector<std::vector<double>> leave_one_out(const suite_table& t, const std::vector<std::vector<double>>& best) {
    std::vector<std::vector<double>> loo(t.err.size());
    for (std::size_t p = 0; p < t.err.size(); ++p) {
        loo[p].assign(best[p].size(), std::numeric_limits<double>::infinity());
        for (std::size_t n = 0; n < best[p].size(); ++n) {
            const std::size_t c = choose_candidate(t, best, t.family[p], n, p);
            if (c != std::size_t(-1)) loo[p][n] = t.err[p][c][n] / best[p][n];
        }
    }
    return loo;
}

}  // namespace deis_bench
