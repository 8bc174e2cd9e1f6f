// deis: a solver configuration as a value, and its names.
//
// Every solver of the library is named by one grammar, read by parse_solver_config and written
// by to_string (parse(to_string(c)) == c, and to_string(parse(s)) == s for a name in the
// canonical order below):
//
//     name     = base { "+" modifier }
//     base     = "ddim" | ("tab" | "rhoab" | "ipndm") [order] | "rk:" tableau | "recommended"
//              | preset
//     preset   = "dpmpp_2m" | "dpmpp_3m" | "uni_pc" | "uni_pc_bh2" | "deis" | "euler" | "heun"
//     order    = "0" | "1" | "2" | "3"           (absent: the method's default, see multistep_options)
//     modifier = "order=" ("1" | "2" | "3")      (uni_pc, uni_pc_bh2, deis: the published order p)
//              | "data" | "noise"                (predict; absent: the default)
//              | "clock=vp" | "clock=logsnr"     (tab_clock::vp_linear, tab_clock::log_snr)
//              | "corrector"
//              | "sde"
//              | "eta=" number                   (DDIM's eta, a decimal number)
//              | "final=" steps ":" order        (final_steps, final_order)
//
// e.g. "tab3+data+corrector", "rhoab2+data", "ddim+eta=1", "tab2+sde", "rk:heun2",
// "recommended", "dpmpp_2m", "uni_pc_bh2+order=2". to_string writes the modifiers in the order
// of the list. A tableau is one of tableau_names(); "rk:" and "recommended" take no modifier.
// The fields that are not part of a name (model output, seed, thresholding, inversion) are left
// at their defaults by the parser and ignored by to_string and by operator==.
//
// The presets reproduce published samplers step for step (docs/presets.md): dpmpp_2m and
// dpmpp_3m are multistep_method::dpmpp of order 1 and 2; uni_pc and uni_pc_bh2 are unipc_bh1 and
// unipc_bh2, published order p = 3 unless "order=p" says otherwise (the library's order is
// p - 1); deis is deis_logrho, p = 2 by default; euler is multistep_method::euler (DDIM's steps);
// "ipndm" without a digit is iPNDM of order 3 (the published fourth-order iPNDM) with noise
// prediction. heun is the Runge-Kutta configuration {tableau "heun2", rk.final_euler = true}
// (Karras et al.'s Heun: an Euler step onto sigma = 0); "rk:heun2" is the same without
// final_euler. A preset takes no modifier that would change the published method (see
// multistep_faults): "+data" on a data-prediction preset is accepted, it changes nothing.
//
// "recommended" stands for deis::recommended_options, which depends on the schedule and the
// grid: resolve() (or with_solver) computes it there.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "deis/detail/error.hpp"
#include "deis/multistep.hpp"
#include "deis/recommended.hpp"
#include "deis/rk.hpp"

