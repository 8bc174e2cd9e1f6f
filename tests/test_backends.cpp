// The State backend concept (deis/state.hpp): the conformance suite (tests/conformance.hpp)
// run on the Eigen matrix and Eigen::Map models and on a counting backend defined here, which
// also shows how a type of one's own models the concept; the operations a run makes per
// step; sampling memory the caller owns in place.
#include <Eigen/Core>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "conformance.hpp"
#include "deis/deis.hpp"

namespace {

// ---- A backend of one's own: an Eigen matrix that counts what the solvers do with it ------

struct op_counts {
    long like = 0, copy = 0, combine = 0, finite = 0;
};

// The state: the values and where to count.
struct counted {
    Eigen::MatrixXd m;
    op_counts* counts = nullptr;
};

}  // namespace

template <>
struct deis::state_ops<counted> {
    using buffer = counted;
    static counted like(const counted& x) {
        ++x.counts->like;
        return {Eigen::MatrixXd(x.m.rows(), x.m.cols()), x.counts};
    }
    static counted& view(counted& b) { return b; }
    static void copy(counted& y, const counted& x) {
        ++y.counts->copy;
        y.m = x.m;
    }
    static void combine(counted& out, double a, const counted& x, const double* c, const counted* const* h, int n) {
        ++out.counts->combine;
        if (n < 0 || n > deis::max_combination_terms) throw std::logic_error("combine: n out of range");
        for (int j = 0; j < n; ++j)  // the aliasing rule of the concept
            if (h[j] == &out) throw std::logic_error("combine: the output is one of the h[j]");
        out.m = a * x.m;  // out may be x: element by element
        for (int j = 0; j < n; ++j) out.m += c[j] * h[j]->m;
    }
    static bool all_finite(const counted& x) {
        ++x.counts->finite;
        return x.m.allFinite();
    }
    static bool same_layout(const counted& x, const counted& y) {
        return x.m.rows() == y.m.rows() && x.m.cols() == y.m.cols();
    }
    static bool empty(const counted& x) { return x.m.size() == 0; }
    static std::string describe(const counted& x) { return deis::detail::eigen_shape(x.m); }
};

namespace {

// ---- The backends of the conformance suite ---------------------------------------------

template <class Scalar>
struct eigen_backend {
    static constexpr const char* name = "Eigen matrix";
    using state_type = deis::state<Scalar>;
    using reference_scalar = Scalar;
    static constexpr double tolerance = 0.0;  // the oracle itself: identical
    struct holder {
        state_type x;
        state_type& state() { return x; }
    };
    static holder make(const Eigen::MatrixXd& x) { return {x.cast<Scalar>()}; }
    static Eigen::MatrixXd read(const state_type& x) { return x.template cast<double>(); }
    template <class Net>
    static Net network(Net net) {
        return net;
    }
};

template <class Scalar>
struct map_backend {
    static constexpr const char* name = "Eigen::Map";
    using matrix = deis::state<Scalar>;
    using state_type = Eigen::Map<matrix>;
    using reference_scalar = Scalar;
    // the same Eigen kernels on the same values: identical
    static constexpr double tolerance = 0.0;
    struct holder {
        std::vector<Scalar> memory;  // the caller's memory
        state_type view;
        holder(const Eigen::MatrixXd& x)
            : memory(std::size_t(x.size())), view(memory.data(), x.rows(), x.cols()) {
            view = x.cast<Scalar>();
        }
        holder(holder&& o) noexcept : memory(std::move(o.memory)), view(memory.data(), o.view.rows(), o.view.cols()) {}
        state_type& state() { return view; }
    };
    static holder make(const Eigen::MatrixXd& x) { return holder(x); }
    static Eigen::MatrixXd read(const state_type& x) { return x.template cast<double>(); }
    // a network on Maps, computing through the Eigen network
    template <class Net>
    static auto network(Net net) {
        return [net](const state_type& x, double t, state_type& out) {
            const matrix in = x;
            matrix o(x.rows(), x.cols());
            net(in, t, o);
            out = o;
        };
    }
};

struct counted_backend {
    static constexpr const char* name = "counting backend";
    using state_type = counted;
    using reference_scalar = double;
    // plain Eigen sums in double, term by term: the same operations as the fused kernel up to
    // the order of additions, so round-off (1e-15 of the sample scale, accumulated over 40
    // calls of a solver) is the only difference
    static constexpr double tolerance = 1e-13;
    struct holder {
        std::unique_ptr<op_counts> counts = std::make_unique<op_counts>();
        counted x;
        counted& state() { return x; }
    };
    static holder make(const Eigen::MatrixXd& x) {
        holder h;
        h.x = counted{x, h.counts.get()};
        return h;
    }
    static Eigen::MatrixXd read(const counted& x) { return x.m; }
    template <class Net>
    static auto network(Net net) {
        return [net](const counted& x, double t, counted& out) { net(x.m, t, out.m); };
    }
};

}  // namespace

