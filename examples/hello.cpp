// Placeholder example: prints the library version.
#include <deis/deis.hpp>

#include <iostream>

int main() {
  std::cout << "deis " << DEIS_VERSION_MAJOR << '.' << DEIS_VERSION_MINOR << '.'
            << DEIS_VERSION_PATCH << '\n';
  return 0;
}
