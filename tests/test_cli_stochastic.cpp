// deis-sample's stochastic sampling and run control: --eta, --sde, --seed, --progress, and
// SIGINT through the run's observer.
//
// DEIS_SAMPLE_EXE (the program's path) is defined by tests/CMakeLists.txt only when the
// examples are built; without it this file has no tests.
#ifdef DEIS_SAMPLE_EXE

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support/mixture_io.hpp"

using namespace deis_cli_test;

namespace {

// The reference run with --out in s's out/ (name given) and the method's options.
args_t run_args(const scratch& s, const std::string& name, const args_t& method) {
    return add(add(reference_run_args(), {"--out", s.out_path(name)}), method);
}

// What the library gives for the same problem: the reference mixture and noise, vp-linear,
// the quadratic grid of 10 steps, the options o.
Eigen::MatrixXd library_samples(const deis::multistep_options& o) {
    const deis::vp_linear sch;
    const deis::gmm_eps<deis::vp_linear> net(deis_tools::read_mixture_csv(reference("gmm2d_components.csv")), sch);
    Eigen::MatrixXd x = read(reference("gmm2d_xT.csv"));
    const deis::multistep_solver solver(sch, deis::power_t_grid(sch, 10, 1.0, 1e-3), o);
    REQUIRE(solver.sample(net, x).ok());
    return x;
}

}  // namespace

TEST_CASE("deis-sample: --seed gives the same file byte for byte, another seed another file", "[cli][stochastic]") {
    scratch s;
    const args_t sde = {"--method", "tab", "--predict", "data", "--sde"};
    const args_t eta = {"--method", "ddim", "--eta", "1"};
    for (const args_t& m : {sde, eta}) {
        INFO(join(m));
        require_success(s.run(run_args(s, "a.csv", add(m, {"--seed", "7"}))), 10);
        require_success(s.run(run_args(s, "b.csv", add(m, {"--seed", "7"}))), 10);
        require_success(s.run(run_args(s, "c.csv", add(m, {"--seed", "8"}))), 10);
        require_success(s.run(run_args(s, "d.csv", m)), 10);  // the default seed
        require_success(s.run(run_args(s, "e.csv", add(m, {"--seed", "2022"}))), 10);
        const std::string a = slurp(s.out_path("a.csv"));
        CHECK(a == slurp(s.out_path("b.csv")));
        CHECK(a != slurp(s.out_path("c.csv")));
        CHECK(slurp(s.out_path("d.csv")) == slurp(s.out_path("e.csv")));  // the default is fixed: 2022
        CHECK(a != slurp(s.out_path("d.csv")));
        for (const char* f : {"a.csv", "b.csv", "c.csv", "d.csv", "e.csv"}) fs::remove(s.out_path(f));
    }
}

