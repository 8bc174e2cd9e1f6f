// A TorchScript module (LibTorch) as a Network on deis::state<Scalar>: what deis-sample
// --model calls (docs/deis-sample.md, "Trained networks"). Needs LibTorch; not part of the
// library.
//
// The module's contract: forward(x, t) with x of shape [B, ...] (the samples along dim 0:
// [B, D], or [B] + shape when a per-sample shape is given, e.g. [B, C, H, W]) and t a 1-D
// tensor of the B times, both of the chosen dtype and on the chosen device; it returns a
// tensor of x's shape and dtype. A D x B column-major state (one sample per column) has the
// memory of a [B, D] row-major tensor, so no transpose is needed on the way in or out.
//
// Lifetime and threads: the network owns its module; calls are made one after another from
// one thread (as the solvers make them). The module gets its own copy of x at every call, so
// an in-place operation on its input never touches the solver's state.
#pragma once

#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <deis/common.hpp>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/input_file.hpp"

namespace deis_tools {

/// How a torchscript_network calls its module.
struct torchscript_options {
    c10::ScalarType dtype = c10::kFloat;  ///< of x and t given to the module: kFloat or kDouble
    c10::Device device = c10::kCPU;       ///< where the module and its inputs live
    std::int64_t batch = 0;               ///< at most this many samples a forward call; 0: all at once
    std::vector<std::int64_t> shape;      ///< one sample's shape, e.g. {C, H, W}; empty: {D}
};

/// The module cannot be used: the file is missing or not a TorchScript module with a forward
/// method.
struct torchscript_load_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// A call broke the contract: forward threw, or returned something other than a tensor of the
/// input's shape and dtype. The message is one line, without the call's time.
struct torchscript_call_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

namespace detail {

// The last non-empty line of a LibTorch message: TorchScript puts its traceback first and the
// error itself last.
inline std::string last_line(const std::string& msg) {
    std::string line;
    std::istringstream in(msg);
    for (std::string l; std::getline(in, l);) {
        const auto b = l.find_first_not_of(" \t\r");
        if (b != std::string::npos) line = l.substr(b);
    }
    return line.empty() ? msg : line;
}

inline std::string torch_message(const std::exception& e) {
    if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return last_line(c->what_without_backtrace());
    return last_line(e.what());
}

inline std::string dtype_name(c10::ScalarType t) {
    if (t == c10::kFloat) return "float32";
    if (t == c10::kDouble) return "float64";
    return c10::toString(t);
}

inline std::string shape_text(c10::IntArrayRef s) {
    std::ostringstream o;
    o << s;
    return o.str();
}

}  // namespace detail

/// A TorchScript module as a deis Network on deis::state<float> and deis::state<double>:
/// net(x, t, out) calls forward(x, t) on at most options().batch samples at a time, x and t
/// converted to options().dtype (so the state and the module may differ: the solver in
/// double, the module in float32), and writes the output, converted back, into `out`.
class torchscript_network {
public:
    /// Loads the module at `path` onto opt.device and puts it in eval mode. Throws
    /// std::invalid_argument for options it cannot honour (a dtype other than float32 and
    /// float64, a negative batch or shape entry, a CUDA device without CUDA) and
    /// torchscript_load_error for a file it cannot load.
    torchscript_network(const std::string& path, torchscript_options opt) : opt_(std::move(opt)) {
        if (opt_.dtype != c10::kFloat && opt_.dtype != c10::kDouble)
            throw std::invalid_argument("dtype " + detail::dtype_name(opt_.dtype) + ": float32 or float64 only");
        if (opt_.batch < 0) throw std::invalid_argument("batch " + std::to_string(opt_.batch) + " must be >= 0");
        for (std::int64_t s : opt_.shape)
            if (s < 1) throw std::invalid_argument("shape entries must be >= 1");
        if (opt_.device.is_cuda() && !torch::cuda::is_available())
            throw std::invalid_argument(
                "device cuda: CUDA is not available to LibTorch (torch::cuda::is_available() is false)");
        try {
            deis_tools::input_file check(path);  // a regular file that can be opened
        } catch (const std::runtime_error& e) {
            throw torchscript_load_error(e.what());
        }
        try {
            module_ = torch::jit::load(path, opt_.device);
        } catch (const std::exception& e) {
            throw torchscript_load_error(path + ": not a TorchScript module (" + detail::torch_message(e) + ")");
        }
        if (!module_.find_method("forward"))
            throw torchscript_load_error(path + ": the TorchScript module has no forward method");
        module_.eval();
    }

    const torchscript_options& options() const { return opt_; }

    /// forward on the samples of x (one per column) at time t, into out (resized to x's
    /// shape). Throws torchscript_call_error; std::invalid_argument when a sample's size is
    /// not the product of options().shape.
    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) {
        static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>, "float or double states");
        constexpr c10::ScalarType state_type = c10::CppTypeToScalarType<Scalar>::value;
        const std::int64_t dim = x.rows(), n = x.cols();
        std::vector<std::int64_t> sizes = {0};
        if (opt_.shape.empty()) {
            sizes.push_back(dim);
        } else {
            std::int64_t product = 1;
            for (std::int64_t s : opt_.shape) product *= s;
            if (product != dim)
                throw std::invalid_argument("a sample has " + std::to_string(dim) + " values, the shape " +
                                            detail::shape_text(opt_.shape) + " holds " + std::to_string(product));
            sizes.insert(sizes.end(), opt_.shape.begin(), opt_.shape.end());
        }
        out.resize(x.rows(), x.cols());
        const c10::InferenceMode no_autograd;
        const std::int64_t chunk = opt_.batch > 0 ? std::min(opt_.batch, n) : n;
        for (std::int64_t j0 = 0; j0 < n; j0 += chunk) {
            const std::int64_t m = std::min(chunk, n - j0);
            sizes[0] = m;
            // columns j0 .. j0 + m - 1 are the rows of an [m, D] row-major tensor; the module's
            // own copy, in its dtype, on its device
            const at::Tensor view = torch::from_blob(const_cast<Scalar*>(x.data() + j0 * dim), {m, dim},
                                                     at::TensorOptions().dtype(state_type));
            const at::Tensor in = view.to(opt_.device, opt_.dtype, false, true).reshape(sizes);
            const at::Tensor times = torch::full({m}, t, at::TensorOptions().dtype(opt_.dtype).device(opt_.device));
            c10::IValue result;
            try {
                result = module_.forward({in, times});
            } catch (const std::exception& e) {
                throw torchscript_call_error("forward failed: " + detail::torch_message(e));
            }
            if (!result.isTensor())
                throw torchscript_call_error(std::string("forward returned a ") + result.tagKind() + ", not a tensor");
            const at::Tensor y = result.toTensor();
            if (y.sizes() != in.sizes())
                throw torchscript_call_error("forward returned shape " + detail::shape_text(y.sizes()) +
                                             " for an input of shape " + detail::shape_text(in.sizes()));
            if (y.scalar_type() != opt_.dtype)
                throw torchscript_call_error("forward returned dtype " + detail::dtype_name(y.scalar_type()) +
                                             " for an input of dtype " + detail::dtype_name(opt_.dtype));
            const at::Tensor back = y.to(at::kCPU, state_type).contiguous();
            out.middleCols(j0, m) = Eigen::Map<const deis::state<Scalar>>(back.data_ptr<Scalar>(), dim, m);
        }
    }

private:
    torchscript_options opt_;
    torch::jit::Module module_;
};

}  // namespace deis_tools
