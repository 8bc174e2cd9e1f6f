// deis-sample: what its parts share. The program integrates the probability-flow ODE of a
// Gaussian mixture (whose exact model output plays the network), or of a trained network
// (--model: a TorchScript module), from given noise at t_max down to t_end with one of the
// library's solvers, and writes the samples. Usage: docs/deis-sample.md, or --help.
//
// One run path, whatever the options: inputs -> schedule -> grid -> solver options -> run ->
// output.
//   options.cpp    the command line: parsing, ranges, defaults that depend on other options
//   diffusers.cpp  the command-line options of models from diffusers (--scheduler-config,
//                  --init, --strength, --invert, --print-grid, --image-seq-len)
//   inputs.cpp     the input files: refusing an output that is one of them, reading them
//                  (mixture, noise, --init, --scheduler-config, --model)
//   trained.cpp    --model: a TorchScript network, run by the LibTorch plugin that the
//                  program loads for it only (torch_plugin.hpp, torch/plugin.cpp)
//   schedule.cpp   the schedule, the network's output and timestep (make_model)
//   network.hpp    the mixture as the network; the schedule as the set-up sees it
//   grid.hpp       the grid of the run (build_grid: --grid, --grid-file, --sigmas, the config's,
//                  --grid optimized, --flow-shift, then --strength's tail and --invert)
//   run.cpp        the solver's options (solver_options), the run, writing the output
//   interrupt.cpp  SIGINT and SIGTERM (interrupt.hpp); run_control.hpp: --progress, the observer
//   main.cpp       the order of the above, and the one line on stderr for every failure
#pragma once

#include <Eigen/Core>
#include <CLI/CLI.hpp>
#include <deis/diffusers.hpp>
#include <deis/research/gmm.hpp>
#include <deis/multistep.hpp>
#include <deis/solver_config.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "support/number_options.hpp"

namespace deis_sample {

// Exit codes, one per kind of failure (docs/deis-sample.md); an interrupted run exits with
// 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
constexpr int exit_usage = 1;
constexpr int exit_input = 2;
constexpr int exit_run = 3;
constexpr int exit_write = 4;

// The ranges of the numeric options (docs/deis-sample.md, "Ranges and memory").
constexpr int max_steps = 1000000;
constexpr double min_grid_power = 0.1, max_grid_power = 100.0;
constexpr double max_beta = 1000.0;
constexpr double min_sigma = 1e-8, max_sigma = 1e8;
constexpr double min_vp_t_end = 1e-12;
// flow matching and EDM: the time shift, and the default sigma range of --schedule edm
// (the EDM paper's)
constexpr double max_flow_shift = 1000.0;
constexpr double edm_sigma_min = 0.002, edm_sigma_max = 80.0;

// --shape: at most this many dimensions and values a sample
constexpr int max_shape_dims = 8;
constexpr long max_shape_size = 1000000000;

// The largest --grid-file (10^6 + 1 times of up to 60 characters) and --scheduler-config
// (room for trained_betas of 10^5 entries) read, in bytes (docs/deis-sample.md, "Input files").
constexpr std::uintmax_t max_grid_file_bytes = std::uintmax_t(64) << 20;
constexpr std::uintmax_t max_scheduler_config_bytes = std::uintmax_t(16) << 20;

/// A failure with its exit code; the message is printed as one line, after
/// "deis-sample: error: " (or after "deis-sample: " when it is not an error: an interruption).
struct failure : std::runtime_error {
    failure(int code_, const std::string& msg, bool error_ = true)
        : std::runtime_error(msg), code(code_), error(error_) {}
    int code;
    bool error;
};

[[noreturn]] inline void usage_error(const std::string& msg) { throw failure(exit_usage, msg); }

/// The shortest decimal form that reads back as v (0.7, not 0.69999999999999996).
std::string num(double v);

struct options {
    std::string mixture_json, mixture_csv, noise, out;
    /// The solver (deis/solver_config.hpp), from --method NAME and the flags that spell parts of
    /// it; the fields method..sde below are set from it (options.cpp: configure_solver).
    deis::solver_config config;
    std::string schedule, method, grid, tableau = "rk4";
    std::string predict = "noise", output = "eps";
    std::string clock = "t";  ///< --clock: tAB's polynomial variable (t; vp: tab_clock::vp_linear; logsnr: log_snr)
    double beta_min = 0.1, beta_max = 20.0, sigma_min = 0.01, sigma_max = 50.0;
    double t_max = 1.0, t_end = 1e-3, grid_power = 2.0;
    int order = -1, steps = 0;
    bool use_float = false, corrector = false;
    // flow matching and EDM (docs/deis-sample.md, "Flow matching and EDM")
    double flow_shift = 1.0;          ///< --flow-shift, flow only: the SD3 shift of the grid
    std::string sigmas;               ///< --sigmas as given; "" when the grid comes from --grid
    std::vector<double> sigma_list;   ///< --sigmas LIST: the noise levels (empty for a NAME)

