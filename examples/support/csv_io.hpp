// Reading and writing the plain numeric CSV files of the examples, tools and tests: one
// record per line, comma-separated, optionally one header line. Not part of the library.
//
// Every reader has an in-memory entry point, parse_*(std::istream&, name), which does the
// work; read_*(path) opens the file and calls it with the path as the name. Every problem
// is reported as std::runtime_error with a message that starts with the name (and the line,
// where there is one): unreadable file, a file that is not a regular file (input_file.hpp),
// empty file, ragged row, a field that is not a decimal number, NaN or Inf, or a file
// beyond the limits below.
//
// Format: lines end with '\n' (a '\r' before it is a blank); fields are separated by ','
// and may have blanks (space, tab, '\r') around them; a line of blanks only is skipped. A
// field is a decimal number, [+-]digits[.digits][(e|E)[+-]digits] (or starting with the
// point), read in the C locale; hexadecimal, "inf" and "nan" are refused.
#pragma once

#include <Eigen/Core>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ios>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/atomic_file.hpp"
#include "support/input_file.hpp"

namespace deis_tools {

/// What the readers accept at most; a file beyond any of them is refused with a message.
/// They bound a reader's memory by what its input holds: about 8 bytes per value (16 while
/// the vector of values grows, plus the result), whatever the file looks like.
struct read_limits {
    std::size_t max_fields = 1000000;      ///< fields in one row (a sample's dimension)
    std::size_t max_values = 100000000;    ///< numbers in one file (800 MB as double)
    std::size_t max_field_chars = 100;     ///< characters of one field, blanks included
    int max_json_depth = 8;                ///< nesting of a JSON document (a mixture needs 3)
};

struct csv_table {
    std::vector<std::string> header;  // empty when read without one
    std::vector<std::vector<double>> rows;
};

/// Splits a line at every ',' (no quoting). For text tables; the numeric readers below
/// scan their input without it.
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

namespace detail {

// Text from a file, for a message: at most `max` characters, the bytes that are not
// printable ASCII as \xNN, "..." when cut.
inline std::string excerpt(const std::string& s, std::size_t max = 40) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += char(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
            out += buf;
        }
    }
    if (s.size() > max) out += "...";
    return out;
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Whether s[0, n) is a decimal number of the format above.
inline bool is_decimal(const char* s, std::size_t n) {
    std::size_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t digits = 0;
    while (i < n && is_digit(s[i])) ++i, ++digits;
    if (i < n && s[i] == '.') {
        ++i;
        while (i < n && is_digit(s[i])) ++i, ++digits;
    }
    if (digits == 0) return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
        std::size_t exp_digits = 0;
        while (i < n && is_digit(s[i])) ++i, ++exp_digits;
        if (exp_digits == 0) return false;
    }
    return i == n;
}

// Whether s spells an infinity or a NaN the way strtod would read it.
inline bool spells_non_finite(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.erase(0, 1);
    return s == "inf" || s == "infinity" || s.rfind("nan", 0) == 0;
}

// The numbers of a CSV text, row after row in one vector (row i is
// values[i * width, (i + 1) * width)), and the header's names.
struct csv_numbers {
    std::vector<std::string> header;
    std::size_t width = 0;
    std::vector<double> values;
    std::size_t rows() const { return width == 0 ? 0 : values.size() / width; }
};

