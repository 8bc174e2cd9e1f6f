// deis-sample on flow matching and EDM (issue 11): --schedule flow with --flow-shift,
// --model-output velocity, --schedule edm with its sigma range, --sigmas LIST|NAME, --t-end 0.
// Every option against the library's own result for the same configuration, Euler on flow
// matching against the independent numbers of tests/data/flow, and every bad value of the new
// options: exit 1 with one line naming the option.
//
// DEIS_SAMPLE_EXE is defined by tests/CMakeLists.txt only when the examples are built.
#ifdef DEIS_SAMPLE_EXE

#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support.hpp"

using namespace deis_cli_test;

namespace {

// The program and the test do the same operations in the same order on the same doubles,
// and the CSV files hold 17 significant digits (an exact round trip): they agree to the last
// bit in practice; 1e-12 on samples of size ~5 only leaves room for a different rounding of
// the printed decimal.
constexpr double same_run = 1e-12;

double max_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    return (a - b).cwiseAbs().maxCoeff();
}

// The reference mixture and its 1000 points x_T, one per column (the program's files hold
// one per row).
deis::gaussian_mixture ring() { return deis_test::reference_mixture(); }
Eigen::MatrixXd ring_noise() { return read(reference("gmm2d_xT.csv")); }

// x as a samples file (one row per sample, 17 significant digits).
std::string write_noise(const scratch& s, const std::string& name, const Eigen::MatrixXd& x) {
    std::string text;
    char buf[40];
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
        for (Eigen::Index d = 0; d < x.rows(); ++d) {
            std::snprintf(buf, sizeof buf, "%.17g", x(d, j));
            text += (d ? "," : "") + std::string(buf);
        }
        text += '\n';
    }
    return s.write(name, text);
}

args_t flow_args(const scratch& s) {
    return {"--mixture-csv", reference("gmm2d_components.csv"), "--noise", reference("gmm2d_xT.csv"), "--out",
            s.out_path(), "--schedule", "flow", "--model-output", "velocity"};
}

template <class Schedule>
Eigen::MatrixXd library_run(const Schedule& sch, std::vector<double> grid, deis::multistep_options o,
                            deis::model_output out, Eigen::MatrixXd x) {
    const deis::gmm_model<Schedule> net(ring(), sch, out);
    o.output = out;
    const deis::multistep_solver solver(sch, std::move(grid), o);
    deis::state<double> st = std::move(x);
    REQUIRE(solver.sample(net, st).ok());
    return st;
}

}  // namespace

TEST_CASE("deis-sample flow: Euler (ddim, velocity) reproduces the independent flow-matching numbers",
          "[cli][flow]") {
    // tests/test_flow.cpp: Euler, uniform t from 1 to 1e-3, median error 9.530e-2 (shift 1)
    // and 7.383e-2 (shift 3) at 10 steps against flow/gmm2d_flow_exact.csv; 4 digits: 5e-4.
    scratch s;
    const Eigen::MatrixXd exact = read(reference("flow/gmm2d_flow_exact.csv"));
    for (const auto& [shift, median] : {std::pair<std::string, double>{"1", 9.530e-2}, {"3", 7.383e-2}}) {
        CAPTURE(shift);
        const args_t a = add(flow_args(s), {"--method", "ddim", "--grid", "t-power", "--grid-power", "1", "--steps",
                                            "10", "--flow-shift", shift});
        require_success(s.run(a), 10);
        const double m = deis_test::median(deis_test::sample_errors(read(s.out_path()), exact));
        CHECK(deis_test::rel_diff(m, median) <= 5e-4);
    }
}

