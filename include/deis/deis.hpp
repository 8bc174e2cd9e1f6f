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
#include "deis/multistep_options.hpp"
#include "deis/workspace.hpp"
#include "deis/step_coefficients.hpp"
#include "deis/recommended.hpp"
#include "deis/rk.hpp"
#include "deis/solver_config.hpp"
#include "deis/stepper.hpp"
#include "deis/denoiser.hpp"
#include "deis/tableau.hpp"
#include "deis/guidance.hpp"
// Models from diffusers (deis/diffusers.hpp): the timesteps and img2img always; the reader
// of scheduler_config.json, which needs nlohmann-json, when that library is on the include
// path (include deis/diffusers/config.hpp directly otherwise).
#include "deis/diffusers/img2img.hpp"
#include "deis/diffusers/timesteps.hpp"
#if __has_include(<nlohmann/json.hpp>)
#include "deis/diffusers.hpp"
#endif
