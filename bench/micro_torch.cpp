// deis_micro_bench_torch: the torch backend's fused update
// out = a x + sum_{j < terms} c_j h_j (deis::state_ops<at::Tensor>::combine, what every solver
// update on a torch::Tensor goes through) against a plain copy_ of the same number of bytes,
// on float32 and float64 tensors of several sizes, on the CPU and, when a CUDA device is
// present at run time, on it.
//
// Bytes counted per update: read x and the `terms` history tensors, write x:
// (terms + 2) * n * sizeof(Scalar). The baseline dst.copy_(src) moves the same total: it reads
// and writes (terms + 2) * n / 2 elements each. As in micro_update.cpp both run in the same
// benchmark, alternately, each repeated in a batch of about 2^20 elements for small tensors;
// the reported time and bytes_per_second are the update's (manual timing),
// copy_bytes_per_second the copy's, and ratio_to_copy = update bandwidth / copy bandwidth.
// The update runs in place (out = x), as in the samplers. On the CPU, float32 and float64
// tensors take the Eigen kernel on the tensors' memory (one pass); on CUDA it is torch's
// mul_ and one add_ per term (terms + 1 passes), and each batch ends with a device
// synchronisation, inside the timed region of both operations.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <deis/torch.hpp>

namespace {

using bench_clock = std::chrono::steady_clock;

void sync(const at::Device& d) {
    if (d.is_cuda()) torch::cuda::synchronize();
}

void BM_torch_update(benchmark::State& st, at::ScalarType dtype, at::Device device) {
    const int terms = int(st.range(0));
    const int64_t n = st.range(1);
    torch::set_num_threads(1);  // one thread, as micro_update.cpp's Eigen kernel
    const auto opt = at::TensorOptions().dtype(dtype).device(device);
    // values in [-1, 1] and coefficients that keep them there (no growth, no denormals)
    at::Tensor x = at::rand({n}, opt) * 2 - 1;
    std::array<at::Tensor, 4> hist;
    std::array<const at::Tensor*, 4> h{};
    for (int j = 0; j < terms; ++j) {
        hist[std::size_t(j)] = at::rand({n}, opt) * 2 - 1;
        h[std::size_t(j)] = &hist[std::size_t(j)];
    }
    const double a = 0.5;
    const std::array<double, 4> c = {0.2, -0.1, 0.05, -0.025};
    const int64_t bytes = int64_t(terms + 2) * n * int64_t(at::elementSize(dtype));
    at::Tensor src = at::ones({bytes / 2}, at::TensorOptions().dtype(at::kByte).device(device));
    at::Tensor dst = at::zeros_like(src);

    const long reps = std::max(1L, long((1 << 20) / n));
    c10::InferenceMode guard;
    double t_update = 0.0, t_copy = 0.0;
    for (auto _ : st) {
        const auto t0 = bench_clock::now();
        for (long r = 0; r < reps; ++r) deis::state_ops<at::Tensor>::combine(x, a, x, c.data(), h.data(), terms);
        sync(device);
        const auto t1 = bench_clock::now();
        for (long r = 0; r < reps; ++r) dst.copy_(src);
        sync(device);
        const auto t2 = bench_clock::now();
        const double du = std::chrono::duration<double>(t1 - t0).count();
        t_update += du;
        t_copy += std::chrono::duration<double>(t2 - t1).count();
        st.SetIterationTime(du);
    }
    const double total = double(bytes) * double(reps) * double(st.iterations());
    st.SetBytesProcessed(int64_t(total));
    st.counters["copy_bytes_per_second"] =
        benchmark::Counter(total / t_copy, benchmark::Counter::kDefaults, benchmark::Counter::OneK::kIs1024);
    st.counters["ratio_to_copy"] = benchmark::Counter(t_copy / t_update);
}

bool register_all() {
    std::vector<std::pair<std::string, at::Device>> devices = {{"cpu", at::Device(at::kCPU)}};
    if (torch::cuda::is_available()) devices.emplace_back("cuda", at::Device(at::kCUDA, 0));
    for (const auto& [dname, device] : devices)
        for (const auto& [tname, dtype] : {std::pair<const char*, at::ScalarType>{"float", at::kFloat},
                                           {"double", at::kDouble}}) {
            const std::string name = "BM_torch_update<" + std::string(tname) + ">/" + dname;
            auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_torch_update, dtype, device);
            b->ArgNames({"terms", "n"});
            for (int terms : {3, 4})
                for (long n : {1000L, 100000L, 1000000L, 10000000L}) b->Args({terms, n});
            b->UseManualTime();
        }
    return true;
}

const bool registered = register_all();

}  // namespace
