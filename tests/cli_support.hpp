// What the tests of the deis-sample program share (test_cli*.cpp): running it as a child
// process (fork/exec, stdout and stderr on pipes, its pid for signals, its exit status and
// peak memory), a scratch directory per test, snapshots of files to prove they are
// unchanged, and command-line helpers.
//
// Only for DEIS_SAMPLE_EXE builds (tests/CMakeLists.txt defines it with the examples).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/Core>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "support/csv_io.hpp"

namespace deis_cli_test {

namespace fs = std::filesystem;
using args_t = std::vector<std::string>;

// Exit codes documented in docs/deis-sample.md.
constexpr int exit_usage = 1, exit_input = 2, exit_run = 3, exit_write = 4;
constexpr int exit_sigint = 130, exit_sigterm = 143;

struct cli_result {
    int code = -1;    // exit status, or -1 when the program did not exit normally
    int signal = 0;   // the signal that ended it, when it did not exit
    long max_rss_kb = 0;  // its peak resident memory (getrusage's ru_maxrss)
    std::string out, err;
};

inline std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline std::string join(const args_t& a) {
    std::string s;
    for (const auto& x : a) s += (s.empty() ? "" : " ") + x;
    return s;
}

/// `n` points of a 2-D cloud in [-2, 2]^2 (a fixed pseudo-random sequence), one per row: the
/// noise of the long runs that the signal tests interrupt.
inline std::string noise_rows(int n) {
    std::ostringstream s;
    unsigned state = 12345;
    const auto next = [&] {
        state = state * 1103515245u + 12345u;
        return double((state >> 8) % 20001) / 5000.0 - 2.0;  // in [-2, 2]
    };
    for (int i = 0; i < n; ++i) s << next() << ',' << next() << '\n';
    return s.str();
}

/// deis-sample (or `program`) running as a child process, stdin from /dev/null, stdout and stderr on pipes.
class child {
public:
    explicit child(const args_t& args, const std::string& cwd = "", const std::string& program = DEIS_SAMPLE_EXE) {
        int out[2], err[2];
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        std::vector<std::string> words = {program};
        words.insert(words.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& w : words) argv.push_back(w.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            // the child: async-signal-safe calls only. Default dispositions and no blocked
            // signals, whatever the test runner set (both are inherited through exec).
            ::signal(SIGINT, SIG_DFL);
            ::signal(SIGTERM, SIG_DFL);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            const int in = ::open("/dev/null", O_RDONLY);
            if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0) ::_exit(126);
            if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        ::close(err[1]);
        out_fd_ = out[0];
        err_fd_ = err[0];
    }
    ~child() {
        if (pid_ > 0) {  // not waited for: a failed test; do not leave it running
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (out_fd_ >= 0) ::close(out_fd_);
        if (err_fd_ >= 0) ::close(err_fd_);
    }
    child(const child&) = delete;
    child& operator=(const child&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int sig) const { REQUIRE(::kill(pid_, sig) == 0); }

    /// CPU time the child has used so far (user + system), from /proc/<pid>/stat; -1 once
    /// it has exited.
    double cpu_seconds() const {
        const std::string stat = slurp("/proc/" + std::to_string(pid_) + "/stat");
        const auto close = stat.rfind(')');  // the command name, in parentheses, may hold spaces
        if (close == std::string::npos) return -1.0;
        std::istringstream rest(stat.substr(close + 2));
        std::string field;
        std::vector<std::string> f;  // f[0] is field 3 (state); utime, stime are fields 14, 15
        while (rest >> field) f.push_back(field);
        if (f.size() < 13 || f[0] == "Z") return -1.0;
        return double(std::stoll(f[11]) + std::stoll(f[12])) / double(::sysconf(_SC_CLK_TCK));
    }

    /// Waits until the child has used `seconds` of CPU (or has exited): a point well inside
    /// a long run, whatever else the machine is doing.
    void wait_for_cpu(double seconds) const {
        for (double cpu = 0.0; cpu >= 0.0 && cpu < seconds; cpu = cpu_seconds())
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    /// Waits until the program has replaced the forked test process (exec done).
    void wait_for_exec() const {
        const fs::path exe = "/proc/" + std::to_string(pid_) + "/exe";
        for (int i = 0; i < 5000; ++i) {
            std::error_code ec;
            if (fs::equivalent(fs::read_symlink(exe, ec), DEIS_SAMPLE_EXE, ec)) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        FAIL("the child did not start deis-sample");
    }

    /// Reads stdout and stderr to their end and waits for the exit; after `timeout_s`
    /// seconds the child is killed and the test fails.
    cli_result wait(double timeout_s = 240.0) {
        cli_result r;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
        std::string* sinks[2] = {&r.out, &r.err};
        int fds[2] = {out_fd_, err_fd_};
        while (fds[0] >= 0 || fds[1] >= 0) {
            pollfd p[2];
            for (int i = 0; i < 2; ++i) p[i] = {fds[i], POLLIN, 0};
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) FAIL("deis-sample did not finish within " << timeout_s << " s");
            const int n = ::poll(p, 2, int(left.count()));
            if (n < 0 && errno == EINTR) continue;
            REQUIRE(n >= 0);
            for (int i = 0; i < 2; ++i) {
                if (fds[i] < 0 || p[i].revents == 0) continue;
                char buf[4096];
                const ssize_t got = ::read(fds[i], buf, sizeof buf);
                if (got > 0) {
                    sinks[i]->append(buf, std::size_t(got));
                } else if (got == 0 || errno != EINTR) {
                    ::close(fds[i]);
                    fds[i] = -1;
                }
            }
        }
        out_fd_ = err_fd_ = -1;
        int status = 0;
        rusage usage{};
        REQUIRE(::wait4(pid_, &status, 0, &usage) == pid_);
        pid_ = -1;
        if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
        r.max_rss_kb = usage.ru_maxrss;
        return r;
    }

private:
    pid_t pid_ = -1;
    int out_fd_ = -1, err_fd_ = -1;
};

/// Runs deis-sample to its end.
inline cli_result run_program(const args_t& args, const std::string& cwd = "",
                              const std::string& program = DEIS_SAMPLE_EXE) {
    return child(args, cwd, program).wait();
}

/// Runs deis-sample to its end with a file size limit of `bytes` (RLIMIT_FSIZE) and SIGXFSZ
/// ignored: a write beyond the limit fails (EFBIG), as on a full disk. Both are set in this
/// process only while the child is forked, which inherits them.
inline cli_result run_with_file_size_limit(const args_t& args, const std::string& cwd, rlim_t bytes) {
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    struct sigaction ignore {}, previous {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    REQUIRE(::sigaction(SIGXFSZ, &ignore, &previous) == 0);
    rlimit low = old;
    low.rlim_cur = bytes;
    const bool limited = ::setrlimit(RLIMIT_FSIZE, &low) == 0;
    std::unique_ptr<child> c;
    std::string error;
    try {
        if (limited) c = std::make_unique<child>(args, cwd);
    } catch (const std::exception& e) {
        error = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::sigaction(SIGXFSZ, &previous, nullptr);
    REQUIRE(limited);
    REQUIRE(error.empty());
    return c->wait();
}

/// Every file under `dir` (recursively) with its bytes, symbolic links and other kinds by
/// what they are: equal snapshots mean nothing there was changed, added or removed.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        const std::string rel = fs::relative(e.path(), dir).string();
        if (e.is_symlink())
            files[rel] = "symlink to " + fs::read_symlink(e.path()).string();
        else if (e.is_regular_file())
            files[rel] = slurp(e.path());
        else if (e.is_directory())
            files[rel] = "directory";
        else
            files[rel] = "other";
    }
    return files;
}

/// The bytes of some files, to prove they are unchanged.
inline std::map<std::string, std::string> snapshot_files(const std::vector<std::string>& paths) {
    std::map<std::string, std::string> files;
    for (const auto& p : paths) files[p] = slurp(p);
    return files;
}

// A fresh scratch directory under the build tree (beside the program), one per test run
// (ctest runs test cases in parallel processes), removed at the end. Inputs are written in
// it; outputs go to its subdirectory out/, which a failed run must leave empty.
class scratch {
public:
    scratch() {
        static std::atomic<int> counter{0};
        dir_ = fs::path(DEIS_SAMPLE_EXE).parent_path() / "cli-test" /
               (std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "out");
    }
    ~scratch() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;

    const fs::path& dir() const { return dir_; }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    std::string out_path(const std::string& name = "x0.csv") const { return (dir_ / "out" / name).string(); }

    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(dir_ / name, std::ios::binary) << text;
        return path(name);
    }

    std::vector<std::string> out_files() const {
        std::vector<std::string> v;
        for (const auto& e : fs::directory_iterator(dir_ / "out")) v.push_back(e.path().filename().string());
        return v;
    }

    cli_result run(const args_t& args) const { return run_program(args, dir_.string()); }

private:
    fs::path dir_;
};

/// Stops the program (SIGSTOP) as soon as a file other than `final_name` appears in the
/// scratch's out/: its temporary, so it is writing its output. Returns true when the program
/// is stopped before `final_name` is in place; false (the program continued) when it had
/// finished already, so that the caller can try again.
inline bool stop_while_writing(const child& c, const scratch& s, const std::string& final_name) {
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
        bool writing = false;
        std::error_code ec;
        for (fs::directory_iterator e(s.dir() / "out", ec), end; !ec && e != end; e.increment(ec))
            writing = writing || e->path().filename() != final_name;
        if (writing || fs::exists(s.dir() / "out" / final_name)) break;
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > 60.0)
            FAIL("deis-sample wrote nothing within 60 s");
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    REQUIRE(::kill(c.pid(), SIGSTOP) == 0);
    // stopped: state T in /proc/<pid>/stat (at once, unless it is inside a system call, which
    // it leaves stopped)
    for (int i = 0; i < 10000; ++i) {
        const std::string stat = slurp("/proc/" + std::to_string(c.pid()) + "/stat");
        const auto close = stat.rfind(')');
        if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'T') break;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (!fs::exists(s.dir() / "out" / final_name)) return true;
    REQUIRE(::kill(c.pid(), SIGCONT) == 0);
    return false;
}

// args with option `opt` set to `value` (replaced if present, appended if not).
inline args_t set(args_t a, const std::string& opt, const std::string& value) {
    for (std::size_t i = 0; i + 1 < a.size(); ++i)
        if (a[i] == opt) {
            a[i + 1] = value;
            return a;
        }
    a.push_back(opt);
    a.push_back(value);
    return a;
}

// args without option `opt` (and its value).
inline args_t drop(args_t a, const std::string& opt) {
    for (std::size_t i = 0; i + 1 < a.size(); ++i)
        if (a[i] == opt) {
            a.erase(a.begin() + long(i), a.begin() + long(i) + 2);
            break;
        }
    return a;
}

// The value given to option `opt` in args ("" when absent).
inline std::string value_of(const args_t& a, const std::string& opt) {
    for (std::size_t i = 0; i + 1 < a.size(); ++i)
        if (a[i] == opt) return a[i + 1];
    return "";
}

inline args_t add(args_t a, const args_t& more) {
    a.insert(a.end(), more.begin(), more.end());
    return a;
}

inline std::size_t count_lines(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

inline std::string reference(const std::string& name) { return std::string(DEIS_REFERENCE_DIR) + "/" + name; }

// The reference mixture and x_T, vp-linear, quadratic grid, 10 steps (method to be added).
inline args_t reference_run_args() {
    return {"--mixture-csv", reference("gmm2d_components.csv"), "--noise", reference("gmm2d_xT.csv"),
            "--schedule", "vp-linear", "--grid", "t-power", "--steps", "10"};
}

// Samples as written by the program (one per row) or in the reference data.
inline Eigen::MatrixXd read(const std::string& path) { return deis_tools::read_samples(path); }

// A successful run: exit 0, "nfe=<count>\n" and nothing else on stdout, nothing on stderr.
inline void require_success(const cli_result& r, int nfe) {
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out == "nfe=" + std::to_string(nfe) + "\n");
    CHECK(r.err.empty());
}

// A failed run: the exit code, nothing on stdout, exactly one line on stderr (ending in a
// newline) that names everything in `mentions`.
inline void require_failure(const cli_result& r, int code, const std::vector<std::string>& mentions) {
    INFO("stderr: " << r.err);
    CHECK(r.code == code);
    CHECK(r.out.empty());
    CHECK(count_lines(r.err) == 1);
    CHECK((!r.err.empty() && r.err.back() == '\n'));
    for (const auto& m : mentions) {
        INFO("must mention: " << m);
        CHECK(r.err.find(m) != std::string::npos);
    }
}

/// A signal a test sends, with its name and the exit code it must give (128 + signal).
struct signal_case {
    int signal;
    const char* name;
    int code;
};

inline const signal_case signals[] = {{SIGINT, "SIGINT", exit_sigint}, {SIGTERM, "SIGTERM", exit_sigterm}};

/// The elapsed seconds since t0.
inline double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// What every interrupted run must show: the exit code, nothing on stdout, one line on stderr
// of the form `pattern` (a regular expression), nothing in out/.
inline void require_interrupted(const cli_result& r, const signal_case& sc, const std::string& pattern,
                                const scratch& s) {
    INFO("stderr: " << r.err);
    CHECK(r.signal == 0);  // it exited, it was not killed
    CHECK(r.code == sc.code);
    CHECK(r.out.empty());
    CHECK(count_lines(r.err) == 1);
    CHECK(std::regex_match(r.err, std::regex("deis-sample: interrupted by " + std::string(sc.name) + " " + pattern +
                                             "; no output written\n")));
    CHECK(s.out_files().empty());  // no output, no temporary
}

// The valid inputs the bad-input cases start from: a 2-D mixture of two components and
// five points.
struct inputs {
    const scratch& s;
    std::string mix_csv, mix_json, noise;

    explicit inputs(const scratch& sc) : s(sc) {
        mix_csv = s.write("mix.csv", "mu0,mu1,std0,std1,weight\n-1,0,0.5,0.5,0.5\n1,0.5,0.4,0.6,0.5\n");
        mix_json = s.write("mix.json", R"({"weights": [0.5, 0.5], "means": [[-1, 0], [1, 0.5]],
                                          "stds": [[0.5, 0.5], [0.4, 0.6]]})");
        noise = s.write("noise.csv", "0.1,-0.2\n1.5,0.3\n-0.7,-1.1\n2.2,1.9\n-0.05,0.8\n");
    }

    args_t base() const {
        return {"--mixture-csv", mix_csv,    "--noise", noise,    "--out",   s.out_path(), "--schedule",
                "vp-linear",     "--method", "tab",     "--grid", "t-power", "--steps",    "4"};
    }
};

}  // namespace deis_cli_test
