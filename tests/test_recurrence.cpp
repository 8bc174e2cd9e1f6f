// What a multistep run computes on a batch, checked against
// (1) the recurrence documented with step_coefficients, replayed here from solver.table()
//     with plain Eigen expressions and the network's output converted with the schedule
//     directly, and
// (2) the same columns sampled one at a time.
#include <cmath>
#include <vector>

#include "catch.hpp"
#include "support.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"

namespace {

using deis::multistep_method;
using deis::prediction;

// A 3-D mixture of three components and a batch of 1001 starting points.
struct recurrence_problem {
    deis::vp_linear schedule{};
    deis::gmm_eps<deis::vp_linear> net{
        deis::gaussian_mixture((Eigen::VectorXd(3) << 0.5, 0.3, 0.2).finished(),
                               (Eigen::MatrixXd(3, 3) << 1.0, -1.0, 0.0, 0.5, 0.5, -1.0, -0.3, 0.2, 0.8).finished(),
                               Eigen::MatrixXd::Constant(3, 3, 0.2)),
        schedule};
    Eigen::MatrixXd x_T = start(1001);

    static Eigen::MatrixXd start(Eigen::Index cols) {
        Eigen::MatrixXd x(3, cols);
        for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = 1.4 * std::sin(0.3 + 0.77 * double(i));
        return x;
    }
};

// x_{k+1} = x_coef x_k + sum_j c[j] h_{k-j}, then, with a corrector, the network at that point
// and x_{k+1} = x_coef x_k + d[0] h_new + sum_{j >= 1} d[j] h_{k+1-j}, as step_coefficients
// documents it. h is eps, or x0 = (x - sigma eps) / alpha with data prediction.
Eigen::MatrixXd replay(const deis::multistep_solver& solver, const recurrence_problem& p, Eigen::MatrixXd x) {
    const bool data = solver.options().predict == prediction::data;
    const auto& table = solver.table();
    auto predict = [&](const Eigen::MatrixXd& at, double t) {
        Eigen::MatrixXd eps(at.rows(), at.cols());
        p.net(at, t, eps);
        if (!data) return eps;
        const Eigen::MatrixXd x0 = (at - p.schedule.sigma(t) * eps) / p.schedule.alpha(t);
        return x0;
    };
    std::vector<Eigen::MatrixXd> h;  // h[m]: the prediction at grid time m
    h.push_back(predict(x, table[0].t_from));
    for (std::size_t k = 0; k < table.size(); ++k) {
        const auto& row = table[k];
        Eigen::MatrixXd next = row.x_coef * x;
        for (int j = 0; j <= row.order; ++j) next += row.c[std::size_t(j)] * h[k - std::size_t(j)];
        if (k + 1 == table.size()) return next;
        h.push_back(predict(next, row.t_to));
        if (row.corrector_order >= 0) {
            next = row.x_coef * x;
            for (int j = 0; j <= row.corrector_order; ++j) next += row.d[std::size_t(j)] * h[k + 1 - std::size_t(j)];
        }
        x = next;
    }
    return x;
}

std::vector<deis::multistep_options> configurations() {
    std::vector<deis::multistep_options> all = {
        deis::parse_multistep("ddim"),
        deis::parse_multistep("tab3"),
        deis::parse_multistep("tab3+corrector"),
        deis::parse_multistep("tab1+data+corrector"),
        deis::parse_multistep("tab3+data+corrector"),
        deis::parse_multistep("rhoab2+data"),
        deis::parse_multistep("rhoab2+corrector"),
        deis::parse_multistep("ipndm3"),
    };
    // the order falling on the last steps, with the corrector
    deis::multistep_options final_low = deis::parse_multistep("tab3+corrector");
    final_low.final_steps = 3;
    final_low.final_order = 1;
    all.push_back(final_low);
    deis::multistep_options x0_net = deis::parse_multistep("tab2+data+corrector");
    x0_net.output = deis::model_output::x0;  // a non-identity conversion from the network's output
    all.push_back(x0_net);
    return all;
}

}  // namespace

