// Fuzz target: deis::parse_scheduler_config (diffusers' scheduler_config.json, deis-sample
// --scheduler-config) on any bytes. A bad input must be refused with std::invalid_argument
// whose message starts with "deis::" and is one line; a good one must make valid grids (or
// refuse a step count with std::invalid_argument): strictly decreasing times inside the
// schedule's domain, the last one the end point, and timesteps the network can be given
// (finite; integers in 0..n-1 for a discrete schedule). See tests/fuzz/CMakeLists.txt.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "deis/diffusers.hpp"

namespace {

void check_message(const std::exception& e) {
    const std::string m = e.what();
    if (m.rfind("deis::", 0) != 0 || m.find('\n') != std::string::npos) std::abort();
}

void check_grid(const deis::scheduler_config& c, int steps) {
    std::vector<double> g;
    try {
        g = c.grid(steps, 4096.0);
    } catch (const std::invalid_argument& e) {
        check_message(e);
        return;
    }
    if (g.size() < 2 || g.size() > std::size_t(steps) + 1) std::abort();
    const deis::timestep_map map = c.timesteps();
    std::visit(
        [&](const auto& s) {
            for (std::size_t i = 0; i < g.size(); ++i) {
                if (!(g[i] >= s.t_min() && g[i] <= s.t_max())) std::abort();
                if (i > 0 && !(g[i] < g[i - 1])) std::abort();
                if (i + 1 == g.size()) break;  // no network call at the end point
                const double tau = map(g[i]);
                if (!std::isfinite(tau)) std::abort();
                if (c.discrete() && map.round && !(tau >= 0.0 && tau <= double(c.train_steps - 1))) std::abort();
            }
        },
        c.schedule);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const deis::scheduler_config c =
            deis::parse_scheduler_config(std::string(reinterpret_cast<const char*>(data), size));
        if (c.train_steps < 2) std::abort();
        for (int steps : {1, 2, 7, 50, c.train_steps}) check_grid(c, steps);
    } catch (const std::invalid_argument& e) {
        check_message(e);
    }
    return 0;
}
