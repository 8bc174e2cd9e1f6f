// The torch::Tensor backend (deis/torch.hpp): the conformance suite on float64 and float32
// tensors (the CPU path, Eigen kernels on the tensors' memory) and on float64 tensors through
// the torch operations that run on other devices; shapes other than [N, D]; float16 and
// bfloat16; the stochastic samplers' per-sample noise; inference mode; calibrating a torch
// network through deis::eigen_network (deis/research/calibrate_torch.hpp); the contract of the
// trained networks on the digits and the breast cancer data (tests/data/trained/digits/,
// tests/data/trained/breast_cancer/).
//
// The device is the CPU, or the one named by the environment variable DEIS_TEST_DEVICE
// (e.g. "cuda"; tests/device/run-cuda-conformance.sh sets it).
#include <ATen/ATen.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "catch.hpp"
#include "conformance.hpp"
#include "deis/deis.hpp"
#include "deis/research/calibrate.hpp"
#include "deis/research/calibrate_torch.hpp"
#include "deis/torch.hpp"

namespace {

at::Device test_device() {
    const char* d = std::getenv("DEIS_TEST_DEVICE");
    return at::Device(d && *d ? std::string(d) : std::string("cpu"));
}

// [N, D] row-major is the memory of a D x N column-major matrix: the Eigen state of a tensor
// whose samples lie along dim 0.
template <class R>
deis::state<R> to_state(const at::Tensor& x) {
    const auto n = x.size(0);
    const at::Tensor c = x.detach().to(at::kCPU, c10::CppTypeToScalarType<R>::value).contiguous().reshape({n, -1});
    return Eigen::Map<const deis::state<R>>(c.data_ptr<R>(), c.size(1), n);
}

template <class R>
at::Tensor to_tensor(const deis::state<R>& m, at::IntArrayRef shape, const at::TensorOptions& opt) {
    at::Tensor t = at::empty({m.cols(), m.rows()}, at::TensorOptions().dtype(c10::CppTypeToScalarType<R>::value));
    Eigen::Map<deis::state<R>>(t.data_ptr<R>(), m.rows(), m.cols()) = m;
    return t.reshape(shape).to(opt);
}

// A network on tensors computing what the Eigen network computes (on the CPU, in R).
template <class R, class Net>
auto tensor_network(Net net) {
    return [net](const at::Tensor& x, double t, at::Tensor& out) {
        const deis::state<R> in = to_state<R>(x);
        deis::state<R> o(in.rows(), in.cols());
        net(in, t, o);
        out.copy_(to_tensor<R>(o, x.sizes(), x.options()));
    };
}

template <class Scalar>
struct torch_backend {
    using state_type = at::Tensor;
    using reference_scalar = Scalar;
    static constexpr const char* name = std::is_same_v<Scalar, double> ? "torch float64" : "torch float32";
    // On the CPU the same Eigen kernels run on the tensors' memory: identical. On another
    // device torch's kernels add in another order (and may fuse multiply-adds): a few ulps per
    // operation, about 1e-13 of the sample scale over a run in double, 1e-5 in float.
    static constexpr double tolerance = std::is_same_v<Scalar, double> ? 1e-12 : 2e-5;
    struct holder {
        at::Tensor x;
        at::Tensor& state() { return x; }
    };
    static holder make(const Eigen::MatrixXd& x) {
        const deis::state<Scalar> m = x.cast<Scalar>();
        return {to_tensor<Scalar>(m, {m.cols(), m.rows()}, at::TensorOptions().device(test_device()))};
    }
    static Eigen::MatrixXd read(const at::Tensor& x) { return to_state<Scalar>(x).template cast<double>(); }
    template <class Net>
    static auto network(Net net) {
        return tensor_network<Scalar>(net);
    }
};

}  // namespace

// ---- The path of non-CPU devices, run on the CPU: a tensor whose operations are torch's -----

namespace {
struct ops_tensor {
    at::Tensor t;
};
}  // namespace

