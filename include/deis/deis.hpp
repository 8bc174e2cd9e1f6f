// deis: umbrella header. Including it brings in the whole public API. The research
// instruments (deis/research/: gmm.hpp, reference.hpp, calibrate.hpp) and the LibTorch
// backend (deis/torch.hpp) are included on their own.
#pragma once

#include "deis/version.hpp"
#include "deis/state.hpp"
#include "deis/result.hpp"
#include "deis/model_output.hpp"
#include "deis/observer.hpp"
#include "deis/noise.hpp"
#include "deis/schedule.hpp"
#include "deis/grid.hpp"
#include "deis/multistep.hpp"
#include "deis/recommended.hpp"
#include "deis/rk.hpp"
#include "deis/solver_config.hpp"
#include "deis/guidance.hpp"
// diffusers.hpp reads scheduler_config.json with nlohmann-json: it is part of the umbrella
// when that library is on the include path (include it directly otherwise).
#if __has_include(<nlohmann/json.hpp>)
#include "deis/diffusers.hpp"
#endif
