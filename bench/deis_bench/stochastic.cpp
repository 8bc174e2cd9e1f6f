#include "stochastic.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "support/atomic_file.hpp"

namespace deis_bench {

Eigen::MatrixXd exact_samples(const deis::gaussian_mixture& mix, double alpha, double sigma, Eigen::Index n,
                              std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    const Eigen::VectorXd& w = mix.weights();
    std::discrete_distribution<int> pick(w.data(), w.data() + w.size());
    Eigen::MatrixXd x(mix.dim(), n);
    for (Eigen::Index j = 0; j < n; ++j) {
        const int k = pick(rng);
        for (Eigen::Index d = 0; d < mix.dim(); ++d) {
            const double s = mix.stds()(d, k);
            x(d, j) = alpha * mix.means()(d, k) + std::sqrt(alpha * alpha * s * s + sigma * sigma) * normal(rng);
        }
    }
    return x;
}

double sliced_wasserstein(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, int directions, std::uint64_t seed) {
    if (a.rows() != b.rows() || a.cols() != b.cols() || a.cols() == 0)
        throw std::invalid_argument("sliced_wasserstein: the sample sets must have the same, non-zero size");
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    Eigen::VectorXd theta(a.rows());
    std::vector<double> pa(std::size_t(a.cols())), pb(std::size_t(b.cols()));
    double sum = 0.0;
    for (int l = 0; l < directions; ++l) {
        for (Eigen::Index d = 0; d < theta.size(); ++d) theta[d] = normal(rng);
        theta.normalize();
        for (Eigen::Index j = 0; j < a.cols(); ++j) {
            pa[std::size_t(j)] = theta.dot(a.col(j));
            pb[std::size_t(j)] = theta.dot(b.col(j));
        }
        std::sort(pa.begin(), pa.end());
        std::sort(pb.begin(), pb.end());
        double w1 = 0.0;
        for (std::size_t j = 0; j < pa.size(); ++j) w1 += std::abs(pa[j] - pb[j]);
        sum += w1 / double(pa.size());
    }
    return sum / directions;
}

void write_stochastic(const settings& cfg, const problem_info& info, const std::vector<stochastic_row>& rows,
                      double floor) {
    std::ostringstream md;
    md << "## " << info.title << ": stochastic samplers, sliced Wasserstein distance to exact samples\n\n";
    for (const auto& l : info.lines) md << "- " << l << '\n';
    md << "- floor (two independent exact sample sets of this size): " << sci(floor) << "\n\n";
    md << "| solver |";
    for (int b : cfg.nfe) md << ' ' << b << " |";
    md << "\n|---|";
    for (std::size_t i = 0; i < cfg.nfe.size(); ++i) md << "---:|";
    md << '\n';
    for (const auto& r : rows) {
        md << "| " << r.solver << " |";
        for (double d : r.distance) md << ' ' << sci(d) << " |";
        md << '\n';
    }
    std::cout << md.str();
    std::filesystem::create_directories(cfg.out_dir);
    deis_tools::write_text_file((std::filesystem::path(cfg.out_dir) / "stochastic.md").string(), md.str());
    std::ostringstream csv;
    csv << "solver,nfe,sliced_wasserstein,floor\n";
    for (const auto& r : rows)
        for (std::size_t i = 0; i < cfg.nfe.size(); ++i)
            csv << r.solver << ',' << cfg.nfe[i] << ',' << sci(r.distance[i], 6) << ',' << sci(floor, 6) << '\n';
    deis_tools::write_text_file((std::filesystem::path(cfg.out_dir) / "stochastic.csv").string(), csv.str());
}

}  // namespace deis_bench