template <>
struct deis::state_ops<ops_tensor> {
    using base = deis::state_ops<at::Tensor>;
    using buffer = ops_tensor;
    using scope = base::scope;
    static ops_tensor like(const ops_tensor& x) { return {base::like(x.t)}; }
    static ops_tensor& view(ops_tensor& b) { return b; }
    static void copy(ops_tensor& y, const ops_tensor& x) { base::copy(y.t, x.t); }
    static void combine(ops_tensor& out, double a, const ops_tensor& x, const double* c, const ops_tensor* const* h,
                        int n) {
        std::array<const at::Tensor*, std::size_t(deis::max_combination_terms)> ht{};
        for (int j = 0; j < n; ++j) ht[std::size_t(j)] = &h[j]->t;
        deis::detail::torch_combine_ops(out.t, a, x.t, c, ht.data(), n);
    }
    static bool all_finite(const ops_tensor& x) { return at::isfinite(x.t).all().item<bool>(); }
    static bool same_layout(const ops_tensor& x, const ops_tensor& y) { return base::same_layout(x.t, y.t); }
    static bool empty(const ops_tensor& x) { return base::empty(x.t); }
    static std::string describe(const ops_tensor& x) { return base::describe(x.t); }
    static void check(const char* where, const ops_tensor& x) { base::check(where, x.t); }
};

namespace {
struct torch_ops_backend {
    using state_type = ops_tensor;
    using reference_scalar = double;
    static constexpr const char* name = "torch float64 through torch operations";
    // torch's mul/add kernels instead of one fused Eigen expression: the same operations in
    // double, rounded after each term; 1e-12 of the sample scale over a run (as the issue asks)
    static constexpr double tolerance = 1e-12;
    struct holder {
        ops_tensor x;
        ops_tensor& state() { return x; }
    };
    static holder make(const Eigen::MatrixXd& x) { return {{torch_backend<double>::make(x).x}}; }
    static Eigen::MatrixXd read(const ops_tensor& x) { return torch_backend<double>::read(x.t); }
    template <class Net>
    static auto network(Net net) {
        auto inner = tensor_network<double>(net);
        return [inner](const ops_tensor& x, double t, ops_tensor& out) { inner(x.t, t, out.t); };
    }
};
}  // namespace

TEST_CASE("torch: the device under test is available", "[torch]") {
    // tests/device/run-cuda-conformance.sh asks this first: with DEIS_TEST_DEVICE=cuda and a
    // CPU-only LibTorch it fails, and the script reports "skipped"
    const at::Device d = test_device();
    INFO("device " << d);
    REQUIRE((d.is_cpu() || (d.is_cuda() && torch::cuda::is_available())));
    CHECK(at::ones({2}, at::TensorOptions().device(d)).sum().item<double>() == 2.0);
}

TEST_CASE("torch: conformance, float64 tensors", "[torch][conformance]") {
    deis_conformance::run_all<torch_backend<double>>();
}
TEST_CASE("torch: conformance, float32 tensors", "[torch][conformance]") {
    deis_conformance::run_all<torch_backend<float>>();
}
TEST_CASE("torch: conformance, float64 through the torch operations of non-CPU devices", "[torch][conformance]") {
    deis_conformance::run_all<torch_ops_backend>();
}

TEST_CASE("torch: a shape other than [N, D] gives the same values", "[torch]") {
    const deis_conformance::problem p;
    const deis::multistep_solver solver(p.schedule, p.grid, deis::recommended_options(p.schedule, p.grid));
    auto net2 = tensor_network<double>(deis_conformance::output_net<double>{&p});
    at::Tensor flat = torch_backend<double>::make(p.x_T).x;  // [40, 2]
    at::Tensor nchw = flat.reshape({40, 1, 2, 1}).clone();
    at::Tensor nhwc = flat.reshape({40, 1, 1, 2}).clone();
    REQUIRE(solver.sample(net2, flat).ok());
    REQUIRE(solver.sample(net2, nchw).ok());
    REQUIRE(solver.sample(net2, nhwc).ok());
    CHECK(nchw.sizes() == at::IntArrayRef({40, 1, 2, 1}));
    CHECK(at::equal(nchw.reshape({40, 2}), flat));
    CHECK(at::equal(nhwc.reshape({40, 2}), flat));
}

