#include "model.hpp"

#include <Eigen/Core>
#include <cstdint>
#include <deis/deis.hpp>
#include <deis/detail/error.hpp>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "problems.hpp"
#include "report.hpp"
#include "runs.hpp"
#include "suite.hpp"
#include "support/csv_io.hpp"

#ifdef DEIS_BENCH_TORCH_PLUGIN
#include "deis_sample/torch_plugin.hpp"
#endif

namespace deis_bench {

void use_peers(const std::string& path, problem_info& info) {
    info.peer_best = read_peer_medians(path);
    info.peer_source = std::filesystem::path(path).filename().string();
    info.peer_note = "the lowest median_err of any row of " + path + " at that NFE";
}

#ifdef DEIS_BENCH_TORCH_PLUGIN

namespace {

namespace plugin = deis_sample::plugin;

// The plugin's module as a Network on state<double>, for the solvers, the reference integrator
// and the calibration alike; it counts its calls over the whole run to name a failed one.
class model_network {
public:
    model_network(std::string name, std::unique_ptr<plugin::module> m) : name_(std::move(name)), module_(std::move(m)) {}

    void operator()(const deis::state<double>& x, double t, deis::state<double>& out) const {
        const long long call = ++calls_;
        try {
            (*module_)(x, t, out);
        } catch (const std::exception& e) {  // the contract broken, or forward's own error
            fail(call, t, e.what());
        }
        // a diverging solver may hand the module inf: a finite input must give a finite output
        if (!out.allFinite() && x.allFinite()) fail(call, t, "forward returned a value that is not finite");
    }

    long long calls() const { return calls_; }

private:
    [[noreturn]] void fail(long long call, double t, const std::string& what) const {
        throw model_error(name_ + ": network call " + std::to_string(call) + " at t = " +
                          deis::detail::format_double(t) + ": " + what + "; nothing written");
    }