TEST_CASE("deis-sample: --eta and --sde sample what the library samples", "[cli][stochastic]") {
    // The program adds no mathematics: its file equals the library's run with the same options
    // and seed, to the last bit (the samples are written in the shortest form that reads back
    // as the same double).
    scratch s;
    struct row {
        args_t args;
        deis::multistep_options o;
    };
    std::vector<row> rows;
    for (double eta : {0.0, 0.5, 1.0}) {
        deis::multistep_options o;
        o.method = deis::multistep_method::ddim;
        o.eta = eta;
        o.seed = 11;
        std::ostringstream e;
        e << eta;
        rows.push_back({{"--method", "ddim", "--eta", e.str(), "--seed", "11"}, o});
    }
    for (const char* m : {"tab", "rhoab"}) {
        for (int order : {0, 1, 2}) {
            deis::multistep_options o;
            o.method = std::string(m) == "tab" ? deis::multistep_method::tab : deis::multistep_method::rhoab;
            o.order = order;
            o.predict = deis::prediction::data;
            o.sde = true;
            o.seed = 11;
            rows.push_back({{"--method", m, "--predict", "data", "--sde", "--order", std::to_string(order), "--seed", "11"},
                            o});
        }
    }
    // --sde without --order or --predict: the library's defaults, order 2 and data prediction
    // (deis::multistep_options); the same configuration spelled as a name; DDIM's SDE form
    rows.push_back({{"--method", "tab", "--sde"}, deis::parse_multistep("tab2+data+sde")});
    rows.push_back({{"--method", "tab2+sde"}, deis::parse_multistep("tab2+data+sde")});
    deis::multistep_options ddim_sde = deis::parse_multistep("ddim+data+sde");
    ddim_sde.seed = 11;
    rows.push_back({{"--method", "ddim+data+sde", "--seed", "11"}, ddim_sde});
    for (const row& r : rows) {
        INFO(join(r.args));
        require_success(s.run(run_args(s, "x.csv", r.args)), 10);
        CHECK(read(s.out_path("x.csv")) == library_samples(r.o));
        fs::remove(s.out_path("x.csv"));
    }
    // --eta 0 is plain DDIM: the same bytes as without --eta
    require_success(s.run(run_args(s, "a.csv", {"--method", "ddim", "--eta", "0"})), 10);
    require_success(s.run(run_args(s, "b.csv", {"--method", "ddim"})), 10);
    CHECK(slurp(s.out_path("a.csv")) == slurp(s.out_path("b.csv")));
}

TEST_CASE("deis-sample: bad stochastic options are refused before anything is read", "[cli][stochastic]") {
    scratch s;
    inputs in(s);
    const args_t b = in.base();  // --method tab
    struct bad {
        const char* name;
        args_t args;
        std::vector<std::string> mentions;
    };
    const std::vector<bad> cases = {
        {"eta above 1", add(set(b, "--method", "ddim"), {"--eta", "1.5"}), {"--eta = 1.5", "[0, 1]"}},
        {"negative eta", add(set(b, "--method", "ddim"), {"--eta", "-0.25"}), {"--eta = -0.25"}},
        {"eta not finite", add(set(b, "--method", "ddim"), {"--eta", "nan"}), {"--eta = nan", "finite"}},
        {"eta with tab", add(b, {"--eta", "0.5"}), {"--eta", "DDIM only"}},
        {"sde with noise prediction", add(b, {"--sde", "--predict", "noise"}), {"--sde", "--predict data"}},
        {"sde with ipndm", add(set(b, "--method", "ipndm"), {"--sde"}), {"--sde", "iPNDM"}},
        {"eta with sde", add(set(b, "--method", "ddim"), {"--sde", "--eta", "0.5"}), {"--eta", "--sde"}},
        {"sde with rk", add(set(b, "--method", "rk"), {"--sde"}), {"--sde", "rk"}},
        {"sde of order 3", add(b, {"--sde", "--predict", "data", "--order", "3"}), {"--order = 3", "0..2", "--sde"}},
        {"sde with the corrector", add(b, {"--sde", "--predict", "data", "--corrector"}), {"--sde", "--corrector"}},
        {"negative seed", add(b, {"--seed", "-1"}), {"--seed = -1", "0..18446744073709551615"}},
        {"seed not a number", add(b, {"--seed", "x"}), {"--seed = x"}},
        {"seed beyond 2^64 - 1", add(b, {"--seed", "18446744073709551616"}), {"--seed = 18446744073709551616"}},
    };
    const auto before = snapshot(s.dir());
    for (const bad& c : cases) {
        INFO(c.name << ": " << join(c.args));
        require_failure(s.run(c.args), exit_usage, c.mentions);
    }
    CHECK(snapshot(s.dir()) == before);
}

