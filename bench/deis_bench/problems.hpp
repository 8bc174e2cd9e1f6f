// deis-bench: the problems (mixtures and the noise x_T they start from).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <deis/research/gmm.hpp>
#include <string>

namespace deis_bench {

// The 16-D mixture of 5 components, drawn from std::mt19937_64 with seed 16 (the same on
// every platform: raw 64-bit outputs u mapped to [0, 1) by (u >> 11) * 2^-53, no library
// distribution): for k = 0..4 and d = 0..15 in that order, mean mu_k[d] = 6 U - 3; then
// std s_k[d] = 0.2 + 0.4 U; then weight w_k = 0.5 + U (normalised).
deis::gaussian_mixture gmm16d_mixture();

// x_T ~ N(0, scale^2 I): D x n, column by column, from std::mt19937_64(seed) and
// std::normal_distribution<double>.
Eigen::MatrixXd draw_noise(Eigen::Index D, Eigen::Index n, std::uint64_t seed, double scale);

// "K components in D dimensions"
std::string describe_mixture(const deis::gaussian_mixture& m);

}  // namespace deis_bench
