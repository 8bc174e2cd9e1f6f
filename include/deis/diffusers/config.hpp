// deis: the reader of diffusers' scheduler_config.json: what a model's scheduler config says
// about the ODE (the schedule, the model output, the grid of an N-step run, the timestep the
// network is given).
//
// Dependencies: nlohmann-json (3.x) for the reader, Boost.Math for the Beta quantile of
// use_beta_sigmas. Everything here is thread-safe in the usual sense: const members and free
// functions may be called from several threads at once.
#pragma once

#include <algorithm>
#include <boost/math/special_functions/beta.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ios>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "deis/detail/config_keys.hpp"
#include "deis/detail/config_reader.hpp"
#include "deis/detail/error.hpp"
#include "deis/diffusers/timesteps.hpp"
#include "deis/grid.hpp"
#include "deis/model_output.hpp"
#include "deis/schedule.hpp"

namespace deis {

/// Noise levels a config may ask for instead of the spaced timesteps.
enum class config_levels { none, karras, exponential, beta };

/// What a diffusers `scheduler_config.json` says about the ODE: the schedule, the model
/// output, how to make an N-step grid and the timestep the network is given. Made by
/// parse_scheduler_config / load_scheduler_config; a plain immutable value afterwards.
///
/// Keys read (every key listed in docs/deis-sample.md, "Models from diffusers"):
/// `_class_name` (required; decides the defaults of the missing keys as diffusers does),
/// num_train_timesteps, beta_start, beta_end, beta_schedule (linear, scaled_linear,
/// squaredcos_cap_v2), trained_betas, rescale_betas_zero_snr (the last entry becomes 2^-24,
/// as diffusers' Euler and DPM-Solver do), prediction_type (epsilon, sample, v_prediction,
/// flow_prediction), timestep_spacing, steps_offset, use_karras_sigmas,
/// use_exponential_sigmas, use_beta_sigmas, use_lu_lambdas (the exponential levels),
/// sigma_min, sigma_max, use_flow_sigmas, flow_shift, shift, use_dynamic_shifting,
/// base_shift, max_shift, base_image_seq_len, max_image_seq_len, time_shift_type,
/// final_sigmas_type, set_alpha_to_one. Keys accepted without effect on the ODE: see
/// ignored_keys(). Any other key, a value of the wrong type, or a value deis cannot honour
/// (clip_sample or thresholding true, an SDE algorithm_type, ...) is refused.
struct scheduler_config {
    std::string class_name;
    /// vp_discrete for the discrete-timestep classes, flow_matching for the FlowMatch
    /// classes and for use_flow_sigmas.
    std::variant<vp_discrete, flow_matching> schedule;
    model_output output = model_output::eps;
    timestep_spacing spacing = timestep_spacing::linspace;
    timestep_family family = timestep_family::ddim;
    int train_steps = 1000;
    int steps_offset = 0;
    config_levels levels = config_levels::none;
    final_sigma end = final_sigma::zero;
    double sigma_min = 0.0, sigma_max = 0.0;  ///< bounds of the noise levels; 0: diffusers' choice
    // flow matching
    bool flow_sigmas = false;  ///< use_flow_sigmas on a multistep class
    double shift = 1.0;        ///< static shift (shift, or flow_shift)
    bool dynamic_shifting = false;
    bool linear_time_shift = false;  ///< time_shift_type "linear"
    double base_shift = 0.5, max_shift = 1.15, base_seq_len = 256.0, max_seq_len = 4096.0;

    /// Whether the network takes an integer training timestep (vp_discrete).
    bool discrete() const { return std::holds_alternative<vp_discrete>(schedule); }

    /// The timestep the network is given at time t (see timestep_network): t n - 1 rounded
    /// for vp_discrete (not rounded for the euler family), n t for flow matching.
    timestep_map timesteps() const {
        if (discrete()) return {double(train_steps), -1.0, family != timestep_family::euler};
        return {double(train_steps), 0.0, false};
    }

    /// mu of dynamic shifting for an image of image_seq_len tokens (Flux: (H/16) (W/16)):
    /// the line through (base_image_seq_len, base_shift) and (max_image_seq_len, max_shift),
    /// not clamped.
    double mu(double image_seq_len) const {
        return base_shift + (max_shift - base_shift) / (max_seq_len - base_seq_len) * (image_seq_len - base_seq_len);
    }

