// deis-sample stopped by SIGINT or SIGTERM: exit code 130 or 143, one line on stderr with
// the step it stopped at, no output and no temporary, the inputs unchanged, and promptly:
// in the set-up, during the run and while the output is being written.
//
// DEIS_SAMPLE_EXE (the program's path) is defined by tests/CMakeLists.txt only when the
// examples are built; without it this file has no tests.
#ifdef DEIS_SAMPLE_EXE

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"

using namespace deis_cli_test;

namespace {

// Sends sc's signal once the child has used `cpu` seconds of CPU: its result, and the seconds
// from the signal to its end.
std::pair<cli_result, double> interrupt_after_cpu(child& c, const signal_case& sc, double cpu) {
    c.wait_for_exec();
    c.wait_for_cpu(cpu);
    const auto t0 = std::chrono::steady_clock::now();
    c.signal(sc.signal);
    cli_result r = c.wait();
    return {r, since(t0)};
}

}  // namespace

TEST_CASE("deis-sample: a signal stops a long run (10^6 steps) with nothing left behind", "[cli][signal]") {
    // The brief's scenario: 10^6 steps on the reference noise (about a minute of work), the
    // signal 0.3 s after the start, which is during the set-up (computing 10^6 steps of
    // coefficients takes seconds) or in the first steps.
    const std::vector<std::string> input_files = {reference("gmm2d_components.csv"), reference("gmm2d_xT.csv")};
    const auto inputs_before = snapshot_files(input_files);
    for (const signal_case& sc : signals) {
        DYNAMIC_SECTION(sc.name) {
            scratch s;
            child c(add(set(reference_run_args(), "--steps", "1000000"), {"--method", "tab", "--out", s.out_path()}));
            c.wait_for_exec();
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            const auto t0 = std::chrono::steady_clock::now();
            c.signal(sc.signal);
            const cli_result r = c.wait();
            // A step (or a step's worth of set-up) takes microseconds; 5 s is for a machine
            // busy with other tests. Without the checks the run goes on for about a minute.
            const double stop = since(t0);
            INFO("stopped " << stop << " s after the signal");
            CHECK(stop < 5.0);
            require_interrupted(r, sc, "(during the set-up, before step 1|at step [1-9][0-9]*) of 1000000", s);
            CHECK(snapshot_files(input_files) == inputs_before);
        }
    }
}

TEST_CASE("deis-sample: a signal during the steps stops the run within one step", "[cli][signal]") {
    // 40000 samples: a network call takes about 2 ms, the set-up (reading, 20000 steps of
    // DDIM coefficients) about 0.05 s of CPU. The signal comes once the child has used 0.5 s
    // of CPU, well inside the steps (~step 200 of 20000, which would take ~40 s in all).
    scratch s;
    inputs in(s);
    const std::string noise = s.write("many.csv", noise_rows(40000));
    for (const signal_case& sc : signals) {
        DYNAMIC_SECTION(sc.name) {
            const auto before = snapshot(s.dir());
            child c(set(set(set(in.base(), "--noise", noise), "--steps", "20000"), "--method", "ddim"), s.dir());
            const auto [r, stop] = interrupt_after_cpu(c, sc, 0.5);
            // One step is ~2 ms of work: 2 s is the margin for a busy machine.
            INFO("stopped " << stop << " s after the signal");
            CHECK(stop < 2.0);
            require_interrupted(r, sc, "at step ([2-9]|[1-9][0-9]+) of 20000", s);
            CHECK(snapshot(s.dir()) == before);  // inputs unchanged, nothing added
        }
    }
}

TEST_CASE("deis-sample: a signal while the output is written removes the temporary", "[cli][signal]") {
    // The program is stopped (SIGSTOP) as soon as its temporary (out/.x0.csv.XXXXXX) appears,
    // while it writes the ~8 MB output; then it gets the signal and is continued. It must see
    // the signal before its next row (or before the rename), remove the temporary and exit.
    // When it was stopped too late (the output already in place, or renamed on continuing),
    // the run is repeated.
    scratch s;
    inputs in(s);
    const std::string noise = s.write("many.csv", noise_rows(200000));
    const args_t args = set(set(set(in.base(), "--noise", noise), "--steps", "1"), "--method", "ddim");
    for (const signal_case& sc : signals) {
        DYNAMIC_SECTION(sc.name) {
            bool interrupted = false;
            for (int attempt = 0; attempt < 10 && !interrupted; ++attempt) {
                fs::remove(s.out_path());
                child c(args, s.dir());
                if (!stop_while_writing(c, s, "x0.csv")) {
                    require_success(c.wait(), 1);
                    continue;
                }
                c.signal(sc.signal);
                REQUIRE(::kill(c.pid(), SIGCONT) == 0);
                const cli_result r = c.wait();
                if (r.code == 0) continue;  // stopped between its last look at the signal and the rename
                require_interrupted(r, sc, "while writing the output, after step 1 of 1", s);
                interrupted = true;
            }
            REQUIRE(interrupted);
        }
    }
}


TEST_CASE("deis-sample: a signal during --grid optimized's calibration stops it within one interval",
          "[cli][signal]") {
    // 20000 calibration samples: the reference solve of the batch alone is about 1,800 network
    // calls on them (seconds of CPU); the signal comes once the child has used 0.5 s, inside it.
    scratch s;
    inputs in(s);
    const signal_case& sc = signals[0];
    const auto before = snapshot(s.dir());
    child c(add(set(set(in.base(), "--grid", "optimized"), "--steps", "10"), {"--calibration-samples", "20000"}),
            s.dir());
    const auto [r, stop] = interrupt_after_cpu(c, sc, 0.5);
    // An interval of the reference is a few calls of ~1 ms: 2 s is the margin for a busy machine
    // (without the check the calibration and then the run go on for seconds).
    INFO("stopped " << stop << " s after the signal");
    CHECK(stop < 2.0);
    require_interrupted(r, sc, "during the set-up, before step 1 of 10", s);
    CHECK(snapshot(s.dir()) == before);
}

#endif  // DEIS_SAMPLE_EXE
