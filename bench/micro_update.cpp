// deis_micro_bench: the fused solver update x = a x + sum_{j <= order} c_j h_j
// (deis::state_ops<deis::state<Scalar>>::combine, the kernel every solver update goes
// through), measured against a plain copy of the same number of bytes.
//
// Bytes counted per update: read x and the order + 1 history buffers, write x:
// (order + 3) * n * sizeof(Scalar). The copy baseline (std::memcpy) moves the same total:
// it reads and writes (order + 3) * n / 2 elements each. Both run in the same benchmark,
// alternately (first the updates, then the copies, in every iteration), so that they see the
// same machine state; the reported time and bytes_per_second are the update's (manual
// timing), copy_bytes_per_second is the copy's, and ratio_to_copy = update bandwidth / copy
// bandwidth. Small states repeat each operation in a batch of about 2^20 elements so that
// reading the clock costs nothing measurable.
//
// The update runs in place (out = x), as in the samplers. Note on the baseline: for blocks
// larger than about the last-level cache, glibc's memcpy uses non-temporal stores, which
// avoid reading the destination before writing it; the in-place update writes only lines
// it has just read, so neither pays for write allocation and the byte counts compare.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deis/multistep.hpp>
#include <vector>

namespace {

using bench_clock = std::chrono::steady_clock;

template <class Scalar>
void BM_update(benchmark::State& st) {
    const int order = int(st.range(0));
    const Eigen::Index n = Eigen::Index(st.range(1));
    const int terms = order + 1;

    // values in [-1, 1] and coefficients that keep them there (no growth, no denormals)
    deis::state<Scalar> x = deis::state<Scalar>::Random(n, 1);
    std::vector<deis::state<Scalar>> hist(static_cast<std::size_t>(terms));
    std::array<const deis::state<Scalar>*, 5> h{};
    for (int j = 0; j < terms; ++j) {
        hist[std::size_t(j)] = deis::state<Scalar>::Random(n, 1);
        h[std::size_t(j)] = &hist[std::size_t(j)];
    }
    const double a = 0.5;
    const std::array<double, 5> c = {0.2, -0.1, 0.05, -0.025, 0.0};

    const std::size_t bytes = std::size_t(terms + 2) * std::size_t(n) * sizeof(Scalar);
    std::vector<char> src(bytes / 2, 1), dst(bytes / 2, 0);

    const long reps = std::max(1L, long((1 << 20) / n));
    double t_update = 0.0, t_copy = 0.0;
    for (auto _ : st) {
        const auto t0 = bench_clock::now();
        for (long r = 0; r < reps; ++r) {
            deis::state_ops<deis::state<Scalar>>::combine(x, a, x, c.data(), h.data(), terms);
            benchmark::DoNotOptimize(x.data());
            benchmark::ClobberMemory();
        }
        const auto t1 = bench_clock::now();
        for (long r = 0; r < reps; ++r) {
            std::memcpy(dst.data(), src.data(), src.size());
            benchmark::DoNotOptimize(dst.data());
            benchmark::ClobberMemory();
        }
        const auto t2 = bench_clock::now();
        const double du = std::chrono::duration<double>(t1 - t0).count();
        t_update += du;
        t_copy += std::chrono::duration<double>(t2 - t1).count();
        st.SetIterationTime(du);
    }
    const double total = double(bytes) * double(reps) * double(st.iterations());
    st.SetBytesProcessed(int64_t(total));
    st.counters["copy_bytes_per_second"] =
        benchmark::Counter(total / t_copy, benchmark::Counter::kDefaults, benchmark::Counter::OneK::kIs1024);
    st.counters["ratio_to_copy"] = benchmark::Counter(t_copy / t_update);
}

void update_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"order", "n"});
    for (int order = 0; order <= 3; ++order)
        for (long n : {1000L, 10000L, 100000L, 1000000L, 10000000L}) b->Args({order, n});
    b->UseManualTime();
}

BENCHMARK_TEMPLATE(BM_update, float)->Apply(update_args);
BENCHMARK_TEMPLATE(BM_update, double)->Apply(update_args);

}  // namespace
