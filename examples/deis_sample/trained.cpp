// deis-sample: --model, a TorchScript network in place of the mixture. The module is run by the
// LibTorch plugin deis-sample-torch.so (torch_plugin.hpp), loaded from the program's directory
// here, for --model only; built when CMake found LibTorch (DEIS_SAMPLE_TORCH), else --model is
// refused (options.cpp first, and load_model).
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "deis_sample.hpp"
#include "torch_plugin.hpp"

namespace deis_sample {

#ifdef DEIS_SAMPLE_TORCH

namespace {

// The plugin's module with the failures of its calls as deis-sample's: exit_run, naming the
// call (its number among all the run's network calls, --grid optimized's included) and its time.
class torchscript_model final : public trained_network {
public:
    torchscript_model(const std::string& path, std::unique_ptr<plugin::module> net)
        : name_("--model " + path), net_(std::move(net)) {}

    void operator()(const deis::state<float>& x, double t, double model_t, deis::state<float>& out) override {
        call(x, t, model_t, out);
    }
    void operator()(const deis::state<double>& x, double t, double model_t, deis::state<double>& out) override {
        call(x, t, model_t, out);
    }

private:
    template <class Scalar>
    void call(const deis::state<Scalar>& x, double t, double model_t, deis::state<Scalar>& out) {
        ++calls_;
        try {
            (*net_)(x, model_t, out);
        } catch (const std::exception& e) {  // the contract broken, or forward's own error
            std::string at = "network call " + std::to_string(calls_) + " at t = " + num(t);
            if (model_t != t) at += " (timestep " + num(model_t) + ")";
            throw failure(exit_run, name_ + ": " + at + ": " + e.what() + "; no output written");
        }
    }

    std::string name_;
    std::unique_ptr<plugin::module> net_;
    long long calls_ = 0;
};

// The plugin beside the program (its build directory), or failure(exit_usage) saying why not.
plugin::load_function load_plugin() {
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::string path = (ec ? std::filesystem::path() : exe.parent_path()) / DEIS_SAMPLE_TORCH_PLUGIN;
    std::string error;
    const plugin::load_function load = plugin::open_plugin(path, error);
    if (load == nullptr) usage_error("--model: " + error);
    return load;
}

}  // namespace

std::unique_ptr<trained_network> load_model(const options& o) {
    const plugin::load_function load = load_plugin();
    plugin::loaded l = plugin::load_module(load, o.model_file, o.dtype, o.device, o.batch, o.shape);
    switch (l.why) {
        case plugin::refusal::usage: usage_error("--" + l.message);  // "--device cuda: CUDA is not available ..."
        case plugin::refusal::input: throw failure(exit_input, "--model " + l.message);
        case plugin::refusal::none: break;
    }
    return std::make_unique<torchscript_model>(o.model_file, std::move(l.net));
}

#else

std::unique_ptr<trained_network> load_model(const options& o) {
    usage_error("--model " + o.model_file + ": deis-sample was built without LibTorch (its CMake did not find it)");
}

#endif

}  // namespace deis_sample
