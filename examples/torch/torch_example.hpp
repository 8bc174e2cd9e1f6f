// deis-torch-example: a small noise-prediction network trained with LibTorch on 2-D data, then
// sampled with the library on torch tensors. The parts:
//   model.cpp     the data sets, the network (an MLP with a sinusoidal time embedding) and its
//                 training, and the two views of the trained network as a deis Network (on
//                 torch tensors and on Eigen states)
//   evaluate.cpp  the solvers compared, the reference solve of the learned ODE, the errors,
//                 the sliced Wasserstein distance and the torch-versus-Eigen check
//   main.cpp      options, the run per data set, the markdown tables and the gnuplot scatter
// Usage: examples/torch/README.md, or --help.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <deis/common.hpp>
#include <deis/schedule.hpp>
#include <string>
#include <vector>

namespace deis_torch_example {

// ---- data sets (model.cpp) --------------------------------------------------------------

/// A 2-D data distribution that can be sampled: [n, 2] float64 tensors.
struct dataset {
    std::string name;      ///< "checkerboard" or "ring"
    std::string describe;  ///< one line for the report
    // ring: the mixture's components (from tests/data/gmm2d_components.csv), else empty
    torch::Tensor weights, means, stds;  ///< [K], [K, 2], [K, 2]

    /// n samples drawn with `gen`.
    torch::Tensor sample(int64_t n, torch::Generator& gen) const;
};

/// The 4 x 4 checkerboard on [-4, 4]^2: uniform on the 8 squares whose row and column
/// indices have the same parity (a density with no closed-form noise prediction).
dataset checkerboard();
/// The reference ring mixture of the tests (8 Gaussians of std 0.3 on a circle of radius 4),
/// read from a components CSV (header mu0,mu1,std0,std1,weight).
dataset ring_mixture(const std::string& components_csv);

// ---- the network (model.cpp) ------------------------------------------------------------

/// eps_theta(x, t): the 2-D point and a sinusoidal embedding of t (`frequencies` sines and as
/// many cosines, frequencies geometric from 1 to 100 per unit of t) go through `layers`
/// hidden layers of `width` units with SiLU, then a linear layer to 2 outputs.
struct mlpImpl : torch::nn::Module {
    mlpImpl(int width, int layers, int frequencies);
    /// x: [n, 2]; t: [n, 1] (the times, one per row), same dtype as the weights.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t);

    torch::Tensor freq;  ///< buffer [1, frequencies]
    torch::nn::Sequential body{nullptr};
};
TORCH_MODULE(mlp);

struct train_config {
    int width = 64, layers = 3, frequencies = 16;
    int iterations = 4000;
    double max_seconds = 50.0;   ///< training stops at this wall-clock time if not done before
    int64_t batch = 512;
    /// Adam, decayed linearly to lr / 20 with the progress max(iteration / iterations,
    /// elapsed / max_seconds)
    double lr = 2e-3;
    double t_min = 1e-3;         ///< training times t ~ U(t_min, 1)
    std::uint64_t seed = 1;
};

struct train_report {
    double seconds = 0.0;
    int iterations = 0;  ///< done (fewer than asked when max_seconds was reached)
    double first_loss = 0.0, final_loss = 0.0;  ///< mean over the first / last 200 iterations
};

/// Trains eps_theta on the denoising loss E || eps_theta(alpha x0 + sigma eps, t) - eps ||^2
/// under `schedule`, in float32, with fresh data every iteration, for cfg.iterations or
/// cfg.max_seconds, whichever comes first (the run is reproducible by seed when the
/// iterations end first); returns the network (float32).
mlp train(const dataset& data, const deis::vp_linear& schedule, const train_config& cfg, train_report& rep);

/// The trained network as a deis Network on torch tensors [n, 2]:
/// net(const torch::Tensor& x, double t, torch::Tensor& out).
struct tensor_network {
    mlp model;
    void operator()(const torch::Tensor& x, double t, torch::Tensor& out) const;
};

/// The same network as a deis Network on Eigen states (2 x n, one sample per column, the
/// memory of an [n, 2] row-major tensor): the state's memory is wrapped as a tensor (no copy)
/// and the output copied into `out`.
struct eigen_network {
    mlp model;
    void operator()(const deis::state<double>& x, double t, deis::state<double>& out) const;
};

/// [n, 2] float64 tensor <-> 2 x n Eigen state (copies).
deis::state<double> to_state(const torch::Tensor& x);
torch::Tensor to_tensor(const deis::state<double>& x);

// ---- evaluation (evaluate.cpp) ----------------------------------------------------------

/// The NFE budgets of the tables and the compared solvers.
const std::vector<int>& nfe_budgets();
const std::vector<std::string>& solver_names();  ///< configuration names: ddim, tab3, rk:rk4, recommended

/// Samples x (float64 [n, 2], at t = 1, in place) with solver `name` on the quadratic grid
/// power_t_grid(schedule, steps, 1, t_end, 2) for the budget `nfe` (Runge-Kutta: nfe / 4
/// steps); returns the network calls made. Throws std::runtime_error when the run fails.
int sample_with(const std::string& name, int nfe, const deis::vp_linear& schedule, double t_end,
                const tensor_network& net, torch::Tensor& x);

/// Sliced Wasserstein-2 distance between two equally sized sets of 2-D points ([n, 2]):
/// sqrt of the mean over `directions` fixed unit directions (angles (k + 1/2) pi / directions)
/// of the mean squared difference of the sorted projections.
double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int directions = 256);

/// Median over samples of the Euclidean distance ||a_i - b_i|| ([n, 2] each).
double median_l2(const torch::Tensor& a, const torch::Tensor& b);

/// The torch backend against the Eigen wrapper on the same float64 network and noise: every
/// solver family (DDIM, tAB, rhoAB, iPNDM, data prediction with the corrector, rhoRK) at
/// `nfe` NFE. Returns the largest max |x_torch - x_eigen| / max |x_eigen| over them and
/// prints one line per solver.
double torch_vs_eigen(const deis::vp_linear& schedule, double t_end, const mlp& model, const torch::Tensor& x_T,
                      int nfe);

}  // namespace deis_torch_example
