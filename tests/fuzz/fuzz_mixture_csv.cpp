// Fuzz target: deis_tools::parse_mixture_csv (deis-sample --mixture-csv) on any bytes. A bad
// input must be refused with std::runtime_error (or std::invalid_argument, should the
// mixture's own validation let one through) whose message names the input and is one line;
// a good one gives a valid mixture: dimension and components >= 1, normalised finite
// weights, finite means, finite positive stds. See tests/fuzz/CMakeLists.txt.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "mixture_checks.hpp"
#include "support/mixture_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string name = "input.csv";
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
        deis_fuzz::check_mixture(deis_tools::parse_mixture_csv(in, name));
    } catch (const std::runtime_error& e) {
        deis_fuzz::check_message(e, name);
    } catch (const std::invalid_argument& e) {
        deis_fuzz::check_message(e, name);
    }
    return 0;
}
