// The State backend conformance suite: one body of checks, run against every backend (the
// Eigen one as the oracle). A backend under test is described by a struct B with
//
//   B::name                       a short name for the test output
//   B::state_type                 the state type S
//   B::holder                     owns the memory of one state; `state()` returns S&
//   B::make(const MatrixXd& x)    a holder with the values of x (D x N, one sample per column)
//   B::read(const S&)             the values as a D x N Eigen matrix (double)
//   B::network(eigen_net)         a Network on S that computes what eigen_net (a Network on
//                                 deis::state<double> or <float>) computes
//   B::reference_scalar           the Eigen scalar type whose runs are the oracle
//   B::tolerance                  relative agreement with the oracle (justified where defined)
//
// The checks: every solver family gives the oracle's samples; a NaN network stops the run
// with the oracle's state; an exception from the network propagates unchanged, leaves the
// same state and a reusable workspace; an observer sees every step and can cancel at a grid
// time; bad input is rejected before anything is touched.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "catch.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support.hpp"

namespace deis_conformance {

using deis::multistep_method;
using deis::prediction;

/// One solver configuration of the suite: a multistep configuration, or a tableau by name.
struct config {
    std::string name;
    deis::multistep_options multistep{};
    std::string tableau;  // non-empty: rk_solver with this tableau
};

inline std::vector<config> configurations() {
    std::vector<config> c = {
        {"ddim", deis::parse_multistep("ddim"), ""},
        {"tab3", deis::parse_multistep("tab3"), ""},
        {"tab3+corrector", deis::parse_multistep("tab3+corrector"), ""},
        {"tab1+data+corrector", deis::parse_multistep("tab1+data+corrector"), ""},
        {"rhoab2+data", deis::parse_multistep("rhoab2+data"), ""},
        {"rhoab3+corrector", deis::parse_multistep("rhoab3+corrector"), ""},
        {"ipndm", deis::parse_multistep("ipndm3"), ""},
        {"rk heun2", {}, "heun2"},
        {"rk rk4", {}, "rk4"},
    };
    deis::multistep_options x0_out = deis::parse_multistep("tab2+data+corrector");
    x0_out.output = deis::model_output::x0;
    c.push_back({"tab2+data+corrector, network gives x0", x0_out, ""});
    return c;
}

/// The problem of the suite: the reference ring mixture under vp_linear, 10 steps on the
/// quadratic grid, on the first 40 points of gmm2d_xT.csv.
struct problem {
    deis::vp_linear schedule{};
    deis::gmm_eps<deis::vp_linear> eps{deis_test::reference_mixture(), schedule};
    std::vector<double> grid = deis::power_t_grid(schedule, 10, 1.0, 1e-3, 2.0);
    Eigen::MatrixXd x_T = deis_test::reference_samples("gmm2d_xT.csv").leftCols(40);
};

// The mixture's eps as the quantity a configuration's network returns.
template <class Scalar>
struct output_net {
    const problem* p;
    deis::model_output output = deis::model_output::eps;
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) const {
        p->eps(x, t, out);
        if (output == deis::model_output::x0)
            out = (x - Scalar(p->schedule.sigma(t)) * out) / Scalar(p->schedule.alpha(t));
    }
};

// A network that fails at call `at` (1-based): returns NaN there, or throws.
template <class Net>
struct failing_net {
    Net inner;
    int at = 0;
    bool throws = false;
    int calls = 0;
    template <class S>
    void operator()(const S& x, double t, S& out) {
        ++calls;
        inner(x, t, out);
        if (calls != at) return;
        if (throws) throw std::runtime_error("network failure at call " + std::to_string(calls));
        deis::state_ops<S>::combine(out, std::numeric_limits<double>::quiet_NaN(), out, nullptr, nullptr, 0);
    }
};

// f(solver) with the solver of configuration c on the suite's problem: a multistep solver, or
// a Runge-Kutta one of the suite's tableaux (heun2, rk4; all nine would instantiate every check
// nine times per backend, minutes of compile time under the sanitizers for no extra check).
template <class F>
decltype(auto) with_suite_solver(const problem& p, const config& c, F&& f) {
    if (!c.tableau.empty()) {
        return deis_test::with_tableau_of<deis::tableau::heun2, deis::tableau::rk4>(c.tableau, [&](auto tab) {
            return f(deis::rk_solver<decltype(tab)>(p.schedule, p.grid, deis::rk_options{c.multistep.output}));
        });
    }
    return f(deis::multistep_solver(p.schedule, p.grid, c.multistep));
}

// The suite's runs see their network and observer through std::function, so that each solver is
// instantiated once per state type and kind of observer (none, void, bool), not once per
// network and observer of every check (the calls, and so every check, are the same).
template <class S>
using network = std::function<void(const S&, double, S&)>;

