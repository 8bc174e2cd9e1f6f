// deis-sample: models from diffusers (deis/diffusers.hpp): --scheduler-config (schedule, grid
// and model output from a scheduler_config.json; explicit --grid, --model-output and --predict
// override it), img2img (--init and --strength: the data noised to the first time of the tail
// of the grid), --invert (from the data --init up to the noise end) and --print-grid (one line
// per network call before the run: "t tau" for a discrete schedule, else "t").
#include <algorithm>
#include <cmath>
#include <deis/deis.hpp>
#include <deis/diffusers.hpp>
#include <iostream>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "deis_sample.hpp"
#include "interrupt.hpp"
#include "run_control.hpp"
#include "support/csv_io.hpp"
#include "support/input_file.hpp"

namespace deis_sample {

void add_diffusers_options(CLI::App& app, options& o) {
    o.strength = std::numeric_limits<double>::quiet_NaN();  // not given
    app.add_option("--scheduler-config", o.scheduler_config,
                   "diffusers scheduler_config.json: sets the schedule, grid and model output "
                   "(explicit --grid, --model-output, --predict override); replaces --schedule");
    app.add_option("--init", o.init, "Data to start from (img2img), or to invert (--invert); one per row");
    add_number(app, "--strength", o.strength, "With --init: img2img strength in (0, 1] [default: 1]");
    add_number(app, "--image-seq-len", o.image_seq_len,
               "Image tokens for a config with dynamic shifting (Flux: (H/16)(W/16))")
        ->capture_default_str();
    app.add_flag("--invert", o.invert, "Integrate from the data --init up to the noise end (no --noise)");
    app.add_flag("--print-grid", o.print_grid,
                 "Before the run, print one line per network call: t, and the timestep tau of a discrete schedule");
}

void validate_diffusers(options& o) {
    const bool strength_given = !std::isnan(o.strength);
    if (strength_given && o.init.empty()) usage_error("--strength needs --init (the data to start from)");
    if (o.invert && o.init.empty()) usage_error("--invert needs --init (the data to invert)");
    if (o.invert && strength_given) usage_error("--invert and --strength exclude each other");
    if (o.invert && !o.noise.empty()) usage_error("--noise does not apply to --invert, which starts from --init");
    if (!o.init.empty() && !o.invert && o.noise.empty()) usage_error("--init (img2img) needs --noise as well");
    if (!strength_given) o.strength = 1.0;
    if (!(o.strength > 0.0 && o.strength <= 1.0)) usage_error("--strength = " + num(o.strength) + " must lie in (0, 1]");
    if (!(std::isfinite(o.image_seq_len) && o.image_seq_len > 0.0 && o.image_seq_len <= 1e9))
        usage_error("--image-seq-len = " + num(o.image_seq_len) + " must lie in (0, 1e9]");
}

void refuse_ignored_on_diffusers_path(const options& o) {
    if (!uses_diffusers_run(o)) return;
    const std::string path = !o.scheduler_config.empty() ? "--scheduler-config"
                             : o.invert                  ? "--invert"
                             : !o.init.empty()           ? "--init"
                                                         : "--print-grid";
    const auto refuse = [&](const std::string& what) {
        usage_error(what + " is not honoured with " + path + " (its run takes the grid from --grid or the config)");
    };
    if (o.scheduler_config.empty() && (o.schedule == "flow" || o.schedule == "edm"))
        usage_error("--schedule " + o.schedule + " is not available with " + path +
                    " (vp-linear, vp-cosine and ve are); give a flow-matching --scheduler-config instead");
    if (!o.grid_file.empty()) refuse("--grid-file");
    if (!o.sigmas.empty()) refuse("--sigmas");
    if (o.grid == "recommended" || o.grid == "optimized") refuse("--grid " + o.grid);
    if (o.flow_shift != 1.0) refuse("--flow-shift");  // 1: no shift
    if (!o.save_grid.empty()) refuse("--save-grid");
}

void read_diffusers_inputs(const options& o, problem& p) {
    if (o.init.empty()) return;
    p.init = deis_tools::read_samples(o.init);
    if (p.init.rows() != p.mixture.dim())
        throw failure(exit_input, o.init + ": samples have dimension " + std::to_string(p.init.rows()) +
                                      " but the mixture has dimension " + std::to_string(p.mixture.dim()));
    if (!o.noise.empty() && p.init.cols() != p.noise.cols())
        throw failure(exit_input, o.init + ": " + std::to_string(p.init.cols()) + " samples but --noise " + o.noise +
                                      " has " + std::to_string(p.noise.cols()) + " (img2img noises each one)");
}

namespace {

// The mixture's exact model, told the network's timestep (for a discrete schedule the training
// timestep tau, for flow matching 1000 t, mapped back by `map`), as a diffusers network is.
template <class Schedule>
struct timestep_mixture {
    deis::gmm_model<Schedule> model;
    deis::timestep_map map;
    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double tau, deis::state<Scalar>& out) {
        model(x, (tau - map.offset) / map.scale, out);
    }
};

// The times the solver calls the network at, by a run on one zero sample whose network
// records them and returns zeros (no mathematics of the program's own: the solver's times).
template <class Solver>
std::vector<double> call_times(const Solver& solver, Eigen::Index dim) {
    std::vector<double> times;
    auto recorder = [&times](const deis::state<double>& x, double t, deis::state<double>& out) {
        times.push_back(t);
        out.setZero(x.rows(), x.cols());
    };
    deis::state<double> x = deis::state<double>::Zero(dim, 1);
    (void)solver.sample(recorder, x);
    return times;
}

void print_grid(const std::vector<double>& times, const deis::timestep_map* map) {
    for (double t : times) {
        if (map)
            std::cout << num(t) << ' ' << num((*map)(t)) << '\n';
        else
            std::cout << num(t) << '\n';
    }
    std::cout.flush();
}

struct setting {
    std::vector<double> grid;
    deis::model_output output = deis::model_output::eps;
    bool discrete = false;
    bool flow = false;
    deis::timestep_map map{1.0, 0.0, false};
};

template <class Scalar, class Schedule>
void run_setting(const options& o, const Schedule& sch, setting st, problem p) {
    if (!(p.init.size() == 0) && !o.invert) st.grid = deis::img2img_grid(st.grid, o.strength,
                                                                   st.flow ? deis::strength_rule::flow
                                                                           : deis::strength_rule::steps);
    if (o.invert) std::reverse(st.grid.begin(), st.grid.end());
    const int steps = int(st.grid.size()) - 1;

    // the start: given noise, the noised data (img2img) or the data (inversion)
    Eigen::MatrixXd start;
    if (o.invert) {
        start = std::move(p.init);
    } else if (!(p.init.size() == 0)) {
        start.resize(p.init.rows(), p.init.cols());
        deis::noise_data(sch, st.grid.front(), p.init, p.noise, start);
    } else {
        start = std::move(p.noise);
    }
    deis::state<Scalar> x = start.template cast<Scalar>();

    timestep_mixture<Schedule> net{deis::gmm_model<Schedule>(std::move(p.mixture), sch, st.output), st.map};
    const deis::timestep_network<timestep_mixture<Schedule>> tnet(net, st.map);
    deis::sample_result r;
    int nfe = 0;
    const deis::timestep_map* shown = st.discrete ? &st.map : nullptr;
    run_control control(o.progress, steps);  // --progress, and a signal stops the run within one step
    try {
        throw_if_interrupted(stage::setup);
        if (o.method == "rk") {
            deis::with_tableau(o.tableau, [&](auto tab) {
                using tableau = decltype(tab);
                deis::rk_options ro;
                ro.output = st.output;
                ro.invert = o.invert;
                control.calls_per_step = tableau::stages;
                const deis::rk_solver<tableau> solver = [&] {
                    try {
                        return deis::rk_solver<tableau>(sch, st.grid, ro);
                    } catch (const std::invalid_argument& e) {
                        usage_error(e.what());
                    }
                }();
                if (o.print_grid) print_grid(call_times(solver, x.rows()), shown);
                deis::rk_workspace<deis::state<Scalar>> ws(solver, x);
                r = solver.sample(tnet, x, ws, control.observer);
                nfe = solver.nfe();
            });
        } else {
            deis::multistep_options mo;
            if (o.method == "recommended") {
                try {
                    mo = deis::recommended_options(sch, st.grid);
                } catch (const std::invalid_argument& e) {
                    usage_error(e.what());
                }
            } else {
                mo.method = o.method == "ddim"    ? deis::multistep_method::ddim
                            : o.method == "tab"   ? deis::multistep_method::tab
                            : o.method == "rhoab" ? deis::multistep_method::rhoab
                                                  : deis::multistep_method::ipndm;
                mo.order = o.order;
                // a flow-matching grid starts at pure noise, where only data prediction starts
                const bool data = o.predict_given ? o.predict == "data" : (st.flow && !o.invert);
                mo.predict = data ? deis::prediction::data : deis::prediction::noise;
                mo.corrector = o.corrector;
                if (o.clock == "vp") mo.clock = deis::tab_clock::vp_linear;
            }
            mo.output = st.output;
            mo.invert = o.invert;
            apply_stochastic_options(o, mo);
            const deis::multistep_solver solver = [&] {
                try {
                    return deis::multistep_solver(sch, st.grid, mo);
                } catch (const std::invalid_argument& e) {
                    usage_error(e.what());
                }
            }();
            if (o.print_grid) print_grid(call_times(solver, x.rows()), shown);
            deis::multistep_workspace<deis::state<Scalar>> ws(solver, x);
            r = solver.sample(tnet, x, ws, control.observer);
            nfe = solver.nfe();
        }
        control.steps_ended(r);
        check_and_write(o, r, nfe, steps, x);
    } catch (const interrupted& i) {
        throw control.interruption(i);
    }
    std::cout << "nfe=" << r.nfe << '\n';
}

template <class Schedule>
void run_schedule(const options& o, const Schedule& sch, setting st, problem p) {
    if (o.use_float)
        run_setting<float>(o, sch, std::move(st), std::move(p));
    else
        run_setting<double>(o, sch, std::move(st), std::move(p));
}

// The --scheduler-config file: a regular file of at most max_scheduler_config_bytes, read
// before it is parsed (deis::parse_scheduler_config). Failures: failure(exit_input).
deis::scheduler_config read_scheduler_config(const std::string& path) {
    std::string text;
    try {
        deis_tools::input_file in(path, max_scheduler_config_bytes, "--scheduler-config " + path);
        text.assign(std::istreambuf_iterator<char>(in.stream()), std::istreambuf_iterator<char>());
    } catch (const std::runtime_error& e) {
        throw failure(exit_input, e.what());
    }
    try {
        return deis::parse_scheduler_config(text);
    } catch (const std::invalid_argument& e) {
        throw failure(exit_input, std::string(e.what()) + " (in '" + path + "')");
    }
}

deis::grid_kind grid_kind_of(const std::string& g) {
    return g == "t-power" ? deis::grid_kind::power_t : g == "log-rho" ? deis::grid_kind::log_rho
                                                                      : deis::grid_kind::power_rho;
}

template <class Schedule>
std::vector<double> explicit_grid(const options& o, const Schedule& sch, double t_max) {
    try {
        return deis::make_grid(sch, grid_kind_of(o.grid), o.steps, t_max, o.t_end, o.grid_power);
    } catch (const std::invalid_argument& e) {
        usage_error(std::string("the grid (--grid, --steps, --t-max, --t-end) is invalid: ") + e.what());
    }
}

}  // namespace

