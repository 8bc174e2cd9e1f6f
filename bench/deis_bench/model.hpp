// deis-bench --model: the sweep on a trained network, a TorchScript module run by deis-sample's
// LibTorch plugin (examples/deis_sample/torch_plugin.hpp), in place of a mixture's exact one.
#pragma once

#include <stdexcept>
#include <string>

#include "records.hpp"

namespace deis_bench {

// A network call broke the module's contract (forward failed, an output of another shape or
// dtype, a non-finite output on a finite input); the message names the call and its time.
struct model_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The run of --model (cfg.model_file): x_T from --noise or drawn, the schedule of --schedule,
// the reference solution from --reference or integrated, the peers of --peers. Throws
// std::runtime_error (model_error for a failed call) before anything is written; built without
// LibTorch it refuses. Returns the exit status.
int run_model(const settings& cfg);

// The peers of --peers (read_peer_medians) into info, named by the file.
void use_peers(const std::string& path, problem_info& info);

}  // namespace deis_bench
