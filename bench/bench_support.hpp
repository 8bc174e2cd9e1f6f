// What the benchmark programs share: the built-in 2-D ring problem. Not part of the library.
#pragma once

#include <cmath>
#include <deis/research/gmm.hpp>

namespace deis_bench {

// The 2-D ring: 8 components at radius 4, mu_k = 4 (cos 2 pi k/8, sin 2 pi k/8), std 0.3,
// equal weights (the problem of tests/data/gmm2d_components.csv).
inline deis::gaussian_mixture ring2d_mixture() {
    const int K = 8;
    const double pi = std::acos(-1.0);
    Eigen::MatrixXd mu(2, K);
    for (int k = 0; k < K; ++k) {
        mu(0, k) = 4.0 * std::cos(2.0 * pi * k / K);
        mu(1, k) = 4.0 * std::sin(2.0 * pi * k / K);
    }
    return deis::gaussian_mixture(Eigen::VectorXd::Ones(K), mu, Eigen::MatrixXd::Constant(2, K, 0.3));
}

}  // namespace deis_bench
