// deis-sample: the input files. The output never replaces one of them, and they are read
// once, completely, before the run.
#include <sys/stat.h>

#include <cfloat>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "deis_sample.hpp"
#include "support/csv_io.hpp"
#include "support/mixture_io.hpp"

namespace deis_sample {

void refuse_output_over_input(const options& o) {
    const std::vector<std::pair<const char*, const std::string*>> inputs = {
        {"--noise", &o.noise}, {"--mixture", &o.mixture_json}, {"--mixture-csv", &o.mixture_csv},
        {"--init", &o.init}, {"--scheduler-config", &o.scheduler_config}};
    const std::string tmp = o.out + ".tmp";
    struct stat out_st {}, tmp_st {};
    // a path that does not exist (yet) is no input; one that cannot be examined is left to
    // the reader or the writer, which report it
    const bool out_exists = ::stat(o.out.c_str(), &out_st) == 0;
    const bool tmp_exists = ::stat(tmp.c_str(), &tmp_st) == 0;
    const auto same = [](const struct stat& a, const struct stat& b) {
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    };
    for (const auto& [option, path] : inputs) {
        struct stat in_st {};
        if (path->empty() || ::stat(path->c_str(), &in_st) != 0) continue;
        if (out_exists && same(out_st, in_st))
            usage_error("--out " + o.out + " is the same file as " + option + " " + *path +
                        ": refusing to overwrite an input");
        if (tmp_exists && same(tmp_st, in_st))
            usage_error("--out " + o.out + ": its temporary " + tmp + " is the same file as " + option + " " +
                        *path + ": refusing to overwrite an input");
    }
}

problem read_inputs(const options& o) {
    const std::string& mixture_file = o.mixture_json.empty() ? o.mixture_csv : o.mixture_json;
    try {
        problem p{o.mixture_json.empty() ? deis_tools::read_mixture_csv(o.mixture_csv)
                                         : deis_tools::read_mixture_json(o.mixture_json),
                  o.noise.empty() ? Eigen::MatrixXd() : deis_tools::read_samples(o.noise), Eigen::MatrixXd()};
        read_diffusers_inputs(o, p);
        if (!o.noise.empty() && p.noise.rows() != p.mixture.dim())
            throw failure(exit_input, o.noise + ": samples have dimension " + std::to_string(p.noise.rows()) +
                                          " but the mixture " + mixture_file + " has dimension " +
                                          std::to_string(p.mixture.dim()));
        if (o.use_float) {
            for (Eigen::Index j = 0; j < p.noise.cols(); ++j)
                for (Eigen::Index d = 0; d < p.noise.rows(); ++d)
                    if (std::abs(p.noise(d, j)) > double(FLT_MAX))
                        throw failure(exit_input, o.noise + ":" + std::to_string(j + 1) + ": field " +
                                                      std::to_string(d + 1) + " (" + num(p.noise(d, j)) +
                                                      ") does not fit in a float (--float)");
        }
        return p;
    } catch (const failure&) {
        throw;
    } catch (const std::exception& e) {
        throw failure(exit_input, e.what());
    }
}

}  // namespace deis_sample
