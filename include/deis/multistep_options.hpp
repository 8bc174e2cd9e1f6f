// deis: the options of the multistep solvers (deis/multistep.hpp): the methods, tAB's
// clock, thresholding, multistep_options, their defaults and their faults.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/model_output.hpp"
#include "deis/schedule.hpp"

namespace deis {

/// The multistep methods.
enum class multistep_method {
    ddim,   ///< DDIM: the order-0 exponential integrator (one history point)
    tab,    ///< tAB-DEIS: Lagrange extrapolation in t, orders 0-3
    rhoab,  ///< rhoAB-DEIS: Lagrange extrapolation in rho (with either prediction)
    ipndm,  ///< iPNDM: the DDIM coefficient times the classical Adams-Bashforth weights
    // The presets: published samplers step for step (docs/presets.md); `order` is the degree
    // r of the extrapolation, the published order p = r + 1.
    dpmpp,        ///< DPM-Solver++ (data prediction): order 1 = 2M, 2 = 3M
    unipc_bh1,    ///< UniPC with B(h) = h (data prediction): order 0..2 (UniPC-1..3, default 2)
    unipc_bh2,    ///< UniPC with B(h) = e^h - 1 (data prediction): order 0..2 (default 2)
    deis_logrho,  ///< diffusers' DEIS, Lagrange in log rho (noise prediction): order 0..2 (default 1)
    euler         ///< Euler in (x/alpha, sigma/alpha): DDIM's rows and forms under its own name
};

/// Whether m is one of the presets (dpmpp, unipc_bh1, unipc_bh2, deis_logrho, euler).
inline bool is_preset(multistep_method m) {
    return int(m) > int(multistep_method::ipndm) && int(m) <= int(multistep_method::euler);
}

/// The prediction a preset computes with: data for DPM-Solver++ and UniPC, noise for DEIS and
/// Euler (Euler, as DDIM, runs in the data form from alpha = 0).
inline prediction preset_prediction(multistep_method m) {
    return m == multistep_method::dpmpp || m == multistep_method::unipc_bh1 || m == multistep_method::unipc_bh2
               ? prediction::data
               : prediction::noise;
}

/// The variable of tAB's Lagrange polynomial (multistep_method::tab only).
enum class tab_clock {
    schedule,  ///< the schedule's own t (tAB-DEIS as published)
    /// tau(rho) = 2L / (0.1 + sqrt(0.01 + 39.8 L)), L = log(1 + rho^2): the time of
    /// vp_linear(0.1, 20) at which rho is reached. On vp_linear(0.1, 20) it is t itself; on VE
    /// (t = log sigma up to an affine map) and EDM it runs fast near the data and slowly near
    /// the noise, as the VP time does. Needs a finite rho at every grid time (no start at pure
    /// noise).
    vp_linear,
    /// log rho = -lambda, the log of the inverse signal-to-noise ratio: the variable of
    /// DPM-Solver++ and UniPC, so tAB takes the same steps on every schedule of the same rho
    /// grid (on VE it is t itself, up to an affine map). Needs 0 < rho < inf at every grid
    /// time (no start at pure noise, no end at clean data).
    log_snr
};

/// "schedule", "vp_linear" or "log_snr".
inline const char* to_string(tab_clock c) {
    return c == tab_clock::vp_linear ? "vp_linear" : c == tab_clock::log_snr ? "log_snr" : "schedule";
}

namespace detail {
/// The schedule whose time is tab_clock::vp_linear: vp_linear(0.1, 20).
inline vp_linear vp_clock() { return vp_linear(0.1, 20.0); }
}  // namespace detail

/// Dynamic thresholding of the data prediction (Imagen): for every sample, s is the
/// `percentile` quantile of |x0| over the sample's entries, clamped to [1, max_value], and
/// x0 becomes clamp(x0, -s, s) / s. Off while percentile == 0.
struct thresholding {
    double percentile = 0.0;  ///< in (0, 1] to enable, e.g. 0.995
    double max_value = 1.0;   ///< >= 1: the largest s (diffusers' sample_max_value)
    bool enabled() const { return percentile != 0.0; }
};

/// Options of a multistep solver; every field is checked when the solver is built, and every
/// fault is reported in one message (see multistep_faults). Every field has a default that is
/// valid whichever other single field is set: the defaults of `method`, `order` and
/// `predict` follow from the other fields.
struct multistep_options {
    /// Unset: DDIM when eta > 0, tAB otherwise.
    std::optional<multistep_method> method;
    /// Maximum order r (r + 1 history points), 0..3. -1 picks the method's default:
    /// 3, 2 with sde (which accepts 0..2), or 0 for DDIM (which accepts only 0). The presets:
    /// dpmpp 1 or 2 (default 1), unipc_bh1/bh2 and deis_logrho 0..2 (default 2, 2, 1), euler 0;
    /// their steps take their published orders, not min(k, order) (docs/presets.md).
    int order = -1;
    /// Step k uses order min(k, order): the warm start needs no extra network call.
    /// The last `final_steps` steps use order min(k, order, final_order); final_order in 0..3
    /// is checked only when final_steps > 0.
    int final_steps = 0;
    int final_order = 1;
    /// Unset: data prediction with sde or thresholding (which need it), noise prediction
    /// otherwise.
    std::optional<prediction> predict;
    /// tAB's polynomial variable (see tab_clock); other values than tab_clock::schedule need
    /// method tab.
    tab_clock clock = tab_clock::schedule;
    model_output output = model_output::eps;
    /// Exponential Adams-Moulton corrector, free of network calls: after the predictor gives
    /// x_{k+1}, the network is called there (that call is needed by the next step anyway),
    /// and x_{k+1} is recomputed from x_k with the Lagrange polynomial through the new
    /// prediction and the min(r_k + 1, 3) newest old ones. The new prediction (at the
    /// uncorrected point) is kept in the history. No corrector on the last step. Not
    /// available for iPNDM nor with stochastic sampling. Memory: a workspace then holds (at
    /// most) order + 2 history buffers and the predicted state (without the corrector:
    /// order + 1 history buffers).
    bool corrector = false;
    /// DDIM only: eta in [0, 1]; > 0 makes the sampler stochastic (1: ancestral sampling).
    double eta = 0.0;
    /// The SDE form of the data-prediction integrator (stochastic): needs prediction::data,
    /// method tab, rhoab or ddim, order <= 2, no corrector.
    bool sde = false;
    /// Seed of the default noise (deis::gaussian_noise) of a stochastic run when sample() is
    /// given no noise source; the same seed gives the same samples, sample by sample.
    std::uint64_t seed = 2022;
    /// Dynamic thresholding of x0 after every network call (prediction::data only).
    deis::thresholding threshold{};
    /// Integrate from data to noise (an inversion): the grid runs upwards (check_grid with
    /// direction::inversion). Deterministic methods only.
    bool invert = false;
};

/// The options with every default filled in: method, order and predict set as documented in
/// multistep_options. The other fields are unchanged. Checks nothing.
inline multistep_options resolve_defaults(multistep_options o) {
    if (!o.method) o.method = o.eta > 0.0 ? multistep_method::ddim : multistep_method::tab;
    const multistep_method m = *o.method;
    if (!o.predict)
        o.predict = is_preset(m)                          ? preset_prediction(m)
                    : o.sde || o.threshold.enabled()      ? prediction::data
                                                          : prediction::noise;
    if (o.order == -1) {
        if (is_preset(m))
            o.order = m == multistep_method::unipc_bh1 || m == multistep_method::unipc_bh2 ? 2
                      : m == multistep_method::euler                                      ? 0
                                                                                          : 1;
        else
            o.order = m == multistep_method::ddim ? 0 : o.sde ? 2 : 3;
    }
    return o;
}

/// The name of a preset's method with its order: "dpmpp_2m", "dpmpp_3m", "uni_pc",
/// "uni_pc_bh2", "deis", "euler" (the base of its configuration name, see solver_config.hpp).
inline std::string preset_name(multistep_method m, int order) {
    switch (m) {
        case multistep_method::dpmpp: return order == 2 ? "dpmpp_3m" : "dpmpp_2m";
        case multistep_method::unipc_bh1: return "uni_pc";
        case multistep_method::unipc_bh2: return "uni_pc_bh2";
        case multistep_method::deis_logrho: return "deis";
        case multistep_method::euler: return "euler";
        default: return "?";
    }
}

namespace detail {
// The faults of a preset's options (resolved): its order range, and every field that would
// change the published method.
template <class Fault>
void preset_faults(const multistep_options& o, Fault& fault) {
    const multistep_method m = *o.method;
    const std::string name = preset_name(m, o.order);
    const std::string as_is = "does not apply to the preset " + name + ", which reproduces the published method";
    const std::string order = std::to_string(o.order);
    if (m == multistep_method::dpmpp && (o.order < 1 || o.order > 2))
        fault("order", order, "must be 1 (dpmpp_2m) or 2 (dpmpp_3m) for dpmpp");
    if ((m == multistep_method::unipc_bh1 || m == multistep_method::unipc_bh2 ||
         m == multistep_method::deis_logrho) &&
        (o.order < 0 || o.order > 2))
        fault("order", order, "must lie in 0..2 (published order 1..3) for " + name);
    if (m == multistep_method::euler && o.order != 0) fault("order", order, "must be 0 for euler");
    const prediction form = preset_prediction(m);
    if (o.predict != form)
        fault("predict", form == prediction::data ? "prediction::noise" : "prediction::data",
              "does not apply to the preset " + name + ": it is " +
                  (form == prediction::data ? "data" : "noise") + " prediction as published");
    if (o.corrector)
        fault("corrector", "true",
              as_is + (m == multistep_method::unipc_bh1 || m == multistep_method::unipc_bh2
                           ? " (its own corrector is part of it)"
                           : ""));
    if (o.final_steps != 0) fault("final_steps", std::to_string(o.final_steps), as_is + "'s final orders");
    if (o.sde) fault("sde", "true", as_is);
    if (o.eta != 0.0) fault("eta", format_double(o.eta), as_is);
    if (o.invert && m != multistep_method::euler)
        fault("invert", "true", "is not available for the preset " + name + " (it samples, from noise to data)");
}
}  // namespace detail

/// Every fault of the options (after resolve_defaults), one sentence each, as
/// "order = 3 must be 0 for DDIM"; empty when they are valid. The solver joins them into the
/// message of the std::invalid_argument it throws.
inline std::vector<std::string> multistep_faults(const multistep_options& options) {
    const multistep_options o = resolve_defaults(options);
    std::vector<std::string> f;
    auto fault = [&f](const std::string& what, const std::string& value, const std::string& expected) {
        f.push_back(what + " = " + value + " " + expected);
    };
    const auto num = [](double v) { return detail::format_double(v); };
    const bool ddim = o.method == multistep_method::ddim, ipndm = o.method == multistep_method::ipndm;
    if (int(*o.method) < 0 || int(*o.method) > int(multistep_method::euler))
        fault("method", std::to_string(int(*o.method)), "is not a multistep_method");
    if (ddim && o.order != 0) fault("order", std::to_string(o.order), "must be 0 for DDIM");
    const bool preset = is_preset(*o.method);
    if (preset) detail::preset_faults(o, fault);
    if (!preset && (o.order < 0 || o.order > (o.sde ? 2 : 3)))
        fault("order", std::to_string(o.order), o.sde ? "must lie in 0..2 with sde" : "must lie in 0..3");
    if (o.final_steps < 0) fault("final_steps", std::to_string(o.final_steps), "must be >= 0");
    if (o.final_steps > 0 && (o.final_order < 0 || o.final_order > 3))
        fault("final_order", std::to_string(o.final_order), "must lie in 0..3");
    if (o.corrector && ipndm) fault("corrector", "true", "is not available for iPNDM");
    if (o.clock != tab_clock::schedule && o.method != multistep_method::tab)
        fault("clock", to_string(o.clock), "is tAB's polynomial variable: it needs method tab");
    if (!(o.eta >= 0.0 && o.eta <= 1.0)) fault("eta", num(o.eta), "must lie in [0, 1]");
    if (o.eta > 0.0 && !ddim && !preset) fault("eta", num(o.eta), "applies to DDIM only (use sde for the others)");
    if (o.sde && !preset) {
        if (o.predict != prediction::data) fault("sde", "true", "needs predict = prediction::data");
        if (ipndm) fault("sde", "true", "is available for tab, rhoab and ddim, not iPNDM");
        if (o.eta > 0.0) fault("eta", num(o.eta), "and sde exclude each other");
    }
    const bool stochastic = !preset && (o.sde || o.eta > 0.0);
    if (stochastic && o.corrector)
        fault("corrector", "true", "is not available with stochastic sampling (eta > 0 or sde)");
    if (stochastic && o.invert) fault("invert", "true", "is for the deterministic solvers (eta = 0, no sde)");
    if (o.threshold.enabled()) {
        if (!(o.threshold.percentile > 0.0 && o.threshold.percentile <= 1.0))
            fault("threshold.percentile", num(o.threshold.percentile), "must lie in (0, 1] (0: off)");
        if (!(o.threshold.max_value >= 1.0 && std::isfinite(o.threshold.max_value)))
            fault("threshold.max_value", num(o.threshold.max_value), "must be finite and >= 1");
        if (o.predict != prediction::data)
            fault("threshold", "on", "thresholds x0: it needs predict = prediction::data");
    }
    return f;
}

}  // namespace deis