void run_diffusers(const options& o, problem p) {
    if (o.scheduler_config.empty()) {
        // --schedule with --init/--strength, --invert or --print-grid
        try {
            setting st;
            st.output = parse_output(o.output);
            if (o.schedule == "vp-linear") {
                const deis::vp_linear s(o.beta_min, o.beta_max, o.t_max);
                st.grid = explicit_grid(o, s, o.t_max);
                return run_schedule(o, s, std::move(st), std::move(p));
            }
            if (o.schedule == "vp-cosine") {
                const deis::vp_cosine s(0.008, o.t_max);
                st.grid = explicit_grid(o, s, o.t_max);
                return run_schedule(o, s, std::move(st), std::move(p));
            }
            const deis::ve s(o.sigma_min, o.sigma_max);
            st.grid = explicit_grid(o, s, o.t_max);
            return run_schedule(o, s, std::move(st), std::move(p));
        } catch (const std::invalid_argument& e) {
            usage_error(e.what());
        }
    }
    deis::scheduler_config c = read_scheduler_config(o.scheduler_config);
    setting st;
    st.output = o.output_given ? parse_output(o.output) : c.output;
    st.discrete = c.discrete();
    st.flow = !c.discrete();
    st.map = c.timesteps();
    try {
        std::visit(
            [&](const auto& sch) {
                st.grid = o.grid_given ? explicit_grid(o, sch, std::min(o.t_max, sch.t_max())) : c.grid(o.steps, o.image_seq_len);
            },
            c.schedule);
    } catch (const std::invalid_argument& e) {
        usage_error(std::string("--scheduler-config ") + o.scheduler_config + " with --steps " +
                    std::to_string(o.steps) + ": " + e.what());
    }
    try {
        std::visit([&](const auto& sch) { run_schedule(o, sch, std::move(st), std::move(p)); }, c.schedule);
    } catch (const std::invalid_argument& e) {
        usage_error(e.what());
    }
}

}  // namespace deis_sample
