// deis-sample: the schedule of the run, from --schedule and its parameters or from the
// --scheduler-config the inputs hold, with the network's model output and timestep.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <variant>

#include "deis_sample.hpp"

namespace deis_sample {

model make_model(const options& o, const problem& p) {
    model m;
    if (!p.config) {
        try {
            if (o.schedule == "vp-linear")
                m.schedule = deis::vp_linear(o.beta_min, o.beta_max, o.t_max);
            else if (o.schedule == "vp-cosine")
                m.schedule = deis::vp_cosine(0.008, o.t_max);
            else if (o.schedule == "flow")
                m.schedule = deis::flow_matching();
            else if (o.schedule == "edm")
                m.schedule = deis::edm(o.sigma_max);
            else
                m.schedule = deis::ve(o.sigma_min, o.sigma_max);
        } catch (const std::invalid_argument& e) {
            usage_error(e.what());  // a schedule parameter the checks of options.cpp let through
        }
        m.output = parse_output(o.output);
        m.flow = o.schedule == "flow";
        m.t_max = o.t_max;
        return m;
    }

    const deis::scheduler_config& c = *p.config;
    const std::string name = "--scheduler-config " + o.scheduler_config;
    std::visit([&](const auto& s) { m.schedule = s; }, c.schedule);
    m.output = o.output_given ? parse_output(o.output) : c.output;
    m.timesteps = c.timesteps();
    m.discrete = c.discrete();
    m.flow = m.config_flow = !c.discrete();
    m.t_max = std::min(o.t_max, std::visit([](const auto& s) { return s.t_max(); }, c.schedule));
    // what a config may refuse: options.cpp has let these through until the config was read
    if (o.flow_shift != 1.0 && !m.flow)
        usage_error("--flow-shift applies to flow matching, not the discrete schedule of " + name);
    if (o.image_seq_len_given && !c.dynamic_shifting)
        usage_error("--image-seq-len applies to a config with use_dynamic_shifting, which " + name + " is not");
    return m;
}

}  // namespace deis_sample
