// deis-bench --suite's choice of a rule and its leave-one-out (bench/deis_bench/selection.hpp),
// on tables made so that the answer is known.
#include <cmath>
#include <limits>

#include "../bench/deis_bench/selection.hpp"
#include "catch.hpp"

namespace {

// Three problems of family "a" and one of "b"; two NFEs; three candidates.
deis_bench::suite_table selection_table() {
    deis_bench::suite_table t;
    t.family = {"a", "a", "a", "b"};
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // err[p][c][n]
    t.err = {
        {{1.0, 1.0}, {2.0, 4.0}, {1.5, 8.0}},   // a0: c0 best at both NFEs
        {{4.0, 1.0}, {1.0, 2.0}, {2.0, 8.0}},   // a1: c1 best at NFE 0
        {{4.0, 2.0}, {1.0, 1.0}, {1.0, nan}},   // a2: c1, c2 tie at NFE 0; c2 fails at NFE 1
        {{3.0, 3.0}, {9.0, 9.0}, {1.0, 1.0}},   // b0: c2
    };
    return t;
}

}  // namespace

TEST_CASE("suite selection: the library's best, the choice by geometric mean, leave-one-out", "[suite]") {
    const auto t = selection_table();
    const auto best = deis_bench::library_best(t);
    CHECK(best[0] == std::vector<double>{1.0, 1.0});
    CHECK(best[1] == std::vector<double>{1.0, 1.0});
    CHECK(best[2] == std::vector<double>{1.0, 1.0});  // the failed run is left out
    CHECK(best[3] == std::vector<double>{1.0, 1.0});
    const std::size_t all = t.err.size();
    // NFE 0, family a, ratios: c0 (1, 4, 4) geometric mean 2.52; c1 (2, 1, 1) 1.26; c2 (1.5, 2, 1) 1.44
    CHECK(deis_bench::choose_candidate(t, best, "a", 0, all) == 1);
    // NFE 1: c0 (1, 1, 2) 1.26; c1 (4, 2, 1) 2; c2 failed on a2: never chosen
    CHECK(deis_bench::choose_candidate(t, best, "a", 1, all) == 0);
    CHECK(deis_bench::choose_candidate(t, best, "b", 0, all) == 2);
    // without a1 at NFE 0: c0 (1, 4) 2; c1 (2, 1) 1.41; c2 (1.5, 1) 1.22 -> c2
    CHECK(deis_bench::choose_candidate(t, best, "a", 0, 1) == 2);
    // without a2 at NFE 1: c0 (1, 1) 1; c2 now ran on all: (8, 8) -> c0
    CHECK(deis_bench::choose_candidate(t, best, "a", 1, 2) == 0);
    // a family with no other problem: nothing to choose from
    CHECK(deis_bench::choose_candidate(t, best, "b", 0, 3) == std::size_t(-1));

    const auto loo = deis_bench::leave_one_out(t, best);
    // a0 at NFE 0: chosen without a0 from a1, a2: c0 (4, 4), c1 (1, 1), c2 (2, 1) -> c1, ratio 2 on a0
    CHECK(loo[0][0] == 2.0);
    // a1 at NFE 0: c2 (above), ratio 2 on a1; a2 at NFE 0: from a0, a1: c0 (1, 4) 2, c1 (2, 1) 1.41,
    // c2 (1.5, 2) 1.73 -> c1, ratio 1 on a2
    CHECK(loo[1][0] == 2.0);
    CHECK(loo[2][0] == 1.0);
    // NFE 1: without a0: c0 (1, 2) 1.41, c1 (2, 1) 1.41 tie -> the lower index c0, ratio 1 on a0
    CHECK(loo[0][1] == 1.0);
    // b0 alone in its family: no choice, infinite ratio
    CHECK(std::isinf(loo[3][0]));

    // the geometric mean, not the worst ratio: c0 (1, 3) mean 1.73, worst 3; c1 (2.5, 2.5);
    // c2 (100, 1) mean 10
    deis_bench::suite_table g;
    g.family = {"a", "a"};
    g.err = {{{1.0}, {2.5}, {100.0}}, {{3.0}, {2.5}, {1.0}}};
    const auto gbest = deis_bench::library_best(g);
    CHECK(gbest[1] == std::vector<double>{1.0});
    CHECK(deis_bench::choose_candidate(g, gbest, "a", 0, 2) == 0);
}
