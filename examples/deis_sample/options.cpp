// deis-sample: the command line. Every option is checked here, with its name in the
// message, before any file is opened or anything sized by an option is allocated.
#include <CLI/CLI.hpp>
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
};

void require_finite(const char* name, double v) {
    if (!std::isfinite(v)) usage_error(std::string(name) + " = " + num(v) + " must be finite");
}

// Checks every option and fills in the defaults that depend on other options.
void validate(options& o, const given& g) {
    const bool vp = o.schedule != "ve";
    const bool rk = o.method == "rk";
    // Options that do not apply to the chosen schedule, grid or method (--beta-* without
    // vp-linear, --sigma-* without ve, --grid-power with log-rho, --tableau without rk) are
    // ignored, so that a harness may pass one fixed set of options to every configuration;
    // a --tableau name is still checked.
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
        require_finite("--sigma-min", o.sigma_min);
        require_finite("--sigma-max", o.sigma_max);
        if (!(o.sigma_min >= min_sigma))
            usage_error("--sigma-min = " + num(o.sigma_min) + " must be >= " + num(min_sigma));
        if (!(o.sigma_max > o.sigma_min))
            usage_error("--sigma-max = " + num(o.sigma_max) +
                        " must be greater than --sigma-min = " + num(o.sigma_min));
        if (!(o.sigma_max <= max_sigma))
            usage_error("--sigma-max = " + num(o.sigma_max) + " must be <= " + num(max_sigma));
    }

    if (!g.t_max) o.t_max = o.schedule == "vp-cosine" ? 0.9946 : 1.0;
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
    if (vp && !(o.t_end >= min_vp_t_end))
        usage_error("--t-end = " + num(o.t_end) + " must be >= " + num(min_vp_t_end) +
                    " for a VP schedule (rho vanishes at t = 0)");
    if (!vp && !(o.t_end >= 0.0)) usage_error("--t-end = " + num(o.t_end) + " must be >= 0");

    if (o.steps < 1 || o.steps > max_steps)
        usage_error("--steps = " + std::to_string(o.steps) + " must lie in 1.." + std::to_string(max_steps));

    if (o.grid != "log-rho") {
        if (!g.grid_power) o.grid_power = o.grid == "t-power" ? 2.0 : 7.0;
        if (!(o.grid_power >= min_grid_power && o.grid_power <= max_grid_power))
            usage_error("--grid-power = " + num(o.grid_power) + " must lie in [" + num(min_grid_power) + ", " +
                        num(max_grid_power) + "]");
    }

    int tableau_order = 0;
    try {
        tableau_order = deis::with_tableau(o.tableau, [](auto tab) { return int(decltype(tab)::order); });
    } catch (const std::invalid_argument&) {
        usage_error("--tableau = " + o.tableau +
                    " is not a known tableau (euler, heun2, midpoint2, kutta3, ral3, heun3, vdh3, ssprk3, rk4)");
    }
    if (rk) {
        if (g.order && o.order != tableau_order)
            usage_error("--order = " + std::to_string(o.order) + " does not match the order " +
                        std::to_string(tableau_order) + " of --tableau " + o.tableau);
        o.order = tableau_order;
        if (o.corrector) usage_error("--corrector applies to the multistep methods only, not rk");
        if (o.predict != "noise")
            usage_error("--predict " + o.predict + " applies to the multistep methods only, not rk");
    } else if (o.method == "recommended") {
        // deis::recommended_options picks the order from the grid and sets data prediction
        // with the corrector itself (--predict and --corrector are ignored)
        if (g.order) usage_error("--order does not apply to --method recommended: it follows from the grid");
    } else if (o.method == "ddim") {
        if (!g.order) o.order = 0;
        if (o.order != 0) usage_error("--order = " + std::to_string(o.order) + " must be 0 for --method ddim");
    } else {
        if (!g.order) o.order = 3;
        if (o.order < 0 || o.order > 3)
            usage_error("--order = " + std::to_string(o.order) + " must lie in 0..3 for --method " + o.method);
        if (o.corrector && o.method == "ipndm") usage_error("--corrector is not available for --method ipndm");
    }
}

}  // namespace

