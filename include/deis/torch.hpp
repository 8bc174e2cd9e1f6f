// deis: torch::Tensor as a state: every solver samples LibTorch tensors in place, on the
// device they are on. Include this header (LibTorch users only; <deis/deis.hpp> does not) and
// pass a tensor where an Eigen state would go:
//
//     #include <deis/deis.hpp>
//     #include <deis/torch.hpp>
//
//     torch::Tensor x = torch::randn({4, 4, 64, 64}, torch::kCUDA);     // any shape
//     auto net = [&](const torch::Tensor& x, double t, torch::Tensor& out) {
//         out.copy_(unet->forward(x, t));                                // write into out
//     };
//     deis::multistep_solver solver(schedule, grid, options);
//     deis::sample_result r = solver.sample(net, x);                     // x holds the samples
//
// The calling convention, which outside code may rely on:
// - x: a defined, contiguous tensor of any shape with at least one element, of dtype float32,
//   float64, float16 or bfloat16, on any device, not requiring grad. The result is written
//   into x in place; its dtype, device and shape are kept. Samples lie along dim 0 (for the
//   per-sample operations: thresholding and the default noise).
// - net(const torch::Tensor& x, double t, torch::Tensor& out): `out` is a tensor like x,
//   already allocated; write the prediction into it (out.copy_(...)). Assigning a new tensor
//   to `out` works as long as it has x's shape, dtype and device (else the run stops with
//   status::bad_output_shape), but hands its storage to the solver, which reuses it.
// - The whole run happens under c10::InferenceMode (state_ops<at::Tensor>::scope), so the
//   network runs without autograd; buffers of a workspace made outside a run are ordinary
//   tensors, usable in and out of inference mode.
// - Workspaces: workspace<torch::Tensor>(solver, x) (for every solver) makes its buffers with
//   torch::empty_like(x) (same dtype and device).
//
// How the operations run (state_ops<at::Tensor>):
// - On the CPU, for float32 and float64, the fused update and the finiteness check are the
//   Eigen kernels on the tensor's memory (one pass, no allocation), exactly as for
//   deis::state<Scalar>.
// - On other devices (CUDA) they are torch operations on the device: the update
//   out = a x + sum c_j h_j is at::mul_out followed by one add_(h_j, c_j) per term (n + 1
//   passes, no allocation), the finiteness check isfinite().all() (one device
//   synchronisation per call, once per network call). Nothing is copied to the host: no
//   data_ptr on the host, no .cpu() in the loop.
// - float16 and bfloat16: the update is computed in float32 (each operand converted, summed
//   in float32) and stored back in the tensor's dtype, on every device; the conversions
//   allocate temporaries through torch's allocator (docs/backends.md has the
//   measured error against a float32 run).
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <Eigen/Core>
#include <array>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/noise.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"

namespace deis {

namespace detail {

inline bool torch_reduced(at::ScalarType st) { return st == at::kHalf || st == at::kBFloat16; }

// A CPU float32/float64 contiguous tensor seen as an Eigen vector (no copy).
template <class Scalar>
Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>> torch_as_eigen(const at::Tensor& t) {
    return {const_cast<Scalar*>(t.data_ptr<Scalar>()), Eigen::Index(t.numel())};
}

inline bool torch_eigen_path(const at::Tensor& x) {
    return x.is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble);
}

// out = a x + sum_{j < n} c[j] h[j] with torch operations on the tensors' device (the path
// of non-CPU devices; also callable on the CPU, where the tests compare it with the Eigen one).
inline void torch_combine_ops(at::Tensor& out, double a, const at::Tensor& x, const double* c,
                              const at::Tensor* const* h, int n) {
    if (torch_reduced(x.scalar_type())) {
        at::Tensor acc = x.to(at::kFloat).mul_(a);
        for (int j = 0; j < n; ++j) acc.add_(h[j]->to(at::kFloat), c[j]);
        out.copy_(acc);
        return;
    }
    if (out.is_same(x))
        out.mul_(a);
    else
        at::mul_out(out, x, a);
    for (int j = 0; j < n; ++j) out.add_(*h[j], c[j]);
}

template <class Scalar, std::size_t... I>
std::array<Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>, sizeof...(I)> torch_maps(const at::Tensor* const* h, int n,
                                                                                        std::index_sequence<I...>) {
    using vec = Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>;
    return {{(int(I) < n ? torch_as_eigen<Scalar>(*h[I]) : vec(nullptr, 0))...}};
}

// The Eigen kernel on CPU tensors' memory: one fused pass, as for deis::state<Scalar>.
template <class Scalar>
void torch_combine_eigen(at::Tensor& out, double a, const at::Tensor& x, const double* c, const at::Tensor* const* h,
                         int n) {
    using vec = Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>;
    const auto maps = torch_maps<Scalar>(h, n, std::make_index_sequence<std::size_t(max_combination_terms)>{});
    std::array<const vec*, std::size_t(max_combination_terms)> hp{};
    for (int j = 0; j < n; ++j) hp[std::size_t(j)] = &maps[std::size_t(j)];
    vec o = torch_as_eigen<Scalar>(out);
    const vec xi = torch_as_eigen<Scalar>(x);
    eigen_combine_dispatch(o, a, xi, c, hp.data(), n);
}

}  // namespace detail