TEST_CASE("deis-sample: --progress prints one line per tenth of the steps when stderr is not a terminal",
          "[cli][stochastic]") {
    scratch s;
    for (int steps : {20, 3, 1}) {
        INFO(steps << " steps");
        const cli_result r =
            s.run(set(run_args(s, "p.csv", {"--method", "ddim", "--eta", "1", "--progress"}), "--steps",
                      std::to_string(steps)));
        INFO("stderr: " << r.err);
        REQUIRE(r.code == 0);
        CHECK(r.out == "nfe=" + std::to_string(steps) + "\n");
        std::ostringstream expected;
        for (int done = 1; done <= steps; ++done) {
            const int pct = done * 100 / steps, before = (done - 1) * 100 / steps;
            if (pct / 10 > before / 10 || done == steps)
                expected << "deis-sample: " << pct << "% (" << done << " of " << steps << " steps)\n";
        }
        CHECK(r.err == expected.str());
        CHECK(count_lines(r.err) == std::size_t(std::min(steps, 10)));
        fs::remove(s.out_path("p.csv"));
    }
}

TEST_CASE("deis-sample: SIGINT stops a stochastic run through the observer", "[cli][stochastic][signal]") {
    // As in test_cli_signals.cpp: 40000 samples (a step of ~2 ms), 20000 steps; the signal
    // once the child has used 0.5 s of CPU, well inside the steps (before 10% of them, so
    // --progress has printed nothing yet).
    scratch s;
    inputs in(s);
    const std::string noise = s.write("many.csv", noise_rows(40000));
    const auto before = snapshot(s.dir());
    child c(add(set(set(in.base(), "--noise", noise), "--steps", "20000"), {"--predict", "data", "--sde", "--progress"}),
            s.dir().string());
    c.wait_for_exec();
    c.wait_for_cpu(0.5);
    const signal_case& sc = signals[0];  // SIGINT
    const auto t0 = std::chrono::steady_clock::now();
    c.signal(sc.signal);
    const cli_result r = c.wait();
    const double stop = since(t0);
    INFO("stopped " << stop << " s after the signal");
    CHECK(stop < 2.0);  // one step is ~2 ms of work: 2 s is the margin for a busy machine
    require_interrupted(r, sc, "at step ([2-9]|[1-9][0-9]+) of 20000", s);
    CHECK(snapshot(s.dir()) == before);
}

TEST_CASE("deis-sample: --progress draws a bar in place when stderr is a terminal", "[cli][stochastic]") {
    // stderr on the slave side of a pseudo-terminal (stdout to /dev/null): the bar is redrawn
    // with '\r' at each new whole percentage and its line ended once, after the run
    scratch s;
    const args_t args = set(run_args(s, "bar.csv", {"--method", "ddim", "--eta", "1", "--progress"}), "--steps", "20");
    int master = -1, slave = -1;
    REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
    std::vector<std::string> words = {DEIS_SAMPLE_EXE};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    const std::string cwd = s.dir().string();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(slave, 2);
        ::close(master);
        if (::chdir(cwd.c_str()) != 0) ::_exit(126);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(slave);
    std::string tty;
    char buf[4096];
    for (;;) {  // until the child has closed its side (read fails with EIO on Linux)
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;
        tty.append(buf, std::size_t(n));
    }
    ::close(master);
    int wstatus = 0;
    REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
    INFO("terminal output: " << tty);
    REQUIRE(WIFEXITED(wstatus));
    CHECK(WEXITSTATUS(wstatus) == 0);
    // 20 steps: 5% per step, so 20 redraws, each starting with '\r'; the last one complete
    CHECK(std::count(tty.begin(), tty.end(), '\r') >= 20);
    CHECK(tty.find("\r[####################] 100% (step 20 of 20)") != std::string::npos);
    CHECK(tty.find("deis-sample: ") == std::string::npos);  // not the line-per-10% form
    // the bar's line is ended once (the terminal turns "\n" into "\r\n")
    CHECK(tty.size() >= 2);
    CHECK(tty.substr(tty.size() - 2) == "\r\n");
    CHECK(s.out_files().size() == 1);
}

#endif  // DEIS_SAMPLE_EXE