    // Stochastic sampling and run control (options.cpp: add_stochastic_options and
    // check_stochastic_options, configure_solver; run_control.hpp).
    double eta = 0.0;            ///< --eta, DDIM only
    bool sde = false;            ///< --sde: the SDE form (data prediction, tab or rhoab, orders 0-2)
    std::uint64_t seed = 2022;   ///< --seed of the noise of a stochastic run
    bool progress = false;       ///< --progress on stderr

    // --grid optimized (deis::optimize_grid), --grid-file, --save-grid (the seed of the
    // calibration batch is --seed above)
    long calibration_samples = 256;
    std::string grid_file, save_grid;

    // ---- models from diffusers, img2img, inversion (diffusers.cpp; on every schedule) ----
    std::string scheduler_config;  ///< --scheduler-config: sets schedule, grid, model output
    std::string init;              ///< --init: data to start from (img2img) or to invert
    double strength = 1.0;         ///< --strength, in (0, 1], with --init
    double image_seq_len = 4096.0; ///< --image-seq-len: Flux's dynamic shift
    bool invert = false, print_grid = false;
    bool strength_given = false, grid_given = false, output_given = false;
    bool image_seq_len_given = false;

    // ---- a trained network in place of the mixture (trained.cpp; "Trained networks") ----
    std::string model_file;             ///< --model: a TorchScript module; "" for the mixture
    std::string dtype = "float32";      ///< --dtype of x and t given to the module
    std::string device = "cpu";         ///< --device: cpu or cuda
    long batch = 0;                     ///< --batch: samples a forward call at most; 0: all
    std::vector<long> shape;            ///< --shape C,H,W: one sample's shape; empty: [D]
};

/// Whether deis-sample was built with LibTorch (--model).
#ifdef DEIS_SAMPLE_TORCH
constexpr bool have_torch = true;
#else
constexpr bool have_torch = false;
#endif

/// Adds a numeric option whose text is checked before CLI11 converts it
/// (support/number_options.hpp: decimal integers; decimal floating values that are 0 or
/// normal doubles). A bad text throws deis_tools::bad_number, a usage error naming the option.
template <class T>
CLI::Option* add_number(CLI::App& app, const std::string& name, T& value, const std::string& help) {
    CLI::Option* opt = app.add_option(name, value, help);
    if constexpr (std::is_integral_v<T>)
        return opt->transform(deis_tools::decimal_integer(name));
    else
        return opt->check(deis_tools::finite_number(name));
}

/// Whether the grid is the --scheduler-config's own (no --grid, --grid-file or --sigmas).
inline bool config_grid(const options& o) {
    return !o.scheduler_config.empty() && !o.grid_given && o.grid != "file" && o.sigmas.empty();
}

/// Parses and checks the command line into `o` and fills in the defaults that depend on
/// other options. Returns false when the program is to exit 0 at once (--help, printed);
/// throws failure(exit_usage) for anything wrong, before any file is opened.
bool parse_command_line(int argc, char** argv, options& o);

/// A trained network (--model; trained.cpp), called as a deis Network is, with the solver's
/// time t and the time the network is given, `model_t` (t, or a config's timestep tau).
/// A call that breaks the contract throws failure(exit_run) naming the call and t.
class trained_network {
public:
    virtual ~trained_network() = default;
    virtual void operator()(const deis::state<float>& x, double t, double model_t, deis::state<float>& out) = 0;
    virtual void operator()(const deis::state<double>& x, double t, double model_t, deis::state<double>& out) = 0;
};

/// Loads --model with --dtype, --device, --batch and --shape: failure(exit_usage) for
/// --device cuda without CUDA (or a build without LibTorch), failure(exit_input) for a file
/// that is not a TorchScript module with a forward method.
std::unique_ptr<trained_network> load_model(const options& o);

/// The inputs of a run.
struct problem {
    std::optional<deis::gaussian_mixture> mixture;  ///< --mixture or --mixture-csv (empty with --model)
    Eigen::MatrixXd noise;  ///< one sample per column (empty with --invert)
    Eigen::MatrixXd init;   ///< --init, one sample per column (empty without it)
    std::optional<deis::scheduler_config> config;  ///< --scheduler-config
    std::shared_ptr<trained_network> network;      ///< --model (null with a mixture)

