// deis-train-digits: trains the noise-prediction networks of tests/data/trained/digits/ (the
// default, --dataset digits: the UCI handwritten digits, 1797 images of 8 x 8 pixels, 0..16) and
// tests/data/trained/breast_cancer/ (--dataset breast-cancer: the Wisconsin Diagnostic Breast
// Cancer data, 569 rows of 30 real features) and saves them as TorchScript modules.
// scripts/train-digits.sh fetches the data and runs it; the networks, their training and their
// contracts are described in the README.md of those folders.
//
// The network eps_theta(x, t), x of D values (D = 64 for the digits, x = v / 8 - 1 in [-1, 1];
// D = 30 for the breast cancer data, each feature log1p(v / median) then z-scored):
//   e = [sin(1000 t f), cos(1000 t f)], f_k = exp(-ln(10000) k / 32), k = 0..31
//   e = W_e2 SiLU(W_e1 e)                                  (the time embedding)
//   h = W_in x
//   h = h + W_2 SiLU(W_1 SiLU(h) + P SiLU(e))              (each residual block)
//   eps = W_out SiLU(h)
// Every W is an affine map (weight and bias). The weights are float32; forward computes in the
// dtype of x, and the C++ module and the TorchScript source below run the same operations in
// the same order.
#include <CLI/CLI.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "support/atomic_file.hpp"
#include "support/csv_io.hpp"
#include "support/input_file.hpp"
#include "support/number_options.hpp"

namespace {

namespace fs = std::filesystem;

// VP linear: log alpha(t) = -t^2 (beta_max - beta_min) / 4 - beta_min t / 2
constexpr double beta_min = 0.1, beta_max = 20.0, t_min = 1e-3;
constexpr int64_t half_embedding = 32;

struct train_options {
    std::string dataset = "digits", data, out;
    int iterations = 45000;
    int64_t batch = 256;
    int width = 128, blocks = 2, embedding = 64;
    double lr = 2e-3;        // peak learning rate of Adam
    int warmup = 200;        // linear warm-up, then a cosine decay to lr_floor * lr
    double lr_floor = 0.02;
    double ema = 0.999;      // decay of the averaged weights that are saved
    std::uint64_t seed = 1;
};

// ---- the network --------------------------------------------------------------------------

struct digits_netImpl : torch::nn::Module {
    digits_netImpl(int64_t dim, int width, int blocks, int embedding) : blocks_(blocks) {
        std::vector<double> f(half_embedding);
        for (std::size_t k = 0; k < f.size(); ++k)
            f[k] = std::exp(-std::log(10000.0) * double(k) / double(half_embedding));
        freq = register_buffer("freq", torch::tensor(f, torch::kDouble));
        affine("temb1", 2 * half_embedding, embedding);
        affine("temb2", embedding, embedding);
        affine("inp", dim, width);
        for (int b = 0; b < blocks; ++b) {
            const std::string p = "block" + std::to_string(b) + "_";
            affine(p + "w1", width, width);
            affine(p + "temb", embedding, width);
            affine(p + "w2", width, width);
        }
        affine("out", width, dim);
    }

    // x [B, D]; t [B] or 0-dim; computed in x's dtype
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t) {
        const auto dt = x.scalar_type();
        const torch::Tensor tb = t.to(dt).reshape({-1}).expand({x.size(0)});
        const torch::Tensor a = (1000.0 * tb).unsqueeze(1) * freq.to(dt).unsqueeze(0);
        torch::Tensor e = torch::cat({torch::sin(a), torch::cos(a)}, 1);
        e = apply("temb2", silu(apply("temb1", e, dt)), dt);
        const torch::Tensor se = silu(e);
        torch::Tensor h = apply("inp", x, dt);
        for (int b = 0; b < blocks_; ++b) {
            const std::string p = "block" + std::to_string(b) + "_";
            h = h + apply(p + "w2", silu(apply(p + "w1", silu(h), dt) + apply(p + "temb", se, dt)), dt);
        }
        return apply("out", silu(h), dt);
    }

