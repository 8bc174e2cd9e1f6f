// iPNDM (multistep.hpp, multistep_method::ipndm): the official DEIS samples of its iPNDM
// sampler on the uniform-t grid, and the identity that ties its coefficients to DDIM.
#include <cmath>
#include <deis/deis.hpp>
#include <deis/research/gmm.hpp>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support/csv_io.hpp"
#include "support.hpp"
#include "support/mixture_io.hpp"

namespace {

using deis_test::reference_mixture;
using deis_test::reference_samples;

using deis_test::ref_schedule;
using deis_test::T;
using deis_test::t_end;

deis::multistep_options ipndm_options() {
    deis::multistep_options o;
    o.method = deis::multistep_method::ipndm;
    o.order = 3;
    return o;
}

}  // namespace

TEST_CASE("iPNDM reproduces the official samples on the uniform grid", "[ipndm][reference]") {
    const deis::gmm_eps<deis::vp_linear> net(reference_mixture(), ref_schedule);
    const Eigen::MatrixXd x_T = reference_samples("gmm2d_xT.csv");
    for (int steps : {10, 20}) {
        const std::string file = "samples/deis-official__ipndm__o3__t1__s" + std::to_string(steps) + ".csv";
        INFO(file);
        const Eigen::MatrixXd expected = reference_samples(file);
        REQUIRE(expected.rows() == x_T.rows());
        REQUIRE(expected.cols() == x_T.cols());
        // t1: uniform in t, the power-t grid with k = 1
        const deis::multistep_solver solver(ref_schedule, deis::power_t_grid(ref_schedule, steps, T, t_end, 1.0),
                                            ipndm_options());
        deis::state<double> x = x_T;
        const auto r = solver.sample(net, x);
        REQUIRE(r.ok());
        CHECK(r.nfe == steps);
        CHECK(r.steps == steps);
        const double diff = (x - expected).cwiseAbs().maxCoeff();
        INFO("max abs difference " << diff);
        // Same arithmetic up to the order of a few roundings (the official code builds its
        // DDIM coefficient from alphabar and its grid with linspace), amplified by the flow
        // to ~1e-13; 1e-9 is the agreement the reference README promises.
        CHECK(diff < 1e-9);
    }
}

TEST_CASE("iPNDM's coefficients of every step sum to the DDIM coefficient", "[ipndm][identity]") {
    // The Adams-Bashforth weights of every order sum to 1, so sum_j c_kj is DDIM's
    // alpha_{k+1} (rho_{k+1} - rho_k); also the warm start: order min(k, 3).
    for (const double power : {1.0, 2.0}) {
        const auto grid = deis::power_t_grid(ref_schedule, 9, T, t_end, power);
        const deis::multistep_solver ipndm(ref_schedule, grid, ipndm_options());
        deis::multistep_options d;
        d.method = deis::multistep_method::ddim;
        const deis::multistep_solver ddim(ref_schedule, grid, d);
        for (int k = 0; k < ipndm.steps(); ++k) {
            const auto& row = ipndm.table()[std::size_t(k)];
            const auto& ref = ddim.table()[std::size_t(k)];
            INFO("power " << power << ", step " << k);
            CHECK(row.order == std::min(k, 3));
            CHECK(row.x_coef == ref.x_coef);
            double sum = 0.0;
            for (int j = 0; j <= row.order; ++j) sum += row.c[std::size_t(j)];
            for (int j = row.order + 1; j < int(row.c.size()); ++j) CHECK(row.c[std::size_t(j)] == 0.0);
            // at most 4 products of the DDIM coefficient with weights of size <= 59/24,
            // summed: a few ulps of the largest term, which is <= 2.5 times the sum
            CHECK(sum == Approx(ref.c[0]).epsilon(1e-14));
            // the newest weight is the classical one: 1, 3/2, 23/12, 55/24
            const double newest[4] = {1.0, 1.5, 23.0 / 12, 55.0 / 24};
            CHECK(row.c[0] == Approx(newest[row.order] * ref.c[0]).epsilon(1e-15));
        }
    }
}