// Runs configuration c on x with network net (and an observer), with a workspace made here.
template <class S, class Net, class Observer = deis::detail::no_observer>
deis::sample_result run(const problem& p, const config& c, Net&& net, S& x, Observer&& observer = Observer{}) {
    const network<S> erased = std::ref(net);
    return with_suite_solver(p, c, [&](const auto& solver) {
        deis::workspace<S> ws(solver, x);
        if constexpr (std::is_same_v<std::decay_t<Observer>, deis::detail::no_observer>) {
            return solver.sample(erased, x, ws);
        } else {
            using go_on = std::invoke_result_t<Observer&, const deis::step_info<S>&>;  // void or bool
            return solver.sample(erased, x, ws, std::function<go_on(const deis::step_info<S>&)>(std::ref(observer)));
        }
    });
}

template <class B>
typename B::holder make(const Eigen::MatrixXd& x) {
    return B::make(x);
}

// max |a - b| <= tol (1 + max |ref|)
inline bool agrees(const Eigen::MatrixXd& a, const Eigen::MatrixXd& ref, double tol) {
    if (a.rows() != ref.rows() || a.cols() != ref.cols()) return false;
    return (a - ref).cwiseAbs().maxCoeff() <= tol * (1.0 + ref.cwiseAbs().maxCoeff());
}

template <class B>
void same_samples_as_the_oracle() {
    using R = typename B::reference_scalar;
    const problem p;
    for (const config& c : configurations()) {
        CAPTURE(B::name, c.name);
        output_net<R> ref_net{&p, c.multistep.output};
        deis::state<R> ref = p.x_T.cast<R>();
        REQUIRE(run(p, c, ref_net, ref).ok());

        auto h = make<B>(p.x_T);
        auto net = B::network(output_net<R>{&p, c.multistep.output});
        const deis::sample_result r = run(p, c, net, h.state());
        REQUIRE(r.ok());
        const Eigen::MatrixXd got = B::read(h.state());
        const Eigen::MatrixXd want = ref.template cast<double>();
        INFO("max difference " << (got - want).cwiseAbs().maxCoeff());
        CHECK(agrees(got, want, B::tolerance));
    }
}

template <class B>
void failed_calls_leave_the_oracles_state(bool throws) {
    using R = typename B::reference_scalar;
    const problem p;
    for (const config& c : configurations()) {
        for (int at : {1, 4, 7}) {
            CAPTURE(B::name, c.name, at, throws);
            // the oracle: the Eigen run stopped by a NaN at the same call
            failing_net<output_net<R>> ref_net{{&p, c.multistep.output}, at, false};
            deis::state<R> ref = p.x_T.cast<R>();
            const deis::sample_result rr = run(p, c, ref_net, ref);
            REQUIRE(rr.status == deis::status::non_finite_output);

            auto h = make<B>(p.x_T);
            auto inner = B::network(output_net<R>{&p, c.multistep.output});
            failing_net<decltype(inner)> net{inner, at, throws};
            if (throws) {
                // the exception comes out unchanged (type and message)
                CHECK_THROWS_MATCHES(run(p, c, net, h.state()), std::runtime_error,
                                     Catch::Matchers::Message("network failure at call " + std::to_string(at)));
            } else {
                const deis::sample_result r = run(p, c, net, h.state());
                CHECK(r.status == deis::status::non_finite_output);
                CHECK(r.nfe == rr.nfe);
                CHECK(r.steps == rr.steps);
                CHECK(r.failed_time == rr.failed_time);
            }
            const Eigen::MatrixXd got = B::read(h.state());
            CHECK(got.allFinite());
            CHECK(agrees(got, ref.template cast<double>(), B::tolerance));
        }
    }
}

template <class B>
void a_workspace_is_reusable_after_a_failure() {
    using S = typename B::state_type;
    using R = typename B::reference_scalar;
    const problem p;
    const deis::multistep_solver solver(p.schedule, p.grid, deis::parse_multistep("tab3+corrector"));
    auto h = make<B>(p.x_T);
    deis::multistep_workspace<S> ws(solver, h.state());
    auto inner = B::network(output_net<R>{&p});
    failing_net<decltype(inner)> thrower{inner, 5, true};
    CHECK_THROWS_AS(solver.sample(thrower, h.state(), ws), std::runtime_error);
    // the same workspace, a fresh start: the result of a run with a new workspace
    auto again = make<B>(p.x_T);
    REQUIRE(solver.sample(inner, again.state(), ws).ok());
    auto fresh = make<B>(p.x_T);
    REQUIRE(solver.sample(inner, fresh.state()).ok());
    CHECK(B::read(again.state()) == B::read(fresh.state()));
}

