// deis-sample --model (issue 21): a TorchScript network in place of the mixture. The tests make
// their own small modules at run time (torch::jit::Module::define, then save): the exact eps of
// Gaussian data N(mu, diag(s^2)) under vp-linear 0.1..20, so that --model must give what the
// library's own network (--mixture-csv with the same one component, deis::gmm_eps) gives; then
// --dtype, --batch, --shape, --scheduler-config's timesteps, --invert, and every refusal: exit
// code, one line on stderr naming the problem, no output.
//
// Part of deis_torch_tests (tests/CMakeLists.txt: compiled only with LibTorch, and only when
// the examples are built, DEIS_SAMPLE_EXE).
#ifdef DEIS_SAMPLE_EXE

#include <torch/cuda.h>
#include <torch/script.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "cli_support.hpp"

namespace deis_cli_model_test {

using deis_cli_test::args_t;
using deis_cli_test::cli_result;
using deis_cli_test::scratch;

constexpr int D = 4;  // a sample: 4 values, or 1 x 2 x 2 with --shape
const double mu[D] = {0.5, -1.0, 0.25, 2.0};
const double sd[D] = {0.3, 0.8, 1.2, 0.5};

// The exact eps of N(mu, diag(s^2)) under vp-linear (beta 0.1..20), x = alpha x0 + sigma eps:
// eps(x, t) = sigma (x - alpha mu) / (alpha^2 s^2 + sigma^2), with alpha and sigma computed as
// deis::vp_linear does (sigma from expm1, accurate at small t). In x's dtype; any shape [B, ...].
const std::string gauss_body = R"JIT(
    xf = x.reshape([x.size(0), -1])
    tt = t.reshape([-1, 1])
    log_alpha = -0.25 * tt * tt * (20.0 - 0.1) - 0.5 * tt * 0.1
    alpha = torch.exp(log_alpha)
    sigma = torch.sqrt(-torch.expm1(2.0 * log_alpha))
    mu = self.mu.to(x.dtype)
    s2 = self.s2.to(x.dtype)
    eps = sigma * (xf - alpha * mu) / (alpha * alpha * s2 + sigma * sigma)
    return eps.reshape(x.shape)
)JIT";
const std::string gauss_source = "\ndef forward(self, x, t):" + gauss_body;

// The same network, refusing any input but [B, 1, 2, 2] (what --shape 1,2,2 must give it).
const std::string shaped_source = R"JIT(
def forward(self, x, t):
    assert x.dim() == 4 and x.size(1) == 1 and x.size(2) == 2 and x.size(3) == 2, "not [B, 1, 2, 2]"
    assert t.dim() == 1 and t.size(0) == x.size(0), "t is not [B]")JIT" + gauss_body;

// A module from `source` with the buffers mu and s2 (float64), saved to the scratch directory.
std::string save_module(const scratch& s, const std::string& name, const std::string& source) {
    torch::jit::Module m("deis_test_" + name.substr(0, name.find('.')));
    double s2[D];
    for (int d = 0; d < D; ++d) s2[d] = sd[d] * sd[d];
    m.register_buffer("mu", torch::from_blob(const_cast<double*>(mu), {D}, torch::kFloat64).clone());
    m.register_buffer("s2", torch::from_blob(s2, {D}, torch::kFloat64).clone());
    m.define(source);
    const std::string path = s.path(name);
    m.save(path);
    return path;
}

// The inputs: the Gaussian as a one-component mixture, the exact-eps module, five noise points.
struct gauss_inputs {
    const scratch& s;
    std::string mixture, model, noise;

    explicit gauss_inputs(const scratch& sc) : s(sc) {
        std::string csv = "mu0,mu1,mu2,mu3,std0,std1,std2,std3,weight\n";
        char buf[64];
        for (int d = 0; d < D; ++d) csv += (std::snprintf(buf, sizeof buf, "%.17g,", mu[d]), buf);
        for (int d = 0; d < D; ++d) csv += (std::snprintf(buf, sizeof buf, "%.17g,", sd[d]), buf);
        mixture = s.write("gauss.csv", csv + "1\n");
        model = save_module(s, "gauss.pt", gauss_source);
        noise = s.write("noise.csv",
                        "0.1,-0.2,1.3,-0.5\n1.5,0.3,-0.8,0.9\n-0.7,-1.1,0.2,2.1\n2.2,1.9,-1.6,0.05\n-0.05,0.8,0.6,-1.4\n");
    }

