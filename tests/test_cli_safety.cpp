// deis-sample never loses data. Each test names a defect found in the program and fails on
// the program before its fix:
//   1  --save-grid (or --out) written over an input; --out and --save-grid on one file
//   2  an output renamed over a directory, FIFO, socket, device or symbolic link
//   3  the fixed temporary <out>.tmp, which replaced a file of that name (or wrote through a
//      link of that name), and which two runs on one --out shared
//   5  a FIFO or /dev/zero as an input (the program hung, deaf to signals); files read whole
//      before any size check
//   6  --save-grid written before the run, not atomically and unchecked
//   7  integers read as octal or hexadecimal (--steps 010 ran 8 steps), --strength nan taken
//      as "not given", --t-end 1e-400 read as 0
// and the helper that writes every output (examples/support/atomic_file.hpp).
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support/atomic_file.hpp"

namespace cli_safety_test {

namespace fs = std::filesystem;

// The names in `dir`, sorted.
inline std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
}

inline std::string bytes_of(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A fresh directory under the system's temporary directory, removed at the end.
struct temp_dir {
    fs::path path = fs::temp_directory_path() / ("deis-safety-" + std::to_string(::getpid()));
    temp_dir() {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

}  // namespace cli_safety_test

TEST_CASE("atomic_write: a failed or stopped write leaves the target as it was, and no temporary", "[safety]") {
    namespace fs = std::filesystem;
    using cli_safety_test::bytes_of;
    using cli_safety_test::names_in;
    const cli_safety_test::temp_dir dir;
    const std::string target = (dir.path / "t.txt").string();
    std::ofstream(target) << "old\n";
    const auto write_new = [](std::ostream& out) {
        out << "new\n";
        return true;
    };
    SECTION("a writer that throws") {
        CHECK_THROWS_WITH(deis_tools::atomic_write(target,
                                                   [](std::ostream& out) -> bool {
                                                       out << "new\n";
                                                       throw std::runtime_error("failed");
                                                   }),
                          "failed");
    }
    SECTION("a writer that stops") {
        CHECK_FALSE(deis_tools::atomic_write(target, [](std::ostream& out) { return !(out << "new\n"); }));
    }
    SECTION("a stop before the rename") {
        CHECK_FALSE(deis_tools::atomic_write(target, write_new, [] { return true; }));
    }
    SECTION("a target that has become a symbolic link is not replaced") {
        deis_tools::atomic_file f(target);
        f.stream() << "new\n";
        fs::rename(target, dir.path / "moved.txt");
        fs::create_symlink("moved.txt", target);
        CHECK_THROWS_WITH(f.commit(), Catch::Contains("is a symbolic link: refusing to replace it"));
        fs::remove(target);
        fs::rename(dir.path / "moved.txt", target);
    }
    CHECK(bytes_of(target) == "old\n");
    CHECK(names_in(dir.path) == std::vector<std::string>{"t.txt"});
}

TEST_CASE("atomic_write: the temporary is a new file beside the target, renamed onto it", "[safety]") {
    using cli_safety_test::names_in;
    const cli_safety_test::temp_dir dir;
    const std::string target = (dir.path / "t.txt").string();
    std::ofstream(dir.path / "t.txt.tmp") << "a file of the user's\n";
    std::vector<std::string> during;
    CHECK(deis_tools::atomic_write(target, [&](std::ostream& out) {
        during = names_in(dir.path);
        return bool(out << "new\n");
    }));
    REQUIRE(during.size() == 2);  // .t.txt.XXXXXX and t.txt.tmp
    CHECK(during[0].rfind(".t.txt.", 0) == 0);
    CHECK(during[0].size() == std::string(".t.txt.XXXXXX").size());
    CHECK(cli_safety_test::bytes_of(target) == "new\n");
    CHECK(cli_safety_test::bytes_of(dir.path / "t.txt.tmp") == "a file of the user's\n");
    CHECK(names_in(dir.path) == std::vector<std::string>{"t.txt", "t.txt.tmp"});
}

// DEIS_SAMPLE_EXE (the program's path) is defined by tests/CMakeLists.txt only when the
// examples are built; without it the program's tests are left out.
#ifdef DEIS_SAMPLE_EXE

#include "cli_support.hpp"

namespace cli_safety_test {

using deis_cli_test::args_t;

// Every kind of input file of a run, in the scratch directory, and for each a command line
// (4 steps) that reads it.
struct all_inputs {
    deis_cli_test::inputs in;  // mix.csv, mix.json, noise.csv
    std::string init, config, grid;

    explicit all_inputs(const deis_cli_test::scratch& s) : in(s) {
        init = s.write("init.csv", bytes_of(in.noise));
        const std::string sd21 = deis_cli_test::reference("diffusers/configs/stable-diffusion-2-1.json");
        config = s.write("config.json", bytes_of(sd21));
        grid = s.write("grid.txt", "1\n0.5\n0.1\n0.01\n0.001\n");
    }

    struct input {
        std::string option, path;
        args_t args;
    };
    // the command line that reads `option`'s file
    args_t reading(const std::string& option) const {
        for (const input& i : each())
            if (i.option == option) return i.args;
        throw std::logic_error("no input " + option);
    }
    std::vector<input> each() const {
        using deis_cli_test::add;
        using deis_cli_test::drop;
        using deis_cli_test::set;
        const args_t b = in.base();
        return {
            {"--noise", in.noise, b},
            {"--mixture-csv", in.mix_csv, b},
            {"--mixture", in.mix_json, set(drop(b, "--mixture-csv"), "--mixture", in.mix_json)},
            {"--init", init, add(b, {"--init", init})},
            {"--scheduler-config", config, add(drop(drop(b, "--schedule"), "--grid"), {"--scheduler-config", config})},
            {"--grid-file", grid, add(drop(b, "--grid"), {"--grid-file", grid})},
        };
    }
};

// Makes a file system object of some kind at a path; false when it cannot here.
struct object_kind {
    const char* name;
    std::function<bool(const std::string&)> make;
};

inline bool make_socket(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return ::close(fd), false;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// The kinds an output must never replace; `target` is a regular file a link may point to.
inline std::vector<object_kind> not_regular_kinds(const std::string& target) {
    return {
        {"a directory", [](const std::string& p) { return fs::create_directory(p); }},
        {"a FIFO", [](const std::string& p) { return ::mkfifo(p.c_str(), 0600) == 0; }},
        {"a socket", make_socket},
        {"a character device",
         [](const std::string& p) { return ::mknod(p.c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0; }},
        {"a symbolic link", [target](const std::string& p) { return fs::create_symlink(target, p), true; }},
        {"a symbolic link", [](const std::string& p) { return fs::create_symlink("nowhere.csv", p), true; }},
    };
}

// A sparse file of `bytes` bytes (zeros).
inline std::string sparse_file(const deis_cli_test::scratch& s, const std::string& name, std::uintmax_t bytes) {
    const std::string p = s.write(name, "");
    fs::resize_file(p, bytes);
    return p;
}

}  // namespace cli_safety_test

TEST_CASE("deis-sample defect 1: no output is ever written over an input", "[cli][safety]") {
    using namespace deis_cli_test;
    scratch s;
    const cli_safety_test::all_inputs files(s);
    SECTION("each command line below runs") {
        for (const auto& i : files.each()) {
            INFO(i.option);
            require_success(s.run(i.args), 4);
        }
    }
    for (const auto& i : files.each()) {
        const std::string file = fs::path(i.path).filename().string();
        fs::create_symlink(file, s.dir() / ("link-" + file));
        fs::create_hard_link(i.path, s.dir() / ("hard-" + file));
        for (const char* output : {"--out", "--save-grid"}) {
            for (const std::string& name : {file, "./" + file, "link-" + file, "hard-" + file}) {
                DYNAMIC_SECTION(output << " " << name << " when " << i.option << " reads " << file) {
                    const auto before = snapshot(s.dir());
                    const cli_result r = s.run(set(i.args, output, name));
                    require_failure(r, exit_usage, {output + (" " + name), i.option, "refusing to overwrite an input"});
                    CHECK(snapshot(s.dir()) == before);
                }
            }
        }
    }
    SECTION("--out and --save-grid naming one file") {
        s.write("out/y.csv", "an earlier output\n");
        fs::create_hard_link(s.out_path("y.csv"), s.out_path("y-hard.csv"));
        fs::create_symlink("y.csv", s.out_path("y-link.csv"));
        const std::vector<std::pair<std::string, std::string>> pairs = {
            {s.out_path(), s.out_path()},
            {s.out_path(), (s.dir() / "out" / "." / "x0.csv").string()},
            {"out/x0.csv", s.out_path()},
            {s.out_path("y.csv"), s.out_path("y-hard.csv")},
            {s.out_path("y.csv"), s.out_path("y-link.csv")},
        };
        for (const auto& [out, grid] : pairs) {
            INFO("--out " << out << " --save-grid " << grid);
            const auto before = snapshot(s.dir());
            const cli_result r = s.run(add(set(files.in.base(), "--out", out), {"--save-grid", grid}));
            require_failure(r, exit_usage, {"--out " + out, "--save-grid " + grid, "the same file"});
            CHECK(snapshot(s.dir()) == before);
        }
    }
}

TEST_CASE("deis-sample defect 2: an output never replaces a directory, FIFO, socket, device or link", "[cli][safety]") {
    using namespace deis_cli_test;
    scratch s;
    const inputs in(s);
    const std::string target = s.write("target.csv", "the file a link points to\n");
    const auto kinds = cli_safety_test::not_regular_kinds(target);
    for (std::size_t k = 0; k < kinds.size(); ++k) {
        for (const char* output : {"--out", "--save-grid"}) {
            DYNAMIC_SECTION(output << " names " << kinds[k].name << " (" << k << ")") {
                const std::string path = s.out_path("object");
                if (!kinds[k].make(path)) {
                    WARN("cannot make " << kinds[k].name << " here: skipped");
                    return;
                }
                const auto before = snapshot(s.dir());
                const cli_result r = s.run(set(in.base(), output, path));
                require_failure(r, exit_write, {output + (" " + path), kinds[k].name, "refusing to replace it"});
                CHECK(snapshot(s.dir()) == before);
            }
        }
    }
}

TEST_CASE("deis-sample defect 3: the temporary is a new file of the run's own", "[cli][safety]") {
    using namespace deis_cli_test;
    scratch s;
    const inputs in(s);
    SECTION("files named like the old temporaries (<out>.tmp) are left alone") {
        const std::string precious = s.write("precious.txt", "keep me\n");
        s.write("out/x0.csv.tmp", "a file of the user's\n");
        fs::create_symlink(precious, s.out_path("g.txt.tmp"));
        fs::create_symlink(in.noise, s.out_path("y.csv.tmp"));  // was refused as an input
        const auto before = snapshot(s.dir());
        require_success(s.run(add(in.base(), {"--save-grid", s.out_path("g.txt")})), 4);
        require_success(s.run(set(in.base(), "--out", s.out_path("y.csv"))), 4);
        auto after = snapshot(s.dir());
        CHECK(after.erase("out/x0.csv") == 1);
        CHECK(after.erase("out/g.txt") == 1);
        CHECK(after.erase("out/y.csv") == 1);
        CHECK(after == before);  // nothing else changed, nothing left behind
    }
    SECTION("two runs on one --out: the one interrupted leaves the other's output whole") {
        // run A is stopped while it writes 200000 rows; run B writes the same --out meanwhile;
        // then A is interrupted. (With one temporary name A went on writing into B's file.)
        const args_t a = set(set(set(in.base(), "--noise", s.write("many.csv", noise_rows(200000))), "--steps", "1"),
                             "--method", "ddim");
        bool interrupted = false;
        for (int attempt = 0; attempt < 10 && !interrupted; ++attempt) {
            fs::remove(s.out_path());
            child run_a(a, s.dir());
            if (!stop_while_writing(run_a, s, "x0.csv")) {
                require_success(run_a.wait(), 1);
                continue;
            }
            require_success(s.run(in.base()), 4);
            const std::string written_by_b = slurp(s.out_path());
            run_a.signal(SIGINT);
            REQUIRE(::kill(run_a.pid(), SIGCONT) == 0);
            const cli_result r = run_a.wait();
            if (r.code == 0) continue;  // A had passed its last look at the signal: it replaced B's
            INFO("stderr: " << r.err);
            CHECK(r.code == exit_sigint);
            CHECK(slurp(s.out_path()) == written_by_b);
            CHECK(s.out_files() == std::vector<std::string>{"x0.csv"});
            interrupted = true;
        }
        REQUIRE(interrupted);
    }
}

TEST_CASE("deis-sample defect 5: a FIFO or /dev/zero as an input is refused at once", "[cli][safety]") {
    using namespace deis_cli_test;
    scratch s;
    const cli_safety_test::all_inputs files(s);
    const std::string fifo = s.path("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    for (const auto& i : files.each()) {
        for (const std::string& bad : {fifo, std::string("/dev/zero")}) {
            // (a section's name must not change between the runs of the test case)
            DYNAMIC_SECTION(i.option << (bad == fifo ? " a FIFO" : " /dev/zero")) {
                const auto t0 = std::chrono::steady_clock::now();
                const cli_result r = child(set(i.args, i.option, bad), s.dir().string()).wait(30.0);
                CHECK(since(t0) < 10.0);
                require_failure(r, exit_input, {bad, "not a regular file"});
                CHECK(s.out_files().empty());
            }
        }
    }
    SECTION("--grid-file and --scheduler-config beyond their limits are refused before they are read") {
        // sparse files of zeros: before the fix each was read whole (memory of its size or more)
        const std::string grid = cli_safety_test::sparse_file(s, "big-grid.txt", (std::uintmax_t(64) << 20) + 1);
        const std::string config = cli_safety_test::sparse_file(s, "big.json", (std::uintmax_t(16) << 20) + 1);
        const cli_result rg = s.run(set(files.reading("--grid-file"), "--grid-file", grid));
        require_failure(rg, exit_input, {"--grid-file " + grid, "longer than 67108864 bytes"});
        CHECK(rg.max_rss_kb < 32 * 1024);
        const cli_result rc = s.run(set(files.reading("--scheduler-config"), "--scheduler-config", config));
        require_failure(rc, exit_input, {"--scheduler-config " + config, "longer than 16777216 bytes"});
        CHECK(rc.max_rss_kb < 16 * 1024);
        CHECK(s.out_files().empty());
    }
}

TEST_CASE("deis-sample defect 6: --save-grid is written with the samples, at the end of a successful run",
          "[cli][safety]") {
    using namespace deis_cli_test;
    scratch s;
    const inputs in(s);
    const std::string grid = s.out_path("g.txt");
    const args_t b = add(in.base(), {"--save-grid", grid});
    SECTION("a successful run writes both") {
        require_success(s.run(b), 4);
        CHECK(count_lines(slurp(grid)) == 5);
        CHECK(cli_safety_test::names_in(s.dir() / "out") == std::vector<std::string>{"g.txt", "x0.csv"});
    }
    SECTION("a run that fails writes neither and leaves an earlier grid file as it was") {
        s.write("out/g.txt", "an earlier grid\n");
        const cli_result r = s.run(set(b, "--noise", s.write("huge.csv", "0,0\n1e300,0\n")));
        require_failure(r, exit_run, {"non-finite"});
        CHECK(s.out_files() == std::vector<std::string>{"g.txt"});
        CHECK(slurp(grid) == "an earlier grid\n");
    }
    SECTION("an interrupted run writes neither") {
        const std::string noise = s.write("many.csv", noise_rows(2000));
        child c(set(set(set(b, "--noise", noise), "--steps", "20000"), "--method", "ddim"), s.dir());
        c.wait_for_exec();
        c.wait_for_cpu(0.5);
        c.signal(SIGTERM);
        require_interrupted(c.wait(), signals[1], "(at step [0-9]+|during the set-up, before step 1) of 20000", s);
    }
    SECTION("a grid that cannot be written (file size limit, as a full disk): neither output") {
        // 1000 steps: the grid takes ~20 KB, the samples ~0.2 KB; 4 KiB lets the samples through
        s.write("out/x0.csv", "earlier samples\n");
        const cli_result r = run_with_file_size_limit(set(b, "--steps", "1000"), s.dir().string(), 4096);
        require_failure(r, exit_write, {"--save-grid " + grid});
        CHECK(s.out_files() == std::vector<std::string>{"x0.csv"});
        CHECK(slurp(s.out_path()) == "earlier samples\n");
    }
}

TEST_CASE("deis-sample defect 7: integers are decimal, floating values finite and normal", "[cli][safety]") {
    using namespace deis_cli_test;
    scratch s;
    const inputs in(s);
    const args_t b = in.base();
    SECTION("leading zeros are decimal") {
        require_success(s.run(set(set(b, "--steps", "010"), "--out", s.out_path("a.csv"))), 10);
        require_success(s.run(set(set(b, "--steps", "10"), "--out", s.out_path("b.csv"))), 10);
        CHECK(slurp(s.out_path("a.csv")) == slurp(s.out_path("b.csv")));
        require_success(s.run(add(set(b, "--out", s.out_path("c.csv")), {"--order", "02"})), 4);
        require_success(s.run(add(set(b, "--out", s.out_path("d.csv")), {"--order", "2"})), 4);
        CHECK(slurp(s.out_path("c.csv")) == slurp(s.out_path("d.csv")));
    }
    SECTION("other texts are refused, naming the option") {
        const args_t ddim = set(b, "--method", "ddim");
        const args_t list = drop(drop(b, "--grid"), "--steps");
        const std::vector<std::pair<args_t, std::vector<std::string>>> cases = {
            {set(b, "--steps", "0x10"), {"--steps = 0x10", "decimal integer"}},
            {set(b, "--steps", "0b11"), {"--steps = 0b11"}},
            {set(b, "--steps", "1e1"), {"--steps = 1e1"}},
            {add(b, {"--order", "0x2"}), {"--order = 0x2"}},
            {add(set(b, "--grid", "optimized"), {"--calibration-samples", "0x10"}), {"--calibration-samples = 0x10"}},
            {add(b, {"--init", in.noise, "--strength", "nan"}), {"--strength = nan", "finite"}},
            {add(b, {"--t-end", "1e-400"}), {"--t-end = 1e-400", "too small"}},
            {add(b, {"--t-end", "1e-310"}), {"--t-end = 1e-310", "too small"}},  // subnormal
            {add(b, {"--t-max", "1e400"}), {"--t-max = 1e400", "finite"}},
            {add(b, {"--beta-max", "0x10"}), {"--beta-max = 0x10", "not a decimal number"}},
            {add(b, {"--grid-power", "0x1p1"}), {"--grid-power = 0x1p1"}},
            {add(ddim, {"--eta", "NaN"}), {"--eta = NaN", "finite"}},
            {add(b, {"--init", in.noise, "--image-seq-len", "inf"}), {"--image-seq-len = inf", "finite"}},
            {add(list, {"--sigmas", "5,1e-400"}), {"--sigmas", "1e-400", "too small"}},
            {add(list, {"--sigmas", "5,0x1"}), {"--sigmas", "0x1"}},
        };
        for (const auto& [args, mentions] : cases) {
            INFO(join(args));
            require_failure(s.run(args), exit_usage, mentions);
            CHECK(s.out_files().empty());
        }
    }
}

TEST_CASE("deis-sample defect 4: a flag the --init/--invert/--print-grid run ignored is honoured", "[cli][safety]") {
    // Before: the run of --init, --invert, --print-grid and --scheduler-config was a copy of the
    // plain run that ignored these options (exit 0 with another schedule or grid than asked;
    // --schedule flow|edm ran VE); then it refused them. Now there is one run: each is honoured,
    // and --print-grid shows the grid that --save-grid writes (its times but the last, where no
    // network call is made) and changes no sample. tests/test_cli_matrix.cpp checks every
    // schedule against every such option.
    using namespace deis_cli_test;
    scratch s;
    inputs in(s);
    const std::string grid = s.write("grid.txt", "1\n0.5\n0.1\n0.01\n0.001\n");
    const args_t b = in.base();  // vp-linear, tab, t-power, 4 steps
    const std::string saved = (s.dir() / "g.txt").string();
    const std::vector<args_t> cases = {
        add(set(b, "--schedule", "flow"), {"--model-output", "velocity", "--predict", "data"}),
        set(b, "--schedule", "edm"),
        add(drop(b, "--grid"), {"--grid-file", grid}),
        add(drop(drop(b, "--grid"), "--steps"), {"--sigmas", "80,10,1,0.1,0.01"}),
        set(b, "--grid", "recommended"),
        add(b, {"--init", in.noise}),
    };
    for (const args_t& args : cases) {
        INFO(join(args));
        const cli_result plain = s.run(add(args, {"--save-grid", saved}));
        require_success(plain, 4);
        const std::string x = slurp(s.out_path());
        std::vector<double> g;
        {
            std::ifstream f(saved);
            for (double t; f >> t;) g.push_back(t);
        }
        REQUIRE(g.size() == 5);
        const cli_result shown = s.run(add(args, {"--print-grid"}));
        INFO("stderr: " << shown.err);
        REQUIRE(shown.code == 0);
        // one time a line, in the shortest form that reads back exactly, then the nfe line
        std::istringstream lines(shown.out);
        std::vector<double> times;
        std::string line;
        while (std::getline(lines, line) && line.rfind("nfe=", 0) != 0) times.push_back(std::stod(line));
        CHECK(line == "nfe=4");
        CHECK(times == std::vector<double>(g.begin(), g.end() - 1));
        CHECK(slurp(s.out_path()) == x);
    }
}

#endif  // DEIS_SAMPLE_EXE
