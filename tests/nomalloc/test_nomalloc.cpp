// Stepping allocates nothing: every sample() call below runs with Eigen's heap allocation
// forbidden at run time (EIGEN_RUNTIME_NO_MALLOC), for every multistep method, with the
// corrector, with data prediction and converted model outputs, in float and double.
//
// EIGEN_RUNTIME_NO_MALLOC and the eigen_assert below change the definitions of Eigen's
// inline functions, so this file is its own executable (deis_nomalloc_tests): one
// translation unit of the main test binary defining them would break the one-definition
// rule. eigen_assert throws instead of aborting, and stays on with NDEBUG, so that a
// forbidden allocation fails a test in every build type.
#include <stdexcept>
#include <string>

namespace nomalloc_test {
struct eigen_assertion : std::logic_error {
    using std::logic_error::logic_error;
};
}  // namespace nomalloc_test

#define eigen_assert(x)                                                                  \
    do {                                                                                 \
        if (!(x)) throw ::nomalloc_test::eigen_assertion("Eigen assertion failed: " #x); \
    } while (false)
#define EIGEN_RUNTIME_NO_MALLOC

#include <deis/deis.hpp>
#include <limits>
#include <vector>
#include <utility>

#include "catch.hpp"

namespace {

using nomalloc_test::eigen_assertion;

// Forbids Eigen's heap allocation for its lifetime.
struct no_malloc_scope {
    no_malloc_scope() { Eigen::internal::set_is_malloc_allowed(false); }
    ~no_malloc_scope() { Eigen::internal::set_is_malloc_allowed(true); }
    no_malloc_scope(const no_malloc_scope&) = delete;
    no_malloc_scope& operator=(const no_malloc_scope&) = delete;
};

// A network that allocates nothing: the exact prediction for data N(0, I) under vp_linear
// (eps = sigma x, x0 = alpha x, v = velocity = 0, score = -x), written into the preallocated output.
// It records whether allocation was forbidden during every call, so a test knows that the
// flag was honoured where it matters, and can return NaN at a chosen call.
struct elementwise_net {
    deis::vp_linear schedule{};
    deis::model_output output = deis::model_output::eps;
    int calls = 0;
    bool malloc_ever_allowed = false;
    int nan_at_call = 0;

    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) {
        ++calls;
        malloc_ever_allowed = malloc_ever_allowed || Eigen::internal::is_malloc_allowed();
        switch (output) {
            case deis::model_output::eps:
                out = Scalar(schedule.sigma(t)) * x;
                break;
            case deis::model_output::x0:
                out = Scalar(schedule.alpha(t)) * x;
                break;
            case deis::model_output::v:  // alpha eps - sigma x0 = (alpha sigma - sigma alpha) x
            case deis::model_output::velocity:  // (alpha' alpha + sigma' sigma) x = (alpha^2 + sigma^2)'/2 x
                out.setZero();
                break;
            case deis::model_output::score:
                out = -x;
                break;
        }
        if (calls == nan_at_call) out(0, 0) = std::numeric_limits<Scalar>::quiet_NaN();
    }
};

struct config {
    const char* name;
    deis::multistep_method method;
    int order;
    bool corrector;
    deis::prediction predict;
    deis::model_output output;
};

std::vector<config> configs() {
    using M = deis::multistep_method;
    using P = deis::prediction;
    using O = deis::model_output;
    return {
        {"ddim", M::ddim, 0, false, P::noise, O::eps},
        {"tab0", M::tab, 0, false, P::noise, O::eps},
        {"tab1", M::tab, 1, false, P::noise, O::eps},
        {"tab2", M::tab, 2, false, P::noise, O::eps},
        {"tab3", M::tab, 3, false, P::noise, O::eps},
        {"rhoab1", M::rhoab, 1, false, P::noise, O::eps},
        {"rhoab3", M::rhoab, 3, false, P::noise, O::eps},
        {"ipndm3", M::ipndm, 3, false, P::noise, O::eps},
        {"tab3 + corrector", M::tab, 3, true, P::noise, O::eps},
        {"rhoab2 + corrector", M::rhoab, 2, true, P::noise, O::eps},
        {"tab3, data prediction", M::tab, 3, false, P::data, O::eps},
        {"tab2, data prediction + corrector", M::tab, 2, true, P::data, O::eps},
        {"tab3, network gives x0", M::tab, 3, false, P::noise, O::x0},
        {"tab3, network gives v, data prediction", M::tab, 3, false, P::data, O::v},
        {"rhoab3, network gives the score + corrector", M::rhoab, 3, true, P::noise, O::score},
    };
}

deis::multistep_options options_of(const config& c) {
    deis::multistep_options o;
    o.method = c.method;
    o.order = c.order;
    o.corrector = c.corrector;
    o.predict = c.predict;
    o.output = c.output;
    return o;
}

}  // namespace

