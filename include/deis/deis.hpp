// deis: umbrella header. Including it brings in the whole public API.
#pragma once

#include "deis/version.hpp"
