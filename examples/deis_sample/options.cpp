// deis-sample: the command line. Every option is checked here, with its name in the
// message, before any file is opened or anything sized by an option is allocated.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deis/rk.hpp>
#include <string>
#include <vector>

#include "deis_sample.hpp"

namespace deis_sample {

std::string num(double v) {
    char buf[32];
    for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v || !std::isfinite(v)) break;
    }
    // an integer may be shorter without the exponent (100, not 1e+02)
    char whole[32];
    if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e16) {
        std::snprintf(whole, sizeof whole, "%.0f", v);
        if (std::string(whole).size() <= std::string(buf).size()) return whole;
    }
    return buf;
}

namespace {

// What was given explicitly, for the defaults that depend on other options.
struct given {
    bool beta_min, beta_max, sigma_min, sigma_max, t_max, order, tableau, grid_power;
    bool t_end, steps, grid, flow_shift;  // flow matching and EDM (validate_flow_edm)
};

void require_finite(const char* name, double v) {
    if (!std::isfinite(v)) usage_error(std::string(name) + " = " + num(v) + " must be finite");
}

// --sigmas LIST: noise levels separated by commas, each a decimal number, >= 0 and finite,
// strictly decreasing, at least 2 and at most max_steps + 1 of them.
std::vector<double> parse_sigma_list(const std::string& text) {
    std::vector<double> v;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = text.find(',', start);
        const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        // the grammar and range of the floating options (support/number_options.hpp)
        const std::string why = deis_tools::floating_problem(item);
        if (!deis_tools::detail::is_decimal(item.c_str(), item.size()) &&
            !deis_tools::detail::spells_non_finite(item))
            usage_error("--sigmas: '" + item + "' is not a number (give a comma-separated list or karras, exponential, "
                        "ays-sd15, ays-sdxl)");
        if (!why.empty()) usage_error("--sigmas: " + item + " " + why);
        const double x = std::strtod(item.c_str(), nullptr);
        if (x < 0.0) usage_error("--sigmas: " + item + " must be finite and >= 0");
        if (!v.empty() && !(x < v.back()))
            usage_error("--sigmas: " + item + " must be smaller than the level before it, " + num(v.back()));
        v.push_back(x);
        if (v.size() > std::size_t(max_steps) + 1)
            usage_error("--sigmas: more than " + std::to_string(max_steps + 1) + " levels");
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (v.size() < 2) usage_error("--sigmas: give at least 2 levels (one step), got " + std::to_string(v.size()));
    return v;
}

bool is_sigma_name(const std::string& s) {
    return s == "karras" || s == "exponential" || s == "ays-sd15" || s == "ays-sdxl";
}

// --sigma-min and --sigma-max of the ve and edm schedules: finite, min_sigma <= min < max <= max_sigma.
void check_sigma_range(const options& o) {
    require_finite("--sigma-min", o.sigma_min);
    require_finite("--sigma-max", o.sigma_max);
    if (!(o.sigma_min >= min_sigma)) usage_error("--sigma-min = " + num(o.sigma_min) + " must be >= " + num(min_sigma));
    if (!(o.sigma_max > o.sigma_min))
        usage_error("--sigma-max = " + num(o.sigma_max) + " must be greater than --sigma-min = " + num(o.sigma_min));
    if (!(o.sigma_max <= max_sigma))
        usage_error("--sigma-max = " + num(o.sigma_max) + " must be <= " + num(max_sigma));
}

// The options of flow matching and EDM (--schedule flow/edm, --flow-shift, --sigmas,
// --t-end 0): their ranges and the defaults they set. Runs before the rest of validate.
void validate_flow_edm(options& o, const given& g) {
    const bool config = !o.scheduler_config.empty();
    // (on a config, whether it is flow matching is known once it is read: make_model)
    if (o.schedule != "flow" && !config && g.flow_shift)
        usage_error("--flow-shift applies to --schedule flow (or a flow-matching --scheduler-config) only");
    if (g.flow_shift) {
        require_finite("--flow-shift", o.flow_shift);
        if (!(o.flow_shift > 0.0 && o.flow_shift <= max_flow_shift))
            usage_error("--flow-shift = " + num(o.flow_shift) + " must lie in (0, " + num(max_flow_shift) + "]");
        // it shifts the points of --grid t-power|log-rho|rho-power (deis::shifted_grid)
        if (o.grid == "file" || o.grid == "recommended" || o.grid == "optimized")
            usage_error("--flow-shift shifts the points of --grid t-power|log-rho|rho-power, not of " +
                        std::string(o.grid == "file" ? "--grid-file" : "--grid " + o.grid));
        if (config_grid(o))
            usage_error("--flow-shift shifts the points of --grid t-power|log-rho|rho-power: with --scheduler-config "
                        "give --grid (the config's own grid has its own shift)");
    }
    // the config's own grid and a --grid-file fix both ends and the spacing
    if (config_grid(o) && (g.t_max || g.t_end || g.grid_power))
        usage_error(std::string(g.grid_power ? "--grid-power" : g.t_max ? "--t-max" : "--t-end") +
                    " does not apply to the own grid of --scheduler-config (give --grid to set it)");
    if (o.grid == "file" && (g.t_max || g.t_end))
        usage_error(std::string(g.t_max ? "--t-max" : "--t-end") +
                    " does not apply with --grid-file: its first and last times are the ends");
    if (o.schedule == "flow") {
        if (!g.t_max) o.t_max = 1.0;
        require_finite("--t-max", o.t_max);
        if (!(o.t_max > 0.0 && o.t_max <= 1.0))
            usage_error("--t-max = " + num(o.t_max) + " must lie in (0, 1] for --schedule flow");
    }
    if (o.schedule == "edm") {
        if (!g.sigma_min) o.sigma_min = edm_sigma_min;
        if (!g.sigma_max) o.sigma_max = edm_sigma_max;
        check_sigma_range(o);
        // t = sigma: from sigma-max down to sigma-min unless --t-max / --t-end say otherwise
        if (!g.t_max) o.t_max = o.sigma_max;
        if (!g.t_end) o.t_end = o.sigma_min;
        require_finite("--t-max", o.t_max);
        if (!(o.t_max > 0.0 && o.t_max <= o.sigma_max))
            usage_error("--t-max = " + num(o.t_max) + " must lie in (0, --sigma-max = " + num(o.sigma_max) +
                        "] for --schedule edm");
    }

    if (o.sigmas.empty()) return;
    if (g.grid) usage_error("--grid does not apply with --sigmas: the noise levels are the grid");
    if (g.grid_power) usage_error("--grid-power does not apply with --sigmas");
    if (g.flow_shift) usage_error("--flow-shift does not apply with --sigmas: the noise levels are the grid");
    if (is_sigma_name(o.sigmas)) {
        if (!g.steps) usage_error("--sigmas " + o.sigmas + " needs --steps");
        if (o.sigmas == "karras" || o.sigmas == "exponential") {
            // from sigma = rho(t-max) down to rho(t-end): both must be finite and > 0
            if (!(o.t_end > 0.0))
                usage_error("--sigmas " + o.sigmas + " needs --t-end > 0 (its smallest level is rho(t-end))");
        } else if (g.t_max || g.t_end) {
            usage_error("--t-max and --t-end do not apply with --sigmas " + o.sigmas +
                        ": its published levels fix both ends");
        }
        return;
    }
    o.sigma_list = parse_sigma_list(o.sigmas);
    if (g.steps) usage_error("--steps does not apply with --sigmas LIST: the list of N + 1 levels makes N steps");
    if (g.t_max || g.t_end) usage_error("--t-max and --t-end do not apply with --sigmas LIST: its levels fix both ends");
    o.steps = int(o.sigma_list.size()) - 1;
}

// --shape C,H,W: one sample's shape, 1 to max_shape_dims positive decimal integers separated
// by commas, holding at most max_shape_size values.
std::vector<long> parse_shape(const std::string& text) {
    std::vector<long> v;
    long long size = 1;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = text.find(',', start);
        const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const bool digits =
            !item.empty() && item.size() <= 10 && item.find_first_not_of("0123456789") == std::string::npos;
        const long long n = digits ? std::strtoll(item.c_str(), nullptr, 10) : 0;
        if (n < 1 || n > max_shape_size)
            usage_error("--shape " + text + ": '" + item + "' is not an integer in 1.." +
                        std::to_string(max_shape_size) + " (give C,H,W, e.g. 3,32,32)");
        size *= n;
        if (size > max_shape_size)
            usage_error("--shape " + text + " holds more than " + std::to_string(max_shape_size) + " values");
        v.push_back(long(n));
        if (v.size() > std::size_t(max_shape_dims))
            usage_error("--shape " + text + ": more than " + std::to_string(max_shape_dims) + " dimensions");
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return v;
}

// --model and its options (--dtype, --device, --batch, --shape): the model replaces the mixture;
// its options apply with it only. Counts of the options as given.
struct model_given {
    bool model, mixture, dtype, device, batch, shape;
};

void check_model_options(options& o, const model_given& g, const std::string& shape) {
    if (!g.model) {
        for (const auto& [given, flag] : {std::pair<bool, const char*>{g.dtype, "--dtype"},
                                          {g.device, "--device"}, {g.batch, "--batch"}, {g.shape, "--shape"}})
            if (given) usage_error(std::string(flag) + " applies to --model only");
        return;
    }
    if (!have_torch)
        usage_error("--model " + o.model_file + ": deis-sample was built without LibTorch (its CMake did not find it)");
    if (g.mixture)
        usage_error("--model and --mixture/--mixture-csv exclude each other: the model is the run's one network");
    if (g.batch && o.batch < 1) usage_error("--batch = " + std::to_string(o.batch) + " must be >= 1");
    if (g.shape) o.shape = parse_shape(shape);
}

// Checks every option and fills in the defaults that depend on other options.
void validate(options& o, const given& g) {
    validate_flow_edm(o, g);
    const bool vp = o.schedule.rfind("vp-", 0) == 0;
    // Options that do not apply to the chosen schedule, grid or method (--beta-* without
    // vp-linear, --sigma-* without ve, --grid-power with log-rho, --tableau without rk) are
    // ignored, so that a harness may pass one fixed set of options to every configuration;
    // a --tableau name is still checked (configure_solver).
    if (o.schedule == "vp-linear") {
        require_finite("--beta-min", o.beta_min);
        require_finite("--beta-max", o.beta_max);
        if (!(o.beta_min >= 0.0)) usage_error("--beta-min = " + num(o.beta_min) + " must be >= 0");
        if (!(o.beta_max > o.beta_min))
            usage_error("--beta-max = " + num(o.beta_max) + " must be greater than --beta-min = " + num(o.beta_min));
        if (!(o.beta_max <= max_beta))
            usage_error("--beta-max = " + num(o.beta_max) + " must be <= " + num(max_beta) +
                        " (alpha(1) would leave the normal doubles)");
    } else if (o.schedule == "ve") {
        check_sigma_range(o);
    }

    if (!g.t_max && vp) o.t_max = o.schedule == "vp-cosine" ? 0.9946 : 1.0;
    if (!g.t_max && o.schedule == "ve") o.t_max = 1.0;
    require_finite("--t-max", o.t_max);
    require_finite("--t-end", o.t_end);
    if (o.schedule == "vp-linear" && !(o.t_max > 0.0 && o.t_max <= 1.0))
        usage_error("--t-max = " + num(o.t_max) + " must lie in (0, 1] for --schedule vp-linear");
    if (o.schedule == "vp-cosine" && !(o.t_max > 0.0 && o.t_max < 1.0))
        usage_error("--t-max = " + num(o.t_max) +
                    " must lie in (0, 1) for --schedule vp-cosine (rho is infinite at t = 1)");
    if (o.schedule == "ve" && !(o.t_max > 0.0 && o.t_max <= 1.0))
        usage_error("--t-max = " + num(o.t_max) + " must lie in (0, 1] for --schedule ve");
    if (!(o.t_end < o.t_max))
        usage_error("--t-end = " + num(o.t_end) + " must be smaller than --t-max = " + num(o.t_max));
    if (vp && !(o.t_end >= min_vp_t_end || o.t_end == 0.0))
        usage_error("--t-end = " + num(o.t_end) + " must be 0 (clean data) or >= " + num(min_vp_t_end) +
                    " for a VP schedule");
    if (!vp && !(o.t_end >= 0.0)) usage_error("--t-end = " + num(o.t_end) + " must be >= 0");

    if (o.steps < 1 || o.steps > max_steps)
        usage_error("--steps = " + std::to_string(o.steps) + " must lie in 1.." + std::to_string(max_steps));

    const bool own_grid = o.grid == "recommended" || o.grid == "optimized" || o.grid == "file";
    if (own_grid && g.grid_power) usage_error("--grid-power does not apply to --grid " + o.grid);
    if (o.grid != "log-rho" && !own_grid) {
        if (!g.grid_power) o.grid_power = o.grid == "t-power" ? 2.0 : 7.0;
        if (!(o.grid_power >= min_grid_power && o.grid_power <= max_grid_power))
            usage_error("--grid-power = " + num(o.grid_power) + " must lie in [" + num(min_grid_power) + ", " +
                        num(max_grid_power) + "]");
    }
}

// --eta, --sde, --seed, --progress: stochastic sampling and run control.
void add_stochastic_options(CLI::App& app, options& o, std::string& seed, CLI::Option*& eta, CLI::Option*& sde) {
    eta = add_number(app, "--eta", o.eta, "ddim only: stochasticity in [0, 1] (1: ancestral sampling)")
              ->capture_default_str();
    sde = app.add_flag("--sde", o.sde, "The SDE form: with --predict data, --method tab or rhoab, --order 0..2 [default 1]");
    app.add_option("--seed", seed, "Seed of the noise of a stochastic run (--eta > 0 or --sde), 0..2^64-1 [default: 2022]");
    app.add_flag("--progress", o.progress,
                 "Progress on stderr: a bar on a terminal, else one line per 10% of the steps");
}

// Checks them (after validate(), which has set the method's default order).
void check_stochastic_options(options& o, const std::string& seed, bool eta_given) {
    if (!seed.empty()) {
        // decimal digits only (CLI11 would take -1 for 2^64 - 1), and no overflow
        const bool digits = seed.size() <= 20 && seed.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        const unsigned long long v = digits ? std::strtoull(seed.c_str(), nullptr, 10) : 0;
        if (!digits || errno == ERANGE)
            usage_error("--seed = " + seed + " must be an integer in 0..18446744073709551615");
        o.seed = std::uint64_t(v);
    }
    if (eta_given) require_finite("--eta", o.eta);
}

// The flags that spell parts of a configuration besides --method NAME.
struct spelled {
    bool order, predict, corrector, clock, eta, sde;  // clock: --clock other than t
};

// A library fault ("order = 4 must lie in 0..3") in the command line's words ("--order = 4 ...").
std::string as_flags(const std::string& fault) {
    static const std::pair<const char*, const char*> fields[] = {
        {"order = ", "--order = "}, {"corrector = ", "--corrector = "}, {"clock = ", "--clock = "},
        {"eta = ", "--eta = "},     {"sde = ", "--sde = "},             {"invert = ", "--invert = "}};
    static const std::pair<const char*, const char*> words[] = {
        {"predict = prediction::data", "--predict data"}, {"with sde", "with --sde"},
        {"(eta > 0 or sde)", "(--eta > 0 or --sde)"},     {"(eta = 0, no sde)", "(--eta 0, no --sde)"},
        {"use sde for", "use --sde for"},                  {"and sde exclude", "and --sde exclude"}};
    std::string s = fault;
    for (const auto& [field, flag] : fields)
        if (s.rfind(field, 0) == 0) {
            s = flag + s.substr(std::string(field).size());
            break;
        }
    for (const auto& [word, flag] : words) {
        const std::size_t at = s.find(word);
        if (at != std::string::npos) s.replace(at, std::string(word).size(), flag);
    }
    return s;
}

// o.config from --method NAME (deis/solver_config.hpp; "rk" with --tableau T is "rk:T") and the
// flags that spell the same fields (--order, --predict, --corrector, --clock, --eta, --sde,
// --seed): a flag may add a field the name leaves unset, not contradict one it sets. Every fault
// of the configuration is reported in one message. The legacy fields (method, order, predict,
// corrector, clock, eta, sde, tableau) are then set from it.
void configure_solver(options& o, const spelled& f) {
    // a --tableau name is checked even when the method is not rk (see validate)
    if (!deis::detail::is_tableau_name(o.tableau))
        usage_error("--tableau = " + o.tableau + " is not a known tableau (" + deis::detail::tableau_list() + ")");
    if (f.order && o.order < 0) usage_error("--order = " + std::to_string(o.order) + " must be >= 0");
    const std::string name = o.method == "rk" ? "rk:" + o.tableau : o.method;
    deis::solver_config c;
    try {
        c = deis::parse_solver_config(name);
    } catch (const std::invalid_argument& e) {
        std::string msg = e.what();
        const std::string prefix = "deis::parse_solver_config: ";
        if (msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
        usage_error("--method " + msg);
    }
    const bool rk = c.kind == deis::solver_kind::runge_kutta;
    const bool recommended = c.kind == deis::solver_kind::recommended;
    std::vector<std::string> faults;
    deis::multistep_options& m = c.multistep;
    if (rk) {
        const int tableau_order = deis::with_tableau(c.tableau, [](auto t) { return int(decltype(t)::order); });
        if (f.order && o.order != tableau_order)
            faults.push_back("--order = " + std::to_string(o.order) + " does not match the order " +
                             std::to_string(tableau_order) + " of --tableau " + c.tableau);
        o.order = tableau_order;
        if (f.predict && o.predict != "noise")
            faults.push_back("--predict " + o.predict + " applies to the multistep methods only, not rk");
        for (const auto& [given, flag] : {std::pair<bool, const char*>{f.corrector, "--corrector"},
                                          {f.clock, "--clock"}, {f.eta, "--eta"}, {f.sde, "--sde"}})
            if (given) faults.push_back(std::string(flag) + " applies to the multistep methods only, not rk");
    } else if (recommended) {
        // deis::recommended_options chooses order, prediction and corrector from the grid
        for (const auto& [given, flag] :
             {std::pair<bool, const char*>{f.order, "--order"}, {f.predict, "--predict"}, {f.corrector, "--corrector"},
              {f.clock, "--clock"}, {f.eta, "--eta"}, {f.sde, "--sde"}})
            if (given)
                faults.push_back(std::string(flag) +
                                 " does not apply to --method recommended: it follows from the schedule and the grid");
    } else {
        if (f.order && m.method && deis::is_preset(*m.method)) {
            // a preset's --order is the published order p (the library's order is p - 1)
            const deis::multistep_method pm = *m.method;
            if (pm == deis::multistep_method::dpmpp || pm == deis::multistep_method::euler) {
                const int published = pm == deis::multistep_method::euler ? 1 : m.order + 1;
                if (o.order != published)
                    faults.push_back("--order = " + std::to_string(o.order) + " contradicts --method " + name +
                                     " (published order " + std::to_string(published) + ")");
            } else if (o.order < 1 || o.order > 3) {
                faults.push_back("--order = " + std::to_string(o.order) + " must lie in 1..3 (the published order) for --method " +
                                 name);
            } else {
                if (m.order != -1 && m.order != o.order - 1)
                    faults.push_back("--order = " + std::to_string(o.order) + " contradicts the order of --method " + name);
                m.order = o.order - 1;
            }
        } else if (f.order) {
            if (m.order != -1 && m.order != o.order)
                faults.push_back("--order = " + std::to_string(o.order) + " contradicts the order of --method " + name);
            m.order = o.order;
        }
        if (f.predict) {
            const deis::prediction p = o.predict == "data" ? deis::prediction::data : deis::prediction::noise;
            if (m.predict && *m.predict != p) faults.push_back("--predict " + o.predict + " contradicts --method " + name);
            m.predict = p;
        }
        if (f.corrector) m.corrector = true;
        if (f.clock) {
            const deis::tab_clock c = o.clock == "vp" ? deis::tab_clock::vp_linear : deis::tab_clock::log_snr;
            if (m.clock != deis::tab_clock::schedule && m.clock != c)
                faults.push_back("--clock " + o.clock + " contradicts --method " + name);
            m.clock = c;
        }
        if (f.eta) {
            if (m.eta != 0.0 && m.eta != o.eta) faults.push_back("--eta = " + num(o.eta) + " contradicts --method " + name);
            m.eta = o.eta;
        }
        if (f.sde) m.sde = true;
        for (const std::string& fault : deis::solver_config_faults(c)) faults.push_back(as_flags(fault));
    }
    m.seed = o.seed;
    if (!faults.empty()) {
        std::string msg = "--method " + name + ": ";
        for (std::size_t i = 0; i < faults.size(); ++i) msg += (i ? "; " : "") + faults[i];
        usage_error(msg);
    }
    o.config = c;
    // the legacy fields, as the configuration resolves them
    if (rk) {
        o.method = "rk";
        o.tableau = c.tableau;
    } else if (recommended) {
        o.method = "recommended";
    } else {
        const deis::multistep_options r = deis::resolve_defaults(m);
        o.method = deis::to_string(*r.method);
        o.order = r.order;
        o.predict = *r.predict == deis::prediction::data ? "data" : "noise";
        o.corrector = r.corrector;
        o.clock = r.clock == deis::tab_clock::vp_linear ? "vp" : r.clock == deis::tab_clock::log_snr ? "logsnr" : "t";
        o.eta = r.eta;
        o.sde = r.sde;
    }
}

}  // namespace

bool parse_command_line(int argc, char** argv, options& o) {
    CLI::App app{
        "Samples a Gaussian mixture by integrating its probability-flow ODE from the noise XT.csv at t-max\n"
        "down to t-end with a DEIS solver, the mixture's exact eps playing the network (or a trained\n"
        "TorchScript network: --model).\n"
        "Writes X0.csv (one sample per row) and prints nfe=<network calls>. See docs/deis-sample.md.",
        "deis-sample"};

    // Required options are checked after parsing, so that an unknown option is reported first.
    std::vector<CLI::Option*> required;
    auto* o_json = app.add_option("--mixture", o.mixture_json, "Mixture as JSON {\"weights\", \"means\", \"stds\"}");
    auto* o_csv = app.add_option("--mixture-csv", o.mixture_csv, "Mixture as CSV: header mu0..,std0..,weight");
    auto* o_noise = app.add_option("--noise", o.noise, "(required) Initial points at t-max, one per row, no header");
    required.push_back(o_noise);
    required.push_back(app.add_option("--out", o.out, "(required) Output file for the samples at t-end"));
    auto* o_schedule = app.add_option("--schedule", o.schedule, "(required) Noise schedule")
                           ->check(CLI::IsMember({"vp-linear", "vp-cosine", "ve", "flow", "edm"}));
    required.push_back(o_schedule);
    auto* o_bmin = add_number(app, "--beta-min", o.beta_min, "vp-linear: beta(0), >= 0")->capture_default_str();
    auto* o_bmax = add_number(app, "--beta-max", o.beta_max, "vp-linear: beta(1), in (beta-min, 1000]")
                       ->capture_default_str();
    auto* o_smin = add_number(app, "--sigma-min", o.sigma_min, "ve: sigma(0), >= 1e-8 [edm: default t-end, 0.002]")
                       ->capture_default_str();
    auto* o_smax = add_number(app, "--sigma-max", o.sigma_max, "ve: sigma(1), in (sigma-min, 1e8] [edm: 80]")
                       ->capture_default_str();
    auto* o_tmax = add_number(app, "--t-max", o.t_max, "Start time [default: 1, vp-cosine 0.9946, edm sigma-max]");
    auto* o_tend = add_number(app, "--t-end", o.t_end, "End time, in [0, t-max) (0: clean data; VP: 0 or >= 1e-12)")
                       ->capture_default_str();
    // flow matching and EDM
    auto* o_shift = add_number(app, "--flow-shift", o.flow_shift, "flow: SD3 time shift of the grid, in (0, 1000]")
                        ->capture_default_str();
    auto* o_sigmas = app.add_option(
        "--sigmas", o.sigmas,
        "The grid as noise levels sigma/alpha, largest first: a comma list, or karras, exponential (from rho(t-max) "
        "to rho(t-end)), ays-sd15, ays-sdxl (with --steps); replaces --grid");
    required.push_back(app.add_option("--method", o.method,
                                      "(required) Solver: a configuration name (docs/solvers.md), e.g. tab3+data+corrector, "
                                      "rhoab2+data, ddim, ipndm, rk:heun2, recommended, or a preset (docs/presets.md): dpmpp_2m, "
                                      "dpmpp_3m, uni_pc, uni_pc_bh2, deis, euler, heun; rk with --tableau"));
    auto* o_order = add_number(app, "--order", o.order, "Order [default: ddim 0, tab/rhoab/ipndm 3, rk the tableau's]; for uni_pc, uni_pc_bh2 "
                            "and deis the published order 1..3 [default 3, 3, 2]");
    auto* o_tab =
        app.add_option("--tableau", o.tableau,
                       "rk only [default: rk4]: euler, heun2, midpoint2, kutta3, ral3, heun3, vdh3, ssprk3, rk4");
    auto* o_grid = app.add_option("--grid", o.grid,
                                  "(required unless --method recommended or --sigmas) Time grid; recommended: "
                                  "deis::recommended_grid, the default of --method recommended")
                       ->check(CLI::IsMember({"t-power", "log-rho", "rho-power", "recommended", "optimized"}));
    auto* o_gfile = app.add_option("--grid-file", o.grid_file,
                                   "Read the grid (t_max first, one time per line) instead of --grid; --steps must match");
    app.add_option("--save-grid", o.save_grid, "Write the grid used, one time per line (17 digits)");
    auto* o_calib = add_number(app, "--calibration-samples", o.calibration_samples,
                               "--grid optimized: calibration batch size, 1..100000 [default: 256]");
    auto* o_gpow =
        add_number(app, "--grid-power", o.grid_power, "Grid exponent in [0.1, 100] [default: t-power 2, rho-power 7]");
    auto* o_steps = add_number(app, "--steps", o.steps, "(required unless --sigmas LIST) Number of steps, 1..1000000");
    app.add_flag("--float", o.use_float, "Run the solver on float states (files stay double)");
    app.add_flag("--corrector", o.corrector, "Multistep methods except ipndm: add the corrector");
    app.add_option("--clock", o.clock,
                   "--method tab: the polynomial's variable, t (the schedule's), vp (the time of the VP-linear "
                   "schedule 0.1/20 with the same rho; deis::tab_clock::vp_linear) or logsnr (log rho; "
                   "deis::tab_clock::log_snr)")
        ->check(CLI::IsMember({"t", "vp", "logsnr"}))
        ->capture_default_str();
    auto* o_predict = app.add_option("--predict", o.predict, "Multistep methods: what is extrapolated")
        ->check(CLI::IsMember({"noise", "data"}))
        ->capture_default_str();
    auto* o_output = app.add_option("--model-output", o.output, "What the network returns (converted back by the solver)")
        ->check(CLI::IsMember({"eps", "x0", "v", "score", "velocity"}))
        ->capture_default_str();
    CLI::Option *o_eta = nullptr, *o_sde = nullptr;
    std::string seed;
    add_stochastic_options(app, o, seed, o_eta, o_sde);

    add_diffusers_options(app, o);

    // a trained network (docs/deis-sample.md, "Trained networks (--model)")
    auto* o_model = app.add_option("--model", o.model_file,
                                   "A TorchScript module forward(x, t) to sample instead of a mixture (needs LibTorch)");
    auto* o_dtype = app.add_option("--dtype", o.dtype, "--model: dtype of x and t given to the module")
                        ->check(CLI::IsMember({"float32", "float64"}))
                        ->capture_default_str();
    auto* o_device = app.add_option("--device", o.device, "--model: where the module runs")
                         ->check(CLI::IsMember({"cpu", "cuda"}))
                         ->capture_default_str();
    auto* o_batch = add_number(app, "--batch", o.batch, "--model: at most N samples a call [default: all]");
    std::string shape;
    auto* o_shape = app.add_option("--shape", shape,
                                   "--model: one sample's shape C,H,W (the module sees [B,C,H,W]) [default: [B,D]]");

    try {
        app.parse(argc, argv);
    } catch (const deis_tools::bad_number& e) {  // a numeric option's text (add_number)
        usage_error(e.what());
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) {  // --help
            app.exit(e);
            return false;
        }
        std::string msg = e.what();
        // CLI11 says "--steps: At Most 1 required but received 2" for a repeated option
        const auto at = msg.find(": At Most 1 required but received");
        if (at != std::string::npos) msg = msg.substr(0, at) + " is given more than once";
        usage_error(msg);
    }

