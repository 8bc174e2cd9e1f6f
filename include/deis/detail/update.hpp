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
// in 1..4. out may be x, but must not be any h[j].
template <class Scalar>
void combine(Scalar* out, const Scalar* x, double a, const double* c, const Scalar* const* h, int terms,
             Eigen::Index n) {
    switch (terms) {
        case 1: combine_terms(out, x, a, c, h, n, std::make_index_sequence<1>{}); break;
        case 2: combine_terms(out, x, a, c, h, n, std::make_index_sequence<2>{}); break;
        case 3: combine_terms(out, x, a, c, h, n, std::make_index_sequence<3>{}); break;
        default: combine_terms(out, x, a, c, h, n, std::make_index_sequence<4>{}); break;
    }
}

// out[i] = a y[i] + sum_{r in R...} c[r] h[r][i], where y[i] = x[i] + sum_{q in Q...} e[q] h[q][i]
// is formed in registers, not stored: the operations of combine_terms into y (with a = 1)
// followed by combine_terms from y, in the same order, in one pass over memory. out may be x.
template <class Scalar, std::size_t... Q, std::size_t... R>
void combine_twice_terms(Scalar* out, const Scalar* x, const double* e, double a, const double* c,
                         const Scalar* const* h, Eigen::Index n, std::index_sequence<Q...>,
                         std::index_sequence<R...>) {
    using in = const_segment<Scalar>;
    segment<Scalar>(out, n) = ((Scalar(a) * (in(x, n) + ... + (Scalar(e[Q]) * in(h[Q], n)))) + ... +
                               (Scalar(c[R]) * in(h[R], n)));
}

template <class Scalar, std::size_t... Q>
void combine_twice_r(Scalar* out, const Scalar* x, const double* e, double a, const double* c, int r_terms,
                     const Scalar* const* h, Eigen::Index n, std::index_sequence<Q...> q) {
    switch (r_terms) {
        case 1: combine_twice_terms(out, x, e, a, c, h, n, q, std::make_index_sequence<1>{}); break;
        case 2: combine_twice_terms(out, x, e, a, c, h, n, q, std::make_index_sequence<2>{}); break;
        case 3: combine_twice_terms(out, x, e, a, c, h, n, q, std::make_index_sequence<3>{}); break;
        default: combine_twice_terms(out, x, e, a, c, h, n, q, std::make_index_sequence<4>{}); break;
    }
}

// combine_twice_terms with run-time term counts: q_terms in 1..5, r_terms in 1..4.
template <class Scalar>
void combine_twice(Scalar* out, const Scalar* x, const double* e, int q_terms, double a, const double* c,
                   int r_terms, const Scalar* const* h, Eigen::Index n) {
    switch (q_terms) {
        case 1: combine_twice_r(out, x, e, a, c, r_terms, h, n, std::make_index_sequence<1>{}); break;
        case 2: combine_twice_r(out, x, e, a, c, r_terms, h, n, std::make_index_sequence<2>{}); break;
        case 3: combine_twice_r(out, x, e, a, c, r_terms, h, n, std::make_index_sequence<3>{}); break;
        case 4: combine_twice_r(out, x, e, a, c, r_terms, h, n, std::make_index_sequence<4>{}); break;
        default: combine_twice_r(out, x, e, a, c, r_terms, h, n, std::make_index_sequence<5>{}); break;
    }
}

}  // namespace deis::detail
