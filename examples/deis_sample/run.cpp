// deis-sample: the run. The mixture's exact eps plays the network; the solver is built for
// the grid, run on the noise, and the samples are written to --out (and the grid to
// --save-grid), each through a temporary renamed into place at the end.
#include <deis/calibrate.hpp>
#include <deis/deis.hpp>
#include <iomanip>
#include <iostream>
#include <optional>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "deis_sample.hpp"
#include "interrupt.hpp"
#include "run_control.hpp"
#include "support/atomic_file.hpp"
#include "support/csv_io.hpp"
#include "support/input_file.hpp"

namespace deis_sample {

deis::model_output parse_output(const std::string& s) {
    if (s == "velocity") return deis::model_output::velocity;
    if (s == "x0") return deis::model_output::x0;
    if (s == "v") return deis::model_output::v;
    if (s == "score") return deis::model_output::score;
    return deis::model_output::eps;
}

namespace {

// The mixture's exact eps, returned as the quantity `output` names, with x = alpha x0 + sigma eps,
// v = alpha eps - sigma x0 and score = -eps/sigma. A Network (deis/common.hpp). (A signal is
// seen by the run's observer, run_control.hpp, after every network call.)
//
// With a velocity output (alpha' x0 + sigma' eps), and on flow matching and EDM (whose ends
// alpha = 0 and sigma = 0 the conversions from eps would divide by), the output is instead
// the mixture's own exact one (deis::gmm_model), finite at both ends.
template <class Schedule>
class mixture_network {
public:
    mixture_network(deis::gmm_eps<Schedule> eps, deis::model_output output)
        : eps_(std::move(eps)), output_(output), exact_(exact_output(output)) {
        if (exact_) model_.emplace(eps_.mixture(), eps_.schedule(), output);
    }

    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) {
        if (exact_) {
            (*model_)(x, t, out);
            return;
        }
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
            case deis::model_output::velocity:  // exact_ (gmm_model) above
                throw std::logic_error("deis-sample: the velocity output goes through gmm_model");
        }
    }

private:
    static bool exact_output(deis::model_output output) {
        return output == deis::model_output::velocity || std::is_same_v<Schedule, deis::flow_matching> ||
               std::is_same_v<Schedule, deis::edm>;
    }

    deis::gmm_eps<Schedule> eps_;
    deis::model_output output_;
    bool exact_;
    std::optional<deis::gmm_model<Schedule>> model_;
};

// The schedule as seen by the grid and the solver while they are built: the same values,
// and a look at the signal flag at every evaluation. Building the coefficient tables
// evaluates the schedule at every step (10^6 steps take seconds), so a signal stops the
// set-up as promptly as the run. The optional members of the Schedule concept that the
// library detects (deis/detail/schedule_traits.hpp: alpha_dot and sigma_dot, which a velocity
// output needs, and rho_knots) exist here exactly when the wrapped schedule has them.
template <class Schedule>
class interruptible_schedule {
public:
    explicit interruptible_schedule(const Schedule& s) : s_(s) {}
    double alpha(double t) const { return check(), s_.alpha(t); }
    double sigma(double t) const { return check(), s_.sigma(t); }
    double rho(double t) const { return check(), s_.rho(t); }
    double t_from_rho(double r) const { return check(), s_.t_from_rho(r); }
    double t_min() const { return s_.t_min(); }
    double t_max() const { return s_.t_max(); }
    template <class S = Schedule, std::enable_if_t<deis::detail::has_derivatives<S>::value, int> = 0>
    double alpha_dot(double t) const {
        return check(), s_.alpha_dot(t);
    }
    template <class S = Schedule, std::enable_if_t<deis::detail::has_derivatives<S>::value, int> = 0>
    double sigma_dot(double t) const {
        return check(), s_.sigma_dot(t);
    }
    template <class S = Schedule, std::enable_if_t<deis::detail::has_rho_knots<S>::value, int> = 0>
    decltype(auto) rho_knots() const {
        return s_.rho_knots();
    }

private:
    static void check() { throw_if_interrupted(stage::setup); }
    Schedule s_;
};

