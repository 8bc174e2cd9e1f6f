// deis-sample has one run path: every schedule (vp-linear, vp-cosine, ve, edm, flow, and a
// --scheduler-config) crossed with every option that changes the grid or the start of the
// run (--print-grid, --init/--strength, --invert, --grid-file, --sigmas, --grid recommended,
// --grid optimized, --flow-shift, --save-grid, and the display flags). In each cell the run
// either succeeds and the option takes effect, checked against an outcome predicted
// independently (the library's own grid for the same options, the samples of the same run
// with the grid given as a file, the data recovered after an inversion), or it is refused with
// exit code 1 and one line naming the option. Test cases: "deis-sample matrix: <schedule> x
// <option>".
//
// The problem: one Gaussian in 2-D, 4 samples, 8 steps (20 and 40 for the inversions): each
// run takes a few milliseconds.
//
// Only for DEIS_SAMPLE_EXE builds (tests/CMakeLists.txt defines it with the examples).
#ifdef DEIS_SAMPLE_EXE

#include <Eigen/Core>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"
#include "deis/deis.hpp"
#include "deis/diffusers.hpp"

namespace cli_matrix_test {

using deis_cli_test::add;
using deis_cli_test::args_t;
using deis_cli_test::cli_result;
using deis_cli_test::drop;
using deis_cli_test::scratch;
using deis_cli_test::set;

constexpr int steps = 8;

// The library's schedule of a row, for the predicted grids.
using schedule_t =
    std::variant<deis::vp_linear, deis::vp_cosine, deis::ve, deis::edm, deis::flow_matching, deis::vp_discrete>;

// One row of the matrix: the options of a plain run (without --steps), and what the library
// needs to predict its grids.
struct row {
    std::string name;
    args_t args;            // schedule, model output, solver, grid (none for a config: its own)
    schedule_t schedule;    // the same schedule in the library
    double t_max, t_end;    // the ends a grid made from --t-max / --t-end has
    bool config = false;    // --scheduler-config: the plain run's grid is the config's own
    bool flow = false;      // flow matching: --flow-shift applies
};

inline std::string config_path(const std::string& model) {
    return deis_cli_test::reference("diffusers/configs/" + model + ".json");
}

inline schedule_t config_schedule(const std::string& model) {
    const deis::scheduler_config c = deis::load_scheduler_config(config_path(model));
    return std::visit([](const auto& s) { return schedule_t(s); }, c.schedule);
}

// The rows. Each solver suits its schedule (data prediction where the run starts at pure noise
// or on EDM's wide range); the grids are the usual ones for each.
inline row schedule_row(const std::string& name) {
    if (name == "vp-linear")
        return {name, {"--schedule", "vp-linear", "--method", "tab", "--grid", "t-power"}, deis::vp_linear(), 1.0, 1e-3};
    if (name == "vp-cosine")
        return {name,   {"--schedule", "vp-cosine", "--method", "tab", "--grid", "t-power"},
                deis::vp_cosine(0.008, 0.9946), 0.9946, 1e-3};
    if (name == "ve")
        return {name, {"--schedule", "ve", "--method", "tab", "--grid", "log-rho"}, deis::ve(0.01, 50.0), 1.0, 1e-3};
    if (name == "edm")
        return {name, {"--schedule", "edm", "--method", "tab", "--predict", "data", "--grid", "log-rho"},
                deis::edm(80.0), 80.0, 0.002};
    if (name == "flow")
        return {name,
                {"--schedule", "flow", "--model-output", "velocity", "--method", "tab", "--predict", "data", "--grid",
                 "t-power"},
                deis::flow_matching(), 1.0, 1e-3, false, true};
    // SD 2.1: a discrete (vp) schedule, v prediction, its own "leading" grid
    return {name, {"--scheduler-config", config_path("stable-diffusion-2-1"), "--method", "tab"},
            config_schedule("stable-diffusion-2-1"), 1.0, 1e-3, true, false};
}

// The inputs: a Gaussian, its noise, its data.
struct files {
    const scratch& s;
    std::string mix, noise, data;
    Eigen::MatrixXd data_m;
    explicit files(const scratch& sc) : s(sc) {
        mix = s.write("gauss.json", R"({"weights": [1], "means": [[0.5, -1.0]], "stds": [[0.3, 0.8]]})");
        noise = s.write("noise.csv", "0.3,-0.4\n-1.2,0.9\n0.8,0.1\n1.5,-1.7\n");
        data = s.write("data.csv", "0.6,-1.5\n0.2,-0.2\n0.9,-1.1\n0.4,-2.0\n");
        data_m = deis_cli_test::read(data);
    }
    // the plain run of a row: noise to --out `out`
    args_t run(const row& r, const std::string& out, int n = steps) const {
        return add({"--mixture", mix, "--noise", noise, "--out", s.out_path(out), "--steps", std::to_string(n)},
                   r.args);
    }
};

// A successful run: exit 0, nothing on stderr (with --progress: its lines only), stdout ends in
// the nfe line; returns the lines before it (--print-grid's).
inline std::vector<std::string> succeed(const cli_result& r, bool progress = false) {
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    if (progress) {
        std::istringstream es(r.err);
        for (std::string line; std::getline(es, line);)
            CHECK((line.rfind("deis-sample: ", 0) == 0 && line.find("% (") != std::string::npos));
    } else {
        REQUIRE(r.err.empty());
    }
    std::vector<std::string> lines;
    std::istringstream is(r.out);
    for (std::string line; std::getline(is, line);) lines.push_back(line);
    REQUIRE(!lines.empty());
    REQUIRE(lines.back().rfind("nfe=", 0) == 0);
    lines.pop_back();
    return lines;
}

inline cli_result run(const scratch& s, const args_t& a) {
    INFO("deis-sample " << deis_cli_test::join(a));
    return s.run(a);
}

inline std::vector<double> read_grid(const std::string& path) {
    std::ifstream f(path);
    std::vector<double> g;
    for (double t; f >> t;) g.push_back(t);
    return g;
}

inline std::string grid_text(const std::vector<double>& g) {
    std::ostringstream os;
    os.precision(17);
    for (double t : g) os << t << '\n';
    return os.str();
}

// The first number of each --print-grid line (the time t; a discrete config adds tau).
inline std::vector<double> printed_times(const std::vector<std::string>& lines) {
    std::vector<double> v;
    for (const std::string& l : lines) v.push_back(std::stod(l.substr(0, l.find(' '))));
    return v;
}

// A refusal: exit 1, one line naming each of `mentions`, no output (out/ unchanged).
inline void refused(const scratch& s, const args_t& a, const std::vector<std::string>& mentions) {
    INFO("deis-sample " << deis_cli_test::join(a));
    const auto before = deis_cli_test::snapshot(s.dir());
    deis_cli_test::require_failure(s.run(a), deis_cli_test::exit_usage, mentions);
    CHECK(deis_cli_test::snapshot(s.dir()) == before);
}

// The grid of a plain run, as --save-grid writes it.
inline std::vector<double> plain_grid(const scratch& s, const files& in, const row& r) {
    succeed(run(s, add(in.run(r, "plain.csv"), {"--save-grid", s.path("plain-grid.txt")})));
    return read_grid(s.path("plain-grid.txt"));
}

inline double max_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) { return (a - b).cwiseAbs().maxCoeff(); }