    // a run without its network (--model or --mixture-csv), its output `out`
    args_t run(const std::string& method, const std::string& out) const {
        return {"--noise", noise, "--out", s.out_path(out), "--schedule", "vp-linear", "--grid", "t-power",
                "--steps", "8", "--method", method};
    }
    args_t with_model(const std::string& method, const std::string& out, const std::string& dtype = "float64") const {
        return deis_cli_test::add(run(method, out), {"--model", model, "--dtype", dtype});
    }
    args_t with_mixture(const std::string& method, const std::string& out) const {
        return deis_cli_test::add(run(method, out), {"--mixture-csv", mixture});
    }
};

void require_ok(const cli_result& r) {
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    REQUIRE(r.err.empty());
    REQUIRE(r.out.rfind("nfe=", 0) == 0);
}

// max |a - b| / max |b|
double relative_difference(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

// Both files run through the same solver with the same exact eps, computed in double by two
// codes (TorchScript's kernels, deis::gaussian_mixture's log-sum-exp posterior) in a different
// order of operations: each network call differs by a few ulps (~1e-16 relative), and the
// solver's linear combinations of 8 to 16 calls carry that to ~1e-15 of the samples. 1e-12
// leaves a margin of 1000 and still catches any real difference: a wrong time given to the
// model, a transposed layout, a float32 rounding (1e-7).
constexpr double same_network = 1e-12;

// float32 in the model (the solver in double): eps rounded to float at every call, ~6e-8
// relative, then carried through the steps with coefficients of order 1 (the data prediction
// multiplies eps by sigma/alpha, at most ~150 at t = 1, onto samples of order 1 there): ~1e-6
// of the samples. 1e-5 is that with a margin of 10, and 1e4 times above the float64 tolerance.
constexpr double float_model = 1e-5;

}  // namespace deis_cli_model_test

TEST_CASE("deis-sample --model (torch): the exact eps of a Gaussian as a TorchScript module equals the mixture",
          "[cli][torch]") {
    using namespace deis_cli_model_test;
    scratch s;
    const gauss_inputs in(s);
    for (const char* method : {"tab3+data+corrector", "rk:heun2", "ddim"}) {
        INFO("--method " << method);
        const cli_result by_model = s.run(in.with_model(method, "model.csv"));
        const cli_result by_mixture = s.run(in.with_mixture(method, "mixture.csv"));
        require_ok(by_model);
        require_ok(by_mixture);
        CHECK(by_model.out == by_mixture.out);  // the same number of network calls
        const Eigen::MatrixXd x_model = deis_cli_test::read(s.out_path("model.csv"));
        const Eigen::MatrixXd x_mixture = deis_cli_test::read(s.out_path("mixture.csv"));
        CHECK(relative_difference(x_model, x_mixture) <= same_network);

        // the model in float32, the solver in double: close, not equal
        require_ok(s.run(in.with_model(method, "model32.csv", "float32")));
        const double d32 = relative_difference(deis_cli_test::read(s.out_path("model32.csv")), x_mixture);
        CHECK(d32 <= float_model);
        CHECK(d32 > 0.0);

        // the solver in float (--float), the model in float64: the mixture's --float run, up to
        // the same float rounding of the state
        require_ok(s.run(deis_cli_test::add(in.with_model(method, "model_float.csv"), {"--float"})));
        CHECK(relative_difference(deis_cli_test::read(s.out_path("model_float.csv")), x_mixture) <= float_model);
    }
}

