// deis-sample: the signal handlers (see interrupt.hpp).
#include "interrupt.hpp"

#include <signal.h>

namespace deis_sample {

volatile std::sig_atomic_t received_signal = 0;

namespace {

// Only records the signal: anything more is not async-signal-safe.
void record_signal(int signal) { received_signal = signal; }

void set_handler(int signal, void (*handler)(int)) {
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(signal, &action, nullptr);
}

}  // namespace

signal_guard::signal_guard() {
    set_handler(SIGINT, record_signal);
    set_handler(SIGTERM, record_signal);
}

signal_guard::~signal_guard() {
    set_handler(SIGINT, SIG_DFL);
    set_handler(SIGTERM, SIG_DFL);
}

const char* signal_name(int signal) {
    switch (signal) {
        case SIGINT: return "SIGINT";
        case SIGTERM: return "SIGTERM";
        default: return "a signal";
    }
}

}  // namespace deis_sample
