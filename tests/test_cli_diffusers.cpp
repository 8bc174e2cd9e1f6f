// deis-sample with models from diffusers: --scheduler-config, --print-grid, img2img (--init,
// --strength), --invert, and their bad uses. The oracles: diffusers' timesteps
// (tests/data/diffusers/timesteps.csv, img2img.csv), the library's own grid functions, and
// the exact flow of a single Gaussian (deis::gaussian_flow).
//
// DEIS_SAMPLE_EXE (the program's path) is defined by tests/CMakeLists.txt only when the
// examples are built; without it this file has no tests.
#ifdef DEIS_SAMPLE_EXE

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"
#include "deis/diffusers.hpp"
#include "deis/research/gmm.hpp"

using namespace deis_cli_test;

namespace {

std::string config(const std::string& model) { return reference("diffusers/configs/" + model + ".json"); }

// The lines of stdout before "nfe=", each split into its numbers; checks the format: plain
// numbers separated by one space, nothing else.
std::vector<std::vector<double>> grid_lines(const std::string& out, std::size_t fields) {
    std::vector<std::vector<double>> lines;
    std::istringstream is(out);
    std::string line;
    while (std::getline(is, line)) {
        if (line.rfind("nfe=", 0) == 0) break;
        INFO("line: '" << line << "'");
        REQUIRE(line.find("  ") == std::string::npos);
        REQUIRE(!line.empty());
        REQUIRE(line.front() != ' ');
        REQUIRE(line.back() != ' ');
        std::vector<double> v;
        std::istringstream ls(line);
        std::string word;
        while (ls >> word) {
            std::size_t used = 0;
            v.push_back(std::stod(word, &used));
            REQUIRE(used == word.size());
        }
        REQUIRE(v.size() == fields);
        lines.push_back(v);
    }
    return lines;
}

// One Gaussian in 2-D: its exact flow is known.
const Eigen::VectorXd mu = (Eigen::VectorXd(2) << 0.5, -1.0).finished();
const Eigen::VectorXd sd = (Eigen::VectorXd(2) << 0.3, 0.8).finished();

struct gaussian_inputs {
    std::string mix, noise, data;
    Eigen::MatrixXd noise_m, data_m;
    explicit gaussian_inputs(const scratch& s) {
        mix = s.write("gauss.json", R"({"weights": [1], "means": [[0.5, -1.0]], "stds": [[0.3, 0.8]]})");
        noise_m = (Eigen::MatrixXd(2, 4) << 0.3, -1.2, 0.8, 1.5, -0.4, 0.9, 0.1, -1.7).finished();
        data_m = (Eigen::MatrixXd(2, 4) << 0.6, 0.2, 0.9, 0.4, -1.5, -0.2, -1.1, -2.0).finished();
        noise = s.write("noise.csv", to_csv(noise_m));
        data = s.write("data.csv", to_csv(data_m));
    }
    static std::string to_csv(const Eigen::MatrixXd& m) {
        std::ostringstream os;
        os.precision(17);
        for (Eigen::Index j = 0; j < m.cols(); ++j) os << m(0, j) << "," << m(1, j) << "\n";
        return os.str();
    }
};

}  // namespace

TEST_CASE("deis-sample --print-grid: SD 1.5 prints diffusers' timesteps as t and tau", "[cli][diffusers]") {
    scratch s;
    gaussian_inputs in(s);
    for (int steps : {10, 20, 50}) {
        const cli_result r = s.run({"--mixture", in.mix, "--noise", in.noise, "--out", s.out_path(), "--method", "tab",
                                    "--steps", std::to_string(steps), "--scheduler-config",
                                    config("stable-diffusion-v1-5"), "--print-grid"});
        INFO("stderr: " << r.err);
        REQUIRE(r.code == 0);
        const auto lines = grid_lines(r.out, 2);
        REQUIRE(r.out.substr(r.out.rfind("nfe=")) == "nfe=" + std::to_string(steps) + "\n");
        // SD 1.5 (PNDM, leading, steps_offset 1): 1000/N (i) + 1, descending, each once
        const std::vector<double> expected =
            deis::diffusers_timesteps(deis::timestep_spacing::leading, deis::timestep_family::ddim, steps, 1000, 1);
        REQUIRE(lines.size() == expected.size());
        for (std::size_t i = 0; i < lines.size(); ++i) {
            REQUIRE(lines[i][1] == expected[i]);
            // t = (tau + 1)/n, printed in its shortest exact form: 1e-15 relative
            REQUIRE(lines[i][0] == Approx((expected[i] + 1.0) / 1000.0).epsilon(1e-15));
        }
        REQUIRE(lines[0][1] == 1000.0 - 1000.0 / steps + 1.0);  // 901, 951, 981 as in timesteps.csv
    }
}