TEST_CASE("deis-sample --model (torch): --batch gives the same bits, --shape 1,2,2 shows the model [B,1,2,2]",
          "[cli][torch]") {
    using namespace deis_cli_model_test;
    scratch s;
    const gauss_inputs in(s);
    const std::string method = "tab3+data+corrector";
    require_ok(s.run(in.with_model(method, "all.csv")));
    const std::string all = deis_cli_test::slurp(s.out_path("all.csv"));
    // 5 samples: calls of 2, 2 and 1; and of 1; and more than there are
    for (const char* batch : {"2", "1", "7"}) {
        INFO("--batch " << batch);
        require_ok(s.run(deis_cli_test::add(in.with_model(method, "batched.csv"), {"--batch", batch})));
        CHECK(deis_cli_test::slurp(s.out_path("batched.csv")) == all);
    }
    for (const char* dtype : {"float64", "float32"}) {
        INFO("--dtype " << dtype);
        args_t shaped = deis_cli_test::add(in.with_model(method, "shaped.csv", dtype), {"--shape", "1,2,2"});
        // the shaped module refuses any input but [B, 1, 2, 2]: proof that it gets that
        shaped = deis_cli_test::set(shaped, "--model", save_module(s, "shaped.pt", shaped_source));
        require_ok(s.run(deis_cli_test::add(shaped, {"--batch", "2"})));
        if (std::string(dtype) == "float64") CHECK(deis_cli_test::slurp(s.out_path("shaped.csv")) == all);
        // without --shape it gets [B, 4] and refuses: a failed call, exit 3, naming the call
        const cli_result flat = s.run(deis_cli_test::set(in.with_model(method, "flat.csv", dtype), "--model",
                                                         s.path("shaped.pt")));
        deis_cli_test::require_failure(flat, deis_cli_test::exit_run,
                                       {"--model", "shaped.pt", "network call 1 at t = 1", "not [B, 1, 2, 2]"});
        CHECK(!deis_cli_test::fs::exists(s.out_path("flat.csv")));
    }
}

TEST_CASE("deis-sample --model (torch): the timesteps of a --scheduler-config, --invert and back, --print-grid",
          "[cli][torch]") {
    using namespace deis_cli_model_test;
    scratch s;
    const gauss_inputs in(s);
    // a module that accepts integer times >= 1 only (a discrete config's timesteps tau), and
    // returns eps = 0
    const std::string taus = save_module(s, "taus.pt", R"JIT(
def forward(self, x, t):
    assert bool(torch.all(t == torch.round(t))) and bool(torch.all(t >= 1.0)), "t is not a timestep"
    return x * 0.0
)JIT");
    const args_t config = {"--model", taus, "--noise", in.noise, "--out", s.out_path(), "--method", "ddim",
                           "--steps", "10", "--scheduler-config",
                           deis_cli_test::reference("diffusers/configs/stable-diffusion-v1-5.json"), "--print-grid"};
    const cli_result r = s.run(config);
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.rfind("0.902 901\n", 0) == 0);  // t, then the timestep tau the model is given
    CHECK(r.out.substr(r.out.rfind("nfe=")) == "nfe=10\n");
    // the same module on the schedule's own times t in (0, 1]: its second call (t = 1 is an
    // integer) refuses
    const cli_result plain = s.run(deis_cli_test::set(in.with_model("ddim", "plain.csv"), "--model", taus));
    deis_cli_test::require_failure(plain, deis_cli_test::exit_run, {"--model", "network call 2 at t = 0.", "timestep"});
    CHECK(!deis_cli_test::fs::exists(s.out_path("plain.csv")));

    // --invert from the samples and back: the model and the mixture agree both ways (tAB3 with
    // data prediction: in noise prediction it is refused going up this 8-step grid)
    for (const char* method : {"tab3+data", "rk:heun2"}) {
        INFO("--method " << method);
        require_ok(s.run(in.with_model(method, "x0.csv")));
        for (const std::string& who : std::vector<std::string>{"model", "mixture"}) {
            args_t inv = who == "model" ? in.with_model(method, who + "_inverted.csv")
                                        : in.with_mixture(method, who + "_inverted.csv");
            inv = deis_cli_test::add(deis_cli_test::drop(inv, "--noise"), {"--init", s.out_path("x0.csv"), "--invert"});
            require_ok(s.run(inv));
        }
        CHECK(relative_difference(deis_cli_test::read(s.out_path("model_inverted.csv")),
                                  deis_cli_test::read(s.out_path("mixture_inverted.csv"))) <= same_network);
    }
}

