// deis: the State backend concept (what a solver needs of the type that holds a batch of
// states) and its models for Eigen matrices and Eigen::Map.
//
// A solver never looks inside a state: every operation of its loop goes through the traits
// struct deis::state_ops<S>. A type S models the concept when state_ops<S> is specialised
// with these members (ops = state_ops<S>; x, y of type S; b of type ops::buffer; a a double;
// c a const double* to n coefficients; h a const S* const* to n states):
//
//   | expression                  | type           | meaning                                   |
//   |-----------------------------|----------------|-------------------------------------------|
//   | ops::buffer                 | movable type   | owning storage of one state-sized buffer  |
//   | ops::like(x)                | ops::buffer    | a new buffer with x's layout (shape, and  |
//   |                             |                | element type and device where S has them);|
//   |                             |                | contents unspecified. Set-up only: the    |
//   |                             |                | solvers call it when a workspace is made, |
//   |                             |                | never while sampling                      |
//   | ops::view(b)                | S&             | the state stored in b (the same object at |
//   |                             |                | every call, as long as b lives)           |
//   | ops::copy(y, x)             | void           | deep copy of x's values into y (same      |
//   |                             |                | layout); never rebinds y to x's storage   |
//   | ops::combine(y, a, x, c, h, | void           | y = a x + sum_{j < n} c[j] *h[j], for     |
//   |              n)             |                | 0 <= n <= deis::max_combination_terms;    |
//   |                             |                | y may be the same object as x, never one  |
//   |                             |                | of the h[j]; all of the same layout. One  |
//   |                             |                | pass over memory where the backend can    |
//   | ops::all_finite(x)          | bool           | no NaN or Inf in x                        |
//   | ops::same_layout(x, y)      | bool           | copy and combine may take x and y together|
//   | ops::empty(x)               | bool           | x holds no element                        |
//   | ops::describe(x)            | std::string    | x's layout for error messages, e.g. "2x3" |
//
// Optional members, detected at compile time:
//
//   | ops::scope                  | default-constructible type: one object of it lives during |
//   |                             | every sample() call (the torch backend puts               |
//   |                             | c10::InferenceMode there)                                 |
//   | ops::check(where, x)        | throws std::invalid_argument (naming `where`) when x breaks|
//   |                             | the backend's own calling convention (torch: contiguous,   |
//   |                             | a floating dtype, not requiring grad); called before any   |
//   |                             | other check of sample()                                    |
//   | ops::threshold(x0, scratch, | dynamic thresholding of a data prediction, per sample     |
//   |                p, m)        | (multistep_options::threshold): s = the p-quantile of |x0| |
//   |                             | over the sample's entries (linear interpolation), clamped |
//   |                             | to [1, m], then x0 = clamp(x0, -s, s) / s; scratch is a   |
//   |                             | state of x0's layout it may overwrite                     |
//
// The aliasing rule, as for BLAS axpy-like kernels: in combine, the output may be x but no
// h[j]. Everything else is the caller's: the solvers pass states of one layout, made by like()
// from the caller's x. A model of the concept must make combine, copy and all_finite safe to
// call from several threads at once on distinct states.
//
// Models shipped with the library:
// - Eigen::Matrix of any scalar (float, double, ...) and shape, e.g. deis::state<Scalar>
//   (one sample per column): buffer is the same matrix type, combine is one fused Eigen
//   expression per n (no temporaries);
// - Eigen::Map<Eigen::Matrix<...>> over memory the caller owns (an ONNX Runtime output, a
//   CUDA host buffer, a NumPy array handed to C++): the solver reads and writes that memory
//   in place, with no copy; its buffers are owning matrices viewed through Maps of the same
//   type, so the network sees Maps for x and out alike;
// - torch::Tensor, in <deis/torch.hpp> (not included by <deis/deis.hpp>).
// A type of one's own is added by specialising deis::state_ops for it (tests/
// test_backends.cpp has a complete one, a counting wrapper).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

