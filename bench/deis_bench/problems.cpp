#include "problems.hpp"

#include <random>
#include <sstream>

namespace deis_bench {

deis::gaussian_mixture gmm16d_mixture() {
    const int D = 16, K = 5;
    std::mt19937_64 gen(16);
    auto uniform = [&gen] { return double(gen() >> 11) * 0x1.0p-53; };
    Eigen::MatrixXd mu(D, K), s(D, K);
    Eigen::VectorXd w(K);
    for (int k = 0; k < K; ++k)
        for (int d = 0; d < D; ++d) mu(d, k) = 6.0 * uniform() - 3.0;
    for (int k = 0; k < K; ++k)
        for (int d = 0; d < D; ++d) s(d, k) = 0.2 + 0.4 * uniform();
    for (int k = 0; k < K; ++k) w[k] = 0.5 + uniform();
    return deis::gaussian_mixture(w, mu, s);
}

Eigen::MatrixXd draw_noise(Eigen::Index D, Eigen::Index n, std::uint64_t seed, double scale) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    Eigen::MatrixXd x(D, n);
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index d = 0; d < D; ++d) x(d, j) = scale * normal(gen);
    return x;
}

std::string describe_mixture(const deis::gaussian_mixture& m) {
    std::ostringstream os;
    os << m.components() << " components in " << m.dim() << " dimensions";
    return os.str();
}

}  // namespace deis_bench
