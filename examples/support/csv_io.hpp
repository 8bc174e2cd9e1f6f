// Reading and writing the plain numeric CSV files of the examples, tools and tests: one
// record per line, comma-separated, optionally one header line. Not part of the library.
//
// Every problem is reported as std::runtime_error with a message that names the file and
// line: unreadable file, empty file, ragged row, a cell that is not a number, NaN or Inf.
#pragma once

#include <Eigen/Core>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace deis_tools {

struct csv_table {
    std::vector<std::string> header;  // empty when read without one
    std::vector<std::vector<double>> rows;
};

inline std::vector<std::string> split_csv_line(const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ss(line);
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    return cells;
}

inline std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

/// Reads a numeric CSV file; with `has_header`, the first line is kept as names.
inline csv_table read_csv(const std::string& path, bool has_header) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open file for reading");
    csv_table t;
    std::string line;
    std::size_t line_no = 0, width = 0;
    if (has_header) {
        if (!std::getline(in, line)) throw std::runtime_error(path + ": empty file, expected a header line");
        ++line_no;
        for (auto& c : split_csv_line(line)) t.header.push_back(trim(c));
        width = t.header.size();
    }
    while (std::getline(in, line)) {
        ++line_no;
        if (trim(line).empty()) continue;
        const auto cells = split_csv_line(line);
        if (width == 0) width = cells.size();
        if (cells.size() != width)
            throw std::runtime_error(path + ":" + std::to_string(line_no) + ": row has " +
                                     std::to_string(cells.size()) + " fields, expected " + std::to_string(width));
        std::vector<double> row;
        row.reserve(cells.size());
        for (std::size_t j = 0; j < cells.size(); ++j) {
            const std::string c = trim(cells[j]);
            char* end = nullptr;
            errno = 0;
            const double v = c.empty() ? 0.0 : std::strtod(c.c_str(), &end);
            if (c.empty() || end != c.c_str() + c.size())
                throw std::runtime_error(path + ":" + std::to_string(line_no) + ": field " + std::to_string(j + 1) +
                                         " ('" + c + "') is not a number");
            if (!std::isfinite(v))
                throw std::runtime_error(path + ":" + std::to_string(line_no) + ": field " + std::to_string(j + 1) +
                                         " ('" + c + "') is not finite");
            row.push_back(v);
        }
        t.rows.push_back(std::move(row));
    }
    if (t.rows.empty()) throw std::runtime_error(path + ": no data rows");
    return t;
}

/// Reads samples stored one per row (no header) into a matrix with one sample per column.
inline Eigen::MatrixXd read_samples(const std::string& path) {
    const csv_table t = read_csv(path, false);
    Eigen::MatrixXd x(Eigen::Index(t.rows.front().size()), Eigen::Index(t.rows.size()));
    for (std::size_t i = 0; i < t.rows.size(); ++i)
        for (std::size_t d = 0; d < t.rows[i].size(); ++d) x(Eigen::Index(d), Eigen::Index(i)) = t.rows[i][d];
    return x;
}

/// Writes one sample (column of x) per row, 17 significant digits, no header. Writes to a
/// temporary file first and renames it, so that a failed write leaves no partial file.
template <class Derived>
void write_samples(const std::string& path, const Eigen::MatrixBase<Derived>& x) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        if (!out) throw std::runtime_error(path + ": cannot open file for writing");
        out << std::setprecision(17);
        for (Eigen::Index i = 0; i < x.cols(); ++i) {
            for (Eigen::Index d = 0; d < x.rows(); ++d) {
                if (d) out << ',';
                out << double(x(d, i));
            }
            out << '\n';
        }
        out.close();  // flushes: a full disk shows here
        if (!out) {
            std::remove(tmp.c_str());
            throw std::runtime_error(path + ": write failed");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error(path + ": cannot rename the temporary file into place");
    }
}

}  // namespace deis_tools
