// Models from diffusers (include/deis/diffusers.hpp): timestep grids against the sequences
// diffusers produces (tests/data/diffusers/timesteps.csv, written from diffusers' documented
// behaviour by make_timesteps.py), scheduler_config.json for SD 1.5, SD 2.1, SDXL, SD3 and
// Flux, bad configs, training tables, flow sigmas, Karras levels and img2img starts.
#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "catch.hpp"
#include "deis/diffusers.hpp"
#include "deis/research/gmm.hpp"
#include "deis/multistep.hpp"
#include "support.hpp"

namespace {

// The text CSV files of tests/data/diffusers: a header, then comma-separated fields (lists
// inside a field are separated by spaces).
struct text_table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    std::size_t col(const std::string& name) const {
        for (std::size_t i = 0; i < header.size(); ++i)
            if (header[i] == name) return i;
        throw std::runtime_error("no column " + name);
    }
};

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    std::istringstream is(s);
    while (std::getline(is, cur, sep)) out.push_back(cur);
    if (!s.empty() && s.back() == sep) out.push_back("");
    return out;
}

text_table read_text(const std::string& relative) {
    std::ifstream f(deis_test::reference_path(relative));
    if (!f) throw std::runtime_error("cannot open " + relative);
    text_table t;
    std::string line;
    std::getline(f, line);
    t.header = split(line, ',');
    while (std::getline(f, line))
        if (!line.empty()) t.rows.push_back(split(line, ','));
    return t;
}

std::vector<double> numbers(const std::string& field) {
    std::vector<double> v;
    std::istringstream is(field);
    double x;
    while (is >> x) v.push_back(x);
    return v;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string config_path(const std::string& name) {
    return deis_test::reference_path("diffusers/configs/" + name + ".json");
}

deis::timestep_spacing spacing_of(const std::string& s) {
    if (s == "linspace") return deis::timestep_spacing::linspace;
    if (s == "leading") return deis::timestep_spacing::leading;
    return deis::timestep_spacing::trailing;
}

// The timesteps a discrete-schedule grid hands the network (all but the end point).
std::vector<double> grid_timesteps(const deis::scheduler_config& c, const std::vector<double>& grid) {
    const deis::timestep_map map = c.timesteps();
    std::vector<double> taus;
    for (std::size_t i = 0; i + 1 < grid.size(); ++i) taus.push_back(map(grid[i]));
    return taus;
}

// diffusers' PNDM (skip_prk_steps) list: the ddim list with its second timestep repeated.
std::vector<double> plms(std::vector<double> d) {
    if (d.size() >= 2) d.insert(d.begin() + 1, d[1]);
    return d;
}

}  // namespace

TEST_CASE("diffusers_timesteps equals every row of timesteps.csv", "[diffusers]") {
    const text_table t = read_text("diffusers/timesteps.csv");
    REQUIRE(t.rows.size() == 272);
    for (const auto& row : t.rows) {
        const std::string sch = row[t.col("scheduler")];
        const deis::timestep_spacing sp = spacing_of(row[t.col("timestep_spacing")]);
        const int offset = std::stoi(row[t.col("steps_offset")]);
        const int n = std::stoi(row[t.col("num_train_timesteps")]);
        const int steps = std::stoi(row[t.col("num_inference_steps")]);
        const std::vector<double> expected = numbers(row[t.col("timesteps")]);
        CAPTURE(sch, row[t.col("timestep_spacing")], offset, steps);
        REQUIRE(expected.size() == std::size_t(std::stoi(row[t.col("count")])));
        std::vector<double> got;
        if (sch == "DDIM") {
            got = deis::diffusers_timesteps(sp, deis::timestep_family::ddim, steps, n, offset);
        } else if (sch == "PNDM") {
            got = plms(deis::diffusers_timesteps(sp, deis::timestep_family::ddim, steps, n, offset));
        } else if (sch == "EulerDiscrete") {
            got = deis::diffusers_timesteps(sp, deis::timestep_family::euler, steps, n, offset);
        } else if (sch == "DPMSolverMultistep" || sch == "DEISMultistep") {
            got = deis::diffusers_timesteps(sp, deis::timestep_family::multistep, steps, n, offset);
        } else {
            REQUIRE(sch == "DDIMInverse");
            got = deis::diffusers_timesteps(sp, deis::timestep_family::ddim, steps, n, offset);
            std::reverse(got.begin(), got.end());
        }
        // exact: the values are integers, or float32 values stored exactly as doubles
        REQUIRE(got == expected);
    }
}

