// deis-sample: the input files. No output replaces one of them, and they are read once,
// completely, before the run (regular files only: support/input_file.hpp); --model is loaded
// last (trained.cpp).
#include <sys/stat.h>

#include <cfloat>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "deis_sample.hpp"
#include "support/atomic_file.hpp"
#include "support/csv_io.hpp"
#include "support/input_file.hpp"
#include "support/mixture_io.hpp"

namespace deis_sample {

namespace {

struct named_path {
    const char* option;
    const std::string& path;
};

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

// An output that is the same file as an input, by any name: the same path, a symbolic link
// to it or a hard link (the same device and inode once links are followed). A path that
// does not exist (yet) is no input; one that cannot be examined is left to the reader or
// the writer, which report it.
void refuse_input(const named_path& out, const std::vector<named_path>& inputs) {
    struct stat out_st {};
    if (::stat(out.path.c_str(), &out_st) != 0) return;
    for (const named_path& in : inputs) {
        struct stat in_st {};
        if (!in.path.empty() && ::stat(in.path.c_str(), &in_st) == 0 && same_file(out_st, in_st))
            usage_error(std::string(out.option) + " " + out.path + " is the same file as " + in.option + " " +
                        in.path + ": refusing to overwrite an input");
    }
}

// Whether two outputs name one file: the same existing file, or the same path once its
// existing part is resolved (".", "..", symbolic links to directories).
bool same_output(const std::string& a, const std::string& b) {
    struct stat sa {}, sb {};
    if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0) return same_file(sa, sb);
    std::error_code ea, eb;
    const std::filesystem::path ra = std::filesystem::weakly_canonical(a, ea);
    const std::filesystem::path rb = std::filesystem::weakly_canonical(b, eb);
    return (ea || eb) ? a == b : ra == rb;
}

// --init: the data, as many samples as --noise (img2img noises each one), of the mixture's
// dimension (with --model, of the noise's).
void read_init(const options& o, problem& p) {
    if (o.init.empty()) return;
    p.init = deis_tools::read_samples(o.init);
    if (p.mixture && p.init.rows() != p.mixture->dim())
        throw failure(exit_input, o.init + ": samples have dimension " + std::to_string(p.init.rows()) +
                                      " but the mixture has dimension " + std::to_string(p.mixture->dim()));
    if (!p.mixture && !o.noise.empty() && p.init.rows() != p.noise.rows())
        throw failure(exit_input, o.init + ": samples have dimension " + std::to_string(p.init.rows()) +
                                      " but --noise " + o.noise + " has dimension " + std::to_string(p.noise.rows()));
    if (!o.noise.empty() && p.init.cols() != p.noise.cols())
        throw failure(exit_input, o.init + ": " + std::to_string(p.init.cols()) + " samples but --noise " + o.noise +
                                      " has " + std::to_string(p.noise.cols()) + " (img2img noises each one)");
}

// The --scheduler-config file: a regular file of at most max_scheduler_config_bytes, read
// before it is parsed (deis::parse_scheduler_config). Failures: failure(exit_input).
deis::scheduler_config read_scheduler_config(const std::string& path) {
    std::string text;
    try {
        deis_tools::input_file in(path, max_scheduler_config_bytes, "--scheduler-config " + path);
        text.assign(std::istreambuf_iterator<char>(in.stream()), std::istreambuf_iterator<char>());
    } catch (const std::runtime_error& e) {
        throw failure(exit_input, e.what());
    }
    try {
        return deis::parse_scheduler_config(text);
    } catch (const std::invalid_argument& e) {
        throw failure(exit_input, std::string(e.what()) + " (in '" + path + "')");
    }
}

}  // namespace

void refuse_output_over_input(const options& o) {
    const std::vector<named_path> inputs = {
        {"--noise", o.noise}, {"--mixture", o.mixture_json},  {"--mixture-csv", o.mixture_csv},
        {"--init", o.init},   {"--scheduler-config", o.scheduler_config}, {"--grid-file", o.grid_file},
        {"--model", o.model_file}};
    std::vector<named_path> outputs = {{"--out", o.out}};
    if (!o.save_grid.empty()) outputs.push_back({"--save-grid", o.save_grid});
    for (const named_path& out : outputs) refuse_input(out, inputs);
    if (outputs.size() == 2 && same_output(o.out, o.save_grid))
        usage_error("--out " + o.out + " and --save-grid " + o.save_grid + " are the same file");
    // what is there already must be a regular file, which the output replaces
    for (const named_path& out : outputs) {
        const std::string why = deis_tools::output_refusal(out.path);
        if (!why.empty()) throw failure(exit_write, std::string(out.option) + " " + out.path + " " + why);
    }
}

problem read_inputs(const options& o) {
    const std::string& mixture_file = o.mixture_json.empty() ? o.mixture_csv : o.mixture_json;
    try {
        problem p;
        if (o.model_file.empty())
            p.mixture = o.mixture_json.empty() ? deis_tools::read_mixture_csv(o.mixture_csv)
                                               : deis_tools::read_mixture_json(o.mixture_json);
        if (!o.noise.empty()) p.noise = deis_tools::read_samples(o.noise);
        read_init(o, p);
        if (!o.scheduler_config.empty()) p.config = read_scheduler_config(o.scheduler_config);
        if (p.mixture && !o.noise.empty() && p.noise.rows() != p.mixture->dim())
            throw failure(exit_input, o.noise + ": samples have dimension " + std::to_string(p.noise.rows()) +
                                          " but the mixture " + mixture_file + " has dimension " +
                                          std::to_string(p.mixture->dim()));
        if (!o.shape.empty()) {
            long long size = 1;
            std::string shape;
            for (long s : o.shape) {
                size *= s;
                shape += (shape.empty() ? "" : ",") + std::to_string(s);
            }
            if (size != (long long)(p.dim()))
                throw failure(exit_input, "--shape " + shape + " holds " + std::to_string(size) + " values but " +
                                              (o.noise.empty() ? "--init " + o.init : "--noise " + o.noise) +
                                              " has samples of dimension " + std::to_string(p.dim()));
        }
        if (o.use_float) {
            for (Eigen::Index j = 0; j < p.noise.cols(); ++j)
                for (Eigen::Index d = 0; d < p.noise.rows(); ++d)
                    if (std::abs(p.noise(d, j)) > double(FLT_MAX))
                        throw failure(exit_input, o.noise + ":" + std::to_string(j + 1) + ": field " +
                                                      std::to_string(d + 1) + " (" + num(p.noise(d, j)) +
                                                      ") does not fit in a float (--float)");
        }
        // the model last: the files above are cheap to check, a network may not be
        if (!o.model_file.empty()) p.network = load_model(o);
        return p;
    } catch (const failure&) {
        throw;
    } catch (const std::exception& e) {
        throw failure(exit_input, e.what());
    }
}

}  // namespace deis_sample
