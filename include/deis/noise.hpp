// deis: the noise of the stochastic samplers.
//
// The Noise concept. A noise source is a callable `noise(S& z, int step)` that overwrites z
// (a state of the run's layout) with independent standard normal entries for step `step`
// of a run. A stochastic solver calls it once per step, before that step's update, from the
// thread that runs sample(); it must not allocate if the run is to allocate nothing.
//
// deis::gaussian_noise is the default. Its numbers are a function of (seed, step, sample,
// entry) only, so a sample's noise does not depend on the batch around it or on the thread
// count: the same seed gives the same samples, sample by sample. For Eigen states (one
// sample per column) it is a counter-based generator: the SplitMix64 finaliser hashes the
// counter (seed, step, column, pair of rows) into two uniforms, and the Box-Muller transform
// makes two normals of them. Other backends provide their own filling by specialising
// deis::noise_ops (<deis/torch.hpp> does, with torch's generators).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace deis {

/// How gaussian_noise fills a state of type S: `noise_ops<S>::fill(S& z, std::uint64_t seed,
/// int step)` with independent N(0, 1) entries, a function of (seed, step, sample, entry).
template <class S, class Enable = void>
struct noise_ops;

namespace detail {

// SplitMix64's output function: a bijective mix of 64 bits.
constexpr std::uint64_t mix64(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// A key per (seed, step, sample); the entries of the sample are counters under it.
constexpr std::uint64_t noise_key(std::uint64_t seed, std::uint64_t step, std::uint64_t sample) {
    return mix64(mix64(mix64(seed) ^ step) ^ sample);
}

// Two standard normals from counter `pair` under `key` (Box-Muller; the first uniform is in
// (0, 1], so the logarithm is finite).
inline void normal_pair(std::uint64_t key, std::uint64_t pair, double& a, double& b) {
    const double u1 = double((mix64(key ^ (2 * pair)) >> 11) + 1) * 0x1.0p-53;
    const double u2 = double(mix64(key ^ (2 * pair + 1)) >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 6.283185307179586476925286766559 * u2;
    a = r * std::cos(theta);
    b = r * std::sin(theta);
}

}  // namespace detail

/// Eigen states, one sample per column.
template <class S>
struct noise_ops<S, std::enable_if_t<std::is_base_of_v<Eigen::MatrixBase<S>, S>>> {
    static void fill(S& z, std::uint64_t seed, int step) {
        using Scalar = typename S::Scalar;
        for (Eigen::Index j = 0; j < z.cols(); ++j) {
            const std::uint64_t key = detail::noise_key(seed, std::uint64_t(step), std::uint64_t(j));
            for (Eigen::Index i = 0; i < z.rows(); i += 2) {
                double a = 0.0, b = 0.0;
                detail::normal_pair(key, std::uint64_t(i / 2), a, b);
                z(i, j) = Scalar(a);
                if (i + 1 < z.rows()) z(i + 1, j) = Scalar(b);
            }
        }
    }
};

/// The default noise source (see the Noise concept above). Default-constructed it stands for
/// "the solver's seed": a stochastic solver given gaussian_noise{} uses its options' seed.
class gaussian_noise {
public:
    gaussian_noise() = default;
    explicit gaussian_noise(std::uint64_t seed) : seed_(seed), seeded_(true) {}

    /// Available for the state types that noise_ops knows (Eigen, torch with <deis/torch.hpp>).
    template <class S, class = decltype(noise_ops<S>::fill(std::declval<S&>(), std::uint64_t(0), 0))>
    void operator()(S& z, int step) const {
        noise_ops<S>::fill(z, seed_, step);
    }

    std::uint64_t seed() const { return seed_; }
    bool seeded() const { return seeded_; }

private:
    std::uint64_t seed_ = 0;
    bool seeded_ = false;
};

}  // namespace deis
