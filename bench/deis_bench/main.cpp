// deis-bench: error versus number of network evaluations (NFE) for every solver and grid on
// a Gaussian mixture, whose exact noise prediction is known, or on a trained network (--model).
//
// For one problem (a mixture and a schedule) it draws x_T, integrates the probability-flow
// ODE to t_end with an adaptive high-order integrator (deis/research/reference.hpp) to get the
// reference solution, then runs every solver x grid x NFE budget from the same x_T and
// measures, per sample, e_i = ||x_i - x_ref_i|| / sqrt(D). It reports the median and RMS of
// e_i, the largest e_i, and how many samples ended in another mixture component than their
// reference (most_likely_component). Output: markdown tables on stdout (also table.md),
// results.csv, and log-log plots of median error versus NFE (PNG through gnuplot).
//
//   deis-bench                          the 2-D ring of 8 Gaussians, VP linear (about 10 s)
//   deis-bench --case gmm16d            a 16-D mixture of 5 components
//   deis-bench --case ve                the ring under the VE schedule
//   deis-bench --mixture m.json         your own mixture (JSON or CSV, see mixture_io.hpp)
//   deis-bench --solvers 'tab*,ddim' --grids t2 --nfe 10,20
//   deis-bench --check-reference tests/data
//   deis-bench --list                   the solvers and grids
//   deis-bench --stochastic --samples 4000   the stochastic samplers by sliced Wasserstein distance
//   deis-bench --model m.pt --noise xT.csv [--reference exact.csv] [--peers peers.csv]
//   deis-bench --suite                  the recommended rule's candidates on 27 problems, the choice
//                                       and its leave-one-out (suite.hpp; about 12 min)
//
// --model: a TorchScript module, run by deis-sample's LibTorch plugin (loaded for --model
// only; a build without LibTorch refuses it). Its contract: forward(x, t) with x of shape
// [B, D] (or [B] + --shape), the samples along dim 0, and t a 1-D tensor of the B times in x's
// dtype (--dtype) on x's device (--device); it returns a tensor of x's shape and dtype, the
// output --model-output names, under the schedule --schedule (vp-linear, ve, flow: those of the
// built-in cases). x_T comes from --noise (one sample per row) or is drawn from
// N(0, sigma(t_max)^2 I) with --dim D (or --shape); the reference solution from --reference, or
// is integrated as for a mixture. No mode switches (no mixture): n/a. A call that fails, returns
// another shape or dtype, or a non-finite value for a finite input stops the run (exit 1) with a
// message naming the call and its time, before anything is written to --out-dir.
//
// The sources: problems (mixtures, x_T), runs (solvers, grids, the sweep), model (--model),
// suite and selection (--suite), report (tables, CSV, the check against tests/data), plot
// (gnuplot) and this command line.
#include <CLI/CLI.hpp>
#include <Eigen/Core>
#include <algorithm>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../bench_support.hpp"
#include "model.hpp"
#include "problems.hpp"
#include "report.hpp"
#include "records.hpp"
#include "runs.hpp"
#include "stochastic.hpp"
#include "suite.hpp"
#include "support/csv_io.hpp"
#include "support/mixture_io.hpp"
#include "support/number_options.hpp"

