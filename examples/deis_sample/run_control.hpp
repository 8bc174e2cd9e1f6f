// deis-sample: the control of a run while it steps (run.cpp): --progress on stderr, the
// observer that stops the run on a signal, and the one line that says where an interrupted run
// stopped (run_control bundles the three).
#pragma once

#include <unistd.h>

#include <deis/common.hpp>
#include <iostream>
#include <string>

#include "deis_sample.hpp"
#include "interrupt.hpp"

namespace deis_sample {

// Progress on stderr: on a terminal a bar redrawn in place whenever the whole percentage
// changes; otherwise one line each time another tenth of the steps is done. finish() ends it.
class progress_report {
public:
    progress_report(bool on, int steps) : on_(on), tty_(on && isatty(STDERR_FILENO) == 1), steps_(steps) {}

    void steps_done(int done) {
        if (!on_) return;
        const int pct = int((long long)(done) * 100 / steps_);
        if (tty_) {
            if (pct == shown_) return;
            shown_ = pct;
            const int filled = pct / 5;
            std::cerr << "\r[" << std::string(std::size_t(filled), '#') << std::string(std::size_t(20 - filled), ' ')
                      << "] " << pct << "% (step " << done << " of " << steps_ << ")" << std::flush;
            drawn_ = true;
        } else if (pct / 10 > shown_ / 10 || (done == steps_ && shown_ < 100)) {
            shown_ = pct;
            std::cerr << "deis-sample: " << pct << "% (" << done << " of " << steps_ << " steps)\n";
        }
    }
    // after the run: 100% when it completed, and the bar's line ended either way
    void finish(bool completed) {
        if (!on_) return;
        if (completed) steps_done(steps_);
        if (drawn_) std::cerr << "\n";
        drawn_ = false;
    }

private:
    bool on_, tty_, drawn_ = false;
    int steps_, shown_ = 0;
};

// The observer of every run: stops it (status cancelled) once SIGINT or SIGTERM has arrived,
// and reports progress. Called after each network call at a grid time (deis::step_info), so a
// signal stops the run within one step.
struct run_observer {
    progress_report* progress;
    template <class S>
    bool operator()(const deis::step_info<S>& info) {
        if (received_signal != 0) return false;
        progress->steps_done(info.step);
        return true;
    }
};

// The control of one run of `steps` steps: the progress report,
// the observer to pass to sample(), and the end of the run when a signal stopped it.
//   run_control control(o.progress, steps);
//   try { ...; r = solver.sample(net, x, ws, control.observer); control.steps_ended(r); ... }
//   catch (const interrupted& i) { throw control.interruption(i); }
class run_control {
public:
    run_control(bool progress, int steps) : progress_(progress, steps), steps_(steps) {}
    run_control(const run_control&) = delete;
    run_control& operator=(const run_control&) = delete;

    int calls_per_step = 1;  ///< network calls a step (rk: the tableau's stages)
    run_observer observer{&progress_};

    /// After sample(): ends the progress report (at 100% when the run completed); a run the
    /// observer stopped (status cancelled) throws `interrupted` at the step it reached.
    void steps_ended(const deis::sample_result& r) {
        progress_.finish(r.ok());
        if (r.status == deis::status::cancelled)
            throw interrupted{int(received_signal), stage::sampling, (long long)(r.steps) * calls_per_step};
    }

    /// The failure an interruption ends the program with: exit code 128 + signal and one line
    /// saying where the run stopped (the progress line ended first).
    failure interruption(const interrupted& i) {
        progress_.finish(false);
        const std::string of = " of " + std::to_string(steps_);
        std::string where;
        switch (i.where) {
            case stage::setup: where = "during the set-up, before step 1" + of; break;
            case stage::sampling: where = "at step " + std::to_string(i.calls / calls_per_step + 1) + of; break;
            case stage::writing: where = "while writing the output, after step " + std::to_string(steps_) + of; break;
        }
        return failure(128 + i.signal,
                       std::string("interrupted by ") + signal_name(i.signal) + " " + where + "; no output written",
                       false);
    }

private:
    progress_report progress_;
    int steps_;
};

}  // namespace deis_sample