    torch::Tensor freq;

private:
    static torch::Tensor silu(const torch::Tensor& h) { return h * torch::sigmoid(h); }

    // the affine map `name` (weight [out, in], bias [out]), initialised U(-1/sqrt(in), 1/sqrt(in))
    void affine(const std::string& name, int64_t in, int64_t out) {
        const double bound = 1.0 / std::sqrt(double(in));
        weight_[name] = register_parameter(name + "_weight", torch::empty({out, in}).uniform_(-bound, bound));
        bias_[name] = register_parameter(name + "_bias", torch::empty({out}).uniform_(-bound, bound));
    }
    torch::Tensor apply(const std::string& name, const torch::Tensor& h, c10::ScalarType dt) const {
        return torch::addmm(bias_.at(name).to(dt), h, weight_.at(name).to(dt).t());
    }

    int blocks_;
    std::map<std::string, torch::Tensor> weight_, bias_;  // the registered parameters by layer
};
TORCH_MODULE(digits_net);

// The TorchScript forward of the same network (the parameters and freq registered on the module
// under the same names).
std::string script_source(int blocks) {
    std::ostringstream s;
    const auto apply = [](const std::string& name, const std::string& h) {
        return "torch.addmm(self." + name + "_bias.to(dt), " + h + ", self." + name + "_weight.to(dt).t())";
    };
    s << "def forward(self, x, t):\n"
         "    dt = x.dtype\n"
         "    tb = t.to(dt).reshape([-1]).expand([x.size(0)])\n"
         "    a = (1000.0 * tb).unsqueeze(1) * self.freq.to(dt).unsqueeze(0)\n"
         "    e = torch.cat([torch.sin(a), torch.cos(a)], 1)\n"
         "    e1 = " << apply("temb1", "e") << "\n"
         "    e = " << apply("temb2", "e1 * torch.sigmoid(e1)") << "\n"
         "    se = e * torch.sigmoid(e)\n"
         "    h = " << apply("inp", "x") << "\n";
    for (int b = 0; b < blocks; ++b) {
        const std::string p = "block" + std::to_string(b) + "_";
        s << "    u = " << apply(p + "w1", "h * torch.sigmoid(h)") << " + " << apply(p + "temb", "se") << "\n"
          << "    h = h + " << apply(p + "w2", "u * torch.sigmoid(u)") << "\n";
    }
    s << "    return " << apply("out", "h * torch.sigmoid(h)") << "\n";
    return s.str();
}

// ---- data and training --------------------------------------------------------------------

// v (one row per column, a label last) without its label as a row-major [n, D] float64 tensor,
// after checking the number of columns (D + 1) and, where `rows` > 0, of rows.
torch::Tensor features(const Eigen::MatrixXd& v, const std::string& path, int64_t dim, int64_t rows) {
    if (v.rows() != dim + 1)
        throw std::runtime_error(path + ": " + std::to_string(v.rows()) + " columns, expected " +
                                 std::to_string(dim + 1) + " (" + std::to_string(dim) + " values, a label)");
    if (rows > 0 && v.cols() != rows)
        throw std::runtime_error(path + ": " + std::to_string(v.cols()) + " rows, expected " + std::to_string(rows));
    torch::Tensor x = torch::empty({v.cols(), dim}, torch::kDouble);
    Eigen::Map<Eigen::MatrixXd>(x.data_ptr<double>(), dim, v.cols()) = v.topRows(dim);
    return x;
}

// The digits CSV (64 pixels 0..16 and a label per row, no header) as [n, 64] float32 in [-1, 1].
torch::Tensor read_digits(const std::string& path) {
    const Eigen::MatrixXd v = deis_tools::read_samples(path);  // one image per column, the label last
    const torch::Tensor x = features(v, path, 64, 0);
    const Eigen::MatrixXd px = v.topRows(64);
    if (px.minCoeff() < 0.0 || px.maxCoeff() > 16.0 || (px.array() != px.array().round()).any())
        throw std::runtime_error(path + ": the pixels must be integers 0..16");
    return (x / 8.0 - 1.0).to(torch::kFloat);
}

