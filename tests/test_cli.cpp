// The command-line program deis-sample, run as a separate process: every kind of bad input
// fails with one line on stderr and no output file; the reference samples are reproduced
// through it; --float, --model-output, the schedule options and the defaults are checked
// against closed forms and identities.
//
// DEIS_SAMPLE_EXE (the program's path) is defined by tests/CMakeLists.txt only when the
// examples are built; without it this file has no tests.
#ifdef DEIS_SAMPLE_EXE

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"

using namespace deis_cli_test;

namespace {

struct bad_case {
    std::string name;
    args_t args;
    int code;                           // the documented exit code
    std::vector<std::string> mentions;  // what the one stderr line must name
};

}  // namespace

TEST_CASE("deis-sample: the valid base case runs", "[cli]") {
    scratch s;
    inputs in(s);
    require_success(s.run(in.base()), 4);
    const Eigen::MatrixXd x = read(s.out_path());
    CHECK(x.rows() == 2);
    CHECK(x.cols() == 5);
    CHECK(s.out_files() == std::vector<std::string>{"x0.csv"});  // no temporary left behind
    require_success(s.run(set(drop(in.base(), "--mixture-csv"), "--mixture", in.mix_json)), 4);
    // the JSON and CSV forms of the same mixture give the same samples, bit for bit
    CHECK(read(s.out_path()) == x);
}

