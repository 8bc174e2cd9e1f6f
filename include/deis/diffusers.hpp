// deis: models from the diffusers ecosystem (SD 1.5, SD 2.1, SDXL, SD3, Flux and their
// fine-tunes). This header includes the three parts:
// - deis/diffusers/timesteps.hpp: the timestep grids of diffusers' schedulers and
//   timestep_network, the adaptor that hands a network the training timestep it was trained on;
// - deis/diffusers/config.hpp: the reader of scheduler_config.json (needs nlohmann-json);
// - deis/diffusers/img2img.hpp: img2img, a run started from noised data at a strength.
//
// The facts of diffusers' behaviour reproduced here, and the test tables, are in
// tests/data/diffusers/README.md.
#pragma once

#include "deis/diffusers/config.hpp"
#include "deis/diffusers/img2img.hpp"
#include "deis/diffusers/timesteps.hpp"
