// deis: how a run ends: status, sample_result.
#pragma once

#include <limits>

namespace deis {

/// How a run ended.
enum class status {
    success,            ///< all steps done
    non_finite_output,  ///< the network returned NaN or Inf; the run stopped
    bad_output_shape,   ///< the network changed the layout of its output; the run stopped
    cancelled           ///< the observer asked to stop; the run stopped
};

/// What a run reports. On a failed call (non_finite_output, bad_output_shape; or an
/// exception from the network, which propagates), `failed_time` is the time of the rejected
/// network call, `steps` the number of steps completed before it, and the state is finite:
/// for the multistep solvers it is the input of that call (the state at failed_time; with
/// the corrector, the predicted state there, before its correction); for rk_solver, whose
/// calls are made at stage states, it is the state at the start of the failed step,
/// grid()[steps]. When cancelled, the state is the one the observer saw last, at grid time
/// grid()[steps] = failed_time.
struct sample_result {
    deis::status status = status::success;
    int nfe = 0;    ///< network calls made
    int steps = 0;  ///< steps completed
    double failed_time = std::numeric_limits<double>::quiet_NaN();

    bool ok() const { return status == status::success; }
    explicit operator bool() const { return ok(); }
};

inline const char* to_string(status s) {
    switch (s) {
        case status::success: return "success";
        case status::non_finite_output: return "the network returned a non-finite value";
        case status::bad_output_shape: return "the network changed the shape of its output";
        case status::cancelled: return "cancelled by the observer";
    }
    return "unknown status";
}

}  // namespace deis