TEST_CASE("discrete_grid: the rows without flaws and a refusal for the others", "[diffusers]") {
    const text_table t = read_text("diffusers/timesteps.csv");
    const deis::vp_discrete sd = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    int checked = 0, refused = 0;
    for (const auto& row : t.rows) {
        const std::string sch = row[t.col("scheduler")];
        if (sch == "PNDM" || sch == "DDIMInverse") continue;  // PNDM: below; inverse: test_inversion.cpp
        const deis::timestep_family fam = sch == "DDIM"            ? deis::timestep_family::ddim
                                          : sch == "EulerDiscrete" ? deis::timestep_family::euler
                                                                   : deis::timestep_family::multistep;
        const deis::timestep_spacing sp = spacing_of(row[t.col("timestep_spacing")]);
        const int offset = std::stoi(row[t.col("steps_offset")]);
        const int steps = std::stoi(row[t.col("num_inference_steps")]);
        const bool flawed = row[t.col("duplicates")] == "1" || row[t.col("out_of_range")] == "1";
        CAPTURE(sch, row[t.col("timestep_spacing")], offset, steps);
        if (flawed) {
            REQUIRE_THROWS_WITH(deis::discrete_grid(sd, sp, fam, steps, offset), deis_test::contains("steps = "));
            ++refused;
            continue;
        }
        const std::vector<double> grid = deis::discrete_grid(sd, sp, fam, steps, offset);
        const std::vector<double> expected = numbers(row[t.col("timesteps")]);
        REQUIRE(grid.size() == expected.size() + 1);
        REQUIRE(grid.back() == 0.0);  // final_sigma::zero
        for (std::size_t i = 0; i < expected.size(); ++i) {
            // t = (tau + 1)/n and back: 1e-9 absolute is far below the 1/n between timesteps
            // and far above the two roundings of the division and the product
            REQUIRE(std::abs(sd.timestep(grid[i]) - expected[i]) < 1e-9);
            if (fam != deis::timestep_family::euler)  // euler: fractional, given unrounded
                REQUIRE(deis::discrete_timesteps(sd)(grid[i]) == expected[i]);
        }
        ++checked;
    }
    REQUIRE(checked == 4 * 48 - 12);  // DDIM, Euler, DPM, DEIS: 48 rows each, 12 flawed
    REQUIRE(refused == 12);
}

TEST_CASE("discrete_grid: never a duplicated time for any step count", "[diffusers]") {
    const deis::vp_discrete sd = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    for (auto fam : {deis::timestep_family::ddim, deis::timestep_family::euler, deis::timestep_family::multistep})
        for (auto sp : {deis::timestep_spacing::linspace, deis::timestep_spacing::leading,
                        deis::timestep_spacing::trailing})
            for (int offset : {0, 1})
                for (int steps = 1; steps <= 1000; ++steps) {
                    // the flaws of diffusers' own lists (README 2.4) are refused, nothing else
                    const bool ms = fam == deis::timestep_family::multistep;
                    const bool flawed = sp != deis::timestep_spacing::trailing &&
                                        ((steps == 1000 && (ms || (offset == 1 && sp == deis::timestep_spacing::leading))) ||
                                         (ms && steps == 999 && offset == 1 && sp == deis::timestep_spacing::leading));
                    CAPTURE(int(fam), int(sp), offset, steps);
                    if (flawed) {
                        REQUIRE_THROWS(deis::discrete_grid(sd, sp, fam, steps, offset));
                        continue;
                    }
                    const std::vector<double> g = deis::discrete_grid(sd, sp, fam, steps, offset);
                    // check_grid already refuses a repeated time; one call per timestep
                    REQUIRE(g.size() == std::size_t(steps) + 1 - (g.back() == sd.time_of_timestep(0.0) ? 1 : 0));
                    for (std::size_t i = 1; i < g.size(); ++i) REQUIRE(g[i] < g[i - 1]);
                }
}

TEST_CASE("discrete_grid: diffusers' trailing lists with an extra -1 are trimmed", "[diffusers]") {
    const deis::vp_discrete sd = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    for (int steps : {61, 103, 121, 998}) {
        const std::vector<double> raw =
            deis::diffusers_timesteps(deis::timestep_spacing::trailing, deis::timestep_family::ddim, steps);
        REQUIRE(raw.size() == std::size_t(steps) + 1);
        REQUIRE(raw.back() == -1.0);
        const std::vector<double> g =
            deis::discrete_grid(sd, deis::timestep_spacing::trailing, deis::timestep_family::ddim, steps);
        REQUIRE(g.size() == std::size_t(steps) + 1);
        REQUIRE(sd.timestep(g.front()) == Approx(999.0).margin(1e-9));
    }
}

