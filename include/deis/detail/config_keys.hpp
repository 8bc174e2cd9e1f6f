// deis: the parts of the scheduler_config.json reader (deis/diffusers/config.hpp) that do not
// depend on what it builds: the JSON text read into an object, the scheduler classes, the
// keys deis knows, the keys accepted at harmless values only, and the noise table.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "deis/detail/config_reader.hpp"
#include "deis/schedule.hpp"

namespace deis::detail {

// The largest scheduler_config.json text deis reads: 16 MiB, far above any real config (a
// few hundred bytes; a trained_betas table of 1000 entries is about 25 kB).
inline constexpr std::size_t max_config_bytes = std::size_t(16) << 20;

// The text as a JSON object, or std::invalid_argument.
inline nlohmann::json parse_config_object(const std::string& text) {
    const char* where = "scheduler_config";
    if (text.size() > max_config_bytes) fail(where, "text.size()", double(text.size()), "must be at most 16 MiB");
    // a config nests at most an array in an object: deeper documents are refused while they
    // are parsed, before they grow (the parser and the destructor of a deep document recurse)
    const nlohmann::json::parser_callback_t limit = [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        if (depth > 8) throw std::invalid_argument("deis::scheduler_config: the text nests deeper than 8 levels");
        return true;
    };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text, limit);
    } catch (const nlohmann::json::exception& e) {
        std::string m = e.what();
        for (char& ch : m)
            if (ch == '\n' || ch == '\r') ch = ' ';
        throw std::invalid_argument("deis::scheduler_config: the text is not valid JSON: " + m);
    }
    if (!j.is_object()) throw std::invalid_argument("deis::scheduler_config: the text must be a JSON object");
    return j;
}

// The scheduler classes deis reads, by the formula of their timesteps.
struct config_class {
    bool ddim_like = false, euler = false, multistep = false, flow = false;
};

inline config_class read_config_class(const config_reader& r, const std::string& cls) {
    const std::vector<std::string> ddim_classes = {"DDIMScheduler", "PNDMScheduler", "DDPMScheduler",
                                                   "DDIMInverseScheduler"};
    const std::vector<std::string> euler_classes = {"EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
                                                    "LMSDiscreteScheduler", "HeunDiscreteScheduler",
                                                    "KDPM2DiscreteScheduler"};
    const std::vector<std::string> ms_classes = {"DPMSolverMultistepScheduler", "DEISMultistepScheduler",
                                                 "UniPCMultistepScheduler", "DPMSolverSinglestepScheduler"};
    const std::vector<std::string> flow_classes = {"FlowMatchEulerDiscreteScheduler",
                                                   "FlowMatchHeunDiscreteScheduler"};
    auto in = [&cls](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), cls) != v.end(); };
    const config_class c{in(ddim_classes), in(euler_classes), in(ms_classes), in(flow_classes)};
    if (!(c.ddim_like || c.euler || c.multistep || c.flow))
        r.bad("_class_name",
              "is not a scheduler class deis reads (DDIM, PNDM, DDPM, DDIMInverse, EulerDiscrete, "
              "EulerAncestralDiscrete, LMSDiscrete, HeunDiscrete, KDPM2Discrete, DPMSolverMultistep, "
              "DPMSolverSinglestep, DEISMultistep, UniPCMultistep, FlowMatchEulerDiscrete, FlowMatchHeunDiscrete)");
    return c;
}

// The keys accepted without effect on the probability-flow ODE (scheduler_config::ignored_keys).
inline const std::vector<std::string>& ignored_config_keys() {
    static const std::vector<std::string> keys = {
        "_diffusers_version", "_use_default_values", "_name_or_path", "skip_prk_steps", "solver_order",
        "solver_type", "lower_order_final", "euler_at_final", "algorithm_type", "clip_sample",
        "clip_sample_range", "thresholding", "dynamic_thresholding_ratio", "sample_max_value",
        "variance_type", "interpolation_type", "timestep_type", "lambda_min_clipped",
        "disable_corrector", "predict_x0", "solver_p", "shift_terminal", "invert_sigmas",
        "stochastic_sampling"};
    return keys;
}

// Every key must be known: read, or accepted without effect.
inline void check_known_keys(const config_reader& r) {
    const std::vector<std::string> read_keys = {
        "_class_name", "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
        "rescale_betas_zero_snr", "prediction_type", "timestep_spacing", "steps_offset", "use_karras_sigmas",
        "use_exponential_sigmas", "sigma_min", "sigma_max", "use_flow_sigmas", "flow_shift", "shift",
        "use_dynamic_shifting", "base_shift", "max_shift", "base_image_seq_len", "max_image_seq_len",
        "time_shift_type", "set_alpha_to_one", "use_beta_sigmas", "use_lu_lambdas", "final_sigmas_type"};
    const auto& ign = ignored_config_keys();
    for (auto it = r.j.begin(); it != r.j.end(); ++it) {
        const std::string& k = it.key();
        if (std::find(read_keys.begin(), read_keys.end(), k) == read_keys.end() &&
            std::find(ign.begin(), ign.end(), k) == ign.end())
            r.bad(k, "is not a scheduler_config key deis knows");
    }
}