namespace deis {

/// The solver families a configuration can name.
enum class solver_kind {
    multistep,    ///< multistep_solver with `multistep`
    runge_kutta,  ///< rk_solver of the built-in tableau `tableau`, with `rk`
    recommended   ///< multistep_solver with recommended_options(schedule, grid)
};

/// A solver configuration: what a name of the grammar above describes, plus the run options
/// of each family (`multistep.output`, `.seed`, `.threshold`, `.invert`; `rk`). Validated by
/// solver_config_faults; every solver built from it validates it again.
struct solver_config {
    solver_kind kind = solver_kind::multistep;
    multistep_options multistep{};
    std::string tableau;  ///< runge_kutta: a name of tableau_names()
    rk_options rk{};
};

/// The base of a multistep method's name: "ddim", "tab", "rhoab" or "ipndm"; for the presets
/// "dpmpp", "uni_pc", "uni_pc_bh2", "deis" or "euler" (preset_name adds dpmpp's order).
inline const char* to_string(multistep_method m) {
    switch (m) {
        case multistep_method::ddim: return "ddim";
        case multistep_method::tab: return "tab";
        case multistep_method::rhoab: return "rhoab";
        case multistep_method::ipndm: return "ipndm";
        case multistep_method::dpmpp: return "dpmpp";
        case multistep_method::unipc_bh1: return "uni_pc";
        case multistep_method::unipc_bh2: return "uni_pc_bh2";
        case multistep_method::deis_logrho: return "deis";
        case multistep_method::euler: return "euler";
    }
    return "?";
}

namespace detail {

inline std::string shortest_double(double v) {
    for (int p = 1; p <= 17; ++p) {
        std::ostringstream os;
        os.precision(p);
        os << v;
        if (std::strtod(os.str().c_str(), nullptr) == v) return os.str();
    }
    return format_double(v);
}

// A decimal integer of one or more digits, in [lo, hi].
inline bool parse_small_int(std::string_view s, int lo, int hi, int& out) {
    if (s.empty() || s.size() > 6) return false;
    int v = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9') return false;
        v = 10 * v + (ch - '0');
    }
    if (v < lo || v > hi) return false;
    out = v;
    return true;
}

// A finite decimal number (digits, '.', an exponent; no hex, inf or nan).
inline bool parse_decimal(std::string_view s, double& out) {
    if (s.empty() || s.size() > 40 || s.find_first_not_of("0123456789.eE+-") != std::string_view::npos)
        return false;
    const std::string text(s);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v)) return false;
    out = v;
    return true;
}

// The base of a name (before the first '+') into c; faults appended.
inline void parse_base(std::string_view base, solver_config& c, std::vector<std::string>& faults) {
    if (base == "recommended") {
        c.kind = solver_kind::recommended;
        return;
    }
    if (base == "heun") {
        c.kind = solver_kind::runge_kutta;
        c.tableau = "heun2";
        c.rk.final_euler = true;
        return;
    }
    static const std::pair<const char*, multistep_method> presets[] = {
        {"dpmpp_2m", multistep_method::dpmpp},        {"dpmpp_3m", multistep_method::dpmpp},
        {"uni_pc", multistep_method::unipc_bh1},      {"uni_pc_bh2", multistep_method::unipc_bh2},
        {"deis", multistep_method::deis_logrho},      {"euler", multistep_method::euler}};
    for (const auto& [word, method] : presets)
        if (base == word) {
            c.multistep.method = method;
            if (method == multistep_method::dpmpp) c.multistep.order = base == "dpmpp_3m" ? 2 : 1;
            return;
        }
    if (base.substr(0, 3) == "rk:") {
        c.kind = solver_kind::runge_kutta;
        c.tableau = std::string(base.substr(3));
        if (!is_tableau_name(c.tableau))
            faults.push_back("tableau \"" + c.tableau + "\" is not a built-in tableau (known: " + tableau_list() + ")");
        return;
    }
    static const std::pair<const char*, multistep_method> methods[] = {{"ddim", multistep_method::ddim},
                                                                        {"tab", multistep_method::tab},
                                                                        {"rhoab", multistep_method::rhoab},
                                                                        {"ipndm", multistep_method::ipndm}};
    for (const auto& [word, method] : methods) {
        const std::string_view w(word);
        if (base.substr(0, w.size()) != w) continue;
        const std::string_view digits = base.substr(w.size());
        c.multistep.method = method;
        if (!digits.empty() && !parse_small_int(digits, 0, 3, c.multistep.order))
            faults.push_back("order \"" + std::string(digits) + "\" of \"" + std::string(base) +
                             "\" must be one digit 0..3");
        return;
    }
    faults.push_back("\"" + std::string(base) +
                     "\" is not a solver (known: ddim, tab[0-3], rhoab[0-3], ipndm[0-3], rk:TABLEAU, recommended, "
                     "dpmpp_2m, dpmpp_3m, uni_pc, uni_pc_bh2, deis, euler, heun)");
}