TEST_CASE("diffusers: SD 1.5 and SDXL configs give diffusers' sequences at 10 20 50 steps and every spacing",
          "[diffusers]") {
    const text_table t = read_text("diffusers/timesteps.csv");
    std::map<std::string, std::vector<double>> rows;
    for (const auto& row : t.rows)
        rows[row[t.col("scheduler")] + "," + row[t.col("timestep_spacing")] + "," + row[t.col("steps_offset")] +
             "," + row[t.col("num_inference_steps")]] = numbers(row[t.col("timesteps")]);
    for (const std::string model : {"stable-diffusion-v1-5", "stable-diffusion-xl-base-1.0"}) {
        nlohmann::json j = nlohmann::json::parse(read_file(config_path(model)));
        const bool sdxl = model == "stable-diffusion-xl-base-1.0";
        for (const std::string spacing : {"", "linspace", "leading", "trailing"}) {
            if (!spacing.empty()) j["timestep_spacing"] = spacing;
            const deis::scheduler_config c = deis::parse_scheduler_config(j.dump());
            REQUIRE(c.discrete());
            REQUIRE(c.output == deis::model_output::eps);
            REQUIRE(c.steps_offset == 1);
            // SD 1.5 has no timestep_spacing key: PNDM's default, leading
            const std::string sp = spacing.empty() ? "leading" : spacing;
            REQUIRE(c.spacing == spacing_of(sp));
            for (int steps : {10, 20, 50}) {
                CAPTURE(model, sp, steps);
                const std::vector<double> grid = c.grid(steps);
                const std::vector<double> taus = grid_timesteps(c, grid);
                const std::string key = std::string(sdxl ? "EulerDiscrete" : "PNDM") + "," + sp + ",1," +
                                        std::to_string(steps);
                REQUIRE(rows.count(key) == 1);
                std::vector<double> expected = rows[key];
                if (!sdxl) {
                    // PNDM repeats its second timestep (a warm-up call at the same time): the
                    // grid has each time once
                    REQUIRE(expected[1] == expected[2]);
                    expected.erase(expected.begin() + 1);
                    REQUIRE(expected == rows["DDIM," + sp + ",1," + std::to_string(steps)]);
                    // linspace ends at timestep 0, which is SD 1.5's end point (set_alpha_to_one
                    // false): no call there, the grid ends at it
                    if (sp == "linspace") {
                        REQUIRE(expected.back() == 0.0);
                        expected.pop_back();
                    }
                }
                if (sdxl && sp == "linspace") {
                    // Euler's linspace timesteps are fractional float32 values; the network
                    // is given them unrounded (to 1e-9, the round trip through t)
                    REQUIRE(taus.size() == expected.size());
                    for (std::size_t i = 0; i < taus.size(); ++i) REQUIRE(std::abs(taus[i] - expected[i]) < 1e-9);
                } else {
                    REQUIRE(taus == expected);
                }
                // SD 1.5 (PNDM, set_alpha_to_one false) ends at tau = 0, sigma(0); SDXL (Euler) at 0
                const auto& vp = std::get<deis::vp_discrete>(c.schedule);
                REQUIRE(grid.back() == (sdxl ? 0.0 : vp.time_of_timestep(0.0)));
            }
        }
    }
}

TEST_CASE("diffusers: the training tables of the configs' beta schedules", "[diffusers]") {
    const text_table t = read_text("diffusers/training_sigmas.csv");
    REQUIRE(t.rows.size() == 1000);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"linear", R"({"_class_name": "DDIMScheduler", "beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02})"},
        {"scaled_linear", read_file(config_path("stable-diffusion-xl-base-1.0"))},
        {"squaredcos_cap_v2", R"({"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2"})"},
        {"scaled_linear_zsnr",
         R"({"_class_name": "DDIMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
             "beta_end": 0.012, "rescale_betas_zero_snr": true, "prediction_type": "v_prediction",
             "timestep_spacing": "trailing"})"}};
    for (const auto& [name, text] : cases) {
        CAPTURE(name);
        const deis::scheduler_config c = deis::parse_scheduler_config(text);
        const auto& vp = std::get<deis::vp_discrete>(c.schedule);
        const std::size_t col = t.col("sigma_" + name);
        for (std::size_t i = 0; i < t.rows.size(); ++i) {
            const double expected = std::stod(t.rows[i][col]);
            if (name == "scaled_linear_zsnr" && i == 999) {
                // zero SNR: sigma is infinite in the table; diffusers' Euler and DPM-Solver (and
                // deis) put alphabar = 2^-24 there, sigma = sqrt(2^24 - 1)
                REQUIRE(vp.rho(vp.time_of_timestep(999.0)) == Approx(std::sqrt(16777215.0)).epsilon(1e-12));
                continue;
            }
            CAPTURE(i);
            // 1e-11 relative: the betas are made by two different float64 formulas (numpy's
            // linspace, i step + a, and a + (b - a) i/(n - 1)), and the product of 1000 factors is
            // accumulated as a sum of log1p here, a product there: ~1000 roundings of 1e-16
            REQUIRE(vp.rho(vp.time_of_timestep(double(i))) == Approx(expected).epsilon(1e-11));
        }
    }
}