// ---- the columns --------------------------------------------------------------------------

// --print-grid prints one line per network call, the times of the grid the run samples on
// (the grid --save-grid writes, without its last time: no call there), and changes no sample.
inline void print_grid(const row& r) {
    scratch s;
    files in(s);
    const std::vector<double> g = plain_grid(s, in, r);
    REQUIRE(g.size() == std::size_t(steps) + 1);
    const std::vector<std::string> lines = succeed(run(s, add(in.run(r, "shown.csv"), {"--print-grid"})));
    const std::vector<double> t = printed_times(lines);
    REQUIRE(t.size() == std::size_t(steps));
    for (std::size_t i = 0; i < t.size(); ++i) CHECK(t[i] == g[i]);
    for (const std::string& l : lines) CHECK(std::count(l.begin(), l.end(), ' ') == (r.config ? 1 : 0));
    CHECK(deis_cli_test::slurp(s.out_path("shown.csv")) == deis_cli_test::slurp(s.out_path("plain.csv")));
}

// --progress and --print-grid change no sample, of a deterministic run or of a stochastic one
// (--sde: the noise drawn by --seed).
inline void display_flags(const row& r) {
    scratch s;
    files in(s);
    succeed(run(s, in.run(r, "plain.csv")));
    succeed(run(s, add(in.run(r, "shown.csv"), {"--print-grid", "--progress"})), true);
    CHECK(deis_cli_test::slurp(s.out_path("shown.csv")) == deis_cli_test::slurp(s.out_path("plain.csv")));
    const args_t sde = add(set(set(set(in.run(r, "sde.csv"), "--method", "tab"), "--predict", "data"), "--order", "1"),
                           {"--sde", "--seed", "5"});
    succeed(run(s, sde));
    succeed(run(s, add(set(sde, "--out", s.out_path("sde-shown.csv")), {"--print-grid", "--progress"})), true);
    CHECK(deis_cli_test::slurp(s.out_path("sde-shown.csv")) == deis_cli_test::slurp(s.out_path("sde.csv")));
}