TEST_CASE("deis-sample: bad input fails with one line on stderr and no output file", "[cli]") {
    scratch s;
    inputs in(s);
    const args_t b = in.base();
    const auto file = [&](const std::string& name, const std::string& text) { return s.write(name, text); };
    const std::string mix_head = "mu0,mu1,std0,std1,weight\n";

    const std::vector<bad_case> cases = {
        // files
        {"missing mixture CSV", set(b, "--mixture-csv", s.path("nope.csv")), exit_input, {"nope.csv"}},
        {"missing mixture JSON",
         set(drop(b, "--mixture-csv"), "--mixture", s.path("nope.json")),
         exit_input,
         {"nope.json"}},
        {"missing noise", set(b, "--noise", s.path("absent.csv")), exit_input, {"absent.csv"}},
        {"unreadable noise (a directory)", set(b, "--noise", s.path("out")), exit_input, {s.path("out")}},
        {"empty noise", set(b, "--noise", file("empty.csv", "")), exit_input, {"empty.csv"}},
        {"ragged noise row", set(b, "--noise", file("ragged.csv", "0.1,0.2\n0.3\n")), exit_input, {"ragged.csv:2"}},
        {"non-numeric noise",
         set(b, "--noise", file("text.csv", "0.1,0.2\n0.1,abc\n")),
         exit_input,
         {"text.csv:2", "abc"}},
        {"NaN in noise", set(b, "--noise", file("nan.csv", "0.1,nan\n")), exit_input, {"nan.csv:1", "nan"}},
        {"Inf in noise", set(b, "--noise", file("inf.csv", "0.1,0.2\n-inf,0\n")), exit_input, {"inf.csv:2", "-inf"}},
        {"hexadecimal number in noise",
         set(b, "--noise", file("hex.csv", "0.1,0.2\n0x10,0\n")),
         exit_input,
         {"hex.csv:2", "0x10", "not a number"}},
        {"noise field longer than 100 characters",
         set(b, "--noise", file("long.csv", "0.1," + std::string(101, '1') + "\n")),
         exit_input,
         {"long.csv:1", "field 2", "longer than 100"}},
        {"noise value that overflows a double",
         set(b, "--noise", file("over.csv", "0.1,0.2\n1e400,0\n")),
         exit_input,
         {"over.csv:2", "1e400", "not finite"}},
        {"mixture JSON nested deeper than 8 levels",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("jdeep.json", R"({"weights": [1], "means": [[0, 0]], "stds": [[1, 1]], "x": [[[[[[[[[1]]]]]]]]]})")),
         exit_input,
         {"jdeep.json", "deeper than 8"}},
        {"mixture JSON with means of different lengths",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("jshape.json", R"({"weights": [1, 1], "means": [[0, 0], [1]], "stds": [[1, 1], [1, 1]]})")),
         exit_input,
         {"jshape.json", "means[1]", "expected 2"}},
        {"mixture JSON whose weights sum beyond the largest double",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("jsum.json", R"({"weights": [1e308, 1e308], "means": [[0, 0], [1, 1]], "stds": [[1, 1], [1, 1]]})")),
         exit_input,
         {"jsum.json", "weights sum"}},
        {"noise dimension differs from the mixture's",
         set(b, "--noise", file("three.csv", "0.1,0.2,0.3\n")),
         exit_input,
         {"three.csv", "dimension 3", "dimension 2"}},
        {"noise too large for --float",
         add(set(b, "--noise", file("big.csv", "0,0\n1e39,0\n")), {"--float"}),
         exit_input,
         {"big.csv:2", "float"}},
        {"NaN in mixture CSV",
         set(b, "--mixture-csv", file("mnan.csv", mix_head + "-1,0,nan,0.5,0.5\n")),
         exit_input,
         {"mnan.csv:2", "nan"}},
        {"Inf in mixture CSV",
         set(b, "--mixture-csv", file("minf.csv", mix_head + "-1,0,0.5,0.5,inf\n")),
         exit_input,
         {"minf.csv:2", "inf"}},
        {"ragged mixture CSV",
         set(b, "--mixture-csv", file("mrag.csv", mix_head + "-1,0,0.5,0.5\n")),
         exit_input,
         {"mrag.csv:2"}},
        {"mixture CSV with a wrong header",
         set(b, "--mixture-csv", file("mhead.csv", "a,b,c,d,e\n1,1,1,1,1\n")),
         exit_input,
         {"mhead.csv", "header"}},
        {"zero std in mixture CSV",
         set(b, "--mixture-csv", file("mstd.csv", mix_head + "-1,0,0.5,0.5,0.5\n1,0,0.5,0,0.5\n")),
         exit_input,
         {"mstd.csv", "stds(1, 1)", "> 0"}},
        {"negative weight in mixture CSV",
         set(b, "--mixture-csv", file("mw.csv", mix_head + "-1,0,0.5,0.5,-0.5\n1,0,0.5,0.5,0.5\n")),
         exit_input,
         {"mw.csv", "weights[0]", "-0.5"}},
        {"NaN in mixture JSON",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("jnan.json", R"({"weights": [NaN], "means": [[0, 0]], "stds": [[1, 1]]})")),
         exit_input,
         {"jnan.json", "JSON"}},
        {"Inf in mixture JSON",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("jinf.json", R"({"weights": [1], "means": [[0, 1e999]], "stds": [[1, 1]]})")),
         exit_input,
         {"jinf.json", "1e999"}},
        {"zero weight in mixture JSON",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("jw.json", R"({"weights": [1, 0], "means": [[0, 0], [1, 1]], "stds": [[1, 1], [1, 1]]})")),
         exit_input,
         {"jw.json", "weights[1]", "> 0"}},
        {"negative std in mixture JSON",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("js.json", R"({"weights": [1], "means": [[0, 0]], "stds": [[1, -2]]})")),
         exit_input,
         {"js.json", "stds(1, 0)", "-2"}},
        {"mixture JSON without stds",
         set(drop(b, "--mixture-csv"), "--mixture", file("jmiss.json", R"({"weights": [1], "means": [[0, 0]]})")),
         exit_input,
         {"jmiss.json", "stds"}},
        {"mixture JSON with a string for a number",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("jstr.json", R"({"weights": ["nan"], "means": [[0, 0]], "stds": [[1, 1]]})")),
         exit_input,
         {"jstr.json"}},
        {"mixture and noise dimension differ (JSON)",
         set(drop(b, "--mixture-csv"), "--mixture",
             file("j3.json", R"({"weights": [1], "means": [[0, 0, 0]], "stds": [[1, 1, 1]]})")),
         exit_input,
         {"dimension 2", "dimension 3", "j3.json"}},
        // options
        {"unknown method", set(b, "--method", "dpm"), exit_usage, {"--method", "dpm"}},
        {"unknown tableau", add(set(b, "--method", "rk"), {"--tableau", "rk5"}), exit_usage, {"--tableau", "rk5"}},
        {"unknown tableau with a multistep method", add(b, {"--tableau", "rk5"}), exit_usage, {"--tableau", "rk5"}},
        {"order above 3", add(b, {"--order", "4"}), exit_usage, {"--order", "4"}},
        {"negative order", add(b, {"--order", "-1"}), exit_usage, {"--order", "-1"}},
        {"order 1 for ddim", add(set(b, "--method", "ddim"), {"--order", "1"}), exit_usage, {"--order", "ddim"}},
        {"order not the tableau's",
         add(set(b, "--method", "rk"), {"--tableau", "heun2", "--order", "3"}),
         exit_usage,
         {"--order", "3", "heun2"}},
        {"order not rk4's (default tableau)",
         add(set(b, "--method", "rk"), {"--order", "2"}),
         exit_usage,
         {"--order", "rk4"}},
        {"zero steps", set(b, "--steps", "0"), exit_usage, {"--steps", "0"}},
        {"steps above the limit 10^6", set(b, "--steps", "1000001"), exit_usage, {"--steps", "1000001", "1000000"}},
        {"steps beyond int", set(b, "--steps", "99999999999"), exit_usage, {"--steps", "99999999999"}},
        {"non-integer steps", set(b, "--steps", "2.5"), exit_usage, {"--steps", "2.5"}},
        {"zero grid power", add(b, {"--grid-power", "0"}), exit_usage, {"--grid-power", "0"}},
        {"negative grid power",
         add(set(b, "--grid", "rho-power"), {"--grid-power", "-7"}),
         exit_usage,
         {"--grid-power", "-7"}},
        {"grid power below 0.1", add(b, {"--grid-power", "0.05"}), exit_usage, {"--grid-power", "0.05", "0.1"}},
        {"grid power above 100",
         add(set(b, "--grid", "rho-power"), {"--grid-power", "101"}),
         exit_usage,
         {"--grid-power", "101", "100"}},
        {"infinite grid power", add(b, {"--grid-power", "inf"}), exit_usage, {"--grid-power", "inf"}},
        {"unknown grid", set(b, "--grid", "uniform"), exit_usage, {"--grid", "uniform"}},
        {"t-end equal to t-max", add(b, {"--t-end", "1"}), exit_usage, {"--t-end", "--t-max"}},
        {"t-end above t-max", add(b, {"--t-max", "0.5", "--t-end", "0.7"}), exit_usage, {"--t-end", "0.7"}},
        // (--t-end 0 on a VP schedule ends on clean data: allowed, tests/test_cli_flow.cpp)
        {"negative t-end on a VP schedule", add(b, {"--t-end", "-0.5"}), exit_usage, {"--t-end", "-0.5"}},
        {"t-end below 1e-12 on a VP schedule",
         add(set(b, "--schedule", "vp-cosine"), {"--t-end", "1e-13"}),
         exit_usage,
         {"--t-end", "1e-13", "1e-12"}},
        {"t-end not finite", add(b, {"--t-end", "nan"}), exit_usage, {"--t-end", "nan"}},
        {"beta-max below beta-min",
         add(b, {"--beta-min", "2", "--beta-max", "1"}),
         exit_usage,
         {"--beta-max", "--beta-min"}},
        {"beta-max equal to beta-min", add(b, {"--beta-min", "2", "--beta-max", "2"}), exit_usage, {"--beta-max"}},
        {"negative beta-min", add(b, {"--beta-min", "-0.1"}), exit_usage, {"--beta-min", "-0.1"}},
        {"infinite beta-max", add(b, {"--beta-max", "inf"}), exit_usage, {"--beta-max", "inf"}},
        {"beta-max above 1000", add(b, {"--beta-max", "1000.5"}), exit_usage, {"--beta-max", "1000.5", "1000"}},
        {"t-max above 1 on vp-linear", add(b, {"--t-max", "1.5"}), exit_usage, {"--t-max", "1.5", "vp-linear"}},
        {"sigma-min below 1e-8",
         add(set(b, "--schedule", "ve"), {"--sigma-min", "1e-9"}),
         exit_usage,
         {"--sigma-min", "1e-09", "1e-08"}},
        {"sigma-max above 1e8",
         add(set(b, "--schedule", "ve"), {"--sigma-max", "2e8"}),
         exit_usage,
         {"--sigma-max", "2e+08", "1e+08"}},
        {"order beyond int", add(b, {"--order", "99999999999"}), exit_usage, {"--order", "99999999999"}},
        {"sigma-max below sigma-min",
         add(set(b, "--schedule", "ve"), {"--sigma-min", "5", "--sigma-max", "1"}),
         exit_usage,
         {"--sigma-max", "--sigma-min"}},
        {"zero sigma-min", add(set(b, "--schedule", "ve"), {"--sigma-min", "0"}), exit_usage, {"--sigma-min", "0"}},
        {"t-max outside ve's domain",
         add(set(b, "--schedule", "ve"), {"--t-max", "1.5"}),
         exit_usage,
         {"--t-max", "1.5"}},
        {"t-max at vp-cosine's singularity",
         add(set(b, "--schedule", "vp-cosine"), {"--t-max", "1"}),
         exit_usage,
         {"--t-max", "1"}},
        {"non-positive t-max on vp-linear", add(b, {"--t-max", "0", "--t-end", "-1"}), exit_usage, {"--t-max", "0"}},
        {"unknown schedule", set(b, "--schedule", "vp-quadratic"), exit_usage, {"--schedule", "vp-quadratic"}},
        {"unknown option", add(b, {"--bogus", "1"}), exit_usage, {"--bogus"}},
        {"unknown option without the required ones", {"--bogus"}, exit_usage, {"--bogus"}},
        {"stray argument", add(b, {"stray"}), exit_usage, {"stray"}},
        {"option given twice", add(b, {"--steps", "5"}), exit_usage, {"--steps", "more than once"}},
        {"both mixture options", add(b, {"--mixture", in.mix_json}), exit_usage, {"--mixture", "--mixture-csv"}},
        {"no mixture option", drop(b, "--mixture-csv"), exit_usage, {"--mixture", "--mixture-csv"}},
        {"no steps", drop(b, "--steps"), exit_usage, {"--steps"}},
        {"no noise", drop(b, "--noise"), exit_usage, {"--noise"}},
        {"no output", drop(b, "--out"), exit_usage, {"--out"}},
        {"unknown model output", add(b, {"--model-output", "logits"}), exit_usage, {"--model-output", "logits"}},
        {"unknown prediction", add(b, {"--predict", "score"}), exit_usage, {"--predict", "score"}},
        {"corrector with ipndm",
         add(set(b, "--method", "ipndm"), {"--corrector"}),
         exit_usage,
         {"--corrector", "ipndm"}},
        {"corrector with rk", add(set(b, "--method", "rk"), {"--corrector"}), exit_usage, {"--corrector", "rk"}},
        {"data prediction with rk",
         add(set(b, "--method", "rk"), {"--predict", "data"}),
         exit_usage,
         {"--predict", "rk"}},
        // the run: 1e300 makes the mixture's log-density overflow, so eps is NaN at t = 1
        {"non-finite network output",
         set(b, "--noise", file("huge.csv", "0,0\n1e300,0\n")),
         exit_run,
         {"non-finite", "t = 1 ", "step 1 of 4"}},
        {"non-finite network output (rk)",
         set(set(b, "--method", "rk"), "--noise", file("huge.csv", "0,0\n1e300,0\n")),
         exit_run,
         {"non-finite", "t = 1 ", "step 1 of 4"}},
        // writing
        {"output directory missing",
         set(b, "--out", s.out_path("no-such-dir/x0.csv")),
         exit_write,
         {"no-such-dir/x0.csv"}},
    };

    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            // every file of the scratch directory: the inputs, and out/ (empty)
            const auto before = snapshot(s.dir());
            const cli_result r = s.run(c.args);
            INFO("args: " << join(c.args));
            require_failure(r, c.code, c.mentions);
            // no output file, no temporary, and the inputs byte for byte as they were
            CHECK(s.out_files().empty());
            CHECK(snapshot(s.dir()) == before);
        }
    }
}

