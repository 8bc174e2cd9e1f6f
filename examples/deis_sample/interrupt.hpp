// deis-sample: stopping on SIGINT or SIGTERM without leaving anything behind.
//
// The handlers only record the signal in a volatile std::sig_atomic_t. The program looks at
// it at fixed points and unwinds from there with `interrupted`: through throw_if_interrupted()
// while the grid and the solver are built (every evaluation of the schedule) and before every
// row of the output and before its rename; during the steps the run's observer (run.cpp) looks
// at it after every network call and stops the solver, which returns status::cancelled, and
// the run then throws `interrupted` itself. A signal during the reading of the input files is
// seen when the set-up starts.
#pragma once

#include <csignal>

namespace deis_sample {

/// Where a run was when it saw the signal.
enum class stage { setup, sampling, writing };

/// The signal recorded by the handler, 0 while none has arrived.
extern volatile std::sig_atomic_t received_signal;

/// Thrown by throw_if_interrupted. Deliberately not a std::exception, so that no handler for
/// errors takes it for one; it passes through the library unchanged (the library
/// propagates whatever the network or the schedule throws).
struct interrupted {
    int signal;        ///< SIGINT or SIGTERM
    stage where;
    long long calls;   ///< network calls of the completed steps (sampling)
};

/// The one check of the flag.
inline void throw_if_interrupted(stage where, long long calls = 0) {
    if (const int sig = received_signal) throw interrupted{sig, where, calls};
}

/// Installs the recording handlers for SIGINT and SIGTERM (with SA_RESTART, so that reads
/// and writes carry on) for its lifetime, and restores the default handlers when destroyed.
class signal_guard {
public:
    signal_guard();
    ~signal_guard();
    signal_guard(const signal_guard&) = delete;
    signal_guard& operator=(const signal_guard&) = delete;
};

/// "SIGINT" or "SIGTERM".
const char* signal_name(int signal);

}  // namespace deis_sample
