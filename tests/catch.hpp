// Tests include "catch.hpp": this picks the header of the Catch2 major version
// CMake found (DEIS_CATCH2_V3 is set by tests/CMakeLists.txt for v3).
#pragma once

#ifdef DEIS_CATCH2_V3
#include <catch2/catch_all.hpp>
using Catch::Approx;  // v2 puts Approx in the global namespace; keep tests portable
#else
#include <catch2/catch.hpp>
#endif