TEST_CASE("torch: dtype and device are kept, x is written in place, inference mode inside", "[torch]") {
    const deis_conformance::problem p;
    const deis::rk_solver<deis::tableau::heun2> solver(p.schedule, p.grid);
    at::Tensor x = torch_backend<float>::make(p.x_T).x;
    const void* storage = x.data_ptr();
    bool inference = false;
    auto inner = tensor_network<float>(deis_conformance::output_net<float>{&p});
    auto net = [&](const at::Tensor& in, double t, at::Tensor& out) {
        inference = c10::InferenceMode::is_enabled();
        inner(in, t, out);
    };
    REQUIRE(solver.sample(net, x).ok());
    CHECK(inference);
    CHECK_FALSE(c10::InferenceMode::is_enabled());
    CHECK(x.data_ptr() == storage);
    CHECK(x.scalar_type() == at::kFloat);
    CHECK(x.device() == test_device());
    CHECK_FALSE(x.is_inference());  // the caller's tensor stays an ordinary tensor
}

TEST_CASE("torch: the calling convention's bad input is rejected untouched", "[torch]") {
    const deis_conformance::problem p;
    const deis::multistep_solver solver(p.schedule, p.grid);
    auto net = tensor_network<double>(deis_conformance::output_net<double>{&p});
    auto rejects = [&](at::Tensor x, const std::string& part) {
        CAPTURE(part);
        const at::Tensor before = x.defined() ? x.detach().clone() : at::Tensor();
        CHECK_THROWS_WITH(solver.sample(net, x), deis_test::contains(part));
        // untouched (NaN compared as NaN)
        if (x.defined() && x.numel() > 0)
            CHECK((at::equal(at::isnan(x.detach()), at::isnan(before)) &&
                   at::equal(at::nan_to_num(x.detach(), 0.0), at::nan_to_num(before, 0.0))));
    };
    const at::Tensor good = torch_backend<double>::make(p.x_T).x;
    rejects(good.to(at::kInt), "must be float32, float64, float16 or bfloat16");
    rejects(good.t(), "must be contiguous");
    rejects(good.clone().requires_grad_(true), "must not require grad");
    rejects(at::Tensor(), "must be a defined tensor");
    rejects(at::empty({0, 2}, good.options()), "must hold at least one element");
    at::Tensor nan = good.clone();
    nan.index_put_({3, 1}, std::numeric_limits<double>::quiet_NaN());
    rejects(nan, "must be finite");
    // a workspace of another dtype does not fit
    deis::multistep_workspace<at::Tensor> ws(solver, good.to(at::kFloat));
    at::Tensor x = good.clone();
    CHECK_THROWS_WITH(solver.sample(net, x, ws), deis_test::contains("does not fit"));
}

TEST_CASE("torch: float16 and bfloat16 update in float32 and stay close to a float32 run", "[torch]") {
    const deis_conformance::problem p;
    const deis::multistep_solver solver(p.schedule, p.grid, deis::recommended_options(p.schedule, p.grid));
    auto net = [&](const at::Tensor& x, double t, at::Tensor& out) {
        // the network computes in float32, as a mixed-precision model would
        const deis::state<float> in = to_state<float>(x);
        deis::state<float> o(in.rows(), in.cols());
        p.eps(in, t, o);
        out.copy_(to_tensor<float>(o, x.sizes(), x.options()));
    };
    at::Tensor ref = torch_backend<float>::make(p.x_T).x;
    REQUIRE(solver.sample(net, ref).ok());
    for (auto dtype : {at::kHalf, at::kBFloat16}) {
        CAPTURE(c10::toString(dtype));
        at::Tensor x = torch_backend<float>::make(p.x_T).x.to(dtype);
        REQUIRE(solver.sample(net, x).ok());
        CHECK(x.scalar_type() == dtype);
        const double err = (x.to(at::kFloat) - ref).abs().max().item<double>();
        const double scale = ref.abs().max().item<double>();
        // Each stored state is rounded to the dtype (unit round-off 2^-11 for float16, 2^-8 for
        // bfloat16) once per step; with 10 steps and samples of size ~4 the error stays within a
        // few units of the last step's rounding: measured 2.5e-3 (float16) and 1.5e-2 (bfloat16)
        // of the largest entry, i.e. 5 and 4 units.
        const double u = dtype == at::kHalf ? 0x1p-11 : 0x1p-8;
        INFO("max error " << err << " against float32, sample scale " << scale);
        CHECK(err <= 10 * u * scale);
    }
}

