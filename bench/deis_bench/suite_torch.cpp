// deis-bench --suite: the trained networks of the suite (LibTorch; none without it).
#include <algorithm>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <memory>

#include "suite.hpp"
#include "support/csv_io.hpp"
#ifdef DEIS_BENCH_TORCH
#include "support/torchscript_network.hpp"
#endif

namespace deis_bench {

std::vector<trained_problem> trained_suite(const std::string& dir) {
    std::vector<trained_problem> out;
#ifdef DEIS_BENCH_TORCH
    deis_tools::torchscript_options opt;
    opt.dtype = c10::kDouble;
    auto module = std::make_shared<deis_tools::torchscript_network>(dir + "/patches_eps.pt", opt);
    trained_problem p;
    p.name = "patches/vp (trained)";
    p.net = [module](const deis::state<double>& x, double t, deis::state<double>& o) { (*module)(x, t, o); };
    p.x_T = deis_tools::read_samples(dir + "/xT.csv");
    p.reference = deis_tools::read_samples(dir + "/exact.csv");
    p.calibration = deis_tools::read_samples(dir + "/calib_xT.csv");
    // best_peer.csv: the lowest median error of the other projects' runs (peers.csv) per NFE
    std::ifstream in(dir + "/best_peer.csv");
    std::string line;
    std::getline(in, line);
    const std::vector<std::string> head = deis_tools::split_csv_line(line);
    const auto col = [&](const char* name) {
        const auto it = std::find(head.begin(), head.end(), name);
        if (it == head.end()) throw std::runtime_error(dir + "/best_peer.csv: no column " + name);
        return std::size_t(it - head.begin());
    };
    const std::size_t c_nfe = col("nfe"), c_err = col("median_err");
    while (std::getline(in, line)) {
        const std::vector<std::string> f = deis_tools::split_csv_line(line);
        if (f.size() > std::max(c_nfe, c_err)) p.best_peer.emplace_back(std::stoi(f[c_nfe]), std::stod(f[c_err]));
    }
    out.push_back(std::move(p));
#else
    std::cerr << "deis-bench --suite: built without LibTorch, the trained networks of " << dir << " are left out\n";
#endif
    return out;
}

}  // namespace deis_bench