namespace deis {

/// A batch of states: one sample per column, column-major. Scalar is float or double; all
/// coefficient math is done in double and each coefficient is rounded to Scalar once.
template <class Scalar>
using state = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// The largest number of terms n in one state_ops<S>::combine call: one per Runge-Kutta stage
/// (rk_max_stages) and at most 6 for the multistep solvers.
inline constexpr int max_combination_terms = 16;

/// The State backend traits; see the concept at the top of this header. Not defined for
/// types that do not model it.
template <class S, class Enable = void>
struct state_ops;

namespace detail {

// Whether S models the concept (state_ops<S> is defined).
template <class S, class = void>
struct has_state_ops : std::false_type {};
template <class S>
struct has_state_ops<S, std::void_t<decltype(sizeof(state_ops<S>))>> : std::true_type {};

// state_ops<S>::scope, or an empty type.
struct no_scope {};
template <class S, class = void>
struct scope_of {
    using type = no_scope;
};
template <class S>
struct scope_of<S, std::void_t<typename state_ops<S>::scope>> {
    using type = typename state_ops<S>::scope;
};

// out = a x + sum_{m in M...} c[m] h[m] as one Eigen expression (one pass over memory).
template <class Out, class X, class H, std::size_t... M>
void eigen_combine(Out& out, double a, const X& x, const double* c, const H* const* h, std::index_sequence<M...>) {
    using Scalar = typename X::Scalar;
    if constexpr (sizeof...(M) == 0) {
        out = Scalar(a) * x;
    } else {
        out = ((Scalar(a) * x) + ... + (Scalar(c[M]) * *h[M]));
    }
}

// The same for a run-time n in 0..max_combination_terms: a table of the fused kernels.
template <class S, std::size_t N>
void eigen_combine_n(S& out, double a, const S& x, const double* c, const S* const* h) {
    eigen_combine(out, a, x, c, h, std::make_index_sequence<N>{});
}

template <class S, std::size_t... N>
constexpr auto eigen_combine_table(std::index_sequence<N...>) {
    using kernel = void (*)(S&, double, const S&, const double*, const S* const*);
    return std::array<kernel, sizeof...(N)>{&eigen_combine_n<S, N>...};
}

template <class S>
void eigen_combine_dispatch(S& out, double a, const S& x, const double* c, const S* const* h, int n) {
    static constexpr auto table =
        eigen_combine_table<S>(std::make_index_sequence<std::size_t(max_combination_terms) + 1>{});
    table[std::size_t(n)](out, a, x, c, h);
}

// Whether every entry is finite, in one vectorised pass: m - m is exactly 0 for a finite
// entry and NaN for an infinite or NaN one, so the sum is 0 exactly when all are finite.
// (Eigen's allFinite() ends in a per-entry branch; this is about 5x faster, which matters
// since it runs on every network output.) Under -ffast-math, where m - m may fold to 0, it
// falls back to allFinite().
template <class Derived>
bool all_finite(const Eigen::MatrixBase<Derived>& m) {
#ifdef __FAST_MATH__
    return m.allFinite();
#else
    return (m - m).sum() == typename Derived::Scalar(0);
#endif
}

template <class Derived>
std::string eigen_shape(const Eigen::MatrixBase<Derived>& m) {
    return std::to_string(m.rows()) + "x" + std::to_string(m.cols());
}

// Whether state_ops<S> has the optional threshold member.
template <class S, class = void>
struct has_threshold : std::false_type {};
template <class S>
struct has_threshold<S, std::void_t<decltype(state_ops<S>::threshold(std::declval<S&>(), std::declval<S&>(), 0.0,
                                                                       0.0))>> : std::true_type {};

// Dynamic thresholding of an Eigen state, one sample per column; `scratch` (of x0's size)
// holds |x0| of one column at a time.
template <class S>
void eigen_threshold(S& x0, S& scratch, double p, double max_value) {
    using Scalar = typename S::Scalar;
    const Eigen::Index D = x0.rows();
    Scalar* v = scratch.data();
    for (Eigen::Index j = 0; j < x0.cols(); ++j) {
        for (Eigen::Index i = 0; i < D; ++i) v[i] = std::abs(x0(i, j));
        // the p-quantile with linear interpolation between order statistics, as numpy's and
        // torch's default
        const double pos = p * double(D - 1);
        const auto lo = Eigen::Index(std::floor(pos));
        std::nth_element(v, v + lo, v + D);
        double q = double(v[lo]);
        if (lo + 1 < D && pos > double(lo)) q += (pos - double(lo)) * (double(*std::min_element(v + lo + 1, v + D)) - q);
        const Scalar s = Scalar(std::min(std::max(q, 1.0), max_value));
        x0.col(j) = x0.col(j).cwiseMax(-s).cwiseMin(s) / s;
    }
}

// The operations shared by the Eigen models.
template <class S>
struct eigen_ops_base {
    static void copy(S& y, const S& x) { y = x; }
    static void combine(S& out, double a, const S& x, const double* c, const S* const* h, int n) {
        eigen_combine_dispatch(out, a, x, c, h, n);
    }
    static bool all_finite(const S& x) { return detail::all_finite(x); }
    static bool same_layout(const S& x, const S& y) { return x.rows() == y.rows() && x.cols() == y.cols(); }
    static bool empty(const S& x) { return x.size() == 0; }
    static std::string describe(const S& x) { return eigen_shape(x); }
    static void threshold(S& x0, S& scratch, double p, double max_value) {
        eigen_threshold(x0, scratch, p, max_value);
    }
};

// An owning matrix seen through a Map, the buffer of the Map model. The Map is rebuilt on a
// move (the matrix keeps its heap block, so the view stays valid), never copied.
template <class Plain, class MapType>
struct map_buffer {
    Plain storage;
    MapType view;