    // a scheduler config sets the schedule and the grid; an inversion starts from --init
    const bool config = !o.scheduler_config.empty();
    for (const CLI::Option* opt : required) {
        if ((opt == o_schedule || opt == o_grid) && config) continue;
        if (opt == o_noise && o.invert) continue;
        if (opt->count() == 0) usage_error(opt->get_name() + " is required");
    }
    if (config && o_schedule->count() > 0)
        usage_error("--schedule and --scheduler-config exclude each other: the config sets the schedule");
    if (o.method.rfind("rk:", 0) == 0 && o_tab->count() > 0 && o.method != "rk:" + o.tableau)
        usage_error("--tableau " + o.tableau + " contradicts --method " + o.method);
    check_stochastic_options(o, seed, o_eta->count() > 0);
    configure_solver(o, {o_order->count() > 0, o_predict->count() > 0, o.corrector, o.clock != "t",
                         o_eta->count() > 0, o.sde});
    o.grid_given = o_grid->count() > 0;
    o.output_given = o_output->count() > 0;
    if (o_gfile->count() > 0) {
        if (o_grid->count() > 0) usage_error("--grid and --grid-file exclude each other");
        o.grid = "file";
    } else if (o_grid->count() == 0 && o_sigmas->count() == 0) {
        if (config) {
            o.grid = "t-power";  // unused: the config's grid
        } else {
            if (o.method != "recommended") usage_error("--grid is required (or --sigmas, or --method recommended)");
            o.grid = "recommended";
        }
    }
    if (o_sigmas->count() > 0 && o_gfile->count() > 0)
        usage_error("--grid-file does not apply with --sigmas: the noise levels are the grid");
    if (o.grid != "optimized" && o_calib->count() > 0)
        usage_error("--calibration-samples applies to --grid optimized only");
    if (o.grid == "optimized" && (o_eta->count() > 0 || o_sde->count() > 0))
        usage_error("--grid optimized calibrates a deterministic run: not with --eta or --sde");
    if (o.grid == "optimized" && o.method == "rk")
        usage_error("--grid optimized calibrates a multistep method, not rk");
    if (o.calibration_samples < 1 || o.calibration_samples > 100000)
        usage_error("--calibration-samples = " + std::to_string(o.calibration_samples) + " must lie in 1..100000");
    if (o_sigmas->count() == 0 && o_steps->count() == 0) usage_error("--steps is required");
    if (o_json->count() > 0 && o_csv->count() > 0)
        usage_error("--mixture and --mixture-csv exclude each other: give exactly one");
    check_model_options(o, {o_model->count() > 0, o_json->count() + o_csv->count() > 0, o_dtype->count() > 0,
                            o_device->count() > 0, o_batch->count() > 0, o_shape->count() > 0},
                        shape);
    if (o_json->count() + o_csv->count() == 0 && o_model->count() == 0)
        usage_error("one of --mixture, --mixture-csv and --model is required");
    const given g{o_bmin->count() > 0,  o_bmax->count() > 0,  o_smin->count() > 0, o_smax->count() > 0,
                  o_tmax->count() > 0,  o_order->count() > 0, o_tab->count() > 0,  o_gpow->count() > 0,
                  o_tend->count() > 0,  o_steps->count() > 0, o_grid->count() > 0, o_shift->count() > 0};
    if (o_sigmas->count() > 0 && o.sigmas.empty()) usage_error("--sigmas: give a list of levels or a name");
    validate(o, g);
    validate_diffusers(o);
    return true;
}

}  // namespace deis_sample