/// torch::Tensor (at::Tensor) models the State backend concept; see the top of this header.
template <>
struct state_ops<at::Tensor> {
    using buffer = at::Tensor;
    using scope = c10::InferenceMode;

    static at::Tensor like(const at::Tensor& x) { return at::empty_like(x, at::MemoryFormat::Contiguous); }
    static at::Tensor& view(at::Tensor& b) { return b; }
    static void copy(at::Tensor& y, const at::Tensor& x) { y.copy_(x); }

    static void combine(at::Tensor& out, double a, const at::Tensor& x, const double* c, const at::Tensor* const* h,
                        int n) {
        if (detail::torch_eigen_path(x)) {
            if (x.scalar_type() == at::kDouble)
                detail::torch_combine_eigen<double>(out, a, x, c, h, n);
            else
                detail::torch_combine_eigen<float>(out, a, x, c, h, n);
            return;
        }
        detail::torch_combine_ops(out, a, x, c, h, n);
    }

    static bool all_finite(const at::Tensor& x) {
        if (detail::torch_eigen_path(x)) {
            return x.scalar_type() == at::kDouble ? detail::all_finite(detail::torch_as_eigen<double>(x))
                                                  : detail::all_finite(detail::torch_as_eigen<float>(x));
        }
        return at::isfinite(x).all().item<bool>();
    }

    static bool same_layout(const at::Tensor& x, const at::Tensor& y) {
        return x.defined() && y.defined() && x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type() &&
               x.device() == y.device() && x.is_contiguous() && y.is_contiguous();
    }
    static bool empty(const at::Tensor& x) { return !x.defined() || x.numel() == 0; }
    static std::string describe(const at::Tensor& x) {
        if (!x.defined()) return "undefined";
        std::ostringstream os;
        os << x.sizes() << ' ' << x.scalar_type() << ' ' << x.device();
        return os.str();
    }

    // The checks of the calling convention, before anything is touched.
    static void check(const char* where, const at::Tensor& x) {
        if (!x.defined()) detail::fail(where, "x", "undefined", "must be a defined tensor");
        const auto st = x.scalar_type();
        if (!(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16))
            detail::fail(where, "x.dtype", std::string(c10::toString(st)),
                         "must be float32, float64, float16 or bfloat16");
        if (!x.is_contiguous()) detail::fail(where, "x", describe(x), "must be contiguous (call .contiguous())");
        if (x.requires_grad()) detail::fail(where, "x", describe(x), "must not require grad (sampling is in place)");
    }

    // Dynamic thresholding per sample (dim 0), with torch operations on the device.
    static void threshold(at::Tensor& x0, at::Tensor& /*scratch*/, double p, double max_value) {
        const auto batch = x0.size(0);
        at::Tensor flat = x0.reshape({batch, -1}).abs().to(at::kFloat);
        at::Tensor s = at::quantile(flat, p, 1).clamp_(1.0, max_value);
        std::vector<int64_t> shape(std::size_t(x0.dim()), 1);
        shape[0] = batch;
        s = s.reshape(shape).to(x0.scalar_type());
        x0.copy_(at::maximum(at::minimum(x0, s), -s) / s);
    }
};

/// The default noise on tensors: sample b (index b along dim 0) of step k is drawn by a CPU
/// generator of its own, seeded from (seed, k, b), and copied to the tensor's device: a
/// sample's noise does not depend on the batch around it, and is the same on every device.
/// (float16 and bfloat16 tensors get float32 draws, rounded.)
template <>
struct noise_ops<at::Tensor> {
    static void fill(at::Tensor& z, std::uint64_t seed, int step) {
        const auto batch = z.dim() == 0 ? 1 : z.size(0);
        const auto dtype = detail::torch_reduced(z.scalar_type()) ? at::kFloat : z.scalar_type();
        for (int64_t b = 0; b < batch; ++b) {
            at::Generator g =
                at::make_generator<at::CPUGeneratorImpl>(detail::noise_key(seed, std::uint64_t(step), std::uint64_t(b)));
            at::Tensor zb = z.dim() == 0 ? z : z.select(0, b);
            at::Tensor host = at::empty(zb.sizes(), at::TensorOptions().dtype(dtype));
            host.normal_(0.0, 1.0, g);
            zb.copy_(host);
        }
    }
};

}  // namespace deis