// --init/--strength: img2img runs the tail of the same grid that the strength keeps (diffusers'
// rules: int(N S) steps kept; on flow matching int(N - N S) skipped, here the same 4 of 8),
// from the data noised to its first time.
inline void img2img(const row& r) {
    scratch s;
    files in(s);
    const std::vector<double> g = plain_grid(s, in, r);
    const args_t a = add(in.run(r, "img.csv"), {"--init", in.data, "--strength", "0.5", "--print-grid"});
    const std::vector<double> t = printed_times(succeed(run(s, a)));
    REQUIRE(t.size() == std::size_t(steps / 2));
    for (std::size_t i = 0; i < t.size(); ++i) CHECK(t[i] == g[steps / 2 + i]);
    CHECK(max_diff(deis_cli_test::read(s.out_path("img.csv")), deis_cli_test::read(s.out_path("plain.csv"))) > 1e-3);
    // strength 1 starts at t_max from the data noised there: a different start than the noise
    // except where alpha(t_max) = 0 (flow matching at t = 1: pure noise)
    succeed(run(s, add(in.run(r, "img1.csv"), {"--init", in.data, "--strength", "1"})));
    const double d1 = max_diff(deis_cli_test::read(s.out_path("img1.csv")), deis_cli_test::read(s.out_path("plain.csv")));
    if (r.flow)
        CHECK(d1 == 0.0);
    else
        CHECK(d1 > 0.0);
}

// --invert, then sampling that noise back with the same options, returns the data. The
// tolerance: the round trip is two runs of the same solver on the same grid, so its error is
// discretisation error, which must shrink as the grid is refined: at least halve from 20 to
// 40 steps (all of these solvers are of order >= 1; a wrong schedule or grid, as in the
// reported flow inversion that missed by 21.5, does not converge at all), and at 40 steps lie
// below 0.05, a sixth of the data's smallest standard deviation (0.3). (Measured at 32 steps:
// from 6e-4 (edm) to 0.04 (SD 2.1's own grid, whose first inversion step is short and the
// next ones long, as test_cli_diffusers.cpp notes).)
inline void invert(const row& r) {
    scratch s;
    files in(s);
    std::vector<double> errs;
    // the config row's tAB3 in noise prediction is refused going up its grid at 20 steps (the
    // library's Gaussian probe, test_inversion.cpp): it inverts with data prediction
    const args_t data = r.config ? args_t{"--predict", "data"} : args_t{};
    for (int n : {20, 40}) {
        const args_t inv = add(drop(in.run(r, "latent.csv", n), "--noise"), data);
        succeed(run(s, add(inv, {"--init", in.data, "--invert"})));
        const args_t back = add(set(in.run(r, "back.csv", n), "--noise", s.out_path("latent.csv")), data);
        succeed(run(s, back));
        errs.push_back(max_diff(deis_cli_test::read(s.out_path("back.csv")), in.data_m));
        // the inversion went somewhere else than the data
        CHECK(max_diff(deis_cli_test::read(s.out_path("latent.csv")), in.data_m) > 0.1);
    }
    INFO(r.name << ": round trip error " << errs[0] << " at 20 steps, " << errs[1] << " at 40");
    CHECK(errs[1] < errs[0] / 2.0);
    CHECK(errs[1] < 0.05);
}