    /// The grid of an N-step run (N network calls, N + 1 times, descending), as the config's
    /// class and the pipelines of its model make it:
    /// - discrete classes: discrete_grid(spacing, family, steps_offset, end), or with noise
    ///   levels (Karras, exponential, beta) N levels between sigma_max and sigma_min (the
    ///   table's ends; for the euler family the noise at the first and last spaced timestep;
    ///   or the config's sigma_min/sigma_max), then the end point;
    /// - FlowMatch classes: sigmas t = linspace(1, shift(1/n), N) shifted (SD3; the ends rounded
///   to float32 as diffusers' training table holds them), or with
    ///   dynamic shifting the Flux pipeline's linspace(1, 1/N, N) under the shift e^mu,
    ///   mu = mu(image_seq_len), then 0;
    /// - use_flow_sigmas: t = shift(1 - linspace(1, 1/n, N + 1)) reversed, the last dropped, then 0.
    /// A grid whose first time is pure noise (flow matching at t = 1) needs a solver that
    /// starts there (data prediction, see multistep.hpp).
    /// Throws std::invalid_argument naming `steps` (1..n for discrete classes, 1..10^6
    /// otherwise) or `image_seq_len` (required, finite and > 0, with dynamic shifting).
    std::vector<double> grid(int steps, double image_seq_len = std::numeric_limits<double>::quiet_NaN()) const {
        const char* where = "scheduler_config::grid";
        if (steps < 1) detail::fail(where, "steps", steps, "must be >= 1");
        if (const auto* vp = std::get_if<vp_discrete>(&schedule)) {
            if (steps > train_steps)
                detail::fail(where, "steps", steps, "must be <= num_train_timesteps = " + std::to_string(train_steps));
            if (levels == config_levels::none) return discrete_grid(*vp, spacing, family, steps, steps_offset, end);
            return level_grid(*vp, steps);
        }
        if (steps > 1000000) detail::fail(where, "steps", steps, "must be <= 1000000");
        double k = shift;
        bool exp_shift = false;
        if (dynamic_shifting) {
            if (!(std::isfinite(image_seq_len) && image_seq_len > 0.0))
                detail::fail(where, "image_seq_len", image_seq_len,
                             "must be given (finite, > 0) with use_dynamic_shifting");
            const double m = mu(image_seq_len);
            k = linear_time_shift ? m : std::exp(m);
            exp_shift = true;
            if (!(std::isfinite(k) && k > 0.0))
                detail::fail(where, "image_seq_len", image_seq_len, "gives a shift " + detail::format_double(k) + " that is not > 0");
        }
        // shift(s) = k s/(1 + (k - 1) s) = k/(k + (1/s - 1)): both the static and the dynamic
        // (exponential, k = e^mu; linear, k = mu) shifts
        auto sh = [k](double s) { return s == 0.0 ? 0.0 : k / (k + (1.0 / s - 1.0)); };
        const double n = double(train_steps);
        std::vector<double> ts;
        if (flow_sigmas) {
            std::vector<double> a = detail::np_linspace(1.0, 1.0 / n, steps + 1);
            for (double& v : a) v = sh(1.0 - v);
            std::reverse(a.begin(), a.end());
            a.pop_back();
            ts = std::move(a);
        } else if (dynamic_shifting && exp_shift) {
            ts = detail::np_linspace(1.0, 1.0 / double(steps), steps);
            for (double& v : ts) v = sh(v);
        } else {
            // the scheduler's training table is float32: its ends are float32 values
            const double smin = double(static_cast<float>(sh(1.0 / n))), smax = double(static_cast<float>(sh(1.0)));
            ts = detail::np_linspace(smax * n, smin * n, steps);
            for (double& v : ts) v = sh(v / n);
        }
        ts.push_back(0.0);
        return check_grid(std::get<flow_matching>(schedule), std::move(ts));
    }

