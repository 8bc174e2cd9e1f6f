// deis: reference solutions of the probability-flow ODE by an adaptive high-order
// integrator, to measure the error of the fast solvers.
//
// With y = x/alpha and rho = sigma/alpha as the clock the probability-flow ODE is exactly
//
//     dy/drho = eps(alpha(t(rho)) y, t(rho))
//
// (the equation every solver of the library discretises). reference_solution integrates it with an embedded Runge-Kutta pair of
// Boost.Odeint (Fehlberg 7(8) by default, or Dormand-Prince 5(4)) under Odeint's step-size
// control, and maps the result back to x = alpha y. The step size adapts to the solution, so
// the result is as accurate as the tolerance asks (and round-off allows), whatever the grid
// of the solver it is compared with. It calls the network many times (hundreds of calls per
// block of columns): it is a measuring instrument, not a sampler.
//
// Error control. Every accepted step keeps, for every component i of y,
//     |local error_i| <= atol + rtol (|y_i| + |h| |dy_i/drho|)
// (Odeint's default error checker with a_x = a_dxdt = 1, maximum norm over the block). The
// tolerances apply to y = x/alpha, which is 1/alpha(t) times larger than x (about 150 times
// at t = 1 for the VP linear schedule, 1 at t = 0). The global error is not bounded by the
// tolerance; check it by tightening the tolerance and comparing (deis-bench does).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <boost/numeric/odeint/stepper/controlled_runge_kutta.hpp>
#include <boost/numeric/odeint/stepper/controlled_step_result.hpp>
#include <boost/numeric/odeint/stepper/generation.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_dopri5.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_fehlberg78.hpp>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "deis/detail/check_state.hpp"
#include "deis/detail/error.hpp"
#include "deis/detail/schedule_traits.hpp"
#include "deis/model_output.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"

namespace deis {

/// The embedded Runge-Kutta pair of a reference solution.
enum class reference_method {
    rkf78,  ///< Runge-Kutta-Fehlberg 7(8), 13 network calls a step: the default
    dopri5  ///< Dormand-Prince 5(4), 6 network calls a step (first same as last)
};

/// Options of reference_solution; checked on every call.
struct reference_options {
    /// Absolute and relative tolerance of the local error on y = x/alpha (see the top of
    /// this header). Both > 0; about 1e-13 is the tightest that double arithmetic honours.
    double atol = 1e-12;
    double rtol = 1e-12;
    reference_method method = reference_method::rkf78;
    /// Columns integrated together under one step-size control (>= 1). With 1 every sample
    /// gets its own steps; a larger block makes fewer, bigger network calls, with the steps
    /// the hardest column of the block needs.
    Eigen::Index block_columns = 1;
    /// Initial step as a fraction of the rho interval, in (0, 1]; the controller adapts it.
    double initial_step = 1e-2;
    /// Limit on the attempted steps (accepted + rejected) per block, >= 1; reaching it
    /// throws std::runtime_error.
    long max_steps = 1000000;
    /// What the network returns (converted exactly, see model_output.hpp).
    model_output output = model_output::eps;
    /// The equation integrated: `noise`, dy/drho = eps with y = x/alpha (the default), or
    /// `data`, dz/du = x0 with z = x/sigma and u = alpha/sigma = 1/rho, which stays finite where
    /// alpha = 0 (pure noise, t = 1 of flow matching) and is used automatically when t_from or
    /// t_to has alpha = 0.
    prediction form = prediction::noise;
};

/// What a reference run reports. On failure (a non-finite network output) the columns of
/// the failed block and those after it are unchanged; those before it are done.
struct reference_result {
    deis::status status = status::success;
    long nfe = 0;       ///< network calls made (each on one block of columns)
    long accepted = 0;  ///< accepted steps, summed over blocks
    long rejected = 0;  ///< rejected steps, summed over blocks
    double failed_time = std::numeric_limits<double>::quiet_NaN();