TEST_CASE("deis-sample flow: each solver equals the library's run of the same configuration", "[cli][flow]") {
    scratch s;
    const deis::flow_matching flow;
    const auto v = deis::model_output::velocity;
    struct row {
        args_t args;
        deis::multistep_options opt;
        std::vector<double> grid;
        int nfe;
    };
    const std::vector<row> rows = {
        {{"--method", "ddim", "--grid", "t-power", "--steps", "8", "--flow-shift", "3"},
         deis::parse_multistep("ddim+noise"),
         deis::shifted_grid(flow, deis::grid_kind::power_t, 8, 1.0, 1e-3, 2.0, 3.0),
         8},
        {{"--method", "tab", "--predict", "data", "--corrector", "--grid", "t-power", "--steps", "12"},
         deis::parse_multistep("tab3+data+corrector"),
         deis::power_t_grid(flow, 12, 1.0, 1e-3, 2.0),
         12},
        // --t-end 0: the last step lands on clean data (sigma = 0)
        {{"--method", "tab", "--order", "2", "--predict", "data", "--grid", "t-power", "--steps", "10", "--t-end",
          "0", "--flow-shift", "2.5"},
         deis::parse_multistep("tab2+data"),
         deis::shifted_grid(flow, deis::grid_kind::power_t, 10, 1.0, 0.0, 2.0, 2.5),
         10},
        {{"--method", "ipndm", "--predict", "data", "--grid", "t-power", "--grid-power", "1", "--steps", "10"},
         deis::parse_multistep("ipndm3+data"),
         deis::power_t_grid(flow, 10, 1.0, 1e-3, 1.0),
         10},
    };
    for (const row& r : rows) {
        CAPTURE(join(r.args));
        require_success(s.run(add(flow_args(s), r.args)), r.nfe);
        const Eigen::MatrixXd ours = read(s.out_path());
        CHECK(ours.allFinite());
        CHECK(max_diff(ours, library_run(flow, r.grid, r.opt, v, ring_noise())) <= same_run);
    }
}

TEST_CASE("deis-sample flow: the other model outputs give the same samples as velocity", "[cli][flow]") {
    // x0, v and score are exact outputs of the same mixture; converted back they differ from
    // the velocity run by round-off (a few ulps of samples ~5 per step): 1e-10.
    scratch s;
    const args_t a = add(drop(flow_args(s), "--model-output"),
                         {"--method", "tab", "--predict", "data", "--grid", "t-power", "--steps", "10"});
    require_success(s.run(set(a, "--model-output", "velocity")), 10);
    const Eigen::MatrixXd vel = read(s.out_path());
    require_success(s.run(set(a, "--model-output", "x0")), 10);
    CHECK(max_diff(read(s.out_path()), vel) <= 1e-10);
    require_success(s.run(set(a, "--model-output", "v")), 10);
    CHECK(max_diff(read(s.out_path()), vel) <= 1e-10);
    // eps and score do not determine x0 at alpha = 0 (t = 1): the library refuses, one line
    const cli_result r = s.run(set(a, "--model-output", "eps"));
    require_failure(r, exit_usage, {"data prediction"});
}

TEST_CASE("deis-sample: --model-output velocity on VP and VE (the schedule's derivatives reach the solver)",
          "[cli][flow]") {
    // The velocity alpha' x0 + sigma' eps needs alpha_dot and sigma_dot of the schedule, which
    // the program's interruptible wrapper forwards; the run then equals the eps run up to the
    // round-off of the conversions (1e-9 on samples ~5 after 10 steps whose coefficients reach
    // 1/alpha ~ 150 at t = 1).
    scratch s;
    for (const char* name : {"vp-linear", "vp-cosine", "ve"}) {
        const std::string sch = name;
        CAPTURE(sch);
        const Eigen::MatrixXd x_T = sch == "ve" ? Eigen::MatrixXd(50.0 * ring_noise()) : ring_noise();
        const args_t a = {"--mixture-csv", reference("gmm2d_components.csv"), "--noise",
                          write_noise(s, "xT.csv", x_T), "--out", s.out_path(), "--schedule", sch,
                          "--method", "tab", "--grid", "t-power", "--steps", "10", "--t-end", "1e-3"};
        require_success(s.run(a), 10);
        const Eigen::MatrixXd eps = read(s.out_path());
        require_success(s.run(add(a, {"--model-output", "velocity"})), 10);
        CHECK(max_diff(read(s.out_path()), eps) <= 1e-9);
    }
}