TEST_CASE("deis-sample --print-grid: Flux prints the shifted sigmas one number a line", "[cli][diffusers]") {
    scratch s;
    gaussian_inputs in(s);
    const cli_result r = s.run({"--mixture", in.mix, "--noise", in.noise, "--out", s.out_path(), "--method", "tab",
                                "--steps", "28", "--scheduler-config", config("flux.1-dev"), "--image-seq-len", "4096",
                                "--print-grid"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const auto lines = grid_lines(r.out, 1);
    const std::vector<double> g = deis::load_scheduler_config(config("flux.1-dev")).grid(28, 4096.0);
    REQUIRE(lines.size() == 28);
    // printed in the shortest form that reads back exactly
    for (std::size_t i = 0; i < lines.size(); ++i) REQUIRE(lines[i][0] == g[i]);
}

TEST_CASE("deis-sample --scheduler-config: each model's run matches the exact flow", "[cli][diffusers]") {
    scratch s;
    gaussian_inputs in(s);
    for (const std::string model : {"stable-diffusion-v1-5", "stable-diffusion-2-1", "stable-diffusion-xl-base-1.0",
                                    "stable-diffusion-3-medium", "flux.1-dev"}) {
        CAPTURE(model);
        const cli_result r = s.run({"--mixture", in.mix, "--noise", in.noise, "--out", s.out_path(), "--method",
                                    "tab", "--steps", "50", "--scheduler-config", config(model)});
        require_success(r, 50);
        const deis::scheduler_config c = deis::load_scheduler_config(config(model));
        const std::vector<double> g = c.grid(50, 4096.0);
        const Eigen::MatrixXd exact = std::visit(
            [&](const auto& sch) { return deis::gaussian_flow(sch, mu, sd, in.noise_m, g.front(), g.back()); },
            c.schedule);
        // 50 steps of third-order tAB: the library test (test_diffusers.cpp) measures < 6e-3
        // at 50 steps of second order on these grids
        REQUIRE((read(s.out_path()) - exact).cwiseAbs().maxCoeff() < 1e-2);
    }
}

TEST_CASE("deis-sample --scheduler-config: explicit options override it", "[cli][diffusers]") {
    scratch s;
    gaussian_inputs in(s);
    const args_t base = {"--mixture", in.mix, "--noise", in.noise, "--out", s.out_path(), "--method", "tab",
                         "--steps", "10", "--scheduler-config", config("stable-diffusion-2-1"), "--print-grid"};
    const cli_result own = s.run(base);
    REQUIRE(own.code == 0);
    const cli_result log_rho = s.run(add(base, {"--grid", "log-rho"}));
    INFO("stderr: " << log_rho.err);
    REQUIRE(log_rho.code == 0);
    const auto a = grid_lines(own.out, 2), b = grid_lines(log_rho.out, 2);
    REQUIRE(a.size() == 10);
    REQUIRE(b.size() == 10);
    REQUIRE(a[1][0] != b[1][0]);  // another grid
    // --model-output eps overrides the config's v_prediction: the mixture then answers eps, and
    // the run differs from the v run only by the discretisation of the two conversions
    const Eigen::MatrixXd v_run = read(s.out_path());
    REQUIRE(s.run(add(base, {"--model-output", "eps"})).code == 0);
    // (10 steps: measured 0.043 apart; each run is that far from the exact flow)
    REQUIRE((read(s.out_path()) - v_run).cwiseAbs().maxCoeff() < 0.1);
}

TEST_CASE("deis-sample --scheduler-config: every --model-output is honoured, velocity included", "[cli][diffusers]") {
    // SD3's config says flow_prediction (a velocity network): naming that same output
    // explicitly must give the same file byte for byte (it was once read as eps on this path,
    // which cannot start at t = 1, and the run was refused).
    scratch s;
    gaussian_inputs in(s);
    const args_t base = {"--mixture", in.mix, "--noise", in.noise, "--method", "tab", "--steps", "10",
                         "--scheduler-config", config("stable-diffusion-3-medium")};
    const cli_result own = s.run(add(base, {"--out", s.out_path("own.csv")}));
    INFO("stderr: " << own.err);
    REQUIRE(own.code == 0);
    const cli_result named = s.run(add(base, {"--model-output", "velocity", "--out", s.out_path("named.csv")}));
    INFO("stderr: " << named.err);
    REQUIRE(named.code == 0);
    CHECK(slurp(s.out_path("named.csv")) == slurp(s.out_path("own.csv")));
}

TEST_CASE("deis-sample --scheduler-config: --sde --eta and --seed apply as without a config", "[cli][diffusers]") {
    scratch s;
    gaussian_inputs in(s);
    const args_t base = {"--mixture", in.mix, "--noise", in.noise, "--method", "tab", "--predict", "data",
                         "--steps", "10", "--scheduler-config", config("stable-diffusion-v1-5")};
    auto run_to = [&](const std::string& name, const args_t& more, const std::string& method = "tab") {
        const cli_result r = s.run(add(add(set(base, "--method", method), {"--out", s.out_path(name)}), more));
        INFO("stderr: " << r.err);
        REQUIRE(r.code == 0);
        return slurp(s.out_path(name));
    };
    const std::string ode = run_to("ode.csv", {});
    const std::string sde7 = run_to("sde7.csv", {"--sde", "--seed", "7"});
    CHECK(sde7 != ode);                                          // the noise is drawn
    CHECK(run_to("sde7b.csv", {"--sde", "--seed", "7"}) == sde7);  // by the seed, byte for byte
    CHECK(run_to("sde8.csv", {"--sde", "--seed", "8"}) != sde7);
    const std::string ddim = run_to("ddim.csv", {"--order", "0"}, "ddim");
    CHECK(run_to("eta.csv", {"--order", "0", "--eta", "1"}, "ddim") != ddim);
}

TEST_CASE("deis-sample --scheduler-config: --progress reports the steps as without a config", "[cli][diffusers]") {
    scratch s;
    gaussian_inputs in(s);
    // 10 steps, stderr not a terminal: one line per step, each a tenth
    const cli_result r = s.run({"--mixture", in.mix, "--noise", in.noise, "--method", "tab", "--steps", "10",
                                "--scheduler-config", config("stable-diffusion-v1-5"), "--progress", "--out",
                                s.out_path("p.csv")});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    std::ostringstream expected;
    for (int done = 1; done <= 10; ++done)
        expected << "deis-sample: " << done * 10 << "% (" << done << " of 10 steps)\n";
    CHECK(r.err == expected.str());
}

TEST_CASE("deis-sample --scheduler-config: SIGTERM stops the run within one step, naming it", "[cli][diffusers][signal]") {
    // As in test_cli_stochastic.cpp: 40000 samples (a step of a few ms), 20000 steps of an
    // explicit grid over the SD 1.5 config; the signal once the child has used 0.5 s of CPU.
    scratch s;
    gaussian_inputs in(s);
    const std::string noise = s.write("many.csv", noise_rows(40000));
    const auto before = snapshot(s.dir());
    child c({"--mixture", in.mix, "--noise", noise, "--method", "tab", "--scheduler-config",
             config("stable-diffusion-v1-5"), "--grid", "t-power", "--steps", "20000", "--out", s.out_path("x.csv")},
            s.dir().string());
    c.wait_for_exec();
    c.wait_for_cpu(0.5);
    const signal_case& sc = signals[1];  // SIGTERM
    const auto t0 = std::chrono::steady_clock::now();
    c.signal(sc.signal);
    const cli_result r = c.wait();
    const double stop = since(t0);
    INFO("stopped " << stop << " s after the signal");
    CHECK(stop < 2.0);  // one step is a few ms of work: 2 s is the margin for a busy machine
    require_interrupted(r, sc, "at step ([2-9]|[1-9][0-9]+) of 20000", s);
    CHECK(snapshot(s.dir()) == before);
}

TEST_CASE("deis-sample img2img: --init and --strength start at diffusers' timestep", "[cli][diffusers][img2img]") {
    scratch s;
    gaussian_inputs in(s);
    // img2img.csv: 50 steps at strength 0.5 run 25 steps from 481 (Euler, leading, offset 1)
    const cli_result r = s.run({"--mixture", in.mix, "--noise", in.noise, "--init", in.data, "--strength", "0.5",
                                "--out", s.out_path(), "--method", "tab", "--steps", "50", "--scheduler-config",
                                config("stable-diffusion-xl-base-1.0"), "--print-grid"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const auto lines = grid_lines(r.out, 2);
    REQUIRE(lines.size() == 25);
    REQUIRE(lines[0][1] == 481.0);
    REQUIRE(r.out.substr(r.out.rfind("nfe=")) == "nfe=25\n");
    // the start is alpha x0 + sigma eps at tau = 481; the run then follows the exact flow
    const deis::vp_discrete sdt = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    const double t0 = sdt.time_of_timestep(481.0);
    Eigen::MatrixXd start(2, 4);
    deis::noise_data(sdt, t0, in.data_m, in.noise_m, start);
    const Eigen::MatrixXd exact = deis::gaussian_flow(sdt, mu, sd, start, t0, 0.0);
    // 25 steps of third-order tAB from tau = 481 to sigma = 0 (5 steps from 401 measured 0.05;
    // the full 20-step runs of test_diffusers.cpp at second order 5e-3)
    const double err = (read(s.out_path()) - exact).cwiseAbs().maxCoeff();
    WARN("deis-sample img2img, SDXL, 25 of 50 steps: error against the exact flow " << err);
    REQUIRE(err < 2e-2);
}

TEST_CASE("deis-sample --invert then sampling returns the data", "[cli][diffusers][inversion]") {
    scratch s;
    gaussian_inputs in(s);
    std::vector<double> errs;
    for (int steps : {20, 40}) {
        // data prediction: tAB3 in noise prediction is refused going up SD 2.1's 20-step grid
        // (the library's Gaussian probe, test_inversion.cpp)
        const args_t common = {"--mixture", in.mix, "--method", "tab", "--predict", "data", "--steps",
                               std::to_string(steps), "--scheduler-config", config("stable-diffusion-2-1")};
        require_success(s.run(add(common, {"--init", in.data, "--invert", "--out", s.out_path("noise.csv")})), steps);
        require_success(s.run(add(common, {"--noise", s.out_path("noise.csv"), "--out", s.out_path("back.csv")})),
                        steps);
        errs.push_back((read(s.out_path("back.csv")) - in.data_m).cwiseAbs().maxCoeff());
    }
    WARN("deis-sample round trip, SD 2.1 config, tab order 3 + data: 20 steps " << errs[0] << ", 40 steps " << errs[1]);
    // SD 2.1's leading grid starts the inversion at tau = 0 with a short step to tau = 1 and
    // then long ones: still pre-asymptotic at 20 and 40 steps (measured ratio 3.4, not 8);
    // require at least first-order decay
    REQUIRE(errs[1] < errs[0] / 2.0);
    REQUIRE(errs[1] < 5e-2);
}

TEST_CASE("deis-sample: bad uses of the diffusers options", "[cli][diffusers][bad_input]") {
    scratch s;
    gaussian_inputs in(s);
    const args_t base = {"--mixture", in.mix, "--noise", in.noise, "--out", s.out_path(), "--method", "tab",
                         "--steps", "10"};
    const std::string bad = s.write("bad.json", R"({"_class_name": "DDIMScheduler", "clip_sample": true})");
    require_failure(s.run(add(base, {"--scheduler-config", bad})), exit_input, {"clip_sample", "bad.json"});
    require_failure(s.run(add(base, {"--scheduler-config", s.path("missing.json")})), exit_input, {"missing.json"});
    require_failure(s.run(add(base, {"--scheduler-config", config("stable-diffusion-2-1"), "--schedule", "vp-linear"})),
                    exit_usage, {"--schedule", "--scheduler-config"});
    require_failure(s.run(add(base, {"--scheduler-config", config("stable-diffusion-2-1"), "--strength", "0.5"})),
                    exit_usage, {"--strength", "--init"});
    require_failure(s.run(add(base, {"--scheduler-config", config("stable-diffusion-2-1"), "--init", in.data,
                                     "--strength", "0"})),
                    exit_usage, {"--strength = 0"});
    require_failure(s.run(add(base, {"--scheduler-config", config("stable-diffusion-2-1"), "--init", in.data,
                                     "--strength", "0.05"})),
                    exit_usage, {"strength = 0.05"});
    require_failure(s.run(add(base, {"--scheduler-config", config("stable-diffusion-2-1"), "--init", in.data,
                                     "--invert"})),
                    exit_usage, {"--noise", "--invert"});
    require_failure(s.run(set(add(base, {"--scheduler-config", config("stable-diffusion-2-1")}), "--steps", "1001")),
                    exit_usage, {"steps"});
    CHECK(s.out_files().empty());
}

#endif  // DEIS_SAMPLE_EXE
