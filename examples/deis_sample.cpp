// deis-sample: integrates the probability-flow ODE of a Gaussian mixture (whose exact noise
// prediction plays the network) from given noise at t_max down to t_end with one of the
// library's solvers, and writes the samples. Usage: docs/deis-sample.md, or --help.
//
// Exit codes: 0 success (prints "nfe=<count>" on stdout), 1 bad command line, 2 bad input
// file, 3 the run stopped on a non-finite network output, 4 the output could not be written.
// Every failure prints exactly one line on stderr and leaves no output file.
#include <CLI/CLI.hpp>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deis/deis.hpp>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/csv_io.hpp"
#include "support/mixture_io.hpp"

namespace {

// Exit codes, one per kind of failure.
constexpr int exit_usage = 1;
constexpr int exit_input = 2;
constexpr int exit_run = 3;
constexpr int exit_write = 4;

// A failure with its exit code; the message is printed as one line.
struct failure : std::runtime_error {
    failure(int code_, const std::string& msg) : std::runtime_error(msg), code(code_) {}
    int code;
};

[[noreturn]] void usage_error(const std::string& msg) { throw failure(exit_usage, msg); }

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

int report(int code, const std::string& msg) {
    std::cerr << "deis-sample: error: " << one_line(msg) << '\n';
    return code;
}

// The shortest decimal form that reads back as v (0.7, not 0.69999999999999996).
std::string num(double v) {
    char buf[32];
    for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v || !std::isfinite(v)) break;
    }
    return buf;
}

struct options {
    std::string mixture_json, mixture_csv, noise, out;
    std::string schedule, method, grid, tableau = "rk4";
    std::string predict = "noise", output = "eps";
    double beta_min = 0.1, beta_max = 20.0, sigma_min = 0.01, sigma_max = 50.0;
    double t_max = 1.0, t_end = 1e-3, grid_power = 2.0;
    int order = -1, steps = 0;
    bool use_float = false, corrector = false;
};

// What was given explicitly, for the defaults that depend on other options.
struct given {
    bool beta_min, beta_max, sigma_min, sigma_max, t_max, order, tableau, grid_power;
};

void require_finite(const char* name, double v) {
    if (!std::isfinite(v)) usage_error(std::string(name) + " = " + num(v) + " must be finite");
}

deis::model_output parse_output(const std::string& s) {
    if (s == "x0") return deis::model_output::x0;
    if (s == "v") return deis::model_output::v;
    if (s == "score") return deis::model_output::score;
    return deis::model_output::eps;
}