// --grid-file: the grid --save-grid wrote gives the same samples bit for bit (17 digits read
// back exactly), with --init and with --invert as well; a grid with one interior time moved
// gives other samples.
inline void grid_file(const row& r) {
    scratch s;
    files in(s);
    std::vector<double> g = plain_grid(s, in, r);
    const std::string file = s.write("grid.txt", grid_text(g));
    const auto from_file = [&](const args_t& a) {
        const args_t without = r.config ? a : drop(a, "--grid");
        return add(without, {"--grid-file", file});
    };
    succeed(run(s, from_file(in.run(r, "file.csv"))));
    CHECK(deis_cli_test::slurp(s.out_path("file.csv")) == deis_cli_test::slurp(s.out_path("plain.csv")));
    // img2img and inversion read the same file
    const args_t img = {"--init", in.data, "--strength", "0.5"};
    succeed(run(s, add(in.run(r, "img.csv"), img)));
    succeed(run(s, add(from_file(in.run(r, "img-file.csv")), img)));
    CHECK(deis_cli_test::slurp(s.out_path("img-file.csv")) == deis_cli_test::slurp(s.out_path("img.csv")));
    // (with DDIM: tAB3 going up these 8-step grids is refused, test_inversion.cpp)
    const args_t inv = {"--init", in.data, "--invert"};
    succeed(run(s, add(set(drop(in.run(r, "inv.csv"), "--noise"), "--method", "ddim"), inv)));
    succeed(run(s, add(set(drop(from_file(in.run(r, "inv-file.csv")), "--noise"), "--method", "ddim"), inv)));
    CHECK(deis_cli_test::slurp(s.out_path("inv-file.csv")) == deis_cli_test::slurp(s.out_path("inv.csv")));
    // another grid: other samples
    g[3] = 0.5 * (g[3] + g[4]);
    s.write("grid.txt", grid_text(g));
    succeed(run(s, from_file(in.run(r, "moved.csv"))));
    CHECK(max_diff(deis_cli_test::read(s.out_path("moved.csv")), deis_cli_test::read(s.out_path("plain.csv"))) > 0.0);
    // the ends are the file's: --t-max with it is refused
    refused(s, add(from_file(in.run(r, "x.csv")), {"--t-max", "0.9"}), {"--t-max", "--grid-file"});
}

// --sigmas LIST: the grid is the library's sigma_grid of the levels on the row's schedule
// (with --save-grid written), and the samples differ from the plain run's.
inline void sigmas(const row& r) {
    scratch s;
    files in(s);
    succeed(run(s, in.run(r, "plain.csv")));
    const std::vector<double> levels = {10.0, 3.0, 1.0, 0.3, 0.1};
    const args_t a = add(drop(drop(in.run(r, "sig.csv"), "--grid"), "--steps"),
                         {"--sigmas", "10,3,1,0.3,0.1", "--save-grid", s.path("sig-grid.txt")});
    succeed(run(s, a));
    const std::vector<double> expected =
        std::visit([&](const auto& sch) { return deis::sigma_grid(sch, levels); }, r.schedule);
    CHECK(read_grid(s.path("sig-grid.txt")) == expected);
    CHECK(max_diff(deis_cli_test::read(s.out_path("sig.csv")), deis_cli_test::read(s.out_path("plain.csv"))) > 1e-3);
}

// --grid recommended: deis::recommended_grid from t_max to t_end.
inline void grid_recommended(const row& r) {
    scratch s;
    files in(s);
    const std::vector<double> plain = plain_grid(s, in, r);
    succeed(run(s, add(set(in.run(r, "rec.csv"), "--grid", "recommended"), {"--save-grid", s.path("rec.txt")})));
    const std::vector<double> expected =
        std::visit([&](const auto& sch) { return deis::recommended_grid(sch, steps, r.t_max, r.t_end); }, r.schedule);
    CHECK(read_grid(s.path("rec.txt")) == expected);
    // other samples, except where the recommended grid is the plain one (flow at 8 steps: the
    // quadratic grid of --grid t-power), whose samples it must then give bit for bit
    const double d = max_diff(deis_cli_test::read(s.out_path("rec.csv")), deis_cli_test::read(s.out_path("plain.csv")));
    if (expected == plain)
        CHECK(d == 0.0);
    else
        CHECK(d > 0.0);
}