TEST_CASE("diffusers: SD3 and Flux configs give diffusers' flow sigmas", "[diffusers]") {
    const text_table t = read_text("diffusers/flow_sigmas.csv");
    const deis::scheduler_config sd3 = deis::load_scheduler_config(config_path("stable-diffusion-3-medium"));
    const deis::scheduler_config flux = deis::load_scheduler_config(config_path("flux.1-dev"));
    REQUIRE_FALSE(sd3.discrete());
    REQUIRE(sd3.output == deis::model_output::velocity);
    REQUIRE(flux.dynamic_shifting);
    REQUIRE_THROWS_WITH(flux.grid(10), deis_test::contains("image_seq_len"));
    int checked = 0;
    for (const auto& row : t.rows) {
        const std::string model = row[t.col("model")];
        const int steps = std::stoi(row[t.col("num_inference_steps")]);
        const std::vector<double> expected = numbers(row[t.col("sigmas_f64")]);
        const std::vector<double> ts_f32 = numbers(row[t.col("timesteps_f32")]);
        CAPTURE(model, steps);
        std::vector<double> grid;
        if (model == "SD3-medium") {
            grid = sd3.grid(steps);
        } else {
            const double seq = std::stod(row[t.col("image_seq_len")]);
            REQUIRE(flux.mu(seq) == Approx(std::stod(row[t.col("mu")])).epsilon(1e-14));
            grid = flux.grid(steps, seq);
        }
        REQUIRE(grid.size() == expected.size() + 1);
        REQUIRE(grid.back() == 0.0);
        const deis::timestep_map map = (model == "SD3-medium" ? sd3 : flux).timesteps();
        for (std::size_t i = 0; i < expected.size(); ++i) {
            // 1e-14: the same float64 formulas, written with one rearrangement of the shift
            REQUIRE(grid[i] == Approx(expected[i]).epsilon(1e-14));
            // the transformer's timestep 1000 sigma, against diffusers' float32 value: 1e-4
            // absolute covers float32's 6e-5 spacing at 1000
            REQUIRE(std::abs(map(grid[i]) - ts_f32[i]) < 1e-4);
        }
        ++checked;
    }
    REQUIRE(checked == 24);
}

TEST_CASE("diffusers: Karras levels on the SD table", "[diffusers]") {
    const text_table t = read_text("diffusers/karras.csv");
    nlohmann::json j = nlohmann::json::parse(read_file(config_path("stable-diffusion-xl-base-1.0")));
    j["use_karras_sigmas"] = true;
    int off_by_one = 0, checked = 0;
    double max_fraction_diff = 0.0;
    for (const auto& row : t.rows) {
        const std::string sch = row[t.col("scheduler")];
        const int steps = std::stoi(row[t.col("num_inference_steps")]);
        nlohmann::json k = j;
        if (sch == "DPMSolverMultistep") {
            k["_class_name"] = "DPMSolverMultistepScheduler";
            k.erase("interpolation_type");
        } else {
            k["timestep_spacing"] = row[t.col("timestep_spacing")];
            k["steps_offset"] = std::stoi(row[t.col("steps_offset")]);
        }
        const deis::scheduler_config c = deis::parse_scheduler_config(k.dump());
        const auto& vp = std::get<deis::vp_discrete>(c.schedule);
        const std::vector<double> sig = numbers(row[t.col("sigmas")]);
        const std::vector<double> used = numbers(row[t.col("timesteps_used")]);
        const std::vector<double> grid = c.grid(steps);
        CAPTURE(sch, row[t.col("timestep_spacing")], steps);
        REQUIRE(grid.size() == sig.size() + 1);
        REQUIRE(grid.back() == 0.0);
        for (std::size_t i = 0; i < sig.size(); ++i) {
            // the levels themselves: 1e-12 relative, the round trip through t_from_rho
            REQUIRE(vp.rho(grid[i]) == Approx(sig[i]).epsilon(1e-12));
            const double tau = c.timesteps()(grid[i]);
            if (sch == "DPMSolverMultistep") {
                // diffusers maps a level to a timestep linearly in log sigma, deis linearly in log
                // alpha: within one table interval both give the same rounded timestep except
                // next to a half, where they may differ by one
                REQUIRE(std::abs(tau - used[i]) <= 1.0);
                off_by_one += tau != used[i];
            } else {
                // Euler passes the fraction. Both maps are exact at the integers and monotone
                // in between; they differ inside an interval, by at most 0.086 timesteps on these
                // grids (measured): 0.1 timesteps
                REQUIRE(std::abs(tau - used[i]) < 0.1);
                max_fraction_diff = std::max(max_fraction_diff, std::abs(tau - used[i]));
            }
        }
        ++checked;
    }
    REQUIRE(checked == 12);
    WARN("Karras timesteps of DPM-Solver off by one from diffusers': " << off_by_one
                                                                        << "; Euler's fractional ones differ by at most "
                                                                        << max_fraction_diff);
    REQUIRE(off_by_one <= 2);
}

