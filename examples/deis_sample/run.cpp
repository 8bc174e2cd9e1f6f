// deis-sample: the run, one path for every option: the schedule (schedule.cpp: make_model),
// the network (network.hpp: the mixture's, or --model's), the grid (grid.hpp: build_grid), the
// solver's options (solver_options), the run on the noise (or on the noised --init, or from the
// data --init with --invert), and the output: the samples to --out and the grid to --save-grid, each
// through a temporary renamed into place at the end (check_and_write).
#include <algorithm>
#include <deis/deis.hpp>
#include <iomanip>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "deis_sample.hpp"
#include "grid.hpp"
#include "interrupt.hpp"
#include "network.hpp"
#include "run_control.hpp"
#include "support/atomic_file.hpp"
#include "support/csv_io.hpp"

namespace deis_sample {

deis::model_output parse_output(const std::string& s) {
    if (s == "velocity") return deis::model_output::velocity;
    if (s == "x0") return deis::model_output::x0;
    if (s == "v") return deis::model_output::v;
    if (s == "score") return deis::model_output::score;
    return deis::model_output::eps;
}

namespace {

/// What the run adds to the command line's choice of a solver.
struct solver_context {
    deis::model_output output = deis::model_output::eps;  ///< the network's (model::output)
    bool invert = false;                                  ///< --invert: from data to noise
    bool data_by_default = false;  ///< data prediction unless --predict (a flow-matching config's sampling run)
};

/// The options of the multistep solver, the one place where the command line's configuration
/// (o.config: --method NAME and the flags that spell it, options.cpp) becomes
/// deis::multistep_options, with what the run adds: the network's output, the direction, and
/// data prediction for a flow-matching config's sampling run when the configuration leaves
/// the prediction unset. `grid`: the grid the run integrates, in sampling order (t_max first,
/// also for an inversion), which --method recommended follows. Failures: failure(exit_usage).
template <class Schedule>
deis::multistep_options solver_options(const options& o, const Schedule& sch, const std::vector<double>& grid,
                                       const solver_context& c) {
    deis::solver_config config = o.config;
    deis::multistep_options& m = config.multistep;
    // (a preset computes in its own prediction)
    if (config.kind == deis::solver_kind::multistep && !m.predict && c.data_by_default &&
        !(m.method && deis::is_preset(*m.method)))
        m.predict = deis::prediction::data;
    m.output = c.output;
    m.invert = c.invert;
    try {
        return deis::resolve(config, sch, grid);
    } catch (const std::invalid_argument& e) {
        usage_error("--method " + deis::to_string(config) + ": " + e.what());
    }
}

/// The options of the Runge-Kutta solver (--method rk, --tableau chooses the solver's type;
/// --method heun is heun2 with final_euler).
deis::rk_options rk_solver_options(const options& o, const solver_context& c) {
    deis::rk_options ro = o.config.rk;
    ro.output = c.output;
    ro.invert = c.invert;
    return ro;
}

std::string describe_failure(const deis::sample_result& r, int steps) {
    return std::string(deis::to_string(r.status)) + " at t = " + num(r.failed_time) + " (in step " +
           std::to_string(r.steps + 1) + " of " + std::to_string(steps) + ")";
}

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

// --print-grid: one line per network call, "t tau" with a discrete config's timestep map.
void print_grid(const std::vector<double>& times, const std::optional<deis::timestep_map>& map) {
    for (double t : times) {
        if (map)
            std::cout << num(t) << ' ' << num((*map)(t)) << '\n';
        else
            std::cout << num(t) << '\n';
    }
    std::cout.flush();
}

// Builds a solver, a usage error naming the library's reason when it refuses the configuration
// (after "--invert: " for an inversion, whose grid runs the other way).
template <class Make>
auto make_solver(const options& o, Make&& make) {
    try {
        return make();
    } catch (const std::invalid_argument& e) {
        usage_error((o.invert ? "--invert: " : "") + std::string(e.what()));
    }
}

// The run on one schedule in Scalar: the grid, the start, the solver, the samples, the output.
template <class Scalar, class Schedule>
void run_with(const options& o, const model& m, const deis::scheduler_config* config, const Schedule& sch, problem p) {
    const interruptible_schedule<Schedule> setup_sch(sch);
    const Eigen::Index dim = p.dim();
    // the network: the mixture's exact output, or the trained one of --model
    std::optional<mixture_network<Schedule>> mixture;
    std::optional<trained_model_network> trained;
    if (p.network)
        trained.emplace(*p.network, m.timesteps);
    else
        mixture.emplace(deis::gmm_eps<Schedule>(std::move(*p.mixture), sch), m.output, m.timesteps);
    run_network net = trained ? run_network(*trained) : run_network(*mixture);
    const solver_context ctx{m.output, o.invert, m.config_flow && !o.invert};
    const solver_context sampling_ctx{m.output, false, m.config_flow};  // what --grid optimized calibrates

    run_grid g;
    try {
        throw_if_interrupted(stage::setup);
        g = build_grid(o, m, config, sch, setup_sch, net,
                       [&](const std::vector<double>& grid) { return solver_options(o, setup_sch, grid, sampling_ctx); },
                       dim);
    } catch (const interrupted& i) {
        run_control before(o.progress, o.steps);
        throw before.interruption(i);
    }
    const int steps = int(g.run.size()) - 1;

    // the start: the noise, the data noised to the first time (img2img), or the data (--invert)
    deis::state<Scalar> x;
    {
        Eigen::MatrixXd start;
        if (o.invert) {
            start = std::move(p.init);
        } else if (p.init.size() != 0) {
            start.resize(p.init.rows(), p.init.cols());
            deis::noise_data(sch, g.run.front(), p.init, p.noise, start);
        } else {
            start = std::move(p.noise);
        }
        if constexpr (std::is_same_v<Scalar, double>)
            x = std::move(start);  // the noise's own buffer
        else
            x = start.cast<Scalar>();
    }
    std::vector<double> solver_grid = g.run;
    if (o.invert) std::reverse(solver_grid.begin(), solver_grid.end());

    deis::sample_result r;
    int nfe = 0;
    run_control control(o.progress, steps);  // --progress, and a signal stops the run within one step
    try {
        throw_if_interrupted(stage::setup);
        if (o.method == "rk") {
            deis::with_tableau(o.tableau, [&](auto tab) {
                using tableau = decltype(tab);
                control.calls_per_step = tableau::stages;
                const deis::rk_solver<tableau> solver = make_solver(
                    o, [&] { return deis::rk_solver<tableau>(setup_sch, std::move(solver_grid), rk_solver_options(o, ctx)); });
                if (o.print_grid) print_grid(call_times(solver, dim), m.discrete ? m.timesteps : std::nullopt);
                deis::rk_workspace<deis::state<Scalar>> ws(solver, x);
                r = solver.sample(net, x, ws, control.observer);
                nfe = solver.nfe();
            });
        } else {
            const deis::multistep_options mo = solver_options(o, setup_sch, g.run, ctx);
            const deis::multistep_solver solver =
                make_solver(o, [&] { return deis::multistep_solver(setup_sch, std::move(solver_grid), mo); });
            if (o.print_grid) print_grid(call_times(solver, dim), m.discrete ? m.timesteps : std::nullopt);
            deis::multistep_workspace<deis::state<Scalar>> ws(solver, x);
            r = solver.sample(net, x, ws, control.observer);
            nfe = solver.nfe();
        }
        control.steps_ended(r);
        check_and_write(o, r, nfe, steps, x, &g.full);
    } catch (const interrupted& i) {
        throw control.interruption(i);
    }
    std::cout << "nfe=" << r.nfe << '\n';
}

}  // namespace

namespace {

// One output through a temporary (support/atomic_file.hpp), its failures as exit_write
// naming the option.
template <class Write>
void prepare_output(std::optional<deis_tools::atomic_file>& file, const char* option, const std::string& path,
                    Write&& write) {
    try {
        file.emplace(path);
        write(file->stream());
        file->finish();
    } catch (const std::runtime_error& e) {
        throw failure(exit_write, std::string(option) + " " + e.what());
    }
}

void commit_output(deis_tools::atomic_file& file, const char* option) {
    try {
        file.commit();
    } catch (const std::runtime_error& e) {
        throw failure(exit_write, std::string(option) + " " + e.what());
    }
}

}  // namespace

template <class Scalar>
void check_and_write(const options& o, const deis::sample_result& r, int nfe, int steps,
                     const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& x, const std::vector<double>* grid) {
    if (!r.ok()) throw failure(exit_run, describe_failure(r, steps) + "; no output written");
    if (r.nfe != nfe)
        throw failure(exit_run, "the solver made " + std::to_string(r.nfe) + " network calls, expected " +
                                    std::to_string(nfe) + "; no output written");
    if (!x.allFinite()) throw failure(exit_run, "the final samples are not finite; no output written");

    // both outputs to temporaries (removed when anything below throws), then renamed together
    std::optional<deis_tools::atomic_file> samples, saved_grid;
    prepare_output(samples, "--out", o.out, [&](std::ostream& out) {
        // stops before every row once a signal has arrived (or a write failed)
        if (!deis_tools::write_samples_to(out, x, [&] { return received_signal != 0 || !out; }))
            throw_if_interrupted(stage::writing, r.nfe);
    });
    if (grid != nullptr && !o.save_grid.empty())
        prepare_output(saved_grid, "--save-grid", o.save_grid, [&](std::ostream& out) {
            out << std::setprecision(17);
            for (double t : *grid) out << t << '\n';
        });
    throw_if_interrupted(stage::writing, r.nfe);
    if (saved_grid) commit_output(*saved_grid, "--save-grid");
    commit_output(*samples, "--out");
}
template void check_and_write<float>(const options&, const deis::sample_result&, int, int,
                                     const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>&,
                                     const std::vector<double>*);
template void check_and_write<double>(const options&, const deis::sample_result&, int, int,
                                      const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>&,
                                      const std::vector<double>*);

void run(const options& o, problem p) {
    const model m = make_model(o, p);
    const std::optional<deis::scheduler_config> config = std::move(p.config);
    try {
        std::visit(
            [&](const auto& sch) {
                if (o.use_float)
                    run_with<float>(o, m, config ? &*config : nullptr, sch, std::move(p));
                else
                    run_with<double>(o, m, config ? &*config : nullptr, sch, std::move(p));
            },
            m.schedule);
    } catch (const std::invalid_argument& e) {
        usage_error(e.what());  // a parameter the checks of options.cpp let through
    }
}

}  // namespace deis_sample