TEST_CASE("a run follows the recurrence documented with step_coefficients", "[multistep]") {
    const recurrence_problem p;
    const auto grid = deis::power_t_grid(p.schedule, 8, 1.0, 1e-3, 2.0);
    for (auto opt : configurations()) {
        const bool x0_out = opt.output == deis::model_output::x0;
        opt.output = deis::model_output::eps;  // the replay converts from eps itself
        const deis::multistep_solver solver(p.schedule, grid, opt);
        const Eigen::MatrixXd expected = replay(solver, p, p.x_T);
        Eigen::MatrixXd x = p.x_T;
        if (x0_out) {
            opt.output = deis::model_output::x0;
            const deis::multistep_solver x0_solver(p.schedule, grid, opt);
            auto x0_net = [&](const deis::state<double>& at, double t, deis::state<double>& out) {
                p.net(at, t, out);
                out = (at - p.schedule.sigma(t) * out) / p.schedule.alpha(t);
            };
            REQUIRE(x0_solver.sample(x0_net, x).ok());
        } else {
            REQUIRE(solver.sample(p.net, x).ok());
        }
        // The same operations but for the conversion: the solver multiplies by the rounded
        // 1/alpha and sigma/alpha where the replay divides, a few ulps per prediction, carried
        // through 8 steps with coefficients of order one: 1e-12 relative to the largest entry
        // leaves a factor > 100 over that, while a wrong coefficient or history term moves
        // entries by 1e-3 or more.
        const double scale = expected.cwiseAbs().maxCoeff();
        INFO("method " << deis::to_string(*deis::resolve_defaults(opt).method) << ", order " << opt.order << ", corrector " << opt.corrector
                       << ", data prediction " << (opt.predict == prediction::data) << ", x0 network " << x0_out);
        CHECK((x - expected).cwiseAbs().maxCoeff() <= 1e-12 * scale);
    }
}

TEMPLATE_TEST_CASE("a column's result does not depend on the batch around it", "[multistep]", float,
                   double) {
    const recurrence_problem p;
    const auto grid = deis::power_t_grid(p.schedule, 8, 1.0, 1e-3, 2.0);
    const deis::state<TestType> x_T = p.x_T.cast<TestType>();
    const std::vector<Eigen::Index> columns = {0, 1, 500, 999, 1000};
    for (const auto& opt : configurations()) {
        const deis::multistep_solver solver(p.schedule, grid, opt);
        deis::state<TestType> batch = x_T;
        auto net = [&](const deis::state<TestType>& at, double t, deis::state<TestType>& out) {
            p.net(at, t, out);
            if (opt.output == deis::model_output::x0)
                out = ((at.template cast<double>() - p.schedule.sigma(t) * out.template cast<double>()) /
                       p.schedule.alpha(t))
                          .template cast<TestType>();
        };
        REQUIRE(solver.sample(net, batch).ok());
        for (Eigen::Index j : columns) {
            deis::state<TestType> one = x_T.col(j);
            REQUIRE(solver.sample(net, one).ok());
            // Every entry gets the same operations in the same order whatever its batch, and
            // the network is computed column by column: the results are equal, exactly (on
            // targets without fused multiply-add, such as the default x86-64 one, where the
            // compiler cannot contract a scalar remainder differently from the vector body).
            INFO("method " << deis::to_string(*deis::resolve_defaults(opt).method) << ", order " << opt.order << ", column " << j);
            CHECK((one - batch.col(j)).cwiseAbs().maxCoeff() == TestType(0));
        }
    }
}

TEST_CASE("a workspace holds the buffers multistep_options documents", "[multistep]") {
    const recurrence_problem p;
    const auto grid = deis::power_t_grid(p.schedule, 8, 1.0, 1e-3, 2.0);
    for (int order = 0; order <= 3; ++order) {
        const deis::multistep_solver plain(p.schedule, grid, deis::parse_multistep("tab" + std::to_string(order)));
        const deis::multistep_solver corrected(p.schedule, grid, deis::parse_multistep("tab" + std::to_string(order) + "+corrector"));
        CHECK(plain.history_size() == order + 1);
        CHECK_FALSE(plain.uses_corrector());
        CHECK(corrected.history_size() == order + 2);
        CHECK(corrected.uses_corrector());
    }
}
