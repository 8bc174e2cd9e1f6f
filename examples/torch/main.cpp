// deis-torch-example: trains a small noise-prediction MLP on two 2-D data sets (a checkerboard
// and the reference ring mixture) under the VP linear schedule, saves the weights, samples the
// trained network with the library on torch tensors and reports, per data set, a markdown
// table of the discretization error (against a tight reference solve of the learned ODE) and
// of the sliced Wasserstein distance to the data, plus a gnuplot scatter of samples.
// Usage: examples/torch/README.md, or --help. The parts: torch_example.hpp.
//
// Exit codes: 0 success, 1 bad command line or a failure (one line on stderr), 2 the torch
// backend's samples differ from the Eigen wrapper's by more than 1e-12 relative.
#include <CLI/CLI.hpp>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deis/deis.hpp>
#include <deis/research/reference.hpp>
#include <deis/torch.hpp>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/atomic_file.hpp"
#include "torch_example.hpp"

#ifndef DEIS_REFERENCE_DIR
#define DEIS_REFERENCE_DIR "tests/data"
#endif

namespace fs = std::filesystem;
using namespace deis_torch_example;

namespace {

struct options {
    bool quick = false;
    std::string out = "torch-example-out";
    std::uint64_t seed = 1;
    std::string components = std::string(DEIS_REFERENCE_DIR) + "/gmm2d_components.csv";
    int samples = 0;  // 0: 500, or 128 with --quick
};

// The torch samples and the Eigen wrapper's run the same float64 network on the same inputs
// and the same fused update kernels (state_ops<at::Tensor> uses Eigen's on CPU tensors); the
// only possible difference is the network's last bits when the matrix products see memory at
// another alignment (from_blob over Eigen's buffer), a few ulps per call, which 10 steps of a
// contracting ODE do not amplify by more than a small factor: 1e-12 relative leaves room for
// that while any real divergence (another order of operations in the update, a wrong time or
// layout) is 1e-6 or more.
constexpr double torch_eigen_limit = 1e-12;

std::string fmt(double v, int digits = 2) {
    std::ostringstream os;
    os << std::scientific << std::setprecision(digits) << v;
    return os.str();
}

// Written to a temporary beside p and renamed into place (support/atomic_file.hpp).
void write_points(const fs::path& p, const torch::Tensor& x) {
    const torch::Tensor c = x.to(torch::kDouble).contiguous();
    const double* d = c.data_ptr<double>();
    deis_tools::atomic_write(p.string(), [&](std::ostream& f) {
        f << std::setprecision(9);
        for (int64_t i = 0; i < c.size(0); ++i) f << d[2 * i] << ' ' << d[2 * i + 1] << '\n';
        return true;
    });
}

struct cell {
    int nfe = 0;
    double err = 0.0, sw = 0.0;
};

struct dataset_report {
    std::string markdown;
    double worst_torch_eigen = 0.0;
    std::vector<std::pair<std::string, fs::path>> plots;  // (title, points file)
};

dataset_report run_dataset(const dataset& data, const options& o, const deis::vp_linear& schedule, double t_end) {
    dataset_report rep;
    const int n = o.samples > 0 ? o.samples : (o.quick ? 128 : 500);
    // the reference tolerance (and a looser one, to show the reference's accuracy); --quick
    // loosens both to keep the test short
    const double tol = o.quick ? 1e-8 : 1e-10, loose = o.quick ? 1e-6 : 1e-8;
    std::ostringstream md;
    md << "### " << data.name << ": " << data.describe << "\n\n";

    // ---- training
    train_config cfg;
    cfg.seed = o.seed;
    if (o.quick) {
        cfg.iterations = 300;
        cfg.max_seconds = 10.0;
        cfg.batch = 128;
        cfg.width = 32;
    }
    train_report tr;
    std::cout << "[" << data.name << "] training " << cfg.iterations << " iterations, batch " << cfg.batch << " ..."
              << std::endl;
    mlp model = train(data, schedule, cfg, tr);
    const fs::path weights = fs::path(o.out) / (data.name + "_mlp.pt");
    torch::save(model, weights.string());
    md << "Training: MLP " << cfg.layers << " x " << cfg.width << " SiLU, " << 2 * cfg.frequencies
       << "-dim. sinusoidal time embedding; " << tr.iterations << " Adam iterations"
       << (tr.iterations < cfg.iterations ? " (stopped by the time limit)" : "") << ", batch " << cfg.batch << ", "
       << std::fixed << std::setprecision(1) << tr.seconds << " s; loss " << std::setprecision(3) << tr.first_loss
       << " -> " << tr.final_loss << " (weights: " << weights.filename().string() << ").\n\n";
    std::cout << "[" << data.name << "] " << tr.iterations << " iterations in " << std::fixed << std::setprecision(1) << tr.seconds << " s, loss "
              << std::setprecision(3) << tr.first_loss << " -> " << tr.final_loss << std::endl;
    std::cout.unsetf(std::ios::floatfield);
    model->to(torch::kDouble);

    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed + 1000);
    const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
    const torch::Tensor x_T = torch::randn({n, 2}, gen, f64);
    const torch::Tensor truth = data.sample(n, gen);
    const torch::Tensor truth2 = data.sample(n, gen);

