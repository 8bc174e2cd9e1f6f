// deis_micro_bench: building a solver, which is when every coefficient is computed (grid
// validation, schedule evaluations, the Gauss-Legendre integrals of tAB-DEIS), for 10, 100
// and 1000 steps on the quadratic-t grid of the VP linear schedule. The grid itself is made
// once, outside the timing; the copy the constructor takes is inside it.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

#include <deis/multistep.hpp>
#include <deis/solver_config.hpp>
#include <deis/schedule.hpp>
#include <string>
#include <vector>

#include <deis/rk.hpp>

namespace {

const deis::vp_linear schedule(0.1, 20.0, 1.0);

void BM_build_multistep(benchmark::State& st, deis::multistep_options opt) {
    const std::vector<double> grid = deis::power_t_grid(schedule, int(st.range(0)), 1.0, 1e-3, 2.0);
    for (auto _ : st) {
        deis::multistep_solver solver(schedule, grid, opt);
        benchmark::DoNotOptimize(solver.table().data());
    }
    st.counters["steps"] = double(st.range(0));
    st.counters["per_step"] = benchmark::Counter(double(st.range(0)),
                                                 benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
}

template <class Tableau>
void BM_build_rk(benchmark::State& st) {
    const std::vector<double> grid = deis::power_t_grid(schedule, int(st.range(0)), 1.0, 1e-3, 2.0);
    for (auto _ : st) {
        deis::rk_solver<Tableau> solver(schedule, grid);
        benchmark::DoNotOptimize(solver.table().data());
    }
    st.counters["steps"] = double(st.range(0));
    st.counters["per_step"] = benchmark::Counter(double(st.range(0)),
                                                 benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
}


const bool coefficients_registered = [] {
    const std::vector<std::pair<std::string, deis::multistep_options>> solvers = {
        {"ddim", deis::parse_multistep("ddim")},
        {"tab1", deis::parse_multistep("tab1")},
        {"tab2", deis::parse_multistep("tab2")},
        {"tab3", deis::parse_multistep("tab3")},
        {"rhoab1", deis::parse_multistep("rhoab1")},
        {"rhoab2", deis::parse_multistep("rhoab2")},
        {"rhoab3", deis::parse_multistep("rhoab3")},
        {"ipndm", deis::parse_multistep("ipndm")},
        {"tab3+corrector", deis::parse_multistep("tab3+corrector")},
        {"rhoab3+corrector", deis::parse_multistep("rhoab3+corrector")},
    };
    for (const auto& [name, opt] : solvers)
        benchmark::RegisterBenchmark(("BM_build/" + name).c_str(), BM_build_multistep, opt)
            ->ArgName("steps")
            ->Arg(10)
            ->Arg(100)
            ->Arg(1000)
            ->Unit(benchmark::kMicrosecond);
    for (const char* name : deis::tableau_names())
        deis::with_tableau(name, [name](auto t) {
            benchmark::RegisterBenchmark((std::string("BM_build/") + name).c_str(), BM_build_rk<decltype(t)>)
                ->ArgName("steps")
                ->Arg(10)
                ->Arg(100)
                ->Arg(1000)
                ->Unit(benchmark::kMicrosecond);
            return 0;
        });
    return true;
}();

}  // namespace
