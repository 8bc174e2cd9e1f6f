// The readers of outside data (examples/support/csv_io.hpp, mixture_io.hpp): the in-memory
// entry points and the file readers are one implementation, every limit is enforced with a
// message, and the inputs fuzzing found (tests/fuzz/regressions/) are refused or read as
// they should be. Each regression test is named after what it guards.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "catch.hpp"
#include "support/csv_io.hpp"
#include "support/mixture_io.hpp"

namespace fs = std::filesystem;

namespace {

Eigen::MatrixXd samples(const std::string& text, const deis_tools::read_limits& lim = {}) {
    std::istringstream in(text);
    return deis_tools::parse_samples(in, "in.csv", lim);
}

deis::gaussian_mixture mixture_json(const std::string& text, const deis_tools::read_limits& lim = {}) {
    std::istringstream in(text);
    return deis_tools::parse_mixture_json(in, "in.json", lim);
}

deis::gaussian_mixture mixture_csv(const std::string& text, const deis_tools::read_limits& lim = {}) {
    std::istringstream in(text);
    return deis_tools::parse_mixture_csv(in, "in.csv", lim);
}

// The message of the std::runtime_error f throws ("" when it throws none).
template <class F>
std::string refusal(F&& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A temporary file with the given bytes, removed at the end.
struct temp_file {
    fs::path path;
    explicit temp_file(const std::string& name, const std::string& bytes)
        : path(fs::temp_directory_path() / ("deis-readers-" + std::to_string(::getpid()) + "-" + name)) {
        std::ofstream(path, std::ios::binary) << bytes;
    }
    ~temp_file() {
        std::error_code ec;
        fs::remove(path, ec);
    }
};

}  // namespace

TEST_CASE("readers: the file readers are the in-memory readers with the path as the name", "[readers]") {
    const std::string text = "0.25,-1e-3\n 7 , 8\r\n\n-.5,+2.\n";
    const temp_file f("samples.csv", text);
    const Eigen::MatrixXd x = deis_tools::read_samples(f.path.string());
    CHECK(x == samples(text));
    REQUIRE(x.rows() == 2);
    REQUIRE(x.cols() == 3);
    CHECK(x(0, 0) == 0.25);
    CHECK(x(1, 0) == -1e-3);
    CHECK(x(0, 1) == 7.0);
    CHECK(x(0, 2) == -0.5);
    CHECK(x(1, 2) == 2.0);

    const temp_file bad("bad.csv", "1,2\n3\n");
    CHECK(refusal([&] { deis_tools::read_samples(bad.path.string()); }) ==
          bad.path.string() + ":2: row has 1 fields, expected 2");

    const std::string mix = "mu0,std0,weight\n0,1,1\n2,0.5,3\n";
    const temp_file m("mix.csv", mix);
    const deis::gaussian_mixture a = deis_tools::read_mixture_csv(m.path.string()), b = mixture_csv(mix);
    CHECK(a.means() == b.means());
    CHECK(a.stds() == b.stds());
    CHECK(a.weights() == b.weights());
    CHECK(a.weights()[1] == 0.75);

    const std::string js = R"({"weights": [1, 3], "means": [[0], [2]], "stds": [[1], [0.5]]})";
    const temp_file j("mix.json", js);
    const deis::gaussian_mixture c = deis_tools::read_mixture_json(j.path.string());
    CHECK(c.means() == a.means());
    CHECK(c.stds() == a.stds());
    CHECK(c.weights() == a.weights());
    CHECK(contains(refusal([&] { deis_tools::read_mixture_json(m.path.string()); }), m.path.string() + ": not valid JSON"));
}

TEST_CASE("readers: only decimal numbers are read and hexadecimal or inf or nan is refused", "[readers]") {
    CHECK(samples("1e5,-2.5E-3,.5,5.,+1\n") == (Eigen::MatrixXd(5, 1) << 1e5, -2.5e-3, 0.5, 5.0, 1.0).finished());
    // strtod would read all of these; the format does not
    for (const std::string cell : {"0x10", "0x1p3", "1e", "1e+", ".", "-", "+-1", "1.2.3", "1;5", "1 2", "e5"}) {
        INFO(cell);
        CHECK(contains(refusal([&] { samples("0," + cell + "\n"); }), "is not a number"));
    }
    for (const std::string cell : {"inf", "-Infinity", "NaN", "nan(0x1)", "1e400", "-1e309"}) {
        INFO(cell);
        CHECK(contains(refusal([&] { samples("0," + cell + "\n"); }), "is not finite"));
    }
    // a number below the normal doubles would be read as a subnormal or as 0: refused, so that
    // no value changes silently; zero itself and the smallest normal double are read
    for (const std::string cell : {"1e-400", "-1e-310", "2e-308", "0.0000000001e-300"}) {
        INFO(cell);
        CHECK(contains(refusal([&] { samples("0," + cell + "\n"); }), "underflows"));
    }
    CHECK(samples("0,-0.0,0e-999,2.2250738585072014e-308\n") ==
          (Eigen::MatrixXd(4, 1) << 0.0, 0.0, 0.0, 2.2250738585072014e-308).finished());
}

TEST_CASE("readers: the documented limits", "[readers][limits]") {
    const deis_tools::read_limits defaults;
    CHECK(defaults.max_fields == 1000000);
    CHECK(defaults.max_values == 100000000);
    CHECK(defaults.max_field_chars == 100);
    CHECK(defaults.max_json_depth == 8);

    deis_tools::read_limits small;
    small.max_fields = 3;
    small.max_values = 6;
    small.max_field_chars = 8;
    small.max_json_depth = 3;
    CHECK(samples("1,2,3\n4,5,6\n", small).cols() == 2);
    CHECK(refusal([&] { samples("1,2,3,4\n", small); }) == "in.csv:1: more than 3 fields in a row (the limit)");
    CHECK(refusal([&] { samples("1,2\n3,4\n5,6\n7,8\n", small); }) == "in.csv:4: more than 6 numbers (the limit)");
    CHECK(samples("1.234567\n", small)(0, 0) == 1.234567);  // 8 characters
    CHECK(refusal([&] { samples("1.2345678\n", small); }) ==
          "in.csv:1: field 1 ('1.234567') is longer than 8 characters");
    CHECK(mixture_json(R"({"weights": [1], "means": [[0]], "stds": [[1]]})", small).dim() == 1);  // depth 3
    CHECK(refusal([&] { mixture_json(R"({"weights": [1], "means": [[[0]]], "stds": [[1]]})", small); }) ==
          "in.json: nested deeper than 3 levels (the limit)");
    CHECK(refusal([&] { mixture_json(R"({"weights": [1, 1, 1], "means": [[0], [0], [0]], "stds": [[1], [1], [1]]})",
                                     small); }) == "in.json: more than 6 numbers (the limit)");
    CHECK(refusal([&] { mixture_csv("mu0,std0,weight\n0,1,1\n0,1,1\n0,1,1\n", small); }) ==
          "in.csv:4: more than 6 numbers (the limit)");
}

TEST_CASE("readers: a line of a million commas is refused at the field limit", "[readers][limits]") {
    // 10^6 commas are 10^6 + 1 empty fields: one more than a row may have. The reader keeps
    // one field at a time, so the line costs nothing before it is refused.
    CHECK(refusal([] { samples(std::string(1000000, ',') + "\n"); }) ==
          "in.csv:1: more than 1000000 fields in a row (the limit)");
    // 10^6 numbers in a row are allowed (a sample of dimension 10^6)
    std::string row(2 * 1000000 - 1, ',');
    for (std::size_t i = 0; i < row.size(); i += 2) row[i] = '0';
    CHECK(samples(row + "\n").rows() == 1000000);
    CHECK(contains(refusal([&] { samples(row + ",0\n"); }), "more than 1000000 fields"));
}

TEST_CASE("readers: a mixture JSON's shapes are checked before its matrices are allocated", "[readers][limits]") {
    // weights: K = 10^5, means[0]: D = 10^5 numbers, the other means scalars. Sized from
    // weights and means[0] alone the two D x K matrices would take 160 GB.
    const std::size_t n = 100000;
    std::string ones;
    for (std::size_t i = 0; i < n; ++i) ones += i ? ",1" : "1";
    const std::string text =
        R"({"weights": [)" + ones + R"(], "means": [[)" + ones + "]," + ones.substr(2) + R"(], "stds": [)" + ones + "]}";
    CHECK(refusal([&] { mixture_json(text); }) == "in.json: 'means[1]' must be an array of numbers");
}

TEST_CASE("readers: messages start with the input's name and are one line", "[readers]") {
    // the bytes of a bad field are quoted with control and non-ASCII bytes escaped, and cut
    const std::string m = refusal([] { samples(std::string("1,\x01\n\x7f\xff", 6) + "\n"); });
    CHECK(m == "in.csv:1: field 2 ('\\x01') is not a number");
    const std::string long_bad = refusal([] { samples("1," + std::string(90, 'x') + "\n"); });
    CHECK(long_bad == "in.csv:1: field 2 ('" + std::string(40, 'x') + "...') is not a number");
    // a JSON parse error quotes the token it stopped at: a long one is cut
    const std::string j = refusal([] { mixture_json(R"({"weights": [1, ")" + std::string(5000, 'a') + "\n"); });
    CHECK(j.rfind("in.json: not valid JSON: ", 0) == 0);
    CHECK(j.find('\n') == std::string::npos);
    CHECK(j.size() < 300);
}

TEST_CASE("readers: a mixture whose weights sum beyond the largest double is refused", "[readers]") {
    // gaussian_mixture divides by the sum: inf would make every weight 0 and eps NaN
    CHECK(refusal([] { mixture_json(R"({"weights": [1e308, 1e308], "means": [[0], [1]], "stds": [[1], [1]]})"); }) ==
          "in.json: the weights sum to more than the largest double; scale them down");
    CHECK(contains(refusal([] { mixture_csv("mu0,std0,weight\n0,1,1e308\n1,1,1e308\n"); }), "weights sum"));
    // tiny weights are fine: they are normalised
    CHECK(mixture_csv("mu0,std0,weight\n0,1,1e-300\n1,1,1e-300\n").weights()[0] == 0.5);
}

TEST_CASE("write_samples: a stop request removes the temporary and leaves the target alone", "[readers]") {
    const temp_file target("target.csv", "old\n");
    const std::string tmp = target.path.string() + ".tmp";
    Eigen::MatrixXd x(2, 5);
    x.setConstant(0.5);
    int rows = 0;
    CHECK_FALSE(deis_tools::write_samples(target.path.string(), x, [&] { return ++rows > 2; }));
    CHECK(rows == 3);  // asked before rows 1, 2 and 3
    CHECK_FALSE(fs::exists(tmp));
    std::ifstream in(target.path);
    std::string line;
    std::getline(in, line);
    CHECK(line == "old");
    // a stop asked after the last row, before the rename, counts too
    int calls = 0;
    CHECK_FALSE(deis_tools::write_samples(target.path.string(), x, [&] { return ++calls > 5; }));
    CHECK(calls == 6);
    CHECK_FALSE(fs::exists(tmp));
    CHECK(deis_tools::write_samples(target.path.string(), x));
    CHECK(deis_tools::read_samples(target.path.string()) == x);
}