    map_buffer(Eigen::Index rows, Eigen::Index cols) : storage(rows, cols), view(storage.data(), rows, cols) {}
    map_buffer(map_buffer&& o) noexcept
        : storage(std::move(o.storage)), view(storage.data(), storage.rows(), storage.cols()) {}
    map_buffer(const map_buffer&) = delete;
    map_buffer& operator=(const map_buffer&) = delete;
    map_buffer& operator=(map_buffer&&) = delete;
};

}  // namespace detail

/// Eigen matrices of any scalar and shape: the default backend (deis::state<Scalar>).
template <class Scalar, int Rows, int Cols, int Options, int MaxRows, int MaxCols>
struct state_ops<Eigen::Matrix<Scalar, Rows, Cols, Options, MaxRows, MaxCols>>
    : detail::eigen_ops_base<Eigen::Matrix<Scalar, Rows, Cols, Options, MaxRows, MaxCols>> {
    using state_type = Eigen::Matrix<Scalar, Rows, Cols, Options, MaxRows, MaxCols>;
    using buffer = state_type;
    static buffer like(const state_type& x) { return buffer(x.rows(), x.cols()); }
    static state_type& view(buffer& b) { return b; }
};

/// Eigen::Map over memory the caller owns (writable, unit inner stride): sampled in place.
template <class Scalar, int Rows, int Cols, int Options, int MaxRows, int MaxCols, int MapOptions>
struct state_ops<Eigen::Map<Eigen::Matrix<Scalar, Rows, Cols, Options, MaxRows, MaxCols>, MapOptions>>
    : detail::eigen_ops_base<Eigen::Map<Eigen::Matrix<Scalar, Rows, Cols, Options, MaxRows, MaxCols>, MapOptions>> {
    using plain_type = Eigen::Matrix<Scalar, Rows, Cols, Options, MaxRows, MaxCols>;
    using state_type = Eigen::Map<plain_type, MapOptions>;
    using buffer = detail::map_buffer<plain_type, state_type>;
    static buffer like(const state_type& x) { return buffer(x.rows(), x.cols()); }
    static state_type& view(buffer& b) { return b.view; }
};

}  // namespace deis
