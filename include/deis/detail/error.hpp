// deis: how bad input is reported. Every check throws std::invalid_argument whose message
// names where the value was given, the argument, the bad value and what was expected:
//   "deis::vp_linear: beta_max = 0.05 must be greater than beta_min = 0.1"
#pragma once

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace deis::detail {

inline std::string format_double(double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
}

[[noreturn]] inline void fail(const std::string& where, const std::string& what, const std::string& value,
                              const std::string& expected) {
    throw std::invalid_argument("deis::" + where + ": " + what + " = " + value + " " + expected);
}

[[noreturn]] inline void fail(const std::string& where, const std::string& what, double value,
                              const std::string& expected) {
    fail(where, what, format_double(value), expected);
}

[[noreturn]] inline void fail(const std::string& where, const std::string& what, int value,
                              const std::string& expected) {
    fail(where, what, std::to_string(value), expected);
}

/// Throws one std::invalid_argument listing every fault: "deis::where: a; b; c".
[[noreturn]] inline void fail_all(const std::string& where, const std::vector<std::string>& faults) {
    std::string msg = "deis::" + where + ": ";
    for (std::size_t i = 0; i < faults.size(); ++i) msg += (i ? "; " : "") + faults[i];
    throw std::invalid_argument(msg);
}

inline void require_finite(const std::string& where, const std::string& what, double value) {
    if (!std::isfinite(value)) fail(where, what, value, "must be finite");
}

}  // namespace deis::detail