TEST_CASE("the allocation check is live in this binary", "[nomalloc]") {
    CHECK(Eigen::internal::is_malloc_allowed());
    {
        no_malloc_scope forbid;
        CHECK_FALSE(Eigen::internal::is_malloc_allowed());
        // a deliberate heap allocation under the flag fails
        CHECK_THROWS_AS(Eigen::MatrixXd(16, 16), eigen_assertion);
        // while fixed-size (stack) objects are fine
        CHECK_NOTHROW(Eigen::Matrix4d::Identity().eval());
    }
    CHECK(Eigen::internal::is_malloc_allowed());
    CHECK_NOTHROW(Eigen::MatrixXd(16, 16));
}

TEMPLATE_TEST_CASE("sampling allocates nothing", "[nomalloc]", float, double) {
    using Scalar = TestType;
    const deis::vp_linear schedule{};
    const auto grid = deis::power_t_grid(schedule, 12, 1.0, 1e-3);
    for (const auto& c : configs()) {
        CAPTURE(c.name);
        const deis::multistep_solver solver(schedule, grid, options_of(c));
        deis::multistep_workspace<Scalar> ws(solver, 3, 7);
        deis::state<Scalar> x0 = deis::state<Scalar>::Constant(3, 7, Scalar(0.5));
        x0.row(1).setConstant(Scalar(-1.25));
        deis::state<Scalar> x = x0;
        elementwise_net net;
        net.output = c.output;
        deis::sample_result r1, r2;
        {
            no_malloc_scope forbid;
            REQUIRE_NOTHROW(r1 = solver.sample(net, x, ws));
            // the same workspace again, for a second run (copying x0 to x, same shape)
            x = x0;
            REQUIRE_NOTHROW(r2 = solver.sample(net, x, ws));
        }
        CHECK(r1.ok());
        CHECK(r2.ok());
        CHECK(r2.nfe == 12);
        CHECK(net.calls == 24);
        CHECK_FALSE(net.malloc_ever_allowed);
        CHECK(x.allFinite());
    }
}

TEMPLATE_TEST_CASE("a run stopped by a non-finite output allocates nothing", "[nomalloc]", float, double) {
    using Scalar = TestType;
    const deis::vp_linear schedule{};
    const auto grid = deis::power_t_grid(schedule, 8, 1.0, 1e-3);
    for (bool corrector : {false, true}) {
        CAPTURE(corrector);
        deis::multistep_options o;
        o.corrector = corrector;
        const deis::multistep_solver solver(schedule, grid, o);
        deis::multistep_workspace<Scalar> ws(solver, 2, 4);
        deis::state<Scalar> x = deis::state<Scalar>::Ones(2, 4);
        elementwise_net net;
        net.nan_at_call = 4;
        deis::sample_result r;
        {
            no_malloc_scope forbid;
            REQUIRE_NOTHROW(r = solver.sample(net, x, ws));
        }
        CHECK(r.status == deis::status::non_finite_output);
        CHECK(r.nfe == 4);
        CHECK_FALSE(net.malloc_ever_allowed);
    }
}

