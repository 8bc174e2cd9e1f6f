// deis-sample: the grid of a run, built once from the options whatever else is asked
// (build_grid): --sigmas, --grid-file, --grid recommended|optimized, --grid NAME (with
// --grid-power and --flow-shift), or the --scheduler-config's own; then the tail that
// --strength keeps with --init. The solver runs it reversed with --invert (run.cpp).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <cstdio>
#include <deis/research/calibrate.hpp>
#include <deis/deis.hpp>
#include <deis/diffusers.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "deis_sample.hpp"
#include "interrupt.hpp"
#include "network.hpp"
#include "support/csv_io.hpp"
#include "support/input_file.hpp"

namespace deis_sample {

/// The grids of a run, both t_max first.
struct run_grid {
    /// The N-step grid the options make: what --save-grid writes, so that --grid-file of it in
    /// place of the grid options reproduces the run (--init, --strength and --invert included).
    std::vector<double> full;
    /// What the run integrates: `full`, or with --init (img2img) its tail chosen by --strength.
    /// Run from the last time to the first with --invert.
    std::vector<double> run;
};

namespace grids {

// A grid file: one time per line, t_max first (blank lines ignored), in the number format
// of the CSV files (csv_io.hpp); a regular file of at most max_grid_file_bytes.
inline std::vector<double> read_grid_file(const std::string& path) {
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

// The grid of --sigmas: the list's levels, or the named ones (Karras and exponential from
// rho(t_max) down to rho(t-end), Align Your Steps as published), converted by sigma_grid.
// Throws std::invalid_argument from the library.
template <class Schedule>
std::vector<double> sigma_option_grid(const options& o, const Schedule& sch, double t_max) {
    if (!o.sigma_list.empty()) return deis::sigma_grid(sch, o.sigma_list);
    const deis::noise_levels kind = o.sigmas == "karras"        ? deis::noise_levels::karras
                                    : o.sigmas == "exponential" ? deis::noise_levels::exponential
                                    : o.sigmas == "ays-sd15"    ? deis::noise_levels::ays_sd15
                                                                : deis::noise_levels::ays_sdxl;
    return deis::sigma_grid(sch, deis::sigma_levels(kind, o.steps, sch.rho(t_max), sch.rho(o.t_end)));
}

// The calibration batch of --grid optimized is drawn from --seed XOR this constant: a stream
// of its own, apart from the noise of a stochastic run with the same seed.
constexpr std::uint64_t calibration_stream = 0x9e3779b97f4a7c15ULL;

// The N-step grid of the options (run_grid::full), before --grid optimized calibrates it.
// Throws std::invalid_argument from the library.
template <class Schedule>
std::vector<double> options_grid(const options& o, const model& m, const deis::scheduler_config* config,
                                 const Schedule& sch) {
    if (!o.sigmas.empty()) return sigma_option_grid(o, sch, m.t_max);
    if (o.grid == "file") {
        std::vector<double> grid = read_grid_file(o.grid_file);
        if (int(grid.size()) != o.steps + 1)
            usage_error("--grid-file " + o.grid_file + " holds " + std::to_string(grid.size()) + " times, --steps " +
                        std::to_string(o.steps) + " needs " + std::to_string(o.steps + 1));
        return deis::check_grid(sch, std::move(grid));
    }
    if (o.grid == "recommended" || o.grid == "optimized") return deis::recommended_grid(sch, o.steps, m.t_max, o.t_end);
    if (config_grid(o)) {
        try {
            return config->grid(o.steps, o.image_seq_len);
        } catch (const std::invalid_argument& e) {
            usage_error("--scheduler-config " + o.scheduler_config + " with --steps " + std::to_string(o.steps) +
                        ": " + e.what());
        }
    }
    const deis::grid_kind kind = o.grid == "t-power"   ? deis::grid_kind::power_t
                                 : o.grid == "log-rho" ? deis::grid_kind::log_rho
                                                       : deis::grid_kind::power_rho;
    // shift 1 (every schedule but flow) is make_grid itself
    return deis::shifted_grid(sch, kind, o.steps, m.t_max, o.t_end, o.grid_power, o.flow_shift);
}

}  // namespace grids

/// The grid of the run. `setup_sch` (the schedule seen through interruptible_schedule) makes
/// the grids; --grid optimized calibrates the recommended grid with the plain `sch`, the
/// network `net` (on the prior, a batch drawn from --seed) and the solver options
/// `options_for(grid)` of a sampling run on `grid`. `dim`: the dimension of a sample.
/// Failures: failure(exit_usage) naming the grid's options, failure(exit_input) for a
/// --grid-file that cannot be read.
template <class Schedule, class Network, class OptionsFor>
run_grid build_grid(const options& o, const model& m, const deis::scheduler_config* config, const Schedule& sch,
                    const interruptible_schedule<Schedule>& setup_sch, Network& net, OptionsFor&& options_for,
                    Eigen::Index dim) {
    run_grid g;
    try {
        g.full = grids::options_grid(o, m, config, setup_sch);
        if (o.grid == "optimized") {
            // the calibration batch: the prior N(0, sigma(t_max)^2 I), drawn from --seed
            deis::state<double> batch(dim, Eigen::Index(o.calibration_samples));
            deis::noise_ops<deis::state<double>>::fill(batch, o.seed ^ grids::calibration_stream, 0);
            batch *= sch.sigma(g.full.front());
            deis::calibrate_options co;
            co.initial_grid = g.full;
            // one reference solve and at most 100 runs of the batch (docs/deis-sample.md); with
            // --progress a line each tenth of either phase; a signal stops it
            co.progress = [&o, last = -1](const deis::calibrate_progress& p) mutable {
                if (received_signal != 0) return false;
                if (!o.progress) return true;
                const bool reference = p.phase == deis::calibrate_phase::reference;
                const int done = reference ? p.segments : p.runs, total = reference ? p.total_segments : p.max_runs;
                const int key = (reference ? 0 : 11) + (total > 0 ? 10 * done / total : 10);
                if (key == last) return true;
                last = key;
                std::fprintf(stderr, "deis-sample: calibrating the grid: %s %d%% (%d of %d %s, %ld network calls)\n",
                             reference ? "reference" : "search", total > 0 ? 100 * done / total : 100, done, total,
                             reference ? "intervals" : "runs", p.network_calls);
                return true;
            };
            g.full = deis::optimize_grid(sch, options_for, net, batch, o.steps, co).grid;
            throw_if_interrupted(stage::setup);  // stopped by the callback above
        }
    } catch (const std::invalid_argument& e) {
        if (!o.sigmas.empty()) usage_error("--sigmas " + o.sigmas + " gives no valid grid: " + e.what());
        usage_error(std::string("the grid (--grid, --grid-file, --steps, --t-max, --t-end) is invalid: ") + e.what());
    }
    if (o.init.empty() || o.invert) {
        g.run = g.full;
        return g;
    }
    // img2img: the tail of the grid (diffusers' rule: SD3 and Flux for flow matching, SD else)
    try {
        g.run = deis::img2img_grid(g.full, o.strength, m.flow ? deis::strength_rule::flow : deis::strength_rule::steps);
    } catch (const std::invalid_argument& e) {
        usage_error("--init with --strength " + num(o.strength) + ": " + e.what());
    }
    return g;
}

}  // namespace deis_sample