TEST_CASE("deis-sample --model (torch): --grid optimized calibrates on the model as on the mixture",
          "[cli][torch]") {
    using namespace deis_cli_model_test;
    scratch s;
    const gauss_inputs in(s);
    const args_t optimized = {"--grid", "optimized", "--calibration-samples", "16", "--steps", "5"};
    args_t model = in.with_model("tab3+data", "model.csv");
    args_t mixture = in.with_mixture("tab3+data", "mixture.csv");
    for (std::size_t i = 0; i < optimized.size(); i += 2) {
        model = deis_cli_test::set(model, optimized[i], optimized[i + 1]);
        mixture = deis_cli_test::set(mixture, optimized[i], optimized[i + 1]);
    }
    require_ok(s.run(deis_cli_test::add(model, {"--save-grid", s.out_path("model_grid.txt")})));
    require_ok(s.run(deis_cli_test::add(mixture, {"--save-grid", s.out_path("mixture_grid.txt")})));
    // the calibration's choices depend on comparisons of errors: equal networks up to rounding
    // give grids equal to far better than the grids' own accuracy
    const Eigen::MatrixXd g_model = deis_cli_test::read(s.out_path("model_grid.txt"));
    const Eigen::MatrixXd g_mixture = deis_cli_test::read(s.out_path("mixture_grid.txt"));
    CHECK(relative_difference(g_model, g_mixture) <= 1e-6);
    CHECK(relative_difference(deis_cli_test::read(s.out_path("model.csv")),
                              deis_cli_test::read(s.out_path("mixture.csv"))) <= 1e-6);
}