// A grid file: one time per line, t_max first (blank lines ignored), in the number format
// of the CSV files (csv_io.hpp); a regular file of at most max_grid_file_bytes.
std::vector<double> read_grid_file(const std::string& path) {
    const std::string name = "--grid-file " + path;
    try {
        deis_tools::input_file in(path, max_grid_file_bytes, name);
        deis_tools::read_limits lim;
        lim.max_fields = 1;
        lim.max_values = std::size_t(max_steps) + 1;
        return deis_tools::detail::parse_numbers(in.stream(), name, false, lim).values;
    } catch (const std::runtime_error& e) {
        throw failure(exit_input, e.what());
    }
}

std::string describe_failure(const deis::sample_result& r, int steps) {
    return std::string(deis::to_string(r.status)) + " at t = " + num(r.failed_time) + " (in step " +
           std::to_string(r.steps + 1) + " of " + std::to_string(steps) + ")";
}

// The grid of --sigmas: the list's levels, or the named ones (Karras and exponential from
// rho(t-max) down to rho(t-end), Align Your Steps as published), converted by sigma_grid.
// Throws std::invalid_argument from the library.
template <class Schedule>
std::vector<double> sigma_option_grid(const options& o, const Schedule& sch) {
    if (!o.sigma_list.empty()) return deis::sigma_grid(sch, o.sigma_list);
    const deis::noise_levels kind = o.sigmas == "karras"        ? deis::noise_levels::karras
                                    : o.sigmas == "exponential" ? deis::noise_levels::exponential
                                    : o.sigmas == "ays-sd15"    ? deis::noise_levels::ays_sd15
                                                                : deis::noise_levels::ays_sdxl;
    return deis::sigma_grid(sch, deis::sigma_levels(kind, o.steps, sch.rho(o.t_max), sch.rho(o.t_end)));
}

// --- run control: the observer of the run (stopping on a signal, --progress) ---------------

// The calibration batch of --grid optimized is drawn from --seed XOR this constant: a stream
// of its own, apart from the noise of a stochastic run with the same seed.
constexpr std::uint64_t calibration_stream = 0x9e3779b97f4a7c15ULL;

