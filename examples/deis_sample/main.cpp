// deis-sample: integrates the probability-flow ODE of a Gaussian mixture (whose exact noise
// prediction plays the network) from given noise at t_max down to t_end with one of the
// library's solvers, and writes the samples. Usage: docs/deis-sample.md, or --help.
// The parts: deis_sample.hpp.
//
// Exit codes: 0 success (prints "nfe=<count>" on stdout), 1 bad command line (or an output
// that is an input), 2 bad input file, 3 the run stopped on a non-finite network output, 4
// an output could not be written (or its path holds something other than a regular file),
// 130 / 143 interrupted by SIGINT / SIGTERM. Every failure prints exactly one line on stderr
// and changes no output file; the inputs are only read.
#include <iostream>
#include <string>
#include <utility>

#include "deis_sample.hpp"
#include "interrupt.hpp"

namespace {

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

int report(const deis_sample::failure& f) {
    std::cerr << (f.error ? "deis-sample: error: " : "deis-sample: ") << one_line(f.what()) << '\n';
    return f.code;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace deis_sample;
    const signal_guard signals;  // from here on SIGINT and SIGTERM stop the run; defaults restored at exit
    try {
        options o;
        if (!parse_command_line(argc, argv, o)) return 0;
        refuse_output_over_input(o);
        run(o, read_inputs(o));
    } catch (const failure& e) {
        return report(e);
    } catch (const std::exception& e) {
        return report(failure(exit_input, e.what()));
    }
    return 0;
}