// The keys accepted only at values that leave the ODE alone; the others of ignored_config_keys
// only of the right type.
inline void check_ignored_values(const config_reader& r) {
    r.require("clip_sample", !r.boolean("clip_sample", false),
              "clamps x0 at every step, which is not the ODE; deis accepts only false");
    r.require("thresholding", !r.boolean("thresholding", false),
              "is not read from the config; set multistep_options::threshold instead (accepted only false)");
    r.number("clip_sample_range", 1.0);
    r.number("dynamic_thresholding_ratio", 0.995);
    r.number("sample_max_value", 1.0);
    r.boolean("skip_prk_steps", true);
    r.integer("solver_order", 2, 1, 3);
    r.string("solver_type", "");
    r.boolean("lower_order_final", true);
    r.boolean("euler_at_final", false);
    r.one_of("algorithm_type", "dpmsolver++", {"dpmsolver++", "dpmsolver", "deis"});
    r.boolean("disable_corrector", false);
    r.boolean("predict_x0", true);
    if (r.has("variance_type"))
        r.one_of("variance_type", "fixed_small", {"fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log"});
    r.one_of("interpolation_type", "linear", {"linear"});
    r.one_of("timestep_type", "discrete", {"discrete"});
    if (r.has("lambda_min_clipped"))
        r.bad("lambda_min_clipped", "truncates the grid, which deis does not reproduce; remove the key");
    r.require("shift_terminal", !r.has("shift_terminal"), "is not supported (null only)");
    r.require("invert_sigmas", !r.boolean("invert_sigmas", false), "is not supported (false only)");
    r.require("stochastic_sampling", !r.boolean("stochastic_sampling", false),
              "is a stochastic sampler, not the ODE (false only)");
}

// trained_betas, checked: num_train_timesteps numbers in (0, 1); empty without the key.
inline std::vector<double> read_trained_betas(const config_reader& r, int train_steps) {
    std::vector<double> betas;
    if (!r.has("trained_betas")) return betas;
    const auto& tb = r.j.at("trained_betas");
    if (!tb.is_array()) r.bad("trained_betas", "must be an array of numbers");
    if (tb.size() != std::size_t(train_steps))
        r.bad("trained_betas", "must hold num_train_timesteps = " + std::to_string(train_steps) + " betas (has " +
                                   std::to_string(tb.size()) + ")");
    for (const auto& b : tb) {
        if (!b.is_number()) r.bad("trained_betas", "must be an array of numbers");
        const double v = b.get<double>();
        if (!(v > 0.0 && v < 1.0)) r.bad("trained_betas", "must hold betas in (0, 1)");
        betas.push_back(v);
    }
    return betas;
}

// Lin et al. 2023: sqrt(alphabar) shifted and scaled to end at 0 with its first value kept;
// the last entry then becomes 2^-24 (diffusers' Euler and DPM-Solver) so that the largest
// noise level is finite.
inline vp_discrete rescale_zero_snr(const config_reader& r, const vp_discrete& vp) {
    const auto& la = vp.log_alpha_table();
    const double s0 = std::exp(la.front()), sT = std::exp(la.back());
    std::vector<double> abar(la.size());
    for (std::size_t i = 0; i < la.size(); ++i) {
        const double s = (std::exp(la[i]) - sT) * s0 / (s0 - sT);
        abar[i] = s * s;
    }
    abar.back() = std::ldexp(1.0, -24);
    try {
        return vp_discrete(abar);
    } catch (const std::invalid_argument& e) {
        r.bad("rescale_betas_zero_snr", std::string("does not give a valid table: ") + e.what());
    }
}

// The noise table of a discrete-timestep class: trained_betas, or beta_schedule from
// beta_start to beta_end, then rescale_betas_zero_snr.
inline vp_discrete read_config_table(const config_reader& r, int train_steps) {
    const std::vector<double> betas = read_trained_betas(r, train_steps);
    const std::string bs = r.one_of("beta_schedule", "linear", {"linear", "scaled_linear", "squaredcos_cap_v2"});
    const double b0 = r.number("beta_start", 0.0001), b1 = r.number("beta_end", 0.02);
    if (betas.empty() && bs != "squaredcos_cap_v2") {
        if (!(b0 > 0.0 && b0 < 1.0)) r.bad("beta_start", "must lie in (0, 1)");
        if (!(b1 > 0.0 && b1 < 1.0)) r.bad("beta_end", "must lie in (0, 1)");
    }
    vp_discrete vp = [&] {
        try {
            if (!betas.empty()) return vp_discrete::from_beta_values(betas);
            const beta_schedule kind = bs == "linear"          ? beta_schedule::linear
                                       : bs == "scaled_linear" ? beta_schedule::scaled_linear
                                                               : beta_schedule::squaredcos_cap_v2;
            return vp_discrete::from_betas(kind, train_steps, b0, b1);
        } catch (const std::invalid_argument& e) {
            r.bad(betas.empty() ? "beta_schedule" : "trained_betas",
                  std::string("does not give a valid table: ") + e.what());
        }
    }();
    if (r.boolean("rescale_betas_zero_snr", false)) vp = rescale_zero_snr(r, vp);
    return vp;
}

}  // namespace deis::detail