// --grid optimized (a small calibration batch): the recommended grid's ends, its interior
// calibrated; the same seed gives the same grid, which --grid-file reuses to the same samples.
inline void grid_optimized(const row& r) {
    scratch s;
    files in(s);
    const int n = 5;
    const args_t a = add(set(in.run(r, "opt.csv", n), "--grid", "optimized"),
                         {"--calibration-samples", "16", "--seed", "3", "--save-grid", s.path("opt.txt")});
    succeed(run(s, a));
    const std::vector<double> g = read_grid(s.path("opt.txt"));
    const std::vector<double> rec =
        std::visit([&](const auto& sch) { return deis::recommended_grid(sch, n, r.t_max, r.t_end); }, r.schedule);
    REQUIRE(g.size() == rec.size());
    CHECK(g.front() == rec.front());
    CHECK(g.back() == rec.back());
    CHECK(g != rec);  // calibrated: the 2-D Gaussian is no schedule's average problem
    succeed(run(s, add(drop(set(in.run(r, "reuse.csv", n), "--grid", "x"), "--grid"), {"--grid-file", s.path("opt.txt")})));
    CHECK(deis_cli_test::slurp(s.out_path("reuse.csv")) == deis_cli_test::slurp(s.out_path("opt.csv")));
}

// --flow-shift: honoured on flow matching (the grid is deis::shifted_grid), refused on every
// other schedule, naming it and the schedule.
inline void flow_shift(const row& r) {
    scratch s;
    files in(s);
    const args_t a = add(in.run(r, "shift.csv"), {"--flow-shift", "3", "--save-grid", s.path("shift.txt")});
    if (!r.flow) {
        refused(s, r.config ? add(a, {"--grid", "t-power"}) : a,
                {"--flow-shift", r.config ? "--scheduler-config" : "--schedule"});
        return;
    }
    succeed(run(s, in.run(r, "plain.csv")));
    succeed(run(s, a));
    CHECK(read_grid(s.path("shift.txt")) ==
          deis::shifted_grid(deis::flow_matching(), deis::grid_kind::power_t, steps, 1.0, 1e-3, 2.0, 3.0));
    CHECK(max_diff(deis_cli_test::read(s.out_path("shift.csv")), deis_cli_test::read(s.out_path("plain.csv"))) > 1e-3);
    // it shifts the points of --grid NAME: not a grid from a file or the recommended one
    refused(s, set(a, "--grid", "recommended"), {"--flow-shift", "--grid recommended"});
}

// --save-grid writes the grid the run uses, N + 1 times, t_max first: the library's grid for
// the same options (the config's own for a config), also with --init (the whole grid, whose
// tail the strength chose) and --invert (the grid run upwards, written t_max first).
inline void save_grid(const row& r) {
    scratch s;
    files in(s);
    const std::vector<double> expected = std::visit(
        [&](const auto& sch) -> std::vector<double> {
            if (r.config) return deis::load_scheduler_config(config_path("stable-diffusion-2-1")).grid(steps);
            const std::string kind = deis_cli_test::value_of(r.args, "--grid");
            const deis::grid_kind k = kind == "t-power"   ? deis::grid_kind::power_t
                                      : kind == "log-rho" ? deis::grid_kind::log_rho
                                                          : deis::grid_kind::power_rho;
            return deis::make_grid(sch, k, steps, r.t_max, r.t_end, 2.0);
        },
        r.schedule);
    CHECK(plain_grid(s, in, r) == expected);
    succeed(run(s, add(in.run(r, "img.csv"), {"--init", in.data, "--strength", "0.5", "--save-grid", s.path("img.txt")})));
    CHECK(read_grid(s.path("img.txt")) == expected);
    // (with DDIM: tAB3 going up these 8-step grids is refused, test_inversion.cpp)
    succeed(run(s, add(set(drop(in.run(r, "inv.csv"), "--noise"), "--method", "ddim"),
                       {"--init", in.data, "--invert", "--save-grid", s.path("inv.txt")})));
    CHECK(read_grid(s.path("inv.txt")) == expected);
}