    std::string name_;
    std::unique_ptr<plugin::module> module_;
    mutable long long calls_ = 0;
};

// The module of --model through deis-sample's plugin, with --dtype, --device, --batch, --shape.
std::unique_ptr<plugin::module> load_module(const settings& cfg) {
    std::string error;
    const plugin::load_function load = plugin::open_plugin(DEIS_BENCH_TORCH_PLUGIN, error);
    if (load == nullptr) throw std::runtime_error("--model: " + error);
    plugin::loaded l = plugin::load_module(load, cfg.model_file, cfg.dtype, cfg.device, cfg.batch, cfg.shape);
    if (l.why == plugin::refusal::usage) throw std::runtime_error("--" + l.message);  // --device cuda without CUDA
    if (l.why == plugin::refusal::input) throw std::runtime_error("--model " + l.message);
    return std::move(l.net);
}

// --model-output by the library's names of the outputs (CLI11 checked it is one of them)
deis::model_output output_of(const std::string& name) {
    using out = deis::model_output;
    for (out o : {out::x0, out::v, out::score, out::velocity})
        if (name == deis::detail::to_string(o)) return o;
    return out::eps;
}

// The run on one schedule from t_max to t_end; `schedule_line` describes it.
template <class Schedule>
int run_on(const settings& cfg, const Schedule& sch, double t_max, double t_end, const std::string& schedule_line) {
    problem_info info;
    info.mixture = false;
    info.title = std::filesystem::path(cfg.model_file).filename().string() + " (" + cfg.schedule + ")";
    long shape_size = 1;
    for (long s : cfg.shape) shape_size *= s;

    // the inputs, all read before the module is loaded
    Eigen::MatrixXd x_T;
    if (!cfg.noise_file.empty()) {
        x_T = deis_tools::read_samples(cfg.noise_file);
        info.lines.push_back(std::to_string(x_T.cols()) + " samples x_T from " + cfg.noise_file);
    } else {
        const long D = cfg.dim > 0 ? cfg.dim : shape_size;
        x_T = draw_noise(D, cfg.samples, cfg.seed, sch.sigma(t_max));
        info.lines.push_back(std::to_string(cfg.samples) + " samples x_T ~ N(0, sigma(t_max)^2 I), sigma = " +
                             deis::detail::format_double(sch.sigma(t_max)) + ", seed " + std::to_string(cfg.seed));
    }
    if (!cfg.shape.empty() && shape_size != x_T.rows())
        throw std::runtime_error("--shape holds " + std::to_string(shape_size) + " values, a sample x_T has " +
                                 std::to_string(x_T.rows()));
    Eigen::MatrixXd ref;
    if (!cfg.reference_file.empty()) ref = deis_tools::read_samples(cfg.reference_file);
    if (!cfg.peers_file.empty()) use_peers(cfg.peers_file, info);

    const model_network net("--model " + cfg.model_file, load_module(cfg));
    std::string shape = "[B, " + std::to_string(x_T.rows()) + "]";
    if (!cfg.shape.empty()) {
        shape = "[B";
        for (long s : cfg.shape) shape += ", " + std::to_string(s);
        shape += "]";
    }
    info.lines.push_back("network: " + cfg.model_file + " (TorchScript): forward(x " + shape + ", t [B]) returns " +
                         cfg.model_output + "; " + cfg.dtype + " on " + cfg.device +
                         (cfg.batch > 0 ? ", at most " + std::to_string(cfg.batch) + " samples a call" : ""));
    info.lines.push_back(schedule_line);
    if (cfg.schedule == "flow") info.baseline = "euler";
    const int status = run(cfg, sch, net, output_of(cfg.model_output), nullptr, t_max, t_end, x_T, info, ref);
    std::cerr << "deis-bench: " << net.calls() << " calls of the model in all\n";
    return status;
}

// A TorchScript module of the suite as a float64 network.
any_network suite_network(const std::string& path) {
    settings cfg;
    cfg.model_file = path;
    cfg.dtype = "float64";
    auto net = std::make_shared<model_network>("--suite " + path, load_module(cfg));
    return [net](const deis::state<double>& x, double t, deis::state<double>& out) { (*net)(x, t, out); };
}

// A network of the project's own (VP linear, D values a sample): 500 x_T ~ N(0, sigma(1)^2 I)
// and 256 calibration points from fixed seeds; no reference (run_suite solves it as for its
// mixtures).
trained_problem drawn_problem(std::string name, const std::string& path, long D, std::uint64_t x_T_seed,
                              std::uint64_t calibration_seed) {
    const deis::vp_linear sch(0.1, 20.0, 1.0);
    trained_problem p;
    p.name = std::move(name);
    p.net = suite_network(path);
    p.x_T = draw_noise(D, 500, x_T_seed, sch.sigma(1.0));
    p.calibration = draw_noise(D, 256, calibration_seed, sch.sigma(1.0));
    return p;
}

// The digits network (digits/digits_eps.pt), 64 values.
trained_problem digits_problem(const std::string& dir) {
    return drawn_problem("digits/vp (trained)", dir + "/digits/digits_eps.pt", 64, 20251003, 20251004);
}

// The breast cancer network (breast_cancer/cancer_eps.pt), 30 values.
trained_problem breast_cancer_problem(const std::string& dir) {
    return drawn_problem("cancer/vp (trained)", dir + "/breast_cancer/cancer_eps.pt", 30, 20251005, 20251006);
}

}  // namespace

std::vector<trained_problem> trained_suite(const std::string& dir) {
    trained_problem p;
    p.name = "patches/vp (trained)";
    p.net = suite_network(dir + "/patches_eps.pt");
    p.x_T = deis_tools::read_samples(dir + "/xT.csv");
    p.reference = deis_tools::read_samples(dir + "/exact.csv");
    p.calibration = deis_tools::read_samples(dir + "/calib_xT.csv");
    for (const auto& [n, e] : read_peer_medians(dir + "/peers.csv")) p.best_peer.emplace_back(n, e);
    std::vector<trained_problem> out;
    out.push_back(std::move(p));
    out.push_back(digits_problem(dir));
    out.push_back(breast_cancer_problem(dir));
    return out;
}

int run_model(const settings& cfg) {
    if (cfg.schedule == "ve")
        return run_on(cfg, deis::ve(0.01, 50.0), 1.0, 0.0,
                      "schedule: VE, sigma_min = 0.01, sigma_max = 50, from t = 1 to t_end = 0 (sigma = 0.01)");
    if (cfg.schedule == "flow")
        return run_on(cfg, deis::flow_matching(), 1.0, 1e-3,
                      "schedule: flow matching, x_t = (1 - t) x0 + t eps, from t = 1 to t_end = 1e-3");
    return run_on(cfg, deis::vp_linear(0.1, 20.0, 1.0), 1.0, 1e-3,
                  "schedule: VP linear, beta_min = 0.1, beta_max = 20, from T = 1 to t_end = 1e-3");
}

#else

std::vector<trained_problem> trained_suite(const std::string& dir) {
    std::cerr << "deis-bench --suite: built without LibTorch, the trained networks of " << dir << " are left out\n";
    return {};
}

int run_model(const settings& cfg) {
    throw std::runtime_error("--model " + cfg.model_file +
                             ": deis-bench was built without LibTorch (its CMake did not find it)");
}

#endif

}  // namespace deis_bench