namespace {

// An observer that forms the data prediction (the preview) into a buffer made beforehand, and
// cancels at a chosen step (never with stop_at = -1).
template <class Scalar>
struct preview_observer {
    deis::state<Scalar>* preview;
    int stop_at = -1;
    int seen = 0;
    bool operator()(const deis::step_info<deis::state<Scalar>>& info) {
        ++seen;
        info.data_prediction(*preview);
        return info.step != stop_at;
    }
};

deis::multistep_options stochastic_options(bool sde_form, deis::multistep_method m, int order) {
    deis::multistep_options o;
    o.method = m;
    o.order = order;
    if (sde_form) {
        o.sde = true;
        o.predict = deis::prediction::data;
    } else {
        o.eta = 1.0;
    }
    return o;
}

}  // namespace

TEMPLATE_TEST_CASE("observers, stochastic sampling and thresholding allocate nothing", "[nomalloc]", float, double) {
    using Scalar = TestType;
    using M = deis::multistep_method;
    const deis::vp_linear schedule{};
    const auto grid = deis::power_t_grid(schedule, 10, 1.0, 1e-3);
    deis::multistep_options thresholded;
    thresholded.predict = deis::prediction::data;
    thresholded.threshold.percentile = 0.9;
    thresholded.threshold.max_value = 1.5;
    const std::vector<std::pair<const char*, deis::multistep_options>> cases = {
        {"ddim eta = 1", stochastic_options(false, M::ddim, 0)},
        {"sde tab 1", stochastic_options(true, M::tab, 1)},
        {"sde rhoab 2", stochastic_options(true, M::rhoab, 2)},
        {"tab3, data prediction, thresholding", thresholded},
        {"recommended", deis::recommended_options(schedule, grid)},
    };
    for (const auto& [name, o] : cases) {
        CAPTURE(name);
        const deis::multistep_solver solver(schedule, grid, o);
        deis::multistep_workspace<Scalar> ws(solver, 4, 6);
        deis::state<Scalar> x = deis::state<Scalar>::Constant(4, 6, Scalar(0.75));
        deis::state<Scalar> preview(4, 6);
        elementwise_net net;
        preview_observer<Scalar> watch{&preview};
        preview_observer<Scalar> stop{&preview, 4};
        deis::sample_result r1, r2, r3;
        {
            no_malloc_scope forbid;
            REQUIRE_NOTHROW(r1 = solver.sample(net, x, ws, watch));
            x.setConstant(Scalar(0.75));
            REQUIRE_NOTHROW(r2 = solver.sample(net, x, ws, stop));
            x.setConstant(Scalar(0.75));
            // the noise source passed explicitly
            REQUIRE_NOTHROW(r3 = solver.sample(net, x, ws, deis::detail::no_observer{}, deis::gaussian_noise(3)));
        }
        CHECK(r1.ok());
        CHECK(watch.seen == 10);
        CHECK(r2.status == deis::status::cancelled);
        CHECK(r2.steps == 4);
        CHECK(r3.ok());
        CHECK_FALSE(net.malloc_ever_allowed);
        CHECK(x.allFinite());
    }
}

TEMPLATE_TEST_CASE("an observer of rk_solver allocates nothing", "[nomalloc]", float, double) {
    using Scalar = TestType;
    const deis::vp_linear schedule{};
    const auto grid = deis::power_t_grid(schedule, 6, 1.0, 1e-3);
    const deis::rk_solver<deis::tableau::heun2> solver(schedule, grid);
    deis::rk_workspace<Scalar> ws(solver, 3, 5);
    deis::state<Scalar> x = deis::state<Scalar>::Constant(3, 5, Scalar(-0.5));
    deis::state<Scalar> preview(3, 5);
    elementwise_net net;
    preview_observer<Scalar> watch{&preview};
    deis::sample_result r;
    {
        no_malloc_scope forbid;
        REQUIRE_NOTHROW(r = solver.sample(net, x, ws, watch));
    }
    CHECK(r.ok());
    CHECK(watch.seen == 6);
    CHECK_FALSE(net.malloc_ever_allowed);
}