// One modifier into c.multistep; `seen` collects the keys given so far.
inline void parse_modifier(std::string_view m, solver_config& c, std::vector<std::string>& seen,
                           std::vector<std::string>& faults) {
    multistep_options& o = c.multistep;
    const std::size_t eq = m.find('=');
    const std::string key(m.substr(0, eq));
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : m.substr(eq + 1);
    const std::string group = key == "data" || key == "noise" ? "data/noise" : key;
    for (const std::string& s : seen)
        if (s == group) faults.push_back("modifier \"" + std::string(m) + "\" repeats or contradicts an earlier one");
    seen.push_back(group);
    const bool has_value = eq != std::string_view::npos;
    if ((key == "data" || key == "noise" || key == "corrector" || key == "sde") && has_value) {
        faults.push_back("modifier \"" + std::string(m) + "\" takes no value");
    } else if (key == "data" || key == "noise") {
        o.predict = key == "data" ? prediction::data : prediction::noise;
    } else if (key == "corrector") {
        o.corrector = true;
    } else if (key == "sde") {
        o.sde = true;
    } else if (key == "clock") {
        if (value == "vp")
            o.clock = tab_clock::vp_linear;
        else if (value == "logsnr")
            o.clock = tab_clock::log_snr;
        else
            faults.push_back("modifier \"" + std::string(m) + "\": the clock must be \"vp\" or \"logsnr\" (clock=vp, clock=logsnr)");
    } else if (key == "eta") {
        if (!parse_decimal(value, o.eta))
            faults.push_back("modifier \"" + std::string(m) + "\": eta must be a finite decimal number");
    } else if (key == "order") {
        const std::optional<multistep_method> method = o.method;
        int p = 0;
        if (!method || !(is_unipc(*method) || *method == multistep_method::deis_logrho))
            faults.push_back("modifier \"" + std::string(m) +
                             "\" applies to uni_pc, uni_pc_bh2 and deis only (the others spell their order in "
                             "the name)");
        else if (!parse_small_int(value, 1, 3, p))
            faults.push_back("modifier \"" + std::string(m) + "\": the published order must be 1, 2 or 3");
        else
            o.order = p - 1;
    } else if (key == "final") {
        const std::size_t colon = value.find(':');
        if (colon == std::string_view::npos || !parse_small_int(value.substr(0, colon), 0, 1000000, o.final_steps) ||
            !parse_small_int(value.substr(colon + 1), 0, 9, o.final_order))
            faults.push_back("modifier \"" + std::string(m) + "\" must read final=STEPS:ORDER (decimal integers)");
    } else {
        faults.push_back("\"" + std::string(m) +
                         "\" is not a modifier (known: order=P, data, noise, clock=vp, clock=logsnr, corrector, sde, eta=X, final=S:O)");
    }
}

}  // namespace detail

/// Every fault of a configuration, one sentence each; empty when it is valid. A multistep
/// configuration's faults are multistep_faults(c.multistep). "recommended" and "rk:" take
/// none of the name's multistep fields (their run options are checked by the solver).
inline std::vector<std::string> solver_config_faults(const solver_config& c) {
    std::vector<std::string> f;
    const multistep_options plain{};
    const multistep_options& o = c.multistep;
    const bool named_fields = o.method || o.order != -1 || o.predict || o.clock != plain.clock || o.corrector ||
                              o.eta != 0.0 || o.sde || o.final_steps != 0 || o.final_order != plain.final_order;
    switch (c.kind) {
        case solver_kind::multistep:
            return multistep_faults(o);
        case solver_kind::runge_kutta:
            if (!detail::is_tableau_name(c.tableau))
                f.push_back("tableau \"" + c.tableau + "\" is not a built-in tableau");
            if (c.rk.final_euler && c.tableau != "heun2")
                f.push_back("rk.final_euler = true is named only with tableau heun2 (\"heun\"), not " + c.tableau);
            if (named_fields)
                f.push_back("a Runge-Kutta solver takes none of the multistep options (method, order, predict, "
                            "clock, corrector, eta, sde, final)");
            return f;
        case solver_kind::recommended:
            if (named_fields)
                f.push_back("\"recommended\" chooses method, order, prediction and corrector from the schedule "
                            "and the grid: it takes no modifier");
            return f;
    }
    f.push_back("kind = " + std::to_string(int(c.kind)) + " is not a solver_kind");
    return f;
}