    /// The keys accepted without effect on the probability-flow ODE (or on deis's run): the
    /// solver's own settings in diffusers, bookkeeping, and switches accepted only at the
    /// value that changes nothing (clip_sample and thresholding false, ...).
    static const std::vector<std::string>& ignored_keys() { return detail::ignored_config_keys(); }

private:
    std::vector<double> level_grid(const vp_discrete& vp, int steps) const {
        double smax = sigma_max, smin = sigma_min;
        if (smax == 0.0 || smin == 0.0) {
            double hi = vp.rho(vp.time_of_timestep(double(train_steps - 1)));
            double lo = vp.rho(vp.time_of_timestep(0.0));
            if (family == timestep_family::euler) {
                const std::vector<double> taus = diffusers_timesteps(spacing, family, steps, train_steps, steps_offset);
                hi = vp.rho(vp.time_of_timestep(std::min(std::max(taus.front(), 0.0), double(train_steps - 1))));
                lo = vp.rho(vp.time_of_timestep(std::min(std::max(taus.back(), 0.0), double(train_steps - 1))));
            }
            if (smax == 0.0) smax = hi;
            if (smin == 0.0) smin = lo;
        }
        std::vector<double> lv;
        if (steps == 1) {
            lv = {smax};
        } else if (levels == config_levels::karras) {
            lv = sigma_levels(noise_levels::karras, steps - 1, smax, smin);
        } else if (levels == config_levels::exponential) {
            lv = sigma_levels(noise_levels::exponential, steps - 1, smax, smin);
        } else {
            // Beta(0.6, 0.6) quantiles (Lee et al. 2024): smin + ppf(1 - u) (smax - smin)
            const std::vector<double> u = detail::np_linspace(0.0, 1.0, steps);
            for (double ui : u) lv.push_back(smin + boost::math::ibeta_inv(0.6, 0.6, 1.0 - ui) * (smax - smin));
        }
        const double top = vp.rho(vp.t_max());
        std::vector<double> ts;
        for (double sg : lv) ts.push_back(sg >= top ? vp.t_max() : vp.t_from_rho(sg));
        const double t_end = end == final_sigma::zero ? vp.t_min() : vp.time_of_timestep(0.0);
        // a last level at the end point (sigma_min ending at sigma(0)) is the end point, up to the
        // round trip through t_from_rho
        if (ts.back() <= t_end * (1.0 + 1e-12))
            ts.back() = t_end;
        else
            ts.push_back(t_end);
        return check_grid(vp, std::move(ts));
    }
};

namespace detail {

// The key that chose the noise levels (levels != none), for messages.
inline const char* levels_key(config_levels levels) {
    return levels == config_levels::karras        ? "use_karras_sigmas"
           : levels == config_levels::exponential ? "use_exponential_sigmas"
                                                  : "use_beta_sigmas";
}

// The noise levels and the flow-matching shifts, read for every class.
inline void read_levels_and_shifts(const config_reader& r, scheduler_config& c) {
    const bool karras = r.boolean("use_karras_sigmas", false);
    const bool expo = r.boolean("use_exponential_sigmas", false) || r.boolean("use_lu_lambdas", false);
    const bool beta = r.boolean("use_beta_sigmas", false);
    if (int(karras) + int(expo) + int(beta) > 1)
        r.bad(karras ? "use_karras_sigmas" : "use_exponential_sigmas",
              "excludes the other noise-level keys (use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas)");
    c.levels = karras ? config_levels::karras : expo ? config_levels::exponential
                                               : beta ? config_levels::beta
                                                      : config_levels::none;
    c.dynamic_shifting = r.boolean("use_dynamic_shifting", false);
    c.linear_time_shift = r.one_of("time_shift_type", "exponential", {"exponential", "linear"}) == "linear";
    c.base_shift = r.number("base_shift", 0.5);
    c.max_shift = r.number("max_shift", 1.15);
    c.base_seq_len = r.number("base_image_seq_len", 256.0);
    c.max_seq_len = r.number("max_image_seq_len", 4096.0);
    if (!(c.max_seq_len != c.base_seq_len))
        r.bad("max_image_seq_len", "must differ from base_image_seq_len");
}

// A FlowMatch class: flow matching with a static or dynamic shift; the keys of the
// discrete classes are refused.
inline scheduler_config flow_class_config(const config_reader& r, scheduler_config c) {
    for (const char* k : {"beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type",
                          "timestep_spacing", "steps_offset", "rescale_betas_zero_snr", "use_flow_sigmas",
                          "flow_shift", "set_alpha_to_one", "sigma_min", "sigma_max"})
        if (r.has(k)) r.bad(k, "does not apply to " + c.class_name);
    if (c.levels != config_levels::none)
        r.bad(levels_key(c.levels), "is not supported for the flow-matching classes (false only)");
    c.shift = r.number("shift", 1.0);
    if (!(c.shift > 0.0)) r.bad("shift", "must be > 0");
    c.output = model_output::velocity;
    c.schedule = flow_matching{};
    return c;
}

// The timesteps of a discrete class: the formula, the spacing and the offset (the class
// decides the defaults of the missing keys).
inline void read_timesteps(const config_reader& r, const config_class& kind, scheduler_config& c) {
    c.family = kind.ddim_like ? timestep_family::ddim : kind.euler ? timestep_family::euler
                                                                   : timestep_family::multistep;
    const std::string spacing =
        r.one_of("timestep_spacing", kind.ddim_like ? "leading" : "linspace", {"linspace", "leading", "trailing"});
    c.spacing = spacing == "linspace" ? timestep_spacing::linspace
                : spacing == "leading" ? timestep_spacing::leading
                                       : timestep_spacing::trailing;
    if (c.class_name == "DDIMInverseScheduler" && c.spacing == timestep_spacing::linspace)
        r.bad("timestep_spacing", "must be leading or trailing for DDIMInverseScheduler");
    c.steps_offset = r.integer("steps_offset", 0, 0, c.train_steps - 1);
}

// Where a run of a discrete class ends.
inline void read_end(const config_reader& r, const config_class& kind, scheduler_config& c) {
    const std::string& cls = c.class_name;
    if (kind.ddim_like && cls != "DDPMScheduler") {
        const bool to_one = r.boolean("set_alpha_to_one", cls != "PNDMScheduler");
        c.end = to_one ? final_sigma::zero : final_sigma::sigma_min;
    } else {
        r.boolean("set_alpha_to_one", false);
        c.end = r.one_of("final_sigmas_type", "zero", {"zero", "sigma_min"}) == "zero" ? final_sigma::zero
                                                                                       : final_sigma::sigma_min;
    }
    if (kind.ddim_like && r.has("final_sigmas_type")) r.one_of("final_sigmas_type", "zero", {"zero", "sigma_min"});
}

// use_flow_sigmas on a multistep class: flow matching with the static shift flow_shift.
inline scheduler_config flow_sigmas_config(const config_reader& r, scheduler_config c) {
    for (const char* k : {"rescale_betas_zero_snr", "trained_betas"})
        if (r.has(k) && !(r.j.at(k).is_boolean() && !r.j.at(k).get<bool>())) r.bad(k, "does not apply with use_flow_sigmas");
    if (c.levels != config_levels::none)
        r.bad(levels_key(c.levels), "is not supported with use_flow_sigmas (false only)");
    c.shift = r.number("flow_shift", 1.0);
    if (!(c.shift > 0.0)) r.bad("flow_shift", "must be > 0");
    // diffusers turns mu into flow_shift = e^mu; time_shift_type does not apply
    c.linear_time_shift = false;
    c.output = model_output::velocity;
    c.schedule = flow_matching{};
    return c;
}

// The bounds of the noise levels of a discrete class (0: diffusers' choice).
inline void read_level_bounds(const config_reader& r, scheduler_config& c) {
    c.sigma_min = r.number("sigma_min", 0.0);
    c.sigma_max = r.number("sigma_max", 0.0);
    if (r.has("sigma_min") && !(c.sigma_min > 0.0)) r.bad("sigma_min", "must be > 0");
    if (r.has("sigma_max") && !(c.sigma_max > (c.sigma_min > 0.0 ? c.sigma_min : 0.0)))
        r.bad("sigma_max", "must be > 0 and greater than sigma_min");
}

}  // namespace detail

/// Reads a diffusers scheduler_config.json from its text. Throws std::invalid_argument
/// ("deis::scheduler_config: KEY = VALUE ...") naming the first key that is unknown, of the
/// wrong type, out of range or not honoured (see scheduler_config), or saying that the text
/// is not a JSON object. Limits: num_train_timesteps in 2..100000, the text at most 16 MiB,
/// nesting at most 8 levels.
/// O(size of the text + num_train_timesteps).
inline scheduler_config parse_scheduler_config(const std::string& text) {
    const nlohmann::json j = detail::parse_config_object(text);
    const detail::config_reader r{j};
    if (!j.contains("_class_name")) r.bad("_class_name", "is required (the diffusers scheduler class)");
    const std::string cls = r.string("_class_name", "");
    const detail::config_class kind = detail::read_config_class(r, cls);
    detail::check_known_keys(r);
    detail::check_ignored_values(r);

    scheduler_config c{cls, flow_matching{}};
    c.train_steps = r.integer("num_train_timesteps", 1000, 2, 100000);
    detail::read_levels_and_shifts(r, c);
    if (kind.flow) return detail::flow_class_config(r, std::move(c));
    r.require("shift", !r.has("shift"), "applies to the FlowMatch classes only (use flow_shift)");

    detail::read_timesteps(r, kind, c);
    const std::string pred =
        r.one_of("prediction_type", "epsilon", {"epsilon", "sample", "v_prediction", "flow_prediction"});
    c.flow_sigmas = r.boolean("use_flow_sigmas", false);
    if (c.flow_sigmas && c.family != timestep_family::multistep)
        r.bad("use_flow_sigmas", "applies to DPMSolverMultistep, DEISMultistep and UniPCMultistep only");
    if (c.flow_sigmas != (pred == "flow_prediction"))
        r.bad(c.flow_sigmas ? "use_flow_sigmas" : "prediction_type",
              "use_flow_sigmas true and prediction_type flow_prediction go together");
    detail::read_end(r, kind, c);
    if (c.flow_sigmas) return detail::flow_sigmas_config(r, std::move(c));

    r.number("flow_shift", 1.0);
    if (c.dynamic_shifting) r.bad("use_dynamic_shifting", "applies to flow matching (FlowMatch classes, use_flow_sigmas)");
    c.output = pred == "epsilon" ? model_output::eps : pred == "sample" ? model_output::x0 : model_output::v;
    detail::read_level_bounds(r, c);
    c.schedule = detail::read_config_table(r, c.train_steps);
    return c;
}

/// Reads a scheduler_config.json file (see parse_scheduler_config). Throws
/// std::invalid_argument naming the path when it does not exist, is not a regular file (a
/// directory, a FIFO, a device such as /dev/zero: never read), is larger than 16 MiB
/// (refused before it is read, and again if it grows while read) or cannot be read; and as
/// parse_scheduler_config for its content. Reads at most 16 MiB + 8 KiB.
inline scheduler_config load_scheduler_config(const std::string& path) {
    const std::string where = "deis::load_scheduler_config: ";
    std::error_code ec;
    const std::filesystem::file_status st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st)) throw std::invalid_argument(where + "cannot open '" + path + "'");
    if (!std::filesystem::is_regular_file(st))
        throw std::invalid_argument(where + "'" + path + "' is not a regular file");
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    const auto too_large = [&](const std::string& why) {
        return std::invalid_argument(where + "'" + path + "' is larger than 16 MiB (" + why + "): not a scheduler config");
    };
    if (!ec && size > detail::max_config_bytes) throw too_large(std::to_string(size) + " bytes");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::invalid_argument(where + "cannot open '" + path + "'");
    // in blocks, stopping one byte past the limit whatever the file has become since its
    // size was read
    std::string text;
    char block[8192];
    while (text.size() <= detail::max_config_bytes && f.read(block, sizeof block).gcount() > 0)
        text.append(block, std::size_t(f.gcount()));
    if (f.bad()) throw std::invalid_argument(where + "cannot read '" + path + "'");
    if (text.size() > detail::max_config_bytes)
        throw too_large("it grew while read");
    try {
        return parse_scheduler_config(text);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string(e.what()) + " (in '" + path + "')");
    }
}

}  // namespace deis