// Builds the grid and the solver, runs it on the noise in Scalar (which x takes over: for
// double the noise's own buffer), writes the result.
template <class Scalar, class Schedule>
void run_in(const options& o, const Schedule& sch, problem p) {
    const interruptible_schedule<Schedule> setup_sch(sch);
    const deis::grid_kind kind = o.grid == "t-power"   ? deis::grid_kind::power_t
                                 : o.grid == "log-rho" ? deis::grid_kind::log_rho
                                                       : deis::grid_kind::power_rho;
    const deis::model_output output = parse_output(o.output);
    mixture_network<Schedule> net(deis::gmm_eps<Schedule>(std::move(p.mixture), sch), output);
    deis::state<Scalar> x;
    if constexpr (std::is_same_v<Scalar, double>) {
        x = std::move(p.noise);
    } else {
        x = p.noise.cast<Scalar>();
        p.noise.resize(0, 0);
    }
    deis::sample_result r;
    int nfe = 0;
    run_control control(o.progress, o.steps);

    try {
        throw_if_interrupted(stage::setup);
        // the multistep options for a grid (recommended: they follow the grid)
        auto options_for = [&](const std::vector<double>& g) {
            deis::multistep_options mo;
            if (o.method == "recommended") {
                mo = deis::recommended_options(setup_sch, g);
            } else {
                mo.method = o.method == "ddim"    ? deis::multistep_method::ddim
                            : o.method == "tab"   ? deis::multistep_method::tab
                            : o.method == "rhoab" ? deis::multistep_method::rhoab
                                                  : deis::multistep_method::ipndm;
                mo.order = o.order;
                mo.predict = o.predict == "data" ? deis::prediction::data : deis::prediction::noise;
                mo.corrector = o.corrector;
                if (o.clock == "vp") mo.clock = deis::tab_clock::vp_linear;
            }
            mo.output = output;
            return mo;
        };
        std::vector<double> grid;
        try {
            if (!o.sigmas.empty()) {
                grid = sigma_option_grid(o, setup_sch);
            } else if (o.grid == "file") {
                grid = read_grid_file(o.grid_file);
                if (int(grid.size()) != o.steps + 1)
                    usage_error("--grid-file " + o.grid_file + " holds " + std::to_string(grid.size()) +
                                " times, --steps " + std::to_string(o.steps) + " needs " + std::to_string(o.steps + 1));
                grid = deis::check_grid(setup_sch, std::move(grid));
            } else if (o.grid == "recommended" || o.grid == "optimized") {
                grid = deis::recommended_grid(setup_sch, o.steps, o.t_max, o.t_end);
            } else {
                // shift 1 (every schedule but flow) is make_grid itself
                grid = deis::shifted_grid(setup_sch, kind, o.steps, o.t_max, o.t_end, o.grid_power, o.flow_shift);
            }
            if (o.grid == "optimized") {
                // the calibration batch: the prior N(0, sigma(t_max)^2 I), drawn from --seed
                deis::state<double> batch(x.rows(), Eigen::Index(o.calibration_samples));
                deis::noise_ops<deis::state<double>>::fill(batch, o.seed ^ calibration_stream, 0);
                batch *= sch.sigma(o.t_max);
                deis::calibrate_options co;
                co.initial_grid = grid;
                // at most 500 runs of the batch (docs/deis-sample.md); stdout and stderr stay quiet
                grid = deis::optimize_grid(sch, options_for, net, batch, o.steps, co).grid;
            }
        } catch (const std::invalid_argument& e) {
            if (!o.sigmas.empty()) usage_error("--sigmas " + o.sigmas + " gives no valid grid: " + e.what());
            usage_error(std::string("the grid (--grid, --grid-file, --steps, --t-max, --t-end) is invalid: ") +
                        e.what());
        }
        const std::vector<double> used_grid = o.save_grid.empty() ? std::vector<double>() : grid;  // --save-grid
        if (o.method == "rk") {
            deis::with_tableau(o.tableau, [&](auto tab) {
                using tableau = decltype(tab);
                deis::rk_options ro;
                ro.output = output;
                control.calls_per_step = tableau::stages;
                const deis::rk_solver<tableau> solver(setup_sch, std::move(grid), ro);
                deis::rk_workspace<deis::state<Scalar>> ws(solver, x);
                r = solver.sample(net, x, ws, control.observer);
                nfe = solver.nfe();
            });
        } else {
            deis::multistep_options mo = options_for(grid);
            apply_stochastic_options(o, mo);
            const deis::multistep_solver solver = [&] {
                try {
                    return deis::multistep_solver(setup_sch, std::move(grid), mo);
                } catch (const std::invalid_argument& e) {
                    usage_error(e.what());
                }
            }();
            deis::multistep_workspace<deis::state<Scalar>> ws(solver, x);
            r = solver.sample(net, x, ws, control.observer);
            nfe = solver.nfe();
        }
        control.steps_ended(r);
        check_and_write(o, r, nfe, o.steps, x, &used_grid);
    } catch (const interrupted& i) {
        throw control.interruption(i);
    }
    std::cout << "nfe=" << r.nfe << '\n';
}

// Runs on the chosen schedule, in double or float.
template <class Schedule>
void run_on(const options& o, const Schedule& sch, problem p) {
    if (o.use_float)
        run_in<float>(o, sch, std::move(p));
    else
        run_in<double>(o, sch, std::move(p));
}

}  // namespace

void apply_stochastic_options(const options& o, deis::multistep_options& mo) {
    mo.eta = o.eta;
    mo.sde = o.sde;
    mo.seed = o.seed;
}

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
    if (uses_diffusers_run(o)) return run_diffusers(o, std::move(p));
    try {
        if (o.schedule == "vp-linear") return run_on(o, deis::vp_linear(o.beta_min, o.beta_max, o.t_max), std::move(p));
        if (o.schedule == "vp-cosine") return run_on(o, deis::vp_cosine(0.008, o.t_max), std::move(p));
        if (o.schedule == "flow") return run_on(o, deis::flow_matching(), std::move(p));
        if (o.schedule == "edm") return run_on(o, deis::edm(o.sigma_max), std::move(p));
        return run_on(o, deis::ve(o.sigma_min, o.sigma_max), std::move(p));
    } catch (const std::invalid_argument& e) {
        // a schedule parameter the checks of options.cpp let through
        usage_error(e.what());
    }
}

}  // namespace deis_sample