/// Throws std::invalid_argument listing every fault of c (solver_config_faults), if any.
inline void validate(const solver_config& c) {
    const std::vector<std::string> f = solver_config_faults(c);
    if (!f.empty()) detail::fail_all("solver_config", f);
}

/// Reads a name of the grammar above. Throws std::invalid_argument listing every fault, of
/// the name's syntax and of the configuration it names, in one message.
inline solver_config parse_solver_config(std::string_view name) {
    solver_config c;
    std::vector<std::string> faults;
    std::vector<std::string> seen;
    std::size_t start = 0;
    bool first = true;
    while (true) {
        const std::size_t plus = name.find('+', start);
        const std::string_view part =
            name.substr(start, plus == std::string_view::npos ? std::string_view::npos : plus - start);
        if (part.empty())
            faults.push_back(first ? std::string("the name is empty or starts with '+'") : "an empty modifier");
        else if (first)
            detail::parse_base(part, c, faults);
        else if (c.kind != solver_kind::multistep)
            faults.push_back("\"" + std::string(part) + "\": " +
                             (c.kind == solver_kind::recommended ? "recommended"
                              : c.rk.final_euler                 ? std::string("heun")
                                                                 : "rk:" + c.tableau) +
                             " takes no modifier");
        else
            detail::parse_modifier(part, c, seen, faults);
        first = false;
        if (plus == std::string_view::npos) break;
        start = plus + 1;
    }
    if (faults.empty())
        for (const std::string& f : solver_config_faults(c)) faults.push_back(f);
    if (!faults.empty())
        detail::fail_all("parse_solver_config: \"" + std::string(name) + "\"", faults);
    return c;
}

/// The name of c in the grammar above (its canonical spelling). Does not validate c.
inline std::string to_string(const solver_config& c) {
    if (c.kind == solver_kind::recommended) return "recommended";
    if (c.kind == solver_kind::runge_kutta) return c.rk.final_euler && c.tableau == "heun2" ? "heun" : "rk:" + c.tableau;
    const multistep_options& o = c.multistep;
    // an unset method is written as the one resolve_defaults picks
    const multistep_method method = o.method.value_or(resolve_defaults(o).method.value());
    std::string s = to_string(method);
    if (method == multistep_method::dpmpp)
        s += "_" + std::to_string(o.order == -1 ? 2 : o.order + 1) + "m";  // dpmpp_2m, dpmpp_3m
    else if (is_preset(method) && o.order != -1 && method != multistep_method::euler)
        s += "+order=" + std::to_string(o.order + 1);
    else if (o.order != -1 && !(method == multistep_method::euler && o.order == 0))
        s += std::to_string(o.order);
    if (o.predict) s += *o.predict == prediction::data ? "+data" : "+noise";
    if (o.clock == tab_clock::vp_linear) s += "+clock=vp";
    if (o.clock == tab_clock::log_snr) s += "+clock=logsnr";
    if (o.corrector) s += "+corrector";
    if (o.sde) s += "+sde";
    if (o.eta != 0.0) s += "+eta=" + detail::shortest_double(o.eta);
    if (o.final_steps != 0 || o.final_order != multistep_options{}.final_order)
        s += "+final=" + std::to_string(o.final_steps) + ":" + std::to_string(o.final_order);
    return s;
}

