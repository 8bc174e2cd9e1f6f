// Fuzz target: deis_tools::parse_samples (the noise and sample CSV reader of deis-sample and
// the tests) on any bytes. A bad input must be refused with std::runtime_error whose message
// names the input and is one line; a good one gives finite samples that write_samples_to
// writes and parse_samples reads back to the same doubles. Anything else (a crash, another
// exception, a broken property) fails. See tests/fuzz/CMakeLists.txt.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "support/csv_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string name = "input.csv";
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
        const Eigen::MatrixXd x = deis_tools::parse_samples(in, name);
        if (x.rows() < 1 || x.cols() < 1 || !x.allFinite()) std::abort();
        std::stringstream written;
        if (!deis_tools::write_samples_to(written, x)) std::abort();
        if (deis_tools::parse_samples(written, "written") != x) std::abort();
    } catch (const std::runtime_error& e) {
        const std::string m = e.what();
        if (m.rfind(name + ":", 0) != 0 || m.find('\n') != std::string::npos) std::abort();
    }
    return 0;
}