TEST_CASE("deis-sample --model (torch): refusals name the problem, exit with their code, write nothing",
          "[cli][torch]") {
    using namespace deis_cli_model_test;
    using deis_cli_test::exit_input;
    using deis_cli_test::exit_run;
    using deis_cli_test::exit_usage;
    scratch s;
    const gauss_inputs in(s);
    const args_t base = in.with_model("tab3", "x0.csv");
    const auto refused = [&](const args_t& args, int code, const std::vector<std::string>& mentions) {
        INFO(deis_cli_test::join(args));
        deis_cli_test::require_failure(s.run(args), code, mentions);
        CHECK(s.out_files().empty());
    };
    // the file
    refused(deis_cli_test::set(base, "--model", s.path("missing.pt")), exit_input, {"--model", "missing.pt"});
    refused(deis_cli_test::set(base, "--model", s.write("text.pt", "not a module\n")), exit_input,
            {"--model", "text.pt", "not a TorchScript module"});
    refused(deis_cli_test::set(base, "--model", s.dir().string()), exit_input, {"--model", "directory"});
    // its calls
    refused(deis_cli_test::set(base, "--model", save_module(s, "half.pt", R"JIT(
def forward(self, x, t):
    return x[:, :2]
)JIT")),
            exit_run, {"half.pt", "network call 1 at t = 1", "shape [5, 2]", "[5, 4]"});
    refused(deis_cli_test::set(deis_cli_test::set(base, "--model", save_module(s, "double.pt", R"JIT(
def forward(self, x, t):
    return x.double()
)JIT")),
                               "--dtype", "float32"),
            exit_run, {"double.pt", "network call 1", "dtype float64", "float32"});
    refused(deis_cli_test::set(base, "--model", save_module(s, "tuple.pt", R"JIT(
def forward(self, x, t):
    return (x, t)
)JIT")),
            exit_run, {"tuple.pt", "network call 1", "not a tensor"});
    refused(deis_cli_test::set(base, "--model", save_module(s, "inf.pt", R"JIT(
def forward(self, x, t):
    return x / 0.0
)JIT")),
            exit_run, {"non-finite", "t = 1", "step 1"});
    refused(deis_cli_test::set(base, "--model", save_module(s, "nan.pt", R"JIT(
def forward(self, x, t):
    return torch.where(t.reshape([-1, 1]) < 0.5, x * float("nan"), x)
)JIT")),
            exit_run, {"non-finite", "t = 0."});
    // the options
    if (!torch::cuda::is_available())
        refused(deis_cli_test::add(base, {"--device", "cuda"}), exit_usage, {"--device cuda", "CUDA is not available"});
    refused(deis_cli_test::add(base, {"--shape", "3,1,1"}), exit_input, {"--shape 3,1,1", "3 values", "dimension 4"});
    refused(deis_cli_test::add(base, {"--shape", "1,0,4"}), exit_usage, {"--shape 1,0,4", "'0'"});
    refused(deis_cli_test::add(base, {"--shape", "2,x"}), exit_usage, {"--shape 2,x", "'x'"});
    refused(deis_cli_test::add(base, {"--batch", "0"}), exit_usage, {"--batch", "0"});
    refused(deis_cli_test::add(base, {"--dtype", "float16"}), exit_usage, {"--dtype"});
    refused(deis_cli_test::add(base, {"--mixture-csv", in.mixture}), exit_usage, {"--model", "--mixture"});
    refused(deis_cli_test::add(in.with_mixture("tab3", "x0.csv"), {"--dtype", "float32"}), exit_usage,
            {"--dtype", "--model only"});
    refused(deis_cli_test::add(in.with_mixture("tab3", "x0.csv"), {"--shape", "1,2,2"}), exit_usage,
            {"--shape", "--model only"});
    refused(in.run("tab3", "x0.csv"), exit_usage, {"--mixture", "--model", "required"});
}

namespace deis_cli_model_test {

// The median over samples of ||x_i - exact_i|| / sqrt(D), one sample per column.
double median_error(const Eigen::MatrixXd& x, const Eigen::MatrixXd& exact) {
    REQUIRE(x.rows() == exact.rows());
    REQUIRE(x.cols() == exact.cols());
    std::vector<double> e(std::size_t(x.cols()));
    for (Eigen::Index i = 0; i < x.cols(); ++i)
        e[std::size_t(i)] = (x.col(i) - exact.col(i)).norm() / std::sqrt(double(x.rows()));
    std::sort(e.begin(), e.end());
    const std::size_t n = e.size();
    return n % 2 ? e[n / 2] : 0.5 * (e[n / 2 - 1] + e[n / 2]);
}

// The median error of one official run in trained/peers.csv (impl,method,order,grid,steps,...).
double peer_median(const std::string& impl, const std::string& method, int order, const std::string& grid, int steps) {
    const std::string key = impl + "," + method + "," + std::to_string(order) + "," + grid + "," + std::to_string(steps) + ",";
    std::ifstream in(deis_cli_test::reference("trained/peers.csv"));
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(key, 0) != 0) continue;
        std::stringstream cells(line);
        std::string cell;
        for (int c = 0; c < 8; ++c) std::getline(cells, cell, ',');
        return std::stod(cell);  // column 8: median_err
    }
    FAIL("no run " << key << " in trained/peers.csv");
    return 0.0;
}

}  // namespace deis_cli_model_test

TEST_CASE("deis-sample --model (torch): the presets reproduce the official DPM-Solver++, UniPC and iPNDM codes "
          "on a trained network",
          "[cli][torch][presets]") {
    // The trained patch network of tests/data/trained/ and the official codes' own runs on it
    // (peers.csv, median errors to 7 significant digits). A preset reproduces the published
    // update; the official run and the preset differ by round-off (~1e-13 of the samples, far
    // below the errors of ~1e-2), so the medians agree to peers.csv's 7 digits: 1e-6 relative
    // is that rounding (5e-7) with a margin of 2.
    using namespace deis_cli_model_test;
    scratch s;
    const std::string dir = deis_cli_test::reference("trained/");
    const Eigen::MatrixXd exact = deis_cli_test::read(dir + "exact.csv");
    struct run_t {
        const char* method;
        const char* order;  // --order, "" for none
        const char* grid;   // t-power (with power), log-rho
        const char* power;
        int steps;
        const char* impl;
        const char* peer;
        int peer_order;
        const char* peer_grid;
    };
    const run_t runs[] = {
        {"dpmpp_2m", "", "t-power", "1", 10, "dpm-solver", "dpmsolver++:multistep", 2, "t1"},
        {"dpmpp_2m", "", "log-rho", "", 8, "dpm-solver", "dpmsolver++:multistep", 2, "log"},
        {"dpmpp_3m", "", "t-power", "2", 5, "dpm-solver", "dpmsolver++:multistep", 3, "t2"},
        {"uni_pc_bh2", "2", "log-rho", "", 8, "unipc", "unipc-bh2:data_prediction", 2, "log"},
        {"uni_pc", "3", "t-power", "2", 12, "unipc", "unipc-bh1:data_prediction", 3, "t2"},
        {"ipndm", "", "t-power", "1", 10, "deis-official", "ipndm", 3, "t1"},
    };
    for (const run_t& r : runs) {
        INFO("--method " << r.method << " --order " << r.order << " --grid " << r.grid << " " << r.power << " --steps "
                         << r.steps);
        args_t a = {"--model", dir + "patches_eps.pt", "--dtype", "float64", "--noise", dir + "xT.csv", "--out",
                    s.out_path("x.csv"), "--schedule", "vp-linear", "--method", r.method, "--grid", r.grid,
                    "--steps", std::to_string(r.steps)};
        if (*r.order) a = deis_cli_test::add(a, {"--order", r.order});
        if (*r.power) a = deis_cli_test::add(a, {"--grid-power", r.power});
        const cli_result out = s.run(a);
        require_ok(out);
        CHECK(out.out == "nfe=" + std::to_string(r.steps) + "\n");
        const double got = median_error(deis_cli_test::read(s.out_path("x.csv")), exact);
        const double want = peer_median(r.impl, r.peer, r.peer_order, r.peer_grid, r.steps);
        CAPTURE(got, want);
        CHECK(std::abs(got - want) <= 1e-6 * want);
    }
}

#ifdef DEIS_BENCH_EXE

namespace deis_cli_model_test {

// deis-bench run in the scratch directory.
cli_result bench(const scratch& s, const args_t& args) { return deis_cli_test::run_program(args, s.dir().string(), DEIS_BENCH_EXE); }

// The rows of a results.csv, each as its cells.
std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
    std::vector<std::vector<std::string>> rows;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> cells;
        std::stringstream ss(line);
        for (std::string c; std::getline(ss, c, ',');) cells.push_back(c);
        if (!line.empty() && line.back() == ',') cells.emplace_back();
        rows.push_back(cells);
    }
    return rows;
}

// deis-bench's errors of the model against the mixture's: each path integrates its own
// reference solution (rkf78 at 1e-12) and runs the solvers from the same x_T with an exact eps
// computed in double by two codes, a few ulps apart (see same_network): the samples and the
// references agree to ~1e-15, the errors (1.7e-4 to 0.2 here) to ~1e-11 relative. results.csv
// prints 7 significant digits, so two roundings of nearly equal values differ by at most one
// unit of the 7th digit, 1e-6 relative: 2e-6 is that with a margin of 2 (measured: every value
// printed the same).
constexpr double same_errors = 2e-6;

}  // namespace deis_cli_model_test

TEST_CASE("deis-bench --model (torch): the exact eps of a Gaussian as a TorchScript module gives the mixture's errors",
          "[cli][torch][bench]") {
    using namespace deis_cli_model_test;
    scratch s;
    const gauss_inputs in(s);
    const args_t common = {"--noise", in.noise, "--solvers", "tab3,rk:heun2,recommended*", "--grids", "t2,rec",
                           "--nfe", "4,10"};
    const cli_result by_model = bench(s, deis_cli_test::add(common, {"--model", in.model, "--dtype", "float64",
                                                                     "--out-dir", s.out_path("model")}));
    const cli_result by_mixture =
        bench(s, deis_cli_test::add(common, {"--mixture", in.mixture, "--out-dir", s.out_path("mixture")}));
    INFO("model: " << by_model.err << "\nmixture: " << by_mixture.err);
    REQUIRE(by_model.code == 0);
    REQUIRE(by_mixture.code == 0);
    const auto model_rows = csv_rows(s.out_path("model/results.csv"));
    const auto mixture_rows = csv_rows(s.out_path("mixture/results.csv"));
    REQUIRE(model_rows.size() == mixture_rows.size());
    REQUIRE(model_rows.size() == 1 + 3 * 2 * 2 + 2);  // header, 3 solvers x 2 grids x 2 budgets, calibrated on rec
    for (std::size_t i = 1; i < model_rows.size(); ++i) {
        const auto& m = model_rows[i];
        const auto& x = mixture_rows[i];
        INFO("row " << i << ": " << deis_cli_test::join(m) << " / " << deis_cli_test::join(x));
        REQUIRE(m.size() == 12);
        REQUIRE(x.size() == 12);
        CHECK(m[0] == "model");
        for (int c = 1; c < 8; ++c) CHECK(m[std::size_t(c)] == x[std::size_t(c)]);  // solver .. status
        if (m[7] != "ok") continue;
        for (int c = 8; c < 11; ++c) {  // median, RMS, max
            const double a = std::stod(m[std::size_t(c)]), b = std::stod(x[std::size_t(c)]);
            CHECK(std::abs(a - b) <= same_errors * std::abs(b));
        }
        CHECK(m[11] == "n/a");  // no mixture, no mode switches
    }
    CHECK(by_model.err.find("calls of the model") != std::string::npos);

    // calls of at most 2 samples (5 x_T: 2, 2, 1): the same numbers, bit for bit
    const cli_result batched = bench(s, deis_cli_test::add(common, {"--model", in.model, "--dtype", "float64", "--batch",
                                                                    "2", "--out-dir", s.out_path("batched")}));
    REQUIRE(batched.code == 0);
    CHECK(deis_cli_test::slurp(s.out_path("batched/results.csv")) == deis_cli_test::slurp(s.out_path("model/results.csv")));
}

TEST_CASE("deis-bench --model (torch): refusals name the problem, exit non-zero, leave --out-dir untouched",
          "[cli][torch][bench]") {
    using namespace deis_cli_model_test;
    scratch s;
    const gauss_inputs in(s);
    s.write("out/previous.txt", "an earlier run\n");
    const auto before = deis_cli_test::snapshot(s.dir() / "out");
    const args_t base = {"--model", in.model, "--dtype", "float64", "--noise", in.noise, "--solvers", "tab3",
                         "--grids", "t2", "--nfe", "6", "--out-dir", s.out_path()};
    const auto refused = [&](const args_t& args, const std::vector<std::string>& mentions) {
        INFO(deis_cli_test::join(args));
        const cli_result r = bench(s, args);
        INFO("stderr: " << r.err);
        CHECK(r.code != 0);
        CHECK(r.out.empty());
        CHECK(r.err.rfind("deis-bench: ", 0) == 0);
        for (const auto& m : mentions) {
            INFO("must mention: " << m);
            CHECK(r.err.find(m) != std::string::npos);
        }
        CHECK(deis_cli_test::snapshot(s.dir() / "out") == before);
    };
    refused(deis_cli_test::set(base, "--model", s.path("missing.pt")), {"--model", "missing.pt"});
    refused(deis_cli_test::set(base, "--model", s.write("text.pt", "not a module\n")),
            {"--model", "text.pt", "not a TorchScript module"});
    // calls that break the contract: the first call fails, in the reference solution at t = 1
    refused(deis_cli_test::set(base, "--model", save_module(s, "half.pt", R"JIT(
def forward(self, x, t):
    return x[:, :2]
)JIT")),
            {"--model", "half.pt", "network call 1 at t = 1", "shape [5, 2]", "[5, 4]"});
    refused(deis_cli_test::set(base, "--model", save_module(s, "inf.pt", R"JIT(
def forward(self, x, t):
    return x * float("inf")
)JIT")),
            {"--model", "inf.pt", "network call 1 at t = 1", "not finite"});
    // a call of the sweep: the reference given, NaN from the third call on
    refused(deis_cli_test::add(deis_cli_test::set(base, "--model", save_module(s, "late.pt", R"JIT(
def forward(self, x, t):
    if float(t[0]) < 0.9:
        return x * float("nan")
    return x
)JIT")),
                               {"--reference", in.noise}),
            {"--model", "late.pt", "network call 2 at t = ", "not finite"});
    refused(deis_cli_test::add(base, {"--shape", "3,1,1"}), {"--shape", "3 values", "4"});
    refused(deis_cli_test::add(base, {"--mixture", in.mixture}), {"--model", "--mixture"});
    refused(deis_cli_test::add(deis_cli_test::set(base, "--model", ""), {"--mixture", in.mixture}),
            {"--dtype", "--model only"});
    refused(deis_cli_test::add(base, {"--peers", in.noise}), {"--peers", "nfe"});
    if (!torch::cuda::is_available())
        refused(deis_cli_test::add(base, {"--device", "cuda"}), {"--device cuda", "CUDA is not available"});
}

TEST_CASE("deis-bench --calibration-samples: the size of the calibrated row's batch; out of range refused; with --suite "
          "every option but --samples, --seed, --out-dir refused",
          "[cli][torch][bench]") {
    using namespace deis_cli_model_test;
    scratch s;
    const gauss_inputs in(s);
    const args_t base = {"--mixture", in.mixture, "--noise", in.noise, "--solvers", "recommended+calibrated",
                         "--grids", "rec", "--nfe", "4", "--out-dir", s.out_path("run")};
    const cli_result r = bench(s, deis_cli_test::add(base, {"--calibration-samples", "16"}));
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("calibration reference (recommended+calibrated): 16 samples,") != std::string::npos);
    CHECK(deis_cli_test::slurp(s.out_path("run/table.md")).find("make_calibration_reference on 16 samples of seed") !=
          std::string::npos);
    const cli_result d = bench(s, deis_cli_test::set(base, "--out-dir", s.out_path("default")));
    REQUIRE(d.code == 0);
    CHECK(d.err.find("calibration reference (recommended+calibrated): 256 samples,") != std::string::npos);

    for (const std::string bad : {"0", "100001", "-3", "1e3"}) {
        const cli_result b = bench(s, deis_cli_test::add(deis_cli_test::set(base, "--out-dir", s.out_path("bad")),
                                                         {"--calibration-samples", bad}));
        INFO("--calibration-samples " << bad << ": " << b.err);
        CHECK(b.code != 0);
        CHECK(b.err.find("--calibration-samples") != std::string::npos);
        CHECK(!std::filesystem::exists(s.out_path("bad")));
    }
    // with --suite every option but --samples, --seed and --out-dir is refused, not ignored
    for (const args_t& extra : std::vector<args_t>{{"--calibration-samples", "16"},
                                                   {"--nfe", "5"},
                                                   {"--solvers", "ddim", "--grids", "t2"},
                                                   {"--case", "ve"},
                                                   {"--ref-tol", "1e-9"}}) {
        const cli_result with_suite =
            bench(s, deis_cli_test::add({"--suite", "--out-dir", s.out_path("suite")}, extra));
        INFO(extra.front() << ": " << with_suite.err);
        CHECK(with_suite.code == 1);
        CHECK(with_suite.err.find(extra.front()) != std::string::npos);
        CHECK(with_suite.err.find("would be ignored") != std::string::npos);
        CHECK(!std::filesystem::exists(s.out_path("suite")));
    }
}

TEST_CASE("deis-bench --suite: an output that is not a regular file is refused before any work, nothing written",
          "[cli][torch][bench]") {
    using namespace deis_cli_model_test;
    scratch s;
    std::filesystem::create_directories(s.dir() / "out" / "suite" / "suite.md");
    s.write("out/suite/suite.md/keep.txt", "a directory where suite.md would go\n");
    s.write("out/suite/suite.csv", "an earlier suite.csv\n");
    const auto before = deis_cli_test::snapshot(s.dir() / "out");
    const cli_result r = bench(s, {"--suite", "--out-dir", (s.dir() / "out").string()});
    INFO("stderr: " << r.err);
    CHECK(r.code == 1);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("deis-bench: ", 0) == 0);
    CHECK(r.err.find("suite.md") != std::string::npos);
    CHECK(r.err.find("refusing") != std::string::npos);
    CHECK(r.err.find("suite: ") == std::string::npos);  // no problem was started
    CHECK(deis_cli_test::snapshot(s.dir() / "out") == before);
}

#endif  // DEIS_BENCH_EXE

#endif  // DEIS_SAMPLE_EXE