TEST_CASE("diffusers: img2img starts and step counts of img2img.csv", "[diffusers][img2img]") {
    const text_table t = read_text("diffusers/img2img.csv");
    const deis::vp_discrete sd = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    const deis::scheduler_config sd3 = deis::load_scheduler_config(config_path("stable-diffusion-3-medium"));
    for (const auto& row : t.rows) {
        const int steps = std::stoi(row[t.col("num_inference_steps")]);
        const double strength = std::stod(row[t.col("strength")]);
        CAPTURE(steps, strength);
        const int sd_run = std::stoi(row[t.col("sd_steps_run")]);
        const std::vector<double> ddim = deis::discrete_grid(sd, deis::timestep_spacing::leading,
                                                             deis::timestep_family::ddim, steps, 1);
        const std::vector<double> dpm = deis::discrete_grid(sd, deis::timestep_spacing::linspace,
                                                            deis::timestep_family::multistep, steps, 0);
        const std::vector<double> g = deis::img2img_grid(ddim, strength);
        REQUIRE(int(g.size()) - 1 == sd_run);
        REQUIRE(int(ddim.size()) - int(g.size()) == std::stoi(row[t.col("sd_t_start")]));
        REQUIRE(deis::discrete_timesteps(sd)(g.front()) == std::stod(row[t.col("first_timestep_ddim_leading_offset1")]));
        REQUIRE(deis::discrete_timesteps(sd)(deis::img2img_grid(dpm, strength).front()) ==
                std::stod(row[t.col("first_timestep_dpm_linspace")]));
        // no duplicated first time: the tail of a strictly decreasing grid
        for (std::size_t i = 1; i < g.size(); ++i) REQUIRE(g[i] < g[i - 1]);
        const std::vector<double> f = deis::img2img_grid(sd3.grid(steps), strength, deis::strength_rule::flow);
        REQUIRE(int(f.size()) - 1 == std::stoi(row[t.col("flow_steps_run")]));
        // float32 value in the table: 1e-7 relative
        REQUIRE(f.front() == Approx(std::stod(row[t.col("first_sigma_sd3")])).epsilon(1e-7));
    }
    // strength 0.05 with 10 steps keeps no step under the SD rule
    const std::vector<double> g10 = deis::discrete_grid(sd, deis::timestep_spacing::leading,
                                                        deis::timestep_family::ddim, 10, 1);
    REQUIRE_THROWS_WITH(deis::img2img_grid(g10, 0.05), deis_test::contains("strength = 0.05"));
    REQUIRE_THROWS_WITH(deis::img2img_grid(g10, 0.0), deis_test::contains("strength"));
    REQUIRE_THROWS_WITH(deis::img2img_grid(g10, 1.5), deis_test::contains("strength"));
}

TEST_CASE("noise_data: x = alpha x0 + sigma eps", "[diffusers][img2img]") {
    const deis::vp_discrete sd = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    const Eigen::MatrixXd x0 = Eigen::MatrixXd::Random(3, 4), eps = Eigen::MatrixXd::Random(3, 4);
    Eigen::MatrixXd out(3, 4);
    const double t = sd.time_of_timestep(751.0);
    deis::noise_data(sd, t, x0, eps, out);
    const Eigen::MatrixXd expected = sd.alpha(t) * x0 + sd.sigma(t) * eps;
    REQUIRE((out - expected).cwiseAbs().maxCoeff() < 1e-15);  // one fused pass: a rounding or two
    Eigen::MatrixXd wrong(2, 4);
    REQUIRE_THROWS_WITH(deis::noise_data(sd, t, x0, wrong, out), deis_test::contains("eps.shape"));
    REQUIRE_THROWS_WITH(deis::noise_data(sd, 2.0, x0, eps, out), deis_test::contains("t = 2"));
}

