// deis: umbrella header. Including it brings in the whole public API.
#pragma once

#include "deis/version.hpp"
#include "deis/state.hpp"
#include "deis/common.hpp"
#include "deis/noise.hpp"
#include "deis/schedule.hpp"
#include "deis/grid.hpp"
#include "deis/multistep.hpp"
#include "deis/recommended.hpp"
#include "deis/rk.hpp"
#include "deis/gmm.hpp"
#include "deis/guidance.hpp"
