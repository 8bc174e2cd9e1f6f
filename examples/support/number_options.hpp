// The numeric command-line options of the examples and tools, read as decimal text only.
// CLI11 2.1 converts integers with strtoll in base 0 (010 is 8, 0x10 is 16) and floating
// values with strtold (nan, inf and hexadecimal accepted; 1e-400 becomes 0 as a double), so
// the programs check the text first with these validators. Not part of the library.
//
//   integers: [+-]digits, decimal; leading zeros are read as decimal (010 is 10).
//   floating: [+-]digits[.digits][(e|E)[+-]digits] (or starting with the point), the
//             grammar of the CSV files (csv_io.hpp); its double must be 0 (written as a
//             zero) or a normal double: NaN, infinities, overflow, underflow to 0 and
//             subnormal values are refused.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "support/csv_io.hpp"

namespace deis_tools {

/// A bad numeric option; the message names it ("--steps = 0x10 is not a decimal integer").
/// Thrown from inside CLI::App::parse, which lets it through.
struct bad_number : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// "" when `text` is a decimal integer, else why it is not (for "<option> = <text> ...").
inline std::string integer_problem(const std::string& text) {
    const std::size_t sign = !text.empty() && (text[0] == '+' || text[0] == '-') ? 1 : 0;
    if (text.size() == sign || text.find_first_not_of("0123456789", sign) != std::string::npos)
        return "is not a decimal integer (digits only: no 0x prefix, no point, no exponent)";
    return "";
}

/// "" when `text` is a decimal number whose double is 0 or normal, else why it is not.
inline std::string floating_problem(const std::string& text) {
    if (!detail::is_decimal(text.c_str(), text.size()))
        return detail::spells_non_finite(text) ? "must be finite" : "is not a decimal number";
    errno = 0;
    const double v = std::strtod(text.c_str(), nullptr);
    if (std::isinf(v)) return "must be finite (it is beyond the largest double)";
    if (errno == ERANGE || (v != 0.0 && !std::isnormal(v)))
        return "is too small for a double (its magnitude is below 2.2e-308; give 0 for zero)";
    return "";
}

/// The validator of an integer option `name`: refuses (bad_number) anything but a decimal
/// integer (without a '-' unless `negative`) and strips its leading zeros, so that CLI11
/// reads it in base 10.
inline CLI::Validator decimal_integer(const std::string& name, bool negative = true) {
    return CLI::Validator(
        [name, negative](std::string& text) {
            const std::string why = !negative && !text.empty() && text[0] == '-' ? "must not be negative"
                                                                                 : integer_problem(text);
            if (!why.empty()) throw bad_number(name + " = " + text + " " + why);
            const std::size_t sign = text[0] == '+' || text[0] == '-' ? 1 : 0;
            const std::size_t first = text.find_first_not_of('0', sign);
            text.erase(sign, (first == std::string::npos ? text.size() - 1 : first) - sign);
            return std::string();
        },
        "", "decimal integer");
}

/// The validator of a floating option `name`: refuses (bad_number) what floating_problem does.
inline CLI::Validator finite_number(const std::string& name) {
    return CLI::Validator(
        [name](std::string& text) {
            const std::string why = floating_problem(text);
            if (!why.empty()) throw bad_number(name + " = " + text + " " + why);
            return std::string();
        },
        "", "finite number");
}

}  // namespace deis_tools
