// deis-bench: the solvers and grids of the sweep, and the run of one problem (the reference
// solution, then every solver x grid x NFE budget, measured against it).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdio>
#include <deis/research/calibrate.hpp>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <deis/recommended.hpp>
#include <deis/research/reference.hpp>
#include <deis/rk.hpp>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unistd.h>
#include <utility>
#include <vector>

#include "records.hpp"
#include "solver_rows.hpp"
#include "report.hpp"

namespace deis_bench {

// ---- The solvers and grids -----------------------------------------------------------------

// Every solver of the sweep of a case, one line each (runs.cpp); the flow case adds "euler"
// (DDIM with data prediction, which is the Euler method in t on flow matching).
std::vector<solver_spec> solver_table(const std::string& case_name = "ring2d");

// The plot panels, in order, and their titles.
extern const std::vector<std::string> family_order;
extern const std::map<std::string, std::string> family_title;

// The grids of a case: t2, log, rho7, t1; on flow matching (which starts at rho = inf, where
// grids in rho do not exist) t1 and t2, each also with the SD3 shift s = 3 (t1s3, t2s3).
const std::vector<grid_spec>& grid_table(const std::string& case_name = "ring2d");

// The grid of g with `steps` steps from t_max to t_end (shifted_grid when g.shift != 1).
template <class Schedule>
std::vector<double> build_grid(const Schedule& sch, const grid_spec& g, int steps, double t_max, double t_end) {
    if (g.shift != 1.0) return deis::shifted_grid(sch, g.kind, steps, t_max, t_end, g.power, g.shift);
    return deis::make_grid(sch, g.kind, steps, t_max, t_end, g.power);
}

// A solver built for one grid: how to run it and its actual cost.
struct prepared_solver {
    std::function<deis::sample_result(deis::state<double>&)> run;
    int steps = 0;
    int nfe = 0;
};

// The solver of spec on the grid, for a network returning `output`. Throws
// std::invalid_argument when the library rejects the configuration.
template <class Schedule, class Net>
prepared_solver prepare(const solver_spec& spec, const Schedule& sch, std::vector<double> grid, const Net& net,
                        deis::model_output output = deis::model_output::eps) {
    deis::solver_config config = spec.config;
    config.multistep.output = output;
    config.rk.output = output;
    return deis::with_solver(config, sch, std::move(grid), [&net](const auto& built) -> prepared_solver {
        auto solver = std::make_shared<const std::decay_t<decltype(built)>>(built);
        return {[solver, &net](deis::state<double>& x) { return solver->sample(net, x); }, solver->steps(),
                solver->nfe()};
    });
}

// ---- Progress on stderr ------------------------------------------------------------------

// A progress bar on stderr, drawn only once the phase has run for more than a second (so
// quick runs stay quiet); on a terminal it redraws in place, otherwise it prints a line at
// every 10%.
class progress {
public:
    progress(std::string label, long total)
        : label_(std::move(label)), total_(std::max(total, 1L)), t0_(clock_type::now()), tty_(isatty(2) != 0) {}
    ~progress() { finish(); }
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;

    void update(long done) {
        done_ = done;
        const double el = seconds_since(t0_);
        if (el < 1.0) return;
        if (tty_) {
            if (el - last_draw_ < 0.1 && done < total_) return;
            last_draw_ = el;
            draw(el);
        } else {
            const long decile = 10 * done / total_;
            if (decile <= last_decile_) return;
            last_decile_ = decile;
            std::fprintf(stderr, "%s: %ld%% (%ld/%ld), %.1f s\n", label_.c_str(), 10 * decile, done, total_, el);
        }
        shown_ = true;
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        if (shown_ && tty_) {
            draw(seconds_since(t0_));
            std::fputc('\n', stderr);
        }
    }

private:
    void draw(double el) {
        const int width = 30;
        const int fill = int(width * done_ / total_);
        const double eta = done_ > 0 ? el * double(total_ - done_) / double(done_) : 0.0;
        std::fprintf(stderr, "\r%s [%s%s] %ld/%ld  %.1f s, about %.0f s left ", label_.c_str(),
                     std::string(std::size_t(fill), '#').c_str(), std::string(std::size_t(width - fill), '.').c_str(),
                     done_, total_, el, eta);
        std::fflush(stderr);
    }

