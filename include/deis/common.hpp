// deis: what every solver shares, one header per concept; this header includes them all
// (kept so that code written against it compiles unchanged):
// - deis/state.hpp: the State backend concept and the default state type deis::state<Scalar>;
// - deis/model_output.hpp: the Network concept, model_output, prediction;
// - deis/observer.hpp: the per-step observer, step_info;
// - deis/result.hpp: how a run ends, status and sample_result.
#pragma once

#include "deis/model_output.hpp"
#include "deis/observer.hpp"
#include "deis/result.hpp"
#include "deis/state.hpp"

// the solvers' internal machinery that common.hpp used to hold
#include "deis/detail/check_state.hpp"
#include "deis/detail/evaluate.hpp"
#include "deis/detail/notify.hpp"
#include "deis/detail/state_of.hpp"
