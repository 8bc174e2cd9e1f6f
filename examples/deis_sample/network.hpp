// deis-sample: the network and the schedule as the run's set-up sees them (templates over the
// schedule, used by grid.hpp and run.cpp): the mixture's network, a trained one (--model), and
// run_network, the one type the solvers are given either way.
#pragma once

#include <deis/deis.hpp>
#include <deis/diffusers.hpp>
#include <functional>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "deis_sample.hpp"
#include "interrupt.hpp"

namespace deis_sample {

// The mixture's exact eps, returned as the quantity `output` names, with x = alpha x0 + sigma eps,
// v = alpha eps - sigma x0 and score = -eps/sigma. A Network (deis/model_output.hpp). (A signal is
// seen by the run's observer, run_control.hpp, after every network call.)
//
// With a velocity output (alpha' x0 + sigma' eps), on flow matching and EDM (whose ends
// alpha = 0 and sigma = 0 the conversions from eps would divide by), and for a config's
// network, the output is instead the mixture's own exact one (deis::gmm_model), finite at both
// ends.
//
// With a `timesteps` map (a --scheduler-config) the mixture is called the way a diffusers
// network is: told the timestep tau = map(t) (for a discrete schedule the rounded training
// timestep), and evaluated at the time that tau stands for, (tau - offset)/scale.
template <class Schedule>
class mixture_network {
public:
    mixture_network(deis::gmm_eps<Schedule> eps, deis::model_output output,
                    std::optional<deis::timestep_map> timesteps = std::nullopt)
        : eps_(std::move(eps)), output_(output), map_(timesteps), exact_(exact_output(output) || map_.has_value()) {
        if (exact_) model_.emplace(eps_.mixture(), eps_.schedule(), output);
    }

    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) {
        if (map_) t = ((*map_)(t) - map_->offset) / map_->scale;
        if (exact_) {
            (*model_)(x, t, out);
            return;
        }
        eps_(x, t, out);
        const double alpha = eps_.schedule().alpha(t), sigma = eps_.schedule().sigma(t);
        const Scalar a = Scalar(alpha), s = Scalar(sigma);
        switch (output_) {
            case deis::model_output::eps:
                break;
            case deis::model_output::x0:
                out = (x - s * out) / a;
                break;
            case deis::model_output::v:
                out = a * out - s * ((x - s * out) / a);
                break;
            case deis::model_output::score:
                out = -out / s;
                break;
            case deis::model_output::velocity:  // exact_ (gmm_model) above
                throw std::logic_error("deis-sample: the velocity output goes through gmm_model");
        }
    }

private:
    static bool exact_output(deis::model_output output) {
        return output == deis::model_output::velocity || std::is_same_v<Schedule, deis::flow_matching> ||
               std::is_same_v<Schedule, deis::edm>;
    }

    deis::gmm_eps<Schedule> eps_;
    deis::model_output output_;
    std::optional<deis::timestep_map> map_;
    bool exact_;
    std::optional<deis::gmm_model<Schedule>> model_;
};

// A trained network (--model; trained.cpp) as a deis Network: given the time t, or with a
// `timesteps` map (a --scheduler-config) the timestep tau = map(t) a diffusers network is told
// (for a discrete schedule the rounded training timestep). Its output is the model's own, which
// the solver converts from the --model-output it is told.
class trained_model_network {
public:
    trained_model_network(trained_network& net, std::optional<deis::timestep_map> timesteps)
        : net_(&net), map_(timesteps) {}

    template <class Scalar>
    void operator()(const deis::state<Scalar>& x, double t, deis::state<Scalar>& out) const {
        (*net_)(x, t, map_ ? (*map_)(t) : t, out);
    }

private:
    trained_network* net_;
    std::optional<deis::timestep_map> map_;
};

// The network of a run, whichever it is (mixture_network or trained_model_network), as one type:
// the solvers' sample() and --grid optimized's calibration are instantiated once for both, and
// once for every schedule. Refers to the network, which must outlive it; a network call costs
// one indirect call more, nothing next to the call itself.
class run_network {
public:
    template <class Network>
    explicit run_network(Network& net)
        : float_([&net](const deis::state<float>& x, double t, deis::state<float>& out) { net(x, t, out); }),
          double_([&net](const deis::state<double>& x, double t, deis::state<double>& out) { net(x, t, out); }) {}

    void operator()(const deis::state<float>& x, double t, deis::state<float>& out) const { float_(x, t, out); }
    void operator()(const deis::state<double>& x, double t, deis::state<double>& out) const { double_(x, t, out); }

private:
    std::function<void(const deis::state<float>&, double, deis::state<float>&)> float_;
    std::function<void(const deis::state<double>&, double, deis::state<double>&)> double_;
};

// The schedule as seen by the grid and the solver while they are built: the same values,
// and a look at the signal flag at every evaluation. Building the coefficient tables
// evaluates the schedule at every step (10^6 steps take seconds), so a signal stops the
// set-up as promptly as the run. The optional members of the Schedule concept that the
// library detects (deis/detail/schedule_traits.hpp: alpha_dot and sigma_dot, which a velocity
// output needs, and rho_knots) exist here exactly when the wrapped schedule has them.
template <class Schedule>
class interruptible_schedule {
public:
    explicit interruptible_schedule(const Schedule& s) : s_(s) {}
    double alpha(double t) const { return check(), s_.alpha(t); }
    double sigma(double t) const { return check(), s_.sigma(t); }
    double rho(double t) const { return check(), s_.rho(t); }
    double t_from_rho(double r) const { return check(), s_.t_from_rho(r); }
    double t_min() const { return s_.t_min(); }
    double t_max() const { return s_.t_max(); }
    template <class S = Schedule, std::enable_if_t<deis::detail::has_derivatives<S>::value, int> = 0>
    double alpha_dot(double t) const {
        return check(), s_.alpha_dot(t);
    }
    template <class S = Schedule, std::enable_if_t<deis::detail::has_derivatives<S>::value, int> = 0>
    double sigma_dot(double t) const {
        return check(), s_.sigma_dot(t);
    }
    template <class S = Schedule, std::enable_if_t<deis::detail::has_rho_knots<S>::value, int> = 0>
    decltype(auto) rho_knots() const {
        return s_.rho_knots();
    }

private:
    static void check() { throw_if_interrupted(stage::setup); }
    Schedule s_;
};

}  // namespace deis_sample