// One pass over the characters of `in`, holding one field at a time: the memory is that
// of the values (and header names) read, however long a line or a field is.
inline csv_numbers parse_numbers(std::istream& in, const std::string& name, bool has_header,
                                 const read_limits& lim) {
    std::streambuf* sb = in.rdbuf();
    if (sb == nullptr) throw std::runtime_error(name + ": cannot read");
    using traits = std::char_traits<char>;
    csv_numbers t;
    const auto at = [&](std::size_t line) { return name + ":" + std::to_string(line) + ": "; };
    const std::string too_long = "is longer than " + std::to_string(lim.max_field_chars) + " characters";
    std::string cell;  // the current field, at most max_field_chars of it
    cell.reserve(lim.max_field_chars);
    bool header_pending = has_header;
    bool eof = false;
    try {
        if (has_header && traits::eq_int_type(sb->sgetc(), traits::eof()))
            throw std::runtime_error(name + ": empty file, expected a header line");
        for (std::size_t line_no = 1; !eof; ++line_no) {
            std::size_t fields = 0;   // fields of this line so far
            bool blank = true;        // nothing but blanks so far
            bool long_field = false;  // the current field has more than max_field_chars
            std::string problem;      // the first bad field of this line
            for (;;) {
                const traits::int_type c = sb->sbumpc();
                eof = traits::eq_int_type(c, traits::eof());
                const bool end_of_line = eof || c == '\n';
                if (!end_of_line && c != ',') {
                    if (!is_blank(char(c))) blank = false;
                    if (cell.size() < lim.max_field_chars)
                        cell += char(c);
                    else
                        long_field = true;
                    continue;
                }
                // a field ends here
                if (++fields > lim.max_fields)
                    throw std::runtime_error(at(line_no) + "more than " + std::to_string(lim.max_fields) +
                                             " fields in a row (the limit)");
                if (end_of_line && blank) {  // a blank line (blank is false after a ',')
                    cell.clear();
                    break;
                }
                std::size_t b = 0;  // the field without the blanks around it: cell[b, end)
                while (b < cell.size() && is_blank(cell[b])) ++b;
                while (cell.size() > b && is_blank(cell.back())) cell.pop_back();
                const char* s = cell.c_str() + b;
                const std::size_t n = cell.size() - b;
                const auto field = [&] {
                    return "field " + std::to_string(fields) + " ('" + excerpt(std::string(s, n)) + "') ";
                };
                if (header_pending) {
                    if (long_field) throw std::runtime_error(at(line_no) + "header " + field() + too_long);
                    t.header.emplace_back(s, n);
                } else if (problem.empty() && (t.width == 0 || fields <= t.width)) {
                    if (long_field) {
                        problem = field() + too_long;
                    } else if (!is_decimal(s, n)) {
                        problem = field() + (spells_non_finite(std::string(s, n)) ? "is not finite" : "is not a number");
                    } else {
                        errno = 0;
                        const double v = std::strtod(s, nullptr);
                        if (!std::isfinite(v)) {
                            problem = field() + "is not finite";
                        } else if (errno == ERANGE) {
                            // strtod's underflow: 0 or a subnormal in place of the number written
                            problem = field() + "underflows: its magnitude is below 2.2250738585072014e-308, the "
                                                "smallest normal double";
                        } else {
                            if (t.values.size() >= lim.max_values)
                                throw std::runtime_error(at(line_no) + "more than " +
                                                         std::to_string(lim.max_values) + " numbers (the limit)");
                            t.values.push_back(v);
                        }
                    }
                }
                cell.clear();
                long_field = false;
                if (end_of_line) break;
                blank = false;  // a ',' makes the line a row
            }
            if (blank && !header_pending) continue;  // a blank line
            if (header_pending) {
                header_pending = false;
                t.width = t.header.size();
                continue;
            }
            if (t.width == 0) t.width = fields;
            if (fields != t.width)
                throw std::runtime_error(at(line_no) + "row has " + std::to_string(fields) + " fields, expected " +
                                         std::to_string(t.width));
            if (!problem.empty()) throw std::runtime_error(at(line_no) + problem);
        }
    } catch (const std::ios_base::failure& e) {
        throw std::runtime_error(name + ": read error: " + e.what());
    }
    if (t.rows() == 0) throw std::runtime_error(name + ": no data rows");
    return t;
}

}  // namespace detail

/// Reads a numeric CSV text; with `has_header`, the first line is kept as names. `name`
/// (a file name) starts every message.
inline csv_table parse_csv(std::istream& in, const std::string& name, bool has_header,
                           const read_limits& lim = {}) {
    const detail::csv_numbers n = detail::parse_numbers(in, name, has_header, lim);
    csv_table t;
    t.header = n.header;
    t.rows.reserve(n.rows());
    for (std::size_t i = 0; i < n.rows(); ++i)
        t.rows.emplace_back(n.values.begin() + std::ptrdiff_t(i * n.width),
                            n.values.begin() + std::ptrdiff_t((i + 1) * n.width));
    return t;
}

/// Reads a numeric CSV file; with `has_header`, the first line is kept as names.
inline csv_table read_csv(const std::string& path, bool has_header) {
    input_file in(path);
    return parse_csv(in.stream(), path, has_header);
}

/// Reads samples stored one per row (no header) into a matrix with one sample per column.
inline Eigen::MatrixXd parse_samples(std::istream& in, const std::string& name, const read_limits& lim = {}) {
    detail::csv_numbers n = detail::parse_numbers(in, name, false, lim);
    // row-major rows of D values are the columns of a column-major D x n matrix
    Eigen::MatrixXd x = Eigen::Map<const Eigen::MatrixXd>(n.values.data(), Eigen::Index(n.width),
                                                          Eigen::Index(n.rows()));
    return x;
}

/// Reads a file of samples stored one per row (no header), one sample per column.
inline Eigen::MatrixXd read_samples(const std::string& path) {
    input_file in(path);
    return parse_samples(in.stream(), path);
}

/// Writes one sample (column of x) per row, 17 significant digits (which read back to the
/// same doubles), no header. Calls stop() before every row and stops writing, returning
/// false, when it returns true; returns true when everything was written to the stream.
template <class Derived, class Stop = never_stop>
bool write_samples_to(std::ostream& out, const Eigen::MatrixBase<Derived>& x, Stop&& stop = {}) {
    out << std::setprecision(17);
    for (Eigen::Index i = 0; i < x.cols(); ++i) {
        if (stop()) return false;
        for (Eigen::Index d = 0; d < x.rows(); ++d) {
            if (d) out << ',';
            out << double(x(d, i));
        }
        out << '\n';
    }
    return true;
}

/// Writes the samples to the file `path` (see write_samples_to) through atomic_write
/// (atomic_file.hpp): a unique temporary beside it, renamed into place, so that a failed or
/// stopped write leaves `path` as it was. Throws std::runtime_error naming the path when
/// writing fails; returns false, with the temporary removed, when stop() asked to stop (it
/// is called before every row and once more, after the last, before the rename); returns
/// true when the file is in place.
template <class Derived, class Stop = never_stop>
bool write_samples(const std::string& path, const Eigen::MatrixBase<Derived>& x, Stop&& stop = {}) {
    return atomic_write(
        path, [&](std::ostream& out) { return write_samples_to(out, x, [&] { return !out || stop(); }); }, stop);
}

}  // namespace deis_tools