    /// The dimension D of a sample: the mixture's, else the noise's (or --init's).
    Eigen::Index dim() const {
        if (mixture) return mixture->dim();
        return noise.size() != 0 ? noise.rows() : init.rows();
    }
};

/// Refuses an output (--out, --save-grid) that is the same file as an input (same path, a
/// symbolic or a hard link: same device and inode) or as the other output (failure(exit_usage)),
/// and one whose path holds something other than a regular file, a symbolic link included
/// (failure(exit_write)). Before anything is read.
void refuse_output_over_input(const options& o);

/// Reads the mixture, the noise, --init and --scheduler-config, and checks them against each
/// other (failure(exit_input)).
problem read_inputs(const options& o);

/// The schedules of a run: the five of --schedule and vp_discrete (a discrete config;
/// a flow-matching config is flow_matching).
using any_schedule =
    std::variant<deis::vp_linear, deis::vp_cosine, deis::ve, deis::edm, deis::flow_matching, deis::vp_discrete>;

/// What the options and the config say about the model (schedule.cpp: make_model).
struct model {
    any_schedule schedule;
    deis::model_output output = deis::model_output::eps;  ///< --model-output, else the config's
    /// With --scheduler-config: the timestep the network is given (diffusers' tau = n t - 1 of a
    /// discrete schedule, n t for flow matching), and printed by --print-grid for a discrete one.
    std::optional<deis::timestep_map> timesteps;
    bool discrete = false;  ///< --print-grid prints "t tau"
    bool flow = false;      ///< flow matching: --strength's rule of SD3 and Flux
    bool config_flow = false;  ///< a flow-matching config: data prediction unless --predict
    double t_max = 1.0;     ///< the start of a grid made from --t-max (a config's: at most its end)
};

/// The schedule from --schedule and its parameters, or from the config (which the problem
/// holds); the model output and the network's timestep. Refuses (failure(exit_usage)) what the
/// config does not allow: --flow-shift on a discrete config, --image-seq-len where the config
/// has no dynamic shifting.
model make_model(const options& o, const problem& p);

/// Runs the solver on the noise (the noised --init, or the --init to invert) and writes the
/// samples to --out; prints the grid with --print-grid, then nfe=<calls> on stdout. Throws
/// failure (exit_usage, exit_run, exit_write, or 128 + signal).
void run(const options& o, problem p);

/// The model output named by --model-output (validated: eps, x0, v, score, velocity; run.cpp).
deis::model_output parse_output(const std::string& s);


/// The end of every run (run.cpp): checks the run's status, that it
/// made `nfe` network calls and that the samples x are finite (failure(exit_run) otherwise,
/// naming the step of `steps` where it failed), then writes x to --out and, with --save-grid
/// and a `grid`, the grid: both to temporaries first, renamed into place only when both are
/// written, so that a failure (failure(exit_write)) or a signal (`interrupted`,
/// stage::writing) leaves neither output changed. Scalar: float or double.
template <class Scalar>
void check_and_write(const options& o, const deis::sample_result& r, int nfe, int steps,
                     const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& x,
                     const std::vector<double>* grid = nullptr);

/// Adds the options of diffusers.cpp to the command line; checks them after parsing
/// (failure(exit_usage)).
void add_diffusers_options(CLI::App& app, options& o);
void validate_diffusers(options& o);

}  // namespace deis_sample
