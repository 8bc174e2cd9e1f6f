// deis_micro_bench: end-to-end sampling of the 2-D Gaussian mixture (the ring of 8
// components of deis-bench, VP linear schedule, T = 1 to t_end = 1e-3, quadratic-t grid):
// 100,000 samples (one batch) at 10 NFE, from x_T ~ N(0, I), with the state in double and
// in float (gmm_eps computes in double either way, so the network costs the same in both;
// the solver's state-sized buffers, and so its memory traffic, are half as large in float).
//
// The network is wrapped in a timer that adds up the time spent inside it; the time of the
// whole sample() call is taken with the same clock. network_fraction is the first over the
// second, solver_fraction = 1 - network_fraction: everything the solver does besides
// calling the network (the fused updates, the finiteness check of every network output,
// bookkeeping); solver_ms is that time per run. The clock is the thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID), so that time the thread spends preempted on a busy machine
// is counted in neither share; the benchmark's own Time column is wall-clock. Resetting the
// state to x_T between runs is not timed.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include <time.h>

#include <deis/research/gmm.hpp>
#include <deis/grid.hpp>
#include <deis/multistep.hpp>
#include <deis/solver_config.hpp>
#include <deis/recommended.hpp>
#include <deis/rk.hpp>
#include <deis/schedule.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

// CPU time of the calling thread, in seconds.
double thread_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// A Network that forwards to another and accumulates the time spent in it.
template <class Net>
struct timed_network {
    const Net& net;
    double seconds = 0.0;

    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) {
        const double t0 = thread_seconds();
        net(x, t, out);
        seconds += thread_seconds() - t0;
    }
};


constexpr Eigen::Index samples = 100000;
constexpr int nfe = 10;

template <class Scalar>
const deis::state<Scalar>& noise() {
    static const deis::state<Scalar> x = [] {
        std::mt19937_64 gen(2022);
        std::normal_distribution<double> normal(0.0, 1.0);
        deis::state<double> x(2, samples);
        for (Eigen::Index j = 0; j < x.size(); ++j) x.data()[j] = normal(gen);
        return deis::state<Scalar>(x.cast<Scalar>());
    }();
    return x;
}

// Runs `sample(net, x)` once per iteration and reports the shares of the time.
template <class Scalar, class Sample>
void time_sampling(benchmark::State& st, Sample&& sample) {
    const deis::vp_linear sch(0.1, 20.0, 1.0);
    const deis::gmm_eps<deis::vp_linear> eps(deis_bench::ring2d_mixture(), sch);
    timed_network<deis::gmm_eps<deis::vp_linear>> net{eps};
    deis::state<Scalar> x = noise<Scalar>();
    double total = 0.0;
    int calls = 0;
    for (auto _ : st) {
        st.PauseTiming();
        x = noise<Scalar>();
        st.ResumeTiming();
        const double t0 = thread_seconds();
        const deis::sample_result r = sample(net, x);
        total += thread_seconds() - t0;
        calls = r.nfe;
        if (!r.ok()) st.SkipWithError(deis::to_string(r.status));
        benchmark::DoNotOptimize(x.data());
    }
    st.counters["nfe"] = double(calls);
    st.counters["network_fraction"] = net.seconds / total;
    st.counters["solver_fraction"] = 1.0 - net.seconds / total;
    st.counters["solver_ms"] = benchmark::Counter((total - net.seconds) * 1e3 / double(st.iterations()));
    st.SetItemsProcessed(int64_t(st.iterations()) * samples);
}

template <class Scalar>
void BM_sample_multistep(benchmark::State& st, deis::multistep_options opt) {
    const deis::vp_linear sch(0.1, 20.0, 1.0);
    const deis::multistep_solver solver(sch, deis::power_t_grid(sch, nfe, 1.0, 1e-3, 2.0), opt);
    deis::multistep_workspace<Scalar> ws(solver, 2, samples);
    time_sampling<Scalar>(st, [&](auto& net, deis::state<Scalar>& x) { return solver.sample(net, x, ws); });
}

template <class Scalar>
void BM_sample_heun2(benchmark::State& st) {
    const deis::vp_linear sch(0.1, 20.0, 1.0);
    const deis::rk_solver<deis::tableau::heun2> solver(sch, deis::power_t_grid(sch, nfe / 2, 1.0, 1e-3, 2.0));
    deis::rk_workspace<Scalar> ws(solver, 2, samples);
    time_sampling<Scalar>(st, [&](auto& net, deis::state<Scalar>& x) { return solver.sample(net, x, ws); });
}


// the library's recommended configuration at 10 steps: tAB1, data prediction, corrector
deis::multistep_options recommended() {
    const deis::vp_linear sch(0.1, 20.0, 1.0);
    return deis::recommended_options(sch, deis::power_t_grid(sch, nfe, 1.0, 1e-3, 2.0));
}

// Registers every configuration for one scalar type, named BM_sample_ring2d<Scalar>/<solver>.
template <class Scalar>
bool register_sampling(const std::string& scalar) {
    const std::string prefix = "BM_sample_ring2d<" + scalar + ">/";
    const std::pair<const char*, deis::multistep_options> multisteps[] = {
        {"ddim", deis::parse_multistep("ddim")},
        {"tab3", deis::parse_multistep("tab3")},
        {"tab3+corrector", deis::parse_multistep("tab3+corrector")},
        {"recommended", recommended()},
    };
    benchmark::RegisterBenchmark((prefix + "heun2").c_str(), BM_sample_heun2<Scalar>)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (const auto& [name, opt] : multisteps)
        benchmark::RegisterBenchmark((prefix + name).c_str(), BM_sample_multistep<Scalar>, opt)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    return true;
}

const bool sampling_registered = register_sampling<double>("double") && register_sampling<float>("float");

}  // namespace
