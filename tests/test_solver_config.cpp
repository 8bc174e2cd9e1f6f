// The typed solver configuration and its names (deis/solver_config.hpp): the grammar reads
// back every name deis-bench runs, a bad configuration is refused with every fault in one
// message, every single field of multistep_options can be set alone, and with_solver builds
// the solver a name describes.
#include <Eigen/Core>
#include <stdexcept>
#include <string>
#include <vector>

#include "../bench/deis_bench/solver_rows.hpp"
#include "catch.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support.hpp"

namespace solver_config_test {

// Two components in 2-D: the exact eps of their mixture plays the network.
deis::gaussian_mixture pair_mixture() {
    Eigen::MatrixXd mu(2, 2);
    mu << -1.5, 1.0, 0.5, -0.5;
    return deis::gaussian_mixture(Eigen::VectorXd::Ones(2), mu, Eigen::MatrixXd::Constant(2, 2, 0.4));
}

Eigen::MatrixXd noise_batch() {
    Eigen::MatrixXd x(2, 3);
    x << 0.3, -1.2, 0.8, 1.1, 0.2, -0.7;
    return x;
}

}  // namespace solver_config_test

TEST_CASE("solver_config: every name deis-bench runs reads back as itself", "[config]") {
    int checked = 0;
    for (const char* case_name : {"ring2d", "flow"}) {
        for (const deis_bench::solver_row& row : deis_bench::solver_rows(case_name)) {
            const std::string name = row.name;
            if (name == "recommended+calibrated") continue;  // the bench's alias
            CAPTURE(name);
            const deis::solver_config c = deis::parse_solver_config(name);
            CHECK(deis::to_string(c) == name);
            const deis::solver_config again = deis::parse_solver_config(deis::to_string(c));
            CHECK(again.kind == c.kind);
            CHECK(again.tableau == c.tableau);
            CHECK(again.multistep.method == c.multistep.method);
            CHECK(again.multistep.order == c.multistep.order);
            CHECK(again.multistep.predict == c.multistep.predict);
            CHECK(again.multistep.corrector == c.multistep.corrector);
            ++checked;
        }
    }
    CHECK(checked >= 74);  // 38 names on each case, one of them an alias
}

TEST_CASE("solver_config: names are written in one canonical order and read in any", "[config]") {
    const std::vector<std::pair<std::string, std::string>> spellings = {
        {"tab3+corrector+data", "tab3+data+corrector"},
        {"tab2+sde+data", "tab2+data+sde"},
        {"tab+clock=vp+data+corrector", "tab+data+clock=vp+corrector"},
        {"tab3+corrector+clock=logsnr+data", "tab3+data+clock=logsnr+corrector"},
        {"ddim+eta=0.50", "ddim+eta=0.5"},
        {"ddim+eta=1e-1", "ddim+eta=0.1"},
        {"tab3+final=2:1+noise", "tab3+noise+final=2:1"},
        {"rk:rk4", "rk:rk4"},
        {"recommended", "recommended"},
    };
    for (const auto& [given, canonical] : spellings) {
        CAPTURE(given);
        CHECK(deis::to_string(deis::parse_solver_config(given)) == canonical);
        CHECK(deis::to_string(deis::parse_solver_config(canonical)) == canonical);
    }
    // each field of the grammar lands where it should
    const deis::multistep_options o = deis::parse_multistep("rhoab2+data+corrector+final=3:1");
    CHECK(o.method == deis::multistep_method::rhoab);
    CHECK(o.order == 2);
    CHECK(o.predict == deis::prediction::data);
    CHECK(o.corrector);
    CHECK(o.final_steps == 3);
    CHECK(o.final_order == 1);
    const deis::multistep_options e = deis::parse_multistep("ddim+eta=0.25");
    CHECK(e.eta == 0.25);
    CHECK(deis::parse_multistep("tab+clock=vp").clock == deis::tab_clock::vp_linear);
    CHECK(deis::parse_multistep("tab+clock=logsnr").clock == deis::tab_clock::log_snr);
    CHECK(deis::parse_solver_config("rk:heun2").tableau == "heun2");
}

