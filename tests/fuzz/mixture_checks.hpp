// What the mixture fuzz targets require of a mixture the readers accept, and of the message
// of one they refuse. A broken property aborts, which libFuzzer (or the replay driver)
// reports as a crash.
#pragma once

#include <cmath>
#include <cstdlib>
#include <exception>
#include <string>

#include "deis/research/gmm.hpp"

namespace deis_fuzz {

inline void check_mixture(const deis::gaussian_mixture& m) {
    if (m.dim() < 1 || m.components() < 1) std::abort();
    if (m.means().rows() != m.dim() || m.stds().rows() != m.dim() || m.weights().size() != m.components())
        std::abort();
    if (!m.means().allFinite() || !m.stds().allFinite() || !m.weights().allFinite()) std::abort();
    if ((m.stds().array() <= 0.0).any() || (m.weights().array() < 0.0).any()) std::abort();
    // normalised: the sum of K doubles in [0, 1] is 1 to within K rounding errors
    if (!(std::abs(m.weights().sum() - 1.0) <= 1e-15 * double(m.components() + 1))) std::abort();
}

// The message starts with the input's name and is one line (deis-sample prints it as is).
inline void check_message(const std::exception& e, const std::string& name) {
    const std::string m = e.what();
    if (m.rfind(name + ":", 0) != 0 || m.find('\n') != std::string::npos) std::abort();
}

}  // namespace deis_fuzz