bool parse_command_line(int argc, char** argv, options& o) {
    CLI::App app{
        "Samples a Gaussian mixture by integrating its probability-flow ODE from the noise XT.csv at t-max\n"
        "down to t-end with a DEIS solver, the mixture's exact eps playing the network.\n"
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
                           ->check(CLI::IsMember({"vp-linear", "vp-cosine", "ve"}));
    required.push_back(o_schedule);
    auto* o_bmin = app.add_option("--beta-min", o.beta_min, "vp-linear: beta(0), >= 0")->capture_default_str();
    auto* o_bmax = app.add_option("--beta-max", o.beta_max, "vp-linear: beta(1), in (beta-min, 1000]")
                       ->capture_default_str();
    auto* o_smin = app.add_option("--sigma-min", o.sigma_min, "ve: sigma(0), >= 1e-8")->capture_default_str();
    auto* o_smax = app.add_option("--sigma-max", o.sigma_max, "ve: sigma(1), in (sigma-min, 1e8]")
                       ->capture_default_str();
    auto* o_tmax = app.add_option("--t-max", o.t_max, "Start time [default: 1, vp-cosine 0.9946]");
    app.add_option("--t-end", o.t_end, "End time, in [0, t-max) (VE) or [1e-12, t-max) (VP)")->capture_default_str();
    required.push_back(app.add_option("--method", o.method, "(required) Solver")
                           ->check(CLI::IsMember({"ddim", "tab", "rhoab", "rk", "ipndm", "recommended"})));
    auto* o_order = app.add_option("--order", o.order, "Order [default: ddim 0, tab/rhoab/ipndm 3, rk the tableau's]");
    auto* o_tab =
        app.add_option("--tableau", o.tableau,
                       "rk only [default: rk4]: euler, heun2, midpoint2, kutta3, ral3, heun3, vdh3, ssprk3, rk4");
    auto* o_grid = app.add_option("--grid", o.grid, "(required) Time grid")
                       ->check(CLI::IsMember({"t-power", "log-rho", "rho-power"}));
    required.push_back(o_grid);
    auto* o_gpow =
        app.add_option("--grid-power", o.grid_power, "Grid exponent in [0.1, 100] [default: t-power 2, rho-power 7]");
    required.push_back(app.add_option("--steps", o.steps, "(required) Number of steps, 1..1000000"));
    app.add_flag("--float", o.use_float, "Run the solver on float states (files stay double)");
    app.add_flag("--corrector", o.corrector, "Multistep methods except ipndm: add the corrector");
    auto* o_predict = app.add_option("--predict", o.predict, "Multistep methods: what is extrapolated")
        ->check(CLI::IsMember({"noise", "data"}))
        ->capture_default_str();
    auto* o_output = app.add_option("--model-output", o.output, "What the network returns (converted back by the solver)")
        ->check(CLI::IsMember({"eps", "x0", "v", "score"}))
        ->capture_default_str();

    add_diffusers_options(app, o);

    try {
        app.parse(argc, argv);
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
    o.grid_given = o_grid->count() > 0;
    o.output_given = o_output->count() > 0;
    o.predict_given = o_predict->count() > 0;
    if (config && !o.grid_given) o.grid = "t-power";  // unused: the config's grid
    if (o_json->count() > 0 && o_csv->count() > 0)
        usage_error("--mixture and --mixture-csv exclude each other: give exactly one");
    if (o_json->count() + o_csv->count() == 0) usage_error("one of --mixture and --mixture-csv is required");
    const given g{o_bmin->count() > 0, o_bmax->count() > 0,  o_smin->count() > 0, o_smax->count() > 0,
                  o_tmax->count() > 0, o_order->count() > 0, o_tab->count() > 0,  o_gpow->count() > 0};
    validate(o, g);
    validate_diffusers(o);
    return true;
}

}  // namespace deis_sample