TEST_CASE("solver_config: a bad name or configuration lists every fault in one message", "[config]") {
    // five faults of the configuration, one of them twice over (eta)
    const std::string all = deis_test::refusal([] { deis::parse_solver_config("ipndm3+corrector+sde+eta=2"); });
    CAPTURE(all);
    for (const char* part : {"order = 3 must lie in 0..2 with sde", "corrector = true is not available for iPNDM",
                             "eta = 2 must lie in [0, 1]", "eta = 2 applies to DDIM only",
                             "sde = true is available for tab, rhoab and ddim, not iPNDM", "eta = 2 and sde exclude",
                             "corrector = true is not available with stochastic sampling"})
        CHECK(all.find(part) != std::string::npos);
    // faults of the syntax, all at once
    const std::string syntax = deis_test::refusal([] { deis::parse_solver_config("tab4+bogus+data+noise+eta=x"); });
    CAPTURE(syntax);
    for (const char* part : {"order \"4\"", "\"bogus\" is not a modifier", "\"noise\" repeats or contradicts",
                             "eta must be a finite decimal number"})
        CHECK(syntax.find(part) != std::string::npos);
    for (const char* bad : {"", "+data", "tab3+", "tab3++data", "heun2", "rk:", "rk:rk5", "recommended+data",
                            "rk:rk4+data", "ddim+eta=nan", "ddim+eta=0x1", "tab3+final=1", "tab3+corrector=1",
                            "tab3+clock=t", "ddim1", "tab3+data+data"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(deis::parse_solver_config(bad), std::invalid_argument);
    }
    // the solver built from options reports every fault too, in the same words
    deis::multistep_options o;
    o.method = deis::multistep_method::ipndm;
    o.corrector = true;
    o.order = 5;
    o.final_steps = -1;
    const std::string built = deis_test::refusal([&] {
        deis::multistep_solver(deis_test::ref_schedule, deis::power_t_grid(deis_test::ref_schedule, 5, 1.0, 1e-3), o);
    });
    CAPTURE(built);
    for (const char* part : {"order = 5 must lie in 0..3", "final_steps = -1 must be >= 0",
                             "corrector = true is not available for iPNDM"})
        CHECK(built.find(part) != std::string::npos);
    CHECK(deis::multistep_faults(o).size() == 3);
}

TEST_CASE("multistep_options: every field set alone gives a solver that samples", "[config]") {
    const deis::vp_linear& sch = deis_test::ref_schedule;
    const std::vector<double> grid = deis::power_t_grid(sch, 8, 1.0, 1e-3);
    const deis::gmm_eps<deis::vp_linear> net(solver_config_test::pair_mixture(), sch);
    struct one_field {
        const char* name;
        void (*set)(deis::multistep_options&);
    };
    const std::vector<one_field> fields = {
        {"defaults", [](deis::multistep_options&) {}},
        {"method ddim", [](deis::multistep_options& o) { o.method = deis::multistep_method::ddim; }},
        {"method rhoab", [](deis::multistep_options& o) { o.method = deis::multistep_method::rhoab; }},
        {"method ipndm", [](deis::multistep_options& o) { o.method = deis::multistep_method::ipndm; }},
        {"order 1", [](deis::multistep_options& o) { o.order = 1; }},
        {"final_steps 2", [](deis::multistep_options& o) { o.final_steps = 2; }},
        {"final_order 2", [](deis::multistep_options& o) { o.final_order = 2; }},
        {"predict data", [](deis::multistep_options& o) { o.predict = deis::prediction::data; }},
        {"clock vp_linear", [](deis::multistep_options& o) { o.clock = deis::tab_clock::vp_linear; }},
        {"clock log_snr", [](deis::multistep_options& o) { o.clock = deis::tab_clock::log_snr; }},
        {"output eps", [](deis::multistep_options& o) { o.output = deis::model_output::eps; }},
        {"corrector", [](deis::multistep_options& o) { o.corrector = true; }},
        {"eta 0.5 (DDIM by default)", [](deis::multistep_options& o) { o.eta = 0.5; }},
        {"sde (data prediction, order 2 by default)", [](deis::multistep_options& o) { o.sde = true; }},
        {"seed", [](deis::multistep_options& o) { o.seed = 7; }},
        {"threshold (data prediction by default)", [](deis::multistep_options& o) { o.threshold.percentile = 0.995; }},
    };
    for (const one_field& f : fields) {
        CAPTURE(f.name);
        deis::multistep_options o;
        f.set(o);
        CHECK(deis::multistep_faults(o).empty());
        deis::state<double> x = solver_config_test::noise_batch();
        const deis::multistep_solver solver(sch, grid, o);
        CHECK(solver.sample(net, x).ok());
        CHECK(x.allFinite());
    }
    // invert alone: an inversion grid, from data to noise (40 steps: tAB3 going up the 8-step
    // grid is refused, test_inversion.cpp)
    deis::multistep_options inv;
    inv.invert = true;
    const std::vector<double> fine = deis::power_t_grid(sch, 40, 1.0, 1e-3);
    std::vector<double> up(fine.rbegin(), fine.rend());
    deis::state<double> x = solver_config_test::noise_batch();
    CHECK(deis::multistep_solver(sch, up, inv).sample(net, x).ok());
    // the defaults the other fields imply, as options() reports them
    deis::multistep_options sde;
    sde.sde = true;
    const deis::multistep_solver s(sch, grid, sde);
    CHECK(s.options().predict == deis::prediction::data);
    CHECK(s.options().order == 2);
    deis::multistep_options eta;
    eta.eta = 0.5;
    CHECK(deis::multistep_solver(sch, grid, eta).options().method == deis::multistep_method::ddim);
}

TEST_CASE("with_solver builds the solver a name describes", "[config]") {
    const deis::vp_linear& sch = deis_test::ref_schedule;
    const std::vector<double> grid = deis::power_t_grid(sch, 6, 1.0, 1e-3);
    const deis::gmm_eps<deis::vp_linear> net(solver_config_test::pair_mixture(), sch);
    auto run = [&](const std::string& name) {
        deis::state<double> x = solver_config_test::noise_batch();
        // through deis::with_solver; its other tableaux are built, not sampled
        const int nfe = deis_test::with_solver_of<deis::tableau::heun2>(deis::parse_solver_config(name), sch, grid,
                                                                        [&](const auto& solver) {
            REQUIRE(solver.sample(net, x).ok());
            return solver.nfe();
        });
        return std::make_pair(Eigen::MatrixXd(x), nfe);
    };
    auto direct = [&](const auto& solver) {
        deis::state<double> x = solver_config_test::noise_batch();
        REQUIRE(solver.sample(net, x).ok());
        return Eigen::MatrixXd(x);
    };
    // the same bits as the solver built by hand
    CHECK(run("tab3+data+corrector").first ==
          direct(deis::multistep_solver(sch, grid, deis::parse_multistep("tab3+data+corrector"))));
    CHECK(run("recommended").first == direct(deis::multistep_solver(sch, grid, deis::recommended_options(sch, grid))));
    CHECK(run("rk:heun2").first == direct(deis::rk_solver<deis::tableau::heun2>(sch, grid)));
    CHECK(run("rk:heun2").second == 12);
    CHECK(run("ipndm").second == 6);
    CHECK(deis::calls_per_step(deis::parse_solver_config("rk:heun2")) == 2);
    CHECK(deis::calls_per_step(deis::parse_solver_config("rk:rk4")) == 4);
    CHECK(deis::calls_per_step(deis::parse_solver_config("tab3+data+corrector")) == 1);
    CHECK(deis::calls_per_step(deis::parse_solver_config("recommended")) == 1);
    deis::solver_config unknown;
    unknown.kind = deis::solver_kind::runge_kutta;
    unknown.tableau = "rk5";
    CHECK_THROWS_AS(deis::calls_per_step(unknown), std::invalid_argument);
    // resolve: recommended keeps the configuration's run options
    deis::solver_config rec = deis::parse_solver_config("recommended");
    rec.multistep.output = deis::model_output::x0;
    CHECK(deis::resolve(rec, sch, grid).output == deis::model_output::x0);
    CHECK(deis::resolve(rec, sch, grid).corrector == deis::recommended_options(sch, grid).corrector);
    CHECK_THROWS_AS(deis::resolve(deis::parse_solver_config("rk:rk4"), sch, grid), std::invalid_argument);
}