template <class B>
void an_observer_sees_every_step_and_can_cancel() {
    using S = typename B::state_type;
    using R = typename B::reference_scalar;
    const problem p;
    for (const config& c : configurations()) {
        CAPTURE(B::name, c.name);
        // the oracle's states at every grid time: the Eigen run with an observer
        std::vector<Eigen::MatrixXd> ref_states;
        std::vector<Eigen::MatrixXd> ref_x0;
        {
            deis::state<R> x = p.x_T.cast<R>();
            deis::state<R> x0(x.rows(), x.cols());
            auto obs = [&](const deis::step_info<deis::state<R>>& info) {
                ref_states.push_back(info.x().template cast<double>());
                info.data_prediction(x0);
                ref_x0.push_back(x0.template cast<double>());
            };
            REQUIRE(run(p, c, output_net<R>{&p, c.multistep.output}, x, obs).ok());
            REQUIRE(ref_states.size() == p.grid.size() - 1);
        }
        // the backend's run shows the same states and previews, in order
        {
            auto h = make<B>(p.x_T);
            auto x0 = make<B>(p.x_T);
            int seen = 0;
            auto obs = [&](const deis::step_info<S>& info) {
                CHECK(info.step == seen);
                CHECK(info.steps == int(p.grid.size()) - 1);
                CHECK(info.t == p.grid[std::size_t(seen)]);
                CHECK(agrees(B::read(info.x()), ref_states[std::size_t(seen)], B::tolerance));
                info.data_prediction(x0.state());
                CHECK(agrees(B::read(x0.state()), ref_x0[std::size_t(seen)], B::tolerance));
                ++seen;
                return true;
            };
            REQUIRE(run(p, c, B::network(output_net<R>{&p, c.multistep.output}), h.state(), obs).ok());
            CHECK(seen == int(p.grid.size()) - 1);
        }
        // cancelling at step 3 leaves the state at grid[3]
        {
            auto h = make<B>(p.x_T);
            auto obs = [](const deis::step_info<S>& info) { return info.step < 3; };
            const deis::sample_result r = run(p, c, B::network(output_net<R>{&p, c.multistep.output}), h.state(), obs);
            CHECK(r.status == deis::status::cancelled);
            CHECK(r.steps == 3);
            CHECK(r.failed_time == p.grid[3]);
            CHECK(agrees(B::read(h.state()), ref_states[3], B::tolerance));
        }
    }
}

template <class B>
void bad_input_is_rejected_untouched() {
    using R = typename B::reference_scalar;
    const problem p;
    Eigen::MatrixXd bad = p.x_T;
    bad(1, 5) = std::numeric_limits<double>::quiet_NaN();
    for (const config& c : configurations()) {
        CAPTURE(B::name, c.name);
        auto h = make<B>(bad);
        int calls = 0;
        auto inner = B::network(output_net<R>{&p, c.multistep.output});
        auto counting = [&](const auto& x, double t, auto& out) {
            ++calls;
            inner(x, t, out);
        };
        CHECK_THROWS_AS(run(p, c, counting, h.state()), std::invalid_argument);
        CHECK(calls == 0);
        const Eigen::MatrixXd after = B::read(h.state());
        CHECK(std::isnan(after(1, 5)));
        // every other entry as it was (through the backend's own element type)
        Eigen::MatrixXd rest = after;
        rest(1, 5) = 0.0;
        Eigen::MatrixXd want = B::read(make<B>(bad).state());
        want(1, 5) = 0.0;
        CHECK(rest == want);
    }
}

// Drives a run of `solver` on x with a stepper, calling net at input() and time(), each
// output copied in (advance(out)) or written into the stepper's buffer (advance()). Records
// the call times and, when x0s is given, each call's data prediction.
template <class B, class Solver, class S, class Net>
int step_through(const Solver& solver, S& x, Net& net, bool zero_copy, std::vector<double>& times,
                 std::vector<Eigen::MatrixXd>* x0s = nullptr) {
    deis::stepper st(solver, x);
    auto out = make<B>(B::read(x));
    auto x0 = make<B>(B::read(x));
    while (!st.done()) {
        times.push_back(st.time());
        if (zero_copy) {
            net(st.input(), st.time(), st.output());
            REQUIRE(st.advance() == deis::status::success);
            continue;
        }
        net(st.input(), st.time(), out.state());
        if (x0s) {
            st.data_prediction(out.state(), x0.state());
            x0s->push_back(B::read(x0.state()));
        }
        REQUIRE(st.advance(out.state()) == deis::status::success);
    }
    return st.nfe();
}

