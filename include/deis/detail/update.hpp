// deis: the fused state update shared by the solvers: out = a x + sum_m c_m h_m, written as
// one Eigen expression so that it is a single pass over memory (no temporaries).
#pragma once

#include <cstddef>
#include <utility>

#include "deis/common.hpp"

namespace deis::detail {

// out = a x + sum_{m in M...} c[m] h[m], one pass over memory; the terms are those whose
// indices are listed (at compile time) in M. out may be x (the update is coefficient-wise),
// but must not be any h[m].
template <class Scalar, class Pointers, std::size_t... M>
void fused_update_terms(state<Scalar>& out, const state<Scalar>& x, double a, const double* c, const Pointers& h,
                        std::index_sequence<M...>) {
    if constexpr (sizeof...(M) == 0) {
        out = Scalar(a) * x;
    } else {
        out = ((Scalar(a) * x) + ... + (Scalar(c[M]) * *h[M]));
    }
}

// out = a x + sum_{j < n} c[j] h[j] for a run-time n in 1..5, one pass over memory. out may
// be x.
template <class Scalar>
void fused_update(state<Scalar>& out, const state<Scalar>& x, double a, const double* c, const state<Scalar>* const* h,
                  int n) {
    switch (n) {
        case 1:
            fused_update_terms(out, x, a, c, h, std::make_index_sequence<1>{});
            break;
        case 2:
            fused_update_terms(out, x, a, c, h, std::make_index_sequence<2>{});
            break;
        case 3:
            fused_update_terms(out, x, a, c, h, std::make_index_sequence<3>{});
            break;
        case 4:
            fused_update_terms(out, x, a, c, h, std::make_index_sequence<4>{});
            break;
        default:
            fused_update_terms(out, x, a, c, h, std::make_index_sequence<5>{});
            break;
    }
}

}  // namespace deis::detail