namespace {

namespace fs = std::filesystem;
using namespace deis_bench;

int bench_main(int argc, char** argv) {
    settings cfg;
    bool list = false;
    CLI::App app{"deis-bench: error versus NFE of every deis solver on a Gaussian mixture with exact eps, or on a "
                 "trained network (--model)"};
    auto* o_case = app.add_option("--case", cfg.case_name,
                   "ring2d: 8 Gaussians on a circle of radius 4, std 0.3, VP linear 0.1/20, T = 1, t_end = 1e-3; "
                   "gmm16d: 16-D mixture of 5 components (seeded), same schedule; "
                   "ve: the ring under VE 0.01/50, t from 1 to 0; "
                   "flow: the ring under flow matching with the exact velocity, t from 1 to 1e-3")
        ->check(CLI::IsMember({"ring2d", "gmm16d", "ve", "flow"}))
        ->capture_default_str();
    app.add_option("--mixture", cfg.mixture_file,
                   "a mixture file (.json, else CSV as gmm2d_components.csv) replacing the case's mixture; the case "
                   "still chooses the schedule")
        ->check(CLI::ExistingFile);
    // numbers: decimal text only (support/number_options.hpp; CLI11 would read 010 as 8)
    app.add_option("--nfe", cfg.nfe, "NFE budgets, comma-separated")
        ->delimiter(',')
        ->transform(deis_tools::decimal_integer("--nfe"))
        ->capture_default_str();
    auto* samples = app.add_option("--samples", cfg.samples, "number of samples x_T")
                        ->transform(deis_tools::decimal_integer("--samples"))
                        ->capture_default_str();
    app.add_option("--seed", cfg.seed, "seed of x_T (std::mt19937_64 + std::normal_distribution)")
        ->transform(deis_tools::decimal_integer("--seed", false))
        ->capture_default_str();
    app.add_option("--out-dir", cfg.out_dir, "where results.csv, table.md, plot.gp and the PNGs go")
        ->capture_default_str();
    app.add_option("--solvers", cfg.solvers, "solvers to run: names or shell patterns, comma-separated (see --list)")
        ->delimiter(',');
    app.add_option("--grids", cfg.grids, "grids to use: names or shell patterns, comma-separated (see --list)")
        ->delimiter(',');
    app.add_option("--ref-tol", cfg.ref_tol, "atol = rtol of the reference solution (checked at a tenth of it)")
        ->check(deis_tools::finite_number("--ref-tol"))
        ->capture_default_str();
    app.add_option("--ref-block", cfg.ref_block, "samples per step-size control of the reference integrator")
        ->transform(deis_tools::decimal_integer("--ref-block"))
        ->capture_default_str();
    app.add_option("--check-reference", cfg.check_dir,
                   "directory of the reference data (tests/data): run on its gmm2d_xT.csv and compare with gmm2d_exact.csv and "
                   "gmm2d_results.csv (case ring2d only)")
        ->check(CLI::ExistingDirectory);
    app.add_option("--noise", cfg.noise_file, "x_T from a file, one sample per row (no header), instead of drawn")
        ->check(CLI::ExistingFile);
    app.add_option("--reference", cfg.reference_file,
                   "the reference solution at t_end, one row per sample of x_T: not integrated then")
        ->check(CLI::ExistingFile);
    app.add_option("--peers", cfg.peers_file,
                   "a CSV with columns nfe and median_err (e.g. other codes' runs): the lowest median_err per nfe is "
                   "the best peer the recommended rows are compared with")
        ->check(CLI::ExistingFile);
    app.add_option("--model", cfg.model_file,
                   "a TorchScript module in place of the mixture: forward(x [B, ...], t [B]) returns a tensor of x's "
                   "shape (needs a build with LibTorch)");
    // the options of --model (refused without it)
    const std::vector<CLI::Option*> model_options = {
        app.add_option("--dtype", cfg.dtype, "--model: the dtype of x and t given to the module")
            ->check(CLI::IsMember({"float32", "float64"}))
            ->capture_default_str(),
        app.add_option("--device", cfg.device, "--model: where the module runs (cuda: refused without CUDA)")
            ->check(CLI::IsMember({"cpu", "cuda"}))
            ->capture_default_str(),
        app.add_option("--batch", cfg.batch, "--model: at most N samples a forward call (default: all at once)")
            ->transform(deis_tools::decimal_integer("--batch")),
        app.add_option("--shape", cfg.shape, "--model: one sample's shape, e.g. C,H,W (the product is D)")
            ->delimiter(',')
            ->transform(deis_tools::decimal_integer("--shape")),
        app.add_option("--model-output", cfg.model_output, "--model: what the module returns")
            ->check(CLI::IsMember({"eps", "x0", "v", "score", "velocity"}))
            ->capture_default_str(),
        app.add_option("--schedule", cfg.schedule,
                       "--model: the schedule it was trained with: vp-linear (0.1/20, t from 1 to 1e-3), ve (0.01/50, "
                       "t from 1 to 0), flow (t from 1 to 1e-3)")
            ->check(CLI::IsMember({"vp-linear", "ve", "flow"}))
            ->capture_default_str(),
        app.add_option("--dim", cfg.dim, "--model without --noise: D of the drawn x_T (default: the product of --shape)")
            ->transform(deis_tools::decimal_integer("--dim")),
    };
    app.add_flag("--list", list, "list the solvers and grids and exit");
    app.add_flag("--stochastic", cfg.stochastic,
                 "instead of the sweep: the stochastic samplers (DDIM with eta, the SDE form) on the t2 grid, measured by "
                 "the sliced Wasserstein distance to exact samples of the data (stochastic.md, stochastic.csv)");
    app.add_option("--calibration-samples", cfg.calibration_samples,
                       "recommended+calibrated: samples of the calibration batch, drawn from --seed + 1, 1..100000")
            ->transform(deis_tools::decimal_integer("--calibration-samples"))
            ->check(CLI::Range(1L, 100000L))
            ->capture_default_str();
    bool suite = false;
    suite_settings scfg;
    app.add_flag("--suite", suite,
                 "instead of the sweep: every candidate of the recommended rule on the suite (the mixtures under VP, VE "
                 "and flow matching, the trained networks of tests/data/trained), the rule chosen and its leave-one-out "
                 "table (suite.md, suite.csv in --out-dir/suite)");
    CLI11_PARSE(app, argc, argv);
    if (suite) {
        // the suite sets its own problems, solvers, grids, NFEs and calibration batches: of the
        // other options only --samples, --seed and --out-dir apply
        std::string ignored;
        for (const CLI::Option* o : app.get_options())
            if (o->count() > 0 && o->get_name() != "--suite" && o->get_name() != "--samples" &&
                o->get_name() != "--seed" && o->get_name() != "--out-dir" && o->get_name() != "--help")
                ignored += (ignored.empty() ? "" : ", ") + o->get_name();
        if (!ignored.empty())
            throw std::runtime_error("--suite runs its own problems, solvers, grids, NFEs and calibration batches "
                                     "(256 samples): " + ignored +
                                     " would be ignored; only --samples, --seed and --out-dir apply");
        scfg.seed = cfg.seed;
        scfg.mixtures_dir = DEIS_BENCH_MIXTURES_DIR;
        scfg.out_dir = (fs::path(cfg.out_dir) / "suite").string();
        if (samples->count() > 0) scfg.samples = cfg.samples;
        return run_suite(scfg, trained_suite(std::string(DEIS_BENCH_REFERENCE_DIR) + "/trained"));
    }
    cfg.samples_given = samples->count() > 0;

    if (list) {
        std::cout << "solvers (name, family, network calls per step):\n";
        for (const auto& s : solver_table(cfg.table_case())) std::cout << "  " << s.name << "  " << s.family << "  " << s.stages << '\n';
        std::cout << "grids:\n";
        for (const auto& g : grid_table(cfg.table_case())) std::cout << "  " << g.name << "  " << g.description << '\n';
        return 0;
    }
    for (int b : cfg.nfe)
        if (b < 1) throw std::runtime_error("--nfe: every budget must be >= 1, got " + std::to_string(b));
    if (cfg.nfe.empty()) throw std::runtime_error("--nfe: give at least one budget");
    if (cfg.samples < 1) throw std::runtime_error("--samples must be >= 1, got " + std::to_string(cfg.samples));
    if (cfg.ref_block < 1) throw std::runtime_error("--ref-block must be >= 1");
    if (!(cfg.ref_tol > 0.0)) throw std::runtime_error("--ref-tol must be > 0");
    std::sort(cfg.nfe.begin(), cfg.nfe.end());
    cfg.nfe.erase(std::unique(cfg.nfe.begin(), cfg.nfe.end()), cfg.nfe.end());

    const bool model = !cfg.model_file.empty();
    for (const CLI::Option* o : model_options)
        if (o->count() > 0 && !model) throw std::runtime_error(o->get_name() + " applies to --model only");
    if (!cfg.check_dir.empty() && (!cfg.noise_file.empty() || !cfg.reference_file.empty() || model))
        throw std::runtime_error("--check-reference runs a built-in case on its own x_T and reference: no --noise, "
                                 "--reference or --model");
    if (cfg.stochastic && (!cfg.noise_file.empty() || !cfg.reference_file.empty() || !cfg.peers_file.empty() || model))
        throw std::runtime_error("--stochastic compares with exact samples of a mixture: no --noise, --reference, "
                                 "--peers or --model");
    if (!cfg.noise_file.empty() && cfg.samples_given)
        throw std::runtime_error("--samples: x_T comes from --noise " + cfg.noise_file);
    if (model) {
        if (o_case->count() > 0 || !cfg.mixture_file.empty())
            throw std::runtime_error("--model replaces the mixture: no --case or --mixture (--schedule chooses the "
                                     "schedule)");
        if (model_options[2]->count() > 0 && cfg.batch < 1)
            throw std::runtime_error("--batch must be >= 1, got " + std::to_string(cfg.batch));
        if (cfg.shape.size() > 8) throw std::runtime_error("--shape: at most 8 sizes");
        for (long v : cfg.shape)
            if (v < 1) throw std::runtime_error("--shape: every size must be >= 1, got " + std::to_string(v));
        if (!cfg.noise_file.empty() && cfg.dim != 0) throw std::runtime_error("--dim: x_T comes from --noise");
        if (model_options[6]->count() > 0 && cfg.dim < 1)
            throw std::runtime_error("--dim must be >= 1, got " + std::to_string(cfg.dim));
        if (cfg.noise_file.empty() && cfg.dim == 0 && cfg.shape.empty())
            throw std::runtime_error("--model needs x_T: --noise FILE, or --dim D (or --shape) to draw --samples of "
                                     "them");
        return run_model(cfg);
    }

    std::optional<deis::gaussian_mixture> mix;
    std::string mix_name;
    if (!cfg.mixture_file.empty()) {
        const bool json = fs::path(cfg.mixture_file).extension() == ".json";
        mix = json ? deis_tools::read_mixture_json(cfg.mixture_file) : deis_tools::read_mixture_csv(cfg.mixture_file);
        mix_name = cfg.mixture_file + " (" + describe_mixture(*mix) + ")";
    } else if (cfg.case_name == "gmm16d") {
        mix = gmm16d_mixture();
        mix_name = "16-D mixture of 5 components: from std::mt19937_64(16), means 6U - 3, stds 0.2 + 0.4U, weights "
                   "0.5 + U (U uniform in [0, 1))";
    } else {
        mix = deis_bench::ring2d_mixture();
        mix_name = "2-D ring: 8 components, mu_k = 4 (cos 2 pi k/8, sin 2 pi k/8), std 0.3, equal weights";
    }

    problem_info info;
    info.title = cfg.mixture_file.empty() ? cfg.case_name
                                          : fs::path(cfg.mixture_file).filename().string() +
                                                (cfg.case_name == "ve"     ? " (VE schedule)"
                                                 : cfg.case_name == "flow" ? " (flow matching)"
                                                                           : " (VP linear schedule)");
    info.lines.push_back("mixture: " + mix_name);

    const bool checkable = cfg.case_name == "ring2d" || cfg.case_name == "flow";
    if (!cfg.check_dir.empty() && (!checkable || !cfg.mixture_file.empty()))
        throw std::runtime_error(
            "--check-reference needs --case ring2d or flow and no --mixture (the problems of the reference)");

    // --noise and --reference (read before any work), --peers
    Eigen::MatrixXd noise, ref;
    if (!cfg.noise_file.empty()) {
        noise = deis_tools::read_samples(cfg.noise_file);
        if (noise.rows() != mix->dim())
            throw std::runtime_error("--noise " + cfg.noise_file + ": samples of " + std::to_string(noise.rows()) +
                                     " values for a mixture in " + std::to_string(mix->dim()) + " dimensions");
    }
    if (!cfg.reference_file.empty()) ref = deis_tools::read_samples(cfg.reference_file);
    const std::string noise_line = std::to_string(noise.cols()) + " samples x_T from " + cfg.noise_file;
    if (!cfg.peers_file.empty()) use_peers(cfg.peers_file, info);

    if (cfg.case_name == "ve") {
        const deis::ve sch(0.01, 50.0);
        const Eigen::MatrixXd x_T =
            noise.size() ? noise : draw_noise(mix->dim(), cfg.samples, cfg.seed, sch.sigma_max());
        info.lines.push_back("schedule: VE, sigma_min = 0.01, sigma_max = 50, from t = 1 to t_end = 0 (sigma = 0.01)");
        info.lines.push_back(noise.size() ? noise_line
                                          : std::to_string(cfg.samples) + " samples x_T ~ N(0, 50^2 I), seed " +
                                                std::to_string(cfg.seed));
        if (cfg.stochastic) return run_stochastic(cfg, sch, *mix, 1.0, 0.0, x_T, info);
        return run(cfg, sch, deis::gmm_eps<deis::ve>(*mix, sch), deis::model_output::eps, &*mix, 1.0, 0.0, x_T, info,
                   ref);
    }
    Eigen::MatrixXd x_T;
    if (noise.size()) {
        x_T = noise;
        info.lines.push_back(noise_line);
    } else if (!cfg.check_dir.empty()) {
        x_T = deis_tools::read_samples((fs::path(cfg.check_dir) / "gmm2d_xT.csv").string());
        if (cfg.samples_given) std::cerr << "deis-bench: --samples ignored: the check runs on gmm2d_xT.csv\n";
        info.lines.push_back(std::to_string(x_T.cols()) + " samples x_T from " + cfg.check_dir + "/gmm2d_xT.csv");
    } else {
        x_T = draw_noise(mix->dim(), cfg.samples, cfg.seed, 1.0);
        info.lines.push_back(std::to_string(cfg.samples) + " samples x_T ~ N(0, I), seed " + std::to_string(cfg.seed));
    }
    if (cfg.case_name == "flow") {
        const deis::flow_matching sch;
        info.lines.push_back("schedule: flow matching, x_t = (1 - t) x0 + t eps, from t = 1 (pure noise) to t_end = "
                             "1e-3; the network returns the exact velocity v = eps - x0 (deis::gmm_model, "
                             "model_output::velocity); euler is DDIM, which is the Euler method in t here");
        info.baseline = "euler";
        const deis::gmm_model<deis::flow_matching> net(*mix, sch, deis::model_output::velocity);
        return run(cfg, sch, net, deis::model_output::velocity, &*mix, 1.0, 1e-3, x_T, info, ref);
    }
    if (cfg.case_name == "ring2d" && cfg.mixture_file.empty() && cfg.peers_file.empty()) {
        // the peers' numbers: the --check-reference directory's, else the source tree's tests/data
        const fs::path peers = fs::path(cfg.check_dir.empty() ? DEIS_BENCH_REFERENCE_DIR : cfg.check_dir) /
                               "gmm2d_results.csv";
        if (fs::exists(peers)) {
            info.peer_best = best_peer_medians(peers.string());
            info.peer_note = "the lowest median error of any row of " + peers.string() +
                             " (official DEIS, DPM-Solver, UniPC) at that NFE, on the 1000 x_T of gmm2d_xT.csv" +
                             (cfg.check_dir.empty() ? "; the rows above ran on other samples of the same prior "
                                                      "(--check-reference for the same x_T)"
                                                    : ", as the rows above");
        }
    }
    const deis::vp_linear sch(0.1, 20.0, 1.0);
    info.lines.push_back("schedule: VP linear, beta_min = 0.1, beta_max = 20, from T = 1 to t_end = 1e-3");
    if (cfg.stochastic) return run_stochastic(cfg, sch, *mix, 1.0, 1e-3, x_T, info);
    return run(cfg, sch, deis::gmm_eps<deis::vp_linear>(*mix, sch), deis::model_output::eps, &*mix, 1.0, 1e-3, x_T,
               info, ref);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return bench_main(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "deis-bench: " << e.what() << '\n';
        return 1;
    }
}