// A flow-matching config (SD3): img2img keeps the tail of its own grid by the flow rule,
// --flow-shift shifts an explicit --grid, an inversion on an explicit grid that stops short of
// t = 1 returns the data, and on its own grid (t = 1 to sigma = 0, where neither prediction
// can start the inversion) it is refused naming --invert.
inline void flow_config() {
    scratch s;
    files in(s);
    const row r{"sd3", {"--scheduler-config", config_path("stable-diffusion-3-medium"), "--method", "tab"},
                config_schedule("stable-diffusion-3-medium"), 1.0, 1e-3, true, true};
    const std::vector<double> g = plain_grid(s, in, r);
    const args_t img = add(in.run(r, "img.csv"), {"--init", in.data, "--strength", "0.6", "--print-grid"});
    const std::vector<double> t = printed_times(succeed(run(s, img)));
    // skip int(8 - 4.8) = 3 steps
    REQUIRE(t.size() == 5);
    for (std::size_t i = 0; i < t.size(); ++i) CHECK(t[i] == g[3 + i]);
    // --flow-shift on an explicit grid
    succeed(run(s, add(in.run(r, "shift.csv"), {"--grid", "t-power", "--flow-shift", "3", "--save-grid",
                                                s.path("shift.txt")})));
    CHECK(read_grid(s.path("shift.txt")) ==
          deis::shifted_grid(deis::flow_matching(), deis::grid_kind::power_t, steps, 1.0, 1e-3, 2.0, 3.0));
    // the round trip (tolerance as in invert())
    const args_t explicit_grid = {"--grid", "t-power", "--t-max", "0.95"};
    succeed(run(s, add(drop(in.run(r, "latent.csv", 40), "--noise"), add(explicit_grid, {"--init", in.data, "--invert"}))));
    succeed(run(s, add(set(in.run(r, "back.csv", 40), "--noise", s.out_path("latent.csv")), explicit_grid)));
    CHECK(max_diff(deis_cli_test::read(s.out_path("back.csv")), in.data_m) < 0.05);
    refused(s, add(drop(in.run(r, "x.csv"), "--noise"), {"--init", in.data, "--invert"}), {"--invert", "alpha = 0"});
}

// Options that do not apply where they are given are refused, each naming itself and what it
// does not apply to; none is ignored.
inline void refusals() {
    scratch s;
    files in(s);
    const row vp = schedule_row("vp-linear"), cfg = schedule_row("--scheduler-config");
    const args_t flux = {"--mixture", in.mix, "--noise", in.noise, "--out", s.out_path("x.csv"), "--steps", "8",
                         "--method", "tab", "--scheduler-config", config_path("flux.1-dev")};
    refused(s, add(in.run(vp, "x.csv"), {"--image-seq-len", "1024"}), {"--image-seq-len", "--scheduler-config"});
    refused(s, add(in.run(cfg, "x.csv"), {"--image-seq-len", "1024"}), {"--image-seq-len", "use_dynamic_shifting"});
    refused(s, add(flux, {"--image-seq-len", "1024", "--grid", "t-power"}), {"--image-seq-len", "--grid"});
    succeed(run(s, add(flux, {"--image-seq-len", "1024"})));
    refused(s, add(in.run(cfg, "x.csv"), {"--t-max", "0.5"}), {"--t-max", "--scheduler-config"});
    refused(s, add(in.run(cfg, "x.csv"), {"--grid-power", "3"}), {"--grid-power", "--scheduler-config"});
    refused(s, add(flux, {"--flow-shift", "3"}), {"--flow-shift", "--grid"});
    refused(s, add(in.run(vp, "x.csv"), {"--flow-shift", "3"}), {"--flow-shift", "--schedule flow"});
    // a stochastic run cannot be inverted (the library's reason, after --invert)
    refused(s,
            add(set(set(drop(in.run(vp, "x.csv"), "--noise"), "--predict", "data"), "--order", "1"),
                {"--sde", "--init", in.data, "--invert"}),
            {"--invert", "deterministic"});
    // an inversion that amplifies instead of integrating (tAB3, noise prediction, EDM's range
    // in 10 steps: the library's Gaussian probe) is refused with the library's reason
    const row edm = schedule_row("edm");
    refused(s,
            add(set(set(drop(in.run(edm, "x.csv", 10), "--noise"), "--predict", "noise"), "--grid", "recommended"),
                {"--init", in.data, "--invert"}),
            {"--invert", "unstable"});
    // where --method recommended inverts with a lower order (5 steps: DDIM, test_inversion.cpp)
    const args_t rec = drop(drop(in.run(edm, "rec.csv", 5), "--noise"), "--predict");
    succeed(run(s, add(set(set(rec, "--method", "recommended"), "--grid", "recommended"), {"--init", in.data, "--invert"})));
}

