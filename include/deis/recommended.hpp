// deis: the library's recommended multistep configuration.
#pragma once

#include "deis/multistep.hpp"

namespace deis {

/// The recommended multistep configuration for 5 to 20 network calls, to be used on the
/// quadratic grid power_t_grid(schedule, steps, t_max, t_end, 2.0):
///
///   tAB-DEIS with data prediction, a linear predictor (order 1: the two newest x0
///   predictions, Lagrange in t) and the exponential Adams-Moulton corrector through the
///   new prediction and those two (a quadratic, so the method has order 3), exact
///   Gauss-Legendre coefficients, one network call per step.
///
/// Why: data prediction keeps the extrapolated quantity bounded where eps is not (and is
/// the form that stays stable under guidance); the corrector gains one order for free; and
/// at 10 steps a linear predictor is more robust than quadratic or cubic extrapolation
/// across the steps where the trajectories choose their mixture component. Higher orders
/// (order = 2 or 3 with the corrector) are more accurate from about 15-20 calls on. The
/// measurements behind this choice are in README.md and docs/benchmarks.md.
inline multistep_options recommended_options() {
    multistep_options o;
    o.method = multistep_method::tab;
    o.order = 1;
    o.predict = prediction::data;
    o.corrector = true;
    return o;
}

}  // namespace deis