// scikit-learn's breast_cancer.csv (a header line "569,30,malignant,benign", then 30 features
// and a 0/1 label per row; the label is not used) as [569, 30] float32: per feature j,
// y = log1p(v / m_j) with m_j the feature's median over the 569 rows, then y z-scored (mean 0,
// standard deviation 1 over the rows, divisor 569).
torch::Tensor read_breast_cancer(const std::string& path) {
    constexpr int64_t dim = 30, rows = 569;
    deis_tools::input_file file(path);
    std::istream& in = file.stream();
    std::string header;
    if (!std::getline(in, header)) throw std::runtime_error(path + ": cannot read its header line");
    if (!header.empty() && header.back() == '\r') header.pop_back();
    if (header != "569,30,malignant,benign")
        throw std::runtime_error(path + ": the header is '" + header + "', expected '569,30,malignant,benign'");
    const Eigen::MatrixXd v = deis_tools::parse_samples(in, path + " (after its header)");
    const torch::Tensor x = features(v, path, dim, rows);
    if (v.topRows(dim).minCoeff() < 0.0) throw std::runtime_error(path + ": a feature is negative");
    const torch::Tensor m = std::get<0>(x.sort(0)).select(0, rows / 2);  // the medians (569 is odd)
    if (!(m > 0.0).all().item<bool>()) throw std::runtime_error(path + ": a feature's median is not positive");
    const torch::Tensor y = torch::log1p(x / m);
    const torch::Tensor mean = y.mean(0), sd = (y - mean).pow(2).mean(0).sqrt();
    return ((y - mean) / sd).to(torch::kFloat);
}

// What --dataset selects: the reader (with its scaling) and the name of the module.
struct dataset {
    std::string rows, module;  // what a row is (for the messages); the TorchScript module's name
    torch::Tensor (*read)(const std::string&);
    std::string scaling;
};

dataset find_dataset(const std::string& name) {
    if (name == "digits") return {"images", "deis_digits_eps", read_digits, "x = v / 8 - 1"};
    return {"rows", "deis_breast_cancer_eps", read_breast_cancer, "x = z-score of log1p(v / median), per feature"};
}

// x_t = alpha x0 + sigma eps for t [B] (float64); the schedule in float64, the result in float32.
torch::Tensor diffuse(const torch::Tensor& x0, const torch::Tensor& t, const torch::Tensor& eps) {
    const torch::Tensor la = -(beta_max - beta_min) / 4.0 * t * t - beta_min / 2.0 * t;
    const torch::Tensor alpha = torch::exp(la).unsqueeze(1).to(torch::kFloat);
    const torch::Tensor sigma = torch::sqrt(-torch::expm1(2.0 * la)).unsqueeze(1).to(torch::kFloat);
    return alpha * x0 + sigma * eps;
}

// the denoising loss: sum over the D values, mean over the batch
torch::Tensor denoising_loss(digits_net& net, const torch::Tensor& x0, const torch::Tensor& t,
                             const torch::Tensor& eps) {
    return (net->forward(diffuse(x0, t, eps), t.to(torch::kFloat)) - eps).pow(2).sum(1).mean();
}

struct train_report {
    int iterations = 0, loss_window = 0;  // smoothed_loss: the mean over the last loss_window
    double seconds = 0.0, cpu_seconds = 0.0, smoothed_loss = 0.0;
};

// the learning rate of iteration `it`: a linear warm-up, then a cosine decay to lr_floor * lr
double learning_rate(const train_options& o, int it) {
    if (it < o.warmup) return o.lr * double(it + 1) / o.warmup;
    const double progress = double(it - o.warmup) / double(std::max(1, o.iterations - o.warmup));
    return o.lr * (o.lr_floor + (1.0 - o.lr_floor) * 0.5 * (1.0 + std::cos(std::acos(-1.0) * progress)));
}