TEST_CASE("deis-sample: an output path that cannot be renamed into leaves no temporary behind", "[cli]") {
    scratch s;
    inputs in(s);
    // --out names an existing directory: the temporary is written, the rename fails
    fs::create_directories(s.out_path("dir"));
    const cli_result r = s.run(set(in.base(), "--out", s.out_path("dir")));
    INFO("stderr: " << r.err);
    CHECK(r.code == exit_write);
    CHECK(r.out.empty());
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find(s.out_path("dir")) != std::string::npos);
    CHECK(s.out_files() == std::vector<std::string>{"dir"});
    CHECK(fs::is_directory(s.out_path("dir")));
}

TEST_CASE("deis-sample: a failed write (full disk) leaves neither the output nor the temporary", "[cli]") {
    scratch s;
    inputs in(s);
    // a file size limit of 100 bytes (the output has ~200): the write fails with EFBIG, as
    // on a full disk
    const cli_result r = run_with_file_size_limit(in.base(), s.dir().string(), 100);
    INFO("stderr: " << r.err);
    CHECK(r.code == exit_write);
    CHECK(r.out.empty());
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find(s.out_path()) != std::string::npos);
    CHECK(s.out_files().empty());
}

TEST_CASE("deis-sample: --help prints the usage and exits 0", "[cli]") {
    scratch s;
    const cli_result r = s.run({"--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find("--mixture-csv") != std::string::npos);
    CHECK(r.out.find("--model-output") != std::string::npos);
    CHECK(r.err.empty());
}

namespace {

// The invocation that reproduces a file of tests/data/samples, from its name
// <impl>__<method>__o<order>__<grid>__s<steps>.csv; also the expected nfe.
struct reference_run {
    args_t args;
    int nfe = 0;
    bool rk = false;
};

reference_run parse_reference_name(const std::string& stem) {
    std::vector<std::string> p;
    for (std::size_t pos = 0;;) {
        const std::size_t next = stem.find("__", pos);
        p.push_back(stem.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
        if (next == std::string::npos) break;
        pos = next + 2;
    }
    REQUIRE(p.size() == 5);
    REQUIRE(p[2].size() == 2);
    REQUIRE(p[2][0] == 'o');
    REQUIRE(p[4][0] == 's');
    const std::string order = p[2].substr(1), steps = p[4].substr(1);
    reference_run r;
    r.nfe = std::stoi(steps);
    if (p[0] == "deis-exactcoef" && p[1] == "t_ab") {
        r.args = {"--method", "tab"};
    } else if (p[0] == "deis-exactcoef" && p[1] == "rho_ab") {
        r.args = {"--method", "rhoab"};
    } else if (p[0] == "deis-official" && p[1] == "ipndm") {
        r.args = {"--method", "ipndm"};
    } else if (p[0] == "deis-official" && p[1].rfind("rho_rk-", 0) == 0) {
        const std::string t = p[1].substr(7);
        const std::string tableau = t == "2heun" ? "heun2" : t == "3kutta" ? "kutta3" : t == "4rk" ? "rk4" : "";
        INFO("tableau " << t);
        REQUIRE(!tableau.empty());
        r.args = {"--method", "rk", "--tableau", tableau};
        r.nfe *= std::stoi(order);  // stages = order for these three tableaux
        r.rk = true;
    } else {
        FAIL("unrecognised reference file " << stem);
    }
    r.args = add(r.args, {"--order", order, "--steps", steps});
    if (p[3] == "t2")
        r.args = add(r.args, {"--grid", "t-power", "--grid-power", "2"});
    else if (p[3] == "t1")
        r.args = add(r.args, {"--grid", "t-power", "--grid-power", "1"});
    else if (p[3] == "log")
        r.args = add(r.args, {"--grid", "log-rho"});
    else
        FAIL("unrecognised grid in " << stem);
    return r;
}

}  // namespace

TEST_CASE("deis-sample: reproduces every reference sample file", "[cli][reference]") {
    scratch s;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(reference("samples")))
        if (e.path().extension() == ".csv") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 38);  // the README's list: 32 exactcoef, 2 ipndm, 4 rho_rk

    for (const auto& f : files) {
        DYNAMIC_SECTION(f.stem().string()) {
            const reference_run rr = parse_reference_name(f.stem().string());
            const args_t args = add({"--mixture-csv", reference("gmm2d_components.csv"), "--noise",
                                     reference("gmm2d_xT.csv"), "--out", s.out_path(), "--schedule", "vp-linear"},
                                    rr.args);
            INFO("args: " << join(rr.args));
            require_success(s.run(args), rr.nfe);
            const Eigen::MatrixXd x = read(s.out_path()), ref = read(f.string());
            REQUIRE(x.rows() == ref.rows());
            REQUIRE(x.cols() == ref.cols());
            // The README: the same method agrees with these files to about 1e-10 sample by
            // sample (the official code in float64; measured here up to ~6e-13 for the AB
            // files); 1e-9 leaves room for the 17-digit round trip through the files.
            const double err = (x - ref).cwiseAbs().maxCoeff();
            INFO("max abs difference " << err);
            CHECK(err <= 1e-9);
        }
    }
}

TEST_CASE("deis-sample: rk's nfe line is stages * steps for every tableau", "[cli]") {
    scratch s;
    const std::vector<std::pair<std::string, int>> tableaux = {{"euler", 1},  {"heun2", 2},  {"midpoint2", 2},
                                                               {"kutta3", 3}, {"ral3", 3},   {"heun3", 3},
                                                               {"vdh3", 3},   {"ssprk3", 3}, {"rk4", 4}};
    inputs in(s);
    for (const auto& [name, stages] : tableaux) {
        DYNAMIC_SECTION(name) {
            require_success(s.run(add(set(set(in.base(), "--method", "rk"), "--steps", "3"), {"--tableau", name})),
                            3 * stages);
        }
    }
}

TEST_CASE("deis-sample: --float agrees with double", "[cli]") {
    scratch s;
    const args_t common = reference_run_args();
    const std::vector<args_t> methods = {{"--method", "tab"},
                                         {"--method", "rhoab", "--corrector"},
                                         {"--method", "ipndm"},
                                         {"--method", "tab", "--predict", "data"},
                                         {"--method", "rk", "--tableau", "rk4"}};
    for (const auto& m : methods) {
        DYNAMIC_SECTION(join(m)) {
            const int nfe = m[1] == "rk" ? 40 : 10;
            require_success(s.run(add(add(common, m), {"--out", s.out_path("d.csv")})), nfe);
            require_success(s.run(add(add(common, m), {"--out", s.out_path("f.csv"), "--float"})), nfe);
            const Eigen::MatrixXd d = read(s.out_path("d.csv")), f = read(s.out_path("f.csv"));
            // Relative in norm over the whole batch. Float rounding (6e-8) is amplified by the
            // cancellation in the first steps (x_coef = alpha_{k+1}/alpha_k is about 20 there)
            // and by the flow near the boundaries between modes: measured 5.8e-7 to 8e-7 here.
            // Single samples near a boundary differ by up to ~4e-5 relative, so the check is
            // on the norm, not sample by sample.
            const double rel = (f - d).norm() / d.norm();
            INFO("relative difference " << rel);
            CHECK(rel <= 1e-5);
            CHECK(rel > 0.0);  // the float run really ran in float
        }
    }
}

TEST_CASE("deis-sample: --model-output x0, v and score give the samples of eps", "[cli]") {
    scratch s;
    const args_t common = reference_run_args();
    const std::vector<args_t> methods = {{"--method", "tab"},
                                         {"--method", "tab", "--predict", "data"},
                                         {"--method", "ipndm"},
                                         {"--method", "ddim", "--corrector"},
                                         {"--method", "rk", "--tableau", "kutta3"}};
    for (const auto& m : methods) {
        const int nfe = m[1] == "rk" ? 30 : 10;
        for (const std::string output : {"x0", "v", "score"}) {
            DYNAMIC_SECTION(join(m) << " --model-output " << output) {
                require_success(s.run(add(add(common, m), {"--out", s.out_path("eps.csv")})), nfe);
                require_success(s.run(add(add(common, m), {"--out", s.out_path("o.csv"), "--model-output", output})),
                                nfe);
                const Eigen::MatrixXd e = read(s.out_path("eps.csv")), o = read(s.out_path("o.csv"));
                // The conversions are exact in exact arithmetic; the round trip costs a few
                // ulps of x/sigma and x/alpha per call (measured up to 7e-13).
                const double err = (o - e).cwiseAbs().maxCoeff();
                INFO("max abs difference " << err);
                CHECK(err <= 1e-9);
            }
        }
    }
}

namespace {

// alpha and sigma of the three schedules, written from their definitions (DESIGN.md 1).
struct schedule_formula {
    static constexpr double pi = 3.141592653589793238462643383279502884;
    std::string name;
    double b0 = 0.1, b1 = 20.0, smin = 0.01, smax = 50.0;
    double alpha(double t) const {
        if (name == "vp-linear") return std::exp(-0.25 * t * t * (b1 - b0) - 0.5 * t * b0);
        if (name == "vp-cosine") return std::cos(0.5 * pi * (t + 0.008) / 1.008);
        return 1.0;
    }
    double sigma(double t) const {
        if (name == "ve") return smin * std::pow(smax / smin, t);
        const double a = alpha(t);
        return std::sqrt(1.0 - a * a);
    }
};

}  // namespace

TEST_CASE("deis-sample: every schedule and its options against the exact flow of one Gaussian", "[cli]") {
    // Data N(mu, s^2) in 1-D: along the exact flow z = (x - alpha mu)/sqrt(alpha^2 s^2 +
    // sigma^2) is constant. The noise is placed at given z at t_max and the result compared
    // with alpha_e mu + sqrt(alpha_e^2 s^2 + sigma_e^2) z at t_end, alpha and sigma written
    // here from the schedules' definitions.
    scratch s;
    const double mu = 0.5, sd = 0.7;
    const std::string mix = s.write("g.json", R"({"weights": [1], "means": [[0.5]], "stds": [[0.7]]})");
    const std::vector<double> z = {-2.0, -0.3, 0.1, 1.7, 3.0};

    struct config {
        schedule_formula sch;
        double t_max, t_end;
        args_t args;
    };
    const schedule_formula lin{"vp-linear"}, lin2{"vp-linear", 0.2, 15.0}, cos{"vp-cosine"}, ve{"ve"},
        ve2{"ve", 0.1, 20.0, 0.02, 30.0};
    const std::vector<config> configs = {
        {lin, 1.0, 1e-3, {"--schedule", "vp-linear"}},
        {lin2,
         0.9,
         0.01,
         {"--schedule", "vp-linear", "--beta-min", "0.2", "--beta-max", "15", "--t-max", "0.9", "--t-end", "0.01"}},
        {cos, 0.9946, 1e-3, {"--schedule", "vp-cosine"}},  // the default t-max
        {cos, 0.9, 0.05, {"--schedule", "vp-cosine", "--t-max", "0.9", "--t-end", "0.05"}},
        {ve, 1.0, 1e-3, {"--schedule", "ve"}},
        {ve2,
         0.8,
         0.0,
         {"--schedule", "ve", "--sigma-min", "0.02", "--sigma-max", "30", "--t-max", "0.8", "--t-end", "0"}},
    };
    const std::vector<args_t> methods = {{"--method", "tab", "--grid", "log-rho"},
                                         {"--method", "tab", "--predict", "data", "--grid", "log-rho"},
                                         {"--method", "tab", "--corrector", "--grid", "rho-power"},
                                         {"--method", "rk", "--grid", "log-rho"}};
    for (const auto& c : configs) {
        const double aT = c.sch.alpha(c.t_max), sT = c.sch.sigma(c.t_max);
        const double ae = c.sch.alpha(c.t_end), se = c.sch.sigma(c.t_end);
        std::ostringstream noise;
        noise.precision(17);
        for (double zi : z) noise << aT * mu + std::sqrt(aT * aT * sd * sd + sT * sT) * zi << '\n';
        for (const auto& m : methods) {
            DYNAMIC_SECTION(join(c.args) << " " << join(m)) {
                const std::string nf = s.write("g_noise.csv", noise.str());
                const args_t args =
                    add(add({"--mixture", mix, "--noise", nf, "--out", s.out_path(), "--steps", "200"}, c.args), m);
                require_success(s.run(args), m[1] == "rk" ? 800 : 200);
                const Eigen::MatrixXd x = read(s.out_path());
                REQUIRE(x.size() == Eigen::Index(z.size()));
                double err = 0.0;
                for (std::size_t i = 0; i < z.size(); ++i)
                    err = std::max(err, std::abs(x(0, Eigen::Index(i)) -
                                                 (ae * mu + std::sqrt(ae * ae * sd * sd + se * se) * z[i])));
                // The solvers' error at 200 steps, measured up to 5.7e-6 (vp-cosine from
                // t = 0.9, tAB: its warm start makes it second order once eps varies at
                // t_max); convergence checked from 25 to 800 steps. Any wrong schedule
                // parameter or end time moves x_end by more than 5e-4 here.
                INFO("max abs error " << err);
                CHECK(err <= 2e-5);
            }
        }
    }
}

TEST_CASE("deis-sample: defaults equal their explicit values", "[cli]") {
    scratch s;
    inputs in(s);
    const args_t b = in.base();
    // pairs of command lines that must give the same samples, bit for bit
    const std::vector<std::pair<args_t, args_t>> pairs = {
        {set(b, "--schedule", "vp-cosine"), add(set(b, "--schedule", "vp-cosine"), {"--t-max", "0.9946"})},
        {b, add(b, {"--t-max", "1", "--t-end", "0.001", "--beta-min", "0.1", "--beta-max", "20"})},
        {set(b, "--schedule", "ve"),
         add(set(b, "--schedule", "ve"), {"--t-max", "1", "--sigma-min", "0.01", "--sigma-max", "50"})},
        {b, add(b, {"--order", "3", "--grid-power", "2", "--predict", "noise", "--model-output", "eps"})},
        {set(b, "--method", "ddim"), add(set(b, "--method", "ddim"), {"--order", "0"})},
        {set(b, "--method", "ipndm"), add(set(b, "--method", "ipndm"), {"--order", "3"})},
        {set(b, "--grid", "rho-power"), add(set(b, "--grid", "rho-power"), {"--grid-power", "7"})},
        {set(b, "--method", "rk"), add(set(b, "--method", "rk"), {"--tableau", "rk4", "--order", "4"})},
        // options that do not apply to the configuration are ignored (a harness may pass one
        // fixed set of options everywhere)
        {b, add(b, {"--tableau", "heun2", "--sigma-min", "0.02", "--sigma-max", "30"})},
        {set(b, "--grid", "log-rho"), add(set(b, "--grid", "log-rho"), {"--grid-power", "3"})},
        {set(b, "--schedule", "ve"), add(set(b, "--schedule", "ve"), {"--beta-min", "0.2", "--beta-max", "10"})},
        {set(b, "--schedule", "vp-cosine"),
         add(set(b, "--schedule", "vp-cosine"), {"--beta-min", "0.2", "--sigma-max", "30"})},
    };
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        // section names must not change between runs: no scratch paths in them
        DYNAMIC_SECTION("pair " << i) {
            INFO(join(pairs[i].second));
            const int nfe = value_of(pairs[i].first, "--method") == "rk" ? 16 : 4;
            require_success(s.run(set(pairs[i].first, "--out", s.out_path("a.csv"))), nfe);
            require_success(s.run(set(pairs[i].second, "--out", s.out_path("b.csv"))), nfe);
            CHECK(read(s.out_path("a.csv")) == read(s.out_path("b.csv")));
        }
    }
    SECTION("a value other than the default changes the samples (the option is not ignored)") {
        require_success(s.run(set(b, "--out", s.out_path("a.csv"))), 4);
        for (const args_t& other :
             {add(b, {"--order", "2"}), add(b, {"--grid-power", "3"}), add(b, {"--t-end", "0.002"}),
              add(b, {"--t-max", "0.99"}), add(b, {"--beta-min", "0.2"}), add(b, {"--beta-max", "19"}),
              add(b, {"--predict", "data"}), add(b, {"--corrector"})}) {
            require_success(s.run(set(other, "--out", s.out_path("b.csv"))), 4);
            INFO(join(other));
            CHECK(read(s.out_path("a.csv")) != read(s.out_path("b.csv")));
        }
    }
}