// Checks every option and fills in the defaults that depend on other options. Everything a
// command line can get wrong is reported here with the option's name, before any file is read.
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
    } else if (o.schedule == "ve") {
        require_finite("--sigma-min", o.sigma_min);
        require_finite("--sigma-max", o.sigma_max);
        if (!(o.sigma_min > 0.0)) usage_error("--sigma-min = " + num(o.sigma_min) + " must be > 0");
        if (!(o.sigma_max > o.sigma_min))
            usage_error("--sigma-max = " + num(o.sigma_max) +
                        " must be greater than --sigma-min = " + num(o.sigma_min));
    }

    if (!g.t_max) o.t_max = o.schedule == "vp-cosine" ? 0.9946 : 1.0;
    require_finite("--t-max", o.t_max);
    require_finite("--t-end", o.t_end);
    if (o.schedule == "vp-linear" && !(o.t_max > 0.0))
        usage_error("--t-max = " + num(o.t_max) + " must be > 0 for --schedule vp-linear");
    if (o.schedule == "vp-cosine" && !(o.t_max > 0.0 && o.t_max < 1.0))
        usage_error("--t-max = " + num(o.t_max) +
                    " must lie in (0, 1) for --schedule vp-cosine (rho is infinite at t = 1)");
    if (o.schedule == "ve" && !(o.t_max > 0.0 && o.t_max <= 1.0))
        usage_error("--t-max = " + num(o.t_max) + " must lie in (0, 1] for --schedule ve");
    if (!(o.t_end < o.t_max))
        usage_error("--t-end = " + num(o.t_end) + " must be smaller than --t-max = " + num(o.t_max));
    if (vp && !(o.t_end > 0.0))
        usage_error("--t-end = " + num(o.t_end) + " must be > 0 for a VP schedule (rho vanishes at t = 0)");
    if (!vp && !(o.t_end >= 0.0)) usage_error("--t-end = " + num(o.t_end) + " must be >= 0");

    if (o.steps < 1) usage_error("--steps = " + std::to_string(o.steps) + " must be >= 1");

    if (o.grid != "log-rho") {
        if (!g.grid_power) o.grid_power = o.grid == "t-power" ? 2.0 : 7.0;
        if (!(std::isfinite(o.grid_power) && o.grid_power > 0.0))
            usage_error("--grid-power = " + num(o.grid_power) + " must be finite and > 0");
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

// The mixture's exact eps, returned as the quantity `output` names, with x = alpha x0 + sigma eps,
// v = alpha eps - sigma x0 and score = -eps/sigma. A Network (deis/common.hpp).
template <class Schedule>
class mixture_network {
public:
    mixture_network(deis::gmm_eps<Schedule> eps, deis::model_output output) : eps_(std::move(eps)), output_(output) {}

    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) const {
        eps_(x, t, out);
        const double alpha = eps_.schedule().alpha(t), sigma = eps_.schedule().sigma(t);
        const Scalar a = Scalar(alpha), s = Scalar(sigma);
        switch (output_) {
            case deis::model_output::eps:
                break;
            case deis::model_output::x0:
                out = (x - s * out) / a;
                break;
            case deis::model_output::v:
                out = a * out - s * ((x - s * out) / a);
                break;
            case deis::model_output::score:
                out = -out / s;
                break;
            case deis::model_output::velocity:  // not offered by parse_output
                throw std::logic_error("deis-sample: --model-output velocity is not available");
        }
    }

private:
    deis::gmm_eps<Schedule> eps_;
    deis::model_output output_;
};

std::string describe_failure(const deis::sample_result& r, int steps) {
    return std::string(deis::to_string(r.status)) + " at t = " + num(r.failed_time) + " (in step " +
           std::to_string(r.steps + 1) + " of " + std::to_string(steps) + ")";
}

// Builds the grid and the solver, runs it on a copy of x0 in Scalar, writes the result.
template <class Scalar, class Schedule>
void run(const options& o, const Schedule& sch, const deis::gaussian_mixture& mix, const Eigen::MatrixXd& noise) {
    const deis::grid_kind kind = o.grid == "t-power"   ? deis::grid_kind::power_t
                                 : o.grid == "log-rho" ? deis::grid_kind::log_rho
                                                       : deis::grid_kind::power_rho;
    std::vector<double> grid;
    try {
        grid = deis::make_grid(sch, kind, o.steps, o.t_max, o.t_end, o.grid_power);
    } catch (const std::invalid_argument& e) {
        usage_error(std::string("the grid (--grid, --steps, --t-max, --t-end) is invalid: ") + e.what());
    }
    const deis::model_output output = parse_output(o.output);
    const mixture_network<Schedule> net(deis::gmm_eps<Schedule>(mix, sch), output);
    deis::state<Scalar> x = noise.cast<Scalar>();
    deis::sample_result r;
    int nfe = 0;

    if (o.method == "rk") {
        deis::with_tableau(o.tableau, [&](auto tab) {
            using tableau = decltype(tab);
            deis::rk_options ro;
            ro.output = output;
            const deis::rk_solver<tableau> solver(sch, grid, ro);
            r = solver.sample(net, x);
            nfe = solver.nfe();
        });
    } else {
        deis::multistep_options mo;
        if (o.method == "recommended") {
            mo = deis::recommended_options(sch, grid);
        } else {
            mo.method = o.method == "ddim"    ? deis::multistep_method::ddim
                        : o.method == "tab"   ? deis::multistep_method::tab
                        : o.method == "rhoab" ? deis::multistep_method::rhoab
                                              : deis::multistep_method::ipndm;
            mo.order = o.order;
            mo.predict = o.predict == "data" ? deis::prediction::data : deis::prediction::noise;
            mo.corrector = o.corrector;
        }
        mo.output = output;
        deis::multistep_solver solver = [&] {
            try {
                return deis::multistep_solver(sch, grid, mo);
            } catch (const std::invalid_argument& e) {
                usage_error(e.what());
            }
        }();
        r = solver.sample(net, x);
        nfe = solver.nfe();
    }
    if (!r.ok()) throw failure(exit_run, describe_failure(r, o.steps) + "; no output written");
    if (r.nfe != nfe)
        throw failure(exit_run, "the solver made " + std::to_string(r.nfe) + " network calls, expected " +
                                    std::to_string(nfe) + "; no output written");
    if (!x.allFinite()) throw failure(exit_run, "the final samples are not finite; no output written");

    try {
        deis_tools::write_samples(o.out, x);
    } catch (const std::exception& e) {
        throw failure(exit_write, e.what());
    }
    std::cout << "nfe=" << r.nfe << '\n';
}

