// deis: one row of a multistep solver's coefficient table (multistep_solver::table()).
#pragma once

#include <array>

#include "deis/detail/lagrange.hpp"

namespace deis {

/// One row of a solver's coefficient table: step k maps x(t_from) to x(t_to) by
/// x_to = x_coef * x_from + sum_{j <= order} c[j] h_{k-j} (+ noise * z, fresh standard normal
/// noise, for a stochastic solver) (c[0] multiplies the prediction made at t_from), and, when
/// corrector_order >= 0, corrects it by
/// x_to = x_coef * x_from + d[0] h_new + sum_{1 <= j <= corrector_order} d[j] h_{k+1-j},
/// h_new being the prediction made at the uncorrected x_to. Unused entries are 0.
struct step_coefficients {
    double t_from = 0.0, t_to = 0.0;
    double x_coef = 0.0;
    int order = 0;
    std::array<double, detail::max_nodes> c{};
    int corrector_order = -1;
    std::array<double, detail::max_nodes> d{};
    double noise = 0.0;
};

}  // namespace deis