TEST_CASE("conformance: Eigen matrices (double)", "[backend][conformance]") {
    deis_conformance::run_all<eigen_backend<double>>();
}
TEST_CASE("conformance: Eigen matrices (float)", "[backend][conformance]") {
    deis_conformance::run_all<eigen_backend<float>>();
}
TEST_CASE("conformance: Eigen::Map over the caller's memory (double)", "[backend][conformance]") {
    deis_conformance::run_all<map_backend<double>>();
}
TEST_CASE("conformance: Eigen::Map over the caller's memory (float)", "[backend][conformance]") {
    deis_conformance::run_all<map_backend<float>>();
}
TEST_CASE("conformance: a counting backend of one's own", "[backend][conformance]") {
    deis_conformance::run_all<counted_backend>();
}

TEST_CASE("the operations a run makes, per step, and no buffer made while sampling", "[backend]") {
    using deis::multistep_method;
    using deis::prediction;
    const deis_conformance::problem p;
    const int n = int(p.grid.size()) - 1;  // 10 steps, 10 calls
    auto h = counted_backend::make(p.x_T);
    op_counts& c = *h.counts;
    auto net = counted_backend::network(deis_conformance::output_net<double>{&p});

    struct expectation {
        const char* name;
        deis::multistep_options o;
        bool observer;
        long combines;  // per run
    };
    deis::multistep_options x0_out = deis::parse_multistep("tab3");
    x0_out.output = deis::model_output::x0;
    const expectation cases[] = {
        // one fused update per step
        {"tab3", deis::parse_multistep("tab3"), false, n},
        // the corrector fused into the next predictor: still one pass per step
        {"tab3+corrector", deis::parse_multistep("tab3+corrector"), false, n},
        // data prediction from an eps network: the conversion to x0 is one more pass per call
        {"tab1+data+corrector", deis::parse_multistep("tab1+data+corrector"), false, 2 * n},
        // an observer with the corrector: the corrected state is formed for it, steps 1..N-1
        {"tab3+corrector, observer", deis::parse_multistep("tab3+corrector"), true, n + (n - 1)},
        // an output to convert: one more pass per call
        {"tab3, network gives x0", x0_out, false, 2 * n},
    };
    for (const auto& e : cases) {
        CAPTURE(e.name);
        const deis::multistep_solver solver(p.schedule, p.grid, e.o);
        deis::multistep_workspace<counted> ws(solver, h.state());
        CHECK(c.like == solver.history_size() + (solver.uses_corrector() ? 1 : 0));
        c = op_counts{};
        h.x.m = p.x_T;
        deis::sample_result r;
        if (e.observer)
            r = solver.sample(net, h.state(), ws, [](const deis::step_info<counted>&) {});
        else
            r = solver.sample(net, h.state(), ws);
        REQUIRE(r.ok());
        CHECK(c.like == 0);               // no buffer made inside the loop
        CHECK(c.copy == 0);               // nothing copied on a successful run
        CHECK(c.finite == 1 + n);         // the input, then every network output
        CHECK(c.combine == e.combines);
    }
    // Runge-Kutta: stages - 1 stage states and one update per step, one check per call
    {
        const deis::rk_solver<deis::tableau::rk4> solver(p.schedule, p.grid);
        deis::rk_workspace<counted> ws(solver, h.state());
        CHECK(c.like == 4 + 1);
        c = op_counts{};
        h.x.m = p.x_T;
        REQUIRE(solver.sample(net, h.state(), ws).ok());
        CHECK(c.like == 0);
        CHECK(c.copy == 0);
        CHECK(c.finite == 1 + 4 * n);
        CHECK(c.combine == (3 + 1) * n);
    }
    // a failed call after a corrected step copies the predicted state into x, once
    {
        const deis::multistep_solver solver(p.schedule, p.grid, deis::parse_multistep("tab3+corrector"));
        deis::multistep_workspace<counted> ws(solver, h.state());
        c = op_counts{};
        h.x.m = p.x_T;
        deis_conformance::failing_net<decltype(net)> bad{net, 4, false};
        CHECK(solver.sample(bad, h.state(), ws).status == deis::status::non_finite_output);
        CHECK(c.like == 0);
        CHECK(c.copy == 1);
    }
}

TEST_CASE("an Eigen::Map state is sampled in the caller's memory, without a copy", "[backend]") {
    const deis_conformance::problem p;
    const deis::multistep_solver solver(p.schedule, p.grid, deis::recommended_options(p.schedule, p.grid));
    // memory owned by someone else (an ONNX Runtime output, a CUDA host buffer, ...)
    std::vector<float> memory(std::size_t(p.x_T.size()));
    Eigen::Map<deis::state<float>> x(memory.data(), p.x_T.rows(), p.x_T.cols());
    x = p.x_T.cast<float>();
    const float* before = x.data();
    auto net = map_backend<float>::network(deis_conformance::output_net<float>{&p});
    REQUIRE(solver.sample(net, x).ok());
    CHECK(x.data() == before);
    // the result is in `memory`, equal to the run on an owning matrix
    deis::state<float> y = p.x_T.cast<float>();
    REQUIRE(solver.sample(deis_conformance::output_net<float>{&p}, y).ok());
    CHECK(std::memcmp(memory.data(), y.data(), memory.size() * sizeof(float)) == 0);
}