// Adam on fresh (row, t, eps) draws; the network ends with the averaged (EMA) weights.
digits_net train(const torch::Tensor& data, const train_options& o, train_report& rep) {
    torch::manual_seed(o.seed);  // the initial weights
    digits_net net(data.size(1), o.width, o.blocks, o.embedding);
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(o.lr));
    std::vector<torch::Tensor> params = net->parameters(), ema;
    for (const auto& p : params) ema.push_back(p.detach().clone());
    const int window = std::min(1000, std::max(1, o.iterations / 10));
    std::vector<double> recent;  // the last `window` losses, circular
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    for (int it = 0; it < o.iterations; ++it) {
        static_cast<torch::optim::AdamOptions&>(opt.param_groups()[0].options()).lr(learning_rate(o, it));
        const torch::Tensor idx = torch::randint(0, data.size(0), {o.batch}, gen, torch::kLong);
        const torch::Tensor t = t_min + (1.0 - t_min) * torch::rand({o.batch}, gen, torch::kDouble);
        const torch::Tensor eps = torch::randn({o.batch, data.size(1)}, gen, torch::kFloat);
        const torch::Tensor loss = denoising_loss(net, data.index_select(0, idx), t, eps);
        opt.zero_grad();
        loss.backward();
        opt.step();
        {
            torch::NoGradGuard no_grad;
            for (std::size_t i = 0; i < params.size(); ++i) ema[i].mul_(o.ema).add_(params[i].detach(), 1.0 - o.ema);
        }
        const double l = loss.item<double>();
        if (int(recent.size()) < window)
            recent.push_back(l);
        else
            recent[std::size_t(it % window)] = l;
        if ((it + 1) % 5000 == 0)
            std::cerr << "deis-train-digits: iteration " << it + 1 << ", loss " << l << '\n';
    }
    rep.iterations = o.iterations;
    rep.loss_window = window;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rep.cpu_seconds = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    for (double l : recent) rep.smoothed_loss += l / double(recent.size());
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(ema[i]);
    net->eval();
    return net;
}

// The loss of the network on every row, `draws` times, with (t, eps) from a fixed seed.
double fixed_draw_loss(digits_net& net, const torch::Tensor& data, std::uint64_t seed, int draws) {
    torch::NoGradGuard no_grad;
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    double sum = 0.0;
    for (int d = 0; d < draws; ++d) {
        const torch::Tensor t = t_min + (1.0 - t_min) * torch::rand({data.size(0)}, gen, torch::kDouble);
        const torch::Tensor eps = torch::randn({data.size(0), data.size(1)}, gen, torch::kFloat);
        sum += denoising_loss(net, data, t, eps).item<double>();
    }
    return sum / draws;
}

// max |a - b| / max |b|
double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

