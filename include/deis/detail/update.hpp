// deis: the fused state updates of the solvers, out = a x + sum_m c_m h_m, each written as
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

// n contiguous entries of a state (states are column-major and contiguous), as an array.
template <class Scalar>
using segment = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
template <class Scalar>
using const_segment = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;

// out[i] = a x[i] + sum_{m in M...} c[m] h[m][i] for i < n, one pass over memory, with the
// operations of fused_update_terms in the same order.
template <class Scalar, std::size_t... M>
void combine_terms(Scalar* out, const Scalar* x, double a, const double* c, const Scalar* const* h, Eigen::Index n,
                   std::index_sequence<M...>) {
    segment<Scalar>(out, n) =
        ((Scalar(a) * const_segment<Scalar>(x, n)) + ... + (Scalar(c[M]) * const_segment<Scalar>(h[M], n)));
}

// out[i] = a x[i] + sum_{j < terms} c[j] h[j][i] for i < n, with a run-time number of terms
// in 1..5. out may be x, but must not be any h[j].
template <class Scalar>
void combine(Scalar* out, const Scalar* x, double a, const double* c, const Scalar* const* h, int terms,
             Eigen::Index n) {
    switch (terms) {
        case 1: combine_terms(out, x, a, c, h, n, std::make_index_sequence<1>{}); break;
        case 2: combine_terms(out, x, a, c, h, n, std::make_index_sequence<2>{}); break;
        case 3: combine_terms(out, x, a, c, h, n, std::make_index_sequence<3>{}); break;
        case 4: combine_terms(out, x, a, c, h, n, std::make_index_sequence<4>{}); break;
        default: combine_terms(out, x, a, c, h, n, std::make_index_sequence<5>{}); break;
    }
}

}  // namespace deis::detail