TEST_CASE("deis-sample edm: --sigmas karras / exponential / a list equal the library's grids", "[cli][flow]") {
    scratch s;
    const deis::edm edm(80.0);
    const Eigen::MatrixXd x_T = 80.0 * ring_noise();  // x = x0 + sigma eps at sigma = 80
    const std::string noise = write_noise(s, "xT80.csv", x_T);
    const auto x0 = deis::model_output::x0;
    deis::multistep_options o = deis::parse_multistep("tab3+data+corrector");
    o.output = x0;
    const args_t base = {"--mixture-csv", reference("gmm2d_components.csv"), "--noise", noise, "--out",
                         s.out_path(), "--schedule", "edm", "--model-output", "x0", "--method", "tab",
                         "--predict", "data", "--corrector"};
    struct row {
        args_t args;
        std::vector<double> grid;
    };
    const std::vector<row> rows = {
        // Karras between the default sigma range 80 .. 0.002
        {{"--sigmas", "karras", "--steps", "10"},
         deis::sigma_grid(edm, deis::sigma_levels(deis::noise_levels::karras, 10, 80.0, 0.002))},
        {{"--sigmas", "exponential", "--steps", "12", "--sigma-min", "0.01"},
         deis::sigma_grid(edm, deis::sigma_levels(deis::noise_levels::exponential, 12, 80.0, 0.01))},
        // a list, ending on clean data
        {{"--sigmas", "80,20,5,1.5,0.5,0.1,0"}, deis::sigma_grid(edm, {80, 20, 5, 1.5, 0.5, 0.1, 0})},
        // the --grid path with the EDM defaults: t from sigma-max 80 to sigma-min 0.002
        {{"--grid", "rho-power", "--steps", "10"}, deis::power_rho_grid(edm, 10, 80.0, 0.002, 7.0)},
    };
    for (const row& r : rows) {
        CAPTURE(join(r.args));
        require_success(s.run(add(base, r.args)), int(r.grid.size()) - 1);
        const Eigen::MatrixXd ours = read(s.out_path());
        const deis::gmm_model<deis::edm> net(ring(), edm, x0);
        const deis::multistep_solver solver(edm, r.grid, o);
        deis::state<double> x = x_T;
        REQUIRE(solver.sample(net, x).ok());
        CHECK(max_diff(ours, x) <= 80.0 * same_run);  // samples here reach ~80 before the run
    }
}

TEST_CASE("deis-sample: --sigmas ays-sd15 on vp-linear and --t-end 0 on VP", "[cli][flow]") {
    scratch s;
    const deis::vp_linear vp(0.1, 20.0, 1.0);
    const auto eps = deis::model_output::eps;
    deis::multistep_options o = deis::parse_multistep("tab3+data");
    o.output = eps;
    const args_t base = {"--mixture-csv", reference("gmm2d_components.csv"), "--noise", reference("gmm2d_xT.csv"),
                         "--out", s.out_path(), "--schedule", "vp-linear", "--method", "tab", "--predict", "data"};
    {
        // Align Your Steps: published from 14.615, inside the schedule's rho(1) ~ 152, so x_T
        // (unit noise at t = 1) is not the right start; only the grid is compared here
        require_success(s.run(add(base, {"--sigmas", "ays-sd15", "--steps", "10"})), 10);
        const auto grid = deis::sigma_grid(vp, deis::sigma_levels(deis::noise_levels::ays_sd15, 10));
        const deis::gmm_eps<deis::vp_linear> net(ring(), vp);
        const deis::multistep_solver solver(vp, grid, o);
        deis::state<double> x = ring_noise();
        REQUIRE(solver.sample(net, x).ok());
        CHECK(max_diff(read(s.out_path()), x) <= same_run);
    }
    {
        require_success(s.run(add(base, {"--grid", "t-power", "--steps", "10", "--t-end", "0"})), 10);
        const deis::gmm_eps<deis::vp_linear> net(ring(), vp);
        const deis::multistep_solver solver(vp, deis::power_t_grid(vp, 10, 1.0, 0.0, 2.0), o);
        deis::state<double> x = ring_noise();
        REQUIRE(solver.sample(net, x).ok());
        const Eigen::MatrixXd ours = read(s.out_path());
        CHECK(ours.allFinite());
        CHECK(max_diff(ours, x) <= same_run);
    }
}

