// Reading Gaussian mixtures for the examples, tools and tests. Not part of the library.
//
// - CSV (the format of tests/data/gmm2d_components.csv): header mu0..mu{D-1},
//   std0..std{D-1}, weight; one row per component.
// - JSON: {"weights": [...], "means": [[...], ...], "stds": [[...], ...]}, one inner list
//   per component, one std per component per dimension.
// Problems are std::runtime_error naming the file; the values themselves (positive stds
// and weights, finite numbers) are checked by deis::gaussian_mixture, whose
// std::invalid_argument is rethrown as std::runtime_error prefixed with the file name.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "deis/gmm.hpp"
#include "support/csv_io.hpp"

namespace deis_tools {

inline deis::gaussian_mixture make_mixture(const std::string& path, Eigen::VectorXd w, Eigen::MatrixXd mu,
                                           Eigen::MatrixXd s) {
    try {
        return deis::gaussian_mixture(std::move(w), std::move(mu), std::move(s));
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(path + ": " + e.what());
    }
}

inline deis::gaussian_mixture read_mixture_csv(const std::string& path) {
    const csv_table t = read_csv(path, true);
    const std::size_t cols = t.header.size();
    if (cols < 3 || cols % 2 != 1)
        throw std::runtime_error(path + ": expected a header mu0..,std0..,weight (2 D + 1 columns), got " +
                                 std::to_string(cols) + " columns");
    const std::size_t D = (cols - 1) / 2;
    for (std::size_t d = 0; d < D; ++d) {
        if (t.header[d] != "mu" + std::to_string(d) || t.header[D + d] != "std" + std::to_string(d))
            throw std::runtime_error(path + ": header must be mu0..mu" + std::to_string(D - 1) + ",std0..std" +
                                     std::to_string(D - 1) + ",weight");
    }
    if (t.header.back() != "weight") throw std::runtime_error(path + ": the last column must be 'weight'");
    const auto K = Eigen::Index(t.rows.size());
    Eigen::VectorXd w(K);
    Eigen::MatrixXd mu(Eigen::Index(D), K), s(Eigen::Index(D), K);
    for (Eigen::Index k = 0; k < K; ++k) {
        const auto& r = t.rows[std::size_t(k)];
        for (std::size_t d = 0; d < D; ++d) {
            mu(Eigen::Index(d), k) = r[d];
            s(Eigen::Index(d), k) = r[D + d];
        }
        w[k] = r.back();
    }
    return make_mixture(path, w, mu, s);
}

inline deis::gaussian_mixture read_mixture_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open file for reading");
    nlohmann::json j;
    try {
        in >> j;
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(path + ": not valid JSON: " + e.what());
    }
    try {
        const auto& jw = j.at("weights");
        const auto& jm = j.at("means");
        const auto& js = j.at("stds");
        const std::size_t K = jw.size();
        if (K == 0) throw std::runtime_error(path + ": 'weights' is empty");
        if (jm.size() != K || js.size() != K)
            throw std::runtime_error(path + ": 'means' and 'stds' must have one entry per weight (" +
                                     std::to_string(K) + ")");
        const std::size_t D = jm.at(0).size();
        if (D == 0) throw std::runtime_error(path + ": means[0] is empty");
        const auto nk = static_cast<Eigen::Index>(K), nd = static_cast<Eigen::Index>(D);
        Eigen::VectorXd w(nk);
        Eigen::MatrixXd mu(nd, nk), s(nd, nk);
        for (std::size_t k = 0; k < K; ++k) {
            w[Eigen::Index(k)] = jw.at(k).get<double>();
            if (jm.at(k).size() != D || js.at(k).size() != D)
                throw std::runtime_error(path + ": means[" + std::to_string(k) + "] and stds[" + std::to_string(k) +
                                         "] must have " + std::to_string(D) + " entries");
            for (std::size_t d = 0; d < D; ++d) {
                mu(Eigen::Index(d), Eigen::Index(k)) = jm.at(k).at(d).get<double>();
                s(Eigen::Index(d), Eigen::Index(k)) = js.at(k).at(d).get<double>();
            }
        }
        return make_mixture(path, w, mu, s);
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(path + ": " + e.what());
    }
}

}  // namespace deis_tools