    // ---- the torch backend against the Eigen wrapper of the same network
    std::cout << "[" << data.name << "] torch backend vs Eigen wrapper (float64, NFE 10, " << std::min(n, 256)
              << " samples):\n";
    rep.worst_torch_eigen = torch_vs_eigen(schedule, t_end, model, x_T.narrow(0, 0, std::min(n, 256)), 10);

    // ---- the reference solve of the learned ODE, and a looser one to show its accuracy
    const eigen_network enet{model};
    auto reference = [&](double tol, deis::reference_result& res) {
        deis::state<double> x = to_state(x_T);
        deis::reference_options ro;
        ro.atol = ro.rtol = tol;
        ro.block_columns = n;  // one step-size control for the batch: few, large network calls
        res = deis::reference_solution(schedule, enet, x, 1.0, t_end, ro);
        if (!res.ok()) throw std::runtime_error(std::string("reference solve: ") + deis::to_string(res.status));
        return to_tensor(x);
    };
    const auto r0 = std::chrono::steady_clock::now();
    deis::reference_result res, res_loose;
    const torch::Tensor ref = reference(tol, res);
    const torch::Tensor ref_loose = reference(loose, res_loose);
    const double ref_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
    const double ref_accuracy = median_l2(ref, ref_loose);
    md << "Reference: the learned ODE solved by reference_solution (RKF 7(8), atol = rtol = " << fmt(tol, 0) << ", " << n
       << " samples in one block): " << res.nfe << " network calls; the solve at " << fmt(loose, 0)
       << " differs from it by " << fmt(ref_accuracy) << " (median L2), an upper estimate of its own error.\n\n";
    std::cout << "[" << data.name << "] reference: " << res.nfe << " + " << res_loose.nfe << " network calls, "
              << std::fixed << std::setprecision(1) << ref_seconds << " s" << std::endl;
    std::cout.unsetf(std::ios::floatfield);

    // ---- the table
    const tensor_network tnet{model};
    std::map<std::string, std::vector<cell>> cells;
    for (const std::string& s : solver_names()) {
        for (int nfe : nfe_budgets()) {
            torch::Tensor x = x_T.clone();
            cell c;
            c.nfe = sample_with(s, nfe, schedule, t_end, tnet, x);
            c.err = median_l2(x, ref);
            c.sw = sliced_wasserstein(x, truth);
            cells[s].push_back(c);
            if (nfe == 10 && (s == "DDIM" || s == "recommended")) {
                const fs::path p = fs::path(o.out) / (data.name + "_" + (s == "DDIM" ? "ddim" : "recommended") + "10.txt");
                write_points(p, x);
                rep.plots.emplace_back(s + ", NFE 10", p);
            }
        }
    }
    torch::Tensor x1000 = x_T.clone();
    sample_with("recommended", 1000, schedule, t_end, tnet, x1000);
    const double sw_1000 = sliced_wasserstein(x1000, truth);
    const double sw_ref = sliced_wasserstein(ref, truth);
    const double sw_data = sliced_wasserstein(truth2, truth);
    const fs::path truth_file = fs::path(o.out) / (data.name + "_data.txt");
    write_points(truth_file, truth);
    rep.plots.insert(rep.plots.begin(), {"data", truth_file});
    const fs::path p1000 = fs::path(o.out) / (data.name + "_1000.txt");
    write_points(p1000, x1000);
    rep.plots.emplace_back("1000 steps", p1000);

    auto header = [&] {
        md << "| solver |";
        for (int nfe : nfe_budgets()) md << " NFE " << nfe << " |";
        md << "\n|---|";
        for (std::size_t i = 0; i < nfe_budgets().size(); ++i) md << "---|";
        md << '\n';
    };
    auto row = [&](const std::string& s, bool sw) {
        md << "| " << s << (s == "recommended" ? " (tAB, data prediction, corrector)" : "") << " |";
        for (std::size_t i = 0; i < nfe_budgets().size(); ++i) {
            const cell& c = cells[s][i];
            md << ' ' << fmt(sw ? c.sw : c.err);
            if (c.nfe != nfe_budgets()[i]) md << " (" << c.nfe << ")";
            md << " |";
        }
        md << '\n';
    };
    md << "(a) Discretization error: median over the " << n
       << " samples of ||x - x_ref||, x_ref the reference solve of the learned ODE from the same x_T.\n\n";
    header();
    for (const std::string& s : solver_names()) row(s, false);
    md << "\n(b) Sliced Wasserstein-2 distance to " << n << " samples of the data (256 directions).\n\n";
    header();
    for (const std::string& s : solver_names()) row(s, true);
    md << "| 1000 steps (recommended): the floor set by the fitting error | " << fmt(sw_1000) << " | | | |\n";
    md << "\nThe reference solve is at " << fmt(sw_ref) << " from the data, two independent sets of " << n
       << " data samples at " << fmt(sw_data)
       << " (the sampling noise of the distance itself). rhoRK rk4 makes 4 calls a step: its actual NFE is in "
          "parentheses where it differs from the column's budget.\n\n";
    rep.markdown = md.str();
    return rep;
}