// The Runge-Kutta solver on the same path: --print-grid prints its stage times (2 a step for
// heun2, the steps' first times among them) and changes no sample; --invert and back returns
// the data (tolerance as in invert()).
inline void runge_kutta() {
    scratch s;
    files in(s);
    const row r{"edm rk", {"--schedule", "edm", "--method", "rk", "--tableau", "heun2", "--grid", "rho-power"},
                deis::edm(80.0), 80.0, 0.002};
    const std::vector<double> g = plain_grid(s, in, r);
    const std::vector<double> t = printed_times(succeed(run(s, add(in.run(r, "shown.csv"), {"--print-grid"}))));
    REQUIRE(t.size() == std::size_t(2 * steps));
    for (int k = 0; k < steps; ++k) CHECK(t[std::size_t(2 * k)] == g[std::size_t(k)]);
    CHECK(deis_cli_test::slurp(s.out_path("shown.csv")) == deis_cli_test::slurp(s.out_path("plain.csv")));
    std::vector<double> errs;
    for (int n : {20, 40}) {
        succeed(run(s, add(drop(in.run(r, "latent.csv", n), "--noise"), {"--init", in.data, "--invert"})));
        succeed(run(s, set(in.run(r, "back.csv", n), "--noise", s.out_path("latent.csv"))));
        errs.push_back(max_diff(deis_cli_test::read(s.out_path("back.csv")), in.data_m));
    }
    INFO("edm, heun2: round trip error " << errs[0] << " at 20 steps, " << errs[1] << " at 40");
    CHECK(errs[1] < errs[0] / 2.0);
    CHECK(errs[1] < 0.05);
}

}  // namespace cli_matrix_test

TEST_CASE("deis-sample matrix: edm x rk x --print-grid, --invert", "[cli][matrix]") {
    cli_matrix_test::runge_kutta();
}

TEST_CASE("deis-sample matrix: flow --scheduler-config x --init, --flow-shift, --invert", "[cli][matrix]") {
    cli_matrix_test::flow_config();
}

TEST_CASE("deis-sample matrix: options that do not apply are refused, naming themselves", "[cli][matrix]") {
    cli_matrix_test::refusals();
}

#define CLI_MATRIX_CASE(schedule, option, check)                                                    \
    TEST_CASE("deis-sample matrix: " schedule " x " option, "[cli][matrix]") {                      \
        cli_matrix_test::check(cli_matrix_test::schedule_row(schedule));                            \
    }
#define CLI_MATRIX_ROW(schedule)                                                                    \
    CLI_MATRIX_CASE(schedule, "--print-grid", print_grid)                                           \
    CLI_MATRIX_CASE(schedule, "--progress and --print-grid (display only)", display_flags)          \
    CLI_MATRIX_CASE(schedule, "--init --strength", img2img)                                         \
    CLI_MATRIX_CASE(schedule, "--invert", invert)                                                   \
    CLI_MATRIX_CASE(schedule, "--grid-file", grid_file)                                             \
    CLI_MATRIX_CASE(schedule, "--sigmas", sigmas)                                                   \
    CLI_MATRIX_CASE(schedule, "--grid recommended", grid_recommended)                               \
    CLI_MATRIX_CASE(schedule, "--grid optimized", grid_optimized)                                   \
    CLI_MATRIX_CASE(schedule, "--flow-shift", flow_shift)                                           \
    CLI_MATRIX_CASE(schedule, "--save-grid", save_grid)

CLI_MATRIX_ROW("vp-linear")
CLI_MATRIX_ROW("vp-cosine")
CLI_MATRIX_ROW("ve")
CLI_MATRIX_ROW("edm")
CLI_MATRIX_ROW("flow")
CLI_MATRIX_ROW("--scheduler-config")

#undef CLI_MATRIX_ROW
#undef CLI_MATRIX_CASE

#endif  // DEIS_SAMPLE_EXE
