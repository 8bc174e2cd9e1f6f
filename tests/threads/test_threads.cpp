// One solver shared by several threads (issue 9, item 6). The solvers promise that after
// construction they are immutable and may be shared by any number of threads, each with its
// own state and workspace (multistep.hpp, rk.hpp). These tests build one solver of each
// family, run it from 4 threads at the same time on the reference ring (the 8-component 2-D
// mixture of tests/data, 1000 samples of gmm2d_xT.csv) and require every thread's result to
// equal the single-threaded one bit for bit: a run is a fixed sequence of floating-point
// operations on the thread's own buffers, so any difference can only come from state shared
// between runs. `bash run-tests.sh --tsan` runs them under ThreadSanitizer as well, which
// reports the unsynchronised accesses themselves, not only those that change a result.
#include <array>
#include <atomic>
#include <cstring>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace {

constexpr int n_threads = 4;
// Every thread runs the solver this many times in a row, so that the runs of different
// threads overlap for most of their duration even when one thread starts late.
constexpr int runs_per_thread = 3;

const deis::vp_linear schedule{};  // the reference problem: defaults, T = 1, t_end = 1e-3

const deis::gaussian_mixture& mixture() {
    static const deis::gaussian_mixture m = deis_test::reference_mixture();
    return m;
}

const Eigen::MatrixXd& x_T() {
    static const Eigen::MatrixXd x = deis_test::reference_samples("gmm2d_xT.csv");
    return x;
}

std::vector<double> reference_grid() { return deis::power_t_grid(schedule, 10, 1.0, 1e-3, 2.0); }

bool same_bits(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), sizeof(double) * std::size_t(a.size())) == 0;
}

// What one thread saw: its last result, whether every run succeeded and matched the
// single-threaded result, and an exception if one escaped.
struct thread_outcome {
    Eigen::MatrixXd last;
    int runs_ok = 0;
    int runs_equal = 0;
    std::exception_ptr error;
};

// Runs `solver` once on one thread (the oracle), then from n_threads threads released
// together, each with its own state and workspace; `make_workspace(solver, x)` makes a
// workspace. The network is shared too (gmm_eps is documented thread-safe). Catch2's
// assertions are not thread-safe, so the threads only record, and the checks run here.
template <class Solver, class MakeWorkspace>
void check_shared_solver(const Solver& solver, MakeWorkspace make_workspace) {
    const deis::gmm_eps<deis::vp_linear> net(mixture(), schedule);

    Eigen::MatrixXd single = x_T();
    {
        auto ws = make_workspace(solver, single);
        const auto r = solver.sample(net, single, ws);
        REQUIRE(r.ok());
        REQUIRE(r.nfe == solver.nfe());
    }
    // the run did something: the samples moved from the noise (by O(1))
    REQUIRE((single - x_T()).cwiseAbs().maxCoeff() > 0.1);

    std::array<thread_outcome, n_threads> out{};
    std::atomic<int> arrived{0};
    auto body = [&](int id) {
        thread_outcome& o = out[std::size_t(id)];
        try {
            Eigen::MatrixXd x = x_T();
            auto ws = make_workspace(solver, x);
            // start together: no thread begins its first run before all exist
            arrived.fetch_add(1);
            while (arrived.load() < n_threads) std::this_thread::yield();
            for (int run = 0; run < runs_per_thread; ++run) {
                x = x_T();
                const auto r = solver.sample(net, x, ws);  // the same workspace, reused
                if (r.ok() && r.nfe == solver.nfe()) ++o.runs_ok;
                if (same_bits(x, single)) ++o.runs_equal;
            }
            o.last = x;
        } catch (...) {
            o.error = std::current_exception();
            arrived.fetch_add(n_threads);  // never leave the others waiting
        }
    };
    std::vector<std::thread> threads;
    for (int id = 0; id < n_threads; ++id) threads.emplace_back(body, id);
    for (auto& t : threads) t.join();

    for (int id = 0; id < n_threads; ++id) {
        const thread_outcome& o = out[std::size_t(id)];
        CAPTURE(id);
        if (o.error) std::rethrow_exception(o.error);
        CHECK(o.runs_ok == runs_per_thread);
        CHECK(o.runs_equal == runs_per_thread);
        REQUIRE(o.last.size() == single.size());
        // reported in the failure message: how far a differing result is (0 when equal)
        INFO("max |thread - single| = " << (o.last - single).cwiseAbs().maxCoeff());
        CHECK(same_bits(o.last, single));
    }
}

auto multistep_workspace_of = [](const deis::multistep_solver& s, const Eigen::MatrixXd& x) {
    return deis::multistep_workspace<double>(s, x);
};

}  // namespace

TEST_CASE("threads: one multistep solver (tAB 3, corrector, data prediction) shared by 4 threads", "[threads]") {
    const deis::multistep_solver solver(
        schedule, reference_grid(),
        deis::parse_multistep("tab3+data+corrector"));
    REQUIRE(solver.uses_corrector());
    check_shared_solver(solver, multistep_workspace_of);
}

TEST_CASE("threads: one rhoAB solver (order 3, corrector, data prediction) shared by 4 threads", "[threads]") {
    const deis::multistep_solver solver(
        schedule, reference_grid(),
        deis::parse_multistep("rhoab3+data+corrector"));
    check_shared_solver(solver, multistep_workspace_of);
}

TEST_CASE("threads: one iPNDM solver (order 3) shared by 4 threads", "[threads]") {
    const deis::multistep_solver solver(schedule, reference_grid(),
                                        deis::parse_multistep("ipndm3"));
    check_shared_solver(solver, multistep_workspace_of);
}

TEST_CASE("threads: one rhoRK solver (rk4) shared by 4 threads", "[threads]") {
    const deis::rk_solver<deis::tableau::rk4> solver(schedule, reference_grid());
    check_shared_solver(solver, [](const deis::rk_solver<deis::tableau::rk4>& s, const Eigen::MatrixXd& x) {
        return deis::rk_workspace<double>(s, x);
    });
}

TEST_CASE("threads: one stochastic solver (SDE, data prediction, default seeded noise) shared by 4 threads",
          "[threads]") {
    // The default noise source is made per run from options().seed, so every run draws the
    // same noise whichever thread makes it.
    auto o = deis::parse_multistep("tab2+data");
    o.sde = true;
    const deis::multistep_solver solver(schedule, reference_grid(), o);
    REQUIRE(solver.stochastic());
    check_shared_solver(solver, multistep_workspace_of);
}
