#include "runs.hpp"

#include <fnmatch.h>

namespace deis_bench {

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::vector<solver_spec> solver_table(const std::string& case_name) {
    const std::vector<solver_row> rows = solver_rows(case_name);
    std::vector<solver_spec> table;
    for (const solver_row& r : rows) {
        solver_spec s{r.name, r.family, {}, 1, false};
        const std::string name = r.name;
        if (name == "recommended+calibrated")
            s.config = deis::parse_solver_config("recommended"), s.calibrated = true;
        else
            s.config = deis::parse_solver_config(name);
        s.stages = deis::calls_per_step(s.config);
        table.push_back(std::move(s));
    }
    return table;
}

const std::vector<std::string> family_order = {"multistep", "corrector", "data", "rk"};
const std::map<std::string, std::string> family_title = {
    {"multistep", "multistep, noise prediction"},
    {"corrector", "multistep + corrector"},
    {"data", "multistep, data prediction"},
    {"rk", "rhoRK (Runge-Kutta in rho)"}};


const std::vector<grid_spec>& grid_table(const std::string& case_name) {
    static const std::vector<grid_spec> flow_grids = {
        {"t1", deis::grid_kind::power_t, 1.0, "uniform in t (Euler's usual grid)"},
        {"t1s3", deis::grid_kind::power_t, 1.0, "uniform in t, shifted by s = 3 (SD3)", 3.0},
        {"t2", deis::grid_kind::power_t, 2.0, "quadratic in t"},
        {"t2s3", deis::grid_kind::power_t, 2.0, "quadratic in t, shifted by s = 3", 3.0},
        {"rec", deis::grid_kind::power_t, 0.0, "deis::recommended_grid (the grid of the recommended configuration)",
         1.0, true},
    };
    if (case_name == "flow") return flow_grids;
    static const std::vector<grid_spec> grids = {
        {"t2", deis::grid_kind::power_t, 2.0, "quadratic in t (the DEIS default)"},
        {"log", deis::grid_kind::log_rho, 0.0, "uniform in log rho"},
        {"rho7", deis::grid_kind::power_rho, 7.0, "uniform in rho^(1/7) (EDM/Karras)"},
        {"t1", deis::grid_kind::power_t, 1.0, "uniform in t"},
        {"rec", deis::grid_kind::power_t, 0.0, "deis::recommended_grid (the grid of the recommended configuration)",
         1.0, true},
    };
    return grids;
}

double median_of(std::vector<double> v) {
    if (v.empty()) return NAN;
    const std::size_t n = v.size(), m = n / 2;
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(m), v.end());
    const double upper = v[m];
    if (n % 2 == 1) return upper;
    const double lower = *std::max_element(v.begin(), v.begin() + std::ptrdiff_t(m));
    return 0.5 * (lower + upper);  // the mean of the two middle values, as numpy.median
}

// e_i = ||x_i - ref_i|| / sqrt(D); rms = sqrt(mean e_i^2); mode switches: samples whose most
// likely component differs from their reference's (-1 without a mixture).
error_stats measure(const Eigen::MatrixXd& x, const Eigen::MatrixXd& ref, const std::vector<Eigen::Index>& ref_comp,
                    const deis::gaussian_mixture* mix) {
    error_stats st;
    const double sd = std::sqrt(double(x.rows()));
    std::vector<double> e(std::size_t(x.cols()));
    double sq = 0.0;
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
        const double ej = (x.col(j) - ref.col(j)).norm() / sd;
        e[std::size_t(j)] = ej;
        sq += ej * ej;
        if (mix && mix->most_likely_component(x.col(j)) != ref_comp[std::size_t(j)]) ++st.mode_switches;
    }
    if (!mix) st.mode_switches = -1;
    st.rms = std::sqrt(sq / double(x.cols()));
    st.max = *std::max_element(e.begin(), e.end());
    st.median = median_of(std::move(e));
    return st;
}

bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
    if (patterns.empty()) return true;
    for (const auto& p : patterns)
        if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
    return false;
}

}  // namespace deis_bench