// The TorchScript module of the trained network, checked against the C++ forward on a random
// batch: float32 to 1e-6 relative (the same operations: bit-identical in practice), float64 to
// 1e-12, and a 0-dim t equal to the same t for every row. Throws when a check fails.
torch::jit::Module export_module(digits_net& net, const std::string& name, int64_t dim, int blocks,
                                 std::uint64_t seed) {
    torch::jit::Module m(name);
    for (const auto& p : net->named_parameters(false)) m.register_parameter(p.key(), p.value().detach().clone(), false);
    m.register_buffer("freq", net->freq.clone());
    m.define(script_source(blocks));
    torch::NoGradGuard no_grad;
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const torch::Tensor x = torch::randn({100, dim}, gen, torch::kFloat);
    const torch::Tensor t = t_min + (1.0 - t_min) * torch::rand({100}, gen, torch::kFloat);
    const torch::Tensor ref32 = net->forward(x, t);
    const torch::Tensor got32 = m.forward({x, t}).toTensor();
    const double d32 = relative_difference(got32, ref32);
    const torch::Tensor x64 = x.to(torch::kDouble), t64 = t.to(torch::kDouble);
    const double d64 = relative_difference(m.forward({x64, t64}).toTensor(), net->forward(x64, t64));
    const torch::Tensor t0 = t64[7];
    const double d0 =
        relative_difference(m.forward({x64, t0}).toTensor(), m.forward({x64, t0.expand({100})}).toTensor());
    std::cout << "TorchScript forward against the C++ forward: float32 "
              << (torch::equal(got32, ref32) ? "bit-identical" : "max relative difference " + std::to_string(d32))
              << ", float64 max relative difference " << d64 << ", 0-dim t " << d0 << '\n';
    if (got32.scalar_type() != torch::kFloat || !(d32 <= 1e-6) || !(d64 <= 1e-12) || !(d0 == 0.0))
        throw std::runtime_error("the TorchScript module differs from the trained network");
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    train_options o;
    CLI::App app{"deis-train-digits: train the noise-prediction network of tests/data/trained/digits on the UCI "
                 "handwritten digits (8 x 8), or that of tests/data/trained/breast_cancer on the Wisconsin "
                 "Diagnostic Breast Cancer data, under VP linear (beta 0.1 to 20) and save it as a TorchScript module"};
    app.add_option("--dataset", o.dataset, "digits (the default) or breast-cancer")
        ->check(CLI::IsMember({"digits", "breast-cancer"}));
    app.add_option("--data", o.data,
                   "the data set's CSV: digits, 64 pixels 0..16 and a label per row, no header; breast-cancer, "
                   "scikit-learn's breast_cancer.csv (a header line, 30 features and a label per row)")
        ->required();
    app.add_option("--out", o.out, "the TorchScript file to write (through a temporary and a rename)")->required();
    app.add_option("--iterations", o.iterations, "Adam iterations")
        ->check(deis_tools::decimal_integer("--iterations", false))
        ->check(CLI::Range(1, 10000000));
    app.add_option("--width", o.width, "units of the residual blocks")
        ->check(deis_tools::decimal_integer("--width", false))
        ->check(CLI::Range(1, 4096));
    app.add_option("--blocks", o.blocks, "residual blocks")
        ->check(deis_tools::decimal_integer("--blocks", false))
        ->check(CLI::Range(0, 64));
    app.add_option("--seed", o.seed, "seed of the initial weights and the training draws")
        ->check(deis_tools::decimal_integer("--seed", false));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const deis_tools::bad_number& e) {
        std::cerr << "deis-train-digits: error: " << e.what() << '\n';
        return 2;
    }
    try {
        std::error_code ec;
        if (fs::equivalent(o.out, o.data, ec))
            throw std::runtime_error("--out " + o.out + " is the input --data: refusing to write over it");
        const std::string why = deis_tools::output_refusal(o.out);
        if (!why.empty()) throw std::runtime_error("--out " + o.out + " " + why);
        torch::set_num_threads(1);
        const dataset ds = find_dataset(o.dataset);
        const torch::Tensor data = ds.read(o.data);
        std::cout << "data: " << data.size(0) << " " << ds.rows << " of " << data.size(1) << " values from " << o.data
                  << ", " << ds.scaling << '\n';
        train_report rep;
        digits_net net = train(data, o, rep);
        int64_t count = 0;
        for (const auto& p : net->parameters()) count += p.numel();
        std::cout << std::setprecision(4) << "network: width " << o.width << ", " << o.blocks
                  << " residual blocks, time embedding " << o.embedding << ", " << count << " parameters (float32)\n"
                  << "training: " << rep.iterations << " iterations of batch " << o.batch << " in " << std::fixed
                  << std::setprecision(1) << rep.seconds << " s (" << rep.cpu_seconds << " s of CPU) on "
                  << torch::get_num_threads() << " thread\n"
                  << std::defaultfloat << std::setprecision(4) << "loss (sum over the " << data.size(1)
                  << " values): last " << rep.loss_window << " iterations " << rep.smoothed_loss
                  << ", averaged weights on 8 fixed draws of every row " << fixed_draw_loss(net, data, o.seed + 1, 8)
                  << '\n';
        const torch::jit::Module m = export_module(net, ds.module, data.size(1), o.blocks, o.seed + 2);
        deis_tools::atomic_write(o.out, [&](std::ostream& out) {
            m.save(out);
            return bool(out);
        });
        std::cout << "wrote " << o.out << " (" << fs::file_size(o.out) << " bytes)\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "deis-train-digits: error: " << e.what() << '\n';
        return 1;
    }
}
