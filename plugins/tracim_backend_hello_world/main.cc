// The hello_world plugin as an executable (the form deployed under
// build/plugins/, linked statically for a fast start); hello_world.cc holds
// the plugin itself, also built as a shared library for library mode.
#include "tracim/plugin/plugin.h"

TRACIM_PLUGIN_MAIN()