TEST_CASE("deis-sample: the presets by name, and --order as their published order", "[cli][presets]") {
    scratch s;
    inputs in(s);
    const args_t b = set(in.base(), "--steps", "6");
    for (const char* m : {"dpmpp_2m", "dpmpp_3m", "uni_pc", "uni_pc_bh2", "deis", "euler", "heun"}) {
        CAPTURE(m);
        require_success(s.run(set(set(b, "--method", m), "--out", s.out_path("m.csv"))), std::string(m) == "heun" ? 12 : 6);
    }
    // --order P is order=P for uni_pc, uni_pc_bh2 and deis; euler is ddim
    for (const auto& [flags, name] : std::vector<std::pair<args_t, std::string>>{
             {{"--method", "uni_pc", "--order", "2"}, "uni_pc+order=2"},
             {{"--method", "uni_pc_bh2", "--order", "1"}, "uni_pc_bh2+order=1"},
             {{"--method", "deis", "--order", "3"}, "deis+order=3"},
             {{"--method", "dpmpp_3m", "--order", "3"}, "dpmpp_3m"},
             {{"--method", "euler"}, "ddim"}}) {
        CAPTURE(name);
        args_t flagged = set(b, "--out", s.out_path("f.csv"));
        for (std::size_t i = 0; i < flags.size(); i += 2) flagged = set(flagged, flags[i], flags[i + 1]);
        require_success(s.run(flagged), 6);
        require_success(s.run(set(set(b, "--method", name), "--out", s.out_path("n.csv"))), 6);
        CHECK(read(s.out_path("f.csv")) == read(s.out_path("n.csv")));
    }
    for (const auto& [flags, mention] : std::vector<std::pair<args_t, std::string>>{
             {{"--method", "dpmpp_2m", "--order", "3"}, "--order = 3 contradicts --method dpmpp_2m (published order 2)"},
             {{"--method", "uni_pc", "--order", "4"}, "--order = 4 must lie in 1..3 (the published order)"},
             {{"--method", "deis+order=2", "--order", "3"}, "--order = 3 contradicts the order of --method deis+order=2"},
             {{"--method", "uni_pc", "--corrector"}, "--corrector = true does not apply to the preset uni_pc"},
             {{"--method", "dpmpp_2m", "--predict", "noise"}, "does not apply to the preset dpmpp_2m"}}) {
        CAPTURE(mention);
        args_t flagged = set(b, "--out", s.out_path("x.csv"));
        for (std::size_t i = 0; i < flags.size(); i += 2)
            flagged = flags[i] == "--corrector" ? add(flagged, {"--corrector"}) : set(flagged, flags[i], flags[i + 1]);
        const cli_result r = s.run(flagged);
        CHECK(r.code == exit_usage);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find(mention) != std::string::npos);
        CHECK_FALSE(fs::exists(s.out_path("x.csv")));
    }
}