TEMPLATE_TEST_CASE("the guidance adaptors allocate nothing per call", "[nomalloc]", float, double) {
    using Scalar = TestType;
    const deis::vp_linear schedule{};
    const auto grid = deis::power_t_grid(schedule, 12, 1.0, 1e-3);
    const deis::multistep_solver solver(schedule, grid, deis::recommended_options(schedule, grid));
    deis::multistep_workspace<Scalar> ws(solver, 3, 7);
    const deis::state<Scalar> x0 = deis::state<Scalar>::Constant(3, 7, Scalar(0.5));
    elementwise_net cond, uncond, both;
    // made (and their buffers allocated) before the allocation check starts
    deis::guided_network pair(cond, uncond, 7.5, x0);
    deis::guided_batch_network batch(both, 7.5, x0);
    deis::state<Scalar> x = x0, y = x0;
    deis::sample_result r1, r2;
    {
        no_malloc_scope forbid;
        REQUIRE_NOTHROW(r1 = solver.sample(pair, x, ws));
        REQUIRE_NOTHROW(r2 = solver.sample(batch, y, ws));
    }
    CHECK(r1.ok());
    CHECK(r2.ok());
    CHECK(cond.calls == 12);
    CHECK(uncond.calls == 12);
    CHECK(both.calls == 12);
    CHECK_FALSE(cond.malloc_ever_allowed);
    CHECK_FALSE(uncond.malloc_ever_allowed);
    CHECK_FALSE(both.malloc_ever_allowed);
    // both adaptors form w c + (1 - w) u with the same roundings: the runs agree bit for bit
    CHECK((x - y).cwiseAbs().maxCoeff() == Scalar(0));
}

TEMPLATE_TEST_CASE("a stepper allocates nothing after its construction", "[nomalloc][stepper]", float, double) {
    using Scalar = TestType;
    using S = deis::state<Scalar>;
    const deis::vp_linear schedule{};
    const auto grid = deis::power_t_grid(schedule, 10, 1.0, 1e-3);
    auto drive = [](auto& st, elementwise_net& net, S& out, S& x0, bool zero_copy) {
        while (!st.done()) {
            if (zero_copy) {
                net(st.input(), st.time(), st.output());
                REQUIRE(st.advance() == deis::status::success);
            } else {
                net(st.input(), st.time(), out);
                st.data_prediction(out, x0);
                REQUIRE(st.advance(out) == deis::status::success);
            }
        }
    };
    auto check = [&](const auto& solver, bool zero_copy) {
        S x = S::Constant(3, 7, Scalar(0.5)), out = x, x0 = x;
        elementwise_net net;
        deis::stepper st(solver, x);
        {
            no_malloc_scope forbid;
            REQUIRE_NOTHROW(drive(st, net, out, x0, zero_copy));
        }
        CHECK(st.nfe() == solver.nfe());
        CHECK_FALSE(net.malloc_ever_allowed);
        CHECK(x.allFinite());
    };
    for (bool zero_copy : {false, true}) {
        for (const char* name : {"tab3+data+corrector", "rhoab3", "ipndm3", "ddim+eta=1", "tab2+sde", "uni_pc_bh2"}) {
            CAPTURE(name, zero_copy);
            check(deis::multistep_solver(schedule, grid, deis::parse_multistep(name)), zero_copy);
        }
        CAPTURE(zero_copy);
        check(deis::rk_solver<deis::tableau::heun2>(schedule, grid), zero_copy);
        check(deis::rk_solver<deis::tableau::rk4>(schedule, grid), zero_copy);
    }
}