    bool ok() const { return status == status::success; }
    explicit operator bool() const { return ok(); }
};

namespace detail {

struct reference_abort {
    deis::status status;
    double t;
};

template <class Controlled, class System>
void reference_integrate(Controlled stepper, System& sys, std::vector<double>& y, double r0, double r1,
                         const reference_options& opt, reference_result& res) {
    namespace odeint = boost::numeric::odeint;
    double r = r0;
    double dr = opt.initial_step * (r1 - r0);
    long attempts = 0;
    while (r != r1) {
        // do not step past r1, and land on it exactly
        const bool last = std::abs(dr) >= std::abs(r1 - r);
        if (last) dr = r1 - r;
        if (++attempts > opt.max_steps)
            throw std::runtime_error("deis::reference_solution: more than max_steps = " +
                                     std::to_string(opt.max_steps) + " steps at rho = " + format_double(r) +
                                     " (step " + format_double(dr) + "); loosen the tolerance or raise max_steps");
        const double r_before = r;
        if (stepper.try_step(sys, y, r, dr) == odeint::success) {
            ++res.accepted;
            if (last) r = r1;
        } else {
            ++res.rejected;
            if (r_before + dr == r_before)
                throw std::runtime_error("deis::reference_solution: step size underflow at rho = " + format_double(r));
        }
    }
}

}  // namespace detail

/// Integrates the probability-flow ODE for every column of x (one sample per column, at time
/// t_from) to time t_to, in place, in double precision, calling `net` (a Network for
/// state<double>, see state.hpp, returning opt.output) at the stage times of an adaptive
/// embedded Runge-Kutta pair on dy/drho = eps(alpha y, t(rho)), y = x/alpha (or, with
/// opt.form = data or an end at alpha = 0, on dz/du = x0(sigma z, t(1/u)), z = x/sigma).
/// Either direction works (t_to < t_from is sampling). The schedule is a Schedule
/// (schedule.hpp); both times must lie in its domain with a finite rho > 0, except that one
/// end may have alpha = 0 (rho = inf; the data form); stage times are t(rho) of rho values
/// between those of t_from and t_to, clamped to [min(t_from, t_to), max(t_from, t_to)].
///
/// Throws std::invalid_argument, before any network call and without touching x, for bad
/// options, times or x (empty or not finite); std::runtime_error when a block needs more than
/// max_steps steps or the step size underflows. A non-finite network output ends the run
/// with status::non_finite_output (see reference_result); a resized output with
/// status::bad_output_shape.
template <class Schedule, class Network>
reference_result reference_solution(const Schedule& s, Network&& net, state<double>& x, double t_from, double t_to,
                                    const reference_options& opt = {}) {
    const char* where = "reference_solution";
    if (!(opt.atol > 0.0 && std::isfinite(opt.atol))) detail::fail(where, "atol", opt.atol, "must be finite and > 0");
    if (!(opt.rtol > 0.0 && std::isfinite(opt.rtol))) detail::fail(where, "rtol", opt.rtol, "must be finite and > 0");
    if (opt.block_columns < 1) detail::fail(where, "block_columns", int(opt.block_columns), "must be >= 1");
    if (!(opt.initial_step > 0.0 && opt.initial_step <= 1.0))
        detail::fail(where, "initial_step", opt.initial_step, "must lie in (0, 1]");
    if (opt.max_steps < 1) detail::fail(where, "max_steps", std::to_string(opt.max_steps), "must be >= 1");
    if (opt.method != reference_method::rkf78 && opt.method != reference_method::dopri5)
        detail::fail(where, "method", int(opt.method), "is not a reference_method");
    const double tlo = std::min(t_from, t_to), thi = std::max(t_from, t_to);
    bool data = opt.form == prediction::data;
    for (const auto& [name, t] : {std::pair<const char*, double>{"t_from", t_from}, {"t_to", t_to}}) {
        detail::require_finite(where, name, t);
        if (!(t >= s.t_min() && t <= s.t_max()))
            detail::fail(where, name, t,
                         "must lie in the schedule's domain [" + detail::format_double(s.t_min()) + ", " +
                             detail::format_double(s.t_max()) + "]");
        const double r = s.rho(t);
        if (r == std::numeric_limits<double>::infinity()) {
            data = true;  // alpha = 0: only the data form is finite there
        } else if (!(std::isfinite(r) && r > 0.0)) {
            detail::fail(where, name, t,
                         "has rho = " + detail::format_double(r) + ", must be finite and > 0 (or inf: alpha = 0)");
        }
    }
    if (s.rho(t_from) == std::numeric_limits<double>::infinity() && s.rho(t_to) == std::numeric_limits<double>::infinity())
        detail::fail(where, "t_to", t_to, "and t_from both have alpha = 0");
    detail::check_state(where, x);

    reference_result res;
    if (t_from == t_to) return res;
    // the clock (rho, or u = alpha/sigma), the time at a clock value, and the scale of the
    // state variable (x = alpha y, or x = sigma z)
    auto clock = [&](double t) { return data ? s.alpha(t) / s.sigma(t) : s.rho(t); };
    auto scale = [&](double t) { return data ? s.sigma(t) : s.alpha(t); };
    const double r0 = clock(t_from), r1 = clock(t_to);
    const double a_from = scale(t_from), a_to = scale(t_to);
    const Eigen::Index D = x.rows(), B = x.cols();
    const prediction form = data ? prediction::data : prediction::noise;

    state<double> xin, out;
    Eigen::Index cols = 0;  // columns of the current block
    auto sys = [&](const std::vector<double>& y, std::vector<double>& dydr, double r) {
        double t = r == r0 ? t_from : r == r1 ? t_to : s.t_from_rho(data ? 1.0 / r : r);
        t = std::min(std::max(t, tlo), thi);
        xin = scale(t) * Eigen::Map<const state<double>>(y.data(), D, cols);
        net(std::as_const(xin), t, out);
        ++res.nfe;
        if (out.rows() != D || out.cols() != cols) {
            out.resize(D, cols);
            throw detail::reference_abort{status::bad_output_shape, t};
        }
        if (!detail::all_finite(out)) throw detail::reference_abort{status::non_finite_output, t};
        const auto [ad, sd] = detail::schedule_derivatives(s, t);
        const detail::conversion c = detail::make_conversion(opt.output, form, s.alpha(t), s.sigma(t), ad, sd);
        if (!c.finite()) throw std::invalid_argument(std::string("deis::reference_solution: output ") +
                                                     detail::to_string(opt.output) + " does not determine the " +
                                                     (data ? "data" : "noise") + " prediction at t = " +
                                                     detail::format_double(t));
        dydr.resize(y.size());
        Eigen::Map<state<double>>(dydr.data(), D, cols) = c.px * xin + c.po * out;
    };

    namespace odeint = boost::numeric::odeint;
    std::vector<double> y;
    for (Eigen::Index c0 = 0; c0 < B; c0 += opt.block_columns) {
        cols = std::min(opt.block_columns, B - c0);
        xin.resize(D, cols);
        out.resize(D, cols);
        y.resize(std::size_t(D * cols));
        Eigen::Map<state<double>>(y.data(), D, cols) = x.middleCols(c0, cols) / a_from;
        try {
            if (opt.method == reference_method::rkf78)
                detail::reference_integrate(
                    odeint::make_controlled(opt.atol, opt.rtol, odeint::runge_kutta_fehlberg78<std::vector<double>>()),
                    sys, y, r0, r1, opt, res);
            else
                detail::reference_integrate(
                    odeint::make_controlled(opt.atol, opt.rtol, odeint::runge_kutta_dopri5<std::vector<double>>()),
                    sys, y, r0, r1, opt, res);
        } catch (const detail::reference_abort& a) {
            res.status = a.status;
            res.failed_time = a.t;
            return res;
        }
        x.middleCols(c0, cols) = a_to * Eigen::Map<const state<double>>(y.data(), D, cols);
    }
    return res;
}

}  // namespace deis
