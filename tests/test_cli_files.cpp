// deis-sample never destroys its inputs: an --out that is one of them, by any name, is
// refused before anything is written; and the memory of a run is what its options imply.
//
// DEIS_SAMPLE_EXE (the program's path) is defined by tests/CMakeLists.txt only when the
// examples are built; without it this file has no tests.
#ifdef DEIS_SAMPLE_EXE

#include <filesystem>
#include <string>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"

using namespace deis_cli_test;

TEST_CASE("deis-sample: an --out that is an input is refused, by any of its names", "[cli][files]") {
    scratch s;
    inputs in(s);  // mix.csv, mix.json, noise.csv in the scratch directory, which is the cwd
    fs::create_directories(s.dir() / "sub");
    // the three input options, each with the command line that reads that file by its plain
    // name (relative to the scratch directory, the program's working directory)
    struct input {
        std::string option, file;
        args_t args;
    };
    const args_t relative = {"--noise", "noise.csv", "--mixture-csv", "mix.csv", "--schedule", "vp-linear",
                             "--method", "tab", "--grid", "t-power", "--steps", "4"};
    const std::vector<input> inputs_ = {
        {"--noise", "noise.csv", relative},
        {"--mixture-csv", "mix.csv", relative},
        {"--mixture", "mix.json", set(drop(relative, "--mixture-csv"), "--mixture", "mix.json")},
    };
    for (const auto& i : inputs_) {
        fs::create_symlink(i.file, s.dir() / ("link-" + i.file));
        fs::create_hard_link(s.dir() / i.file, s.dir() / ("hard-" + i.file));
        // --out: the same file under another name
        const std::vector<std::pair<std::string, std::string>> outs = {
            {"the same path", i.file},
            {"./x for x", "./" + i.file},
            {"the absolute path", s.path(i.file)},
            {"a path through another directory", "sub/../" + i.file},
            {"a symbolic link to it", "link-" + i.file},
            {"a hard link to it", "hard-" + i.file},
        };
        for (const auto& [what, out] : outs) {
            DYNAMIC_SECTION(i.option << ": " << what) {
                const auto before = snapshot(s.dir());
                const cli_result r = s.run(set(i.args, "--out", out));
                INFO("--out " << out);
                require_failure(r, exit_usage, {"--out", out, i.option, "refusing to overwrite an input"});
                CHECK(snapshot(s.dir()) == before);  // every input as it was, nothing added
            }
        }
    }
    SECTION("an --out that is not an input, existing or not, is written") {
        require_success(s.run(set(relative, "--out", "new.csv")), 4);
        const Eigen::MatrixXd x = read(s.path("new.csv"));
        s.write("old.csv", "stale\n");
        require_success(s.run(set(relative, "--out", "old.csv")), 4);
        CHECK(read(s.path("old.csv")) == x);
    }
}

TEST_CASE("deis-sample: the memory of --steps 1000000 is the coefficient table's", "[cli][memory]") {
    // docs/deis-sample.md: peak ~ S D n (1 + B) + T N. On one 2-D sample the states are
    // nothing, so the growth from 1 to N steps is the per-step tables: T = 192 bytes for a
    // multistep method (112 coefficient row, 16 conversion, 16 x0 preview, 8 grid, 40 while
    // the table is built), i.e. 183 MiB at 10^6 steps. 1.17 x leaves room for the allocator; a
    // per-step cost 20% above the formula fails. rk4 at 10^5 steps: T = 256 (the tableau's
    // row) + 4 x 16 conversion + 16 preview + 8 grid = 344 bytes.
    scratch s;
    const std::string noise = s.write("one.csv", "0.3,-0.2\n");
    const args_t a = {"--mixture-csv", reference("gmm2d_components.csv"), "--noise", noise, "--out", s.out_path(),
                      "--schedule", "vp-linear", "--grid", "t-power"};
    struct config {
        args_t method;
        int steps, calls_per_step;
        double bytes_per_step;  // the formula
        double at_least;        // what any version of the tables needs: grid and conversions
    };
    for (const config& c : {config{{"--method", "ddim"}, 1000000, 1, 192.0, 192.0},
                            config{{"--method", "rk", "--tableau", "rk4"}, 100000, 4, 344.0, 72.0}}) {
        DYNAMIC_SECTION(join(c.method) << " --steps " << c.steps) {
            const cli_result small = s.run(add(add(a, c.method), {"--steps", "1"}));
            require_success(small, c.calls_per_step);
            const cli_result big = s.run(add(add(a, c.method), {"--steps", std::to_string(c.steps)}));
            require_success(big, c.steps * c.calls_per_step);
            const double growth = double(big.max_rss_kb - small.max_rss_kb) * 1024.0;
            const double formula = c.bytes_per_step * c.steps;
            INFO("peak RSS " << small.max_rss_kb << " KiB at 1 step, " << big.max_rss_kb << " KiB at " << c.steps
                             << "; growth " << growth / formula << " x the formula");
            CHECK(growth <= 1.17 * formula);
            CHECK(growth >= 0.5 * c.at_least * c.steps);  // the run really built its tables
        }
    }
}

#endif  // DEIS_SAMPLE_EXE
