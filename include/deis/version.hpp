// deis: version of the library. CMake reads these three macros.
#pragma once

#define DEIS_VERSION_MAJOR 0
#define DEIS_VERSION_MINOR 1
#define DEIS_VERSION_PATCH 0
