// deis-sample: the control of a run while it steps, shared by both run paths (run.cpp and
// diffusers.cpp): --progress on stderr, the observer that stops the run on a signal, and the
// one line that says where an interrupted run stopped.
#pragma once

#include <unistd.h>

#include <deis/common.hpp>
#include <iostream>
#include <string>

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

// The one line for an interrupted run, with the step it stopped at.
inline std::string describe_interruption(const interrupted& i, int steps, int calls_per_step) {
    const std::string of = " of " + std::to_string(steps);
    std::string where;
    switch (i.where) {
        case stage::setup: where = "during the set-up, before step 1" + of; break;
        case stage::sampling: where = "at step " + std::to_string(i.calls / calls_per_step + 1) + of; break;
        case stage::writing: where = "while writing the output, after step " + std::to_string(steps) + of; break;
    }
    return std::string("interrupted by ") + signal_name(i.signal) + " " + where + "; no output written";
}

}  // namespace deis_sample