TEST_CASE("deis-sample: bad values of the flow and EDM options fail with one line naming the option",
          "[cli][flow][bad_input]") {
    scratch s;
    inputs in(s);
    const args_t vp = in.base();  // vp-linear, tab, t-power, 4 steps
    const args_t flow = add(set(vp, "--schedule", "flow"), {"--predict", "data", "--model-output", "velocity"});
    const args_t edm = set(vp, "--schedule", "edm");
    const args_t list = add(drop(drop(vp, "--grid"), "--steps"), {"--sigmas", "5,1,0.1"});
    struct bad {
        std::string name;
        args_t args;
        std::vector<std::string> mentions;
    };
    const std::vector<bad> cases = {
        {"shift 0", set(flow, "--flow-shift", "0"), {"--flow-shift", "(0, 1000]"}},
        {"negative shift", set(flow, "--flow-shift", "-2"), {"--flow-shift"}},
        {"shift too large", set(flow, "--flow-shift", "1001"), {"--flow-shift", "1000"}},
        {"NaN shift", set(flow, "--flow-shift", "nan"), {"--flow-shift", "finite"}},
        {"shift without flow", set(vp, "--flow-shift", "3"), {"--flow-shift", "flow"}},
        {"shift with --sigmas", add(set(list, "--schedule", "flow"), {"--flow-shift", "3", "--predict", "data"}),
         {"--flow-shift", "--sigmas"}},
        {"flow t-max above 1", set(flow, "--t-max", "1.5"), {"--t-max", "flow"}},
        {"flow negative t-end", set(flow, "--t-end", "-0.1"), {"--t-end"}},
        {"VP t-end between 0 and 1e-12", set(vp, "--t-end", "1e-13"), {"--t-end"}},
        {"edm sigma-max 0", set(edm, "--sigma-max", "0"), {"--sigma-max"}},
        {"edm sigma-max too large", set(edm, "--sigma-max", "1e9"), {"--sigma-max"}},
        {"edm sigma-min too small", set(edm, "--sigma-min", "1e-9"), {"--sigma-min"}},
        {"edm t-max above sigma-max", set(edm, "--t-max", "100"), {"--t-max", "--sigma-max"}},
        {"sigmas increasing", set(list, "--sigmas", "1,2"), {"--sigmas", "smaller"}},
        {"sigmas not a number", set(list, "--sigmas", "5,abc,1"), {"--sigmas", "abc"}},
        {"sigmas one level", set(list, "--sigmas", "5"), {"--sigmas", "at least 2"}},
        {"sigmas negative", set(list, "--sigmas", "5,-1"), {"--sigmas", "-1"}},
        {"sigmas empty item", set(list, "--sigmas", "5,,1"), {"--sigmas"}},
        {"sigmas empty", set(list, "--sigmas", ""), {"--sigmas"}},
        {"sigmas unknown name", set(list, "--sigmas", "karas"), {"--sigmas", "karas"}},
        {"sigmas above the schedule's largest", set(set(list, "--schedule", "edm"), "--sigmas", "100,1"),
         {"--sigmas", "100"}},
        {"sigmas with --grid", add(list, {"--grid", "t-power"}), {"--grid", "--sigmas"}},
        {"sigmas list with --steps", add(list, {"--steps", "2"}), {"--steps", "--sigmas"}},
        {"sigmas list with --t-max", add(list, {"--t-max", "0.5"}), {"--t-max", "--sigmas"}},
        {"sigmas name without --steps", set(list, "--sigmas", "karras"), {"--steps", "karras"}},
        {"karras to t-end 0", add(set(list, "--sigmas", "karras"), {"--steps", "4", "--t-end", "0"}),
         {"--sigmas", "--t-end"}},
        {"ays with --t-end", add(set(list, "--sigmas", "ays-sdxl"), {"--steps", "4", "--t-end", "0.01"}),
         {"--t-end", "ays-sdxl"}},
        {"no grid and no sigmas", drop(vp, "--grid"), {"--grid", "--sigmas"}},
        {"unknown model output", set(vp, "--model-output", "flow"), {"--model-output"}},
        {"unknown schedule", set(vp, "--schedule", "flux"), {"--schedule"}},
    };
    for (const bad& c : cases) {
        CAPTURE(c.name, join(c.args));
        require_failure(s.run(c.args), exit_usage, c.mentions);
        CHECK(s.out_files().empty());
    }
}

#endif  // DEIS_SAMPLE_EXE