namespace {

// A network of diffusers' kind: told the training timestep (or 1000 sigma), it returns the
// exact model output of a single Gaussian, so a run can be checked against the closed form.
template <class Schedule>
struct timestep_model {
    deis::gmm_model<Schedule> model;
    std::function<double(double)> time_of;  // timestep -> t
    mutable std::vector<double> seen;
    void operator()(const deis::state<double>& x, double tau, deis::state<double>& out) const {
        seen.push_back(tau);
        model(x, time_of(tau), out);
    }
};

double run_config(const deis::scheduler_config& c, int steps, std::vector<double>* taus = nullptr) {
    const Eigen::VectorXd mu = (Eigen::VectorXd(2) << 0.5, -1.0).finished();
    const Eigen::VectorXd sd = (Eigen::VectorXd(2) << 0.3, 0.8).finished();
    const deis::gaussian_mixture mix(Eigen::VectorXd::Ones(1), mu, sd);
    const std::vector<double> grid = c.grid(steps, 4096.0);
    Eigen::MatrixXd xT = Eigen::MatrixXd::Random(2, 16);
    return std::visit(
        [&](const auto& sch) {
            using S = std::decay_t<decltype(sch)>;
            const deis::timestep_map map = c.timesteps();
            timestep_model<S> net{deis::gmm_model<S>(mix, sch, c.output),
                                  [map](double tau) { return (tau - map.offset) / map.scale; }, {}};
            deis::multistep_options o;
            o.method = deis::multistep_method::tab;
            o.order = 2;
            o.predict = deis::prediction::data;  // starts at pure noise on flow matching
            o.output = c.output;
            const deis::multistep_solver solver(sch, grid, o);
            Eigen::MatrixXd x = sch.sigma(grid.front()) * xT;
            if constexpr (std::is_same_v<S, deis::vp_discrete>) x = xT;  // VP: x_T ~ N(0, I) up to alpha mu
            const Eigen::MatrixXd start = x;
            deis::timestep_network<timestep_model<S>> tn(net, map);
            const deis::sample_result r = solver.sample(tn, x);
            REQUIRE(r.ok());
            REQUIRE(r.nfe == solver.nfe());
            REQUIRE(x.allFinite());
            if (taus) *taus = net.seen;
            const Eigen::MatrixXd exact = deis::gaussian_flow(sch, mu, sd, start, grid.front(), grid.back());
            return (x - exact).cwiseAbs().maxCoeff();
        },
        c.schedule);
}

}  // namespace

TEST_CASE("diffusers: each model's config builds a run that completes", "[diffusers]") {
    for (const std::string model : {"stable-diffusion-v1-5", "stable-diffusion-2-1", "stable-diffusion-xl-base-1.0",
                                    "stable-diffusion-3-medium", "flux.1-dev"}) {
        CAPTURE(model);
        const deis::scheduler_config c = deis::load_scheduler_config(config_path(model));
        if (model == "stable-diffusion-2-1") REQUIRE(c.output == deis::model_output::v);
        std::vector<double> taus;
        const double e20 = run_config(c, 20, &taus);
        const double e50 = run_config(c, 50);
        WARN(model << ": max error against the exact flow of a Gaussian, 20 steps " << e20 << ", 50 steps " << e50);
        REQUIRE(taus.size() == 20u);  // one call per timestep
        if (c.discrete())
            for (double tau : taus) REQUIRE(tau == std::floor(tau));  // integer training timesteps
        // second-order tAB on these grids: 50 steps well below 20 steps, and small
        REQUIRE(e50 < e20);
        REQUIRE(e50 < 2e-2);
    }
}

