// Grids for flow-matching and sigma-space models: time shifts (SD3, Flux) that keep the
// asked end points, grids given as noise levels, the Karras and exponential levels and the
// published Align Your Steps levels with their log-linear interpolation (checked against
// tests/data/diffusers/ays.csv, computed outside the library).
#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "catch.hpp"
#include "deis/deis.hpp"
#include "support.hpp"

TEST_CASE("time shift: the SD3 formula, its inverse, and Flux's dynamic form", "[grid][flow]") {
    for (double s : {1.0, 1.5, 3.0, 7.0})
        for (double t : {0.0, 1e-3, 0.2, 0.5, 0.9, 1.0}) {
            CAPTURE(s, t);
            CHECK(deis::shift_time(t, s) == Approx(s * t / (1.0 + (s - 1.0) * t)).epsilon(1e-15));
            CHECK(deis::unshift_time(deis::shift_time(t, s), s) == Approx(t).epsilon(1e-15).margin(1e-300));
        }
    CHECK(deis::shift_time(1.0, 3.0) == 1.0);
    CHECK(deis::shift_time(0.0, 3.0) == 0.0);
    // mu = 0.5 at 256 tokens, 1.15 at 4096 (FLUX.1 at 1024 x 1024: 64 x 64 tokens)
    CHECK(deis::flux_shift(256.0) == Approx(std::exp(0.5)).epsilon(1e-15));
    CHECK(deis::flux_shift(4096.0) == Approx(std::exp(1.15)).epsilon(1e-15));
    CHECK(deis::flux_shift(64.0 * 64.0) == deis::flux_shift(4096.0));
}

TEST_CASE("shifted grids keep the asked end points and shift every other point", "[grid][flow]") {
    const deis::flow_matching flow;
    for (double shift : {1.0, 3.0, deis::flux_shift(4096.0)}) {
        for (double t_end : {0.0, 1e-3}) {
            CAPTURE(shift, t_end);
            const auto g = deis::shifted_grid(flow, deis::grid_kind::power_t, 10, 1.0, t_end, 1.0, shift);
            REQUIRE(g.size() == 11);
            CHECK(g.front() == 1.0);
            CHECK(g.back() == t_end);
            // the interior: uniform between the unshifted end points, then shifted
            const double a = deis::unshift_time(1.0, shift), b = deis::unshift_time(t_end, shift);
            for (int i = 1; i < 10; ++i)
                CHECK(g[std::size_t(i)] == Approx(deis::shift_time(a + (b - a) * i / 10.0, shift)).epsilon(1e-14));
        }
    }
    CHECK_THROWS_WITH(deis::shifted_grid(flow, deis::grid_kind::power_t, 10, 1.0, 0.0, 1.0, 0.0),
                      deis_test::contains("shift = 0 must be finite and > 0"));
}

TEST_CASE("a grid given as noise levels is converted with the schedule", "[grid][edm]") {
    const deis::edm edm(80.0);
    const std::vector<double> sigmas = {80.0, 10.0, 1.0, 0.1, 0.0};
    CHECK(deis::sigma_grid(edm, sigmas) == sigmas);  // sigma = t
    // on a VP schedule the levels are sigma/alpha = rho (the sigmas of diffusers)
    const deis::vp_linear vp;
    const auto g = deis::sigma_grid(vp, {vp.rho(1.0), vp.rho(0.5), vp.rho(0.1), 0.0});
    CHECK(g[0] == Approx(1.0).epsilon(1e-14));
    CHECK(g[1] == Approx(0.5).epsilon(1e-14));
    CHECK(g[2] == Approx(0.1).epsilon(1e-13));
    CHECK(g[3] == 0.0);
    // published levels rounded just above the schedule's top become t_max; more is an error
    const auto sd = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    REQUIRE(sd.rho(1.0) < 14.615);
    CHECK(deis::sigma_grid(sd, {14.615, 1.0, 0.029}).front() == 1.0);
    CHECK_THROWS_WITH(deis::sigma_grid(sd, {15.0, 1.0}), deis_test::contains("sigmas[0] = 15 is above"));
    CHECK_THROWS_WITH(deis::sigma_grid(edm, {10.0, -1.0}), deis_test::contains("sigmas[1] = -1 must be >= 0"));
    CHECK_THROWS_WITH(deis::sigma_grid(edm, {10.0, 20.0}), deis_test::contains("must be smaller"));
}

TEST_CASE("Karras and exponential noise levels", "[grid][edm]") {
    const auto k = deis::sigma_levels(deis::noise_levels::karras, 8, 80.0, 0.002);
    const auto e = deis::sigma_levels(deis::noise_levels::exponential, 8, 80.0, 0.002);
    REQUIRE(k.size() == 9);
    CHECK(k.front() == 80.0);
    CHECK(k.back() == 0.002);
    CHECK(e.back() == 0.002);
    for (int i = 0; i <= 8; ++i) {
        const double r = std::pow(80.0, 1 / 7.0) + i / 8.0 * (std::pow(0.002, 1 / 7.0) - std::pow(80.0, 1 / 7.0));
        CHECK(k[std::size_t(i)] == Approx(std::pow(r, 7.0)).epsilon(1e-13));
        CHECK(e[std::size_t(i)] == Approx(80.0 * std::pow(0.002 / 80.0, i / 8.0)).epsilon(1e-13));
    }
    // the Karras levels are the power-of-rho grid of k = 7 on the edm schedule
    const auto g = deis::power_rho_grid(deis::edm(80.0), 8, 80.0, 0.002, 7.0);
    for (int i = 0; i <= 8; ++i) CHECK(g[std::size_t(i)] == Approx(k[std::size_t(i)]).epsilon(1e-13));
    CHECK_THROWS_WITH(deis::sigma_levels(deis::noise_levels::karras, 8, 1.0, 2.0), deis_test::contains("sigma_max"));
}

TEST_CASE("Align Your Steps: the published levels and their log-linear interpolation", "[grid][edm][diffusers]") {
    // ays.csv: model, kind (published | loglinear_interp), num_levels, index, sigma, ...
    std::ifstream in(deis_test::reference_path("diffusers/ays.csv"));
    REQUIRE(in);
    std::string line;
    std::getline(in, line);
    std::map<std::pair<std::string, int>, std::vector<double>> tables;
    while (std::getline(in, line)) {
        const auto c = deis_tools::split_csv_line(line);
        if (c[0] != "SD1.5" && c[0] != "SDXL") continue;
        tables[{c[0], std::stoi(c[2])}].push_back(std::stod(c[4]));
    }
    REQUIRE(tables.size() >= 10);
    for (const auto& [key, want] : tables) {
        CAPTURE(key.first, key.second);
        const auto which = key.first == "SD1.5" ? deis::noise_levels::ays_sd15 : deis::noise_levels::ays_sdxl;
        const auto got = deis::sigma_levels(which, key.second - 1);
        REQUIRE(got.size() == want.size());
        // the file's values went through numpy-style float64 interpolation: a few ulps
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-13));
    }
    // as a grid of Stable Diffusion's discrete schedule: 10 steps from t = 1
    const auto sd = deis::vp_discrete::from_betas(deis::beta_schedule::scaled_linear);
    const auto g = deis::sigma_grid(sd, deis::sigma_levels(deis::noise_levels::ays_sd15, 10));
    CHECK(g.size() == 11);
    CHECK(g.front() == 1.0);
}