TEST_CASE("torch: stochastic sampling draws per-sample noise, reproducible by seed", "[torch][stochastic]") {
    const deis_conformance::problem p;
    deis::multistep_options o = deis::parse_multistep("tab1+data");
    o.sde = true;
    o.seed = 7;
    const deis::multistep_solver solver(p.schedule, p.grid, o);
    auto net = tensor_network<double>(deis_conformance::output_net<double>{&p});
    at::Tensor a = torch_backend<double>::make(p.x_T).x, b = a.clone(), c = a.clone();
    REQUIRE(solver.sample(net, a).ok());
    REQUIRE(solver.sample(net, b).ok());
    CHECK(at::equal(a, b));  // the same seed: the same samples
    // a sample's noise does not depend on the batch around it: the first 10 samples alone
    at::Tensor head = c.narrow(0, 0, 10).clone();
    REQUIRE(solver.sample(net, head).ok());
    CHECK(at::equal(head, a.narrow(0, 0, 10)));
    // another seed, other samples
    o.seed = 8;
    at::Tensor d = c.clone();
    REQUIRE(deis::multistep_solver(p.schedule, p.grid, o).sample(net, d).ok());
    CHECK_FALSE(at::equal(d, a));
}

TEST_CASE("torch: a torch network calibrates through eigen_network to the Eigen network's grid", "[torch][calibrate]") {
    const deis_conformance::problem p;
    const deis_conformance::output_net<double> eigen_net{&p};
    auto torch_net = tensor_network<double>(eigen_net);  // the same values, on tensors of shape [B, 1, 2]
    long calls = 0;
    auto counted = [&](const at::Tensor& x, double t, at::Tensor& out) {
        ++calls;
        CHECK(x.sizes() == at::IntArrayRef{x.size(0), 1, 2});
        CHECK(x.device() == test_device());
        torch_net(x, t, out);
    };
    const auto adapted = deis::eigen_network(counted, {1, 2}, at::TensorOptions(at::kDouble).device(test_device()));
    const deis::state<double> batch = p.x_T;  // 40 samples at t = 1
    deis::calibration_reference_options ro;
    ro.candidates = 16;  // small: this checks the plumbing, not the search
    const auto ref_t = deis::make_calibration_reference(p.schedule, adapted, batch, 1.0, 1e-3, ro);
    const auto ref_e = deis::make_calibration_reference(p.schedule, eigen_net, batch, 1.0, 1e-3, ro);
    CHECK(calls == ref_t.network_calls);
    // copies in and out are exact, so everything is bit for bit the Eigen network's
    CHECK(ref_t.solution() == ref_e.solution());
    deis::calibrate_options co;
    co.max_runs = 12;
    auto config = [&p](const std::vector<double>& g) { return deis::recommended_options(p.schedule, g); };
    const auto a = deis::optimize_grid(p.schedule, config, adapted, ref_t, 5, co);
    const auto b = deis::optimize_grid(p.schedule, config, eigen_net, ref_e, 5, co);
    CHECK(a.grid == b.grid);
    CHECK(a.error == b.error);
    CHECK(calls == ref_t.network_calls + a.search_calls);
    // an output of the wrong size is a failed run, not a crash
    auto wrong = [](const at::Tensor& x, double, at::Tensor& out) { out = at::zeros({x.size(0), 3}, x.options()); };
    const auto bad = deis::eigen_network(wrong, {2}, at::kDouble);
    deis::state<double> x = batch;
    const deis::multistep_solver solver(p.schedule, p.grid, deis::recommended_options(p.schedule, p.grid));
    CHECK(solver.sample(bad, x).status == deis::status::bad_output_shape);
}

