// Reading Gaussian mixtures for the examples, tools and tests. Not part of the library.
//
// - CSV (the format of tests/data/gmm2d_components.csv): header mu0..mu{D-1},
//   std0..std{D-1}, weight; one row per component (the CSV format and limits of csv_io.hpp).
// - JSON: {"weights": [...], "means": [[...], ...], "stds": [[...], ...]}, one inner list
//   per component, one std per component per dimension; other members are ignored. At most
//   read_limits::max_values numbers and max_json_depth levels of nesting.
// As in csv_io.hpp, parse_mixture_*(std::istream&, name) do the work and read_mixture_*(path)
// open the file. Problems are std::runtime_error starting with the name; the values
// themselves (positive stds and weights, finite numbers) are checked by
// deis::gaussian_mixture, whose std::invalid_argument is rethrown as std::runtime_error
// prefixed with the name. Every shape is checked before anything is allocated for it.
#pragma once

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "deis/research/gmm.hpp"
#include "support/csv_io.hpp"

namespace deis_tools {

inline deis::gaussian_mixture make_mixture(const std::string& name, Eigen::VectorXd w, Eigen::MatrixXd mu,
                                           Eigen::MatrixXd s) {
    // gaussian_mixture divides by the sum: a sum beyond the largest double would make
    // every weight 0 (checked here, after the entries are known to be finite)
    if (w.allFinite() && !std::isfinite(w.sum()))
        throw std::runtime_error(name + ": the weights sum to more than the largest double; scale them down");
    try {
        return deis::gaussian_mixture(std::move(w), std::move(mu), std::move(s));
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(name + ": " + e.what());
    }
}

inline deis::gaussian_mixture parse_mixture_csv(std::istream& in, const std::string& name,
                                                const read_limits& lim = {}) {
    const detail::csv_numbers t = detail::parse_numbers(in, name, true, lim);
    const std::size_t cols = t.header.size();
    if (cols < 3 || cols % 2 != 1)
        throw std::runtime_error(name + ": expected a header mu0..,std0..,weight (2 D + 1 columns), got " +
                                 std::to_string(cols) + " columns");
    const std::size_t D = (cols - 1) / 2;
    for (std::size_t d = 0; d < D; ++d) {
        if (t.header[d] != "mu" + std::to_string(d) || t.header[D + d] != "std" + std::to_string(d))
            throw std::runtime_error(name + ": header must be mu0..mu" + std::to_string(D - 1) + ",std0..std" +
                                     std::to_string(D - 1) + ",weight");
    }
    if (t.header.back() != "weight") throw std::runtime_error(name + ": the last column must be 'weight'");
    const auto K = Eigen::Index(t.rows());
    Eigen::VectorXd w(K);
    Eigen::MatrixXd mu(Eigen::Index(D), K), s(Eigen::Index(D), K);
    for (Eigen::Index k = 0; k < K; ++k) {
        const double* r = t.values.data() + std::size_t(k) * cols;
        for (std::size_t d = 0; d < D; ++d) {
            mu(Eigen::Index(d), k) = r[d];
            s(Eigen::Index(d), k) = r[D + d];
        }
        w[k] = r[cols - 1];
    }
    return make_mixture(name, w, mu, s);
}

inline deis::gaussian_mixture read_mixture_csv(const std::string& path) {
    input_file in(path);
    return parse_mixture_csv(in.stream(), path);
}

namespace detail {

// The message of a JSON exception, cut to a line's worth (a parse error quotes the token
// it stopped at, which can be long).
inline std::string json_message(const nlohmann::json::exception& e) {
    const std::string m = e.what();
    return m.size() <= 200 ? m : m.substr(0, 200) + "...";
}

// Requires `j` (called `what` in messages) to be an array of `n` numbers (any n >= 1 when
// n == 0); returns its size.
inline std::size_t require_numbers(const std::string& name, const nlohmann::json& j, const std::string& what,
                                   std::size_t n = 0) {
    if (!j.is_array()) throw std::runtime_error(name + ": '" + what + "' must be an array of numbers");
    if (j.empty()) throw std::runtime_error(name + ": '" + what + "' is empty");
    if (n != 0 && j.size() != n)
        throw std::runtime_error(name + ": '" + what + "' has " + std::to_string(j.size()) + " entries, expected " +
                                 std::to_string(n));
    for (std::size_t i = 0; i < j.size(); ++i)
        if (!j[i].is_number())
            throw std::runtime_error(name + ": " + what + "[" + std::to_string(i) + "] must be a number, not " +
                                     j[i].type_name());
    return j.size();
}

// Requires `j` (called `what`) to be an array of `k` arrays of `d` numbers each (d taken
// from the first when d == 0); returns d.
inline std::size_t require_rows(const std::string& name, const nlohmann::json& j, const std::string& what,
                                std::size_t k, std::size_t d = 0) {
    if (!j.is_array()) throw std::runtime_error(name + ": '" + what + "' must be an array of arrays");
    if (j.size() != k)
        throw std::runtime_error(name + ": '" + what + "' must have one entry per weight (" + std::to_string(k) +
                                 "), has " + std::to_string(j.size()));
    for (std::size_t i = 0; i < k; ++i) {
        const std::string row = what + "[" + std::to_string(i) + "]";
        d = require_numbers(name, j[i], row, d);
    }
    return d;
}

}  // namespace detail

inline deis::gaussian_mixture parse_mixture_json(std::istream& in, const std::string& name,
                                                 const read_limits& lim = {}) {
    std::size_t numbers = 0;
    // Called by the parser for every element, with its depth (0 for the document): the
    // nesting and the count of numbers are bounded before the document grows further.
    const nlohmann::json::parser_callback_t limit = [&](int depth, nlohmann::json::parse_event_t event,
                                                        nlohmann::json& value) {
        if (depth > lim.max_json_depth)
            throw std::runtime_error(name + ": nested deeper than " + std::to_string(lim.max_json_depth) +
                                     " levels (the limit)");
        if (event == nlohmann::json::parse_event_t::value && value.is_number() && ++numbers > lim.max_values)
            throw std::runtime_error(name + ": more than " + std::to_string(lim.max_values) +
                                     " numbers (the limit)");
        return true;
    };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in, limit);
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(name + ": not valid JSON: " + detail::json_message(e));
    } catch (const std::ios_base::failure& e) {
        throw std::runtime_error(name + ": read error: " + e.what());
    }
    if (!j.is_object()) throw std::runtime_error(name + ": expected a JSON object {\"weights\", \"means\", \"stds\"}");
    for (const char* key : {"weights", "means", "stds"})
        if (!j.contains(key)) throw std::runtime_error(name + ": no member '" + key + "'");
    const nlohmann::json &jw = j.at("weights"), &jm = j.at("means"), &js = j.at("stds");
    const std::size_t K = detail::require_numbers(name, jw, "weights");
    const std::size_t D = detail::require_rows(name, jm, "means", K);
    detail::require_rows(name, js, "stds", K, D);

    const auto nk = static_cast<Eigen::Index>(K), nd = static_cast<Eigen::Index>(D);
    Eigen::VectorXd w(nk);
    Eigen::MatrixXd mu(nd, nk), s(nd, nk);
    for (std::size_t k = 0; k < K; ++k) {
        w[Eigen::Index(k)] = jw[k].get<double>();
        for (std::size_t d = 0; d < D; ++d) {
            mu(Eigen::Index(d), Eigen::Index(k)) = jm[k][d].get<double>();
            s(Eigen::Index(d), Eigen::Index(k)) = js[k][d].get<double>();
        }
    }
    return make_mixture(name, w, mu, s);
}

inline deis::gaussian_mixture read_mixture_json(const std::string& path) {
    input_file in(path);
    return parse_mixture_json(in.stream(), path);
}

}  // namespace deis_tools
