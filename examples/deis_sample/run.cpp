// deis-sample: the run. The mixture's exact eps plays the network; the solver is built for
// the grid, run on the noise, and the samples are written to --out.
#include <deis/deis.hpp>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "deis_sample.hpp"
#include "interrupt.hpp"
#include "support/csv_io.hpp"

namespace deis_sample {

namespace {

deis::model_output parse_output(const std::string& s) {
    if (s == "x0") return deis::model_output::x0;
    if (s == "v") return deis::model_output::v;
    if (s == "score") return deis::model_output::score;
    return deis::model_output::eps;
}

// The mixture's exact eps, returned as the quantity `output` names, with x = alpha x0 + sigma eps,
// v = alpha eps - sigma x0 and score = -eps/sigma. A Network (deis/common.hpp) that counts its
// calls and, before each, stops the run (throws `interrupted`) once a signal has arrived.
template <class Schedule>
class mixture_network {
public:
    mixture_network(deis::gmm_eps<Schedule> eps, deis::model_output output) : eps_(std::move(eps)), output_(output) {}

    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) {
        throw_if_interrupted(stage::sampling, calls_);
        ++calls_;
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
    long long calls_ = 0;
};

// The schedule as seen by the grid and the solver while they are built: the same values,
// and a look at the signal flag at every evaluation. Building the coefficient tables
// evaluates the schedule at every step (10^6 steps take seconds), so a signal stops the
// set-up as promptly as the run. (The three schedules of deis-sample have no rho_knots(),
// which this wrapper would have to forward.)
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

private:
    static void check() { throw_if_interrupted(stage::setup); }
    Schedule s_;
};

std::string describe_failure(const deis::sample_result& r, int steps) {
    return std::string(deis::to_string(r.status)) + " at t = " + num(r.failed_time) + " (in step " +
           std::to_string(r.steps + 1) + " of " + std::to_string(steps) + ")";
}

// The one line for an interrupted run, with the step it stopped at.
std::string describe_interruption(const interrupted& i, int steps, int calls_per_step) {
    const std::string of = " of " + std::to_string(steps);
    std::string where;
    switch (i.where) {
        case stage::setup: where = "during the set-up, before step 1" + of; break;
        case stage::sampling: where = "at step " + std::to_string(i.calls / calls_per_step + 1) + of; break;
        case stage::writing: where = "while writing the output, after step " + std::to_string(steps) + of; break;
    }
    return std::string("interrupted by ") + signal_name(i.signal) + " " + where + "; no output written";
}

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
    int nfe = 0, calls_per_step = 1;

    try {
        throw_if_interrupted(stage::setup);
        std::vector<double> grid;
        try {
            grid = deis::make_grid(setup_sch, kind, o.steps, o.t_max, o.t_end, o.grid_power);
        } catch (const std::invalid_argument& e) {
            usage_error(std::string("the grid (--grid, --steps, --t-max, --t-end) is invalid: ") + e.what());
        }
        if (o.method == "rk") {
            deis::with_tableau(o.tableau, [&](auto tab) {
                using tableau = decltype(tab);
                deis::rk_options ro;
                ro.output = output;
                calls_per_step = tableau::stages;
                const deis::rk_solver<tableau> solver(setup_sch, std::move(grid), ro);
                r = solver.sample(net, x);
                nfe = solver.nfe();
            });
        } else {
            deis::multistep_options mo;
            if (o.method == "recommended") {
                mo = deis::recommended_options(setup_sch, grid);
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
            const deis::multistep_solver solver = [&] {
                try {
                    return deis::multistep_solver(setup_sch, std::move(grid), mo);
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

        bool written = false;
        try {
            written = deis_tools::write_samples(o.out, x, [] { return received_signal != 0; });
        } catch (const std::exception& e) {
            throw failure(exit_write, e.what());
        }
        if (!written) throw_if_interrupted(stage::writing, r.nfe);
    } catch (const interrupted& i) {
        throw failure(128 + i.signal, describe_interruption(i, o.steps, calls_per_step), false);
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

void run(const options& o, problem p) {
    if (uses_diffusers_run(o)) return run_diffusers(o, std::move(p));
    try {
        if (o.schedule == "vp-linear") return run_on(o, deis::vp_linear(o.beta_min, o.beta_max, o.t_max), std::move(p));
        if (o.schedule == "vp-cosine") return run_on(o, deis::vp_cosine(0.008, o.t_max), std::move(p));
        return run_on(o, deis::ve(o.sigma_min, o.sigma_max), std::move(p));
    } catch (const std::invalid_argument& e) {
        // a schedule parameter the checks of options.cpp let through
        usage_error(e.what());
    }
}

}  // namespace deis_sample