TEST_CASE("diffusers: bad configs are refused naming the key", "[diffusers][bad_input]") {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {R"({"num_train_timesteps": 1000})", "_class_name"},
        {R"({"_class_name": "LCMScheduler"})", "_class_name"},
        {R"({"_class_name": 3})", "_class_name"},
        {R"({"_class_name": "DDIMScheduler", "beta_schedule": "sigmoid"})", "beta_schedule"},
        {R"({"_class_name": "DDIMScheduler", "beta_start": -1})", "beta_start"},
        {R"({"_class_name": "DDIMScheduler", "beta_end": "big"})", "beta_end"},
        {R"({"_class_name": "DDIMScheduler", "num_train_timesteps": 1})", "num_train_timesteps"},
        {R"({"_class_name": "DDIMScheduler", "num_train_timesteps": 10.5})", "num_train_timesteps"},
        {R"({"_class_name": "DDIMScheduler", "prediction_type": "noise"})", "prediction_type"},
        {R"({"_class_name": "DDIMScheduler", "prediction_type": "flow_prediction"})", "prediction_type"},
        {R"({"_class_name": "DDIMScheduler", "timestep_spacing": "uniform"})", "timestep_spacing"},
        {R"({"_class_name": "DDIMScheduler", "steps_offset": -1})", "steps_offset"},
        {R"({"_class_name": "DDIMScheduler", "clip_sample": true})", "clip_sample"},
        {R"({"_class_name": "DDIMScheduler", "thresholding": true})", "thresholding"},
        {R"({"_class_name": "DDIMScheduler", "trained_betas": [0.1, 0.2]})", "trained_betas"},
        {R"({"_class_name": "DDIMScheduler", "num_train_timesteps": 2, "trained_betas": [0.1, 1.5]})", "trained_betas"},
        {R"({"_class_name": "DDIMScheduler", "rescale_betas_zero_snr": "yes"})", "rescale_betas_zero_snr"},
        {R"({"_class_name": "DDIMScheduler", "unknown_key": 1})", "unknown_key"},
        {R"({"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true, "use_beta_sigmas": true})",
         "use_karras_sigmas"},
        {R"({"_class_name": "EulerDiscreteScheduler", "interpolation_type": "log_linear"})", "interpolation_type"},
        {R"({"_class_name": "EulerDiscreteScheduler", "timestep_type": "continuous"})", "timestep_type"},
        {R"({"_class_name": "EulerDiscreteScheduler", "final_sigmas_type": "max"})", "final_sigmas_type"},
        {R"({"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++"})", "algorithm_type"},
        {R"({"_class_name": "DPMSolverMultistepScheduler", "use_flow_sigmas": true})", "use_flow_sigmas"},
        {R"({"_class_name": "DPMSolverMultistepScheduler", "use_dynamic_shifting": true})", "use_dynamic_shifting"},
        {R"({"_class_name": "DDIMInverseScheduler", "timestep_spacing": "linspace"})", "timestep_spacing"},
        {R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 0})", "shift"},
        {R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "prediction_type": "epsilon"})", "prediction_type"},
        {R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "use_karras_sigmas": true})", "use_karras_sigmas"},
        {R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "stochastic_sampling": true})", "stochastic_sampling"},
        {R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "time_shift_type": "cubic"})", "time_shift_type"},
        {R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift_terminal": 0.1})", "shift_terminal"},
        {R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "max_image_seq_len": 256})", "max_image_seq_len"},
    };
    for (const auto& [text, key] : bad) {
        CAPTURE(text);
        REQUIRE_THROWS_WITH(deis::parse_scheduler_config(text), deis_test::contains(key + " = "));
    }
    for (const std::string text : {"", "[1, 2]", "{\"_class_name\": ", "42", "{} {}", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]"})
        REQUIRE_THROWS_WITH(deis::parse_scheduler_config(text), deis_test::contains("deis::scheduler_config"));
    REQUIRE_THROWS_WITH(deis::load_scheduler_config("/nonexistent/scheduler_config.json"),
                        deis_test::contains("/nonexistent/scheduler_config.json"));
}

TEST_CASE("diffusers: load_scheduler_config reads only a regular file of at most 16 MiB", "[diffusers]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("deis-diffusers-load-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    struct remove_dir {
        fs::path p;
        ~remove_dir() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } const cleanup{dir};

    // a directory, a device: refused before anything is read, naming the path
    REQUIRE_THROWS_WITH(deis::load_scheduler_config(dir.string()),
                        deis_test::contains("'" + dir.string() + "' is not a regular file"));
    if (fs::exists("/dev/zero"))
        REQUIRE_THROWS_WITH(deis::load_scheduler_config("/dev/zero"),
                            deis_test::contains("'/dev/zero' is not a regular file"));

    // a config; the same padded with spaces to exactly 16 MiB, which is read; one byte more
    // (a sparse extension: nothing is written), which is refused before it is read
    const fs::path big = dir / "scheduler_config.json";
    const std::string text = R"({"_class_name": "DDIMScheduler"})";
    std::ofstream(big, std::ios::binary) << text;
    CHECK(deis::load_scheduler_config(big.string()).class_name == "DDIMScheduler");
    std::ofstream(big, std::ios::binary) << text << std::string((std::size_t(16) << 20) - text.size(), ' ');
    REQUIRE(fs::file_size(big) == std::uintmax_t(16) << 20);
    CHECK(deis::load_scheduler_config(big.string()).class_name == "DDIMScheduler");
    fs::resize_file(big, (std::uintmax_t(16) << 20) + 1);
    REQUIRE_THROWS_WITH(deis::load_scheduler_config(big.string()),
                        deis_test::contains("'" + big.string() + "' is larger than 16 MiB (16777217 bytes)"));
}

