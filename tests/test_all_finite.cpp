// detail::all_finite, the finiteness check run on every network output: it must agree with
// std::isfinite on every entry, for float and double, wherever the bad entry sits (the
// vectorised sum processes entries in packets plus a scalar tail).
#include <deis/common.hpp>

#include <cmath>
#include <limits>

#include "catch.hpp"

TEMPLATE_TEST_CASE("detail::all_finite agrees with std::isfinite", "[common]", float, double) {
    using S = TestType;
    using lim = std::numeric_limits<S>;
    // finite extremes: m - m is still exactly 0
    deis::state<S> m(3, 7);
    m.setConstant(S(1.5));
    m(0, 0) = lim::max();
    m(1, 0) = lim::lowest();
    m(2, 0) = lim::denorm_min();
    m(0, 1) = -lim::min();
    CHECK(deis::detail::all_finite(m));

    // one bad entry at every position, each kind
    for (const S bad : {lim::quiet_NaN(), lim::infinity(), -lim::infinity()}) {
        for (Eigen::Index i = 0; i < m.size(); ++i) {
            deis::state<S> b = m;
            b.data()[i] = bad;
            CHECK_FALSE(deis::detail::all_finite(b));
        }
    }
    // +inf and -inf together must not cancel
    deis::state<S> both = m;
    both(0, 2) = lim::infinity();
    both(1, 2) = -lim::infinity();
    CHECK_FALSE(deis::detail::all_finite(both));

    // a long vector (many packets)
    deis::state<S> big = deis::state<S>::Ones(2, 1001);
    CHECK(deis::detail::all_finite(big));
    big(1, 1000) = lim::quiet_NaN();
    CHECK_FALSE(deis::detail::all_finite(big));
}