// Reads the inputs, checks them against each other, and runs on the chosen schedule.
template <class Schedule>
void run_on(const options& o, const Schedule& sch) {
    auto mix = [&] {
        try {
            return o.mixture_json.empty() ? deis_tools::read_mixture_csv(o.mixture_csv)
                                          : deis_tools::read_mixture_json(o.mixture_json);
        } catch (const std::exception& e) {
            throw failure(exit_input, e.what());
        }
    }();
    Eigen::MatrixXd noise;
    try {
        noise = deis_tools::read_samples(o.noise);
    } catch (const std::exception& e) {
        throw failure(exit_input, e.what());
    }
    if (noise.rows() != mix.dim())
        throw failure(exit_input, o.noise + ": samples have dimension " + std::to_string(noise.rows()) +
                                      " but the mixture " + (o.mixture_json.empty() ? o.mixture_csv : o.mixture_json) +
                                      " has dimension " + std::to_string(mix.dim()));
    if (o.use_float) {
        for (Eigen::Index j = 0; j < noise.cols(); ++j)
            for (Eigen::Index d = 0; d < noise.rows(); ++d)
                if (std::abs(noise(d, j)) > double(FLT_MAX))
                    throw failure(exit_input, o.noise + ":" + std::to_string(j + 1) + ": field " +
                                                  std::to_string(d + 1) + " (" + num(noise(d, j)) +
                                                  ") does not fit in a float (--float)");
        run<float>(o, sch, mix, noise);
    } else {
        run<double>(o, sch, mix, noise);
    }
}