// The stepper makes sample()'s calls and leaves its samples, bit for bit: every configuration
// of the suite, a stochastic one (the same noise), and a Heun run ending at sigma = 0.
template <class B>
void the_stepper_equals_sample() {
    using S = typename B::state_type;
    using R = typename B::reference_scalar;
    const problem p;
    std::vector<config> all = configurations();
    all.push_back({"tab3+data+corrector", deis::parse_multistep("tab3+data+corrector"), ""});
    all.push_back({"uni_pc_bh2", deis::parse_multistep("uni_pc_bh2"), ""});
    if constexpr (std::is_invocable_v<deis::gaussian_noise&, typename B::state_type&, int>)
        all.push_back({"ddim+eta=0.5", deis::parse_multistep("ddim+eta=0.5"), ""});
    for (const config& c : all) {
        for (bool zero_copy : {false, true}) {
            CAPTURE(B::name, c.name, zero_copy);
            auto net = B::network(output_net<R>{&p, c.multistep.output});
            std::vector<double> sample_times, step_times;
            auto logging = [&](const auto& x, double t, auto& out) {
                sample_times.push_back(t);
                net(x, t, out);
            };
            auto a = make<B>(p.x_T), b = make<B>(p.x_T);
            const network<S> logged = std::ref(logging);
            with_suite_solver(p, c, [&](const auto& solver) {
                const deis::sample_result r = solver.sample(logged, a.state());
                REQUIRE(r.ok());
                CHECK(step_through<B>(solver, b.state(), net, zero_copy, step_times) == r.nfe);
            });
            CHECK(step_times == sample_times);
            CHECK(B::read(b.state()) == B::read(a.state()));
        }
    }
}

// The stepper's data_prediction of each call is the observer's preview of sample().
template <class B>
void the_steppers_preview_is_the_observers() {
    using S = typename B::state_type;
    using R = typename B::reference_scalar;
    const problem p;
    for (const config& c : configurations()) {
        CAPTURE(B::name, c.name);
        auto net = B::network(output_net<R>{&p, c.multistep.output});
        std::vector<Eigen::MatrixXd> seen;
        auto h = make<B>(p.x_T), x0 = make<B>(p.x_T);
        auto obs = [&](const deis::step_info<S>& info) {
            info.data_prediction(x0.state());
            seen.push_back(B::read(x0.state()));
        };
        REQUIRE(run(p, c, net, h.state(), obs).ok());
        std::vector<Eigen::MatrixXd> previews;
        std::vector<double> times;
        auto b = make<B>(p.x_T);
        with_suite_solver(p, c,
                          [&](const auto& solver) { step_through<B>(solver, b.state(), net, false, times, &previews); });
        // the observer sees each step's first call; a Runge-Kutta step makes `stages` calls
        const std::size_t per_step = previews.size() / seen.size();
        REQUIRE(previews.size() == per_step * seen.size());
        // The same two products, added in the other order: equal up to one rounding. With the
        // corrector, sample() forms the corrected state for its observer, a path whose states
        // differ from the stepper's (and sample()'s without observer) by round-off: 100 ulps.
        // A backend whose kernels are not fused (torch operations) rounds between them: its
        // tolerance against the oracle.
        const bool corrector = c.multistep.corrector;
        const double tol = std::max(B::tolerance, (corrector ? 100 : 4) * double(std::numeric_limits<R>::epsilon()));
        for (std::size_t k = 0; k < seen.size(); ++k) {
            CAPTURE(k, (previews[k * per_step] - seen[k]).cwiseAbs().maxCoeff());
            CHECK(agrees(previews[k * per_step], seen[k], tol));
        }
    }
}

/// The whole suite for one backend.
template <class B>
void run_all() {
    SECTION("same samples as the Eigen oracle, every solver family") { same_samples_as_the_oracle<B>(); }
    SECTION("a NaN network stops the run at the oracle's finite state") { failed_calls_leave_the_oracles_state<B>(false); }
    SECTION("an exception propagates unchanged and leaves the same state") {
        failed_calls_leave_the_oracles_state<B>(true);
    }
    SECTION("the workspace is reusable after an exception") { a_workspace_is_reusable_after_a_failure<B>(); }
    SECTION("an observer sees every step and can cancel") { an_observer_sees_every_step_and_can_cancel<B>(); }
    SECTION("bad input is rejected before anything is touched") { bad_input_is_rejected_untouched<B>(); }
    SECTION("the stepper equals sample(), bit for bit") { the_stepper_equals_sample<B>(); }
    SECTION("the stepper's preview is the observer's") { the_steppers_preview_is_the_observers<B>(); }
}

}  // namespace deis_conformance