void plot(const options& o, const std::vector<std::pair<std::string, dataset_report>>& reports) {
    if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
        std::cout << "gnuplot not found: skipping the scatter plot\n";
        return;
    }
    const fs::path script = fs::path(o.out) / "samples.gp";
    const fs::path png = fs::path(o.out) / "samples.png";
    std::ostringstream g;
    const std::size_t cols = reports.front().second.plots.size();
    g << "set terminal pngcairo size " << 240 * cols << "," << 250 * reports.size() << " font ',9'\n";
    g << "set output '" << png.string() << "'\n";
    g << "set multiplot layout " << reports.size() << "," << cols << "\n";
    g << "set size ratio -1\nset xrange [-5.5:5.5]\nset yrange [-5.5:5.5]\nunset key\nset tics font ',7'\n";
    for (const auto& [name, rep] : reports)
        for (const auto& [title, file] : rep.plots)
            g << "set title '" << name << ": " << title << "'\nplot '" << file.string()
              << "' using 1:2 with points pt 7 ps 0.2 lc rgb '#1f4e9c'\n";
    g << "unset multiplot\n";
    deis_tools::write_text_file(script.string(), g.str());
    const std::string cmd = "gnuplot '" + script.string() + "'";
    if (std::system(cmd.c_str()) != 0)
        std::cout << "gnuplot failed: no scatter plot\n";
    else
        std::cout << "scatter plot: " << png.string() << '\n';
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    CLI::App app{"deis-torch-example: train a small noise-prediction network with LibTorch on 2-D data and sample "
                 "it with the library's solvers on torch tensors"};
    app.add_flag("--quick", o.quick, "seconds of training, a small network and batch (the ctest test's mode)");
    app.add_option("--out", o.out, "output directory (weights, tables, plot data, samples.png)");
    app.add_option("--seed", o.seed, "seed of the initial weights, the training data and the noise");
    app.add_option("--components", o.components, "the ring mixture's components CSV (mu0,mu1,std0,std1,weight)");
    app.add_option("--samples", o.samples, "samples per evaluation (default 500, 128 with --quick)")
        ->check(CLI::Range(16, 1000000));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        torch::set_num_threads(2);
        fs::create_directories(o.out);
        const deis::vp_linear schedule(0.1, 20.0);
        const double t_end = 1e-3;
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::pair<std::string, dataset_report>> reports;
        for (const dataset& d : {checkerboard(), ring_mixture(o.components)})
            reports.emplace_back(d.name, run_dataset(d, o, schedule, t_end));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        std::ostringstream md;
        md << "## deis-torch-example" << (o.quick ? " --quick" : "") << " --seed " << o.seed
           << "\n\nVP linear schedule (beta 0.1 to 20), from t = 1 to t_end = 1e-3 on the quadratic grid "
              "power_t_grid(schedule, steps, 1, 1e-3, 2.0), float64 torch tensors, "
           << torch::get_num_threads() << " threads; " << std::fixed << std::setprecision(0) << seconds
           << " s in all.\n\n";
        double worst = 0.0;
        for (const auto& [name, rep] : reports) {
            md << rep.markdown;
            worst = std::max(worst, rep.worst_torch_eigen);
        }
        md << "torch backend = Eigen wrapper of the same network, every solver family: max relative difference "
           << fmt(worst) << " (limit " << fmt(torch_eigen_limit, 0) << ").\n";
        std::cout << '\n' << md.str();
        const fs::path results = fs::path(o.out) / "results.md";
        deis_tools::write_text_file(results.string(), md.str());
        plot(o, reports);
        if (!(worst <= torch_eigen_limit)) {
            std::cerr << "deis-torch-example: error: the torch backend's samples differ from the Eigen wrapper's by "
                      << fmt(worst) << " relative (limit " << fmt(torch_eigen_limit, 0) << ")\n";
            return 2;
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "deis-torch-example: error: " << e.what() << '\n';
        return 1;
    }
}