void run_schedule(const options& o) {
    try {
        if (o.schedule == "vp-linear") {
            const deis::vp_linear sch(o.beta_min, o.beta_max, o.t_max);
            return run_on(o, sch);
        }
        if (o.schedule == "vp-cosine") {
            const deis::vp_cosine sch(0.008, o.t_max);
            return run_on(o, sch);
        }
        const deis::ve sch(o.sigma_min, o.sigma_max);
        return run_on(o, sch);
    } catch (const std::invalid_argument& e) {
        // a schedule parameter the checks above let through
        usage_error(e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    CLI::App app{
        "Samples a Gaussian mixture by integrating its probability-flow ODE from the noise XT.csv at t-max\n"
        "down to t-end with a DEIS solver, the mixture's exact eps playing the network.\n"
        "Writes X0.csv (one sample per row) and prints nfe=<network calls>. See docs/deis-sample.md.",
        "deis-sample"};

    // Required options are checked after parsing, so that an unknown option is reported first.
    std::vector<CLI::Option*> required;
    auto* o_json = app.add_option("--mixture", o.mixture_json, "Mixture as JSON {\"weights\", \"means\", \"stds\"}");
    auto* o_csv = app.add_option("--mixture-csv", o.mixture_csv, "Mixture as CSV: header mu0..,std0..,weight");
    required.push_back(
        app.add_option("--noise", o.noise, "(required) Initial points at t-max, one per row, no header"));
    required.push_back(app.add_option("--out", o.out, "(required) Output file for the samples at t-end"));
    required.push_back(app.add_option("--schedule", o.schedule, "(required) Noise schedule")
                           ->check(CLI::IsMember({"vp-linear", "vp-cosine", "ve"})));
    auto* o_bmin = app.add_option("--beta-min", o.beta_min, "vp-linear: beta(0)")->capture_default_str();
    auto* o_bmax = app.add_option("--beta-max", o.beta_max, "vp-linear: beta(1)")->capture_default_str();
    auto* o_smin = app.add_option("--sigma-min", o.sigma_min, "ve: sigma(0)")->capture_default_str();
    auto* o_smax = app.add_option("--sigma-max", o.sigma_max, "ve: sigma(1)")->capture_default_str();
    auto* o_tmax = app.add_option("--t-max", o.t_max, "Start time [default: 1, vp-cosine 0.9946]");
    app.add_option("--t-end", o.t_end, "End time")->capture_default_str();
    required.push_back(app.add_option("--method", o.method, "(required) Solver")
                           ->check(CLI::IsMember({"ddim", "tab", "rhoab", "rk", "ipndm", "recommended"})));
    auto* o_order = app.add_option("--order", o.order, "Order [default: ddim 0, tab/rhoab/ipndm 3, rk the tableau's]");
    auto* o_tab =
        app.add_option("--tableau", o.tableau,
                       "rk only [default: rk4]: euler, heun2, midpoint2, kutta3, ral3, heun3, vdh3, ssprk3, rk4");
    required.push_back(app.add_option("--grid", o.grid, "(required) Time grid")
                           ->check(CLI::IsMember({"t-power", "log-rho", "rho-power"})));
    auto* o_gpow = app.add_option("--grid-power", o.grid_power, "Grid exponent [default: t-power 2, rho-power 7]");
    required.push_back(app.add_option("--steps", o.steps, "(required) Number of steps N >= 1"));
    app.add_flag("--float", o.use_float, "Run the solver on float states (files stay double)");
    app.add_flag("--corrector", o.corrector, "Multistep methods except ipndm: add the corrector");
    app.add_option("--predict", o.predict, "Multistep methods: what is extrapolated")
        ->check(CLI::IsMember({"noise", "data"}))
        ->capture_default_str();
    app.add_option("--model-output", o.output, "What the network returns (converted back by the solver)")
        ->check(CLI::IsMember({"eps", "x0", "v", "score"}))
        ->capture_default_str();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        std::string msg = e.what();
        // CLI11 says "--steps: At Most 1 required but received 2" for a repeated option
        const auto at = msg.find(": At Most 1 required but received");
        if (at != std::string::npos) msg = msg.substr(0, at) + " is given more than once";
        return report(exit_usage, msg);
    }

    try {
        for (const CLI::Option* opt : required)
            if (opt->count() == 0) usage_error(opt->get_name() + " is required");
        if (o_json->count() > 0 && o_csv->count() > 0)
            usage_error("--mixture and --mixture-csv exclude each other: give exactly one");
        if (o_json->count() + o_csv->count() == 0) usage_error("one of --mixture and --mixture-csv is required");
        const given g{o_bmin->count() > 0, o_bmax->count() > 0,  o_smin->count() > 0, o_smax->count() > 0,
                      o_tmax->count() > 0, o_order->count() > 0, o_tab->count() > 0,  o_gpow->count() > 0};
        validate(o, g);
        run_schedule(o);
    } catch (const failure& e) {
        return report(e.code, e.what());
    } catch (const std::exception& e) {
        return report(exit_input, e.what());
    }
    return 0;
}
