// deis-sample-torch.so: deis-sample's LibTorch plugin (../torch_plugin.hpp), a TorchScript
// module (support/torchscript_network.hpp) behind the plugin's interface. Built by
// examples/CMakeLists.txt when LibTorch is found; loaded by deis-sample for --model only.
#include <memory>
#include <stdexcept>
#include <utility>

#include "deis_sample/torch_plugin.hpp"
#include "support/torchscript_network.hpp"

namespace {

using deis_sample::plugin::loaded;
using deis_sample::plugin::refusal;
using deis_sample::plugin::request;

class torchscript_module final : public deis_sample::plugin::module {
public:
    torchscript_module(const std::string& path, const deis_tools::torchscript_options& opt) : net_(path, opt) {}
    void operator()(const deis::state<float>& x, double t, deis::state<float>& out) override { net_(x, t, out); }
    void operator()(const deis::state<double>& x, double t, deis::state<double>& out) override { net_(x, t, out); }

private:
    deis_tools::torchscript_network net_;
};

}  // namespace

extern "C" void deis_sample_torch_load(const request& r, loaded& out) {
    deis_tools::torchscript_options opt;
    opt.dtype = r.float64 ? c10::kDouble : c10::kFloat;
    opt.device = r.cuda ? c10::Device(c10::kCUDA) : c10::Device(c10::kCPU);
    opt.batch = r.batch;
    opt.shape.assign(r.shape.begin(), r.shape.end());
    try {
        out.net = std::make_unique<torchscript_module>(r.path, opt);
    } catch (const deis_tools::torchscript_load_error& e) {
        out.why = refusal::input;
        out.message = e.what();
    } catch (const std::invalid_argument& e) {  // "device cuda: CUDA is not available ..."
        out.why = refusal::usage;
        out.message = e.what();
    } catch (const std::exception& e) {
        out.why = refusal::input;
        out.message = r.path + ": " + e.what();
    }
}
