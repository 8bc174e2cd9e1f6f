// deis-sample: the interface between the program (trained.cpp) and its LibTorch plugin,
// deis-sample-torch.so (torch/plugin.cpp), which the program loads (dlopen) for --model only:
// LibTorch takes about 0.4 s of CPU to start, which a run on a mixture never pays, and a
// signal that arrives then finds the program's handlers in place. Built with the program when
// CMake finds LibTorch, into the program's directory, where the program looks for it.
// deis-bench --model loads the same plugin (open_plugin below).
#pragma once

#include <dlfcn.h>

#include <cstring>
#include <deis/common.hpp>
#include <memory>
#include <string>
#include <vector>

namespace deis_sample::plugin {

/// What --model asks for (--dtype, --device, --batch, --shape).
struct request {
    std::string path;
    bool float64 = false;
    bool cuda = false;
    long batch = 0;           ///< 0: all samples in one call
    std::vector<long> shape;  ///< one sample's shape; empty: [D]
};

/// A loaded module, as a deis Network given the time the module is told. A call that breaks
/// the contract throws a std::runtime_error whose message is one line without the time.
class module {
public:
    virtual ~module() = default;
    virtual void operator()(const deis::state<float>& x, double t, deis::state<float>& out) = 0;
    virtual void operator()(const deis::state<double>& x, double t, deis::state<double>& out) = 0;
};

/// Why a module was not loaded: an option the plugin cannot honour (--device cuda without
/// CUDA), or the file.
enum class refusal { none, usage, input };

/// What loading gives: the module, or the refusal and its one-line message.
struct loaded {
    std::unique_ptr<module> net;
    refusal why = refusal::none;
    std::string message;
};

/// The plugin's entry point, `extern "C" void deis_sample_torch_load(const request&, loaded&)`
/// (no exception leaves it), found by dlsym under this name.
using load_function = void (*)(const request&, loaded&);
constexpr const char* load_symbol = "deis_sample_torch_load";

/// The entry point of the plugin at `path`, or nullptr with `error` saying why (dlopen's
/// message, or that the file is no such plugin). The library stays loaded to the end.
inline load_function open_plugin(const std::string& path, std::string& error) {
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        error = "cannot load deis-sample's LibTorch plugin: " + std::string(::dlerror());
        return nullptr;
    }
    void* symbol = ::dlsym(handle, load_symbol);
    if (symbol == nullptr) {
        error = path + " is not deis-sample's LibTorch plugin";
        return nullptr;
    }
    load_function load = nullptr;
    static_assert(sizeof load == sizeof symbol, "a function pointer as dlsym gives it");
    std::memcpy(&load, &symbol, sizeof load);
    return load;
}

/// The module at `path` through `load`, as the options --dtype (float32, float64), --device
/// (cpu, cuda), --batch and --shape give it.
inline loaded load_module(load_function load, const std::string& path, const std::string& dtype,
                          const std::string& device, long batch, const std::vector<long>& shape) {
    request r;
    r.path = path;
    r.float64 = dtype == "float64";
    r.cuda = device == "cuda";
    r.batch = batch;
    r.shape = shape;
    loaded l;
    load(r, l);
    return l;
}

}  // namespace deis_sample::plugin