namespace {

// The contract of a trained network of tests/data/trained/ (`file` under it), forward(x [B, D],
// t [B] or 0-dim) -> eps [B, D] in the dtype of x, and an oracle at t = 1: the RMS of
// eps - x/sigma(1) over a batch of N(0, I) points x must be below `oracle_limit`.
void check_trained_contract(const std::string& file, int64_t D, double oracle_limit) {
    torch::jit::Module m = torch::jit::load(deis_test::reference_path(file));
    c10::InferenceMode guard;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const int64_t B = 256;
    // inputs exactly representable in float32, so that both dtypes see the same x and t
    const at::Tensor x = at::randn({B, D}, gen, at::kDouble).to(at::kFloat).to(at::kDouble);
    const at::Tensor t = (1e-3 + (1.0 - 1e-3) * at::rand({B}, gen, at::kDouble)).to(at::kFloat).to(at::kDouble);
    const at::Tensor e64 = m.forward({x, t}).toTensor();
    const at::Tensor e32 = m.forward({x.to(at::kFloat), t.to(at::kFloat)}).toTensor();
    REQUIRE(e64.sizes() == at::IntArrayRef({B, D}));
    REQUIRE(e64.scalar_type() == at::kDouble);
    REQUIRE(e32.scalar_type() == at::kFloat);
    CHECK(at::isfinite(e64).all().item<bool>());
    CHECK(at::isfinite(e32).all().item<bool>());

    // float32 against float64: every operation rounds to 6e-8 relative, but the time
    // embedding's arguments 1000 t f reach 1000, where float32's spacing is 6.1e-5, so its sines
    // and cosines carry absolute errors up to ~6e-5, which the network's few layers carry to eps.
    // 1e-4 of max |eps| bounds that and still catches a float16-like rounding (1e-3) or the
    // weights or t used in another dtype.
    const double scale = e64.abs().max().item<double>();
    const double d32 = (e32.to(at::kDouble) - e64).abs().max().item<double>() / scale;
    INFO(file << ": float32 against float64: max relative difference " << d32);
    CHECK(d32 < 1e-4);

    // a 0-dim t is broadcast to the batch: the same operations on the same values
    const at::Tensor t0 = t[3];
    const at::Tensor t_rows = at::full({B}, t0.item<double>(), t.options());
    CHECK(at::equal(m.forward({x, t0}).toTensor(), m.forward({x, t_rows}).toTensor()));

    // At t = 1, alpha = exp(-(20 - 0.1)/4 - 0.1/2) = 0.0066 and sigma = sqrt(1 - alpha^2): the
    // ideal eps(x) = (x - alpha E[x0 | x]) / sigma is x/sigma to within alpha/sigma |E[x0 | x]|.
    const double la = -(20.0 - 0.1) / 4.0 - 0.1 / 2.0;
    const double sigma1 = std::sqrt(-std::expm1(2.0 * la));
    const at::Tensor xn = at::randn({B, D}, gen, at::kDouble);
    const at::Tensor e1 = m.forward({xn, at::ones({B}, at::kDouble)}).toTensor();
    const double rms = (e1 - xn / sigma1).pow(2).mean().sqrt().item<double>();
    INFO(file << ": t = 1: RMS of eps - x/sigma " << rms);
    CHECK(rms < oracle_limit);
}

}  // namespace

TEST_CASE("torch: the trained digits network (tests/data/trained/digits) keeps its contract", "[torch][trained]") {
    // The oracle at t = 1: every pixel of x0 is in [-1, 1], so |eps - x/sigma| <= alpha/sigma =
    // 0.0066 per pixel. 0.05 in RMS over the batch leaves the network an error of about 0.04 per
    // pixel beyond that (64 x 0.04^2 = 0.1 of loss above the ideal at t = 1, a small part of a
    // training loss of several units) and is a tenth of what eps = x/2 would give, a twentieth of
    // eps = 0.
    check_trained_contract("trained/digits/digits_eps.pt", 64, 0.05);
}

TEST_CASE("torch: the trained breast cancer network (tests/data/trained/breast_cancer) keeps its contract",
          "[torch][trained]") {
    // The oracle at t = 1: the features are z-scored (mean 0, variance 1), so E[x0 | x] is the
    // mean 0 up to O(alpha) and the ideal |eps - x/sigma| is of order alpha^2 |Cov(x0) x| ~ 1e-4
    // per feature: the measured 0.038 RMS is the network's own error. 0.08 leaves it twice that
    // (30 x 0.08^2 = 0.19 of loss above the ideal at t = 1, a small part of a training loss of
    // 3.1) and is a sixth of what eps = x/2 would give, a twelfth of eps = 0.
    check_trained_contract("trained/breast_cancer/cancer_eps.pt", 30, 0.08);
}
