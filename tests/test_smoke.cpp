// Placeholder: proves the umbrella header compiles and the test pipeline runs.
#include <deis/deis.hpp>

#include "catch.hpp"

TEST_CASE("umbrella header exposes the version", "[smoke]") {
  CHECK(DEIS_VERSION_MAJOR >= 0);
  CHECK(DEIS_VERSION_MINOR >= 0);
  CHECK(DEIS_VERSION_PATCH >= 0);
}
