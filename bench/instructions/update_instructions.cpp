// Instructions per fused update, counted by callgrind (deterministic, unlike wall-clock time
// on a shared machine): R in-place updates x = a x + sum_{j < m} c_j h_j of N = 10^4 entries.
// Not built by CMake: compiled by hand against two source trees to compare them
// (docs/benchmarks.md, "Old and new Eigen path"):
//
//   g++ -std=c++17 -O3 -DNDEBUG -I<tree>/include -isystem /usr/include/eigen3
//       bench/instructions/update_instructions.cpp -o update_instructions
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null ./update_instructions M f|d R
//
// (per update: the count at R = 200 minus the count at R = 0, over 200). Define
// DEIS_OLD_UPDATE for a tree older than the state backends (5f21845^), which had
// detail::fused_update instead of state_ops.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <vector>
#ifdef DEIS_OLD_UPDATE
#include <deis/detail/update.hpp>
#else
#include <deis/common.hpp>
#include <deis/state.hpp>
#endif

template <class Scalar>
void run(int terms, Eigen::Index n, int reps) {
    using S = deis::state<Scalar>;
    S x = S::Random(n, 1);
    std::vector<S> hist(static_cast<std::size_t>(terms));
    std::array<const S*, 5> h{};
    for (int j = 0; j < terms; ++j) {
        hist[std::size_t(j)] = S::Random(n, 1);
        h[std::size_t(j)] = &hist[std::size_t(j)];
    }
    const std::array<double, 5> c = {0.2, -0.1, 0.05, -0.025, 0.0};
    for (int r = 0; r < reps; ++r) {
#ifdef DEIS_OLD_UPDATE
        deis::detail::fused_update<Scalar>(x, x, 0.5, c.data(), h.data(), terms);
#else
        deis::state_ops<S>::combine(x, 0.5, x, c.data(), h.data(), terms);
#endif
        asm volatile("" : : "r"(x.data()) : "memory");  // keep every update
    }
    std::printf("%g\n", double(x.sum()));
}

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s TERMS(1..5) f|d REPS\n", argv[0]);
        return 2;
    }
    const int terms = std::atoi(argv[1]), reps = std::atoi(argv[3]);
    if (terms < 1 || terms > 5 || reps < 0) return 2;
    if (argv[2][0] == 'f')
        run<float>(terms, 10000, reps);
    else
        run<double>(terms, 10000, reps);
    return 0;
}
