// sdk_test_loader <library.so>: runs a shared-library plugin the way
// tracim-plugin-runner does (dlopen, dlsym(kRegisterSymbol), RunPlugin), so
// tests can drive hello_world end to end without the runner.
#include <dlfcn.h>
#include <stdio.h>

#include "tracim/plugin/plugin.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sdk_test_loader <plugin.so>\n");
    return 2;
  }
  void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  auto register_fn = reinterpret_cast<tracim::plugin::RegisterFunction>(
      dlsym(library, tracim::plugin::kRegisterSymbol));
  if (register_fn == nullptr) {
    fprintf(stderr, "dlsym(%s): %s\n", tracim::plugin::kRegisterSymbol, dlerror());
    return 1;
  }
  return tracim::plugin::RunPlugin(register_fn, argc, argv);
}
