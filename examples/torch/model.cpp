// deis-torch-example: the data sets, the network and its training, and the network as a deis
// Network on torch tensors and on Eigen states.
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <vector>
#include <algorithm>

#include "support/mixture_io.hpp"
#include "torch_example.hpp"

namespace deis_torch_example {

namespace {
const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
}

// ---- data sets ----------------------------------------------------------------------------

torch::Tensor dataset::sample(int64_t n, torch::Generator& gen) const {
    if (name == "checkerboard") {
        // column c = floor((x + 4) / 2) in 0..3, then a row of the same parity, uniform in it
        const torch::Tensor x = torch::rand({n}, gen, f64) * 8.0 - 4.0;
        const torch::Tensor col = torch::floor((x + 4.0) / 2.0).clamp(0, 3);
        const torch::Tensor row = 2.0 * torch::randint(0, 2, {n}, gen, f64) + torch::fmod(col, 2.0);
        const torch::Tensor y = -4.0 + 2.0 * row + 2.0 * torch::rand({n}, gen, f64);
        return torch::stack({x, y}, 1);
    }
    const torch::Tensor k = torch::multinomial(weights, n, /*replacement=*/true, gen);
    return means.index_select(0, k) + stds.index_select(0, k) * torch::randn({n, 2}, gen, f64);
}

dataset checkerboard() {
    dataset d;
    d.name = "checkerboard";
    d.describe = "4 x 4 checkerboard on [-4, 4]^2 (uniform on 8 squares)";
    return d;
}

dataset ring_mixture(const std::string& components_csv) {
    const deis::gaussian_mixture m = deis_tools::read_mixture_csv(components_csv);
    if (m.dim() != 2) throw std::runtime_error(components_csv + ": the mixture must be 2-D");
    dataset d;
    d.name = "ring";
    d.describe = "the reference ring mixture (" + std::to_string(m.components()) + " Gaussians, " + components_csv + ")";
    const auto K = m.components();
    d.weights = torch::empty({K}, f64);
    d.means = torch::empty({K, 2}, f64);
    d.stds = torch::empty({K, 2}, f64);
    for (Eigen::Index k = 0; k < K; ++k) {
        d.weights[k] = m.weights()[k];
        for (Eigen::Index j = 0; j < 2; ++j) {
            d.means[k][j] = m.means()(j, k);
            d.stds[k][j] = m.stds()(j, k);
        }
    }
    return d;
}

// ---- the network --------------------------------------------------------------------------

mlpImpl::mlpImpl(int width, int layers, int frequencies) {
    // geometric frequencies from 1 to 100 per unit of t: the highest resolves the fast change
    // of the noise prediction near t = 0 without oscillating across a solver's step
    freq = register_buffer("freq", torch::logspace(0.0, 2.0, frequencies, 10.0, torch::kFloat).reshape({1, -1}));
    body = register_module("body", torch::nn::Sequential());
    int in = 2 + 2 * frequencies;
    for (int l = 0; l < layers; ++l) {
        body->push_back(torch::nn::Linear(in, width));
        body->push_back(torch::nn::SiLU());
        in = width;
    }
    body->push_back(torch::nn::Linear(in, 2));
}

torch::Tensor mlpImpl::forward(const torch::Tensor& x, const torch::Tensor& t) {
    const torch::Tensor e = t * freq;
    return body->forward(torch::cat({x, torch::sin(e), torch::cos(e)}, 1));
}

mlp train(const dataset& data, const deis::vp_linear& schedule, const train_config& cfg, train_report& rep) {
    torch::manual_seed(cfg.seed);  // the initial weights
    mlp model(cfg.width, cfg.layers, cfg.frequencies);
    model->train();
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(cfg.seed);
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(cfg.lr));
    const auto start = std::chrono::steady_clock::now();
    const int window = std::max(1, std::min(200, cfg.iterations / 4));
    double first = 0.0;
    std::vector<double> recent;  // the last `window` losses
    torch::Tensor a = torch::empty({cfg.batch, 1}, f64), s = torch::empty({cfg.batch, 1}, f64);
    int it = 0;
    for (; it < cfg.iterations; ++it) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (elapsed >= cfg.max_seconds) break;
        const torch::Tensor x0 = data.sample(cfg.batch, gen);
        const torch::Tensor t = cfg.t_min + (1.0 - cfg.t_min) * torch::rand({cfg.batch, 1}, gen, f64);
        // alpha(t) and sigma(t) from the library's schedule
        auto ta = t.accessor<double, 2>();
        auto aa = a.accessor<double, 2>();
        auto sa = s.accessor<double, 2>();
        for (int64_t i = 0; i < cfg.batch; ++i) {
            aa[i][0] = schedule.alpha(ta[i][0]);
            sa[i][0] = schedule.sigma(ta[i][0]);
        }
        const torch::Tensor eps = torch::randn({cfg.batch, 2}, gen, f64);
        const torch::Tensor xt = (a * x0 + s * eps).to(torch::kFloat);
        const torch::Tensor loss = torch::mse_loss(model->forward(xt, t.to(torch::kFloat)), eps.to(torch::kFloat));
        opt.zero_grad();
        loss.backward();
        opt.step();
        const double progress = std::min(1.0, std::max(double(it + 1) / double(cfg.iterations), elapsed / cfg.max_seconds));
        static_cast<torch::optim::AdamOptions&>(opt.param_groups()[0].options())
            .lr(cfg.lr * (1.0 - progress * (1.0 - 1.0 / 20.0)));
        const double l = loss.item<double>();
        if (it < window) first += l / window;
        recent.push_back(l);
        if (int(recent.size()) > window) recent.erase(recent.begin());
    }
    rep.iterations = it;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rep.first_loss = first;
    rep.final_loss = 0.0;
    for (double l : recent) rep.final_loss += l / double(std::max<std::size_t>(1, recent.size()));
    model->eval();
    return model;
}

// ---- the network as a deis Network --------------------------------------------------------

void tensor_network::operator()(const torch::Tensor& x, double t, torch::Tensor& out) const {
    out.copy_(model.ptr()->forward(x, torch::full({x.size(0), 1}, t, x.options())));
}

void eigen_network::operator()(const deis::state<double>& x, double t, deis::state<double>& out) const {
    if (x.rows() != 2) throw std::invalid_argument("eigen_network: states must have 2 rows");
    const int64_t n = x.cols();
    out.resize(2, x.cols());
    c10::InferenceMode guard;
    // a 2 x n column-major matrix is the memory of an [n, 2] row-major tensor
    const torch::Tensor in = torch::from_blob(const_cast<double*>(x.data()), {n, 2}, f64);
    torch::from_blob(out.data(), {n, 2}, f64).copy_(model.ptr()->forward(in, torch::full({n, 1}, t, f64)));
}

deis::state<double> to_state(const torch::Tensor& x) {
    const torch::Tensor c = x.to(torch::kDouble).contiguous();
    return Eigen::Map<const deis::state<double>>(c.data_ptr<double>(), 2, c.size(0));
}

torch::Tensor to_tensor(const deis::state<double>& x) {
    torch::Tensor t = torch::empty({x.cols(), 2}, f64);
    Eigen::Map<deis::state<double>>(t.data_ptr<double>(), 2, x.cols()) = x;
    return t;
}

}  // namespace deis_torch_example