TEST_CASE("diffusers: keys that leave the ODE alone are accepted", "[diffusers]") {
    nlohmann::json j = {{"_class_name", "DDIMScheduler"}};
    const deis::scheduler_config plain = deis::parse_scheduler_config(j.dump());
    for (const std::string& key : deis::scheduler_config::ignored_keys()) {
        if (key == "lambda_min_clipped" || key == "shift_terminal") continue;  // accepted as null only
        nlohmann::json k = j;
        // a harmless value of the right type for each
        if (key == "algorithm_type") k[key] = "dpmsolver++";
        else if (key == "solver_type") k[key] = "midpoint";
        else if (key == "variance_type") k[key] = "fixed_small";
        else if (key == "interpolation_type") k[key] = "linear";
        else if (key == "timestep_type") k[key] = "discrete";
        else if (key == "_diffusers_version" || key == "_name_or_path") k[key] = "0.30.0";
        else if (key == "_use_default_values") k[key] = nlohmann::json::array({"clip_sample"});
        else if (key == "solver_order") k[key] = 2;
        else if (key == "clip_sample_range" || key == "dynamic_thresholding_ratio" || key == "sample_max_value" ||
                 key == "solver_p")
            k[key] = 1.0;
        else k[key] = false;
        CAPTURE(key);
        const deis::scheduler_config c = deis::parse_scheduler_config(k.dump());
        REQUIRE(c.grid(10) == plain.grid(10));
    }
    REQUIRE(deis::parse_scheduler_config(R"({"_class_name": "DDIMScheduler", "lambda_min_clipped": null})").grid(10) ==
            plain.grid(10));
}

TEST_CASE("diffusers: exponential and beta levels and flow sigmas of the multistep classes", "[diffusers]") {
    const deis::scheduler_config e = deis::parse_scheduler_config(
        R"({"_class_name": "DPMSolverMultistepScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
            "beta_end": 0.012, "use_exponential_sigmas": true})");
    const auto& vp = std::get<deis::vp_discrete>(e.schedule);
    const std::vector<double> g = e.grid(10);
    REQUIRE(g.size() == 11);
    // log-uniform levels between the table's ends: constant ratio to 1e-12
    const double ratio = vp.rho(g[1]) / vp.rho(g[0]);
    for (int i = 1; i < 10; ++i) REQUIRE(vp.rho(g[std::size_t(i)]) / vp.rho(g[std::size_t(i - 1)]) == Approx(ratio).epsilon(1e-12));
    REQUIRE(vp.rho(g[9]) == Approx(0.029167158151720367).epsilon(1e-12));

    const deis::scheduler_config b = deis::parse_scheduler_config(
        R"({"_class_name": "DPMSolverMultistepScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
            "beta_end": 0.012, "use_beta_sigmas": true, "final_sigmas_type": "sigma_min"})");
    const std::vector<double> gb = b.grid(5);
    // Beta(0.6, 0.6) is symmetric: ppf(1/2) = 1/2, so the middle level is the midpoint; the
    // last level is sigma_min, which is the end point itself (one call fewer)
    REQUIRE(gb.size() == 5);
    const double smax = vp.rho(1.0), smin = 0.029167158151720367;
    REQUIRE(vp.rho(gb[2]) == Approx(0.5 * (smax + smin)).epsilon(1e-12));
    REQUIRE(gb.back() == vp.time_of_timestep(0.0));

    const deis::scheduler_config f = deis::parse_scheduler_config(
        R"({"_class_name": "UniPCMultistepScheduler", "use_flow_sigmas": true, "prediction_type": "flow_prediction",
            "flow_shift": 3.0})");
    REQUIRE(f.output == deis::model_output::velocity);
    const std::vector<double> gf = f.grid(10);
    // first sigma: k (1 - 1/n)/(1 + (k - 1)(1 - 1/n)) < 1, k = 3
    REQUIRE(gf.front() == Approx(3.0 * 0.999 / (1.0 + 2.0 * 0.999)).epsilon(1e-15));
    REQUIRE(gf.back() == 0.0);
    REQUIRE(gf.size() == 11);
}
