// Catch2 v2 test runner main (with Catch2 v3, Catch2::Catch2WithMain supplies it).
#define CATCH_CONFIG_MAIN
#include "catch.hpp"
