// deis: calibrating a LibTorch network. The calibration (calibrate.hpp) and the reference
// solutions (reference.hpp) run on deis::state<double>, one sample per column; eigen_network
// wraps a torch network of the samplers' convention (deis/torch.hpp: net(const torch::Tensor&
// x, double t, torch::Tensor& out), samples along dim 0) into a Network on that state:
//
//     auto eigen_net = deis::eigen_network(net, {64}, torch::kFloat64);   // or {C, H, W}, kCUDA
//     auto ref = deis::make_calibration_reference(schedule, eigen_net, batch, 1.0, 1e-3);
//     auto grid = deis::optimize_grid(schedule, config, eigen_net, ref, steps).grid;
//
// and the grid then serves the torch sampler as any other. A D x B column-major matrix has the
// memory of a B x D row-major tensor: each call copies the batch into a tensor of shape
// {B, sample_shape...} with the given options (dtype, device), runs the network under
// c10::InferenceMode and copies its output back in double. With float32 options the
// calibration sees the network in float32, as the sampler will.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "deis/state.hpp"

namespace deis {

/// A Network on state<double> calling a torch network (see the top of this header).
template <class TorchNetwork>
class eigen_network_adaptor {
public:
    eigen_network_adaptor(TorchNetwork& net, std::vector<std::int64_t> sample_shape, at::TensorOptions options)
        : net_(&net), shape_(std::move(sample_shape)), options_(options) {}

    /// Calls the network on x (rows: the product of sample_shape). An output of another number
    /// of elements leaves `out` empty, which the solvers report as status::bad_output_shape.
    void operator()(const state<double>& x, double t, state<double>& out) const {
        const std::int64_t B = x.cols(), D = x.rows();
        std::vector<std::int64_t> shape{B};
        shape.insert(shape.end(), shape_.begin(), shape_.end());
        c10::InferenceMode guard;
        // a copy, never a view of x (the network must not see the caller's memory)
        const at::Tensor xt = at::from_blob(const_cast<double*>(x.data()), {B, D}, at::kDouble)
                                  .reshape(shape)
                                  .to(options_, /*non_blocking=*/false, /*copy=*/true);
        at::Tensor ot = at::empty_like(xt);
        (*net_)(xt, t, ot);
        if (!ot.defined() || ot.numel() != B * D) {
            out.resize(0, 0);
            return;
        }
        out.resize(D, B);
        at::from_blob(out.data(), {B, D}, at::kDouble).copy_(ot.reshape({B, D}).to(at::kCPU, at::kDouble));
    }

private:
    TorchNetwork* net_;
    std::vector<std::int64_t> shape_;
    at::TensorOptions options_;
};

/// The adaptor of `net` (kept by reference) for samples of `sample_shape` (its product is the
/// rows of the calibration batch) in tensors of `options`.
template <class TorchNetwork>
eigen_network_adaptor<TorchNetwork> eigen_network(TorchNetwork& net, std::vector<std::int64_t> sample_shape,
                                                  at::TensorOptions options) {
    return eigen_network_adaptor<TorchNetwork>(net, std::move(sample_shape), options);
}

}  // namespace deis