    std::string label_;
    long total_, done_ = 0;
    clock_type::time_point t0_;
    bool tty_;
    bool shown_ = false, finished_ = false;
    double last_draw_ = -1.0;
    long last_decile_ = 0;
};

// ---- Errors ------------------------------------------------------------------------------------

// The median (the mean of the two middle values for an even count, as numpy.median); NaN
// when v is empty.
double median_of(std::vector<double> v);

// e_i = ||x_i - ref_i|| / sqrt(D); rms = sqrt(mean e_i^2); mode switches: samples whose most
// likely component of mix differs from their reference's (-1, n/a, when mix is null).
error_stats measure(const Eigen::MatrixXd& x, const Eigen::MatrixXd& ref, const std::vector<Eigen::Index>& ref_comp,
                    const deis::gaussian_mixture* mix);

// ---- Selection by name ------------------------------------------------------------------------

// True when name matches a shell pattern of the list (fnmatch), or the list is empty.
bool matches_any(const std::string& name, const std::vector<std::string>& patterns);

// Keeps the entries whose name matches a pattern; every pattern must match something.
template <class T>
std::vector<T> filter(const std::vector<T>& all, const std::vector<std::string>& patterns, const char* what) {
    std::vector<T> out;
    for (const auto& e : all)
        if (matches_any(e.name, patterns)) out.push_back(e);
    for (const auto& p : patterns) {
        bool hit = false;
        for (const auto& e : all) hit = hit || matches_any(e.name, {p});
        if (!hit) {
            std::string known;
            for (const auto& e : all) known += (known.empty() ? "" : ", ") + e.name;
            throw std::runtime_error(std::string("--") + what + ": '" + p + "' matches nothing (known: " + known + ")");
        }
    }
    return out;
}

// ---- The run ------------------------------------------------------------------------------------

// The run of one problem: net (returning `output`) is the exact network of the mixture mix
// under the schedule sch (or a trained model: mix null), the ODE runs from t_max to t_end
// starting at x_T. The reference solution is given_ref when not empty (one column per sample
// of x_T), else integrated. When the start is pure noise (alpha(t_max) = 0) the solvers the
// library rejects there are left out and listed in the report. Nothing is written before
// write_outputs: an exception (a failed network call) leaves --out-dir as it was. Returns the
// exit status (write_outputs).
template <class Schedule, class Net>
int run(const settings& cfg, const Schedule& sch, const Net& net, deis::model_output output,
        const deis::gaussian_mixture* mix, double t_max, double t_end, Eigen::MatrixXd x_T, problem_info info,
        const Eigen::MatrixXd& given_ref = Eigen::MatrixXd()) {
    const auto t_start = clock_type::now();
    const auto grids = filter(grid_table(cfg.table_case()), cfg.grids, "grids");
    std::vector<solver_spec> solvers;
    for (const auto& s : filter(solver_table(cfg.table_case()), cfg.solvers, "solvers")) {
        if (sch.alpha(t_max) != 0.0) {
            solvers.push_back(s);
            continue;
        }
        try {
            (void)prepare(s, sch, deis::power_t_grid(sch, 8, t_max, t_end, 1.0), net, output);
            solvers.push_back(s);
        } catch (const std::invalid_argument& e) {
            info.not_run.emplace_back(s.name, e.what());
        }
    }
    if (solvers.empty()) throw std::runtime_error("--solvers: none of the chosen solvers can start at t = " +
                                                  sci(t_max, 0) + " (alpha = 0)");
    const Eigen::Index D = x_T.rows(), n = x_T.cols();

    // the reference solution, and the same at a tolerance ten times tighter
    auto reference = [&](double tol, const std::string& label) {
        Eigen::MatrixXd x = x_T;
        deis::reference_options opt;
        opt.atol = opt.rtol = tol;
        opt.block_columns = cfg.ref_block;
        opt.output = output;
        progress bar(label, n);
        long nfe = 0;
        for (Eigen::Index c0 = 0; c0 < n; c0 += cfg.ref_block) {
            const Eigen::Index cols = std::min<Eigen::Index>(cfg.ref_block, n - c0);
            deis::state<double> block = x.middleCols(c0, cols);
            const auto r = deis::reference_solution(sch, net, block, t_max, t_end, opt);
            if (!r) throw std::runtime_error(std::string("reference solution failed: ") + deis::to_string(r.status));
            x.middleCols(c0, cols) = block;
            nfe += r.nfe;
            bar.update(c0 + cols);
        }
        return std::make_pair(x, nfe);
    };
    auto t0 = clock_type::now();
    Eigen::MatrixXd ref = given_ref;
    if (given_ref.size() == 0) {
        long ref_nfe = 0;
        std::tie(ref, ref_nfe) = reference(cfg.ref_tol, "reference");
        const double ref_seconds = seconds_since(t0);
        t0 = clock_type::now();
        const Eigen::MatrixXd ref_tight = reference(cfg.ref_tol / 10, "reference check").first;
        const double ref_tight_seconds = seconds_since(t0);
        double ref_change = 0.0;
        for (Eigen::Index j = 0; j < n; ++j)
            ref_change = std::max(ref_change, (ref.col(j) - ref_tight.col(j)).norm() / std::sqrt(double(D)));
        std::ostringstream l;
        if (sch.alpha(t_max) == 0.0)  // the data form, the one finite at alpha = 0 (deis/research/reference.hpp)
            l << "reference solution: Boost.Odeint Runge-Kutta-Fehlberg 7(8) on dz/du = x0(sigma z, t(1/u)) with "
              << "u = 1/rho, the network's output converted to x0, atol = rtol = " << sci(cfg.ref_tol, 0)
              << " on z = x/sigma, ";
        else
            l << "reference solution: Boost.Odeint Runge-Kutta-Fehlberg 7(8) on dy/drho = eps(alpha y, t(rho)), "
              << "atol = rtol = " << sci(cfg.ref_tol, 0) << " on y = x/alpha, ";
        l << cfg.ref_block << " columns per step-size control, " << ref_nfe << " network calls, " << std::fixed << std::setprecision(1)
          << ref_seconds << " s; at tolerance " << sci(cfg.ref_tol / 10, 0)
          << " it changes by at most " << sci(ref_change) << " (max e_i; " << ref_tight_seconds << " s)";
        info.lines.push_back(l.str());
        std::cerr << "deis-bench: " << l.str() << '\n';
    } else if (given_ref.rows() != D || given_ref.cols() != n) {
        throw std::runtime_error("--reference " + cfg.reference_file + ": " + std::to_string(given_ref.cols()) +
                                 " samples of " + std::to_string(given_ref.rows()) + " values for " +
                                 std::to_string(n) + " x_T of " + std::to_string(D));
    } else {
        info.lines.push_back("reference solution: " + cfg.reference_file + " (given, not computed)");
    }
    std::vector<Eigen::Index> ref_comp(static_cast<std::size_t>(n));
    if (mix)
        for (Eigen::Index j = 0; j < n; ++j) ref_comp[std::size_t(j)] = mix->most_likely_component(ref.col(j));

    // recommended+calibrated: one calibration reference for every budget, on --calibration-samples from
    // the prior N(0, sigma(t_max)^2 I) drawn with deis::noise_ops from seed + 1 (never the
    // evaluated x_T), with optimize_grid's default tolerance and candidates
    const deis::calibrate_options calibration;
    std::optional<deis::calibration_reference> calibration_ref;
    std::vector<std::pair<int, long>> search_calls;  // steps, network calls of the search
    const bool calibrating = std::any_of(solvers.begin(), solvers.end(), [](const solver_spec& s) { return s.calibrated; }) &&
                             std::any_of(grids.begin(), grids.end(), [](const grid_spec& g) { return g.recommended; });
    if (calibrating) {
        deis::state<double> batch(D, cfg.calibration_samples);
        deis::noise_ops<deis::state<double>>::fill(batch, cfg.seed + 1, 0);
        batch *= sch.sigma(t_max);
        deis::calibration_reference_options ro;
        ro.tol = calibration.reference_tol;
        ro.candidates = calibration.candidates;
        ro.output = output;
        progress bar("calibration reference", ro.candidates);
        ro.progress = [&bar](const deis::calibrate_progress& p) {
            bar.update(p.segments);
            return true;
        };
        calibration_ref = deis::make_calibration_reference(sch, net, batch, t_max, t_end, ro);
        bar.finish();
        std::ostringstream l;
        l << std::fixed << std::setprecision(1) << "calibration reference (recommended+calibrated): " << cfg.calibration_samples << " samples, "
          << calibration_ref->network_calls << " network calls on them, " << calibration_ref->seconds << " s";
        std::cerr << "deis-bench: " << l.str() << '\n';
    }

    // the sweep
    std::vector<run_record> rs;
    const long total = long(grids.size() * solvers.size() * cfg.nfe.size());
    t0 = clock_type::now();
    progress bar("solvers", total);
    long done = 0;
    for (const auto& g : grids) {
        for (const auto& s : solvers) {
            for (int budget : cfg.nfe) {
                if (s.calibrated && !g.recommended) {  // calibrated from the recommended grid only
                    bar.update(++done);
                    continue;
                }
                run_record rec;
                rec.solver = s.name;
                rec.family = s.family;
                rec.grid = g.name;
                rec.budget = budget;
                const int steps = budget / s.stages;
                if (steps < 1) {
                    rec.status = "budget below one step";
                } else {
                    try {
                        auto grid = g.recommended ? deis::recommended_grid(sch, steps, t_max, t_end)
                                                  : build_grid(sch, g, steps, t_max, t_end);
                        if (s.calibrated) {
                            deis::calibrate_options co = calibration;
                            co.initial_grid = grid;
                            progress cbar("calibration, " + std::to_string(steps) + " steps", co.max_runs);
                            co.progress = [&cbar](const deis::calibrate_progress& p) {
                                cbar.update(p.runs);
                                return true;
                            };
                            const auto config = [&sch, output](const std::vector<double>& g2) {
                                deis::multistep_options o = deis::recommended_options(sch, g2);
                                o.output = output;  // what the case's network returns
                                return o;
                            };
                            const deis::optimized_grid og = deis::optimize_grid(sch, config, net, *calibration_ref, steps, co);
                            search_calls.emplace_back(steps, og.search_calls);
                            grid = og.grid;
                        }
                        const prepared_solver p = prepare(s, sch, grid, net, output);
                        Eigen::MatrixXd x = x_T;
                        const deis::sample_result r = p.run(x);
                        rec.steps = r.steps;
                        rec.nfe = r.nfe;
                        if (r.nfe != p.nfe && r.ok())
                            throw std::logic_error(s.name + ": made " + std::to_string(r.nfe) +
                                                   " network calls, nfe() says " + std::to_string(p.nfe));
                        if (r.ok())
                            rec.err = measure(x, ref, ref_comp, mix);
                        else
                            rec.status = deis::to_string(r.status);
                    } catch (const std::invalid_argument& e) {
                        rec.status = std::string("rejected: ") + e.what();
                    }
                }
                rs.push_back(rec);
                bar.update(++done);
            }
        }
    }
    bar.finish();
    const double sweep_seconds = seconds_since(t0);
    {
        std::ostringstream l;
        l << rs.size() << " runs (" << solvers.size() << " solvers x " << grids.size() << " grids x " << cfg.nfe.size()
          << " NFE budgets) in " << std::fixed << std::setprecision(1) << sweep_seconds << " s";
        info.lines.push_back(l.str());
    }
    if (calibration_ref) {
        std::ostringstream l;
        l << "recommended+calibrated: one calibration reference (deis::make_calibration_reference on "
          << cfg.calibration_samples << " samples of seed " << cfg.seed + 1 << ", tol " << sci(calibration.reference_tol, 0) << ", " << calibration.candidates
          << " candidate intervals): " << calibration_ref->network_calls << " network calls on the batch; the search "
          << "(optimize_grid, at most " << calibration.max_runs << " runs) per budget, steps: calls";
        for (std::size_t i = 0; i < search_calls.size(); ++i)
            l << (i ? ", " : " ") << search_calls[i].first << ": " << search_calls[i].second;
        info.lines.push_back(l.str());
    }
    for (const auto& r : rs)
        if (!r.ok() && r.status != "budget below one step")
            std::cerr << "deis-bench: " << r.solver << " on " << r.grid << " at NFE " << r.budget << ": " << r.status
                      << '\n';

    return write_outputs(cfg, info, ref, rs, solvers, grids, t_start);
}

}  // namespace deis_bench
