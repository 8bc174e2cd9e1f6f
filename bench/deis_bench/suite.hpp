// deis-bench --suite: every candidate configuration of the recommended rule on every problem
// of the suite (mixtures under VP, VE and flow matching, trained networks), the rule chosen
// from it and judged by leave-one-out (docs/recommended.md, "How the rule is chosen").
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <deis/common.hpp>
#include <functional>
#include <string>
#include <vector>

namespace deis_bench {

// A network on double states, whatever it is (a mixture's exact output, a TorchScript module).
using any_network = std::function<void(const deis::state<double>&, double, deis::state<double>&)>;

// A trained network of the suite: VP linear (0.1, 20), t from 1 to 1e-3, noise prediction,
// with its starting points and their reference solution (D x n each; empty: run_suite solves it as
// for its mixtures), and the best median error of other projects' codes per NFE when known (empty
// otherwise).
struct trained_problem {
    std::string name;
    any_network net;
    Eigen::MatrixXd x_T, reference;
    Eigen::MatrixXd calibration;  // a calibration batch of its own (D x m); empty: no calibrated row
    std::vector<std::pair<int, double>> best_peer;
};

struct suite_settings {
    std::vector<int> nfe = {5, 6, 8, 10, 12, 15, 20, 50};
    long samples = 500;
    std::uint64_t seed = 2022;
    std::string out_dir = "bench-out/suite";
    std::string mixtures_dir;  // the held-out mixtures (bench/mixtures/*.json)
    std::vector<std::string> families = {"vp", "ve", "flow"};
};

// Runs the suite; writes suite.md and suite.csv into out_dir (refused before any work where they
// exist and are not regular files); returns the exit status.
int run_suite(const suite_settings& cfg, const std::vector<trained_problem>& trained);

// The trained networks of directory dir (tests/data/trained) through deis-sample's LibTorch plugin
// (model.cpp); none without LibTorch. The patch network: patches_eps.pt with its xT.csv, exact.csv,
// calib_xT.csv and peers.csv. The networks on the digits (digits/digits_eps.pt) and on the breast
// cancer data (breast_cancer/cancer_eps.pt): their x_T and calibration batches drawn from fixed
// seeds, no reference (run_suite solves it).
std::vector<trained_problem> trained_suite(const std::string& dir);

}  // namespace deis_bench