/// The options of a multistep name ("tab3+data+corrector"): parse_solver_config(name).multistep,
/// refusing "recommended" and "rk:" names. Throws std::invalid_argument listing every fault.
inline multistep_options parse_multistep(std::string_view name) {
    const solver_config c = parse_solver_config(name);
    if (c.kind != solver_kind::multistep)
        detail::fail("parse_multistep", "name", "\"" + std::string(name) + "\"",
                     "is not a multistep method (ddim, tab, rhoab, ipndm with modifiers, or a multistep preset)");
    return c.multistep;
}

/// Network calls per step of the solver c names: the tableau's stages for a Runge-Kutta
/// configuration, 1 otherwise. Throws std::invalid_argument for an unknown tableau.
inline int calls_per_step(const solver_config& c) {
    if (c.kind != solver_kind::runge_kutta) return 1;
    return with_tableau(c.tableau, [](auto t) { return int(decltype(t)::stages); });
}

namespace detail {
// The recommended options o (explicit method, order and prediction) for an inversion on `grid`
// (either order): o with the highest order, o's or lower, whose solver's Gaussian probe
// (multistep_solver's constructor) misses by no more than DDIM's, or else DDIM in o's
// prediction. Refusals other than an unstable inversion propagate.
template <class Schedule>
multistep_options stable_inversion(const Schedule& schedule, const std::vector<double>& grid, multistep_options o) {
    std::vector<double> up(grid);
    if (up.size() > 1 && up.front() > up.back()) std::reverse(up.begin(), up.end());
    for (multistep_options p = o; p.order >= 0; --p.order) {
        try {
            const inversion_probe found = inversion_access::probe(multistep_solver(schedule, up, p));
            if (found.error <= found.ddim_error) return p;
        } catch (const unstable_inversion&) {
        }
    }
    multistep_options ddim;
    ddim.method = multistep_method::ddim;
    ddim.predict = o.predict;
    ddim.output = o.output;
    ddim.seed = o.seed;
    ddim.threshold = o.threshold;
    ddim.invert = true;
    return ddim;
}
}  // namespace detail

/// The multistep options c stands for on this schedule and grid: c.multistep for a multistep
/// configuration; recommended_options(schedule, grid) with c.multistep's output, seed,
/// threshold and invert for "recommended". For an inversion ("recommended" always inverts), the
/// highest order, the rule's or lower, that inverts Gaussian data (see multistep_solver's
/// constructor) no worse than DDIM on the same grid, else DDIM. `grid` in either order.
/// Throws std::invalid_argument for a Runge-Kutta configuration.
template <class Schedule>
multistep_options resolve(const solver_config& c, const Schedule& schedule, const std::vector<double>& grid) {
    if (c.kind == solver_kind::multistep) return c.multistep;
    if (c.kind != solver_kind::recommended)
        detail::fail("resolve", "kind", "runge_kutta", "has no multistep options");
    multistep_options o = recommended_options(schedule, grid);
    o.output = c.multistep.output;
    o.seed = c.multistep.seed;
    o.threshold = c.multistep.threshold;
    o.invert = c.multistep.invert;
    return o.invert ? detail::stable_inversion(schedule, grid, o) : o;
}

/// Builds the solver c names on this schedule and grid and returns f(solver), solver a const
/// multistep_solver or rk_solver<T>; f must return the same type for each (a generic lambda
/// usually does). Validates c first (every fault in one std::invalid_argument); the solver's
/// constructor then checks the grid.
template <class Schedule, class F>
decltype(auto) with_solver(const solver_config& c, const Schedule& schedule, std::vector<double> grid, F&& f) {
    validate(c);
    if (c.kind == solver_kind::runge_kutta)
        return with_tableau(c.tableau, [&](auto t) -> decltype(auto) {
            const rk_solver<decltype(t)> solver(schedule, std::move(grid), c.rk);
            return f(solver);
        });
    const multistep_options o = resolve(c, schedule, grid);
    const multistep_solver solver(schedule, std::move(grid), o);
    return f(solver);
}

}  // namespace deis