TEST_CASE("deis-sample: --method recommended is deis::recommended_options for the grid", "[cli]") {
    scratch s;
    inputs in(s);
    const args_t b = set(in.base(), "--method", "recommended");
    // deis::recommended_options on VP: data prediction with the corrector; rhoAB order 2 when
    // the mean log-rho step is above 1.3, tAB order 3 when at most 0.75
    // (log(rho(1)/rho(1e-3)) = 9.58 for the default schedule: 4 steps 2.4, 16 steps 0.60)
    for (const auto& [steps, method, order] :
         std::vector<std::tuple<std::string, std::string, std::string>>{{"4", "rhoab", "2"}, {"16", "tab", "3"}}) {
        DYNAMIC_SECTION("steps " << steps) {
            require_success(s.run(set(set(b, "--steps", steps), "--out", s.out_path("r.csv"))), std::stoi(steps));
            // the flags that spell what recommended chooses are refused, not ignored
            const cli_result refused = s.run(add(set(set(b, "--steps", steps), "--out", s.out_path("p.csv")),
                                                 {"--predict", "noise"}));
            CHECK(refused.code == 1);
            CHECK(refused.err.find("--predict does not apply to --method recommended") != std::string::npos);
            CHECK_FALSE(fs::exists(s.out_path("p.csv")));
            require_success(s.run(add(set(set(set(in.base(), "--steps", steps), "--out", s.out_path("t.csv")),
                                          "--method", method),
                                      {"--order", order, "--predict", "data", "--corrector"})),
                            std::stoi(steps));
            CHECK(read(s.out_path("r.csv")) == read(s.out_path("t.csv")));
        }
    }
    SECTION("VE at 20 steps: tAB3, data prediction, corrector, on the VP-linear clock") {
        // deis::recommended_options on VE with h = 8.51 / 20 = 0.43 (below 0.65): the VP rule,
        // tAB on tab_clock::vp_linear (--clock vp)
        const args_t ve = set(set(set(in.base(), "--schedule", "ve"), "--grid", "recommended"), "--steps", "20");
        require_success(s.run(set(set(ve, "--method", "recommended"), "--out", s.out_path("r.csv"))), 20);
        const args_t tab3 = add(ve, {"--order", "3", "--predict", "data", "--corrector"});
        require_success(s.run(add(set(tab3, "--out", s.out_path("t.csv")), {"--clock", "vp"})), 20);
        require_success(s.run(add(set(tab3, "--out", s.out_path("u.csv")), {"--clock", "t"})), 20);
        CHECK(read(s.out_path("r.csv")) == read(s.out_path("t.csv")));
        CHECK(read(s.out_path("r.csv")) != read(s.out_path("u.csv")));  // the clock is used
    }
    SECTION("--clock logsnr is the name's clock=logsnr; a contradiction is refused") {
        const args_t vp = set(set(in.base(), "--grid", "t-power"), "--steps", "8");
        require_success(s.run(add(set(set(vp, "--method", "tab3+data+corrector"), "--out", s.out_path("f.csv")),
                                  {"--clock", "logsnr"})),
                        8);
        require_success(s.run(set(set(vp, "--method", "tab3+data+clock=logsnr+corrector"), "--out", s.out_path("n.csv"))),
                        8);
        require_success(s.run(set(set(vp, "--method", "tab3+data+corrector"), "--out", s.out_path("t.csv"))), 8);
        CHECK(read(s.out_path("f.csv")) == read(s.out_path("n.csv")));
        CHECK(read(s.out_path("f.csv")) != read(s.out_path("t.csv")));  // the clock is used
        const cli_result r =
            s.run(add(set(set(vp, "--method", "tab3+clock=vp"), "--out", s.out_path("c.csv")), {"--clock", "logsnr"}));
        CHECK(r.code == exit_usage);
        CHECK(r.err.find("--clock logsnr contradicts --method tab3+clock=vp") != std::string::npos);
        CHECK_FALSE(fs::exists(s.out_path("c.csv")));
    }
    SECTION("--clock needs --method tab") {
        for (const char* m : {"rhoab", "ddim", "recommended"}) {
            const cli_result r = s.run(add(set(b, "--method", m), {"--clock", "vp"}));
            CHECK(r.code == exit_usage);
            CHECK(count_lines(r.err) == 1);
            CHECK(r.err.find("--clock") != std::string::npos);
            CHECK(s.out_files().empty());
        }
    }
    SECTION("--order is rejected") {
        const cli_result r = s.run(add(b, {"--order", "2"}));
        CHECK(r.code == exit_usage);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find("--order") != std::string::npos);
        CHECK(s.out_files().empty());
    }
}

#endif  // DEIS_SAMPLE_EXE
